#pragma once
// Sockets: the relay's three sockets built from its config — XSUB for fire-and-forget publishers,
// XPUB for subscribers, ROUTER for acked publishers — with their options (CURVE, high-water marks,
// frame limits, heartbeats and keepalives), bound; and the monitor that counts the connections
// open and the publisher connections that end.

#include <cstdint>
#include <cstring>
#include <set>
#include <string>

#include <zmq.hpp>

#include "zrelay/relay.hpp"

namespace zrelay {

/// The three sockets, configured (throws std::invalid_argument for a topic limit out of range), then
/// bound by bind() — in two steps, so that monitors can watch them before any peer can connect.
struct relay_sockets {
  relay_sockets(zmq::context_t& ctx, const relay_config& cfg);
  /// Binds the three endpoints of `cfg`; throws endpoint_error, bind_error.
  void bind(const relay_config& cfg);

  zmq::socket_t xsub, xpub, router;
  bound_endpoints bound;
};

/// Binds `s` to `ep` and returns the endpoint bound (ephemeral port resolved); throws
/// endpoint_error or bind_error.
std::string bind_socket(zmq::socket_t& s, const std::string& ep);

/// A monitor of the connections of a socket that end. libzmq 4.3.4 reports a connection it cut for
/// a frame over the frame limit only as a disconnection, so this is where such a cut is counted.
/// Only connections that completed their handshake count: a port scan, a CURVE client refused, a
/// client of another protocol retrying ten times a second end too, and are no publisher's.
class connection_watch {
public:
  /// What the relay listens for: connections accepted, handshakes done, connections ended.
  static constexpr int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED;

  /// Starts monitoring `watched`, which must outlive this object.
  connection_watch(zmq::context_t& ctx, zmq::socket_t& watched, const char* which);
  /// The watched socket lingers in ZeroMQ after it is closed, monitor and all, and ZeroMQ's I/O
  /// thread would block for good on an event for a reader that has closed, and every socket of the
  /// context with it. So the monitor stops first (declare the watched socket before this object).
  ~connection_watch();
  connection_watch(const connection_watch&) = delete;
  connection_watch& operator=(const connection_watch&) = delete;

  /// The socket the events arrive on (for polling).
  zmq::socket_t& reader() { return reader_; }

  /// Reads the events waiting and returns how many publisher connections they end; `ended(address)`
  /// is called for each.
  template <typename Ended>
  std::uint64_t read_events(Ended&& ended) {
    std::uint64_t gone = 0;
    zmq::message_t event, address;
    while (reader_.recv(event, zmq::recv_flags::dontwait)) {
      // [event id (16 bits) + value (32 bits)][endpoint], sent as one message
      if (!event.more() || !reader_.recv(address, zmq::recv_flags::dontwait)) continue;
      std::uint16_t id = 0;
      std::uint32_t value = 0;
      if (event.size() >= sizeof id + sizeof value) {
        std::memcpy(&id, event.data(), sizeof id);
        std::memcpy(&value, static_cast<const char*>(event.data()) + sizeof id, sizeof value);
      }
      if (!publisher_gone(id, value)) continue;
      ++gone;
      ended(address.to_string());
    }
    return gone;
  }

  /// Whether event `id` (with its value) is the end of a connection that had completed its
  /// handshake. libzmq 4.3.4 names the connection (its descriptor) in ACCEPTED and DISCONNECTED, not
  /// in HANDSHAKE_SUCCEEDED (whose value is 0); and a failed handshake need not say so (with CURVE
  /// a ZMTP 1.0 or 2.0 greeting is refused with only DISCONNECTED). So a success goes to the one
  /// connection accepted and not yet placed when there is one (handshakes that do not overlap).
  /// When several are, it waits: a DISCONNECTED of one of them is taken as a failed handshake's,
  /// and once as many are left as successes wait, they are all established. When a publisher goes
  /// while another client is still shaking hands, that one may be counted in its place; counts are
  /// exact again once both have ended.
  bool publisher_gone(std::uint16_t id, std::uint32_t fd);

  /// Connections open now whose handshake completed (of the events read so far).
  std::uint64_t connected() const { return established_.size() + unplaced_; }

private:
  void place();

  zmq::socket_t& watched_;
  zmq::socket_t reader_;
  std::set<std::uint32_t> accepted_;     // connections accepted whose handshake is not known to be done
  std::set<std::uint32_t> established_;  // connections whose handshake is done, not ended
  std::uint64_t unplaced_ = 0;           // handshakes done by one of accepted_, not known which
};

}  // namespace zrelay
