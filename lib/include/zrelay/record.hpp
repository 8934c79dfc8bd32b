#pragma once
// Journal records: how a relay with --journal stores each message it accepts, on disk and on the
// replay socket (the same bytes). Pure functions on bytes. docs/PROTOCOL.md ("Journal records")
// and docs/ARCHITECTURE.md ("The journal") describe the layout for people.
//
// An entry holds one message unit as the relay accepted it: a batch ([topic][header][body], the
// header as the publisher sent it, version 1) or a plain message (1 to 64 frames). The messages of
// an entry have journal sequences jseq, jseq+1, ..., jseq+count-1.
//
// Layout, all integers big-endian:
//    0  4  magic "ZRJ1" (5A 52 4A 31)
//    4  4  CRC-32C (Castagnoli) of bytes 8 .. 12+length
//    8  4  length: bytes after offset 12 (so the entry is 12 + length bytes)
//   12  8  jseq: the journal sequence of the entry's first message (>= 1)
//   20  8  time: the relay's wall clock when it accepted the entry, ns since the Unix epoch
//   28  1  kind: 1 batch, 2 plain
//   29  1  flags: 0
//   30  2  frames: how many frames follow (batch: 3; plain: 1 to 64)
//   32  …  each frame: u32 size, then the bytes
// A batch's count of messages is its header's count; a plain entry is one message.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "zrelay/wire.hpp"

namespace zrelay::record {

inline constexpr std::uint32_t magic = 0x5A524A31;  // "ZRJ1"
/// The fixed part of an entry, before its frames.
inline constexpr std::size_t prefix_size = 32;
/// The CRC covers the entry from this offset (the length field) to its end.
inline constexpr std::size_t crc_from = 8;
inline constexpr std::size_t max_frames = 64;
/// Entries longer than this are damage, never data (64 frames at the largest frame limit is far less).
inline constexpr std::size_t max_entry_size = std::size_t{1} << 30;

enum class kind : std::uint8_t { batch = 1, plain = 2 };

/// What decode() found.
enum class status {
  ok,
  short_data,   ///< fewer bytes than the entry needs (at the end of a file: a torn tail)
  bad_magic,    ///< not an entry's first bytes
  bad_length,   ///< a length below the fixed part or above max_entry_size
  bad_crc,      ///< the bytes do not match their checksum
  bad_content,  ///< checksum fine but the content breaks a rule (frames, batch header or body, jseq 0)
};
std::string_view status_text(status s);

/// A decoded entry; its views point into the bytes decode() was given.
struct entry {
  std::uint64_t jseq = 0;
  std::uint64_t time_ns = 0;
  record::kind what = record::kind::plain;
  std::uint32_t count = 0;  ///< messages: the batch header's count, or 1
  std::size_t size = 0;     ///< bytes of the whole entry
  std::uint16_t nframes = 0;
  std::string_view frames[max_frames];
  wire::batch_header header;  ///< batch only: frames[1] decoded

  std::string_view topic() const { return nframes >= 2 ? frames[0] : std::string_view(); }
  std::uint64_t end() const { return jseq + count; }  ///< the jseq after its last message
};

/// Bytes an entry of these frames takes.
std::size_t encoded_size(const std::string_view* frames, std::size_t n);

/// Appends an entry to `out`. A batch has 3 frames and `count` is its header's count; a plain
/// entry has 1 to 64 frames and count 1. The caller has checked the frames (ingress did). Without
/// `crc` the CRC field is 0 (a link between relays: ZeroMQ's connection carries the bytes intact).
void append(std::string& out, kind k, std::uint64_t jseq, std::uint64_t time_ns, std::uint32_t count,
            const std::string_view* frames, std::size_t n, bool crc = true);
/// The same into `out`, which holds encoded_size(frames, n) bytes.
void encode(char* out, kind k, std::uint64_t jseq, std::uint64_t time_ns, std::uint32_t count,
            const std::string_view* frames, std::size_t n);

/// Decodes the entry at the start of `data` (any bytes: it never reads past `size`). Checks magic,
/// length, CRC and content: a batch's header decodes as version 1 with count >= 1, its body holds
/// exactly count records; a plain entry has 1 to 64 frames; jseq >= 1 and jseq + count does not wrap.
status decode(const void* data, std::size_t size, entry& out);

/// The same without the CRC and without checking a batch's body against its count (the caller
/// judges the content itself, as the relay's ingress does a linked relay's messages); the header
/// still decodes, for the count. Never reads past `size`.
status decode_framing(const void* data, std::size_t size, entry& out);

/// Where the next entry could start after damage at data[0]: the offset of the next "ZRJ1" whose
/// entry decodes, or `size` if none does.
std::size_t resync(const void* data, std::size_t size);

/// Appends the part of batch entry `e` from journal sequence `from` on (jseq <= from < end()): the
/// header's count, seq and topic seq adjusted, the body cut, the time kept. A plain entry, or from
/// == e.jseq, is appended whole.
void append_from(std::string& out, const entry& e, std::uint64_t from);

}  // namespace zrelay::record
