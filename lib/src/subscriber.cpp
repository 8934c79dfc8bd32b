#include "zrelay/subscriber.hpp"

#include <algorithm>

#include "replay_protocol.hpp"
#include "zrelay/connection.hpp"
#include "zrelay/record.hpp"
#include "zrelay/relay.hpp"
#include "zrelay/text.hpp"
#include "zrelay/wire.hpp"

namespace zrelay {
namespace {

constexpr int burst = 1024;
constexpr std::size_t max_frames = 64;
// Gaps remembered per stream, so that a message arriving after its gap was reported counts as
// late, not as a duplicate; a late one in an older gap than these is taken for a duplicate.
constexpr std::size_t max_holes = 16;
// Connections told apart at once: the one being drained and the ones after it.
constexpr std::size_t max_conns = 8;
// A relay refusing a subscription closes the connection as soon as it reads it; this many such
// closes in a row, each within `quick_cut` of its handshake and with no message between, and
// zsub stops trying.
constexpr int refused_after = 3;
constexpr auto quick_cut = std::chrono::seconds(2);
// Replay: a CREDIT at least this often keeps the session (the relay forgets one silent for 10 s).
constexpr auto keepalive_every = std::chrono::milliseconds(1000);
// Replay: an "unknown session" this soon after a REPLAY is about the session that REPLAY replaces.
constexpr auto rerequest_after = std::chrono::milliseconds(1000);

namespace rp = replay_protocol;

}  // namespace

subscriber::subscriber(zmq::context_t& ctx, subscriber_config cfg)
    : cfg_(std::move(cfg)),
      ctx_(ctx),
      sock_(ctx, cfg_.replay.mode == replay_mode::none ? zmq::socket_type::sub : zmq::socket_type::dealer),
      frames_(max_frames),
      replaying_(cfg_.replay.mode != replay_mode::none),
      live_(!replaying_) {
  if (replaying_ && cfg_.bind) throw std::invalid_argument("a replay connects to the relay: it cannot bind");
  sock_.set(zmq::sockopt::rcvhwm, cfg_.hwm);
  // Subscriptions travel as messages too: with a send high-water mark ZeroMQ drops those past
  // it silently, and a subscriber to thousands of topics would never hear some of them.
  sock_.set(zmq::sockopt::sndhwm, 0);
  sock_.set(zmq::sockopt::linger, 0);
  apply_curve_client(sock_, cfg_.curve);
  for (const auto& t : cfg_.topics) longest_topic_ = std::max(longest_topic_, t.size());
  if (replaying_) {
    // What waits in this socket's queue is what credit let the relay send, so its input never
    // stalls: heartbeats are safe here, and no probe is needed.
    set_heartbeat(sock_, cfg_.heartbeat);
    return;
  }
  // No ZeroMQ heartbeat on the data connection: with our queue full, libzmq stops reading it, so
  // a timeout would take the relay's PINGs for silence, and libzmq 4.3.4 then aborts (on the
  // reconnect, when the queue drains; or on our next PING, once the relay has closed). TCP
  // keepalives, which the kernels answer, close it if the relay's host goes away; the probe
  // tells whether the relay answers.
  set_keepalive(sock_, cfg_.heartbeat);
}

bool subscriber::connect(int stop_fd) {
  if (replaying_) {
    if (!connect_and_wait(ctx_, sock_, cfg_.replay.endpoint, cfg_.connect_timeout, stop_fd,
                          "is zrelay running there, with --journal? only a journaling relay serves replays"))
      return false;
    link_ = std::make_unique<link_monitor>(ctx_, sock_);
    send_replay_request();
    return true;
  }
  for (const auto& t : cfg_.topics) sock_.set(zmq::sockopt::subscribe, t);
  if (cfg_.bind) {
    try {
      sock_.bind(cfg_.endpoint);
    } catch (const zmq::error_t& e) {
      throw connect_error("cannot bind '" + cfg_.endpoint + "': " + e.what());
    }
    return true;
  }
  if (!connect_and_wait(ctx_, sock_, cfg_.endpoint, cfg_.connect_timeout, stop_fd)) return false;
  link_ = std::make_unique<link_monitor>(ctx_, sock_);
  up_since_ = std::chrono::steady_clock::now();
  // inproc has no heartbeats and cannot fail.
  if (cfg_.heartbeat.count() > 0 && cfg_.endpoint.rfind("inproc://", 0) != 0) {
    probe_ = zmq::socket_t(ctx_, zmq::socket_type::sub);
    probe_.set(zmq::sockopt::linger, 0);
    apply_curve_client(probe_, cfg_.curve);
    set_heartbeat(probe_, cfg_.heartbeat);
    probe_link_ = std::make_unique<link_monitor>(ctx_, probe_);
    probe_.connect(cfg_.endpoint);
  }
  return true;
}

std::string subscriber::endpoint() const {
  if (replaying_) return cfg_.replay.endpoint;
  return cfg_.bind ? sock_.get(zmq::sockopt::last_endpoint) : cfg_.endpoint;
}

// The request: as configured the first time; once the stream has a place in the journal, from
// there (a last-per-topic replay is asked for again until its history is delivered: records that
// came already are dropped by journal sequence, in deliver_entries).
void subscriber::send_replay_request() {
  rp::request r;
  r.credit = std::max<std::uint32_t>(cfg_.replay.credit, 1);
  const bool resume = resume_ != 0 && (tailing_ || cfg_.replay.mode != replay_mode::last_per_topic);
  if (resume) {
    r.mode = rp::mode::from_seq;
    r.value = resume_;
  } else {
    switch (cfg_.replay.mode) {
      case replay_mode::since: r.mode = rp::mode::since; break;
      case replay_mode::last_per_topic: r.mode = rp::mode::last_per_topic; break;
      default: r.mode = rp::mode::from_seq; break;
    }
    r.value = r.mode == rp::mode::last_per_topic ? 0
              : r.mode == rp::mode::from_seq     ? std::max<std::uint64_t>(cfg_.replay.value, 1)
                                                 : cfg_.replay.value;
  }
  const auto head = rp::encode_replay(r);
  const auto n = cfg_.topics.size();
  (void)sock_.send(zmq::buffer(head),
                   n == 0 ? zmq::send_flags::dontwait : zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  for (std::size_t i = 0; i < n; ++i)
    (void)sock_.send(zmq::buffer(cfg_.topics[i]), i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none);
  awaiting_start_ = true;
  last_request_ = last_sent_ = std::chrono::steady_clock::now();
}

void subscriber::send_credit(std::uint32_t n) {
  const auto c = rp::encode_credit(n);
  (void)sock_.send(zmq::buffer(c), zmq::send_flags::dontwait);
  last_sent_ = std::chrono::steady_clock::now();
}

void subscriber::keepalive() {
  if (replaying_ && link_ && std::chrono::steady_clock::now() - last_sent_ >= keepalive_every) send_credit(0);
}

void subscriber::warn_once(warning kind, const std::string& text) {
  if (warned_.first(kind) && on_warning_) on_warning_(text);
}

subscriber::stream& subscriber::check_sequence(std::uint64_t publisher, std::string_view topic, std::uint64_t first,
                                               std::uint32_t count, std::uint32_t conn, std::uint64_t& seen_below) {
  concat_.assign(reinterpret_cast<const char*>(&publisher), sizeof publisher);
  concat_.append(topic.data(), topic.size());
  const auto end = first + count;
  auto [it, fresh] = streams_.try_emplace(concat_);
  auto& s = it->second;
  seen_below = first;
  if (fresh) {
    s.next = end;
    s.conn = conn;
    // First seen in what was queued from a connection that has closed since: it may have lost
    // messages in the time away like the others.
    if (conn != 0 && conn <= cut_upto_) {
      s.away = true;
      ++stats_.unaccounted;
    }
    return s;
  }
  // A message of an earlier connection, still queued, says nothing about the time away.
  const bool back = s.away && conn != s.conn;
  if (back) {
    s.away = false;
    --stats_.unaccounted;
  }
  s.conn = conn;
  if (first > s.next) {
    gap_info g{std::string(topic), publisher, s.next, first, back};
    ++stats_.gaps;
    stats_.missing += g.missing();
    if (s.holes.size() == max_holes) s.holes.erase(s.holes.begin());
    s.holes.push_back({s.next, first});
    if (on_gap_) on_gap_(g);
  } else if (first < s.next) {
    seen_below = std::min(end, s.next);
  }
  s.next = std::max(s.next, end);
  return s;
}

bool subscriber::fill_hole(stream& s, std::uint64_t seq) {
  for (auto h = s.holes.begin(); h != s.holes.end(); ++h) {
    if (seq < h->from || seq >= h->to) continue;
    if (seq == h->from) {
      ++h->from;
    } else if (seq + 1 == h->to) {
      --h->to;
    } else {
      const hole rest{seq + 1, h->to};
      h->to = seq;
      s.holes.insert(h + 1, rest);
      if (s.holes.size() > max_holes) s.holes.erase(s.holes.begin());
      return true;
    }
    if (h->from == h->to) s.holes.erase(h);
    return true;
  }
  return false;
}

std::uint32_t subscriber::connection_of(zmq::message_t& frame) {
  // Only a connected subscriber follows its connection (one at a time, in order); inproc
  // messages carry no metadata.
  if (!link_) return 0;
  const char* tag = zmq_msg_gets(frame.handle(), "Socket-Type");
  if (tag == nullptr) return 0;
  if (tag == last_tag_) return last_conn_;
  auto c = std::find_if(conns_.begin(), conns_.end(), [tag](const connection_tag& t) { return t.tag == tag; });
  if (c == conns_.end()) {
    // A new connection. ZeroMQ reported the end of the one before before this message was
    // written: read that first, so that every stream is known to be away when it comes back.
    drain_links();
    if (conns_.size() == max_conns) conns_.erase(conns_.begin());
    zmq::message_t keep;
    keep.copy(frame);
    conns_.push_back({tag, std::move(keep), ++conn_count_});
    c = conns_.end() - 1;
  }
  last_tag_ = tag;
  last_conn_ = c->id;
  return c->id;
}

void subscriber::drain_links() {
  if (link_) link_->drain([this](link_monitor::change c) { data_link_changed(c); });
  if (probe_link_)
    probe_link_->drain([this](link_monitor::change c) {
      if (on_link_) on_link_(c == link_monitor::change::lost ? link_event::lost : link_event::restored);
    });
}

void subscriber::data_link_changed(link_monitor::change c) {
  const auto now = std::chrono::steady_clock::now();
  if (replaying_) {
    // Nothing is lost with the connection: the relay knows the new one as another peer, so the
    // replay is asked for again from the next journal seq needed.
    if (c == link_monitor::change::restored) {
      send_replay_request();
      if (on_link_) on_link_(link_event::restored);
    } else {
      ++stats_.disconnects;
      if (on_link_) on_link_(link_event::lost);
    }
    return;
  }
  if (c == link_monitor::change::restored) {
    up_since_ = now;
    delivered_since_up_ = false;
    if (on_link_ && !probe_link_) on_link_(link_event::restored);
    return;
  }
  ++stats_.disconnects;
  cut_upto_ = conn_count_;
  for (auto& entry : streams_) {
    if (entry.second.away) continue;
    entry.second.away = true;
    ++stats_.unaccounted;
  }
  if (plain_seen_ && !plain_away_) {
    plain_away_ = true;
    ++stats_.unaccounted;
  }
  if (on_link_) {
    if (!probe_link_) on_link_(link_event::lost);
    on_link_(link_event::cut);
  }
  // ZeroMQ has no reply to a subscription: a relay refuses one by closing the connection at the
  // frame's size header, and ZeroMQ would reconnect and send it again forever.
  if (longest_topic_ > min_max_topic && !delivered_since_up_ && now - up_since_ < quick_cut) {
    if (++quick_cuts_ >= refused_after)
      throw subscription_refused("the relay at " + cfg_.endpoint +
                                 " refused the subscription: it closed the connection right after each of " +
                                 std::to_string(refused_after) +
                                 " handshakes, as zrelay does for a topic over its --max-topic (the longest "
                                 "topic here is " +
                                 std::to_string(longest_topic_) + " bytes)");
  } else {
    quick_cuts_ = 0;
  }
}

subscriber::step subscriber::deliver(const message_fn& fn) {
  // frames_[0..n) hold one ZeroMQ message. Its frames arrive together: once the first is here,
  // the others are.
  if (!sock_.recv(frames_[0], zmq::recv_flags::dontwait)) return step::empty;
  std::size_t n = 1;
  bool overflow = false;
  for (bool more = frames_[0].more(); more;) {
    if (n == frames_.size()) overflow = true;
    auto& f = overflow ? frames_.back() : frames_[n];
    (void)sock_.recv(f);
    more = f.more();
    if (!overflow) ++n;
  }
  if (overflow) {
    ++stats_.malformed;
    warn_once(warning::frames, "ignored a message of more than " + std::to_string(max_frames) + " frames");
    return step::next;
  }
  delivered_since_up_ = true;
  if (replaying_) return deliver_replay(n, fn);
  message_view v;
  if (n == 1) {
    v.payload = {static_cast<const char*>(frames_[0].data()), frames_[0].size()};
    plain_seen_ = true;
    ++stats_.received;
    return fn(v) ? step::next : step::stop;
  }
  v.topic = {static_cast<const char*>(frames_[0].data()), frames_[0].size()};
  if (n == 3 && wire::looks_like_header(frames_[1].data(), frames_[1].size())) {
    wire::batch_header h;
    std::uint8_t version = 0;
    std::uint64_t jseq = 0;
    const auto hs = wire::decode_delivered_header(frames_[1].data(), frames_[1].size(), h, jseq, &version);
    if (hs == wire::status::bad_version) {
      ++stats_.malformed;
      warn_once(warning::version, "ignored messages in protocol version " + std::to_string(version) +
                                      " (this zsub reads versions " + std::to_string(wire::version) + " and " +
                                      std::to_string(wire::delivered_version) + ")");
      return step::next;
    }
    if (hs != wire::status::ok) {
      ++stats_.malformed;
      warn_once(warning::header, "ignored a message with a bad header: " + std::string(wire::status_text(hs)));
      return step::next;
    }
    const std::string_view body(static_cast<const char*>(frames_[2].data()), frames_[2].size());
    return deliver_batch(v.topic, h, body, jseq, connection_of(frames_[0]), fn) ? step::next : step::stop;
  }
  plain_seen_ = true;
  if (n == 2) {
    v.payload = {static_cast<const char*>(frames_[1].data()), frames_[1].size()};
  } else {
    concat_.clear();
    for (std::size_t i = 1; i < n; ++i) concat_.append(static_cast<const char*>(frames_[i].data()), frames_[i].size());
    v.payload = concat_;
  }
  ++stats_.received;
  return fn(v) ? step::next : step::stop;
}

bool subscriber::deliver_batch(std::string_view topic, const wire::batch_header& h, std::string_view body,
                               std::uint64_t jseq, std::uint32_t conn, const message_fn& fn) {
  std::uint64_t seen_below = 0;  // records below it came before: late into a gap, or again
  auto& st = check_sequence(h.publisher, topic, h.topic_seq, h.count, conn, seen_below);
  message_view v;
  v.topic = topic;
  v.publisher = h.publisher;
  wire::record_reader r(body.data(), body.size(), h.count);
  std::uint64_t seq = h.topic_seq;
  std::uint64_t i = 0;
  while (auto rec = r.next()) {
    const auto this_seq = seq++;
    const auto this_jseq = jseq == 0 ? 0 : jseq + i;
    ++i;
    if (this_seq < seen_below) {
      if (fill_hole(st, this_seq)) {
        ++stats_.late;
        --stats_.missing;
      } else {
        ++stats_.duplicates;
        if (cfg_.dedup) continue;
      }
    }
    v.payload = *rec;
    v.topic_seq = this_seq;
    v.journal_seq = this_jseq;
    ++stats_.received;
    if (!fn(v)) return false;
  }
  if (r.error() != wire::status::ok) {
    ++stats_.malformed;
    warn_once(warning::body, "a batch from publisher " + to_hex(h.publisher) +
                                 " was cut short: " + std::string(wire::status_text(r.error())));
  }
  return true;
}

subscriber::step subscriber::deliver_replay(std::size_t n, const message_fn& fn) {
  const auto bad = [&](const std::string& what) {
    // Before any START, nothing of the replay protocol has come: this is some other ROUTER socket
    // (the relay's --ack-bind answers a REPLAY with a NACK), and waiting would wait for ever.
    if (!replay_started_)
      throw replay_refused("'" + cfg_.replay.endpoint + "' is not a replay socket: it answered " + what +
                           " (give the relay's --replay-bind endpoint)");
    ++stats_.malformed;
    warn_once(warning::replay, "ignored " + what + " from the replay socket");
    return step::next;
  };
  const auto* f0 = frames_[0].data();
  const auto s0 = frames_[0].size();
  const auto k = rp::kind_of(f0, s0);
  if (!k) return bad("a message that is not of the replay protocol");
  switch (*k) {
    case rp::kind::start: {
      rp::start_info st;
      if (n != 1 || !rp::decode_start(f0, s0, st)) return bad("a malformed START");
      awaiting_start_ = false;
      replay_started_ = true;
      resume_ = std::max(resume_, st.first);
      if (st.requested >= 1 && st.first > st.requested) {
        stats_.replay_skipped += st.first - st.requested;
        if (on_warning_)
          on_warning_("replay starts at journal seq " + std::to_string(st.first) + ": " +
                      std::to_string(st.first - st.requested) + " messages were removed by retention");
      }
      return step::next;
    }
    case rp::kind::data: {
      std::uint32_t entries = 0;
      std::uint64_t skipped = 0;
      if (n != 2 || !rp::decode_data(f0, s0, entries, skipped)) return bad("a malformed DATA");
      // What comes before the START of the latest request belongs to the session it replaced.
      if (awaiting_start_) return step::next;
      if (skipped > 0) {
        stats_.replay_skipped += skipped;
        if (on_warning_)
          on_warning_("replay passed over " + std::to_string(skipped) +
                      " messages: removed by retention while being read, or damaged in the relay's journal");
      }
      const auto d = deliver_entries(static_cast<const char*>(frames_[1].data()), frames_[1].size(), fn);
      send_credit(1);
      return d;
    }
    case rp::kind::live: {
      std::uint64_t head = 0;
      if (n != 1 || !rp::decode_live(f0, s0, head)) return bad("a malformed LIVE");
      if (awaiting_start_) return step::next;
      tailing_ = true;
      resume_ = std::max(resume_, head);
      if (!live_) {
        live_ = true;
        if (on_live_) on_live_(resume_);
      }
      return step::next;
    }
    case rp::kind::error: {
      std::uint8_t code = 0;
      std::string_view text;
      if (n != 1 || !rp::decode_error(f0, s0, code, text)) return bad("a malformed ERROR");
      if (code == static_cast<std::uint8_t>(rp::error_code::unknown_session)) {
        // The relay forgot the session (it was silent, or the connection is new): ask again, unless
        // a REPLAY just went out (the answer is about what it replaces).
        if (!awaiting_start_ || std::chrono::steady_clock::now() - last_request_ >= rerequest_after)
          send_replay_request();
        return step::next;
      }
      throw replay_refused("the relay at " + cfg_.replay.endpoint + " refused the replay: " + std::string(text));
    }
    default: return bad("a message of kind " + std::to_string(static_cast<int>(*k)));
  }
}

subscriber::step subscriber::deliver_entries(const char* data, std::size_t size, const message_fn& fn) {
  std::size_t off = 0;
  while (off < size) {
    record::entry e;
    const auto st = record::decode(data + off, size - off, e);
    if (st != record::status::ok) {
      ++stats_.malformed;
      warn_once(warning::replay, "ignored the rest of a replayed DATA: an entry does not decode (" +
                                     std::string(record::status_text(st)) + ")");
      return step::next;
    }
    off += e.size;
    // Asked for again (a new request from where the stream was): what came already is dropped.
    if (e.end() <= resume_) continue;
    if (e.jseq < resume_) {
      trimmed_.clear();
      record::append_from(trimmed_, e, resume_);
      if (record::decode(trimmed_.data(), trimmed_.size(), e) != record::status::ok) continue;
    }
    resume_ = e.end();
    if (e.what == record::kind::batch) {
      if (!deliver_batch(e.frames[0], e.header, e.frames[2], e.jseq, 0, fn)) return step::stop;
      continue;
    }
    message_view v;
    v.journal_seq = e.jseq;
    if (e.nframes == 1) {
      v.payload = e.frames[0];
    } else {
      v.topic = e.frames[0];
      if (e.nframes == 2) {
        v.payload = e.frames[1];
      } else {
        concat_.clear();
        for (std::size_t i = 1; i < e.nframes; ++i) concat_.append(e.frames[i].data(), e.frames[i].size());
        v.payload = concat_;
      }
    }
    ++stats_.received;
    if (!fn(v)) return step::stop;
  }
  return step::next;
}

std::array<zmq::pollitem_t, 3> subscriber::poll_items() {
  const zmq::pollitem_t inert{nullptr, -1, 0, 0};
  return {zmq::pollitem_t{sock_.handle(), 0, ZMQ_POLLIN, 0}, link_ ? link_->poll_item() : inert,
          probe_link_ ? probe_link_->poll_item() : inert};
}

std::chrono::milliseconds subscriber::next_timeout() const {
  if (!replaying_ || !link_) return std::chrono::milliseconds(1000);
  const auto due = last_sent_ + keepalive_every - std::chrono::steady_clock::now();
  return std::clamp(std::chrono::ceil<std::chrono::milliseconds>(due), std::chrono::milliseconds(0),
                    std::chrono::milliseconds(1000));
}

bool subscriber::service(const message_fn& fn) {
  // Before the data: a disconnection is known before the messages that follow it.
  drain_links();
  keepalive();
  for (int i = 0; i < burst; ++i) {
    const auto d = deliver(fn);
    if (d == step::stop) return false;
    if (d == step::empty) break;
  }
  return true;
}

subscriber::result subscriber::receive(std::chrono::milliseconds timeout, const message_fn& fn, int wake_fd) {
  const auto own = poll_items();
  zmq::pollitem_t items[] = {
      own[0], own[1], own[2], {nullptr, wake_fd, static_cast<short>(wake_fd >= 0 ? ZMQ_POLLIN : 0), 0}};
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto wait = next_timeout();
    if (timeout.count() >= 0)
      wait = std::min(wait, std::max(std::chrono::milliseconds(0), std::chrono::ceil<std::chrono::milliseconds>(
                                                                       until - std::chrono::steady_clock::now())));
    zmq::poll(items, 4, wait);
    const bool data = (items[0].revents & ZMQ_POLLIN) != 0;
    const bool links = ((items[1].revents | items[2].revents) & ZMQ_POLLIN) != 0;
    // A wake descriptor whose other end closed is an error to poll, never readable: woken all the same.
    if (items[3].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
      if (links) drain_links();
      return result::woken;
    }
    if (data) return service(fn) ? result::delivered : result::stopped;
    if (links) drain_links();
    keepalive();
    if (timeout.count() >= 0 && std::chrono::steady_clock::now() >= until) return result::timeout;
  }
}

}  // namespace zrelay
