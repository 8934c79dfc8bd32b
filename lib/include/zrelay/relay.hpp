#pragma once
// The relay: XSUB in, XPUB out, ROUTER for acked publishers. Runs in the calling thread.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "zrelay/defaults.hpp"  // the topic limits (min_max_topic, max_topic_limit), frame_limit()
#include "zrelay/security.hpp"
#include "zrelay/stats.hpp"

namespace zrelay {

/// Thrown when a socket cannot bind; what() reads "cannot bind 'tcp://…': Address already in use".
class bind_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// What the relay does when a subscriber's queue is full.
enum class full_policy {
  drop,   ///< wait up to full_wait, then deliver to everyone else and count a drop (the subscriber sees a gap)
  block,  ///< stop reading publishers until the subscriber catches up (acked publishers wait)
};

/// Parses "drop" or "block"; throws std::invalid_argument otherwise.
full_policy parse_full_policy(std::string_view text);

/// How to build a relay. The defaults bind loopback only.
/// The journal (zrelay --journal): every accepted message stored, acks after the sync that covers
/// them, replay for late joiners. An empty dir is memory mode (no journal).
struct journal_config {
  std::string dir;
  bool fsync = true;                ///< off: acked once written (survives a crash of the relay, not a power loss)
  std::uint64_t max_bytes = 0;      ///< retention by size (0: a quarter of the filesystem, at most 4 GiB)
  std::chrono::seconds max_age{0};  ///< retention by age (0: none)
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  std::string replay_bind = default_endpoint(default_replay_port);  ///< ROUTER serving replays
  /// For tests: instead of fdatasync(fd), returns 0 or an errno.
  std::function<int(int fd)> test_sync;
  /// For tests: after each sync that succeeded (writer thread), a segment's path and its synced size.
  std::function<void(const std::string& path, std::uint64_t size)> test_synced;
};

/// Federation (zrelay --upstream): this relay's link to the relay above it in a tree of relays.
/// Any relay takes links from below on its ack socket; only the one above is configured.
struct upstream_config {
  std::string ack;         ///< the upstream's ack endpoint; empty: no upstream
  std::string server_key;  ///< its CURVE public key (Z85): the link then uses relay_config::curve's key pair
  /// Messages sent to one linked relay and not yet acknowledged, at most (in messages and bytes);
  /// past either, what would cross that link is dropped and counted (link_dropped).
  std::size_t window_msgs = 1000000;
  std::size_t window_bytes = std::size_t{256} << 20;
};

struct relay_config {
  std::string pub_bind = default_endpoint(default_pub_port);  ///< XSUB: fire-and-forget publishers connect here
  std::string sub_bind = default_endpoint(default_sub_port);  ///< XPUB: subscribers connect here
  std::string ack_bind = default_endpoint(default_ack_port);  ///< ROUTER: acked publishers connect here
  full_policy on_full = full_policy::drop;
  int hwm = 1000;  ///< high-water mark (ZeroMQ messages) of every socket
  std::size_t max_msg_size =
      default_max_msg_size;  ///< largest message accepted (0 = none); a larger one is refused and counted
  /// Longest topic of a subscription or a message, in bytes (min_max_topic to max_topic_limit).
  std::size_t max_topic = default_max_topic;
  std::chrono::milliseconds full_wait{100};       ///< drop policy: how long a full subscriber may hold the others up
  std::chrono::milliseconds linger{1000};         ///< how long shutdown may spend flushing queues
  std::chrono::seconds publisher_idle{600};       ///< forget an acked publisher idle this long
  std::chrono::milliseconds expect_repeat{1000};  ///< how soon an EXPECT for the same sequence may be sent again
  curve_config curve;  ///< a key pair makes every tcp/ipc socket CURVE; allowed_keys are let in
  std::chrono::milliseconds heartbeat{
      1000};  ///< ZeroMQ heartbeats to publishers, TCP keepalives to subscribers (0: none)
  journal_config journal;
  /// After a turn with work, look for the next message without sleeping for up to this long, while
  /// messages come at shorter gaps (lower latency for more CPU; an idle relay never spins; 0: never).
  std::chrono::microseconds spin{default_spin_us};
  /// Publish the counters as JSON (relay::status_json()) on relay::sys_topic() this often (0: never).
  /// Not journaled; a subscriber whose queue is full misses a sample rather than hold anything up.
  std::chrono::milliseconds sys_interval{0};
  upstream_config upstream;
};

/// The endpoints the relay actually bound (ephemeral ports resolved).
struct bound_endpoints {
  std::string pub, sub, ack;
  std::string replay;    ///< empty without a journal
  std::string upstream;  ///< the upstream's ack endpoint this relay links to; empty without one
};

/// The relay. Construct (binds), then run() until request_stop(), a readable stop_fd, or the
/// context is shut down.
class relay {
public:
  /// Receives one line of text for a person (warnings, and with verbose on, events).
  using log_fn = std::function<void(std::string_view)>;
  /// Called every stats interval from the relay thread.
  using tick_fn = std::function<void(const relay_counters&)>;

  /// Validates and binds all three sockets; throws endpoint_error or bind_error (and
  /// std::invalid_argument for a topic limit out of range).
  relay(zmq::context_t& ctx, relay_config cfg);
  ~relay();
  relay(const relay&) = delete;
  relay& operator=(const relay&) = delete;

  /// What was bound.
  const bound_endpoints& endpoints() const;
  /// Where warnings go (the first refusal under each rule is logged; all of them with verbose).
  void set_logger(log_fn log, bool verbose = false);
  /// Calls fn every `every` while running (0: never). May be called again from the relay thread (a
  /// watch handler): the next call comes `every` from then.
  void on_tick(std::chrono::milliseconds every, tick_fn fn);
  /// Verbose logging on or off (thread-safe).
  void set_verbose(bool verbose);

  /// A setting reconfigure() could not apply: its zrelay option name and why.
  struct not_applied {
    std::string key;
    std::string why;
  };
  /// From the relay thread only (a watch or tick handler, e.g. zrelay's reload on SIGHUP): applies
  /// the settings of `next` that can change while running — the size and topic limits (lowered, or
  /// raised up to their values at start, which the sockets' frame limits were set for), the full
  /// policy and wait, the spin window, the $SYS interval, the journal's retention and the CURVE allowlist (for
  /// handshakes from now on). The rest of `next` is ignored: endpoints, the high-water mark,
  /// heartbeats, the key pair, the journal's directory, fsync and segment size take a restart.
  /// Connections stay. Returns what it could not apply.
  std::vector<not_applied> reconfigure(const relay_config& next);
  /// Registers one more reader in the relay's loop (before run()): fn runs in the relay thread whenever
  /// `fd` is readable (a signalfd, an eventfd), also while a message is held for a full subscriber.
  void watch(int fd, std::function<void()> fn);
  /// The same for a ZeroMQ socket (a control socket); it must outlive run().
  void watch(zmq::socket_t& socket, std::function<void()> fn);
  /// Forwards until stopped; flushes what it holds (bounded by linger) before returning.
  void run(int stop_fd = -1);
  /// Thread-safe: run() stops reading within about 100 ms, then flushes what it holds (up to linger).
  void request_stop();
  /// The counters now (thread-safe).
  relay_counters counters() const;
  /// The counters now as one JSON object, after what identifies this relay and the time:
  /// {"relay":"<id, 16 hex digits>","host":"…","pid":…,"time":"<RFC 3339, UTC>","uptime_ms":…,"msgs_in":…,…}
  /// (thread-safe). The $SYS payload and the answer to `zrelay ctl stats`.
  std::string status_json() const;
  /// The links to other relays for the stats line: " link[up EP]=active,in=…,out=…" per link,
  /// empty without any (thread-safe; refreshed every turn of the loop).
  std::string links_text() const;
  /// Where the $SYS samples go: "$SYS.<host name>.stats".
  const std::string& sys_topic() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zrelay
