#pragma once
// The subscriber: SUB socket with ZeroMQ prefix filtering, batch decoding and gap detection; or,
// replaying a relay's journal, a DEALER on the relay's replay socket (docs/PROTOCOL.md, "Replay")
// whose stream runs on into live delivery.

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "zrelay/connection.hpp"
#include "zrelay/defaults.hpp"
#include "zrelay/detail/once.hpp"
#include "zrelay/security.hpp"
#include "zrelay/wire.hpp"

namespace zrelay {

/// One delivered message. The views are valid only during the callback.
struct message_view {
  std::string_view topic;
  std::string_view payload;
  std::uint64_t publisher = 0;  ///< 0 for a plain [topic][payload] message
  std::uint64_t topic_seq = 0;  ///< sequence within (publisher, topic); 0 when plain
  /// The relay's journal sequence (zrelay --journal): from a replay, or a batch delivered live with a
  /// version-2 header; 0 when unknown (a relay without a journal, a plain message delivered live).
  std::uint64_t journal_seq = 0;
};

/// Messages a subscriber can tell it missed: the publisher's topic sequence jumped.
struct gap_info {
  std::string topic;
  std::uint64_t publisher = 0;
  std::uint64_t expected = 0;      ///< the sequence that should have come next
  std::uint64_t received = 0;      ///< the sequence that came instead
  bool across_disconnect = false;  ///< the stream's first message since the relay connection closed
  std::uint64_t missing() const { return received - expected; }
};

/// What to replay from a relay's journal before going on live.
enum class replay_mode {
  none,            ///< no replay: subscribe to live delivery only
  from_seq,        ///< from journal sequence `value` (1: everything retained)
  since,           ///< from the first message accepted at or after `value` (ns since the Unix epoch)
  last_per_topic,  ///< the newest retained message of each matching topic
};

/// Replay settings of a subscriber.
struct replay_config {
  replay_mode mode = replay_mode::none;
  std::uint64_t value = 0;                                       ///< from_seq: the sequence; since: the time
  std::string endpoint = default_endpoint(default_replay_port);  ///< the relay's --replay-bind
  std::uint32_t credit = 8;                                      ///< DATA messages the relay may send ahead
};

/// How to build a subscriber.
struct subscriber_config {
  std::string endpoint = default_endpoint(default_sub_port);
  std::vector<std::string> topics;  ///< ZeroMQ prefixes; "" is everything
  bool dedup = false;               ///< drop messages whose sequence was already delivered
  bool bind = false;                ///< bind `endpoint` (publishers connect to us) instead of connecting
  std::chrono::milliseconds connect_timeout{3000};
  int hwm = 1000;
  /// ZeroMQ heartbeat interval (0: none). The relay counts as lost after 3 silent intervals,
  /// judged on a connection of its own that carries no data (see subscriber::on_link).
  std::chrono::milliseconds heartbeat{1000};
  curve_config curve;  ///< key pair + server_key: connect with CURVE
  /// A replay mode connects to replay.endpoint INSTEAD of `endpoint`: the journal's history on
  /// `topics`, then what comes live, with no gap and no duplicate between them.
  replay_config replay;
};

/// Counters so far.
struct subscriber_stats {
  std::uint64_t received = 0;     ///< messages delivered to the callback
  std::uint64_t gaps = 0;         ///< gap events
  std::uint64_t missing = 0;      ///< messages missing across all gaps (less those that came late)
  std::uint64_t duplicates = 0;   ///< messages seen again (dropped when dedup is on)
  std::uint64_t malformed = 0;    ///< ZeroMQ messages that could not be decoded
  std::uint64_t late = 0;         ///< messages that came after their gap was reported (in received)
  std::uint64_t disconnects = 0;  ///< times the connection carrying the subscription closed
  /// Streams (publisher, topic) not heard from since a disconnection, whose losses meanwhile are
  /// not in `missing` yet; plain messages seen before a disconnection count as one, for good.
  std::uint64_t unaccounted = 0;
  /// False while `missing` may fall short: a disconnection is not accounted for yet.
  bool missing_exact() const { return unaccounted == 0; }
  /// Replay: messages the relay passed over (removed by retention before or while they were read,
  /// or damaged in its journal).
  std::uint64_t replay_skipped = 0;
};

/// Thrown by subscriber::receive() and service() when the relay closes the connection right after
/// each of several handshakes while a topic over min_max_topic is subscribed: it refuses the
/// subscription.
class subscription_refused : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Thrown by subscriber::receive() and service() when the relay refuses a replay (a bad request,
/// too many replays at once); what() carries the relay's reason.
class replay_refused : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// Receives from a relay (or any ZeroMQ PUB/XPUB). Not thread-safe. Either receive() waits, or
/// the caller polls poll_items() in its own loop and calls service().
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
  /// What receive() and service() report about the relay. `lost` and `restored` tell whether it
  /// answers heartbeats (on a connection of their own, so that a full queue does not read as a dead
  /// relay; with heartbeats off, from the data connection). `cut`: the connection carrying the
  /// subscription closed, and what the relay had queued for it is gone (ZeroMQ reconnects and
  /// subscribes again by itself; each stream's next message shows what was lost).
  enum class link_event { lost, restored, cut };
  using link_fn = std::function<void(link_event)>;
  /// Called from receive() or service() on each link_event.
  void on_link(link_fn fn) { on_link_ = std::move(fn); }
  /// Replay: called once the history asked for is delivered (what follows is live), with the
  /// journal sequence the stream has reached.
  using live_fn = std::function<void(std::uint64_t journal_seq)>;
  void on_live(live_fn fn) { on_live_ = std::move(fn); }
  /// Replay: true once the history asked for is delivered; always true without replay.
  bool live() const { return live_; }

  /// Why receive() returned.
  enum class result { delivered, timeout, stopped, woken };

  /// Waits up to `timeout` (negative: forever) for data, then delivers every message already
  /// waiting, up to a bounded burst. `stopped`: the callback returned false; `woken`: wake_fd
  /// became readable (before any data: what waits stays unread). Throws subscription_refused.
  /// A loop over poll_items() and service().
  result receive(std::chrono::milliseconds timeout, const message_fn& fn, int wake_fd = -1);

  /// What to poll in the caller's own loop, beside its other sockets: [0] the data socket, [1] and
  /// [2] the monitors that report the data connection and the relay's liveness (on_link). A
  /// monitor not in use (before connect(), with `bind`, inproc or heartbeats off) is inert: no
  /// socket, fd -1, no events, which zmq::poll passes over. Fixed once connect() has returned.
  std::array<zmq::pollitem_t, 3> poll_items();
  /// Non-blocking: reads what the monitors reported, then delivers the messages already waiting,
  /// up to a bounded burst (the data item stays readable while more wait). Call it when any of
  /// poll_items() is readable; at other times it finds nothing to do. False when the callback
  /// returned false (the rest of that batch is discarded). Throws subscription_refused.
  bool service(const message_fn& fn);
  /// How long the caller may sleep before service() has work that poll_items() does not show: at
  /// most 1 s, as publisher's, safe to combine with std::min. A replaying subscriber has a timer
  /// (its keepalive to the relay, at least every second): call service() at least this often.
  std::chrono::milliseconds next_timeout() const;

  const subscriber_stats& stats() const { return stats_; }

private:
  // Sequences reported missing, [from, to), kept so that one arriving late is not taken for a
  // duplicate.
  struct hole {
    std::uint64_t from, to;
  };
  // One (publisher, topic).
  struct stream {
    std::uint64_t next = 0;   // the topic seq expected next
    std::uint32_t conn = 0;   // the connection its latest message came on (connection_of)
    bool away = false;        // not heard from on a later connection since a disconnection
    std::vector<hole> holes;  // the latest gaps not yet filled, oldest first
  };
  // A connection messages came on. ZeroMQ gives each connection its own metadata, and the
  // address of a property's value tells them apart; `keep` holds a message of it so that the
  // address cannot be reused by a later connection while it is here.
  struct connection_tag {
    const char* tag;
    zmq::message_t keep;
    std::uint32_t id;
  };

  enum class step { empty, next, stop };
  step deliver(const message_fn& fn);
  step deliver_replay(std::size_t n, const message_fn& fn);
  step deliver_entries(const char* data, std::size_t size, const message_fn& fn);
  bool deliver_batch(std::string_view topic, const wire::batch_header& h, std::string_view body, std::uint64_t jseq,
                     std::uint32_t conn, const message_fn& fn);
  void send_replay_request();
  void send_credit(std::uint32_t n);
  void keepalive();
  stream& check_sequence(std::uint64_t publisher, std::string_view topic, std::uint64_t first, std::uint32_t count,
                         std::uint32_t conn, std::uint64_t& seen_below);
  static bool fill_hole(stream& s, std::uint64_t seq);
  std::uint32_t connection_of(zmq::message_t& frame);
  void drain_links();
  void data_link_changed(link_monitor::change c);
  // Kinds of bad input, each warned about once.
  enum class warning { version, header, body, frames, replay, count_ };
  void warn_once(warning kind, const std::string& text);

  subscriber_config cfg_;
  zmq::context_t& ctx_;
  zmq::socket_t sock_;
  zmq::socket_t probe_;  // heartbeats only, no subscription: its input never stalls
  std::vector<zmq::message_t> frames_;
  std::unordered_map<std::string, stream> streams_;  // key: publisher id bytes + topic
  std::vector<connection_tag> conns_;
  const char* last_tag_ = nullptr;
  std::uint32_t last_conn_ = 0;
  std::uint32_t conn_count_ = 0;
  std::uint32_t cut_upto_ = 0;  // connections up to this one have closed
  bool plain_seen_ = false;
  bool plain_away_ = false;
  // Telling a refused subscription: connections closed right after their handshake, in a row.
  std::size_t longest_topic_ = 0;
  std::chrono::steady_clock::time_point up_since_;
  bool delivered_since_up_ = false;
  int quick_cuts_ = 0;
  std::string concat_;
  gap_fn on_gap_;
  warn_fn on_warning_;
  detail::once_per_kind<warning> warned_;
  subscriber_stats stats_;
  link_fn on_link_;
  live_fn on_live_;
  bool replaying_ = false;                           // a replay mode: sock_ is a DEALER on the replay socket
  bool live_ = true;                                 // replay: LIVE came (or no replay)
  bool awaiting_start_ = false;                      // replay: a REPLAY went out and its START has not come
  bool tailing_ = false;                             // replay: past the history (LIVE came): a re-request is from-seq
  std::uint64_t resume_ = 0;                         // replay: the next journal seq needed (0: none known yet)
  std::chrono::steady_clock::time_point last_sent_;  // replay: the last request or credit sent
  std::chrono::steady_clock::time_point last_request_;  // replay: the last REPLAY sent
  std::string trimmed_;                                 // replay: an entry cut to what is new
  // After the sockets: they stop watching before the sockets close.
  std::unique_ptr<link_monitor> link_;        // the data connection
  std::unique_ptr<link_monitor> probe_link_;  // the relay's liveness
};

}  // namespace zrelay
