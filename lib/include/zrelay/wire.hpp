#pragma once
// The zrelay wire format, version 1: pure functions on bytes, no sockets.
// docs/PROTOCOL.md describes the same layout for people writing their own clients.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zrelay::wire {

/// Protocol version this build speaks.
inline constexpr std::uint8_t version = 1;
/// First two bytes of every zrelay header and reply: "ZR".
inline constexpr std::uint8_t magic0 = 0x5A;
inline constexpr std::uint8_t magic1 = 0x52;
/// Size of a batch header frame in bytes.
inline constexpr std::size_t header_size = 40;
/// Size of a reply frame without its reason text.
inline constexpr std::size_t reply_fixed_size = 25;
/// Size of the length prefix in front of each record of a batch body.
inline constexpr std::size_t record_prefix_size = 4;

/// What a frame says it is (byte 3).
enum class kind : std::uint8_t { batch = 1, ack = 2, nack = 3, expect = 4 };

/// Why the relay refused messages (byte 24 of a NACK).
enum class reason : std::uint8_t {
  none = 0,
  too_large = 1,
  malformed = 2,
  unsupported_version = 3,
  overloaded = 4,
  not_allowed = 5,
  /// Not refused for good: the relay could not store the messages (its journal failed: disk full,
  /// a write or sync error). The publisher keeps them and sends them again later.
  unavailable = 6,
};

/// Short human text for a reason code ("too large", "malformed", ...).
std::string_view reason_text(reason r);

/// The header frame of a batch (frame 2 of [topic][header][body]).
///
/// Layout, all integers big-endian:
///   0  2  magic "ZR"         2  1  version (1)      3  1  kind (1 = batch)
///   4  4  count of records   8  8  publisher id    16  8  sequence of the first record
///  24  8  topic sequence of the first record       32  8  ack floor (0 when fire-and-forget)
struct batch_header {
  std::uint32_t count = 0;
  std::uint64_t publisher = 0;
  std::uint64_t seq = 0;
  std::uint64_t topic_seq = 0;
  std::uint64_t ack_floor = 0;
};

/// Writes `h` into `out`, which must hold header_size bytes.
void encode_header(const batch_header& h, void* out);

/// The version of the batch header a relay with a journal delivers to subscribers: version 1's 40
/// bytes with version byte 2, then at offset 40 the journal sequence of the first record (u64).
/// Publishers always send version 1.
inline constexpr std::uint8_t delivered_version = 2;
inline constexpr std::size_t header_v2_size = 48;

/// Writes the version-2 header of `h` whose first record has journal sequence `jseq` into `out`,
/// which must hold header_v2_size bytes.
void encode_delivered_header(const batch_header& h, std::uint64_t jseq, void* out);

/// Outcome of decoding a frame.
enum class status { ok, bad_magic, bad_version, bad_kind, truncated, bad_count, bad_length, trailing };

/// Text for a decode status ("truncated", "unsupported version", ...).
std::string_view status_text(status s);

/// Decodes a header frame. On bad_version the other fields are still filled where present,
/// so the caller can answer the sender with a NACK naming its sequence.
status decode_header(const void* data, std::size_t size, batch_header& out, std::uint8_t* version_seen = nullptr);

/// Decodes a header as a subscriber receives it: version 1 (`jseq` = 0) or version 2. The
/// statuses are decode_header's; another version is bad_version.
status decode_delivered_header(const void* data, std::size_t size, batch_header& out, std::uint64_t& jseq,
                               std::uint8_t* version_seen = nullptr);

/// Cheap check: do these bytes start like a zrelay header (magic, any version)?
bool looks_like_header(const void* data, std::size_t size);

/// Appends one record (u32 big-endian length, then the bytes) to a batch body.
void append_record(std::string& body, std::string_view payload);

/// Walks the records of a batch body. Usage:
///   record_reader r(body, count); while (auto p = r.next()) use(*p); if (r.error()) ...
class record_reader {
public:
  record_reader(const void* data, std::size_t size, std::uint32_t count);
  /// The next record, or nullopt at the end or on a malformed body (then error() != ok).
  std::optional<std::string_view> next();
  /// ok after all `count` records were read and no byte is left over.
  status error() const { return error_; }
  /// True once every record was read without error.
  bool done() const { return remaining_ == 0 && error_ == status::ok; }

private:
  const unsigned char* p_;
  const unsigned char* end_;
  std::uint32_t remaining_;
  status error_ = status::ok;
};

/// Validates a body without copying: every record present, none larger than `max_record`
/// (0 = no limit), no trailing bytes. Returns ok, bad_length, truncated, trailing; sets
/// `too_large` when a record exceeds max_record.
status validate_body(const void* data, std::size_t size, std::uint32_t count, std::size_t max_record, bool& too_large,
                     std::size_t& largest);

/// A reply from the relay to an acked publisher (single frame).
///
/// Layout, big-endian:
///   0  2  magic "ZR"   2  1  version   3  1  kind (2 ack, 3 nack, 4 expect)
///   4  4  count (nack: records refused; else 0)
///   8  8  publisher id
///  16  8  sequence: ack = every sequence <= this is done; nack = first refused;
///         expect = the next sequence the relay will accept (resend from here)
///  24  1  reason (nack; else 0)       25  …  reason text, UTF-8, may be empty
struct reply {
  kind type = kind::ack;
  std::uint32_t count = 0;
  std::uint64_t publisher = 0;
  std::uint64_t seq = 0;
  reason why = reason::none;
  std::string text;
};

/// Encodes a reply frame.
std::string encode_reply(const reply& r);

/// Decodes a reply frame; returns the status (ok or why it is not a valid reply).
status decode_reply(const void* data, std::size_t size, reply& out);

}  // namespace zrelay::wire
