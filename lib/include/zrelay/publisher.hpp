#pragma once
// The publisher: coalesces messages into one batch per topic (many topics' batches open at once,
// interleaved topics included) and sends them acked (DEALER -> relay ROUTER, windowed, resent on
// timeout) or fire-and-forget (XPUB -> relay XSUB); or sends each message plain, [topic][payload],
// to the XSUB (see `delivery`). Order is kept per topic, not across topics.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include "zrelay/connection.hpp"
#include "zrelay/defaults.hpp"
#include "zrelay/security.hpp"
#include "zrelay/wire.hpp"

namespace zrelay {

/// Thrown when the relay stopped answering: a batch went unacknowledged after every retry.
class delivery_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Thrown when the stop descriptor became readable while the publisher was waiting.
class interrupted : public std::runtime_error {
public:
  interrupted() : std::runtime_error("interrupted") {}
};

/// How a publisher sends.
enum class delivery {
  acked,    ///< batches to the relay's ROUTER (ack_endpoint), acknowledged, resent on timeout
  batched,  ///< fire and forget: batches to the relay's XSUB (pub_endpoint), nothing confirmed
  plain,    ///< fire and forget: [topic][payload] to the relay's XSUB, no header, no batching
};

/// How to build a publisher.
struct publisher_config {
  std::string ack_endpoint = default_endpoint(default_ack_port);  ///< used when acked
  std::string pub_endpoint = default_endpoint(default_pub_port);  ///< used when batched or plain
  delivery mode = delivery::acked;
  std::size_t max_inflight = 50000;             ///< messages sent and not yet acknowledged
  std::size_t max_inflight_bytes = 64u << 20;   ///< the same bound in bytes
  std::chrono::milliseconds ack_timeout{3000};  ///< resend when the oldest batch waits this long
  int retries = 3;                              ///< resends of one batch before giving up
  std::size_t max_batch_bytes = 64u << 10;      ///< a batch body is sent once it reaches this
  std::size_t max_open_batches = 4096;          ///< batches being built at once (one per topic)
  std::size_t max_open_bytes = 16u << 20;       ///< their bodies' total; past either, the oldest is sent
  /// The longest a batch stays open while input keeps coming (flush() sends at once when it pauses):
  /// older batches are sent when the next batch opens, so a quiet topic beside a busy one is not held.
  std::chrono::milliseconds max_batch_delay{100};
  std::chrono::milliseconds connect_timeout{3000};   ///< 0: do not wait for the connection
  std::chrono::milliseconds subscription_wait{200};  ///< fire-and-forget: wait for subscriptions
  int hwm = 1000;
  int stop_fd = -1;                           ///< readable => waiting stops with `interrupted`
  curve_config curve;                         ///< key pair + server_key: connect with CURVE
  std::chrono::milliseconds heartbeat{1000};  ///< ZeroMQ heartbeat interval (0: none); lost after 3
};

/// What happened to the messages published so far.
struct publisher_stats {
  std::uint64_t published = 0;  ///< handed to publish()
  std::uint64_t sent = 0;       ///< sent at least once
  std::uint64_t acked = 0;      ///< accepted by the relay
  std::uint64_t nacked = 0;     ///< refused by the relay
  std::uint64_t retried = 0;    ///< messages sent again after a timeout or a resend request
  std::uint64_t bytes = 0;      ///< payload bytes published
  std::map<wire::reason, std::uint64_t> nacked_by_reason;
  std::string first_refusal;  ///< the relay's text for the first NACK
  /// Messages the relay could not store yet (NACK "unavailable": its journal failed). Not refused:
  /// they stay in flight and are sent again after --ack-timeout, like unacknowledged ones.
  std::uint64_t unavailable = 0;
  std::string last_unavailable;  ///< the relay's text for the latest of those
};

/// Publishes to a relay. Not thread-safe: one thread uses it.
class publisher {
public:
  publisher(zmq::context_t& ctx, publisher_config cfg);
  publisher(const publisher&) = delete;
  publisher& operator=(const publisher&) = delete;

  /// Connects and waits for the relay (connect_timeout); throws connect_error.
  void connect();
  /// Adds a message to its topic's open batch; sends batches as they fill (or, past
  /// max_open_batches or max_open_bytes, the oldest open one), waiting while the window is full.
  /// Order is kept per topic only: messages of different topics may be sent in another order.
  /// Throws delivery_error, interrupted.
  void publish(std::string_view topic, std::string_view payload);
  /// Sends every open batch, oldest first (call when input pauses so nothing waits in a batch).
  void flush();
  /// Flushes, then waits up to max_wait for every acknowledgment. True when nothing is
  /// outstanding. Throws delivery_error, interrupted.
  bool drain(std::chrono::milliseconds max_wait);
  /// Non-blocking: reads replies, resends what timed out, sends what waits. Throws delivery_error.
  void service();
  /// The socket, for a caller that polls it together with its own input.
  zmq::pollitem_t poll_item();
  /// How long the caller may sleep before service() has work to do.
  std::chrono::milliseconds next_timeout() const;
  /// Messages sent and not yet acknowledged (plus those in open batches).
  std::size_t outstanding() const;
  /// Counters so far.
  const publisher_stats& stats() const { return stats_; }
  /// Called from service() when the connection to the relay is lost or comes back.
  void on_link(link_monitor::change_fn fn) { on_link_ = std::move(fn); }
  /// This publisher's id (random, stable for the life of the object).
  std::uint64_t id() const { return id_; }
  /// The endpoint it talks to.
  const std::string& endpoint() const;

private:
  struct batch {
    std::uint64_t seq = 0;
    std::uint64_t topic_seq = 0;
    std::uint32_t count = 0;
    std::uint32_t nacked = 0;
    int attempts = 0;  // timeouts seen while oldest
    int transmissions = 0;
    std::string topic;
    std::string body;
    std::chrono::steady_clock::time_point sent_at;
  };

  // A batch being built: one per topic at most, linked oldest first.
  struct open_batch {
    std::string topic;
    std::string body;
    std::uint32_t count = 0;
    std::chrono::steady_clock::time_point opened;
    open_batch* older = nullptr;
    open_batch* newer = nullptr;
  };

  bool acked() const { return cfg_.mode == delivery::acked; }
  open_batch* find_open(std::string_view topic);
  open_batch* open_new(std::string_view topic);
  void send_open(open_batch* o);
  std::size_t slot_capacity() const;
  bool transmit(batch& b);
  void transmit_pending();
  void handle_reply(const zmq::message_t& m);
  void acknowledge_through(std::uint64_t seq);
  void wait_for_progress(std::chrono::milliseconds limit);
  void send_fire_and_forget(std::string_view topic, const std::string& body, std::uint32_t count, std::uint64_t seq,
                            std::uint64_t topic_seq);
  void wait_for_subscriptions();

  publisher_config cfg_;
  zmq::context_t& ctx_;
  zmq::socket_t sock_;
  std::uint64_t id_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t acked_through_ = 0;
  std::uint64_t rewound_to_ = 0;
  bool failed_ = false;
  std::string failure_;

  // Open batches. A deque: a slot never moves, so pointers to it and the index's keys (views of
  // slot topics) stay valid; a sent batch's slot goes to free_ for the next topic opened.
  std::deque<open_batch> open_;
  std::unordered_map<std::string_view, open_batch*> open_index_;
  std::vector<open_batch*> free_;
  open_batch* oldest_ = nullptr;
  open_batch* newest_ = nullptr;
  open_batch* last_ = nullptr;  // where the previous message went: a run of one topic skips the lookup
  std::size_t open_count_ = 0;
  std::size_t open_msgs_ = 0;
  std::size_t open_bytes_ = 0;
  std::size_t batch_hint_ = 0;  // size of the latest batch sent: what a new one reserves
  std::unordered_map<std::string, std::uint64_t> topic_seq_;

  std::deque<batch> inflight_;
  std::size_t next_send_ = 0;  // index of the first batch not (re)transmitted yet
  std::size_t inflight_msgs_ = 0;
  std::size_t inflight_bytes_ = 0;
  publisher_stats stats_;
  link_monitor::change_fn on_link_;
  std::unique_ptr<link_monitor> link_;  // after sock_: stops watching before the socket closes
};

}  // namespace zrelay
