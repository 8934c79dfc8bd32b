#include "zrelay/record.hpp"

#include <algorithm>
#include <cstring>

#include <isa-l/crc.h>

#include "big_endian.hpp"

namespace zrelay::record {
namespace {

using big_endian::get16;
using big_endian::get32;
using big_endian::get64;
using big_endian::put16;
using big_endian::put32;
using big_endian::put64;

constexpr std::size_t fixed_size = 12;  // magic, crc, length: what the length does not count

// The standard CRC-32C (check value of "123456789": E3069283): ISA-L's crc32_iscsi neither
// inverts its input nor its result.
std::uint32_t crc32c(const unsigned char* p, std::size_t n) {
  std::uint32_t crc = 0xFFFFFFFF;
  // crc32_iscsi takes an int length: feed it in pieces (entries are < 1 GiB, but stay honest).
  while (n > 0) {
    const std::size_t piece = n < (std::size_t{1} << 30) ? n : (std::size_t{1} << 30);
    crc = crc32_iscsi(const_cast<unsigned char*>(p), static_cast<int>(piece), crc);
    p += piece;
    n -= piece;
  }
  return ~crc;
}

}  // namespace

std::string_view status_text(status s) {
  switch (s) {
    case status::ok: return "ok";
    case status::short_data: return "entry cut short";
    case status::bad_magic: return "not an entry (bad magic)";
    case status::bad_length: return "impossible entry length";
    case status::bad_crc: return "checksum mismatch";
    case status::bad_content: return "entry content breaks the format";
  }
  return "unknown status";
}

std::size_t encoded_size(const std::string_view* frames, std::size_t n) {
  std::size_t size = prefix_size;
  for (std::size_t i = 0; i < n; ++i) size += 4 + frames[i].size();
  return size;
}

namespace {
// The fixed part of an entry of `size` bytes, its CRC field 0.
void put_prefix(unsigned char* p, std::size_t size, kind k, std::uint64_t jseq, std::uint64_t time_ns, std::size_t n) {
  put32(p, magic);
  put32(p + 4, 0);
  put32(p + 8, static_cast<std::uint32_t>(size - fixed_size));
  put64(p + 12, jseq);
  put64(p + 20, time_ns);
  p[28] = static_cast<unsigned char>(k);
  p[29] = 0;
  put16(p + 30, static_cast<std::uint16_t>(n));
}
}  // namespace

void encode(char* out, kind k, std::uint64_t jseq, std::uint64_t time_ns, std::uint32_t count,
            const std::string_view* frames, std::size_t n) {
  (void)count;  // a batch's count is in its header frame; a plain entry's is 1
  auto* p = reinterpret_cast<unsigned char*>(out);
  const std::size_t size = encoded_size(frames, n);
  put_prefix(p, size, k, jseq, time_ns, n);
  unsigned char* q = p + prefix_size;
  for (std::size_t i = 0; i < n; ++i) {
    put32(q, static_cast<std::uint32_t>(frames[i].size()));
    if (!frames[i].empty()) std::memcpy(q + 4, frames[i].data(), frames[i].size());
    q += 4 + frames[i].size();
  }
  put32(p + 4, crc32c(p + crc_from, size - crc_from));
}

void append(std::string& out, kind k, std::uint64_t jseq, std::uint64_t time_ns, std::uint32_t count,
            const std::string_view* frames, std::size_t n, bool crc) {
  (void)count;
  // Piece by piece, not resize() and encode(): no zero fill of what is written over at once.
  const std::size_t at = out.size();
  const std::size_t size = encoded_size(frames, n);
  unsigned char prefix[prefix_size];
  put_prefix(prefix, size, k, jseq, time_ns, n);
  out.append(reinterpret_cast<const char*>(prefix), prefix_size);
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char len[4];
    put32(len, static_cast<std::uint32_t>(frames[i].size()));
    out.append(reinterpret_cast<const char*>(len), 4);
    out.append(frames[i].data(), frames[i].size());
  }
  if (crc) {
    auto* p = reinterpret_cast<unsigned char*>(&out[at]);
    put32(p + 4, crc32c(p + crc_from, size - crc_from));
  }
}

namespace {
status decode_with(const void* data, std::size_t size, entry& out, bool all);
}

status decode(const void* data, std::size_t size, entry& out) { return decode_with(data, size, out, true); }

status decode_framing(const void* data, std::size_t size, entry& out) { return decode_with(data, size, out, false); }

namespace {
status decode_with(const void* data, std::size_t size, entry& out, bool all) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size == 0) return status::short_data;
  unsigned char m[4];
  put32(m, magic);
  if (std::memcmp(p, m, size < 4 ? size : 4) != 0) return status::bad_magic;
  if (size < fixed_size) return status::short_data;
  const std::uint32_t length = get32(p + 8);
  if (length < prefix_size - fixed_size || length > max_entry_size - fixed_size) return status::bad_length;
  const std::size_t total = fixed_size + length;
  if (size < total) return status::short_data;
  if (all && crc32c(p + crc_from, total - crc_from) != get32(p + 4)) return status::bad_crc;

  out.jseq = get64(p + 12);
  out.time_ns = get64(p + 20);
  out.size = total;
  const unsigned char k = p[28];
  const std::uint16_t nframes = get16(p + 30);
  if (out.jseq == 0 || p[29] != 0) return status::bad_content;
  if (k == static_cast<unsigned char>(kind::batch)) {
    if (nframes != 3) return status::bad_content;
  } else if (k == static_cast<unsigned char>(kind::plain)) {
    if (nframes < 1 || nframes > max_frames) return status::bad_content;
  } else {
    return status::bad_content;
  }
  out.what = static_cast<kind>(k);
  out.nframes = nframes;
  std::size_t at = prefix_size;
  for (std::uint16_t i = 0; i < nframes; ++i) {
    if (total - at < 4) return status::bad_content;
    const std::uint32_t len = get32(p + at);
    at += 4;
    if (len > total - at) return status::bad_content;
    out.frames[i] = std::string_view(reinterpret_cast<const char*>(p + at), len);
    at += len;
  }
  if (at != total) return status::bad_content;
  if (out.what == kind::batch) {
    out.header = wire::batch_header{};
    if (wire::decode_header(out.frames[1].data(), out.frames[1].size(), out.header) != wire::status::ok)
      return status::bad_content;
    bool too_large = false;
    std::size_t largest = 0;
    if (all && wire::validate_body(out.frames[2].data(), out.frames[2].size(), out.header.count, 0, too_large,
                                   largest) != wire::status::ok)
      return status::bad_content;
    out.count = out.header.count;
  } else {
    out.count = 1;
  }
  if (out.jseq > UINT64_MAX - out.count) return status::bad_content;
  return status::ok;
}
}  // namespace

std::size_t resync(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  unsigned char m[4];
  put32(m, magic);
  entry e;
  // Each candidate costs a CRC over the length it claims. A crafted file full of magics claiming
  // to run to its end would cost that for every one (quadratic); past this budget the rest of the
  // region counts as damaged. Real damage has few candidates and never comes near it.
  constexpr std::uint64_t budget = std::uint64_t{256} << 20;
  std::uint64_t spent = 0;
  for (std::size_t at = 1; at + 4 <= size; ++at) {
    const void* hit = std::memchr(p + at, m[0], size - at);
    if (!hit) break;
    at = static_cast<std::size_t>(static_cast<const unsigned char*>(hit) - p);
    if (at + 4 > size) break;
    if (std::memcmp(p + at, m, 4) != 0) continue;
    if (at + 12 <= size) spent += std::min<std::uint64_t>(get32(p + at + 8), size - at);
    if (spent > budget) break;
    if (decode(p + at, size - at, e) == status::ok) return at;
  }
  return size;
}

void append_from(std::string& out, const entry& e, std::uint64_t from) {
  if (e.what != kind::batch || from <= e.jseq || from >= e.end()) {
    // The entry's own bytes: decode() set its frames to point into them.
    out.append(e.frames[0].data() - prefix_size - 4, e.size);
    return;
  }
  const auto skip = static_cast<std::uint32_t>(from - e.jseq);
  wire::batch_header h = e.header;
  h.count -= skip;
  h.seq += skip;
  h.topic_seq += skip;
  // Records are validated by decode(): walk past the skipped ones.
  const auto* b = reinterpret_cast<const unsigned char*>(e.frames[2].data());
  std::size_t at = 0;
  for (std::uint32_t i = 0; i < skip; ++i) at += 4 + get32(b + at);
  char hbuf[wire::header_size];
  wire::encode_header(h, hbuf);
  const std::string_view frames[3] = {e.frames[0], std::string_view(hbuf, sizeof hbuf), e.frames[2].substr(at)};
  append(out, kind::batch, from, e.time_ns, h.count, frames, 3);
}

}  // namespace zrelay::record
