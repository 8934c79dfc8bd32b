#pragma once
// Ingress: the relay's rules for what publishers send, as pure functions on bytes. Frames in, a
// verdict out; no sockets, no state of its own. The relay (relay.cpp) reads the frames, asks for a
// verdict and carries it out: NACKs, EXPECTs, acks through the sessions, messages to the fanout.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zrelay/wire.hpp"

namespace zrelay::ingress {

/// A plain message on the publisher socket is read up to this many frames; one with more is
/// drained and dropped whole.
inline constexpr std::size_t max_frames = 64;
/// A batch with more runs of records over the size limit than this is refused whole, with one
/// NACK: a NACK per run would let one batch bring more replies than the ack socket holds (a lost
/// NACK, and the ACK after it passes the refused records off as accepted).
inline constexpr std::size_t max_refused_runs = 64;

/// The limits the rules hold messages to (relay_config's).
struct limits {
  std::size_t max_msg_size = 0;  ///< largest message (record) accepted; 0: none
  std::size_t max_topic = 0;     ///< longest topic
};

/// Each rule a message can break, on either publisher socket.
enum class rule : std::size_t {
  frames,           ///< ack socket: not [topic][header][body]; publisher socket: more than max_frames
  version,          ///< a header of another protocol version
  header,           ///< a header that does not decode
  body,             ///< a body that does not hold `count` records
  zero_id,          ///< publisher id or seq 0 (ack socket)
  floor_zero,       ///< ack floor 0 (ack socket)
  floor_above_seq,  ///< ack floor above the batch's seq (ack socket)
  seq_wraps,        ///< seq + count past the last sequence number
  topic_seq_wraps,  ///< topic seq + count past the last sequence number
  overlap,          ///< a batch overlapping messages already accepted (ack socket)
  empty_topic,      ///< (ack socket)
  long_topic,       ///< a topic over the topic limit
  topic_seq_zero,   ///< (ack socket)
  too_large,        ///< a message over the size limit
  too_many_runs,    ///< more than max_refused_runs runs of those in one batch
  count_
};

/// The reason a NACK gives for a rule.
wire::reason reason_of(rule r);

/// Consecutive records of a batch body, all within the size limit or all over it.
struct record_run {
  std::uint32_t first = 0, count = 0;  ///< its first record's index in the batch, and how many
  std::size_t from = 0, to = 0;        ///< its bytes in the body, length prefixes included
  std::size_t largest = 0;             ///< its largest record
};

/// One refusal: the rule, the records it covers, and the figures its text names. The text is
/// built only when asked for (describe): a flood of refused messages formats nothing it does not log.
struct refusal {
  rule broken = rule::frames;
  std::uint64_t seq = 0;      ///< first record refused (the NACK's sequence)
  std::uint32_t count = 0;    ///< records the NACK covers
  std::uint64_t counted = 0;  ///< what the counters take (a header not believed counts as one)
  // Figures for the text, by rule: frames (got, socket), version (seen), floor_above_seq (floor),
  // overlap (expected), too_large (largest, or the runs' records), too_many_runs (records, runs).
  std::uint64_t figure = 0, other = 0;
  std::size_t size = 0;  ///< long_topic: the topic's size; too_large / too_many_runs: the largest record
  wire::status status = wire::status::ok;  ///< header, body
  bool ack_socket = false;
};

/// The sentence that says how `r` broke its rule, e.g. "a topic of 2000 bytes exceeds the limit of 1024".
std::string describe(const refusal& r, const limits& l);

/// What the relay does with one message.
struct verdict {
  enum class action {
    refuse,        ///< ack socket: NACK refusals[0]; the relay remembers nothing of it (publisher socket: dropped)
    duplicate,     ///< ack socket: every record was accepted before: ack again, forward nothing
    expect,        ///< ack socket: something before it is missing: ask for the publisher's next sequence
    refuse_batch,  ///< ack socket: NACK refusals[0], the whole batch, and move past it (the next ACK covers it)
    forward,       ///< forward (the message as it came, or the `kept` runs); NACK or drop each of `refusals`
  };
  action what = action::forward;
  bool batch = false;             ///< [topic][header][body] with a header that decoded
  wire::batch_header header{};    ///< what decoded of the header (zeros where nothing did)
  std::uint64_t end = 0;          ///< batch: header.seq + header.count, the publisher's next sequence after it
  std::uint64_t msgs = 0;         ///< user messages it counts as received (msgs_in)
  std::uint64_t malformed = 0;    ///< counted as malformed
  std::uint64_t refused = 0;      ///< publisher socket: messages dropped (nobody to NACK)
  std::vector<refusal> refusals;  ///< what is refused: a NACK each (ack socket), logged (publisher socket)
  bool whole = true;              ///< forward: the message goes as it came
  std::vector<record_run> kept;   ///< forward, !whole: runs that go, each a batch of its own (none: nothing goes)

  /// Forward, but every record was refused: nothing goes.
  bool forwards_nothing() const { return !whole && kept.empty(); }
  /// Empties it for the next message, keeping what it allocated.
  void reset();
};

/// The frames of one message as bytes (the routing id not among them).
struct frames_view {
  const std::string_view* frames = nullptr;
  std::size_t n = 0;
  bool truncated = false;  ///< publisher socket: it had more than max_frames frames (the rest drained)
};

/// A message from the ack socket, [topic][header][body], on its own: the rules that decide whether
/// the relay may remember anything of it. `frames_seen` counts every frame (more than the three
/// given when there were more). The verdict is refuse, or forward for a batch whose header keeps
/// the rules: judge_in_session decides the rest.
void judge_acked(const std::string_view* frames, std::size_t frames_seen, const limits& l, verdict& out);

/// The rest of the ack socket's rules, for a verdict judge_acked let through, against what the
/// relay knows of the publisher: `next`, the next sequence it will accept (its ack floor applied).
void judge_in_session(std::string_view topic, std::string_view body, std::uint64_t next, const limits& l, verdict& out);

/// A message from the publisher socket (fire-and-forget): a batch is held to the ack socket's rules
/// of shape and size, not to its sequence rules; a plain message to the topic and size limits. The
/// verdict is refuse (dropped whole) or forward.
void judge_fire_and_forget(const frames_view& m, const limits& l, verdict& out);

/// Whether a message from the publisher socket is plain (not a batch) and within the limits: what
/// judge_fire_and_forget would forward whole as one message, refusing nothing. A quick test for the
/// plain path, asked first; false says nothing (ask judge_fire_and_forget).
bool plain_within_limits(const frames_view& m, const limits& l);

/// Splits a body that wire::validate_body accepted into runs of records kept and runs refused for
/// their size.
void split_runs(std::string_view body, std::uint32_t count, std::size_t max_msg_size, std::vector<record_run>& kept,
                std::vector<record_run>& over);

}  // namespace zrelay::ingress
