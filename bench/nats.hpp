#pragma once
// The "nats" and "nats-js" scenarios' pieces: nats-server as a child process (with JetStream for
// nats-js), and a minimal client of the NATS core text protocol over a plain TCP socket. Debian has no C/C++ NATS
// client library, and the protocol is small enough that speaking it here keeps zbench free of extra dependencies.
//
// The client coalesces writes in a 64 KiB buffer and parses incoming frames from a large read
// buffer, as real NATS clients do, so the side-by-side numbers are fair to nats-server.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace zbench::nats {

/// nats-server on 127.0.0.1 and a free port, for the duration of one run.
class server {
public:
  /// Starts `path` (empty: "nats-server" from PATH, or /usr/sbin where Debian installs it) and
  /// waits up to 10 s until it accepts connections. A non-empty `store_dir` enables JetStream
  /// (-js) with its file store there (-sd). Throws std::runtime_error.
  explicit server(const std::string& path, const std::string& store_dir = "");
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  int pid() const { return static_cast<int>(pid_); }
  /// "nats://127.0.0.1:PORT"
  std::string url() const;

private:
  pid_t pid_ = -1;
  int port_ = 0;
};

/// One client connection. Not thread-safe; every wait is bounded.
class connection {
public:
  using message_fn = std::function<void(std::string_view subject, std::string_view payload)>;

  /// Connects to `url` (nats://host:port), reads INFO and sends CONNECT, all within `timeout`.
  /// `rcvbuf` > 0 shrinks the socket's receive buffer (a consumer that never reads).
  connection(const std::string& url, std::chrono::milliseconds timeout, int rcvbuf = 0);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Called with each MSG's subject and payload, whenever input is parsed (also while flushing).
  void on_message(message_fn fn) { on_message_ = std::move(fn); }
  /// The server's limit on one payload, from INFO.
  std::uint64_t max_payload() const { return max_payload_; }

  /// Buffers a PUB; writes the buffer when it reaches 64 KiB.
  void publish(std::string_view subject, std::string_view payload);
  /// The same with a reply subject (PUB <subject> <reply> <#bytes>).
  void publish(std::string_view subject, std::string_view reply, std::string_view payload);
  /// Buffers a SUB.
  void subscribe(std::string_view subject, int sid);
  /// Writes everything buffered. Throws if the server closed the connection or did not read for
  /// 30 s.
  void flush();
  /// Sends PING and reads (delivering messages) until the PONG: the server has processed
  /// everything sent before. False at the deadline or if the connection closed.
  bool round_trip(std::chrono::milliseconds timeout);
  /// Reads whatever is waiting without blocking (answers the server's PINGs).
  void service();
  /// Reads once without blocking and delivers what came, without writing anything (the PUBs
  /// buffered so far stay buffered). Throws if the connection closed.
  void poll_input();
  /// Sends `payload` to `subject` with a reply inbox of its own and returns the first reply's
  /// payload, within `timeout`. Throws std::runtime_error at the deadline or on a closed
  /// connection. Messages to other subjects arriving meanwhile go to on_message as usual.
  std::string request(std::string_view subject, std::string_view payload, std::chrono::milliseconds timeout);

  enum class result { delivered, timeout, woken, closed };
  /// Waits up to `timeout` for input or for `wake_fd` (checked first), then reads and delivers a
  /// bounded burst. `closed`: the server closed the connection (see error()).
  result receive(std::chrono::milliseconds timeout, int wake_fd = -1);

  /// How many reads brought bytes so far: what a message handler compares to tell one read from
  /// the next.
  std::uint64_t reads() const { return reads_; }
  /// The socket, for a caller that waits for input itself (then calls poll_input()).
  int fd() const { return fd_; }
  /// The server's last -ERR line, or why the connection closed; empty if neither happened.
  const std::string& error() const { return error_; }

private:
  // Reads once without blocking; false if nothing was there or the connection closed.
  bool read_some();
  // Handles every complete frame in the input buffer; returns how many MSGs were delivered.
  std::size_t parse();
  void fail(const std::string& why);

  int fd_ = -1;
  message_fn on_message_;
  std::uint64_t max_payload_ = 1u << 20;
  // Appends to the output buffer: `n` bytes made room for, or `text`.
  char* reserve(std::size_t n) {
    if (out_len_ + n > out_.size()) grow(n);
    char* p = out_.data() + out_len_;
    out_len_ += n;
    return p;
  }
  void grow(std::size_t n);
  void append(std::string_view text);

  std::vector<char> out_;  // out_len_ bytes of it wait to be written
  std::size_t out_len_ = 0;
  char size_line_[24];  // publish(): " <#bytes>\r\n" of the last payload size
  std::size_t size_line_len_ = 0, size_line_of_ = static_cast<std::size_t>(-1);
  std::vector<char> in_;
  std::size_t in_begin_ = 0, in_end_ = 0;
  std::size_t in_need_ = 0;  // bytes the first incomplete frame needs in the buffer
  std::uint64_t pongs_ = 0;
  std::uint64_t reads_ = 0;
  std::string request_inbox_;  // request(): the inbox waited on, and its reply once it came
  std::string request_reply_;
  bool request_answered_ = false;
  int request_count_ = 0;
  bool got_info_ = false;
  bool closed_ = false;
  std::string error_;
};

}  // namespace zbench::nats
