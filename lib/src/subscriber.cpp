#include "zrelay/subscriber.hpp"

#include <algorithm>

#include "zrelay/connection.hpp"
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

}  // namespace

subscriber::subscriber(zmq::context_t& ctx, subscriber_config cfg)
    : cfg_(std::move(cfg)), ctx_(ctx), sock_(ctx, zmq::socket_type::sub), frames_(max_frames) {
  sock_.set(zmq::sockopt::rcvhwm, cfg_.hwm);
  // Subscriptions travel as messages too: with a send high-water mark ZeroMQ drops those past
  // it silently, and a subscriber to thousands of topics would never hear some of them.
  sock_.set(zmq::sockopt::sndhwm, 0);
  sock_.set(zmq::sockopt::linger, 0);
  apply_curve_client(sock_, cfg_.curve);
  // No ZeroMQ heartbeat on the data connection: with our queue full, libzmq stops reading it, so
  // a timeout would take the relay's PINGs for silence, and libzmq 4.3.4 then aborts (on the
  // reconnect, when the queue drains; or on our next PING, once the relay has closed). TCP
  // keepalives, which the kernels answer, close it if the relay's host goes away; the probe
  // tells whether the relay answers.
  set_keepalive(sock_, cfg_.heartbeat);
  for (const auto& t : cfg_.topics) longest_topic_ = std::max(longest_topic_, t.size());
}

bool subscriber::connect(int stop_fd) {
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

std::string subscriber::endpoint() const { return cfg_.bind ? sock_.get(zmq::sockopt::last_endpoint) : cfg_.endpoint; }

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
    const auto hs = wire::decode_header(frames_[1].data(), frames_[1].size(), h, &version);
    if (hs == wire::status::bad_version) {
      ++stats_.malformed;
      warn_once(warning::version, "ignored messages in protocol version " + std::to_string(version) +
                                      " (this zsub reads version " + std::to_string(wire::version) + ")");
      return step::next;
    }
    if (hs != wire::status::ok) {
      ++stats_.malformed;
      warn_once(warning::header, "ignored a message with a bad header: " + std::string(wire::status_text(hs)));
      return step::next;
    }
    std::uint64_t seen_below = 0;  // records below it came before: late into a gap, or again
    auto& st = check_sequence(h.publisher, v.topic, h.topic_seq, h.count, connection_of(frames_[0]), seen_below);
    v.publisher = h.publisher;
    wire::record_reader r(frames_[2].data(), frames_[2].size(), h.count);
    std::uint64_t seq = h.topic_seq;
    while (auto rec = r.next()) {
      const auto this_seq = seq++;
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
      ++stats_.received;
      if (!fn(v)) return step::stop;
    }
    if (r.error() != wire::status::ok) {
      ++stats_.malformed;
      warn_once(warning::body, "a batch from publisher " + to_hex(h.publisher) +
                                   " was cut short: " + std::string(wire::status_text(r.error())));
    }
    return step::next;
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

std::array<zmq::pollitem_t, 3> subscriber::poll_items() {
  const zmq::pollitem_t inert{nullptr, -1, 0, 0};
  return {zmq::pollitem_t{sock_.handle(), 0, ZMQ_POLLIN, 0}, link_ ? link_->poll_item() : inert,
          probe_link_ ? probe_link_->poll_item() : inert};
}

std::chrono::milliseconds subscriber::next_timeout() const { return std::chrono::milliseconds(1000); }

bool subscriber::service(const message_fn& fn) {
  // Before the data: a disconnection is known before the messages that follow it.
  drain_links();
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
    if (items[3].revents & ZMQ_POLLIN) {
      if (links) drain_links();
      return result::woken;
    }
    if (data) return service(fn) ? result::delivered : result::stopped;
    if (links) drain_links();
    if (timeout.count() >= 0 && std::chrono::steady_clock::now() >= until) return result::timeout;
  }
}

}  // namespace zrelay
