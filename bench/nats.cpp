#include "nats.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "clients.hpp"

namespace zbench::nats {
namespace {

using clock = std::chrono::steady_clock;

// NATS clients coalesce small publishes into a buffer of this size before writing (nats.go's
// default is 32 KiB, nats.c's 32 KiB to 64 KiB); using the same order keeps the comparison fair.
constexpr std::size_t write_buffer = 64 * 1024;
// Reads are large so that one syscall brings in thousands of small MSG frames.
constexpr std::size_t read_chunk = 1 << 20;
// Reads per receive() call: bounded so the caller still sees its control pipe regularly.
constexpr int read_burst = 8;
// A control line (INFO, -ERR, a MSG header) longer than this means we are not talking to NATS.
constexpr std::size_t max_line = 64 * 1024;
// How long a write may make no progress before we give up on the server.
constexpr auto write_stall = std::chrono::seconds(30);

int ms_until(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1'000'000));
}

void split_url(const std::string& url, std::string& host, std::string& port) {
  std::string rest = url;
  const auto scheme = rest.find("://");
  if (scheme != std::string::npos) rest = rest.substr(scheme + 3);
  const auto colon = rest.rfind(':');
  host = colon == std::string::npos ? rest : rest.substr(0, colon);
  port = colon == std::string::npos ? "4222" : rest.substr(colon + 1);
  if (host.empty()) host = "127.0.0.1";
}

// A non-blocking TCP connection with Nagle off (as NATS clients do, so a flush goes out at
// once), or -1 with errno set.
int connect_tcp(const std::string& host, const std::string& port, clock::time_point deadline, int rcvbuf) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) {
    errno = EHOSTUNREACH;
    return -1;
  }
  int fd = -1;
  int err = ECONNREFUSED;
  for (auto* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Before connect, so the window the server sees is small from the start.
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      err = errno;
      if (err == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        socklen_t len = sizeof err;
        if (::poll(&p, 1, ms_until(deadline)) <= 0) err = ETIMEDOUT;
        else if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      }
      if (err != 0) {
        ::close(fd);
        fd = -1;
      }
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) errno = err;
  return fd;
}

bool executable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }

std::string find_binary(const std::string& path) {
  const std::string name = path.empty() ? "nats-server" : path;
  if (name.find('/') != std::string::npos) {
    if (executable(name)) return name;
    throw std::runtime_error("nats-server not found at " + name + ": apt-get install nats-server");
  }
  // Debian installs it in /usr/sbin, which is not on an ordinary user's PATH.
  const char* env = std::getenv("PATH");
  std::istringstream dirs(std::string(env ? env : "") + ":/usr/local/sbin:/usr/sbin:/sbin");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && executable(dir + "/" + name)) return dir + "/" + name;
  throw std::runtime_error("nats-server not found: apt-get install nats-server");
}

// nats-server has no "port 0, tell me what you got" mode, so ask the kernel for a free port and
// release it; the short race with other programs is acceptable for a benchmark.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(err));
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

server::server(const std::string& path, const std::string& store_dir) {
  const auto bin = find_binary(path);
  port_ = free_port();
  const auto port = std::to_string(port_);
  // Its log goes nowhere: a pipe nobody drains would stall the server once it logs enough (it
  // logs every slow consumer), and the clients report what matters themselves.
  const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  pid_ = ::fork();
  if (pid_ == 0) {
    if (devnull >= 0)
      for (int fd : {0, 1, 2}) ::dup2(devnull, fd);
    if (store_dir.empty())
      ::execl(bin.c_str(), "nats-server", "-a", "127.0.0.1", "-p", port.c_str(), static_cast<char*>(nullptr));
    else
      ::execl(bin.c_str(), "nats-server", "-a", "127.0.0.1", "-p", port.c_str(), "-js", "-sd", store_dir.c_str(),
              static_cast<char*>(nullptr));
    ::_exit(127);
  }
  if (devnull >= 0) ::close(devnull);
  if (pid_ < 0) throw std::runtime_error("fork failed");
  const auto until = clock::now() + std::chrono::seconds(10);
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error(bin + " exited at start (status " + std::to_string(status) + ")");
    }
    const int fd = connect_tcp("127.0.0.1", port, clock::now() + std::chrono::milliseconds(100), 0);
    if (fd >= 0) {
      ::close(fd);
      return;
    }
    if (clock::now() > until) {
      stop_child(pid_, std::chrono::seconds(5));
      pid_ = -1;
      throw std::runtime_error(bin + " did not accept connections on 127.0.0.1:" + port + " within 10 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

server::~server() { stop_child(pid_, std::chrono::seconds(5)); }  // it shuts down cleanly on SIGTERM

std::string server::url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

connection::connection(const std::string& url, std::chrono::milliseconds timeout, int rcvbuf) {
  const auto deadline = clock::now() + timeout;
  std::string host, port;
  split_url(url, host, port);
  fd_ = connect_tcp(host, port, deadline, rcvbuf);
  if (fd_ < 0) throw std::runtime_error("cannot connect to " + url + ": " + std::strerror(errno));
  in_.resize(read_chunk);
  out_.resize(write_buffer + 512);
  // The server speaks first; CONNECT before INFO would be a protocol error.
  while (!got_info_) {
    if (closed_) throw std::runtime_error(url + ": " + error_);
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms_until(deadline)) <= 0) throw std::runtime_error("no INFO from " + url + " in time");
    if (read_some()) parse();
  }
  append("CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"zbench\",\"lang\":\"c++\",\"version\":\"0\"}\r\n");
  flush();
}

connection::~connection() {
  if (fd_ >= 0) ::close(fd_);
}

void connection::grow(std::size_t n) { out_.resize(std::max(out_.size() * 2, out_len_ + n)); }

void connection::append(std::string_view text) { std::memcpy(reserve(text.size()), text.data(), text.size()); }

namespace {

char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

}  // namespace

// PUB <subject> [reply] <#bytes>\r\n<payload>\r\n, copied straight into the buffer: a publisher
// of small messages spends most of its time here.
void connection::publish(std::string_view subject, std::string_view reply, std::string_view payload) {
  if (payload.size() != size_line_of_) {  // " <#bytes>\r\n", the same for every message of a run
    size_line_of_ = payload.size();
    size_line_[0] = ' ';
    char* end = std::to_chars(size_line_ + 1, size_line_ + sizeof size_line_ - 2, payload.size()).ptr;
    *end++ = '\r';
    *end++ = '\n';
    size_line_len_ = static_cast<std::size_t>(end - size_line_);
  }
  const std::size_t need = 4 + subject.size() + (reply.empty() ? 0 : reply.size() + 1) + size_line_len_ +
                           payload.size() + 2;
  if (out_len_ != 0 && out_len_ + need > write_buffer) flush();
  char* p = put(put(reserve(need), "PUB "), subject);
  if (!reply.empty()) {
    *p++ = ' ';
    p = put(p, reply);
  }
  put(put(put(p, std::string_view(size_line_, size_line_len_)), payload), "\r\n");
  if (out_len_ >= write_buffer) flush();
}

void connection::publish(std::string_view subject, std::string_view payload) { publish(subject, {}, payload); }

void connection::subscribe(std::string_view subject, int sid) {
  append("SUB ");
  append(subject);
  append(" ");
  append(std::to_string(sid));
  append("\r\n");
}

void connection::flush() {
  std::size_t off = 0;
  auto progress = clock::now();
  while (off < out_len_) {
    if (closed_) throw std::runtime_error("nats-server: " + error_);
    const auto n = ::send(fd_, out_.data() + off, out_len_ - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      progress = clock::now();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Keep reading while the server's window is shut: if it is waiting for us to drain its
      // side (or to answer a PING), not reading would deadlock both ends.
      pollfd p{fd_, POLLIN | POLLOUT, 0};
      const int left = ms_until(progress + write_stall);
      if (left == 0) {
        fail("nats-server did not read for 30 s");
        continue;
      }
      ::poll(&p, 1, left);
      if (p.revents & (POLLIN | POLLHUP | POLLERR))
        if (read_some()) parse();
      continue;
    }
    fail(std::string("write: ") + std::strerror(n < 0 ? errno : EPIPE));
  }
  out_len_ = 0;
}

bool connection::round_trip(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  const auto want = pongs_ + 1;
  try {
    append("PING\r\n");
    flush();
    while (pongs_ < want) {
      if (closed_) return false;
      pollfd p{fd_, POLLIN, 0};
      const int left = ms_until(deadline);
      if (left == 0) return false;
      ::poll(&p, 1, left);
      if (read_some()) parse();
      if (out_len_ != 0) flush();  // PONGs to the server's PINGs
    }
  } catch (const std::runtime_error&) {
    return false;  // closed: error() says why
  }
  return true;
}

void connection::service() {
  if (closed_) throw std::runtime_error("nats-server: " + error_);
  if (read_some()) parse();
  if (out_len_ != 0) flush();
}

void connection::poll_input() {
  if (closed_) throw std::runtime_error("nats-server: " + error_);
  if (read_some()) parse();
}

std::string connection::request(std::string_view subject, std::string_view payload, std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  // A sid of its own, far from the callers' small ones; unsubscribed once answered.
  const int sid = 1'000'000 + ++request_count_;
  request_inbox_ = "_INBOX.zbench_request." + std::to_string(sid);
  request_answered_ = false;
  subscribe(request_inbox_, sid);
  publish(subject, request_inbox_, payload);
  flush();
  while (!request_answered_) {
    if (closed_) break;
    pollfd p{fd_, POLLIN, 0};
    const int left = ms_until(deadline);
    if (left == 0) break;
    ::poll(&p, 1, left);
    if (read_some()) parse();
    if (out_len_ != 0) flush();  // PONGs to the server's PINGs
  }
  request_inbox_.clear();
  if (!closed_) {
    append("UNSUB ");
    append(std::to_string(sid));
    append("\r\n");
    flush();
  }
  if (!request_answered_)
    throw std::runtime_error("no reply to " + std::string(subject) + " from nats-server within " +
                             std::to_string(timeout.count()) + " ms" + (error_.empty() ? "" : ": " + error_));
  return std::move(request_reply_);
}

connection::result connection::receive(std::chrono::milliseconds timeout, int wake_fd) {
  const int ms = static_cast<int>(timeout.count());
  pollfd fds[2] = {{closed_ ? -1 : fd_, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  ::poll(fds, wake_fd >= 0 ? 2 : 1, ms);
  if (wake_fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) return result::woken;
  if (closed_) return result::closed;
  if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) return result::timeout;
  std::size_t delivered = 0;
  for (int i = 0; i < read_burst && read_some(); ++i) delivered += parse();
  if (out_len_ != 0 && !closed_) {
    try {
      flush();
    } catch (const std::runtime_error&) {
      // closed_ is set; reported below or on the next call
    }
  }
  if (delivered > 0) return result::delivered;
  return closed_ ? result::closed : result::timeout;
}

bool connection::read_some() {
  if (closed_) return false;
  if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
  // Move the incomplete frame to the front when the tail is short or the frame would not fit.
  const std::size_t need = std::max(in_need_, read_chunk);
  if (in_begin_ > 0 && (in_.size() - in_end_ < read_chunk / 8 || in_.size() - in_begin_ < in_need_)) {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  if (in_.size() < need) in_.resize(need);  // a message larger than the buffer
  for (;;) {
    const auto n = ::recv(fd_, in_.data() + in_end_, in_.size() - in_end_, 0);
    if (n > 0) {
      in_end_ += static_cast<std::size_t>(n);
      ++reads_;
      return true;
    }
    if (n == 0) {
      fail("nats-server closed the connection");
      return false;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) fail(std::string("read: ") + std::strerror(errno));
    return false;
  }
}

std::size_t connection::parse() {
  std::size_t delivered = 0;
  in_need_ = 0;
  while (in_begin_ < in_end_ && !closed_) {
    const char* p = in_.data() + in_begin_;
    const std::size_t avail = in_end_ - in_begin_;
    const auto* nl = static_cast<const char*>(std::memchr(p, '\n', std::min(avail, max_line)));
    if (nl == nullptr) {
      if (avail >= max_line) fail("protocol error: no line end in 64 KiB");
      break;
    }
    const auto header = static_cast<std::size_t>(nl - p) + 1;
    std::string_view line(p, header - 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > 4 && line.compare(0, 4, "MSG ") == 0) {
      // MSG <subject> <sid> [reply-to] <#bytes>: the size is always the last field.
      const auto sp = line.rfind(' ');
      std::size_t n = 0;
      const auto r = std::from_chars(line.data() + sp + 1, line.data() + line.size(), n);
      if (r.ec != std::errc() || r.ptr != line.data() + line.size()) {
        fail("protocol error: bad MSG line '" + std::string(line.substr(0, 80)) + "'");
        break;
      }
      const std::size_t total = header + n + 2;
      if (avail < total) {
        in_need_ = total;  // straddles reads: wait for the rest
        break;
      }
      const auto rest = line.substr(4);
      const auto subject = rest.substr(0, rest.find(' '));
      if (!request_inbox_.empty() && subject == request_inbox_) {
        request_reply_.assign(p + header, n);
        request_answered_ = true;
      } else if (on_message_) {
        on_message_(subject, std::string_view(p + header, n));
      }
      ++delivered;
      in_begin_ += total;
      continue;
    }
    in_begin_ += header;
    if (line == "PING") {
      append("PONG\r\n");  // the server drops clients that leave its PINGs unanswered
    } else if (line == "PONG") {
      ++pongs_;
    } else if (line.compare(0, 5, "INFO ") == 0) {
      got_info_ = true;
      const auto at = line.find("\"max_payload\":");
      if (at != std::string_view::npos) {
        const auto from = line.data() + at + 14;
        std::from_chars(from, line.data() + line.size(), max_payload_);
      }
    } else if (line == "+OK") {
    } else if (line.compare(0, 4, "-ERR") == 0) {
      error_ = std::string(line);  // most are followed by the server closing the connection
    } else {
      fail("protocol error: unexpected '" + std::string(line.substr(0, 80)) + "'");
    }
  }
  return delivered;
}

void connection::fail(const std::string& why) {
  if (!closed_) error_ = error_.empty() ? why : error_ + ", then " + why;
  closed_ = true;
}

}  // namespace zbench::nats
