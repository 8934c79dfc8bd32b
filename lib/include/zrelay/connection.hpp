#pragma once
// Waiting for a connecting socket to reach its peer, so that "no relay there" is an error a
// person sees within seconds rather than a silent reconnect loop.

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>

#include <zmq.hpp>

namespace zrelay {

/// Thrown when a client cannot reach the relay; what() reads
/// "cannot connect to 'tcp://…': why".
class connect_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Connects `sock` to `endpoint` (validated, host resolved) and waits up to `timeout` for the
/// ZeroMQ handshake to complete. A zero timeout connects without waiting.
/// `stop_fd` (if >= 0) aborts the wait when readable; returns false then. `unreachable_hint` ends
/// the message when nothing answers there (a replay socket exists only with --journal, say).
bool connect_and_wait(zmq::context_t& ctx, zmq::socket_t& sock, const std::string& endpoint,
                      std::chrono::milliseconds timeout, int stop_fd = -1,
                      const std::string& unreachable_hint = "is zrelay running there?");

/// Sets ZeroMQ heartbeats on a socket: a PING every `interval`, the connection given up after
/// three intervals without a frame from the peer (so a stopped or vanished peer is noticed), and
/// the peer asked to do the same. 0 sets nothing (ZeroMQ's default: none). Only for a socket
/// whose input never stalls: libzmq stops reading a connection whose queue is full, so its peer's
/// frames look like silence (and libzmq 4.3.4 aborts on the reconnect that follows, or on a PING
/// written after the peer closed). A subscriber's data connection uses set_keepalive instead.
void set_heartbeat(zmq::socket_t& sock, std::chrono::milliseconds interval);

/// Sets TCP keepalives on a socket's connections: after `interval` (rounded up to seconds) with
/// nothing received, the kernel probes the peer every `interval` and closes the connection after
/// three probes go unanswered. The peer's kernel answers them however full its queues are, so
/// they tell a vanished host or a closed connection from a slow reader. 0 sets nothing (the
/// system's default, on Linux none).
void set_keepalive(zmq::socket_t& sock, std::chrono::milliseconds interval);

/// Watches a connected client socket and tells when the relay is lost and when it is back.
/// ZeroMQ reconnects by itself; this only makes it visible.
class link_monitor {
public:
  /// What changed: `lost` (disconnected, e.g. no heartbeat answer) or `restored`.
  enum class change { lost, restored };
  using change_fn = std::function<void(change)>;

  link_monitor(zmq::context_t& ctx, zmq::socket_t& sock);
  ~link_monitor();
  link_monitor(const link_monitor&) = delete;
  link_monitor& operator=(const link_monitor&) = delete;

  /// The monitor socket, to poll beside the client socket.
  zmq::pollitem_t poll_item();
  /// Non-blocking: reads the events that arrived and calls fn for each change.
  void drain(const change_fn& fn);
  /// True between a `lost` and the next `restored`.
  bool lost() const { return lost_; }

private:
  zmq::socket_t& sock_;
  zmq::socket_t pair_;
  bool lost_ = false;
};

}  // namespace zrelay
