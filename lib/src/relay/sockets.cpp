#include "relay/sockets.hpp"

#include <algorithm>
#include <cstring>
#include <random>

#include "zrelay/connection.hpp"
#include "zrelay/endpoint.hpp"
#include "zrelay/text.hpp"

namespace zrelay {
namespace {

// A subscription frame is its topic after the command name "\x09SUBSCRIBE" (ZMTP 3.1, libzmq 4.3.3
// on) or a flag byte (ZMTP 3.0); CURVE wraps it in a MESSAGE command (name, nonce, flags, MAC).
constexpr std::size_t sub_frame_overhead = 10;
constexpr std::size_t curve_frame_overhead = 33;

}  // namespace

std::string bind_socket(zmq::socket_t& s, const std::string& ep) {
  const auto parsed = parse_endpoint(ep, endpoint_use::bind);
  try {
    s.bind(ep);
  } catch (const zmq::error_t& e) {
    // ZeroMQ says "No such device" for a host it cannot resolve to an interface or address.
    if (e.num() == ENODEV && parsed.kind == transport::tcp)
      throw bind_error("cannot bind '" + ep + "': no such host or interface '" + parsed.host + "'");
    throw bind_error("cannot bind '" + ep + "': " + e.what());
  }
  return s.get(zmq::sockopt::last_endpoint);
}

relay_sockets::relay_sockets(zmq::context_t& ctx, const relay_config& cfg)
    : xsub(ctx, zmq::socket_type::xsub), xpub(ctx, zmq::socket_type::xpub), router(ctx, zmq::socket_type::router) {
  // Checked before anything is bound.
  if (cfg.max_topic < min_max_topic || cfg.max_topic > max_topic_limit)
    throw std::invalid_argument("the topic limit must be from " + std::to_string(min_max_topic) + " to " +
                                std::to_string(max_topic_limit) + " bytes");
  for (auto* s : {&xsub, &xpub, &router}) {
    apply_curve_server(*s, cfg.curve);
    s->set(zmq::sockopt::sndhwm, cfg.hwm);
    s->set(zmq::sockopt::rcvhwm, cfg.hwm);
    s->set(zmq::sockopt::linger, static_cast<int>(cfg.linger.count()));
    // Peers that vanish without closing (a stopped process, a cut cable) are dropped.
    if (s != &xpub) set_heartbeat(*s, cfg.heartbeat);
  }
  // A subscriber is judged by its host, never by its reading: TCP keepalives, which its kernel
  // answers however full its queue is. ZeroMQ heartbeats would drop a reader that is only slow (it
  // reads no PING while its queue is full), and a PING in its stream is what libzmq 4.3.4 aborts on
  // when that subscriber drains a connection that closed meanwhile.
  set_keepalive(xpub, cfg.heartbeat);
  xpub.set(zmq::sockopt::xpub_nodrop, 1);
  // Subscriptions in (XPUB) and on to the publishers (XSUB) must never meet a high-water mark:
  // ZeroMQ drops subscription messages past it without a word, and a publisher that never hears a
  // subscription filters those messages out at its source.
  xpub.set(zmq::sockopt::rcvhwm, 0);
  xsub.set(zmq::sockopt::sndhwm, 0);
  // Replies are small and a lost NACK would let the ACK after it pass a refused message off as
  // accepted: give them room well beyond the data high-water mark.
  router.set(zmq::sockopt::sndhwm, std::max(cfg.hwm, 100000));
  // A frame a few times over the message limit is read, refused, counted and answered (a NACK on
  // the ack socket), so the connection goes on. Only a frame over frame_limit() is never read:
  // ZeroMQ cuts the connection at its size header, so a 1 GiB message costs nothing, and the
  // connection_watch counts the cut. Memory stays bounded by the high-water mark times it.
  if (const auto cap = frame_limit(cfg.max_msg_size); cap != 0) {
    router.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(cap));
    xsub.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(cap));
  }
  // Subscribers send only subscriptions, and ZeroMQ applies them itself (its manual mode, which
  // would let the relay refuse one, can use a freed connection in libzmq 4.3.4). So the topic limit
  // is a frame limit: ZeroMQ drops a subscriber whose subscription frame is longer, at its size
  // header, before applying it or reading it into memory. The limit holds for the handshake's
  // frames too: min_max_topic leaves room for them (CURVE's INITIATE is the largest, about 300 bytes).
  const auto sub_frame = cfg.max_topic + sub_frame_overhead + (cfg.curve.enabled() ? curve_frame_overhead : 0);
  xpub.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(sub_frame));
}

void relay_sockets::bind(const relay_config& cfg) {
  bound.pub = bind_socket(xsub, cfg.pub_bind);
  bound.sub = bind_socket(xpub, cfg.sub_bind);
  bound.ack = bind_socket(router, cfg.ack_bind);
}

// The name is random: a relay closed just before may not have given its own back yet.
connection_watch::connection_watch(zmq::context_t& ctx, zmq::socket_t& watched, const char* which)
    : watched_(watched), reader_(ctx, zmq::socket_type::pair) {
  std::random_device rd;
  const auto name = "inproc://zrelay-monitor-" + to_hex((std::uint64_t{rd()} << 32) ^ rd()) + "-" + which;
  if (zmq_socket_monitor(watched_.handle(), name.c_str(), events) != 0) throw zmq::error_t();
  reader_.set(zmq::sockopt::linger, 0);
  // ZeroMQ's I/O thread blocks on a full monitor: never let this queue fill.
  reader_.set(zmq::sockopt::rcvhwm, 0);
  reader_.connect(name);
}

connection_watch::~connection_watch() { (void)zmq_socket_monitor(watched_.handle(), nullptr, 0); }

bool connection_watch::publisher_gone(std::uint16_t id, std::uint32_t fd) {
  switch (id) {
    case ZMQ_EVENT_ACCEPTED: accepted_.insert(fd); return false;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
      ++unplaced_;
      place();
      return false;
    case ZMQ_EVENT_DISCONNECTED:
      if (established_.erase(fd) != 0) return true;
      // Not known to have shaken hands: taken as a failed handshake's end (see the header).
      if (accepted_.erase(fd) != 0) {
        place();
        return false;
      }
      // A success whose ACCEPTED was not seen (none is expected: the monitor starts before the bind).
      if (accepted_.empty() && unplaced_ > 0) {
        --unplaced_;
        return true;
      }
      return false;
    default: return false;
  }
}

// Every connection of accepted_ whose handshake is done, when that is all of them.
void connection_watch::place() {
  if (unplaced_ < accepted_.size()) return;
  established_.insert(accepted_.begin(), accepted_.end());
  unplaced_ -= accepted_.size();
  accepted_.clear();
}

}  // namespace zrelay
