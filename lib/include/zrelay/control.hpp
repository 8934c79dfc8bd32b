#pragma once
// The control socket: `zrelay ctl stats|reload` asks a running relay (docs/PROTOCOL.md, "Control").
// A ROUTER in the relay's loop (relay::watch) answers each request on the relay thread; the request
// parser is a pure function on frames (fuzzed). Not authenticated: bound to loopback or ipc only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "zrelay/endpoint.hpp"

namespace zrelay::control {

/// The longest request the relay reads; a longer one gets an error reply.
inline constexpr std::size_t max_request = 64;
/// A larger frame costs its sender the connection, unread (ZeroMQ's ZMQ_MAXMSGSIZE).
inline constexpr std::size_t max_frame = 4096;

/// What a request asks for.
enum class command { stats, reload };

/// A request as parsed: the command, or why it is refused (the text of the error reply).
struct request {
  std::optional<command> what;
  std::string error;
};

/// Parses the frames of a request after its envelope: exactly one frame holding a command name
/// ("stats", "reload"). `frames_seen` may exceed `n` (frames not kept are counted, not read).
request parse_request(const std::string_view* frames, std::size_t n, std::size_t frames_seen);

/// The name of a command on the wire.
std::string_view command_name(command c);
/// A command from its name; nullopt for any other text.
std::optional<command> parse_command(std::string_view name);

/// Throws endpoint_error unless `text` is an endpoint the control socket may bind: ipc://,
/// inproc://, or tcp:// on a loopback address (127.x.y.z, [::1]; ZeroMQ binds no host names) - anyone who can connect
/// may reload the relay.
void check_bind(std::string_view text);

/// An answer: the status frame ("ok" or "error") and the body.
struct answer {
  bool ok = true;
  std::string body;
};

/// What the relay does for each command (called on the relay thread).
struct handlers {
  std::function<std::string()> stats;  ///< the counters as JSON
  std::function<answer()> reload;      ///< re-read the configuration: what changed, or why nothing did
};

/// The relay's side: a ROUTER bound to `endpoint` (check_bind's rules; throws endpoint_error, and
/// bind_error when it cannot bind). Register socket() with relay::watch(socket(), [&]{ s.serve(); }).
class server {
public:
  server(zmq::context_t& ctx, const std::string& endpoint, handlers h);
  /// Throws bind_error when `endpoint` is an ipc:// path a process listens on (see ipc_in_use);
  /// the constructor checks too. For a caller that binds other sockets first.
  static void check_free(const std::string& endpoint);
  /// The endpoint bound (an ephemeral port resolved).
  const std::string& endpoint() const { return bound_; }
  zmq::socket_t& socket() { return sock_; }
  /// Answers the requests waiting (a bounded number per call; the loop calls again).
  void serve();
  /// Requests answered ok, and refused (malformed, unknown, or a failed reload counts as answered).
  std::uint64_t answered() const { return answered_; }
  std::uint64_t refused() const { return refused_; }
  /// Where the first refusal is logged (the loop's logger); nothing by default.
  void set_logger(std::function<void(std::string_view)> log) { log_ = std::move(log); }

private:
  bool serve_one();
  zmq::socket_t sock_;
  std::string bound_;
  handlers h_;
  std::uint64_t answered_ = 0, refused_ = 0;
  bool warned_ = false;
  std::function<void(std::string_view)> log_;
};

/// `zrelay ctl`'s side: sends `c` to the control socket at `endpoint` and waits up to `timeout`
/// for the answer. nullopt: no answer in time. Throws std::runtime_error when what answered is
/// not a control socket.
std::optional<answer> call(zmq::context_t& ctx, const std::string& endpoint, command c,
                           std::chrono::milliseconds timeout);

}  // namespace zrelay::control
