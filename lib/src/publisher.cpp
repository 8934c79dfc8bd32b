#include "zrelay/publisher.hpp"

#include <algorithm>
#include <random>

#include "zrelay/connection.hpp"

namespace zrelay {
namespace {

using clock = std::chrono::steady_clock;

std::uint64_t random_id() {
  std::random_device rd;
  std::uint64_t v = 0;
  while (v == 0) v = (std::uint64_t{rd()} << 32) ^ rd();
  return v;
}

bool readable(int fd) {
  if (fd < 0) return false;
  zmq::pollitem_t item{nullptr, fd, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(0));
  return (item.revents & ZMQ_POLLIN) != 0;
}

}  // namespace

publisher::publisher(zmq::context_t& ctx, publisher_config cfg)
    : cfg_(std::move(cfg)),
      ctx_(ctx),
      sock_(ctx, acked() ? zmq::socket_type::dealer : zmq::socket_type::xpub),
      id_(random_id()) {
  sock_.set(zmq::sockopt::sndhwm, cfg_.hwm);
  sock_.set(zmq::sockopt::rcvhwm, cfg_.hwm);
  // Acked, whatever is still queued at close is unacknowledged by definition and already counted
  // as such: lingering for it only held the exit back by an --ack-timeout after giving up on a
  // relay that is gone. Fire and forget has no other way to get its last messages out.
  sock_.set(zmq::sockopt::linger,
            acked() ? 0 : static_cast<int>(std::max(cfg_.ack_timeout.count(), std::int64_t{1000})));
  apply_curve_client(sock_, cfg_.curve);
  set_heartbeat(sock_, cfg_.heartbeat);
  if (!acked()) {
    // Wait for room rather than drop when the relay is slow (send is blocking, in steps of a
    // second so that the stop descriptor is looked at).
    sock_.set(zmq::sockopt::xpub_nodrop, 1);
    sock_.set(zmq::sockopt::sndtimeo, 1000);
    sock_.set(zmq::sockopt::rcvhwm, 0);  // subscriptions: none may be dropped (see relay.cpp)
  }
}

const std::string& publisher::endpoint() const { return acked() ? cfg_.ack_endpoint : cfg_.pub_endpoint; }

void publisher::connect() {
  if (!connect_and_wait(ctx_, sock_, endpoint(), cfg_.connect_timeout, cfg_.stop_fd)) throw interrupted();
  link_ = std::make_unique<link_monitor>(ctx_, sock_);
  if (!acked()) wait_for_subscriptions();
}

// A fire-and-forget publisher filters at the source: until the relay has passed the
// subscriptions up, a message would go nowhere. Wait (briefly) for the first one.
void publisher::wait_for_subscriptions() {
  const auto deadline = clock::now() + cfg_.subscription_wait;
  zmq::message_t m;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) return;
    zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, left);
    if (item.revents & ZMQ_POLLIN) {
      while (sock_.recv(m, zmq::recv_flags::dontwait)) {}
      return;
    }
  }
}

zmq::pollitem_t publisher::poll_item() {
  short events = ZMQ_POLLIN;
  if (acked() && next_send_ < inflight_.size()) events |= ZMQ_POLLOUT;
  return {sock_.handle(), 0, events, 0};
}

std::size_t publisher::outstanding() const { return inflight_msgs_ + open_msgs_; }

std::chrono::milliseconds publisher::next_timeout() const {
  if (!acked() || inflight_.empty()) return std::chrono::milliseconds(1000);
  const auto due = inflight_.front().sent_at + cfg_.ack_timeout;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - clock::now());
  return std::clamp(left, std::chrono::milliseconds(0), std::chrono::milliseconds(1000));
}

void publisher::publish(std::string_view topic, std::string_view payload) {
  if (failed_) throw delivery_error(failure_);
  if (payload.size() > UINT32_MAX)
    throw std::length_error("a message of " + std::to_string(payload.size()) +
                            " bytes is larger than the protocol's limit of 4 GiB - 1");
  ++stats_.published;
  stats_.bytes += payload.size();
  if (cfg_.mode == delivery::plain) {
    zmq::message_t t(topic.data(), topic.size());
    zmq::message_t p(payload.data(), payload.size());
    for (;;) {
      if (sock_.send(t, zmq::send_flags::sndmore)) break;
      if (readable(cfg_.stop_fd)) throw interrupted();
    }
    (void)sock_.send(p, zmq::send_flags::none);
    ++stats_.sent;
    return;
  }
  const auto record = wire::record_prefix_size + payload.size();
  auto* o = find_open(topic);
  if (o && o->body.size() + record > cfg_.max_batch_bytes) {
    send_open(o);
    o = nullptr;
  }
  // The bounds: room for this record among the open bytes, and for one more open batch.
  while (oldest_ && open_bytes_ + record > cfg_.max_open_bytes) {
    auto* oldest = oldest_;
    send_open(oldest);
    if (oldest == o) o = nullptr;
  }
  if (!o) {
    while (oldest_ && open_count_ >= cfg_.max_open_batches) send_open(oldest_);
    // The time bound, looked at once per batch opened (not per message): input that never pauses
    // still opens batches, so an old one beside them goes within about max_batch_delay.
    const auto now = clock::now();
    while (oldest_ && now - oldest_->opened >= cfg_.max_batch_delay) send_open(oldest_);
    o = open_new(topic);
    o->opened = now;
  }
  const auto before = o->body.size();
  wire::append_record(o->body, payload);
  ++o->count;
  ++open_msgs_;
  open_bytes_ += o->body.size() - before;
  if (o->body.size() >= cfg_.max_batch_bytes) send_open(o);
}

publisher::open_batch* publisher::find_open(std::string_view topic) {
  if (last_ && last_->topic == topic) return last_;
  if (open_count_ == 0) return nullptr;
  const auto it = open_index_.find(topic);
  if (it == open_index_.end()) return nullptr;
  return last_ = it->second;
}

publisher::open_batch* publisher::open_new(std::string_view topic) {
  open_batch* o = nullptr;
  if (free_.empty()) {
    o = &open_.emplace_back();
  } else {
    o = free_.back();
    free_.pop_back();
  }
  o->topic.assign(topic.data(), topic.size());
  o->count = 0;
  // Room for a batch like the last one sent, within slot_capacity().
  o->body.reserve(std::min(batch_hint_, slot_capacity()));
  o->older = newest_;
  o->newer = nullptr;
  if (newest_) {
    newest_->newer = o;
  } else {
    oldest_ = o;
  }
  newest_ = o;
  open_index_.emplace(std::string_view(o->topic), o);
  ++open_count_;
  last_ = o;
  return o;
}

// What an open batch's slot may reserve or keep: no more than a batch, and no more than an equal
// share of max_open_bytes among the batches open. (Reserves beyond the bytes written, which
// max_open_bytes counts, stay within a few times max_open_bytes however many topics open; a body
// grown by doubling from nothing instead is reallocated many times over.)
std::size_t publisher::slot_capacity() const {
  return std::min(cfg_.max_batch_bytes, cfg_.max_open_bytes / (open_count_ + 1));
}

void publisher::flush() {
  while (oldest_) send_open(oldest_);
}

// Sends open batch o (taking its sequence numbers now, so that they are dense in the order sent)
// and frees its slot.
void publisher::send_open(open_batch* o) {
  const auto count = o->count;
  // Wait for room in the window first (always let one batch through, however large): if the
  // wait throws, the batch is still whole and open and nothing has taken a sequence number.
  if (acked()) {
    while (!inflight_.empty() &&
           (inflight_msgs_ + count > cfg_.max_inflight || inflight_bytes_ + o->body.size() > cfg_.max_inflight_bytes))
      wait_for_progress(next_timeout());
  }
  auto& topic_seq = topic_seq_[o->topic];
  if (topic_seq == 0) topic_seq = 1;
  const auto seq = next_seq_;
  const auto first_topic_seq = topic_seq;
  // Fire and forget sends before anything changes: if the send throws (interrupted), the batch is
  // still whole and open.
  if (!acked()) send_fire_and_forget(o->topic, o->body, count, seq, first_topic_seq);
  next_seq_ += count;
  topic_seq += count;
  // Close the slot.
  (o->older ? o->older->newer : oldest_) = o->newer;
  (o->newer ? o->newer->older : newest_) = o->older;
  open_index_.erase(std::string_view(o->topic));
  if (last_ == o) last_ = nullptr;
  --open_count_;
  open_msgs_ -= count;
  open_bytes_ -= o->body.size();
  batch_hint_ = o->body.size();
  o->count = 0;
  free_.push_back(o);
  if (!acked()) {
    // Sent (copied out) above: the slot keeps its capacity for the next batch, within slot_capacity().
    o->body.clear();
    if (o->body.capacity() > slot_capacity()) std::string().swap(o->body);
    return;
  }
  std::string body;
  body.swap(o->body);  // into the batch: the slot's next topic reserves what it needs
  batch b;
  b.seq = seq;
  b.topic_seq = first_topic_seq;
  b.count = count;
  b.topic = o->topic;
  b.body = std::move(body);
  b.sent_at = clock::now();
  inflight_msgs_ += count;
  inflight_bytes_ += b.body.size();
  inflight_.push_back(std::move(b));
  transmit_pending();
}

void publisher::send_fire_and_forget(std::string_view topic, const std::string& body, std::uint32_t count,
                                     std::uint64_t seq, std::uint64_t topic_seq) {
  wire::batch_header h;
  h.count = count;
  h.publisher = id_;
  h.seq = seq;
  h.topic_seq = topic_seq;
  zmq::message_t t(topic.data(), topic.size());
  zmq::message_t hdr(wire::header_size);
  wire::encode_header(h, hdr.data());
  zmq::message_t b(body.data(), body.size());
  zmq::message_t m;
  while (sock_.recv(m, zmq::recv_flags::dontwait)) {}  // subscriptions: only their presence matters
  for (;;) {
    if (sock_.send(t, zmq::send_flags::sndmore)) break;
    if (readable(cfg_.stop_fd)) throw interrupted();
  }
  (void)sock_.send(hdr, zmq::send_flags::sndmore);
  (void)sock_.send(b, zmq::send_flags::none);
  stats_.sent += count;
}

bool publisher::transmit(batch& b) {
  wire::batch_header h;
  h.count = b.count;
  h.publisher = id_;
  h.seq = b.seq;
  h.topic_seq = b.topic_seq;
  h.ack_floor = acked_through_ + 1;
  zmq::message_t t(b.topic.data(), b.topic.size());
  if (!sock_.send(t, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return false;
  zmq::message_t hdr(wire::header_size);
  wire::encode_header(h, hdr.data());
  zmq::message_t body(b.body.data(), b.body.size());
  (void)sock_.send(hdr, zmq::send_flags::sndmore);
  (void)sock_.send(body, zmq::send_flags::none);
  if (b.transmissions++ == 0) {
    stats_.sent += b.count;
  } else {
    stats_.retried += b.count;
  }
  b.sent_at = clock::now();
  return true;
}

void publisher::transmit_pending() {
  while (next_send_ < inflight_.size()) {
    if (!transmit(inflight_[next_send_])) return;
    ++next_send_;
  }
}

void publisher::acknowledge_through(std::uint64_t seq) {
  if (seq <= acked_through_) return;
  while (!inflight_.empty()) {
    auto& b = inflight_.front();
    if (b.seq + b.count - 1 > seq) break;
    stats_.acked += b.count - b.nacked;
    inflight_msgs_ -= b.count;
    inflight_bytes_ -= b.body.size();
    inflight_.pop_front();
    if (next_send_ > 0) --next_send_;
  }
  acked_through_ = seq;
}

void publisher::handle_reply(const zmq::message_t& m) {
  wire::reply r;
  if (wire::decode_reply(m.data(), m.size(), r) != wire::status::ok || r.publisher != id_) return;
  switch (r.type) {
    case wire::kind::ack: acknowledge_through(r.seq); break;
    case wire::kind::nack:
      if (r.why == wire::reason::unavailable) {
        // Not a refusal: the relay keeps nothing of these and takes them again (its resend timer,
        // or an EXPECT, sends them).
        stats_.unavailable += r.count;
        stats_.last_unavailable = r.text;
        break;
      }
      for (auto& b : inflight_) {
        if (r.seq >= b.seq && r.seq < b.seq + b.count) {
          const auto n = std::min<std::uint32_t>(r.count, b.count - b.nacked);
          b.nacked += n;
          stats_.nacked += n;
          stats_.nacked_by_reason[r.why] += n;
          if (stats_.first_refusal.empty())
            stats_.first_refusal = std::string(wire::reason_text(r.why)) + (r.text.empty() ? "" : ": " + r.text);
          break;
        }
      }
      break;
    case wire::kind::expect:
      if (r.seq > 0) acknowledge_through(r.seq - 1);
      // Go back N: everything before r.seq is done, so the oldest batch left is where the relay
      // wants us to resume. Once per request: a burst of batches after a loss brings many.
      if (r.seq != rewound_to_ && !inflight_.empty()) {
        rewound_to_ = r.seq;
        next_send_ = 0;
      }
      break;
    default: break;
  }
}

void publisher::service() {
  if (failed_) throw delivery_error(failure_);
  if (link_) link_->drain(on_link_);
  zmq::message_t m;
  if (!acked()) {
    while (sock_.recv(m, zmq::recv_flags::dontwait)) {}
    return;
  }
  while (sock_.recv(m, zmq::recv_flags::dontwait)) handle_reply(m);
  if (!inflight_.empty()) {
    // The clock of the oldest batch runs from when it was queued or last (re)sent, whether or
    // not the socket took it: a relay that is gone must end in delivery_error, not a hang.
    auto& oldest = inflight_.front();
    if (clock::now() - oldest.sent_at >= cfg_.ack_timeout) {
      if (++oldest.attempts > cfg_.retries) {
        failed_ = true;
        failure_ = "no acknowledgment from " + endpoint() + " after " + std::to_string(cfg_.retries) +
                   (cfg_.retries == 1 ? " retry" : " retries") +
                   (stats_.last_unavailable.empty()
                        ? std::string()
                        : " (the relay could not store them: " + stats_.last_unavailable + ")");
        throw delivery_error(failure_);
      }
      next_send_ = 0;  // resend everything in flight, oldest first
      rewound_to_ = 0;
      oldest.sent_at = clock::now();
    }
  }
  transmit_pending();
}

void publisher::wait_for_progress(std::chrono::milliseconds limit) {
  zmq::pollitem_t items[] = {poll_item(), {nullptr, cfg_.stop_fd, ZMQ_POLLIN, 0}};
  zmq::poll(items, cfg_.stop_fd >= 0 ? 2 : 1, limit);
  if (cfg_.stop_fd >= 0 && (items[1].revents & ZMQ_POLLIN)) throw interrupted();
  service();
}

bool publisher::drain(std::chrono::milliseconds max_wait) {
  flush();
  if (!acked()) return true;
  const auto deadline = clock::now() + max_wait;
  while (!inflight_.empty()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) return false;
    wait_for_progress(std::min(left, std::max(next_timeout(), std::chrono::milliseconds(1))));
  }
  return true;
}

}  // namespace zrelay
