#pragma once
// Waiting for a connecting socket to reach its peer, so that "no relay there" is an error a
// person sees within seconds rather than a silent reconnect loop.

#include <chrono>
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

}  // namespace zrelay
