#pragma once
// Relay counters: written by the relay thread, readable from any thread.

#include <atomic>
#include <cstdint>
#include <string>

/// Every relay counter once, in the order of the stats line: X(name, kind, what it counts). kind is
/// `counter` (only goes up) or `gauge` (a level now: it goes down too). The snapshot, the live
/// atomics, the stats line, the JSON form, for_each_counter and the metrics page (zrelay_NAME_total
/// for a counter, zrelay_NAME for a gauge, the text as its help) are all made from it, so a counter
/// added here appears in each of them.
#define ZRELAY_COUNTERS(X)                                                                                            \
  X(msgs_in, counter, "user messages received (records of batches, plain messages)")                                  \
  X(bytes_in, counter, "bytes of those messages' frames")                                                             \
  X(msgs_out, counter, "user messages handed to the subscriber socket")                                               \
  X(bytes_out, counter, "bytes of those messages' frames")                                                            \
  X(acks, counter, "ack replies sent (each may cover many messages)")                                                 \
  X(nacks, counter, "messages refused with a NACK")                                                                   \
  X(duplicates, counter, "messages received again and re-acked, not forwarded")                                       \
  X(dropped, counter, "messages not delivered to at least one full subscriber")                                       \
  X(blocked, counter, "times forwarding began holding messages for a full subscriber (under either full policy)")     \
  X(malformed, counter, "messages that broke the protocol (did not decode, or broke a sequence or topic rule)")       \
  X(subscriptions, counter, "subscribe frames seen on the subscriber socket")                                         \
  X(unsubscriptions, counter, "unsubscribe frames seen on the subscriber socket")                                     \
  X(refused, counter, "fire-and-forget messages dropped (too large, topic too long; nobody to NACK)")                 \
  X(clients_refused, counter, "connections the security handler turned away")                                         \
  X(disconnects, counter,                                                                                             \
    "publisher connections that ended after their handshake (closed, lost, or cut for a frame "                       \
    "over the frame limit)")                                                                                          \
  X(publishers, gauge, "acked publishers currently known")                                                            \
  X(journaled, counter, "messages stored in the journal (synced, with --journal-fsync on)")                           \
  X(journal_syncs, counter, "fdatasyncs of the journal that returned")                                                \
  X(journal_errors, counter, "journal writes or syncs that failed (what they covered was not acked)")                 \
  X(unjournaled, counter, "fire-and-forget messages forwarded without being stored, while the journal failed")        \
  X(replays, counter, "replay sessions started (journal only; counted by the replay thread)")                         \
  X(replayed, counter, "messages sent by replay (counted by the replay thread)")                                      \
  X(subscriber_connections, gauge,                                                                                    \
    "subscriber connections open (their handshake done; a zsub holds two: its data and its heartbeat probe)")         \
  X(publisher_connections, gauge, "fire-and-forget publisher connections open (their handshake done)")                \
  X(ack_connections, gauge, "acked publisher connections open (their handshake done)")                                \
  X(held, gauge, "messages held for a full subscriber")                                                               \
  X(journal_pending, gauge, "messages appended to the journal and not yet stored")                                    \
  X(journal_unavailable, gauge, "1 while the journal cannot store (a write or sync failed), else 0")                  \
  X(journal_messages, gauge, "journal seqs retained, from the oldest retained to the last written")                   \
  X(journal_bytes, gauge, "bytes of the journal's segment files")                                                     \
  X(journal_segments, gauge, "segment files of the journal")                                                          \
  X(journal_bytes_written, counter, "bytes of entries the journal wrote")                                             \
  X(journal_segments_removed, counter, "segments removed by retention")                                               \
  X(link_msgs_out, counter, "messages sent to linked relays (each link counts its own; first sends only)")            \
  X(link_msgs_in, counter, "messages accepted from linked relays")                                                    \
  X(link_resent, counter, "messages sent again on a link (not acked in time, asked for again, or after a reconnect)") \
  X(link_dropped, counter,                                                                                            \
    "messages that should have crossed a link and did not (its window full, or the link ended or was forgotten)")     \
  X(link_subs_out, counter, "subscription changes (prefixes) told to linked relays")                                  \
  X(link_subs_in, counter, "subscription changes (prefixes) heard from linked relays")                                \
  X(links_refused, counter, "link handshakes refused (a loop, this relay's own id, too many links)")                  \
  X(links_active, gauge, "links to other relays that are active (upstream and downstream)")                           \
  X(upstream_up, gauge, "1 while the link to the upstream is active, else 0")

namespace zrelay {

/// A copy of the relay's counters at one moment (one member per ZRELAY_COUNTERS entry).
struct relay_counters {
#define ZRELAY_COUNTER_MEMBER(name, kind, doc) std::uint64_t name = 0;
  ZRELAY_COUNTERS(ZRELAY_COUNTER_MEMBER)
#undef ZRELAY_COUNTER_MEMBER
  /// For /healthz, not counters: in neither the stats line nor the metrics page. relay::counters()
  /// sets it (a snapshot of relay_stats leaves it as here).
  struct liveness {
    std::uint64_t loop_age_ms = 0;  ///< since the relay thread last completed a turn of its loop
    bool stopping = false;          ///< the relay was asked to stop
  } live;
};

/// The live counters. Each has a single writer (the relay thread; clients_refused, the security
/// handler's thread; replays and replayed, the replay thread); relaxed atomics make reads safe. A
/// gauge is stored outright, a counter added to.
class relay_stats {
public:
  /// Adds n to a counter: a relaxed load and store, no read-modify-write on the hot path.
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// A consistent-enough copy for printing and tests.
  relay_counters snapshot() const;

#define ZRELAY_COUNTER_ATOMIC(name, kind, doc) std::atomic<std::uint64_t> name{0};
  ZRELAY_COUNTERS(ZRELAY_COUNTER_ATOMIC)
#undef ZRELAY_COUNTER_ATOMIC
};

/// What a counter is: one that only goes up, or a level that goes down too.
enum class counter_kind { counter, gauge };

/// Calls fn(name, value) for each counter in the stats line's order; name is a `const char*`.
template <typename Fn>
void for_each_counter(const relay_counters& c, Fn&& fn) {
#define ZRELAY_COUNTER_VISIT(name, kind, doc) fn(#name, c.name);
  ZRELAY_COUNTERS(ZRELAY_COUNTER_VISIT)
#undef ZRELAY_COUNTER_VISIT
}

/// The same with what each is: fn(name, kind, doc, value), name and doc `const char*`.
template <typename Fn>
void for_each_counter_described(const relay_counters& c, Fn&& fn) {
#define ZRELAY_COUNTER_DESCRIBE(name, kind, doc) fn(#name, counter_kind::kind, doc, c.name);
  ZRELAY_COUNTERS(ZRELAY_COUNTER_DESCRIBE)
#undef ZRELAY_COUNTER_DESCRIBE
}

/// One line of key=value pairs, e.g. "msgs_in=10 bytes_in=640 … publishers=0".
std::string format_counters(const relay_counters& c);

/// One JSON object and no newline, the same keys in the same order: {"msgs_in":10,"bytes_in":640,…}.
std::string format_counters_json(const relay_counters& c);

}  // namespace zrelay
