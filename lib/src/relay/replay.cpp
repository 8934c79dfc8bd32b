#include "relay/replay.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "relay/sockets.hpp"
#include "replay_protocol.hpp"
#include "zrelay/connection.hpp"
#include "zrelay/record.hpp"
#include "zrelay/text.hpp"

namespace zrelay {
namespace {

namespace rp = replay_protocol;
using clock = std::chrono::steady_clock;

// Requests read before the sessions get their turn again.
constexpr int request_burst = 256;
// How often a session whose peer's queue is full is tried again.
constexpr std::chrono::milliseconds retry_full{10};
constexpr std::chrono::milliseconds sweep_every{1000};

// ZeroMQ prefix semantics: the first frame starts with a prefix (none: every topic). A plain
// message of one frame is matched on that frame, as the XPUB does.
bool matches(const std::vector<std::string>& prefixes, std::string_view first_frame) {
  if (prefixes.empty()) return true;
  for (const auto& p : prefixes)
    if (first_frame.size() >= p.size() && first_frame.compare(0, p.size(), p) == 0) return true;
  return false;
}

// A zmq::message_t that owns a std::string's bytes without copying them.
zmq::message_t take(std::string&& s) {
  auto* owned = new std::string(std::move(s));
  return zmq::message_t(
      &(*owned)[0], owned->size(), [](void*, void* hint) { delete static_cast<std::string*>(hint); }, owned);
}

zmq::message_t copy(const std::string& s) { return zmq::message_t(s.data(), s.size()); }

// A peer for the log: its routing id in hex.
std::string peer(std::string_view route) {
  static const char digits[] = "0123456789abcdef";
  std::string s = "peer ";
  for (const unsigned char c : route) {
    s += digits[c >> 4];
    s += digits[c & 15];
  }
  return s;
}

}  // namespace

struct replay_server::impl {
  enum class warning { bad_request, too_many, damaged, count_ };

  // What waits to go to one peer, in order: START, at most one DATA, LIVE.
  struct outgoing {
    zmq::message_t head;
    std::optional<zmq::message_t> body;  // DATA only
    std::uint64_t msgs = 0;              // messages in a DATA
  };

  struct session {
    std::string id;
    std::vector<std::string> prefixes;  // empty: every topic
    std::uint64_t want = 1;             // the next journal seq this session needs
    journal::store::cursor cur;
    bool open = false;
    std::vector<journal::position> latest;  // last-per-topic: the entries still to send
    std::size_t latest_next = 0;
    std::uint64_t live_at = 0;  // LIVE once `want` reaches it
    bool live_sent = false;
    std::uint32_t credit = 0;
    std::uint64_t skipped = 0;   // messages passed over, for the next DATA
    std::uint64_t dry_head = 0;  // a read at this head found nothing: wait for the head to move
    clock::time_point heard;
    std::deque<outgoing> out;
  };

  impl(zmq::context_t& ctx, const journal::store& st, const relay_config& cfg, relay_log& lg, relay_stats& sts,
       replay_limits lim)
      : store(st), log(lg), stats(sts), limits(lim), max_topic(cfg.max_topic), router(ctx, zmq::socket_type::router) {
    apply_curve_server(router, cfg.curve);
    set_heartbeat(router, cfg.heartbeat);
    router.set(zmq::sockopt::linger, 0);
    // A full peer's queue is reported (EAGAIN), not dropped silently, and a peer that is gone
    // (EHOSTUNREACH) ends its session.
    router.set(zmq::sockopt::router_mandatory, 1);
    // A peer may have its credit's worth of DATA queued, and a little control: no more.
    router.set(zmq::sockopt::sndhwm, static_cast<int>(limits.max_credit) + 4);
    // Prefixes are topics: a frame longer than the longest topic and some is no request (ZeroMQ
    // cuts the connection at its header), so a session's prefixes take at most about 1024 topics.
    router.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(std::max(max_topic, min_max_topic) + 64));
    bound = bind_socket(router, cfg.journal.replay_bind);
    stop_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    thread = std::thread([this] { run(); });
  }

  ~impl() {
    const std::uint64_t one = 1;
    while (::write(stop_fd, &one, sizeof one) < 0 && errno == EINTR) {}
    thread.join();
    ::close(stop_fd);
  }

  void run() {
    try {
      loop();
    } catch (const zmq::error_t& e) {
      // The context was shut down under the relay: nothing to serve any more.
      if (e.num() != ETERM) log.line(std::string("replay: error: ") + e.what() + "; replay stopped");
    } catch (const std::exception& e) {
      log.line(std::string("replay: error: ") + e.what() + "; replay stopped");
    }
  }

  void loop() {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, store.head_fd(), ZMQ_POLLIN, 0},
                               {nullptr, stop_fd, ZMQ_POLLIN, 0}};
    bool ready = false, full = false;
    const auto sweep = std::min<std::chrono::milliseconds>(sweep_every, limits.idle);
    auto last_sweep = clock::now();
    for (;;) {
      const auto wait = ready ? std::chrono::milliseconds(0) : full ? retry_full : sweep;
      zmq::poll(items, 3, wait);
      if (items[2].revents & ZMQ_POLLIN) return;
      // Cleared before the head is read: a move after this makes the descriptor readable again.
      if (items[1].revents & ZMQ_POLLIN) store.clear_head_fd();
      if (items[0].revents & ZMQ_POLLIN) read_requests();
      const auto head = store.range().head;
      ready = full = false;
      for (auto it = sessions.begin(); it != sessions.end();) {
        if (!turn(it->second, head, ready, full)) it = sessions.erase(it);
        else ++it;
      }
      const auto now = clock::now();
      if (now - last_sweep >= sweep) {
        last_sweep = now;
        for (auto it = sessions.begin(); it != sessions.end();) {
          if (now - it->second.heard > limits.idle) {
            log.note([&] { return "replay: forgot the silent session of " + peer(it->first); });
            it = sessions.erase(it);
          } else {
            ++it;
          }
        }
      }
    }
  }

  // --- requests ---

  void read_requests() {
    for (int i = 0; i < request_burst; ++i) {
      zmq::message_t id;
      if (!router.recv(id, zmq::recv_flags::dontwait)) return;
      // The frames after the routing id; beyond what a REPLAY may hold they are read and counted only.
      frames.clear();
      std::size_t count = 0;
      for (bool more = id.more(); more;) {
        zmq::message_t f;
        (void)router.recv(f);
        more = f.more();
        if (frames.size() <= rp::max_prefixes) frames.push_back(std::move(f));
        ++count;
      }
      const std::string route(static_cast<const char*>(id.data()), id.size());
      try {
        handle(route, count);
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) throw;
      } catch (const std::exception& e) {
        // No request may stop the server (memory for a huge one, say): it is refused.
        refuse(route, rp::error_code::bad_request, std::string("cannot serve this request: ") + e.what());
      }
    }
  }

  void handle(const std::string& route, std::size_t count) {
    if (count == 0) return refuse(route, rp::error_code::bad_request, "an empty message");
    const auto k = rp::kind_of(frames[0].data(), frames[0].size());
    if (!k) return refuse(route, rp::error_code::bad_request, "frame 1 does not start with ZR, version 1");
    if (*k == rp::kind::credit) {
      std::uint32_t n = 0;
      if (count != 1 || !rp::decode_credit(frames[0].data(), frames[0].size(), n))
        return refuse(route, rp::error_code::bad_request, "a CREDIT is one frame of 8 bytes");
      const auto s = sessions.find(route);
      if (s == sessions.end())
        return refuse(route, rp::error_code::unknown_session,
                      "unknown session: send REPLAY again from the next journal seq you need");
      s->second.heard = clock::now();
      s->second.credit =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(limits.max_credit, std::uint64_t{s->second.credit} + n));
      return;
    }
    if (*k != rp::kind::replay) {
      return refuse(route, rp::error_code::bad_request,
                    "unexpected message kind " + std::to_string(static_cast<int>(*k)));
    }
    // A new REPLAY replaces the session, good or bad.
    sessions.erase(route);
    rp::request r;
    std::string why;
    if (!rp::decode_replay(frames[0].data(), frames[0].size(), r, why))
      return refuse(route, rp::error_code::bad_request, why);
    if (count - 1 > rp::max_prefixes)
      return refuse(route, rp::error_code::bad_request,
                    std::to_string(count - 1) + " prefixes (at most " + std::to_string(rp::max_prefixes) + ")");
    if (r.mode == rp::mode::from_seq && r.value == 0)
      return refuse(route, rp::error_code::bad_request, "from-seq 0: journal seqs start at 1");
    if (r.mode == rp::mode::last_per_topic && r.value != 0)
      return refuse(route, rp::error_code::bad_request, "a last-per-topic request's value must be 0");
    if (sessions.size() >= limits.max_sessions)
      return refuse(route, rp::error_code::too_many,
                    "too many replays at once (" + std::to_string(limits.max_sessions) + "); try again later");
    session s;
    s.id = route;
    s.heard = clock::now();
    s.credit = std::min(r.credit, limits.max_credit);
    bool every = false;
    for (std::size_t i = 1; i < frames.size(); ++i) {
      if (frames[i].size() > max_topic)
        return refuse(route, rp::error_code::bad_request,
                      "a prefix of " + std::to_string(frames[i].size()) + " bytes is longer than any topic (" +
                          std::to_string(max_topic) + ")");
      if (frames[i].size() == 0) every = true;
      s.prefixes.emplace_back(static_cast<const char*>(frames[i].data()), frames[i].size());
    }
    if (every) s.prefixes.clear();
    std::sort(s.prefixes.begin(), s.prefixes.end());
    s.prefixes.erase(std::unique(s.prefixes.begin(), s.prefixes.end()), s.prefixes.end());

    const auto range = store.range();
    rp::start_info st;
    st.oldest = range.oldest;
    st.head = range.head;
    s.live_at = range.head;
    std::optional<journal::position> p;
    switch (r.mode) {
      case rp::mode::from_seq:
        st.requested = r.value;
        // Beyond the head: from the head (what is there is all there is).
        s.want = std::min(r.value, range.head);
        p = store.seek_seq(s.want);
        break;
      case rp::mode::since:
        s.want = range.head;
        p = store.seek_time(r.value);
        break;
      case rp::mode::last_per_topic: {
        std::uint64_t head = range.head;
        s.latest = store.last_per_topic(s.prefixes, head);
        st.head = s.live_at = s.want = head;
        break;
      }
    }
    if (p) {
      // The entry holding `want` (trimmed when sent) or, past retention, the oldest one retained
      // (START says so); since: the first entry at or after the time.
      s.want = r.mode == rp::mode::since ? p->jseq : std::max(s.want, p->jseq);
      s.cur = store.open(*p);
      s.open = true;
    }
    st.first = s.latest.empty() ? s.want : s.latest.front().jseq;
    s.out.push_back({copy(rp::encode_start(st)), std::nullopt, 0});
    relay_stats::add(stats.replays);
    log.note([&] {
      static const char* const names[] = {"", "from-seq", "since", "last-per-topic"};
      return "replay: " + peer(route) + " asks " + names[static_cast<int>(r.mode)] + " " + std::to_string(r.value) +
             " on " +
             (s.prefixes.empty() ? std::string("every topic") : std::to_string(s.prefixes.size()) + " prefixes") +
             ": from journal seq " + std::to_string(st.first) + ", head " + std::to_string(st.head);
    });
    sessions.emplace(route, std::move(s));
  }

  void refuse(const std::string& route, rp::error_code code, const std::string& text) {
    const auto kind = code == rp::error_code::too_many ? warning::too_many : warning::bad_request;
    if (code != rp::error_code::unknown_session)
      log.warn_once(warned, kind,
                    [&] { return "warning: replay: refused a request from " + peer(route) + ": " + text; });
    send_now(route, copy(rp::encode_error(code, text)));
  }

  // Sends [route][frame] if the peer can take it; an ERROR lost to a full or gone peer is not missed.
  void send_now(const std::string& route, zmq::message_t frame) {
    try {
      zmq::message_t rid(route.data(), route.size());
      if (router.send(rid, zmq::send_flags::sndmore | zmq::send_flags::dontwait))
        (void)router.send(frame, zmq::send_flags::dontwait);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) throw;
    }
  }

  // --- serving ---

  // One turn of session `s`: what waits goes out, then at most one DATA is built and sent, then
  // LIVE if the history is sent. False: the peer is gone.
  bool turn(session& s, std::uint64_t head, bool& ready, bool& full) {
    if (!flush(s, full)) return false;
    if (!s.out.empty()) return true;
    if (s.credit > 0 && has_more(s, head)) {
      if (auto d = build(s, head)) {
        --s.credit;
        s.out.push_back(std::move(*d));
      }
    }
    if (!s.live_sent && s.latest_next >= s.latest.size() && s.want >= s.live_at) {
      s.live_sent = true;
      s.out.push_back({copy(rp::encode_live(s.want)), std::nullopt, 0});
    }
    if (!flush(s, full)) return false;
    if (s.out.empty() && s.credit > 0 && has_more(s, head)) ready = true;
    return true;
  }

  bool has_more(const session& s, std::uint64_t head) const {
    if (s.latest_next < s.latest.size()) return true;
    return s.want < head && s.dry_head != head;
  }

  // Sends what waits for `s` in order, until its peer's queue is full. False: the peer is gone.
  bool flush(session& s, bool& full) {
    while (!s.out.empty()) {
      auto& o = s.out.front();
      try {
        zmq::message_t rid(s.id.data(), s.id.size());
        if (!router.send(rid, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
          full = true;
          return true;
        }
        // The routing id taken, the rest of the message goes to the same queue.
        if (o.body) {
          (void)router.send(o.head, zmq::send_flags::sndmore);
          (void)router.send(*o.body, zmq::send_flags::none);
          relay_stats::add(stats.replayed, o.msgs);
        } else {
          (void)router.send(o.head, zmq::send_flags::none);
        }
      } catch (const zmq::error_t& e) {
        if (e.num() == EHOSTUNREACH) {
          log.note([&] { return "replay: " + peer(s.id) + " is gone; its session ends"; });
          return false;
        }
        throw;
      }
      s.out.pop_front();
    }
    return true;
  }

  // The next DATA of `s`, or nullopt when nothing matching was read this turn.
  std::optional<outgoing> build(session& s, std::uint64_t head) {
    std::string body;
    std::uint32_t entries = 0;
    std::uint64_t msgs = 0;
    if (s.latest_next < s.latest.size()) {
      // Last per topic: one message of each entry listed (the newest of its topic).
      while (s.latest_next < s.latest.size() && body.size() < limits.data_bytes) {
        const auto& p = s.latest[s.latest_next++];
        auto c = store.open(p);
        scratch.clear();
        std::uint64_t passed = 0;
        record::entry e;
        if (store.read(c, scratch, 1, passed) != 0 &&
            record::decode(scratch.data(), scratch.size(), e) == record::status::ok && e.jseq <= p.jseq &&
            p.jseq < e.end()) {
          record::append_from(body, e, p.jseq);
          ++entries;
          msgs += e.end() - p.jseq;
        } else {
          ++s.skipped;  // removed by retention since the request
        }
      }
      if (s.latest_next == s.latest.size()) s.latest.clear(), s.latest_next = 0;
    } else {
      if (!s.open) {
        const auto p = store.seek_seq(s.want);
        if (!p) {
          s.dry_head = head;
          return std::nullopt;
        }
        if (p->jseq > s.want) s.skipped += p->jseq - s.want;
        s.want = std::max(s.want, p->jseq);
        s.cur = store.open(*p);
        s.open = true;
      }
      std::size_t scanned = 0;
      while (body.size() < limits.data_bytes && scanned < limits.scan_bytes) {
        const auto mark = body.size();
        std::uint64_t passed = 0;
        const auto n = store.read(s.cur, body, limits.data_bytes - mark, passed);
        s.skipped += passed;
        if (n == 0) {
          s.dry_head = head;
          break;
        }
        scanned += body.size() - mark;
        keep_matching(s, body, mark, entries, msgs);
        s.want = std::max(s.want, s.cur.next);
      }
    }
    if (entries == 0) return std::nullopt;
    outgoing o{copy(rp::encode_data(entries, s.skipped)), take(std::move(body)), msgs};
    s.skipped = 0;
    return o;
  }

  // Walks the entries store::read appended to `body` from `mark`: keeps those that match the
  // session's prefixes, trims the one that starts before `want`, drops what was sent already.
  void keep_matching(session& s, std::string& body, std::size_t mark, std::uint32_t& entries, std::uint64_t& msgs) {
    std::size_t r = mark, w = mark;
    while (r < body.size()) {
      record::entry e;
      const auto st = record::decode(body.data() + r, body.size() - r, e);
      if (st != record::status::ok) {
        // The store hands out only entries that decoded: this is damage under the reader.
        log.warn_once(warned, warning::damaged, [&] {
          return "warning: replay: an entry read from the journal does not decode (" +
                 std::string(record::status_text(st)) + "); the rest of that read is skipped";
        });
        break;
      }
      const auto size = e.size;
      const bool wanted = e.end() > s.want && matches(s.prefixes, e.nframes > 0 ? e.frames[0] : std::string_view());
      if (wanted) {
        ++entries;
        if (e.jseq < s.want) {
          trimmed.clear();
          record::append_from(trimmed, e, s.want);
          msgs += e.end() - s.want;
          std::memmove(&body[w], trimmed.data(), trimmed.size());  // never longer than the entry
          w += trimmed.size();
        } else {
          msgs += e.count;
          if (w != r) std::memmove(&body[w], body.data() + r, size);
          w += size;
        }
      }
      s.want = std::max(s.want, e.end());
      r += size;
    }
    body.resize(w);
  }

  const journal::store& store;
  relay_log& log;
  relay_stats& stats;
  replay_limits limits;
  std::size_t max_topic;
  zmq::socket_t router;
  std::string bound;
  int stop_fd = -1;
  std::unordered_map<std::string, session> sessions;
  std::vector<zmq::message_t> frames;
  std::string scratch, trimmed;
  detail::once_per_kind<warning> warned;
  std::thread thread;  // last: starts once everything above is built
};

replay_server::replay_server(zmq::context_t& ctx, const journal::store& store, const relay_config& cfg, relay_log& log,
                             relay_stats& stats, replay_limits limits)
    : impl_(std::make_unique<impl>(ctx, store, cfg, log, stats, limits)) {}

replay_server::~replay_server() = default;

const std::string& replay_server::endpoint() const { return impl_->bound; }

}  // namespace zrelay
