#include "zrelay/relay.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "zrelay/connection.hpp"
#include "zrelay/endpoint.hpp"
#include "zrelay/format.hpp"
#include "zrelay/wire.hpp"

namespace zrelay {
namespace {

using clock = std::chrono::steady_clock;

// How many messages one socket may hand over before the loop looks at the others
// (zmq_proxy reads in bursts the same way).
constexpr int burst = 512;
// Subscriptions are few and cheap to pass on; publishers should hear them before more messages.
constexpr int subscription_burst = 100000;
// A plain publisher may send any number of frames; more than this is refused, not buffered.
constexpr std::size_t max_frames = 64;
constexpr std::chrono::milliseconds idle_poll{100};
// A subscription frame is its topic after the command name "\x09SUBSCRIBE" (ZMTP 3.1, libzmq
// 4.3.3 on) or a flag byte (ZMTP 3.0); CURVE wraps it in a MESSAGE command (name, nonce, flags,
// MAC).
constexpr std::size_t sub_frame_overhead = 10;
constexpr std::size_t curve_frame_overhead = 33;

std::string printable(const void* data, std::size_t size, std::size_t limit = 80) {
  static constexpr char hex[] = "0123456789abcdef";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  for (std::size_t i = 0; i < size && i < limit; ++i) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  if (size > limit) out += "...";
  return out;
}

}  // namespace

full_policy parse_full_policy(std::string_view text) {
  if (text == "drop") return full_policy::drop;
  if (text == "block") return full_policy::block;
  throw std::invalid_argument("'" + std::string(text) + "' is not a policy (use drop or block)");
}

struct relay::impl {
  // What reading one message from a socket came to: nothing was there, go on, or it is held
  // (a subscriber is full) and reading must stop.
  enum class step { empty, next, held };

  // What the relay remembers of an acked publisher (keyed by its own id, not the routing id,
  // which changes when it reconnects).
  struct publisher_state {
    std::uint64_t next = 0;  // the next sequence it will accept
    std::string route;       // the routing id its latest message came from
    clock::time_point last_seen;
    bool ack_due = false;
  };

  // A message on its way to the subscriber socket: sent at once, or held while a subscriber
  // is full (block policy, or the drop policy's wait).
  struct held_message {
    std::vector<zmq::message_t> frames;
    std::uint64_t msgs = 0;       // user messages in it
    std::uint64_t bytes = 0;
    std::uint64_t publisher = 0;  // 0: came from XSUB
    std::uint64_t next = 0;       // the publisher's next sequence once this is out
  };

  impl(zmq::context_t& ctx, relay_config c)
      : cfg(std::move(c)),
        xsub(ctx, zmq::socket_type::xsub),
        xpub(ctx, zmq::socket_type::xpub),
        router(ctx, zmq::socket_type::router) {
    // CURVE: the ZAP handler answers before the first client can connect.
    if (cfg.curve.enabled())
      zap = std::make_unique<zap_handler>(ctx, cfg.curve.allowed_keys, [this](const zap_refusal& r) { refused_client(r); });
    for (auto* s : {&xsub, &xpub, &router}) {
      apply_curve_server(*s, cfg.curve);
      s->set(zmq::sockopt::sndhwm, cfg.hwm);
      s->set(zmq::sockopt::rcvhwm, cfg.hwm);
      s->set(zmq::sockopt::linger, static_cast<int>(cfg.linger.count()));
      // Peers that vanish without closing (a stopped process, a cut cable) are dropped.
      if (s != &xpub) set_heartbeat(*s, cfg.heartbeat);
    }
    // A subscriber is judged by its host, never by its reading: TCP keepalives, which its kernel
    // answers however full its queue is. ZeroMQ heartbeats would drop a reader that is only slow
    // (it reads no PING while its queue is full), and a PING in its stream is what libzmq 4.3.4
    // aborts on when that subscriber drains a connection that closed meanwhile.
    set_keepalive(xpub, cfg.heartbeat);
    xpub.set(zmq::sockopt::xpub_nodrop, 1);
    // Subscriptions in (XPUB) and on to the publishers (XSUB) must never meet a high-water mark:
    // ZeroMQ drops subscription messages past it without a word, and a publisher that never
    // hears a subscription filters those messages out at its source.
    xpub.set(zmq::sockopt::rcvhwm, 0);
    xsub.set(zmq::sockopt::sndhwm, 0);
    // Replies are small and a lost NACK would let the ACK after it pass a refused message off
    // as accepted: give them room well beyond the data high-water mark.
    router.set(zmq::sockopt::sndhwm, std::max(cfg.hwm, 100000));
    // A frame far over the limit is never read into memory: ZeroMQ drops the connection at its
    // size header (so a 1 GiB message costs nothing). Up to one batch of headroom stays, so that a
    // message just over the limit still gets its NACK on the ack socket.
    if (cfg.max_msg_size != 0) {
      const auto cap = static_cast<std::int64_t>(std::max<std::size_t>(cfg.max_msg_size, 64u << 10) + (64u << 10));
      router.set(zmq::sockopt::maxmsgsize, cap);
      xsub.set(zmq::sockopt::maxmsgsize, cap);
    }
    // Subscribers send only subscriptions, and ZeroMQ applies them itself (its manual mode, which
    // would let the relay refuse one, can use a freed connection in libzmq 4.3.4). So the topic
    // limit is a frame limit: ZeroMQ drops a subscriber whose subscription frame is longer, at
    // its size header, before applying it or reading it into memory.
    // The limit holds for the handshake's frames too: min_max_topic leaves room for them (CURVE's
    // INITIATE is the largest, about 300 bytes).
    if (cfg.max_topic < min_max_topic || cfg.max_topic > max_topic_limit)
      throw std::invalid_argument("the topic limit must be from " + std::to_string(min_max_topic) + " to " +
                                  std::to_string(max_topic_limit) + " bytes");
    const auto sub_frame =
        cfg.max_topic + sub_frame_overhead + (cfg.curve.enabled() ? curve_frame_overhead : 0);
    xpub.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(sub_frame));
    xframes.resize(max_frames);
    bound.pub = bind(xsub, cfg.pub_bind);
    bound.sub = bind(xpub, cfg.sub_bind);
    bound.ack = bind(router, cfg.ack_bind);
  }

  static std::string bind(zmq::socket_t& s, const std::string& ep) {
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

  // Logs the first of a kind of bad input (all of them with verbose); the rest are counted.
  // `text()` builds the line only when it is logged: a flood of bad input costs no formatting.
  template <typename TextFn>
  void warn_once(bool& warned_already, const TextFn& text) {
    if (verbose || !warned_already) {
      if (log) log(text() + (verbose ? "" : " (further ones are counted, not logged)"));
      warned_already = true;
    }
  }

  template <typename TextFn>
  void warn(wire::reason r, const TextFn& text) {
    warn_once(warned[static_cast<std::size_t>(r) % warned.size()], text);
  }

  // On the ZAP handler's thread: log_mutex keeps set_logger from changing `log` meanwhile. The
  // counter has this one writer.
  void refused_client(const zap_refusal& r) {
    relay_stats::add(stats.clients_refused);
    std::lock_guard<std::mutex> lock(log_mutex);
    if (!log || (warned_refusal && !verbose)) return;
    log("warning: refused a " + r.mechanism + " client from " + r.address +
        (r.client_key.empty() ? "" : " with key " + r.client_key) + ": " + r.reason +
        (verbose ? "" : " (further ones are not logged)"));
    warned_refusal = true;
  }

  void note(const std::string& text) {
    if (verbose && log) log(text);
  }

  // Sends frames[0..n) as one message. False: the subscriber socket is full (nothing sent).
  bool try_send(zmq::message_t* frames, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      const auto more = i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!xpub.send(frames[i], more | zmq::send_flags::dontwait)) {
        if (i == 0) return false;
        // Cannot happen (the high-water mark counts whole messages) but must not tear a
        // message in two: finish it lossily.
        send_dropping(frames + i, n - i);
        return true;
      }
    }
    return true;
  }

  // Sends frames[0..n) past any full subscriber, which misses them.
  void send_dropping(zmq::message_t* frames, std::size_t n) {
    xpub.set(zmq::sockopt::xpub_nodrop, 0);
    for (std::size_t i = 0; i < n; ++i)
      (void)xpub.send(frames[i],
                      (i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none) | zmq::send_flags::dontwait);
    xpub.set(zmq::sockopt::xpub_nodrop, 1);
  }

  // The message is out (or, dropped for a full subscriber, out to everyone else): count it and
  // let its publisher's acknowledgment move on.
  void sent(std::uint64_t msgs, std::uint64_t bytes, std::uint64_t publisher, std::uint64_t next) {
    relay_stats::add(stats.msgs_out, msgs);
    relay_stats::add(stats.bytes_out, bytes);
    if (publisher == 0) return;
    auto it = publishers.find(publisher);
    if (it == publishers.end()) return;
    it->second.next = next;
    mark_ack(it->first, it->second);
  }

  // Sends frames[0..n) to the subscribers, or holds them (in order, behind anything already
  // held) while a subscriber is full. Returns false while something is held: the caller stops
  // reading publishers, which is what makes back-pressure reach them.
  bool emit(zmq::message_t* frames, std::size_t n, std::uint64_t msgs, std::uint64_t bytes,
            std::uint64_t publisher, std::uint64_t next) {
    if (held.empty() && try_send(frames, n)) {
      sent(msgs, bytes, publisher, next);
      return true;
    }
    if (held.empty()) {
      held_since = clock::now();
      relay_stats::add(stats.blocked);
    }
    held_message h;
    h.frames.resize(n);
    for (std::size_t i = 0; i < n; ++i) h.frames[i].move(frames[i]);
    h.msgs = msgs;
    h.bytes = bytes;
    h.publisher = publisher;
    h.next = next;
    held.push_back(std::move(h));
    return false;
  }

  // Sends what is held, oldest first. Under the drop policy a subscriber gets cfg.full_wait to
  // make room; after that the message goes to everyone else and counts as dropped (the
  // subscriber sees the gap in the sequence numbers). True once nothing is held.
  bool retry_held(bool give_up = false) {
    while (!held.empty()) {
      auto& h = held.front();
      bool acked = true;
      if (!try_send(h.frames.data(), h.frames.size())) {
        const bool waited = clock::now() - held_since >= cfg.full_wait;
        if (!give_up && (cfg.on_full == full_policy::block || !waited)) return false;
        send_dropping(h.frames.data(), h.frames.size());
        relay_stats::add(stats.dropped, h.msgs);
        // Shutting down: what a full subscriber misses now is not acknowledged, so an acked
        // publisher sends it again to the relay that comes next.
        acked = !give_up;
        if (!warned_drop) {
          warned_drop = true;
          if (log)
            log("warning: a subscriber is not keeping up; messages it misses are dropped and counted "
                "(it sees the gap)");
        }
      }
      sent(h.msgs, h.bytes, acked ? h.publisher : 0, h.next);
      held.pop_front();
      held_since = clock::now();
    }
    return true;
  }

  void mark_ack(std::uint64_t id, publisher_state& st) {
    if (!st.ack_due) {
      st.ack_due = true;
      ack_due.push_back(id);
    }
  }

  void send_reply(const void* route, std::size_t route_size, const wire::reply& r) {
    const auto bytes = wire::encode_reply(r);
    zmq::message_t rid(route, route_size);
    zmq::message_t body(bytes.data(), bytes.size());
    // A publisher that is gone or not reading loses the reply; it resends on timeout and is
    // re-acked as a duplicate, so nothing depends on this send succeeding.
    if (router.send(rid, zmq::send_flags::sndmore | zmq::send_flags::dontwait))
      (void)router.send(body, zmq::send_flags::dontwait);
  }

  // Refuses `count` messages from seq on. `counted` is what the counters take: a header that
  // could not be read is one message, whatever count it claims.
  void nack(const zmq::message_t& route, std::uint64_t publisher, std::uint64_t seq, std::uint32_t count,
            std::uint64_t counted, wire::reason why, const std::string& detail) {
    wire::reply r;
    r.type = wire::kind::nack;
    r.publisher = publisher;
    r.seq = seq;
    r.count = count;
    r.why = why;
    r.text = detail;
    relay_stats::add(stats.nacks, counted);  // counted before the reply: whoever reads it sees it
    send_reply(route.data(), route.size(), r);
    warn(why, [&] {
      return "warning: refused " + std::to_string(counted) + " message(s) from publisher " + to_hex(publisher) + ": " +
             std::string(wire::reason_text(why)) + " (" + detail + ")";
    });
  }

  std::string too_large_text(std::size_t size) const {
    return "a message of " + std::to_string(size) + " bytes exceeds the limit of " + std::to_string(cfg.max_msg_size);
  }

  std::string topic_too_long_text(std::size_t size) const {
    return "a topic of " + std::to_string(size) + " bytes exceeds the limit of " + std::to_string(cfg.max_topic);
  }

  // A batch with some records over the size limit: refuse those, forward the rest as batches
  // of their own, with the sequence numbers they had (so subscribers see a gap exactly where a
  // message was refused). False: something is held.
  // `largest` is the largest record (validate_body found it).
  bool forward_without_oversized(const zmq::message_t& rid, const zmq::message_t& topic, const wire::batch_header& h,
                                 const zmq::message_t& body, std::size_t largest, publisher_state& st,
                                 std::uint64_t end) {
    struct segment {
      std::uint32_t first, count;
      std::size_t from, to;
    };
    std::vector<segment> segments, refused;  // refused: runs of oversized records, one NACK each
    const auto* base = static_cast<const char*>(body.data());
    wire::record_reader rd(body.data(), body.size(), h.count);
    std::uint32_t i = 0;
    while (auto rec = rd.next()) {
      const auto to = static_cast<std::size_t>(rec->data() + rec->size() - base);
      const auto from = static_cast<std::size_t>(rec->data() - base) - wire::record_prefix_size;
      auto& runs = rec->size() > cfg.max_msg_size ? refused : segments;
      if (!runs.empty() && runs.back().first + runs.back().count == i) {
        ++runs.back().count;
        runs.back().to = to;
      } else {
        runs.push_back({i, 1, from, to});
      }
      ++i;
    }
    for (const auto& run : refused)
      nack(rid, h.publisher, h.seq + run.first, run.count, run.count, wire::reason::too_large, too_large_text(largest));
    if (segments.empty()) {
      st.next = end;
      mark_ack(h.publisher, st);
      return true;
    }
    bool out = true;
    for (std::size_t k = 0; k < segments.size(); ++k) {
      const auto& seg = segments[k];
      wire::batch_header part = h;
      part.count = seg.count;
      part.seq = h.seq + seg.first;
      part.topic_seq = h.topic_seq + seg.first;
      zmq::message_t frames[3] = {zmq::message_t(topic.data(), topic.size()), zmq::message_t(wire::header_size),
                                  zmq::message_t(base + seg.from, seg.to - seg.from)};
      wire::encode_header(part, frames[1].data());
      const auto next = k + 1 < segments.size() ? h.seq + segments[k + 1].first : end;
      const auto bytes = frames[0].size() + frames[1].size() + frames[2].size();
      out = emit(frames, 3, seg.count, bytes, h.publisher, next) && out;
    }
    return out;
  }

  void flush_acks() {
    for (const auto id : ack_due) {
      auto it = publishers.find(id);
      if (it == publishers.end()) continue;
      auto& st = it->second;
      st.ack_due = false;
      wire::reply r;
      r.type = wire::kind::ack;
      r.publisher = id;
      r.seq = st.next - 1;
      send_reply(st.route.data(), st.route.size(), r);
      relay_stats::add(stats.acks);
    }
    ack_due.clear();
  }

  // Reads the rest of a message that is being refused.
  void drain(zmq::socket_t& s, bool more) {
    zmq::message_t junk;
    while (more) {
      if (!s.recv(junk, zmq::recv_flags::dontwait)) return;
      more = junk.more();
    }
  }

  // One message from the ack socket: [routing id][topic][header][body].
  step handle_router_message() {
    auto& rid = rframes[0];
    if (!router.recv(rid, zmq::recv_flags::dontwait)) return step::empty;
    std::size_t n = 1;
    bool more = rid.more();
    while (more && n < rframes.size()) {
      if (!router.recv(rframes[n], zmq::recv_flags::dontwait)) break;
      more = rframes[n].more();
      ++n;
    }
    std::size_t frames_seen = n;
    if (more) {  // too many frames: count them while draining
      zmq::message_t junk;
      while (more && router.recv(junk, zmq::recv_flags::dontwait)) {
        more = junk.more();
        ++frames_seen;
      }
    }
    std::uint64_t bytes = 0;
    for (std::size_t i = 1; i < n; ++i) bytes += rframes[i].size();
    relay_stats::add(stats.bytes_in, bytes);

    wire::batch_header h;
    std::uint8_t version_seen = 0;
    const auto hs = frames_seen >= 3 ? wire::decode_header(rframes[2].data(), rframes[2].size(), h, &version_seen)
                                     : wire::status::truncated;
    // A header that does not decode says nothing reliable: its count is not believed.
    const std::uint32_t claimed = hs == wire::status::ok ? h.count : 1;
    if (frames_seen != 4) {
      relay_stats::add(stats.msgs_in, claimed);
      relay_stats::add(stats.malformed);
      nack(rid, h.publisher, h.seq, claimed, claimed, wire::reason::malformed,
           "expected 3 frames [topic][header][body], got " + std::to_string(frames_seen - 1));
      return step::next;
    }
    auto& topic = rframes[1];
    auto& body = rframes[3];
    if (hs == wire::status::bad_version) {
      relay_stats::add(stats.msgs_in);
      nack(rid, h.publisher, h.seq, std::max<std::uint32_t>(h.count, 1), 1, wire::reason::unsupported_version,
           "this relay speaks protocol version " + std::to_string(wire::version) + ", got " +
               std::to_string(version_seen));
      return step::next;
    }
    if (hs != wire::status::ok) {
      relay_stats::add(stats.msgs_in);
      relay_stats::add(stats.malformed);
      nack(rid, h.publisher, h.seq, 1, 1, wire::reason::malformed,
           "header: " + std::string(wire::status_text(hs)));
      return step::next;
    }
    // Nor is the count of a header whose body does not match it: check the body first.
    bool too_large = false;
    std::size_t largest = 0;
    const auto bs = wire::validate_body(body.data(), body.size(), h.count, cfg.max_msg_size, too_large, largest);
    if (bs != wire::status::ok) {
      relay_stats::add(stats.msgs_in);
      relay_stats::add(stats.malformed);
      nack(rid, h.publisher, h.seq, h.count, 1, wire::reason::malformed, "body: " + std::string(wire::status_text(bs)));
      return step::next;
    }
    relay_stats::add(stats.msgs_in, h.count);
    if (h.publisher == 0 || h.seq == 0) {
      relay_stats::add(stats.malformed);
      nack(rid, h.publisher, h.seq, h.count, h.count, wire::reason::malformed,
           "publisher id and sequence must not be zero on the ack socket");
      return step::next;
    }
    const auto now = clock::now();
    auto [it, fresh] = publishers.try_emplace(h.publisher);
    auto& st = it->second;
    if (fresh) {
      // A publisher we have not seen (or forgot, or met before a restart): start where it says
      // it still needs acks, so that whatever it resends first is not taken for a duplicate.
      st.next = h.ack_floor != 0 && h.ack_floor <= h.seq ? h.ack_floor : h.seq;
      relay_stats::add(stats.publishers);
      note("publisher " + to_hex(h.publisher) + " connected, starting at sequence " + std::to_string(st.next));
    }
    if (h.ack_floor > st.next) st.next = h.ack_floor;  // it had acks for those from an earlier relay
    st.last_seen = now;
    if (st.route.size() != rid.size() || std::memcmp(st.route.data(), rid.data(), rid.size()) != 0)
      st.route.assign(static_cast<const char*>(rid.data()), rid.size());

    const std::uint64_t end = h.seq + h.count;
    if (end <= st.next) {
      relay_stats::add(stats.duplicates, h.count);
      mark_ack(h.publisher, st);
      return step::next;
    }
    if (h.seq > st.next) {
      // Something before this batch never arrived (lost in a reconnect): ask for it again.
      wire::reply r;
      r.type = wire::kind::expect;
      r.publisher = h.publisher;
      r.seq = st.next;
      send_reply(rid.data(), rid.size(), r);
      return step::next;
    }
    if (h.seq < st.next) {
      relay_stats::add(stats.malformed);
      nack(rid, h.publisher, h.seq, h.count, h.count, wire::reason::malformed,
           "batch overlaps messages already accepted (sequence " + std::to_string(h.seq) + ", expected " +
               std::to_string(st.next) + ")");
      st.next = end;
      mark_ack(h.publisher, st);
      return step::next;
    }
    if (topic.size() > cfg.max_topic) {
      // Refused for good: the sequence moves past it, as for a batch of oversized records.
      nack(rid, h.publisher, h.seq, h.count, h.count, wire::reason::too_large, topic_too_long_text(topic.size()));
      st.next = end;
      mark_ack(h.publisher, st);
      return step::next;
    }
    const bool out = too_large ? forward_without_oversized(rid, topic, h, body, largest, st, end)
                               : emit(&rframes[1], 3, h.count, bytes, h.publisher, end);
    return out ? step::next : step::held;
  }

  // One message from XSUB, forwarded as it is.
  step handle_xsub_message() {
    std::size_t n = 0;
    bool more = true;
    std::uint64_t bytes = 0;
    while (more && n < xframes.size()) {
      if (!xsub.recv(xframes[n], zmq::recv_flags::dontwait)) {
        if (n == 0) return step::empty;
        continue;  // later frames of a message are always there once the first is
      }
      more = xframes[n].more();
      bytes += xframes[n].size();
      ++n;
    }
    relay_stats::add(stats.bytes_in, bytes);
    if (more) {
      drain(xsub, more);
      relay_stats::add(stats.msgs_in);
      relay_stats::add(stats.malformed);
      warn(wire::reason::malformed, [] {
        return "warning: dropped a message of more than " + std::to_string(max_frames) + " frames from a publisher";
      });
      return step::next;
    }
    std::uint64_t msgs = 1;
    if (n == 3 && wire::looks_like_header(xframes[1].data(), xframes[1].size())) {
      wire::batch_header h;
      if (wire::decode_header(xframes[1].data(), xframes[1].size(), h) == wire::status::ok) msgs = h.count;
    }
    relay_stats::add(stats.msgs_in, msgs);
    // A message of one frame is all topic as far as prefix matching goes: only a separate topic
    // frame is held to the limit.
    if (n >= 2 && xframes[0].size() > cfg.max_topic) {
      relay_stats::add(stats.refused, msgs);
      warn_once(warned_long_topic, [&] {
        return "warning: dropped " + std::to_string(msgs) + " message(s) from a fire-and-forget publisher: " +
               topic_too_long_text(xframes[0].size());
      });
      return step::next;
    }
    return emit(xframes.data(), n, msgs, bytes, 0, 0) ? step::next : step::held;
  }

  // Subscriptions travel from XPUB up to XSUB, so that publishers filter at the source. ZeroMQ
  // has applied each to its connection already, and hands over a topic's first subscription
  // and its last unsubscription (of all subscribers together).
  void handle_subscriptions() {
    zmq::message_t m;
    // All that are waiting, within reason, before the next messages.
    for (int i = 0; i < subscription_burst; ++i) {
      if (!xpub.recv(m, zmq::recv_flags::dontwait)) return;
      const auto* p = static_cast<const unsigned char*>(m.data());
      if (m.size() == 0 || p[0] > 1) {
        // Not a subscription (ZeroMQ passes each frame on by itself): nothing goes upstream.
        relay_stats::add(stats.malformed);
        warn_once(warned_not_subscription,
                  [] { return std::string("warning: ignored a message from a subscriber that is not a subscription"); });
        continue;
      }
      const bool subscribe = p[0] == 1;
      relay_stats::add(subscribe ? stats.subscriptions : stats.unsubscriptions);
      note(std::string(subscribe ? "subscribe '" : "unsubscribe '") + printable(p + 1, m.size() - 1) + "'");
      (void)xsub.send(m, zmq::send_flags::dontwait);
    }
  }

  void forget_idle_publishers(clock::time_point now) {
    for (auto it = publishers.begin(); it != publishers.end();) {
      if (!it->second.ack_due && now - it->second.last_seen > cfg.publisher_idle &&
          std::none_of(held.begin(), held.end(), [&](const held_message& h) { return h.publisher == it->first; })) {
        it = publishers.erase(it);
      } else {
        ++it;
      }
    }
    stats.publishers.store(publishers.size(), std::memory_order_relaxed);
  }

  void run(int stop_fd) {
    zmq::pollitem_t items[] = {
        {xpub.handle(), 0, ZMQ_POLLIN, 0},
        {xsub.handle(), 0, ZMQ_POLLIN, 0},
        {router.handle(), 0, ZMQ_POLLIN, 0},
        {nullptr, stop_fd, ZMQ_POLLIN, 0},
    };
    auto next_tick = clock::now() + tick_every;
    auto next_sweep = clock::now() + std::chrono::seconds(60);
    try {
      while (!stop.load(std::memory_order_relaxed)) {
        const bool blocked = !held.empty();
        auto timeout = blocked ? std::chrono::milliseconds(1) : idle_poll;
        if (tick && !blocked) {
          const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - clock::now());
          timeout = std::clamp(until, std::chrono::milliseconds(0), timeout);
        }
        // While a message is held only subscriptions (and the stop signal) are read: that is
        // what makes block back-pressure reach the publishers.
        if (blocked) {
          zmq::pollitem_t few[] = {items[0], items[3]};
          zmq::poll(few, stop_fd >= 0 ? 2 : 1, timeout);
          items[0].revents = few[0].revents;
          items[1].revents = items[2].revents = 0;
          items[3].revents = few[1].revents;
        } else {
          zmq::poll(items, stop_fd >= 0 ? 4 : 3, timeout);
        }
        if (stop_fd >= 0 && (items[3].revents & ZMQ_POLLIN)) break;
        if (items[0].revents & ZMQ_POLLIN) handle_subscriptions();
        if (retry_held()) {
          if (items[1].revents & ZMQ_POLLIN)
            for (int i = 0; i < burst && handle_xsub_message() == step::next; ++i) {}
          if (held.empty() && (items[2].revents & ZMQ_POLLIN))
            for (int i = 0; i < burst && handle_router_message() == step::next; ++i) {}
        }
        flush_acks();
        const auto now = clock::now();
        if (tick && now >= next_tick) {
          tick(stats.snapshot());
          next_tick = now + tick_every;
        }
        if (now >= next_sweep) {
          forget_idle_publishers(now);
          next_sweep = now + std::chrono::seconds(60);
        }
      }
      // Shutdown: give what is held until linger to go out, then send it to whoever has room
      // and count it as dropped.
      const auto give_up = clock::now() + cfg.linger;
      while (!retry_held() && clock::now() < give_up) {
        zmq::pollitem_t one[] = {items[0]};
        zmq::poll(one, 1, std::chrono::milliseconds(1));
        if (one[0].revents & ZMQ_POLLIN) handle_subscriptions();
      }
      retry_held(true);
      flush_acks();
    } catch (const zmq::error_t& e) {
      if (e.num() != ETERM) throw;
    }
  }

  relay_config cfg;
  zmq::socket_t xsub, xpub, router;
  bound_endpoints bound;
  relay_stats stats;
  std::atomic<bool> stop{false};
  log_fn log;
  bool verbose = false;
  std::array<bool, 8> warned{};
  bool warned_drop = false;
  bool warned_long_topic = false, warned_not_subscription = false;
  tick_fn tick;
  std::chrono::milliseconds tick_every{1000};
  std::unordered_map<std::uint64_t, publisher_state> publishers;
  std::vector<std::uint64_t> ack_due;
  std::array<zmq::message_t, 4> rframes;
  std::vector<zmq::message_t> xframes;
  std::deque<held_message> held;
  clock::time_point held_since;
  std::mutex log_mutex;
  bool warned_refusal = false;
  std::unique_ptr<zap_handler> zap;  // last: stops before the sockets close
};

relay::relay(zmq::context_t& ctx, relay_config cfg) : impl_(std::make_unique<impl>(ctx, std::move(cfg))) {}
relay::~relay() = default;

const bound_endpoints& relay::endpoints() const { return impl_->bound; }

void relay::set_logger(log_fn log, bool verbose) {
  std::lock_guard<std::mutex> lock(impl_->log_mutex);
  impl_->log = std::move(log);
  impl_->verbose = verbose;
}

void relay::on_tick(std::chrono::milliseconds every, tick_fn fn) {
  impl_->tick_every = every;
  impl_->tick = std::move(fn);
}

void relay::run(int stop_fd) { impl_->run(stop_fd); }

void relay::request_stop() { impl_->stop.store(true, std::memory_order_relaxed); }

relay_counters relay::counters() const { return impl_->stats.snapshot(); }

}  // namespace zrelay
