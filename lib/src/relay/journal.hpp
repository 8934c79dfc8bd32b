#pragma once
// The journal: an append-only, segmented log of every message the relay accepts (zrelay --journal
// DIR). The relay thread appends entries (zrelay/record.hpp) to a group in memory and hands the
// group over once per loop turn; a writer thread writes the groups, fdatasyncs once for everything
// written since the last sync (group commit), and reports how far it got through an eventfd that
// the relay's loop reads. The relay thread never waits on the disk. Readers (replay) read the
// segments from any thread, up to what is written.
//
// Files in DIR (docs/ARCHITECTURE.md, "The journal"):
//   LOCK                         flock()ed while a relay uses DIR
//   <20-digit jseq>.seg          a segment: entries back to back; the name is the jseq of its first
//                                entry (a new segment's name says where the journal goes on, even empty)
// Anything else in DIR is left alone.
//
// Recovery (the constructor) scans every segment: a torn tail of the last segment is truncated,
// damaged entries elsewhere are skipped (resync on the next entry that decodes), and each is said
// in recovery_report::notes. A damaged file never stops the relay; an unusable DIR does (unusable).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "zrelay/record.hpp"

namespace zrelay::journal {

/// DIR cannot be used (not a directory, no permission, locked by another relay): what() is the
/// one-line error for the user ("journal directory /x: ...").
class unusable : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// For tests: stand-ins for the system calls the writer makes, to inject failures.
struct fault_hooks {
  /// Called instead of fdatasync(fd): 0, or an errno to fail with.
  std::function<int(int fd)> sync;
  /// Called after every sync that succeeded, from the writer thread: the segment file and the size
  /// it had when the sync began (what a power loss cannot take away).
  std::function<void(const std::string& path, std::uint64_t synced_size)> synced;
};

struct config {
  std::string dir;
  /// Sync (fdatasync) before what is written counts as durable; off: written counts as durable.
  bool fsync = true;
  /// Retention: delete whole oldest segments while the journal is larger (0: default_max_bytes(dir)).
  std::uint64_t max_bytes = 0;
  /// Retention: delete whole oldest segments whose newest entry is older (0: no limit).
  std::chrono::seconds max_age{0};
  /// A segment is closed and a new one begun once it is this large.
  std::uint64_t segment_bytes = std::uint64_t{64} << 20;
  /// More than this appended and not yet written: full() (the relay stops reading publishers).
  std::uint64_t max_backlog_bytes = std::uint64_t{64} << 20;
  fault_hooks faults;
};

/// The retention default: a quarter of the size of the filesystem DIR is on, at most 4 GiB.
std::uint64_t default_max_bytes(const std::string& dir);

/// What recovery found and did.
struct recovery_report {
  std::uint64_t next_jseq = 1;    ///< appends go on here
  std::uint64_t oldest_jseq = 1;  ///< the first retained (== next_jseq when empty)
  std::uint64_t messages = 0;     ///< retained messages
  std::uint64_t bytes = 0;        ///< bytes of the segments
  std::uint64_t segments = 0;
  std::uint64_t last_time_ns = 0;  ///< the newest entry's time: the relay's clock for entries never goes below it
  /// Every acked publisher with a batch retained, and the sequence after its last stored one: the
  /// relay rebuilds its sessions from these, so a resend of a stored batch is re-acked.
  struct publisher_next {
    std::uint64_t publisher = 0, next = 0;
  };
  std::vector<publisher_next> publishers;
  /// One line for a person per thing done: "journal: truncated 17 bytes of a torn entry at the end of
  /// 00000000000000000001.seg", "journal: 00000000000000000001.seg: a damaged entry at offset 4096:
  /// journal seqs 120-131 lost (98 bytes skipped)".
  std::vector<std::string> notes;
};

/// Where the writer is (store::poll()).
struct progress {
  std::uint64_t written = 1;  ///< every jseq below this is written (replay can read it)
  std::uint64_t durable = 1;  ///< every jseq below this is synced (== written with fsync off)
  /// The entries from `from` on were not stored (nor will be): the disk is full, a write or sync
  /// failed. `why` is the system's text ("No space left on device"). The relay answers for them and
  /// calls rewind(from). poll() reports a failure once. After a failed sync `written` goes back to
  /// `from`: what the sync covered was written (and may have been read) but is cut back.
  struct failure {
    std::uint64_t from = 0;
    std::string why;
  };
  std::optional<failure> failed;
};

/// A place in the journal for a reader: the segment (by its first jseq), the offset of an entry in
/// it, and that entry's jseq.
struct position {
  std::uint64_t segment = 0;
  std::uint64_t offset = 0;
  std::uint64_t jseq = 0;
};

/// Counters the writer keeps (relaxed reads from any thread), and the size of the journal now.
struct writer_counters {
  std::uint64_t syncs = 0;          ///< fdatasyncs that returned
  std::uint64_t bytes_written = 0;  ///< bytes of entries written
  std::uint64_t failures = 0;       ///< writes or syncs that failed
  std::uint64_t segments_removed = 0;
  std::uint64_t bytes = 0;     ///< of the segment files now
  std::uint64_t segments = 0;  ///< segment files now
  std::uint64_t messages = 0;  ///< jseqs retained now: from the oldest retained to the written head
};

class store {
public:
  /// Opens DIR (creating it if it is missing, not its parents), locks it, recovers, starts the
  /// writer. Throws unusable.
  explicit store(config cfg);
  /// Writes and syncs what was handed over, then stops the writer.
  ~store();
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  const recovery_report& recovered() const;
  const config& settings() const;

  // --- the relay thread only ---

  /// Appends one entry (copied) to the group being built; returns the jseq of its first message.
  std::uint64_t append(record::kind k, std::uint32_t count, const std::string_view* frames, std::size_t n,
                       std::uint64_t time_ns);
  /// Hands the group built since the last flush to the writer (once per loop turn; cheap when empty).
  void flush();
  /// More than max_backlog_bytes appended and not yet written.
  bool full() const;
  /// The jseq the next append gets.
  std::uint64_t next_jseq() const;
  /// Readable when poll() has news (an eventfd; poll() reads it).
  int notify_fd() const;
  /// Where the writer is.
  progress poll();
  /// After a failure at `from`: appends go on at jseq `from`; the writer drops the groups it still
  /// has from before and tries again with the next group (after cutting the segment back to the end
  /// of its last entry written whole). A failed sync is never retried: what it covered is cut back.
  void rewind(std::uint64_t from);

  // --- any thread (replay) ---

  /// The first retained jseq and the written head (every jseq below head is readable), together.
  struct bounds {
    std::uint64_t oldest = 1, head = 1;
  };
  bounds range() const;
  /// The entry that holds `from` or, if retention removed it, the oldest retained one; nullopt when
  /// nothing at or after `from` is written yet (read from `head` later).
  std::optional<position> seek_seq(std::uint64_t from) const;
  /// The first entry accepted at or after `time_ns`, below the head (nullopt: none yet).
  std::optional<position> seek_time(std::uint64_t time_ns) const;
  /// The newest retained message of each topic that starts with one of `prefixes` (none: every
  /// topic), as positions of the entries holding them, in jseq order (position::jseq is the message's
  /// own jseq: read its entry with record::append_from(jseq)). `head` is the head at the same moment
  /// (range().head): live delivery goes on from it; a topic whose newest message is past it is left out
  /// (that message comes after the head).
  std::vector<position> last_per_topic(const std::vector<std::string>& prefixes, std::uint64_t& head) const;

  /// A reader's open segment; one per replay.
  class cursor {
  public:
    cursor() = default;
    ~cursor();
    cursor(cursor&&) noexcept;
    cursor& operator=(cursor&&) noexcept;
    /// The jseq the next entry read should start at (skips are reported by read()).
    std::uint64_t next = 0;

  private:
    friend class store;
    int fd_ = -1;
    std::uint64_t segment_ = 0;
    std::uint64_t offset_ = 0;
  };
  /// A cursor at `p`.
  cursor open(const position& p) const;
  /// Appends whole entries from `c` to `out`, up to about `max_bytes` (at least one entry when one
  /// is written) and never past the head; moves `c` on, into the next segment as needed. Returns
  /// the number of entries appended. `skipped` gets the messages passed over: removed by retention
  /// under the reader, or damaged (the jseqs from c.next to the next entry read).
  std::size_t read(cursor& c, std::string& out, std::size_t max_bytes, std::uint64_t& skipped) const;
  /// Readable (an eventfd) when the head moved; for one reader thread to wait on.
  int head_fd() const;
  /// Reads head_fd.
  void clear_head_fd() const;

  writer_counters counters() const;

  // --- any thread ---

  /// New retention bounds (max_bytes 0: the default for the directory), applied by the writer at
  /// once and from then on (zrelay's reload).
  void set_retention(std::uint64_t max_bytes, std::chrono::seconds max_age);
  /// The size bound in force (the default resolved).
  std::uint64_t retention_bytes() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zrelay::journal
