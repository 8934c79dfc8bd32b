#pragma once
// Relay counters: written by the relay thread, readable from any thread.

#include <atomic>
#include <cstdint>
#include <string>

namespace zrelay {

/// A copy of the relay's counters at one moment.
struct relay_counters {
  std::uint64_t msgs_in = 0;         ///< user messages received (records of batches, plain messages)
  std::uint64_t bytes_in = 0;        ///< bytes of those messages' frames
  std::uint64_t msgs_out = 0;        ///< user messages handed to the subscriber socket
  std::uint64_t bytes_out = 0;
  std::uint64_t acks = 0;            ///< ack replies sent (each may cover many messages)
  std::uint64_t nacks = 0;           ///< messages refused with a NACK
  std::uint64_t duplicates = 0;      ///< messages received again and re-acked, not forwarded
  std::uint64_t dropped = 0;         ///< messages not delivered to at least one full subscriber
  std::uint64_t blocked = 0;         ///< times forwarding waited on a full subscriber (block)
  std::uint64_t malformed = 0;       ///< frames that could not be decoded
  std::uint64_t subscriptions = 0;   ///< subscribe frames seen on the subscriber socket
  std::uint64_t unsubscriptions = 0;
  std::uint64_t refused = 0;         ///< fire-and-forget messages dropped (too large, topic too long; nobody to NACK)
  std::uint64_t clients_refused = 0; ///< connections the security handler turned away
  std::uint64_t disconnects = 0;     ///< publisher connections that ended after their handshake (closed, lost, or cut for a frame over the frame limit)
  std::uint64_t publishers = 0;      ///< acked publishers currently known
};

/// The live counters. Each has a single writer (the relay thread; clients_refused, the security
/// handler's thread); relaxed atomics make reads safe.
class relay_stats {
public:
  /// Adds n to a counter: a relaxed load and store, no read-modify-write on the hot path.
  static void add(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  /// A consistent-enough copy for printing and tests.
  relay_counters snapshot() const;

  std::atomic<std::uint64_t> msgs_in{0}, bytes_in{0}, msgs_out{0}, bytes_out{0}, acks{0}, nacks{0},
      duplicates{0}, dropped{0}, blocked{0}, malformed{0}, subscriptions{0}, unsubscriptions{0},
      refused{0}, clients_refused{0}, disconnects{0}, publishers{0};
};

/// One line of key=value pairs, e.g. "msgs_in=10 bytes_in=640 … dropped=0".
std::string format_counters(const relay_counters& c);

}  // namespace zrelay
