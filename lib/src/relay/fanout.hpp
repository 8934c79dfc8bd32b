#pragma once
// Fanout: the subscriber socket (XPUB), the queue of messages held while a subscriber is full, and
// the full policy. It reports what became of each message it was given a tag for — sent, or
// dropped for a full subscriber — and knows nothing of acks: the relay turns those reports into
// commits.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include <zmq.hpp>

#include "relay/log.hpp"
#include "zrelay/relay.hpp"

namespace zrelay {

class fanout {
public:
  using clock = std::chrono::steady_clock;
  /// What became of a message.
  enum class outcome {
    sent,       ///< handed to the subscriber socket for every subscriber
    dropped,    ///< a full subscriber missed it (drop policy, after full_wait); everyone else has it
    uncertain,  ///< shutting down, after a drop: ZeroMQ skips a full subscriber without a word now
  };
  using done_fn = std::function<void(std::uint64_t tag, outcome)>;

  /// `done` hears of every message sent with a tag other than 0, in the order they were sent.
  fanout(zmq::socket_t& xpub, full_policy policy, std::chrono::milliseconds full_wait, relay_stats& stats,
         relay_log& log, done_fn done);

  /// Sends frames[0..n) (moving from them) as one message, or holds it, in order behind anything
  /// held, while a subscriber is full. False while something is held: the caller stops reading
  /// publishers, which is what makes back-pressure reach them.
  bool send(zmq::message_t* frames, std::size_t n, std::uint64_t msgs, std::uint64_t bytes, std::uint64_t tag);
  /// Sends one message of the relay's own (a $SYS sample) at once, outside the queue and the
  /// counters: never held, never waited for. False when a full subscriber missed it (the others
  /// have it; the full one sees the gap in that stream).
  bool send_aside(zmq::message_t* frames, std::size_t n);
  /// Sends what is held, oldest first. Under the drop policy a full subscriber gets full_wait to make
  /// room; then the message goes to everyone else and counts as dropped (the subscriber sees the gap
  /// in the sequence numbers). True once nothing is held. With `wait`, the oldest message waits up to hold_wait for
  /// room, and goes the moment there is some (as zmq_proxy's blocking send does) instead of at the caller's next turn.
  bool retry(bool wait = false);
  /// The longest retry(true) waits.
  static constexpr std::chrono::milliseconds hold_wait{1};
  /// Shutting down: sends everything held to whoever has room. What a full subscriber misses
  /// counts as dropped, and every message from then on is `uncertain`.
  void give_up();
  /// A new full policy and wait (zrelay's reload), used from the next decision on: a message held
  /// under block goes on waiting under drop only for the new wait, counted from when it was held.
  void set_policy(full_policy policy, std::chrono::milliseconds full_wait) {
    policy_ = policy;
    full_wait_ = full_wait;
  }
  /// Whether something is held.
  bool holding() const { return !held_.empty(); }
  /// How many messages are held.
  std::size_t held() const { return held_.size(); }

private:
  struct held_message {
    std::vector<zmq::message_t> frames;
    std::uint64_t msgs = 0;  // user messages in it
    std::uint64_t bytes = 0;
    std::uint64_t tag = 0;
  };

  bool try_send(zmq::message_t* frames, std::size_t n, bool wait = false);
  void send_dropping(zmq::message_t* frames, std::size_t n);
  // Sends past a full subscriber and counts the drop.
  void pass_by(zmq::message_t* frames, std::size_t n, std::uint64_t msgs);
  void out(std::uint64_t msgs, std::uint64_t bytes, std::uint64_t tag, outcome o);
  bool flush_held(bool give_up, bool wait = false);

  enum class warning { not_keeping_up, count_ };

  zmq::socket_t& xpub_;
  full_policy policy_;
  std::chrono::milliseconds full_wait_;
  relay_stats& stats_;
  relay_log& log_;
  done_fn done_;
  std::deque<held_message> held_;
  clock::time_point held_since_;
  detail::once_per_kind<warning> warned_;
};

}  // namespace zrelay
