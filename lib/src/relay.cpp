#include "zrelay/relay.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <unordered_map>
#include <vector>

#include <unistd.h>

#include "relay/fanout.hpp"
#include "relay/federation.hpp"
#include "relay/ingress.hpp"
#include "relay/journal.hpp"
#include "relay/link_wire.hpp"
#include "relay/log.hpp"
#include "relay/loop.hpp"
#include "relay/replay.hpp"
#include "relay/sessions.hpp"
#include "relay/sockets.hpp"
#include "zrelay/connection.hpp"
#include "zrelay/endpoint.hpp"
#include "zrelay/record.hpp"
#include "zrelay/text.hpp"
#include "zrelay/wire.hpp"

// The relay wires its parts (docs/ARCHITECTURE.md): sockets bound from the config, the loop that
// reads them, ingress that judges each message, sessions that decide what an acked publisher is
// told, and the fanout that hands messages to subscribers.

namespace zrelay {
namespace {

using clock = std::chrono::steady_clock;

// How many messages one socket may hand over before the loop looks at the others (zmq_proxy reads
// in bursts the same way).
constexpr int burst = 512;
// Subscriptions are few and cheap to pass on; publishers should hear them before more messages.
constexpr int subscription_burst = 100000;
constexpr std::chrono::milliseconds idle_poll{100};
constexpr std::chrono::seconds sweep_every{60};

std::string_view view(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

// The publisher id of the relay's own $SYS stream: new at every start, so a restarted relay's
// samples are a new stream to subscribers, not a gap.
std::uint64_t random_id() {
  std::random_device rd;
  std::uint64_t v = 0;
  while (v == 0) v = (std::uint64_t{rd()} << 32) ^ rd();
  return v;
}

// This machine's name, as a topic part: letters, digits, '-', '_' and '.' kept, anything else '_'.
std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return "localhost";
  std::string h(buf);
  for (auto& c : h) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.';
    if (!ok) c = '_';
  }
  return h;
}

// The wall clock as RFC 3339 in UTC with milliseconds: "2026-12-01T21:30:00.125Z".
std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(ms % 1000));
  return std::string(buf, n) + frac;
}

}  // namespace

full_policy parse_full_policy(std::string_view text) {
  if (text == "drop") return full_policy::drop;
  if (text == "block") return full_policy::block;
  throw std::invalid_argument("'" + std::string(text) + "' is not a policy (use drop or block)");
}

struct relay::impl {
  // What reading one message from a socket came to: nothing was there, go on, or it is held (a
  // subscriber is full) and reading must stop.
  enum class step { empty, next, held };
  using rule = ingress::rule;
  enum class other_warning { not_subscription, client_refused, bad_link_data, count_ };

  impl(zmq::context_t& ctx, relay_config c)
      : cfg(std::move(c)),
        limits{cfg.max_msg_size, cfg.max_topic},
        jr(open_journal(cfg.journal)),
        zap(cfg.curve.enabled() ? std::make_unique<zap_handler>(ctx, cfg.curve.allowed_keys,
                                                                [this](const zap_refusal& r) { refused_client(r); })
                                : nullptr),
        s(ctx, cfg),
        xsub_watch(ctx, s.xsub, "pub"),
        router_watch(ctx, s.router, "ack"),
        xpub_watch(ctx, s.xpub, "sub"),
        out(s.xpub, cfg.on_full, cfg.full_wait, stats, log,
            [this](std::uint64_t t, fanout::outcome o) { delivered(t, o); }) {
    bound_max_msg_size = cfg.max_msg_size;
    bound_max_topic = cfg.max_topic;
    xframes.resize(ingress::max_frames);
    xviews.resize(ingress::max_frames);
    // ZeroMQ removes a socket file in its way: a relay started twice on the same ipc paths would
    // take the running one's sockets away even though it fails itself. So nothing binds while
    // something listens on any of them.
    for (const auto* ep : {&cfg.pub_bind, &cfg.sub_bind, &cfg.ack_bind, &cfg.journal.replay_bind}) {
      if (ep == &cfg.journal.replay_bind && !jr) continue;
      if (ipc_in_use(*ep)) throw bind_error("cannot bind '" + *ep + "': Address already in use (another zrelay?)");
    }
    // Bound only now that the monitors watch: a publisher that connects at once is counted too.
    s.bind(cfg);
    start_federation(ctx);
    if (jr) {
      // Everything fire-and-forget publishers send is stored, subscribed or not: ZeroMQ's PUB
      // filters at the source, so the relay takes every topic itself (XSUB sends it to each
      // publisher that connects) and passes no subscriber's subscriptions on.
      const unsigned char everything = 1;
      (void)s.xsub.send(zmq::const_buffer(&everything, 1), zmq::send_flags::dontwait);
      replayer = std::make_unique<replay_server>(ctx, *jr, cfg, log, stats);
      s.bound.replay = replayer->endpoint();
      const auto now = clock::now();
      for (const auto& p : jr->recovered().publishers) publishers.restore(p.publisher, p.next, now);
      stats.publishers.store(publishers.size(), std::memory_order_relaxed);
      stored = jr->next_jseq();
      last_time = jr->recovered().last_time_ns;  // entry times never go back, across restarts too
      store_journal_counters();                  // what recovery found, before the first write
    }
  }

  // Links to other relays: every relay takes them from below on its ack socket; one with an
  // upstream dials it with a DEALER of its own (the link's one connection).
  void start_federation(zmq::context_t& ctx) {
    federation::settings fs;
    fs.id = sys_id;
    fs.name = host + " " + s.bound.ack;
    fs.upstream = cfg.upstream.ack;
    fs.max_prefix = cfg.max_topic;
    fs.window_msgs = cfg.upstream.window_msgs;
    fs.window_bytes = cfg.upstream.window_bytes;
    federation::io io;
    io.send = [this](std::string_view route, std::string_view f1, std::string_view f2) { link_send(route, f1, f2); };
    io.xsub = [this](bool subscribe, std::string_view prefix) {
      if (jr) return;  // with a journal, "" is subscribed already
      zmq::message_t m(prefix.size() + 1);
      auto* p = static_cast<unsigned char*>(m.data());
      p[0] = subscribe ? 1 : 0;
      std::copy(prefix.begin(), prefix.end(), p + 1);
      (void)s.xsub.send(m, zmq::send_flags::dontwait);
    };
    io.catch_up = [this](std::size_t li, std::uint64_t from) { catch_up(li, from); };
    io.live_from = [this]() -> std::uint64_t { return jr ? gone_to_links() : 0; };
    fed = std::make_unique<federation>(std::move(fs), std::move(io), stats, log);
    if (cfg.upstream.ack.empty()) return;
    uplink = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    curve_config client = cfg.curve;
    client.server_key = cfg.upstream.server_key;
    if (client.server_key.empty()) client.keys = {};  // a plain link to a plain upstream
    apply_curve_client(*uplink, client);
    set_heartbeat(*uplink, cfg.heartbeat);
    uplink->set(zmq::sockopt::linger, 0);
    uplink->set(zmq::sockopt::sndhwm, std::max(cfg.hwm, 10000));
    uplink->set(zmq::sockopt::rcvhwm, std::max(cfg.hwm, 10000));
    // Nothing queues for a connection that is not up: what is not acked is sent again when it is.
    uplink->set(zmq::sockopt::immediate, 1);
    // ZeroMQ reconnects with backoff (doubling up to 5 s); the first wait has jitter, so relays
    // cut off together do not come back in step.
    uplink->set(zmq::sockopt::reconnect_ivl, 100 + static_cast<int>(sys_id % 100));
    uplink->set(zmq::sockopt::reconnect_ivl_max, 5000);
    if (const auto cap = frame_limit(cfg.max_msg_size); cap != 0)
      uplink->set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(cap));
    uplink->connect(cfg.upstream.ack);
    s.bound.upstream = cfg.upstream.ack;
  }

  // A link frame (or two) to a downstream relay's routing id, or to the upstream (route empty).
  // One frame, f1 then f2 (DATA: its header, then its entries): a link sends no multipart message,
  // since libzmq 4.3.4 aborts (fq.cpp "!_more") when a connection ends between the parts of one
  // being read.
  void link_send(std::string_view route, std::string_view f1, std::string_view f2) {
    zmq::socket_t& sock = route.empty() ? *uplink : s.router;
    if (!route.empty()) {
      zmq::message_t rid(route.data(), route.size());
      if (!sock.send(rid, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return;
    }
    zmq::message_t m(f1.size() + f2.size());
    auto* p = static_cast<char*>(m.data());
    std::copy(f1.begin(), f1.end(), p);
    std::copy(f2.begin(), f2.end(), p + f1.size());
    (void)sock.send(m, zmq::send_flags::dontwait);  // no room: what was not acked goes again
  }

  static std::unique_ptr<journal::store> open_journal(const journal_config& j) {
    if (j.dir.empty()) return nullptr;
    journal::config c;
    c.dir = j.dir;
    c.fsync = j.fsync;
    c.max_bytes = j.max_bytes;
    c.max_age = j.max_age;
    c.segment_bytes = j.segment_bytes;
    c.faults.sync = j.test_sync;
    c.faults.synced = j.test_synced;
    return std::make_unique<journal::store>(std::move(c));
  }
  // The ZAP handler stops before the sockets close.
  ~impl() { zap.reset(); }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  // On the ZAP handler's thread. The counter has this one writer; the log is thread-safe.
  void refused_client(const zap_refusal& r) {
    relay_stats::add(stats.clients_refused);
    log.warn_once(
        warned_other, other_warning::client_refused,
        [&] {
          return "warning: refused a " + r.mechanism + " client from " + r.address +
                 (r.client_key.empty() ? "" : " with key " + r.client_key) + ": " + r.reason;
        },
        " (further ones are not logged)");
  }

  // A message the fanout handed on (or dropped for a full subscriber): its batch is safe as far as
  // this relay goes, so its acknowledgment may go. What shutting down may not have delivered is not
  // acknowledged: the publisher sends it again to the relay that comes next.
  void delivered(sessions::token t, fanout::outcome o) {
    if (o == fanout::outcome::uncertain) publishers.abandon(t);
    else publishers.commit(t);
  }

  void send_reply(std::string_view route, const wire::reply& r) {
    const auto bytes = wire::encode_reply(r);
    if (route.empty()) {  // an ACK or EXPECT for DATA from the upstream
      zmq::message_t body(bytes.data(), bytes.size());
      (void)uplink->send(body, zmq::send_flags::dontwait);
      return;
    }
    zmq::message_t rid(route.data(), route.size());
    zmq::message_t body(bytes.data(), bytes.size());
    // A publisher that is gone or not reading loses the reply; it resends on timeout and is
    // re-acked as a duplicate, so nothing depends on this send succeeding.
    if (s.router.send(rid, zmq::send_flags::sndmore | zmq::send_flags::dontwait))
      (void)s.router.send(body, zmq::send_flags::dontwait);
  }

  // EXPECT st.next: what came is past a hole (once per value, again after expect_repeat).
  void expect(std::string_view route, std::uint64_t publisher, sessions::state& st, clock::time_point now) {
    if (!publishers.expect_due(st, now, cfg.expect_repeat)) return;
    wire::reply r;
    r.type = wire::kind::expect;
    r.publisher = publisher;
    r.seq = st.next;
    send_reply(route, r);
  }

  void nack(std::string_view route, std::uint64_t publisher, const ingress::refusal& f) {
    wire::reply r;
    r.type = wire::kind::nack;
    r.publisher = publisher;
    r.seq = f.seq;
    r.count = f.count;
    r.why = ingress::reason_of(f.broken);
    r.text = ingress::describe(f, limits);
    relay_stats::add(stats.nacks, f.counted);  // counted before the reply: whoever reads it sees it
    send_reply(route, r);
    log.warn_once(warned_nack, f.broken, [&] {
      return "warning: refused " + std::to_string(f.counted) + " message(s) from publisher " + to_hex(publisher) +
             ": " + std::string(wire::reason_text(r.why)) + " (" + r.text + ")";
    });
  }

  void count(const ingress::verdict& c) {
    relay_stats::add(stats.msgs_in, c.msgs);
    if (c.malformed != 0) relay_stats::add(stats.malformed, c.malformed);
    if (c.refused != 0) relay_stats::add(stats.refused, c.refused);
  }

  // Forwards what the verdict `v` keeps of [topic][header][body] in `frames`: the message as it came, or
  // each kept run as a batch of its own, with the sequence numbers its records had (so subscribers
  // see a gap exactly where a record was refused). Only the last part carries `tag`: an ACK never
  // covers part of a batch. False: something is held.
  bool forward(zmq::message_t* frames, std::size_t n, std::uint64_t bytes, std::uint64_t tag,
               std::size_t from = federation::none) {
    if (v.whole) return send_out(frames, n, v.batch, v.msgs, bytes, tag, from);
    bool sent = true;
    for (std::size_t k = 0; k < v.kept.size(); ++k) {
      wire::batch_header part;
      zmq::message_t parts[3];
      const auto part_bytes = cut_part(frames, v.kept[k], part, parts);
      sent = send_out(parts, 3, true, part.count, part_bytes, k + 1 == v.kept.size() ? tag : 0, from) && sent;
    }
    return sent;
  }

  // A message on its way to this relay's subscribers goes to the linked relays that want it too
  // (never back to the link `from` it came by), then to the fanout.
  bool send_out(zmq::message_t* frames, std::size_t n, bool batch, std::uint64_t msgs, std::uint64_t bytes,
                std::uint64_t tag, std::size_t from) {
    to_links(frames, n, batch, msgs, from);
    return out.send(frames, n, msgs, bytes, tag);
  }

  void to_links(const zmq::message_t* frames, std::size_t n, bool batch, std::uint64_t msgs, std::size_t from,
                std::uint64_t jseq_end = 0) {
    if (!fed->linked()) return;
    std::array<std::string_view, ingress::max_frames> fv;
    for (std::size_t i = 0; i < n; ++i) fv[i] = view(frames[i]);
    fed->forward(fv.data(), n, batch, static_cast<std::uint32_t>(msgs), from, wall_ns(), jseq_end);
  }

  // A downstream relay this one had no window for is back (after this relay restarted, or forgot
  // it) and took everything below journal seq `from`: what the journal stored from there on and the
  // link's interest matches goes to it again, before anything live (the relay thread reads it here).
  // Batches only: its own come back too, and it knows them by their publishers (federation::echo);
  // a plain message carries nothing to know it by, so none is sent again (counted in link_dropped).
  // With a journal: every journal seq below this has been delivered, to the links too; what is not
  // (not stored yet, or stored and waiting for a full subscriber) goes to the links live when it is.
  std::uint64_t gone_to_links() const { return unstored.empty() ? stored : std::min(stored, unstored.front().jseq); }

  void catch_up(std::size_t li, std::uint64_t from) {
    if (!jr) return;
    const auto upto = gone_to_links();
    if (from >= upto) return;
    const auto at = jr->seek_seq(from);
    if (!at) return;
    auto c = jr->open(*at);
    std::string buf, cut;
    std::uint64_t skipped = 0, read = 0, plain = 0, scanned = 0;
    record::entry e;
    bool done = false;
    // Bounded: the window holds at most window_bytes, and what goes past it is dropped anyway.
    const std::uint64_t scan_limit = 4 * std::uint64_t{cfg.upstream.window_bytes};
    while (!done && c.next < upto && scanned < scan_limit) {
      buf.clear();
      std::uint64_t lost = 0;
      if (jr->read(c, buf, std::size_t{1} << 20, lost) == 0) break;
      skipped += lost;
      scanned += buf.size();
      const char* p = buf.data();
      std::size_t left = buf.size();
      while (left != 0 && record::decode(p, left, e) == record::status::ok) {
        p += e.size;
        left -= e.size;
        if (e.jseq >= upto) {
          done = true;
          break;
        }
        if (e.end() <= from) continue;
        if (e.jseq < from) {  // a batch holding `from`: the part from there
          cut.clear();
          record::append_from(cut, e, from);
          if (record::decode(cut.data(), cut.size(), e) != record::status::ok) continue;
        }
        // A plain message has no publisher id: the downstream could not tell its own (which the
        // journal holds too) from another's, so none is sent again; they are counted.
        if (e.what != record::kind::batch) {
          if (fed->wants(li, e.frames[0])) ++plain;
          continue;
        }
        fed->forward(e.frames, e.nframes, true, e.count, federation::none, e.time_ns, e.end(), li);
        read += e.count;
      }
    }
    const bool cut_short = c.next < upto && scanned >= scan_limit;
    if (skipped + plain != 0) relay_stats::add(stats.link_dropped, skipped + plain);
    log.line(fed->link_name(li) + ": sending again what the journal stored from journal seq " + std::to_string(from) +
             " on that it wants: " + std::to_string(read) + " message(s) in batches" +
             (plain != 0 ? "; " + std::to_string(plain) +
                               " plain message(s) not sent again (no publisher id tells the downstream's own from "
                               "others')"
                         : std::string()) +
             (skipped != 0 ? "; " + std::to_string(skipped) + " removed by retention" : std::string()) +
             (plain + skipped != 0 ? " (counted in link_dropped)" : std::string()) +
             (cut_short
                  ? "; stopped at journal seq " + std::to_string(c.next) + " after " + std::to_string(scanned >> 20) +
                        " MiB read: the rest is not sent again" + " (zsub --from-seq there gets it)"
                  : std::string()));
  }

  // Kept run `run` of the batch in `frames` as a batch of its own: its header (the records' own
  // sequence numbers) in `part`, its frames in `parts`; returns their bytes.
  std::uint64_t cut_part(const zmq::message_t* frames, const ingress::record_run& run, wire::batch_header& part,
                         zmq::message_t (&parts)[3]) const {
    part = v.header;
    part.count = run.count;
    part.seq = v.header.seq + run.first;
    part.topic_seq = v.header.topic_seq + run.first;
    const auto* base = static_cast<const char*>(frames[2].data());
    parts[0].rebuild(frames[0].data(), frames[0].size());
    parts[1].rebuild(wire::header_size);
    parts[2].rebuild(base + run.from, run.to - run.from);
    wire::encode_header(part, parts[1].data());
    return parts[0].size() + parts[1].size() + parts[2].size();
  }

  // One message from the ack socket: [routing id][topic][header][body].
  step handle_router_message() {
    auto& rid = rframes[0];
    if (!s.router.recv(rid, zmq::recv_flags::dontwait)) return step::empty;
    std::size_t n = 1;
    bool more = rid.more();
    while (more && n < rframes.size()) {
      if (!s.router.recv(rframes[n], zmq::recv_flags::dontwait)) break;
      more = rframes[n].more();
      ++n;
    }
    std::size_t frames_seen = n;
    if (more) {  // too many frames: count them while draining
      zmq::message_t junk;
      while (more && s.router.recv(junk, zmq::recv_flags::dontwait)) {
        more = junk.more();
        ++frames_seen;
      }
    }
    std::uint64_t bytes = 0;
    for (std::size_t i = 1; i < n; ++i) bytes += rframes[i].size();
    relay_stats::add(stats.bytes_in, bytes);

    std::array<std::string_view, 3> f;
    for (std::size_t i = 1; i < n; ++i) f[i - 1] = view(rframes[i]);
    const auto route = view(rid);
    // A linked relay's frames, one each: DATA, a control frame, a reply.
    if (frames_seen == 2) {
      if (link_wire::kind_of(rframes[1].data(), rframes[1].size()) == link_wire::kind::data)
        return handle_link_data(route, rframes[1]);
      if (link_frame(route, rframes[1], false)) return step::next;
    }
    ingress::judge_acked(f.data(), frames_seen - 1, limits, v);
    const auto& h = v.header;
    if (v.what == ingress::verdict::action::refuse) {
      count(v);
      nack(route, h.publisher, v.refusals.front());
      return step::next;
    }
    const auto now = clock::now();
    bool fresh = false;
    auto& st = publishers.touch(h, route, now, fresh);
    if (fresh) {
      stats.publishers.store(publishers.size(), std::memory_order_relaxed);
      log.note([&] {
        return "publisher " + to_hex(h.publisher) + " connected, starting at sequence " + std::to_string(st.next);
      });
    }
    ingress::judge_in_session(f[0], f[2], st.next, limits, v);
    count(v);  // once, with both steps' figures, before any reply
    switch (v.what) {
      case ingress::verdict::action::duplicate:
        relay_stats::add(stats.duplicates, h.count);
        publishers.ack_again(h.publisher, st);
        return step::next;
      case ingress::verdict::action::expect:
        // Something before this batch never arrived (lost in a reconnect): ask for it again.
        expect(route, h.publisher, st, now);
        return step::next;
      case ingress::verdict::action::refuse_batch:
        // Refused for good: the sequence moves past it, so the ACK after the NACK covers it and the
        // publisher may forget it.
        nack(route, h.publisher, v.refusals.front());
        publishers.commit(publishers.accept(h.publisher, st, v.end));
        return step::next;
      case ingress::verdict::action::refuse:  // judge_acked's alone; refused all the same
        nack(route, h.publisher, v.refusals.front());
        return step::next;
      case ingress::verdict::action::forward: break;
    }
    for (const auto& r : v.refusals) nack(route, h.publisher, r);
    const auto t = publishers.accept(h.publisher, st, v.end);
    if (v.forwards_nothing()) {
      publishers.commit(t);
      return step::next;
    }
    if (jr) return store(&rframes[1], 3, bytes, t, true);
    return forward(&rframes[1], 3, bytes, t) ? step::next : step::held;
  }

  // A frame alone from a linked relay (a control frame, or an ACK or EXPECT for DATA this relay
  // sent it); `route` empty for the upstream. False: not a link's (`any`: count it as malformed).
  bool link_frame(std::string_view route, const zmq::message_t& f, bool any) {
    const auto now = clock::now();
    if (link_wire::kind_of(f.data(), f.size())) {
      fed->control(route, f.data(), f.size(), now);
      return true;
    }
    wire::reply r;
    if (wire::decode_reply(f.data(), f.size(), r) == wire::status::ok &&
        (r.type == wire::kind::ack || r.type == wire::kind::expect) && (any || r.publisher == sys_id)) {
      fed->reply(route, r, now);
      return true;
    }
    if (any) relay_stats::add(stats.malformed);
    return false;
  }

  // DATA from a linked relay: its header (sender, link sequence, count, ack floor, jseq end), then
  // its entries. Taken as the ack socket takes a publisher's batch: a session of the sender's id (dedup,
  // EXPECT after a gap, the ACK once everything it holds is delivered or stored); then each entry as
  // a fire-and-forget publisher's message would be: held to this relay's limits, forwarded (never
  // back to the link it came by), journaled.
  step handle_link_data(std::string_view route, const zmq::message_t& msg) {
    link_wire::data_header h;
    std::string why;
    const auto* data = static_cast<const char*>(msg.data());
    if (!link_wire::decode_data(data, std::min(msg.size(), link_wire::data_size), h, why)) {
      relay_stats::add(stats.malformed);
      log.warn_once(warned_other, other_warning::bad_link_data,
                    [&] { return "warning: ignored DATA from a linked relay: " + why; });
      return step::next;
    }
    const auto now = clock::now();
    const auto li = fed->data_link(route, h.id, now);
    if (li == federation::none) return step::next;  // not an active link: it sends again once it is
    wire::batch_header bh;
    bh.publisher = h.id;
    bh.seq = h.seq;
    bh.count = h.count;
    bh.topic_seq = 1;
    bh.ack_floor = h.floor;
    bool fresh = false;
    auto& st = publishers.touch(bh, route, now, fresh);
    const auto end = h.seq + h.count;
    if (end <= st.next) {  // sent again (the sender counts it in link_resent): acked again
      publishers.ack_again(h.id, st);
      return step::next;
    }
    if (h.seq > st.next) {
      expect(route, h.id, st, now);
      return step::next;
    }
    const auto skip = st.next - h.seq;  // entries it had sent before (a resend that overlaps)
    const char* body = data + link_wire::data_size;
    const std::size_t body_size = msg.size() - link_wire::data_size;
    if (now - started < link_grace && !all_wanted(body, body_size, h.count, skip, li)) return step::next;
    units_used = 0;
    const char* p = body;
    std::size_t left = body_size;
    std::uint64_t msgs = 0;
    std::uint32_t i = 0;
    for (; i < h.count; ++i) {
      if (record::decode_framing(p, left, link_entry) != record::status::ok) break;
      p += link_entry.size;
      left -= link_entry.size;
      if (i < skip) continue;
      if (route.empty() && h.jseq_end != 0 && fed->echo(link_entry.frames, link_entry.nframes, link_entry.end())) {
        relay_stats::add(stats.duplicates, link_entry.count);  // its own, back in a catch-up
        continue;
      }
      if (link_entry.what == record::kind::batch && seen_before(link_entry.header)) {
        relay_stats::add(stats.duplicates, link_entry.count);
        continue;
      }
      const ingress::frames_view m{link_entry.frames, link_entry.nframes, false};
      ingress::judge_fire_and_forget(m, limits, v);
      count(v);
      msgs += v.msgs;
      for (const auto& r : v.refusals)
        log.warn_once(warned_link_drop, r.broken, [&] {
          return "warning: dropped " + std::to_string(r.counted) + " message(s) from " + fed->link_name(li) + ": " +
                 ingress::describe(r, limits) + " (give every relay of a tree the same limits)";
        });
      if (v.what == ingress::verdict::action::refuse || v.forwards_nothing()) continue;
      if (v.whole) {
        auto& u = next_unit();
        u.n = link_entry.nframes;
        u.batch = v.batch;
        u.header = v.header;
        u.msgs = v.batch ? v.header.count : 1;
        for (std::size_t k = 0; k < u.n; ++k) {
          u.frames[k].rebuild(link_entry.frames[k].data(), link_entry.frames[k].size());
          u.bytes += link_entry.frames[k].size();
        }
      } else {
        zmq::message_t whole[3];
        for (std::size_t k = 0; k < 3; ++k) whole[k].rebuild(link_entry.frames[k].data(), link_entry.frames[k].size());
        for (const auto& run : v.kept) {
          auto& u = next_unit();
          u.n = 3;
          u.batch = true;
          zmq::message_t parts[3];
          u.bytes = cut_part(whole, run, u.header, parts);
          u.msgs = u.header.count;
          for (std::size_t k = 0; k < 3; ++k) u.frames[k].move(parts[k]);
        }
      }
    }
    if (i < h.count || left != 0) {
      relay_stats::add(stats.malformed, h.count - i);
      log.warn_once(warned_other, other_warning::bad_link_data, [&] {
        return "warning: DATA from a linked relay held " + std::to_string(h.count - i) +
               " entries that do not decode (or bytes after its last): they are lost";
      });
    }
    fed->received(li, msgs, h.jseq_end);
    const auto t = publishers.accept(h.id, st, end);
    if (units_used == 0) {
      publishers.commit(t);
      return step::next;
    }
    bool sent = true;
    for (std::size_t k = 0; k < units_used; ++k) {
      auto& u = link_units[k];
      const auto tag = k + 1 == units_used ? t : 0;
      if (jr)
        append(u.frames.data(), u.n, u.batch, u.header, static_cast<std::uint32_t>(u.msgs), u.bytes, tag, false, li);
      else sent = send_out(u.frames.data(), u.n, u.batch, u.msgs, u.bytes, tag, li) && sent;
    }
    if (jr) return jr->full() ? step::held : step::next;
    return sent ? step::next : step::held;
  }

  // Just started: a relay's interest comes back as its links do (each within a few seconds). Until
  // link_grace has passed, DATA that holds a message nobody here wants yet is not taken: its sender
  // keeps it and sends it again (after its ack timeout), instead of this relay dropping it for
  // want of a subscriber that is on its way back.
  static constexpr std::chrono::seconds link_grace{10};
  bool all_wanted(const char* p, std::size_t left, std::uint32_t count, std::uint64_t skip, std::size_t li) {
    for (std::uint32_t i = 0; i < count; ++i) {
      if (record::decode_framing(p, left, link_entry) != record::status::ok) return true;  // judged as it is taken
      p += link_entry.size;
      left -= link_entry.size;
      if (i >= skip && link_entry.nframes != 0 && !fed->wanted(link_entry.frames[0], li)) return false;
    }
    return true;
  }

  // Whether a batch from a link was taken before, by its publisher's own sequence: a publisher's
  // batches come by one way, in order, so one whose records are all below the next this relay saw
  // of that publisher comes again — its sender resent what this relay (before a restart: its journal,
  // whose publishers the sessions remember) had already taken, or a catch-up overlapped what came
  // live. Remembers up to 65 536 publishers.
  bool seen_before(const wire::batch_header& b) {
    auto it = link_seen.find(b.publisher);
    std::uint64_t next = it != link_seen.end() ? it->second : 0;
    if (it == link_seen.end())
      if (const auto* st = publishers.find(b.publisher)) next = st->next;
    if (b.seq + b.count <= next) return true;
    if (it == link_seen.end()) {
      if (link_seen.size() >= 65536) link_seen.erase(link_seen.begin());
      it = link_seen.emplace(b.publisher, 0).first;
    }
    it->second = std::max(next, b.seq + b.count);
    return false;
  }

  // A message of a linked relay's DATA, ready to go on.
  struct link_unit {
    std::vector<zmq::message_t> frames = std::vector<zmq::message_t>(ingress::max_frames);
    std::size_t n = 0;
    bool batch = false;
    wire::batch_header header;
    std::uint64_t msgs = 0, bytes = 0;
  };
  link_unit& next_unit() {
    if (units_used == link_units.size()) link_units.emplace_back();
    auto& u = link_units[units_used++];
    u.n = 0;
    u.bytes = u.msgs = 0;
    return u;
  }

  // One message from the upstream: a control frame or reply alone, or DATA in two frames.
  step handle_uplink_message() {
    if (!uplink->recv(uframes[0], zmq::recv_flags::dontwait)) return step::empty;
    std::size_t n = 1;
    bool more = uframes[0].more();
    while (more && n < uframes.size()) {
      if (!uplink->recv(uframes[n], zmq::recv_flags::dontwait)) break;
      more = uframes[n].more();
      ++n;
    }
    std::uint64_t bytes = 0;
    for (std::size_t i = 0; i < n; ++i) bytes += uframes[i].size();
    relay_stats::add(stats.bytes_in, bytes);
    if (more) {
      drain(*uplink);
      relay_stats::add(stats.malformed);
      return step::next;
    }
    if (n != 1) {
      relay_stats::add(stats.malformed);
      return step::next;
    }
    if (link_wire::kind_of(uframes[0].data(), uframes[0].size()) == link_wire::kind::data) {
      // Held for a full subscriber (or the journal): not taken, not acked; the upstream sends it
      // again (an EXPECT asks for it once this relay goes on).
      if (out.holding() || (jr && jr->full())) return step::next;
      return handle_link_data({}, uframes[0]);
    }
    (void)link_frame({}, uframes[0], true);
    return step::next;
  }

  // One message from the publisher socket (fire-and-forget): checked by ingress, what passes
  // forwarded as it is, what does not dropped and counted (nobody to NACK).
  step handle_xsub_message() {
    std::size_t n = 0;
    bool more = true;
    std::uint64_t bytes = 0;
    while (more && n < xframes.size()) {
      auto& frame = xframes[n];
      const auto got = s.xsub.recv(frame, zmq::recv_flags::dontwait);
      if (!got) {
        if (n == 0) return step::empty;
        continue;  // later frames of a message are always there once the first is
      }
      more = frame.more();
      bytes += *got;
      xviews[n] = {static_cast<const char*>(frame.data()), *got};
      ++n;
    }
    relay_stats::add(stats.bytes_in, bytes);
    if (more) drain(s.xsub);
    const ingress::frames_view m{xviews.data(), n, more};
    // What a PUB socket sends, [topic][payload] within the limits, goes as it came; without a
    // journal nothing else is to be done with it.
    if (!jr && ingress::plain_within_limits(m, limits)) {
      relay_stats::add(stats.msgs_in);
      return send_out(xframes.data(), n, false, 1, bytes, 0, federation::none) ? step::next : step::held;
    }
    ingress::judge_fire_and_forget(m, limits, v);
    count(v);
    for (const auto& r : v.refusals)
      log.warn_once(warned_drop, r.broken, [&] {
        return "warning: dropped " + std::to_string(r.counted) +
               " message(s) from a fire-and-forget publisher: " + ingress::describe(r, limits);
      });
    if (v.what == ingress::verdict::action::refuse) return step::next;
    if (v.forwards_nothing()) return step::next;
    if (jr) return store(xframes.data(), n, bytes, 0, false);
    return forward(xframes.data(), n, bytes, 0) ? step::next : step::held;
  }

  // --- the journal ---

  // A message appended to the journal and not yet durable: it goes to subscribers, and its token
  // is committed, once the journal says it is stored; if the journal fails it is NACKed (acked) or
  // forwarded without a journal sequence (fire-and-forget).
  struct unstored_entry {
    std::uint64_t jseq = 0, end = 0;
    sessions::token token = 0;
    std::uint64_t batch_seq = 0;  // a part of a split batch: the seq of the batch it was cut from
    bool batch = false, acked = false, committed = false;
    std::size_t from = federation::none;  // the link it came by
    wire::batch_header header;
    std::uint64_t bytes = 0;
    std::size_t n = 0;
    std::array<zmq::message_t, 3> frames;
    std::vector<zmq::message_t> more;  // a plain message of more than 3 frames
    zmq::message_t* data() { return more.empty() ? frames.data() : more.data(); }
  };

  std::uint64_t wall_ns() {
    const auto now = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count());
    last_time = std::max(last_time, now);  // never backwards: --since and retention by age rely on it
    return last_time;
  }

  void append(zmq::message_t* frames, std::size_t n, bool batch, const wire::batch_header& h, std::uint32_t count,
              std::uint64_t bytes, sessions::token t, bool acked, std::size_t from = federation::none) {
    std::array<std::string_view, ingress::max_frames> fv;
    for (std::size_t i = 0; i < n; ++i) fv[i] = view(frames[i]);
    unstored_entry u;
    u.jseq = jr->append(batch ? record::kind::batch : record::kind::plain, count, fv.data(), n, wall_ns());
    u.end = u.jseq + count;
    u.token = t;
    u.batch = batch;
    u.acked = acked;
    u.from = from;
    u.header = h;
    u.bytes = bytes;
    u.n = n;
    if (n <= u.frames.size()) {
      for (std::size_t i = 0; i < n; ++i) u.frames[i].move(frames[i]);
    } else {
      u.more.resize(n);
      for (std::size_t i = 0; i < n; ++i) u.more[i].move(frames[i]);
    }
    unstored.push_back(std::move(u));
  }

  // What the verdict `v` keeps of the message, appended to the journal: the message as it came, or
  // each kept run as a batch of its own (only the last carries the token, as in forward()).
  step store(zmq::message_t* frames, std::size_t n, std::uint64_t bytes, sessions::token t, bool acked) {
    if (v.whole) {
      append(frames, n, v.batch, v.header, v.batch ? v.header.count : 1, bytes, t, acked);
    } else {
      // A resend of a split batch whose first parts were stored before the journal failed: those
      // parts are not stored again.
      std::uint64_t stored_to = 0;
      if (acked) {
        const auto it = partly_stored.find(v.header.publisher);
        if (it != partly_stored.end()) {
          if (it->second.first == v.header.seq) stored_to = it->second.second;
          partly_stored.erase(it);
        }
      }
      for (std::size_t k = 0; k < v.kept.size(); ++k) {
        wire::batch_header part;
        zmq::message_t parts[3];
        const auto part_bytes = cut_part(frames, v.kept[k], part, parts);
        if (part.seq + part.count <= stored_to) continue;  // never the last part: it carries the token
        append(parts, 3, true, part, part.count, part_bytes, k + 1 == v.kept.size() ? t : 0, acked);
        unstored.back().batch_seq = v.header.seq;
      }
    }
    return jr->full() ? step::held : step::next;
  }

  // Hands an entry to the subscribers: a batch with the version-2 header that carries its journal
  // sequence (or, without one, as it came); a plain message untouched.
  bool deliver(unstored_entry& u, bool with_jseq) {
    to_links(u.data(), u.n, u.batch, u.end - u.jseq, u.from, with_jseq ? u.end : 0);
    if (u.batch && with_jseq) {
      zmq::message_t h2(wire::header_v2_size);
      wire::encode_delivered_header(u.header, u.jseq, h2.data());
      u.frames[1].move(h2);
    }
    return out.send(u.data(), u.n, u.end - u.jseq, u.bytes, 0);
  }

  // Everything below `upto` is stored: its acks may go, and it goes to subscribers (in order, while
  // the fanout takes it).
  void release(std::uint64_t upto) {
    for (auto& u : unstored) {
      if (u.end > upto) break;
      if (u.committed) continue;
      u.committed = true;
      relay_stats::add(stats.journaled, u.end - u.jseq);
      if (u.token != 0) publishers.commit(u.token);
      // A part of a split batch before its last (only the last carries the token): if the journal
      // fails before the rest is stored, the publisher's resend must not store this part again.
      if (u.acked && u.token == 0 && u.batch)
        partly_stored[u.header.publisher] = {u.batch_seq, u.header.seq + u.header.count};
      else if (u.acked && u.token != 0) partly_stored.erase(u.header.publisher);
    }
    stored = std::max(stored, upto);
    while (!unstored.empty() && unstored.front().committed && !out.holding()) {
      (void)deliver(unstored.front(), true);
      unstored.pop_front();
    }
  }

  // The journal could not store the entries from `f.from` on: acked publishers get a NACK
  // "unavailable" and keep them (their sessions go back, so the resend is taken again); fire-and-forget
  // ones go to subscribers without a journal sequence. Then the journal goes on at f.from, so the
  // sequence stays dense: no subscriber has seen the numbers of what was not stored.
  void journal_failed(const journal::progress::failure& f) {
    std::uint64_t nacked = 0, forwarded = 0;
    // What was stored goes first, in order.
    while (!unstored.empty() && unstored.front().committed) {
      (void)deliver(unstored.front(), true);
      unstored.pop_front();
    }
    for (auto& u : unstored) {
      if (u.acked) {
        wire::reply reply;
        reply.type = wire::kind::nack;
        reply.publisher = u.header.publisher;
        reply.seq = u.header.seq;
        reply.count = u.header.count;
        reply.why = wire::reason::unavailable;
        reply.text = "journal unavailable: " + f.why;
        if (const auto* st = publishers.find(u.header.publisher)) send_reply(st->route, reply);
        if (u.token != 0) publishers.abandon(u.token);
        nacked += u.header.count;
      } else {
        (void)deliver(u, false);
        forwarded += u.end - u.jseq;
        if (u.token != 0) publishers.commit(u.token);  // a linked relay's DATA: taken, unstored
      }
    }
    unstored.clear();
    relay_stats::add(stats.unjournaled, forwarded);
    jr->rewind(f.from);
    if (!journal_down) {
      journal_down = true;
      log.line([&] {
        return "warning: journal unavailable (" + f.why + "): from journal seq " + std::to_string(f.from) + ", " +
               std::to_string(nacked) +
               " acked message(s) refused with NACK 'unavailable' (their publishers send them "
               "again), " +
               std::to_string(forwarded) +
               " fire-and-forget message(s) forwarded unstored; trying again with what comes next";
      }());
    }
  }

  void store_journal_counters() {
    const auto c = jr->counters();
    stats.journal_syncs.store(c.syncs, std::memory_order_relaxed);
    stats.journal_errors.store(c.failures, std::memory_order_relaxed);
    stats.journal_bytes_written.store(c.bytes_written, std::memory_order_relaxed);
    stats.journal_segments_removed.store(c.segments_removed, std::memory_order_relaxed);
    stats.journal_bytes.store(c.bytes, std::memory_order_relaxed);
    stats.journal_segments.store(c.segments, std::memory_order_relaxed);
    stats.journal_messages.store(c.messages, std::memory_order_relaxed);
  }

  void handle_journal() {
    const auto p = jr->poll();
    store_journal_counters();
    const auto upto = cfg.journal.fsync ? p.durable : p.written;
    if (upto > stored && journal_down && !p.failed) {
      journal_down = false;
      log.line("journal available again at journal seq " + std::to_string(stored));
    }
    release(upto);
    if (p.failed) journal_failed(*p.failed);
  }

  // Reads the rest of a message that is being refused.
  static void drain(zmq::socket_t& sock) {
    zmq::message_t junk;
    bool more = true;
    while (more) {
      if (!sock.recv(junk, zmq::recv_flags::dontwait)) return;
      more = junk.more();
    }
  }

  // Subscriptions travel from XPUB up to XSUB, so that publishers filter at the source. ZeroMQ has
  // applied each to its connection already, and hands over a topic's first subscription and its
  // last unsubscription (of all subscribers together).
  void handle_subscriptions() {
    zmq::message_t m;
    // All that are waiting, within reason, before the next messages.
    for (int i = 0; i < subscription_burst; ++i) {
      if (!s.xpub.recv(m, zmq::recv_flags::dontwait)) return;
      const auto* p = static_cast<const unsigned char*>(m.data());
      if (m.size() == 0 || p[0] > 1) {
        // Not a subscription (ZeroMQ passes each frame on by itself): nothing goes upstream.
        relay_stats::add(stats.malformed);
        log.warn_once(warned_other, other_warning::not_subscription, [] {
          return std::string("warning: ignored a message from a subscriber that is not a subscription");
        });
        continue;
      }
      const bool subscribe = p[0] == 1;
      relay_stats::add(subscribe ? stats.subscriptions : stats.unsubscriptions);
      log.note([&] {
        return std::string(subscribe ? "subscribe '" : "unsubscribe '") + printable(p + 1, m.size() - 1) + "'";
      });
      // On to the publishers (XSUB) and the linked relays.
      fed->local(subscribe, std::string_view(reinterpret_cast<const char*>(p + 1), m.size() - 1));
    }
  }

  // Shutting down: what was appended gets until `until` to be stored (and then acked and delivered).
  // What is not stored by then is not acked: its publishers send it again to the next relay.
  void finish_journal(clock::time_point until) {
    jr->flush();
    while (!unstored.empty() && clock::now() < until) {
      zmq::pollitem_t one[] = {{nullptr, jr->notify_fd(), ZMQ_POLLIN, 0}};
      zmq::poll(one, 1, std::chrono::milliseconds(10));
      if (one[0].revents & ZMQ_POLLIN) handle_journal();
      (void)out.retry();
    }
  }

  // Publisher connections that ended, as the monitor of their socket reports them; `open` gets the
  // connections open now.
  void handle_disconnects(connection_watch& w, const char* socket_name, std::atomic<std::uint64_t>& open) {
    const auto gone = w.read_events([&](const std::string& address) {
      log.note([&] {
        const auto cap = frame_limit(bound_max_msg_size);  // the sockets' limit, set at start
        return std::string("a connection to the ") + socket_name + " socket " + address +
               " ended: the publisher closed it, heartbeats lost it" +
               (cap != 0 ? ", or ZeroMQ cut it for a frame over " + std::to_string(cap) + " bytes" : std::string());
      });
    });
    if (gone != 0) relay_stats::add(stats.disconnects, gone);
    open.store(w.connected(), std::memory_order_relaxed);
  }

  // Subscriber connections come and go (nothing is logged or counted as a disconnect).
  void handle_subscriber_events() {
    (void)xpub_watch.read_events([](const std::string&) {});
    stats.subscriber_connections.store(xpub_watch.connected(), std::memory_order_relaxed);
  }

  // The levels the metrics show, once per turn: relaxed stores of what the relay thread knows.
  void store_gauges() {
    stats.held.store(out.held(), std::memory_order_relaxed);
    if (!jr) return;
    stats.journal_pending.store(jr->next_jseq() - std::min(stored, jr->next_jseq()), std::memory_order_relaxed);
    stats.journal_unavailable.store(journal_down ? 1 : 0, std::memory_order_relaxed);
  }

  void flush_acks() {
    publishers.flush_acks([&](std::string_view route, const wire::reply& r) {
      send_reply(route, r);
      relay_stats::add(stats.acks);
    });
  }

  std::vector<relay::not_applied> reconfigure(const relay_config& n) {
    std::vector<relay::not_applied> refused;
    const auto raise_needs_restart = [&](const char* key, std::size_t bound) {
      refused.push_back({key, "raising it above " + std::to_string(bound) +
                                  " bytes (its value at start) needs a restart: ZeroMQ's frame limits on the sockets "
                                  "were set then"});
    };
    if (n.max_msg_size != cfg.max_msg_size) {
      if (bound_max_msg_size == 0 || (n.max_msg_size != 0 && n.max_msg_size <= bound_max_msg_size))
        cfg.max_msg_size = limits.max_msg_size = n.max_msg_size;
      else raise_needs_restart("max-msg-size", bound_max_msg_size);
    }
    if (n.max_topic != cfg.max_topic) {
      if (n.max_topic <= bound_max_topic && n.max_topic >= min_max_topic)
        cfg.max_topic = limits.max_topic = n.max_topic;
      else raise_needs_restart("max-topic", bound_max_topic);
    }
    if (n.sys_interval != cfg.sys_interval) {
      cfg.sys_interval = n.sys_interval;
      next_sys = clock::now() + cfg.sys_interval;
    }
    cfg.on_full = n.on_full;
    cfg.full_wait = n.full_wait;
    out.set_policy(cfg.on_full, cfg.full_wait);
    if (n.spin != cfg.spin) {
      cfg.spin = n.spin;
      loop.set_spin(cfg.spin);
    }
    if (jr && (n.journal.max_bytes != cfg.journal.max_bytes || n.journal.max_age != cfg.journal.max_age)) {
      cfg.journal.max_bytes = n.journal.max_bytes;
      cfg.journal.max_age = n.journal.max_age;
      jr->set_retention(cfg.journal.max_bytes, cfg.journal.max_age);
    }
    if (n.curve.allowed_keys != cfg.curve.allowed_keys) {
      if (zap && !n.curve.allowed_keys.empty()) {
        zap->set_allowed(n.curve.allowed_keys);
        cfg.curve.allowed_keys = n.curve.allowed_keys;
      } else {
        refused.push_back(
            {"allow-keys", zap ? "an empty allowlist would let nobody in" : "turning CURVE on needs a restart"});
      }
    }
    return refused;
  }

  // The loop's table: read in every turn first, then the publishers' sockets, which a held message
  // stops.
  void register_sockets(int stop_fd) {
    if (stop_fd >= 0) loop.add(stop_fd, [this] { stop.store(true, std::memory_order_relaxed); });
    loop.add(s.xpub, [this] { handle_subscriptions(); });
    if (jr) loop.add(jr->notify_fd(), [this] { handle_journal(); });
    loop.add(xsub_watch.reader(), [this] { handle_disconnects(xsub_watch, "publisher", stats.publisher_connections); });
    loop.add(router_watch.reader(), [this] { handle_disconnects(router_watch, "ack", stats.ack_connections); });
    loop.add(xpub_watch.reader(), [this] { handle_subscriber_events(); });
    for (auto& w : watched) {
      if (w.socket) loop.add(*w.socket, std::move(w.fn));
      else loop.add(w.fd, std::move(w.fn));
    }
    watched.clear();
    loop.add(
        s.xsub,
        [this] {
          for (int i = 0; i < burst && handle_xsub_message() == step::next; ++i) {}
        },
        reactor::when_held::wait);
    loop.add(
        s.router,
        [this] {
          for (int i = 0; i < burst && handle_router_message() == step::next; ++i) {}
        },
        reactor::when_held::wait);
    // The upstream is read in every turn: its ACKs are what frees the window to it (a full one
    // stops this relay's publishers). Its DATA while something is held is left unacked (below).
    if (uplink)
      loop.add(*uplink, [this] {
        for (int i = 0; i < burst && handle_uplink_message() == step::next; ++i) {}
      });
  }

  // What recovery found and did, once there is a log to say it in.
  void report_journal() {
    const auto& r = jr->recovered();
    for (const auto& n : r.notes) log.line("warning: " + n);
    log.line("journal " + cfg.journal.dir + ": " + std::to_string(r.messages) + " message(s) retained in " +
             std::to_string(r.segments) + " segment(s)" +
             (r.messages != 0
                  ? ", journal seqs " + std::to_string(r.oldest_jseq) + "-" + std::to_string(r.next_jseq - 1)
                  : std::string()) +
             "; " + std::to_string(r.publishers.size()) + " acked publisher(s) remembered; fsync " +
             (cfg.journal.fsync ? "on" : "off"));
  }

  std::string status_json() const {
    std::string j = "{\"relay\":\"" + to_hex(sys_id) + "\",\"host\":";
    append_json_string(j, host);
    j += ",\"pid\":" + std::to_string(::getpid()) + ",\"time\":\"" + utc_now() + "\",\"uptime_ms\":" +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started).count()) + ",";
    j += format_counters_json(stats.snapshot()).substr(1);
    j.pop_back();
    const std::lock_guard<std::mutex> lock(links_mutex);
    return j + ",\"links\":" + links_json + "}";
  }

  // One $SYS sample: a batch of one record from the relay's own publisher id, with the next number
  // of its dense sequence, as zsub decodes any delivery. Not journaled (it is no one's data, and
  // would take journal sequences from what is) and sent outside the fanout's queue: a subscriber
  // whose queue is full misses it (and sees the gap), under either full policy.
  void publish_sys() {
    wire::batch_header h;
    h.count = 1;
    h.publisher = sys_id;
    h.seq = h.topic_seq = sys_seq++;
    std::string body;
    wire::append_record(body, status_json());
    zmq::message_t f[3];
    f[0].rebuild(sys_topic.data(), sys_topic.size());
    f[1].rebuild(wire::header_size);
    wire::encode_header(h, f[1].data());
    f[2].rebuild(body.data(), body.size());
    if (!out.send_aside(f, 3))
      log.note([&] { return "a full subscriber missed $SYS sample " + std::to_string(h.seq); });
  }

  void run(int stop_fd) {
    if (jr) report_journal();
    register_sockets(stop_fd);
    loop.set_spin(cfg.spin);
    const auto may_read = [this] {
      return !stop.load(std::memory_order_relaxed) && out.retry() && !fed->upstream_full();
    };
    next_tick = clock::now() + tick_every;
    auto next_sweep = clock::now() + sweep_every;
    next_sys = clock::now() + cfg.sys_interval;
    try {
      while (!stop.load(std::memory_order_relaxed)) {
        // The upstream's window full while it is there: back-pressure, as a full window stops zpub.
        const bool blocked = out.holding() || (jr && jr->full()) || fed->upstream_full();
        // Held: the loop only looks at the other sockets; the fanout's retry waits for room below.
        auto timeout = blocked && out.holding() ? std::chrono::milliseconds(0)
                       : blocked                ? std::chrono::milliseconds(1)
                                                : idle_poll;
        const bool sys = cfg.sys_interval.count() > 0;
        if (!blocked && (tick || sys)) {  // wake for the next stats tick and $SYS sample
          const auto now = clock::now();
          const auto until = [&](clock::time_point at) {
            return std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(at - now),
                              std::chrono::milliseconds(0), timeout);
          };
          if (tick) timeout = until(next_tick);
          if (sys) timeout = until(next_sys);
        }
        loop.run_once(timeout, blocked, may_read);
        if (stop.load(std::memory_order_relaxed)) break;
        if (out.holding()) (void)out.retry(true);
        if (jr) {
          if (!out.holding()) release(stored);  // what the fanout could not take before
          jr->flush();
        }
        flush_acks();
        store_gauges();
        const auto now = clock::now();
        // The ack socket (downstream links' frames) is not read while blocked: their silence is ours.
        fed->turn(now, !(out.holding() || (jr && jr->full()) || fed->upstream_full()));
        if (now >= next_links_text) {
          const std::lock_guard<std::mutex> lock(links_mutex);
          links_text = fed->describe();
          links_json = fed->json();
          next_links_text = now + std::chrono::milliseconds(100);
        }
        last_turn_ns.store(now.time_since_epoch().count(), std::memory_order_relaxed);  // for /healthz
        if (tick && now >= next_tick) {
          tick(stats.snapshot());
          next_tick = now + tick_every;
        }
        if (cfg.sys_interval.count() > 0 && now >= next_sys) {
          publish_sys();
          next_sys = now + cfg.sys_interval;
        }
        if (now >= next_sweep) {
          publishers.sweep(now, cfg.publisher_idle);
          stats.publishers.store(publishers.size(), std::memory_order_relaxed);
          next_sweep = now + sweep_every;
        }
      }
      // Shutdown: give what is held until linger to go out, then send it to whoever has room and
      // count it as dropped.
      const auto give_up = clock::now() + cfg.linger;
      if (out.holding())
        log.note([&] {
          return "stopping: " + std::to_string(out.held()) + " message(s) held for a full subscriber; waiting up to " +
                 std::to_string(cfg.linger.count()) + " ms for room";
        });
      while (!out.retry() && clock::now() < give_up) {
        zmq::pollitem_t one[] = {{s.xpub.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(one, 1, std::chrono::milliseconds(1));
        if (one[0].revents & ZMQ_POLLIN) handle_subscriptions();
      }
      if (jr) finish_journal(give_up);
      out.give_up();
      flush_acks();
      fed->turn(clock::now());  // what was queued for the links goes, then each hears the link end
      fed->stop();
      {
        const std::lock_guard<std::mutex> lock(links_mutex);
        links_text = fed->describe();
        links_json = fed->json();
      }
      // Connections that ended while shutting down belong in the last counters.
      handle_disconnects(xsub_watch, "publisher", stats.publisher_connections);
      handle_disconnects(router_watch, "ack", stats.ack_connections);
      handle_subscriber_events();
      store_gauges();
    } catch (const zmq::error_t& e) {
      if (e.num() != ETERM) throw;
    }
  }

  relay_config cfg;
  ingress::limits limits;
  std::unique_ptr<journal::store> jr;  // none in memory mode; opened before any socket binds
  std::deque<unstored_entry> unstored;
  std::uint64_t stored = 1;  // every journal sequence below it is stored
  std::uint64_t last_time = 0;
  bool journal_down = false;
  // Per acked publisher: a split batch (its seq) whose parts up to a sequence are stored, its last not yet.
  std::unordered_map<std::uint64_t, std::pair<std::uint64_t, std::uint64_t>> partly_stored;
  relay_stats stats;
  relay_log log;
  detail::once_per_kind<rule> warned_nack;       // by rule, on the ack socket
  detail::once_per_kind<rule> warned_drop;       // by rule, from fire-and-forget publishers
  detail::once_per_kind<rule> warned_link_drop;  // by rule, from linked relays
  detail::once_per_kind<other_warning> warned_other;
  // CURVE: the ZAP handler answers before the first client can connect (built before the sockets
  // bind), and stops before they close (~impl).
  std::unique_ptr<zap_handler> zap;
  relay_sockets s;
  connection_watch xsub_watch, router_watch, xpub_watch;  // after the sockets they watch: they stop first
  std::unique_ptr<replay_server> replayer;                // with a journal; stops before the journal closes
  sessions publishers;
  std::unique_ptr<federation> fed;        // links to other relays; built once the sockets are bound
  std::unique_ptr<zmq::socket_t> uplink;  // DEALER to the upstream's ack socket (with --upstream)
  std::array<zmq::message_t, 3> uframes;
  std::vector<link_unit> link_units;
  std::unordered_map<std::uint64_t, std::uint64_t> link_seen;  // publisher -> the seq after its last batch from a link
  std::size_t units_used = 0;
  record::entry link_entry;
  mutable std::mutex links_mutex;  // the links' figures, for other threads
  std::string links_text, links_json = "[]";
  clock::time_point next_links_text{};
  fanout out;
  reactor loop;
  ingress::verdict v;  // the message being handled, reused: its vectors keep their room
  std::array<zmq::message_t, 4> rframes;
  std::vector<zmq::message_t> xframes;
  std::vector<std::string_view> xviews;
  std::atomic<bool> stop{false};
  // When the relay thread last completed a turn of its loop (steady clock, ns): /healthz's sign of life.
  std::atomic<clock::rep> last_turn_ns{clock::now().time_since_epoch().count()};
  tick_fn tick;
  std::chrono::milliseconds tick_every{1000};
  clock::time_point next_tick{};
  // What the sockets were bound with: a limit may go up to these while running, not past them.
  std::size_t bound_max_msg_size = 0, bound_max_topic = 0;
  // $SYS: the relay's own stream (publisher id, sequence), published from the loop.
  const std::uint64_t sys_id = random_id();
  const std::string host = host_name();
  const std::string sys_topic = "$SYS." + host + ".stats";
  const clock::time_point started = clock::now();
  std::uint64_t sys_seq = 1;
  clock::time_point next_sys{};
  struct watched_reader {
    zmq::socket_t* socket = nullptr;
    int fd = -1;
    std::function<void()> fn;
  };
  std::vector<watched_reader> watched;  // relay::watch(), until run() registers them
};

relay::relay(zmq::context_t& ctx, relay_config cfg) : impl_(std::make_unique<impl>(ctx, std::move(cfg))) {}
relay::~relay() = default;

const bound_endpoints& relay::endpoints() const { return impl_->s.bound; }

void relay::set_logger(log_fn log, bool verbose) { impl_->log.set(std::move(log), verbose); }

void relay::on_tick(std::chrono::milliseconds every, tick_fn fn) {
  impl_->tick_every = every;
  impl_->tick = every.count() > 0 ? std::move(fn) : tick_fn();
  impl_->next_tick = clock::now() + every;
}

void relay::watch(int fd, std::function<void()> fn) { impl_->watched.push_back({nullptr, fd, std::move(fn)}); }

void relay::watch(zmq::socket_t& socket, std::function<void()> fn) {
  impl_->watched.push_back({&socket, -1, std::move(fn)});
}

std::vector<relay::not_applied> relay::reconfigure(const relay_config& next) { return impl_->reconfigure(next); }

void relay::set_verbose(bool verbose) { impl_->log.set_verbose(verbose); }

void relay::run(int stop_fd) { impl_->run(stop_fd); }

void relay::request_stop() { impl_->stop.store(true, std::memory_order_relaxed); }

relay_counters relay::counters() const {
  auto c = impl_->stats.snapshot();
  const auto last = clock::time_point(clock::duration(impl_->last_turn_ns.load(std::memory_order_relaxed)));
  const auto age = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - last).count();
  c.live.loop_age_ms = age > 0 ? static_cast<std::uint64_t>(age) : 0;
  c.live.stopping = impl_->stop.load(std::memory_order_relaxed);
  return c;
}

std::string relay::status_json() const { return impl_->status_json(); }

const std::string& relay::sys_topic() const { return impl_->sys_topic; }

std::string relay::links_text() const {
  const std::lock_guard<std::mutex> lock(impl_->links_mutex);
  return impl_->links_text;
}

}  // namespace zrelay
