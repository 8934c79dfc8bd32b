#include "zrelay/subscriber.hpp"

#include <algorithm>
#include <cstring>

#include "zrelay/connection.hpp"
#include "zrelay/format.hpp"
#include "zrelay/wire.hpp"

namespace zrelay {
namespace {

constexpr int burst = 1024;
constexpr std::size_t max_frames = 64;

enum warning_kind { warn_version = 1, warn_body = 2, warn_frames = 4, warn_header = 8 };

}  // namespace

subscriber::subscriber(zmq::context_t& ctx, subscriber_config cfg)
    : cfg_(std::move(cfg)), ctx_(ctx), sock_(ctx, zmq::socket_type::sub), frames_(max_frames) {
  sock_.set(zmq::sockopt::rcvhwm, cfg_.hwm);
  // Subscriptions travel as messages too: with a send high-water mark ZeroMQ drops those past
  // it silently, and a subscriber to thousands of topics would never hear some of them.
  sock_.set(zmq::sockopt::sndhwm, 0);
  sock_.set(zmq::sockopt::linger, 0);
  apply_curve_client(sock_, cfg_.curve);
  set_heartbeat(sock_, cfg_.heartbeat);
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
  return true;
}

std::string subscriber::endpoint() const {
  return cfg_.bind ? sock_.get(zmq::sockopt::last_endpoint) : cfg_.endpoint;
}

void subscriber::warn_once(int kind, const std::string& text) {
  if (warned_ & static_cast<unsigned>(kind)) return;
  warned_ |= static_cast<unsigned>(kind);
  if (on_warning_) on_warning_(text);
}

bool subscriber::check_sequence(std::uint64_t publisher, std::string_view topic, std::uint64_t first,
                                std::uint32_t count, std::uint32_t& skip) {
  skip = 0;
  concat_.assign(reinterpret_cast<const char*>(&publisher), sizeof publisher);
  concat_.append(topic.data(), topic.size());
  const auto end = first + count;
  auto [it, fresh] = next_seq_.try_emplace(concat_, end);
  if (fresh) return true;
  const auto expected = it->second;
  if (first > expected) {
    gap_info g{std::string(topic), publisher, expected, first};
    ++stats_.gaps;
    stats_.missing += g.missing();
    if (on_gap_) on_gap_(g);
  } else if (first < expected) {
    const auto seen = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, expected - first));
    stats_.duplicates += seen;
    if (cfg_.dedup) skip = seen;
  }
  it->second = std::max(expected, end);
  return true;
}

subscriber::step subscriber::deliver(const message_fn& fn) {
  // frames_[0..n) hold one ZeroMQ message.
  std::size_t n = 0;
  bool more = true;
  bool overflow = false;
  while (more) {
    if (n == frames_.size()) overflow = true;
    auto& f = overflow ? frames_.back() : frames_[n];
    if (!sock_.recv(f, zmq::recv_flags::dontwait)) {
      if (n == 0) return step::empty;
      continue;
    }
    more = f.more();
    if (!overflow) ++n;
  }
  if (overflow) {
    ++stats_.malformed;
    warn_once(warn_frames, "ignored a message of more than " + std::to_string(max_frames) + " frames");
    return step::next;
  }
  message_view v;
  if (n == 1) {
    v.payload = {static_cast<const char*>(frames_[0].data()), frames_[0].size()};
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
      warn_once(warn_version, "ignored messages in protocol version " + std::to_string(version) +
                                  " (this zsub reads version " + std::to_string(wire::version) + ")");
      return step::next;
    }
    if (hs != wire::status::ok) {
      ++stats_.malformed;
      warn_once(warn_header, "ignored a message with a bad header: " + std::string(wire::status_text(hs)));
      return step::next;
    }
    std::uint32_t skip = 0;
    check_sequence(h.publisher, v.topic, h.topic_seq, h.count, skip);
    v.publisher = h.publisher;
    wire::record_reader r(frames_[2].data(), frames_[2].size(), h.count);
    std::uint64_t seq = h.topic_seq;
    while (auto rec = r.next()) {
      if (skip > 0) {
        --skip;
        ++seq;
        continue;
      }
      v.payload = *rec;
      v.topic_seq = seq++;
      ++stats_.received;
      if (!fn(v)) return step::stop;
    }
    if (r.error() != wire::status::ok) {
      ++stats_.malformed;
      warn_once(warn_body, "a batch from publisher " + to_hex(h.publisher) + " was cut short: " +
                               std::string(wire::status_text(r.error())));
    }
    return step::next;
  }
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

subscriber::result subscriber::receive(std::chrono::milliseconds timeout, const message_fn& fn, int wake_fd) {
  zmq::pollitem_t items[] = {{sock_.handle(), 0, ZMQ_POLLIN, 0},
                             link_ ? link_->poll_item() : zmq::pollitem_t{nullptr, -1, 0, 0},
                             {nullptr, wake_fd, ZMQ_POLLIN, 0}};
  if (wake_fd < 0) items[2] = {nullptr, -1, 0, 0};
  // Wait in slices, so that losing the relay is reported while no data comes.
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    zmq::poll(items, 3, timeout.count() < 0 ? std::chrono::milliseconds(-1) : std::max(
        std::chrono::milliseconds(0),
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now())));
    if (link_ && (items[1].revents & ZMQ_POLLIN)) {
      link_->drain(on_link_);
      if (!(items[0].revents & ZMQ_POLLIN) && !(items[2].revents & ZMQ_POLLIN) &&
          (timeout.count() < 0 || std::chrono::steady_clock::now() < until))
        continue;
    }
    break;
  }
  if (wake_fd >= 0 && (items[2].revents & ZMQ_POLLIN)) return result::woken;
  if (!(items[0].revents & ZMQ_POLLIN)) return result::timeout;
  for (int i = 0; i < burst; ++i) {
    const auto d = deliver(fn);
    if (d == step::stop) return result::stopped;
    if (d == step::empty) break;
  }
  return result::delivered;
}

}  // namespace zrelay
