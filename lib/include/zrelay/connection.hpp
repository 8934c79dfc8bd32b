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
/// `stop_fd` (if >= 0) aborts the wait when readable; returns false then.
bool connect_and_wait(zmq::context_t& ctx, zmq::socket_t& sock, const std::string& endpoint,
                      std::chrono::milliseconds timeout, int stop_fd = -1);

/// Sets ZeroMQ heartbeats on a socket: a PING every `interval`, the connection given up after
/// three intervals without traffic (so a stopped or vanished peer is noticed). 0 turns them off.
void set_heartbeat(zmq::socket_t& sock, std::chrono::milliseconds interval);

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

private:
  zmq::socket_t& sock_;
  zmq::socket_t pair_;
  bool lost_ = false;
};

}  // namespace zrelay
