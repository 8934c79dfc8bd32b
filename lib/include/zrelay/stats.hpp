#pragma once
// Relay counters: written by the relay thread, readable from any thread.

#include <atomic>
#include <cstdint>
#include <string>

/// Every relay counter once, in the order of the stats line: X(name, what it counts). The snapshot,
/// the live atomics, the stats line, the JSON form and for_each_counter are all made from it, so a
/// counter added here appears in each of them.
#define ZRELAY_COUNTERS(X)                                                                                   \
  X(msgs_in, "user messages received (records of batches, plain messages)")                                  \
  X(bytes_in, "bytes of those messages' frames")                                                             \
  X(msgs_out, "user messages handed to the subscriber socket")                                               \
  X(bytes_out, "bytes of those messages' frames")                                                            \
  X(acks, "ack replies sent (each may cover many messages)")                                                 \
  X(nacks, "messages refused with a NACK")                                                                   \
  X(duplicates, "messages received again and re-acked, not forwarded")                                       \
  X(dropped, "messages not delivered to at least one full subscriber")                                       \
  X(blocked, "times forwarding began holding messages for a full subscriber (under either full policy)")     \
  X(malformed, "messages that broke the protocol (did not decode, or broke a sequence or topic rule)")       \
  X(subscriptions, "subscribe frames seen on the subscriber socket")                                         \
  X(unsubscriptions, "unsubscribe frames seen on the subscriber socket")                                     \
  X(refused, "fire-and-forget messages dropped (too large, topic too long; nobody to NACK)")                 \
  X(clients_refused, "connections the security handler turned away")                                         \
  X(disconnects, "publisher connections that ended after their handshake (closed, lost, or cut for a frame " \
                 "over the frame limit)")                                                                    \
  X(publishers, "acked publishers currently known")                                                          \
  X(journaled, "messages stored in the journal (synced, with --journal-fsync on)")                           \
  X(journal_syncs, "fdatasyncs of the journal that returned")                                                \
  X(journal_errors, "journal writes or syncs that failed (what they covered was not acked)")                 \
  X(unjournaled, "fire-and-forget messages forwarded without being stored, while the journal failed")        \
  X(replays, "replay sessions started (journal only; counted by the replay thread)")                         \
  X(replayed, "messages sent by replay (counted by the replay thread)")

namespace zrelay {

/// A copy of the relay's counters at one moment (one member per ZRELAY_COUNTERS entry).
struct relay_counters {
#define ZRELAY_COUNTER_MEMBER(name, doc) std::uint64_t name = 0;
  ZRELAY_COUNTERS(ZRELAY_COUNTER_MEMBER)
#undef ZRELAY_COUNTER_MEMBER
};

/// The live counters. Each has a single writer (the relay thread; clients_refused, the security
/// handler's thread; replays and replayed, the replay thread); relaxed atomics make reads safe.
class relay_stats {
public:
  /// Adds n to a counter: a relaxed load and store, no read-modify-write on the hot path.
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// A consistent-enough copy for printing and tests.
  relay_counters snapshot() const;

#define ZRELAY_COUNTER_ATOMIC(name, doc) std::atomic<std::uint64_t> name{0};
  ZRELAY_COUNTERS(ZRELAY_COUNTER_ATOMIC)
#undef ZRELAY_COUNTER_ATOMIC
};

/// Calls fn(name, value) for each counter in the stats line's order; name is a `const char*`.
template <typename Fn>
void for_each_counter(const relay_counters& c, Fn&& fn) {
#define ZRELAY_COUNTER_VISIT(name, doc) fn(#name, c.name);
  ZRELAY_COUNTERS(ZRELAY_COUNTER_VISIT)
#undef ZRELAY_COUNTER_VISIT
}

/// One line of key=value pairs, e.g. "msgs_in=10 bytes_in=640 … publishers=0".
std::string format_counters(const relay_counters& c);

/// One JSON object and no newline, the same keys in the same order: {"msgs_in":10,"bytes_in":640,…}.
std::string format_counters_json(const relay_counters& c);

}  // namespace zrelay
