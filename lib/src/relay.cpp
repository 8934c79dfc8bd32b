#include "zrelay/relay.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
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
// A batch with more runs of records over the size limit than this is refused whole, with one
// NACK: a NACK per run would let one batch bring more replies than the ack socket holds (a lost
// NACK, and the ACK after it passes the refused records off as accepted).
constexpr std::size_t max_refused_runs = 64;
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
    std::uint64_t expected = 0;  // the sequence its latest EXPECT asked for (0: none yet)
    clock::time_point expected_at;
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
        router(ctx, zmq::socket_type::router),
        xsub_watch(ctx, xsub, "pub"),
        router_watch(ctx, router, "ack") {
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
    // A frame a few times over the message limit is read, refused, counted and answered (a NACK
    // on the ack socket), so the connection goes on. Only a frame over frame_limit() is never
    // read: ZeroMQ cuts the connection at its size header, so a 1 GiB message costs nothing, and
    // the monitors below count the cut. Memory stays bounded by the high-water mark times it.
    if (const auto cap = frame_limit(cfg.max_msg_size); cap != 0) {
      router.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(cap));
      xsub.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(cap));
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

  // A monitor of the connections of a socket that end. libzmq 4.3.4 reports a connection it cut
  // for a frame over the frame limit only as a disconnection, so this is where such a cut is
  // counted. Only connections that completed their handshake count: a port scan, a CURVE client
  // refused, a client of another protocol retrying ten times a second end too, and are no
  // publisher's.
  class connection_watch {
  public:
    // What the relay listens for: handshakes and their end.
    static constexpr int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                  ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                  ZMQ_EVENT_DISCONNECTED;

    // The name is random: a relay closed just before may not have given its own back yet.
    connection_watch(zmq::context_t& ctx, zmq::socket_t& watched, const char* which)
        : watched_(watched), reader_(ctx, zmq::socket_type::pair) {
      std::random_device rd;
      const auto name = "inproc://zrelay-monitor-" + to_hex((std::uint64_t{rd()} << 32) ^ rd()) + "-" + which;
      if (zmq_socket_monitor(watched_.handle(), name.c_str(), events) != 0) throw zmq::error_t();
      reader_.set(zmq::sockopt::linger, 0);
      // ZeroMQ's I/O thread blocks on a full monitor: never let this queue fill.
      reader_.set(zmq::sockopt::rcvhwm, 0);
      reader_.connect(name);
    }
    // The watched socket lingers in ZeroMQ after it is closed, monitor and all, and ZeroMQ's I/O
    // thread would block for good on an event for a reader that has closed, and every socket of
    // the context with it. So the monitor stops first (the watched socket is declared before this
    // and closes after it).
    ~connection_watch() { (void)zmq_socket_monitor(watched_.handle(), nullptr, 0); }
    connection_watch(const connection_watch&) = delete;
    connection_watch& operator=(const connection_watch&) = delete;

    zmq::socket_t& reader() { return reader_; }

    // Whether event `id` is the end of a connection that had completed its handshake. libzmq
    // 4.3.4 names the connection (its descriptor) in DISCONNECTED but not in HANDSHAKE_SUCCEEDED
    // (whose value is 0), so the two are matched by number: a connection whose handshake fails
    // reports one HANDSHAKE_FAILED_* and then its DISCONNECTED, a connection whose handshake
    // succeeded only its DISCONNECTED. When the events of two connections interleave, the
    // DISCONNECTED taken for the failed one may be the other's; the failed one's own, which
    // follows, then counts in its place, so the count is exact once both have ended.
    bool publisher_gone(std::uint16_t id) {
      switch (id) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
          ++established_;
          return false;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
          ++failed_;
          return false;
        case ZMQ_EVENT_DISCONNECTED:
          if (failed_ > 0) {
            --failed_;
            return false;
          }
          if (established_ == 0) return false;
          --established_;
          return true;
        default:
          return false;
      }
    }

  private:
    zmq::socket_t& watched_;
    zmq::socket_t reader_;
    std::uint64_t established_ = 0;  // handshakes completed whose connection has not ended
    std::uint64_t failed_ = 0;       // handshakes failed whose DISCONNECTED has not come
  };

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

  // Each rule a message can break, on either publisher socket. The first refusal under each is
  // logged (all of them with verbose): one kind of bad input does not hide another.
  enum class rule : std::size_t {
    frames,           // ack socket: not [topic][header][body]; publisher socket: more than max_frames
    version,          // a header of another protocol version
    header,           // a header that does not decode
    body,             // a body that does not hold `count` records
    zero_id,          // publisher id or seq 0 (ack socket)
    floor_zero,       // ack floor 0 (ack socket)
    floor_above_seq,  // ack floor above the batch's seq (ack socket)
    seq_wraps,        // seq + count past the last sequence number
    topic_seq_wraps,  // topic seq + count past the last sequence number
    overlap,          // a batch overlapping messages already accepted (ack socket)
    empty_topic,      // (ack socket)
    long_topic,       // a topic over the topic limit
    topic_seq_zero,   // (ack socket)
    too_large,        // a message over the size limit
    too_many_runs,    // more than max_refused_runs runs of those in one batch
    count_
  };
  static constexpr std::size_t rules = static_cast<std::size_t>(rule::count_);

  static wire::reason reason_of(rule r) {
    switch (r) {
      case rule::version:
        return wire::reason::unsupported_version;
      case rule::long_topic:
      case rule::too_large:
      case rule::too_many_runs:
        return wire::reason::too_large;
      default:
        return wire::reason::malformed;
    }
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
    // Shutting down, once something was sent past a full subscriber, nothing held after it is
    // acknowledged: ZeroMQ now skips that subscriber without a word, so what seems to go out may
    // not reach it (nor can the relay tell, to count it as dropped), and an ACK for the second part
    // of a split batch would cover the first.
    bool passed_a_full_one = false;
    while (!held.empty()) {
      auto& h = held.front();
      bool acked = !passed_a_full_one;
      if (!try_send(h.frames.data(), h.frames.size())) {
        const bool waited = clock::now() - held_since >= cfg.full_wait;
        if (!give_up && (cfg.on_full == full_policy::block || !waited)) return false;
        send_dropping(h.frames.data(), h.frames.size());
        relay_stats::add(stats.dropped, h.msgs);
        // Shutting down: what a full subscriber misses now is not acknowledged, so an acked
        // publisher sends it again to the relay that comes next.
        if (give_up) {
          acked = false;
          passed_a_full_one = true;
        }
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

  // Refuses `count` messages from seq on, under `broken`. `counted` is what the counters take: a
  // header that could not be read is one message, whatever count it claims.
  void nack(const zmq::message_t& route, std::uint64_t publisher, std::uint64_t seq, std::uint32_t count,
            std::uint64_t counted, rule broken, const std::string& detail) {
    wire::reply r;
    r.type = wire::kind::nack;
    r.publisher = publisher;
    r.seq = seq;
    r.count = count;
    r.why = reason_of(broken);
    r.text = detail;
    relay_stats::add(stats.nacks, counted);  // counted before the reply: whoever reads it sees it
    send_reply(route.data(), route.size(), r);
    warn_once(warned_nack[static_cast<std::size_t>(broken)], [&] {
      return "warning: refused " + std::to_string(counted) + " message(s) from publisher " + to_hex(publisher) + ": " +
             std::string(wire::reason_text(r.why)) + " (" + detail + ")";
    });
  }

  std::string too_large_text(std::size_t size) const {
    return "a message of " + std::to_string(size) + " bytes exceeds the limit of " + std::to_string(cfg.max_msg_size);
  }

  std::string topic_too_long_text(std::size_t size) const {
    return "a topic of " + std::to_string(size) + " bytes exceeds the limit of " + std::to_string(cfg.max_topic);
  }

  // Consecutive records of a batch body, all within the size limit or all over it.
  struct record_run {
    std::uint32_t first = 0, count = 0;  // its first record's index in the batch, and how many
    std::size_t from = 0, to = 0;        // its bytes in the body, length prefixes included
    std::size_t largest = 0;             // its largest record
  };

  // A run of refused records, named by its own largest one (not the batch's).
  std::string too_large_text(const record_run& r) const {
    if (r.count == 1) return too_large_text(r.largest);
    return std::to_string(r.count) + " messages of up to " + std::to_string(r.largest) + " bytes exceed the limit of " +
           std::to_string(cfg.max_msg_size);
  }

  // A batch refused whole for its number of runs of oversized records (max_refused_runs).
  std::string too_many_runs_text(const wire::batch_header& h, const std::vector<record_run>& over) const {
    std::uint64_t records = 0;
    std::size_t largest = 0;
    for (const auto& r : over) {
      records += r.count;
      largest = std::max(largest, r.largest);
    }
    return std::to_string(records) + " messages of up to " + std::to_string(largest) + " bytes exceed the limit of " +
           std::to_string(cfg.max_msg_size) + " in " + std::to_string(over.size()) + " runs (more than " +
           std::to_string(max_refused_runs) + " runs in one batch: the whole batch of " + std::to_string(h.count) +
           " messages is refused)";
  }

  // Splits a body that validate_body accepted into runs of records the relay keeps and runs it
  // refuses for their size.
  void split_runs(const zmq::message_t& body, std::uint32_t count, std::vector<record_run>& kept,
                  std::vector<record_run>& over) const {
    const auto* base = static_cast<const char*>(body.data());
    wire::record_reader rd(body.data(), body.size(), count);
    std::uint32_t i = 0;
    while (auto rec = rd.next()) {
      const auto to = static_cast<std::size_t>(rec->data() + rec->size() - base);
      const auto from = static_cast<std::size_t>(rec->data() - base) - wire::record_prefix_size;
      auto& runs = cfg.max_msg_size != 0 && rec->size() > cfg.max_msg_size ? over : kept;
      if (runs.empty() || runs.back().first + runs.back().count != i) runs.push_back({i, 0, from, to, 0});
      auto& r = runs.back();
      ++r.count;
      r.to = to;
      r.largest = std::max(r.largest, rec->size());
      ++i;
    }
  }

  // Forwards each kept run of a batch as a batch of its own, with the sequence numbers its records
  // had (so subscribers see a gap exactly where a record was refused). Only the last one moves
  // the publisher's acknowledgment on, to `end`: an ACK never covers part of a batch, so a
  // publisher's ack floor is never inside one (broken_sequence_rule). False: something is held.
  bool emit_runs(const zmq::message_t& topic, const wire::batch_header& h, const zmq::message_t& body,
                 const std::vector<record_run>& kept, std::uint64_t publisher, std::uint64_t end) {
    const auto* base = static_cast<const char*>(body.data());
    bool out = true;
    for (std::size_t k = 0; k < kept.size(); ++k) {
      const auto& seg = kept[k];
      wire::batch_header part = h;
      part.count = seg.count;
      part.seq = h.seq + seg.first;
      part.topic_seq = h.topic_seq + seg.first;
      zmq::message_t frames[3] = {zmq::message_t(topic.data(), topic.size()), zmq::message_t(wire::header_size),
                                  zmq::message_t(base + seg.from, seg.to - seg.from)};
      wire::encode_header(part, frames[1].data());
      const auto bytes = frames[0].size() + frames[1].size() + frames[2].size();
      const bool last = k + 1 == kept.size();
      out = emit(frames, 3, seg.count, bytes, last ? publisher : 0, end) && out;
    }
    return out;
  }

  // A batch on the ack socket with some records over the size limit: a NACK "too large" for
  // each run of those, the rest forwarded; or, past max_refused_runs runs, one NACK for the whole
  // batch. False: something is held.
  bool forward_without_oversized(const zmq::message_t& rid, const zmq::message_t& topic, const wire::batch_header& h,
                                 const zmq::message_t& body, publisher_state& st, std::uint64_t end) {
    std::vector<record_run> kept, over;
    split_runs(body, h.count, kept, over);
    if (over.size() > max_refused_runs) {
      refuse_batch(rid, h, st, end, rule::too_many_runs, too_many_runs_text(h, over));
      return true;
    }
    for (const auto& r : over)
      nack(rid, h.publisher, h.seq + r.first, r.count, r.count, rule::too_large, too_large_text(r));
    if (kept.empty()) {
      st.next = end;
      mark_ack(h.publisher, st);
      return true;
    }
    return emit_runs(topic, h, body, kept, h.publisher, end);
  }

  // Refuses a whole batch for good: the sequence moves past it, so the ACK after the NACK covers
  // it and the publisher may forget it.
  void refuse_batch(const zmq::message_t& rid, const wire::batch_header& h, publisher_state& st, std::uint64_t end,
                    rule broken, const std::string& detail) {
    if (reason_of(broken) == wire::reason::malformed) relay_stats::add(stats.malformed);
    nack(rid, h.publisher, h.seq, h.count, h.count, broken, detail);
    st.next = end;
    mark_ack(h.publisher, st);
  }

  // A rule a header broke, and the sentence that says how.
  struct broken_rule {
    rule which;
    std::string text;
  };

  // The numbers of a batch's records exist: seq + count and topic seq + count stay within 64 bits
  // (record i has seq + i and topic seq + i). Checked on both publisher sockets.
  static std::optional<broken_rule> numbers_wrap(const wire::batch_header& h) {
    if (h.count > UINT64_MAX - h.seq)
      return broken_rule{rule::seq_wraps, "sequence " + std::to_string(h.seq) + " + count " + std::to_string(h.count) +
                                              " runs past the last sequence number"};
    if (h.count > UINT64_MAX - h.topic_seq)
      return broken_rule{rule::topic_seq_wraps, "topic sequence " + std::to_string(h.topic_seq) + " + count " +
                                                    std::to_string(h.count) + " runs past the last sequence number"};
    return std::nullopt;
  }

  // The rules of the sequence fields on the ack socket, which decide what the relay remembers
  // and acks: nothing when the header keeps them.
  static std::optional<broken_rule> broken_sequence_rule(const wire::batch_header& h) {
    if (h.publisher == 0 || h.seq == 0)
      return broken_rule{rule::zero_id, "publisher id and sequence must not be zero on the ack socket"};
    if (h.ack_floor == 0)
      return broken_rule{rule::floor_zero, "the ack floor must be set on the ack socket (the oldest sequence not yet "
                                           "acknowledged, 1 or more)"};
    // Every record of a batch is unacknowledged until the relay acks it, and the relay acks a
    // batch whole: a floor above the batch's first sequence claims acks that were never sent.
    if (h.ack_floor > h.seq)
      return broken_rule{rule::floor_above_seq, "ack floor " + std::to_string(h.ack_floor) +
                                                    " is above the batch's sequence " + std::to_string(h.seq) +
                                                    " (a batch is unacknowledged until the relay acks it)"};
    return numbers_wrap(h);
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
      nack(rid, h.publisher, h.seq, claimed, claimed, rule::frames,
           "expected 3 frames [topic][header][body], got " + std::to_string(frames_seen - 1));
      return step::next;
    }
    auto& topic = rframes[1];
    auto& body = rframes[3];
    if (hs == wire::status::bad_version) {
      relay_stats::add(stats.msgs_in);
      nack(rid, h.publisher, h.seq, std::max<std::uint32_t>(h.count, 1), 1, rule::version,
           "this relay speaks protocol version " + std::to_string(wire::version) + ", got " +
               std::to_string(version_seen));
      return step::next;
    }
    if (hs != wire::status::ok) {
      relay_stats::add(stats.msgs_in);
      relay_stats::add(stats.malformed);
      nack(rid, h.publisher, h.seq, 1, 1, rule::header,
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
      nack(rid, h.publisher, h.seq, h.count, 1, rule::body, "body: " + std::string(wire::status_text(bs)));
      return step::next;
    }
    relay_stats::add(stats.msgs_in, h.count);
    // A header that breaks the sequence rules changes nothing the relay remembers, as one that
    // does not decode: its numbers cannot be trusted.
    if (const auto broken = broken_sequence_rule(h)) {
      relay_stats::add(stats.malformed);
      nack(rid, h.publisher, h.seq, h.count, h.count, broken->which, broken->text);
      return step::next;
    }
    const auto now = clock::now();
    auto [it, fresh] = publishers.try_emplace(h.publisher);
    auto& st = it->second;
    // A publisher we have not seen (or forgot, or met before a restart) starts where it says it
    // still needs acks, so that whatever it resends first is not taken for a duplicate; one we
    // know may have had acks from a relay that ran before this one.
    if (h.ack_floor > st.next) st.next = h.ack_floor;
    if (fresh) {
      relay_stats::add(stats.publishers);
      note("publisher " + to_hex(h.publisher) + " connected, starting at sequence " + std::to_string(st.next));
    }
    st.last_seen = now;
    if (st.route.size() != rid.size() || std::memcmp(st.route.data(), rid.data(), rid.size()) != 0)
      st.route.assign(static_cast<const char*>(rid.data()), rid.size());

    const std::uint64_t end = h.seq + h.count;  // cannot wrap: broken_sequence_rule
    if (end <= st.next) {
      relay_stats::add(stats.duplicates, h.count);
      mark_ack(h.publisher, st);
      return step::next;
    }
    if (h.seq > st.next) {
      // Something before this batch never arrived (lost in a reconnect): ask for it again, once
      // for each sequence asked for. A burst of batches behind the loss would otherwise bring a
      // burst of identical requests; after expect_repeat one more goes, in case it was lost.
      if (st.expected != st.next || now - st.expected_at >= cfg.expect_repeat) {
        wire::reply r;
        r.type = wire::kind::expect;
        r.publisher = h.publisher;
        r.seq = st.next;
        send_reply(rid.data(), rid.size(), r);
        st.expected = st.next;
        st.expected_at = now;
      }
      return step::next;
    }
    if (h.seq < st.next) {
      refuse_batch(rid, h, st, end, rule::overlap,
                   "batch overlaps messages already accepted (sequence " + std::to_string(h.seq) + ", expected " +
                       std::to_string(st.next) + ")");
      return step::next;
    }
    // What this batch would put before subscribers: refused for good, as oversized records are.
    if (topic.size() == 0) {
      refuse_batch(rid, h, st, end, rule::empty_topic, "the topic must not be empty on the ack socket");
      return step::next;
    }
    if (topic.size() > cfg.max_topic) {
      refuse_batch(rid, h, st, end, rule::long_topic, topic_too_long_text(topic.size()));
      return step::next;
    }
    if (h.topic_seq == 0) {
      refuse_batch(rid, h, st, end, rule::topic_seq_zero,
                   "the topic sequence must not be zero on the ack socket (it starts at 1 for each topic)");
      return step::next;
    }
    const bool out = too_large ? forward_without_oversized(rid, topic, h, body, st, end)
                               : emit(&rframes[1], 3, h.count, bytes, h.publisher, end);
    return out ? step::next : step::held;
  }

  // Drops `msgs` fire-and-forget messages (nobody to NACK) under `broken`: those it will not
  // forward for their size or topic count as refused, those it cannot read as one malformed
  // message.
  template <typename TextFn>
  void drop(rule broken, std::uint64_t msgs, const TextFn& detail) {
    const bool unreadable = reason_of(broken) != wire::reason::too_large;
    relay_stats::add(unreadable ? stats.malformed : stats.refused, unreadable ? 1 : msgs);
    warn_once(warned_drop_ff[static_cast<std::size_t>(broken)], [&] {
      return "warning: dropped " + std::to_string(msgs) + " message(s) from a fire-and-forget publisher: " + detail();
    });
  }

  // A fire-and-forget batch [topic][header][body]: held to the ack socket's rules of shape and
  // size, not to its sequence rules (the relay keeps no state for these publishers and acks
  // nothing). One that does not decode is dropped whole; records over the size limit are dropped
  // and the rest forwarded, as on the ack socket.
  step handle_xsub_batch(std::uint64_t bytes) {
    const auto& topic = xframes[0];
    const auto& header = xframes[1];
    const auto& body = xframes[2];
    wire::batch_header h;
    std::uint8_t version_seen = 0;
    const auto hs = wire::decode_header(header.data(), header.size(), h, &version_seen);
    if (hs != wire::status::ok) {
      relay_stats::add(stats.msgs_in);
      drop(hs == wire::status::bad_version ? rule::version : rule::header, 1, [&] {
        return hs == wire::status::bad_version ? "this relay speaks protocol version " + std::to_string(wire::version) +
                                                     ", got " + std::to_string(version_seen)
                                               : "header: " + std::string(wire::status_text(hs));
      });
      return step::next;
    }
    bool too_large = false;
    std::size_t largest = 0;
    const auto bs = wire::validate_body(body.data(), body.size(), h.count, cfg.max_msg_size, too_large, largest);
    if (bs != wire::status::ok) {
      relay_stats::add(stats.msgs_in);
      drop(rule::body, 1, [&] { return "body: " + std::string(wire::status_text(bs)); });
      return step::next;
    }
    relay_stats::add(stats.msgs_in, h.count);
    // The relay keeps no sequence state here, but the records' numbers must exist: the parts of
    // a batch split around an oversized record, and every subscriber, count from them.
    if (const auto broken = numbers_wrap(h)) {
      drop(broken->which, h.count, [&] { return broken->text; });
      return step::next;
    }
    if (topic.size() > cfg.max_topic) {
      drop(rule::long_topic, h.count, [&] { return topic_too_long_text(topic.size()); });
      return step::next;
    }
    if (!too_large) return emit(xframes.data(), 3, h.count, bytes, 0, 0) ? step::next : step::held;
    std::vector<record_run> kept, over;
    split_runs(body, h.count, kept, over);
    // As on the ack socket: past max_refused_runs, the batch goes whole (here, a batch of
    // hundreds of thousands of tiny parts for the subscribers).
    if (over.size() > max_refused_runs) {
      drop(rule::too_many_runs, h.count, [&] { return too_many_runs_text(h, over); });
      return step::next;
    }
    for (const auto& r : over) drop(rule::too_large, r.count, [&] { return too_large_text(r); });
    return emit_runs(topic, h, body, kept, 0, 0) ? step::next : step::held;
  }

  // One message from XSUB: a batch is checked (above), a plain message held to the limits, and
  // what passes forwarded as it is.
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
      drop(rule::frames, 1, [] { return "more than " + std::to_string(max_frames) + " frames"; });
      return step::next;
    }
    if (n == 3 && wire::looks_like_header(xframes[1].data(), xframes[1].size())) return handle_xsub_batch(bytes);
    relay_stats::add(stats.msgs_in);
    // A message of one frame is all topic as far as prefix matching goes: only a separate topic
    // frame is held to the limit. Its payload is what a subscriber prints: the frame itself, or
    // the frames after the topic.
    if (n >= 2 && xframes[0].size() > cfg.max_topic) {
      drop(rule::long_topic, 1, [&] { return topic_too_long_text(xframes[0].size()); });
      return step::next;
    }
    const auto payload = n == 1 ? bytes : bytes - xframes[0].size();
    if (cfg.max_msg_size != 0 && payload > cfg.max_msg_size) {
      drop(rule::too_large, 1, [&] { return too_large_text(payload); });
      return step::next;
    }
    return emit(xframes.data(), n, 1, bytes, 0, 0) ? step::next : step::held;
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

  // Publisher connections that ended, as the monitor of their socket reports them.
  void handle_disconnects(connection_watch& w, const char* socket_name) {
    auto& watch = w.reader();
    zmq::message_t event, address;
    while (watch.recv(event, zmq::recv_flags::dontwait)) {
      // [event id (16 bits) + value (32 bits)][endpoint], sent as one message
      if (!event.more() || !watch.recv(address, zmq::recv_flags::dontwait)) continue;
      std::uint16_t id = 0;
      if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
      if (!w.publisher_gone(id)) continue;
      relay_stats::add(stats.disconnects);
      if (!verbose || !log) continue;
      const auto cap = frame_limit(cfg.max_msg_size);
      note(std::string("a connection to the ") + socket_name + " socket " + address.to_string() +
           " ended: the publisher closed it, heartbeats lost it" +
           (cap != 0 ? ", or ZeroMQ cut it for a frame over " + std::to_string(cap) + " bytes" : std::string()));
    }
  }

  void run(int stop_fd) {
    // Read in every turn first, then the publishers' sockets, which a held message stops.
    enum : std::size_t { stop_item, xpub_item, xsub_watch_item, router_watch_item, xsub_item, router_item, items_n };
    zmq::pollitem_t items[items_n] = {
        {nullptr, stop_fd, ZMQ_POLLIN, 0},         {xpub.handle(), 0, ZMQ_POLLIN, 0},
        {xsub_watch.reader().handle(), 0, ZMQ_POLLIN, 0}, {router_watch.reader().handle(), 0, ZMQ_POLLIN, 0},
        {xsub.handle(), 0, ZMQ_POLLIN, 0},         {router.handle(), 0, ZMQ_POLLIN, 0},
    };
    const std::size_t first = stop_fd >= 0 ? stop_item : xpub_item;
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
        // While a message is held the publishers' sockets are not read: that is what makes block
        // back-pressure reach the publishers.
        for (auto& item : items) item.revents = 0;
        zmq::poll(items + first, (blocked ? std::size_t{xsub_item} : std::size_t{items_n}) - first, timeout);
        if (items[stop_item].revents & ZMQ_POLLIN) break;
        if (items[xpub_item].revents & ZMQ_POLLIN) handle_subscriptions();
        if (items[xsub_watch_item].revents & ZMQ_POLLIN) handle_disconnects(xsub_watch, "publisher");
        if (items[router_watch_item].revents & ZMQ_POLLIN) handle_disconnects(router_watch, "ack");
        if (retry_held()) {
          if (items[xsub_item].revents & ZMQ_POLLIN)
            for (int i = 0; i < burst && handle_xsub_message() == step::next; ++i) {}
          if (held.empty() && (items[router_item].revents & ZMQ_POLLIN))
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
      if (!held.empty())
        note("stopping: " + std::to_string(held.size()) + " message(s) held for a full subscriber; waiting up to " +
             std::to_string(cfg.linger.count()) + " ms for room");
      while (!retry_held() && clock::now() < give_up) {
        zmq::pollitem_t one[] = {items[xpub_item]};
        zmq::poll(one, 1, std::chrono::milliseconds(1));
        if (one[0].revents & ZMQ_POLLIN) handle_subscriptions();
      }
      retry_held(true);
      flush_acks();
      // Connections that ended while shutting down belong in the last counters.
      handle_disconnects(xsub_watch, "publisher");
      handle_disconnects(router_watch, "ack");
    } catch (const zmq::error_t& e) {
      if (e.num() != ETERM) throw;
    }
  }

  relay_config cfg;
  zmq::socket_t xsub, xpub, router;
  connection_watch xsub_watch, router_watch;  // after the sockets they watch: they stop first
  bound_endpoints bound;
  relay_stats stats;
  std::atomic<bool> stop{false};
  log_fn log;
  bool verbose = false;
  std::array<bool, rules> warned_nack{};    // by rule, on the ack socket
  std::array<bool, rules> warned_drop_ff{};  // by rule, from fire-and-forget publishers
  bool warned_drop = false;
  bool warned_not_subscription = false;
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
