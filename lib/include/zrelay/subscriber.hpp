#pragma once
// The subscriber: SUB socket with ZeroMQ prefix filtering, batch decoding and gap detection.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "zrelay/connection.hpp"
#include "zrelay/security.hpp"

namespace zrelay {

/// One delivered message. The views are valid only during the callback.
struct message_view {
  std::string_view topic;
  std::string_view payload;
  std::uint64_t publisher = 0;  ///< 0 for a plain [topic][payload] message
  std::uint64_t topic_seq = 0;  ///< sequence within (publisher, topic); 0 when plain
};

/// Messages a subscriber can tell it missed: the publisher's topic sequence jumped.
struct gap_info {
  std::string topic;
  std::uint64_t publisher = 0;
  std::uint64_t expected = 0;  ///< the sequence that should have come next
  std::uint64_t received = 0;  ///< the sequence that came instead
  std::uint64_t missing() const { return received - expected; }
};

/// How to build a subscriber.
struct subscriber_config {
  std::string endpoint = "tcp://127.0.0.1:5560";
  std::vector<std::string> topics;  ///< ZeroMQ prefixes; "" is everything
  bool dedup = false;               ///< drop messages whose sequence was already delivered
  bool bind = false;                ///< bind `endpoint` (publishers connect to us) instead of connecting
  std::chrono::milliseconds connect_timeout{3000};
  int hwm = 1000;
  std::chrono::milliseconds heartbeat{1000};  ///< ZeroMQ heartbeat interval (0: none); lost after 3
  curve_config curve;  ///< key pair + server_key: connect with CURVE
};

/// Counters so far.
struct subscriber_stats {
  std::uint64_t received = 0;    ///< messages delivered to the callback
  std::uint64_t gaps = 0;        ///< gap events
  std::uint64_t missing = 0;     ///< messages missing across all gaps
  std::uint64_t duplicates = 0;  ///< messages seen again (dropped when dedup is on)
  std::uint64_t malformed = 0;   ///< ZeroMQ messages that could not be decoded
};

/// Receives from a relay (or any ZeroMQ PUB/XPUB). Not thread-safe.
class subscriber {
public:
  /// Returns false to stop delivering (the rest of a batch is discarded).
  using message_fn = std::function<bool(const message_view&)>;
  using gap_fn = std::function<void(const gap_info&)>;
  /// A problem with incoming data, as a sentence (each kind reported once).
  using warn_fn = std::function<void(std::string_view)>;

  subscriber(zmq::context_t& ctx, subscriber_config cfg);
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  /// Subscribes and connects, waiting for the relay; throws connect_error.
  /// Returns false if stop_fd became readable first. With `bind` set, binds instead.
  bool connect(int stop_fd = -1);
  /// The endpoint bound (with `bind`; an ephemeral port resolved), else the one connected to.
  std::string endpoint() const;
  void on_gap(gap_fn fn) { on_gap_ = std::move(fn); }
  void on_warning(warn_fn fn) { on_warning_ = std::move(fn); }
  /// Called from receive() when the connection to the relay is lost or comes back (ZeroMQ
  /// reconnects and subscribes again by itself).
  void on_link(link_monitor::change_fn fn) { on_link_ = std::move(fn); }

  /// Why receive() returned.
  enum class result { delivered, timeout, stopped, woken };

  /// Waits up to `timeout` (negative: forever) for data, then delivers every message already
  /// waiting, up to a bounded burst. `stopped`: the callback returned false; `woken`: wake_fd
  /// became readable.
  result receive(std::chrono::milliseconds timeout, const message_fn& fn, int wake_fd = -1);

  const subscriber_stats& stats() const { return stats_; }

private:
  enum class step { empty, next, stop };
  step deliver(const message_fn& fn);
  bool check_sequence(std::uint64_t publisher, std::string_view topic, std::uint64_t first,
                      std::uint32_t count, std::uint32_t& skip);
  void warn_once(int kind, const std::string& text);

  subscriber_config cfg_;
  zmq::context_t& ctx_;
  zmq::socket_t sock_;
  std::vector<zmq::message_t> frames_;
  std::unordered_map<std::string, std::uint64_t> next_seq_;  // key: publisher id bytes + topic
  std::string concat_;
  gap_fn on_gap_;
  warn_fn on_warning_;
  unsigned warned_ = 0;
  subscriber_stats stats_;
  link_monitor::change_fn on_link_;
  std::unique_ptr<link_monitor> link_;  // after sock_: stops watching before the socket closes
};

}  // namespace zrelay
