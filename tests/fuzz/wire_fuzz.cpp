// libFuzzer target for the wire decoder (lib/src/wire.cpp): every decoder gets the same
// hostile bytes, and what decodes must encode back to the same bytes. tests/fuzz/run.sh
// builds and runs it; docs/TESTING.md has the longer run.
//
// An input is read as a batch as the relay's ROUTER sees it, header frame then body frame:
// the first header_size bytes (or fewer) are the header, the rest is the body. The same bytes
// are also decoded whole, as a header frame and as a reply frame.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "zrelay/wire.hpp"

using namespace zrelay::wire;

namespace {

// Property failures abort, so libFuzzer reports them as crashes and saves the input.
#define WIRE_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "wire_fuzz: check failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

constexpr status all_statuses[] = {status::ok,        status::bad_magic, status::bad_version, status::bad_kind,
                                   status::truncated, status::bad_count, status::bad_length,  status::trailing};

bool same_header(const batch_header& a, const batch_header& b) {
  return a.count == b.count && a.publisher == b.publisher && a.seq == b.seq && a.topic_seq == b.topic_seq &&
         a.ack_floor == b.ack_floor;
}

// A header frame, decoded whole: the result is consistent with the bytes, version_seen is set
// exactly when the magic matched, and a valid header encodes back to the same 40 bytes.
void fuzz_header(const unsigned char* p, std::size_t size) {
  batch_header h;
  const batch_header untouched;
  constexpr std::uint8_t no_version = 0xEE;  // a sentinel decode_header must overwrite or leave
  std::uint8_t seen = no_version;
  const status st = decode_header(p, size, h, &seen);
  WIRE_CHECK(!status_text(st).empty());

  const bool magic = size >= 3 && p[0] == magic0 && p[1] == magic1;
  if (!magic) {
    WIRE_CHECK(st == status::bad_magic);
    WIRE_CHECK(seen == no_version);
    WIRE_CHECK(same_header(h, untouched));
    return;
  }
  WIRE_CHECK(st != status::bad_magic);
  WIRE_CHECK(seen == p[2]);
  if (p[2] != version) WIRE_CHECK(st == status::bad_version);

  // Without version_seen the answer is the same.
  batch_header h2;
  WIRE_CHECK(decode_header(p, size, h2) == st);
  WIRE_CHECK(same_header(h, h2));

  if (st != status::ok) return;
  WIRE_CHECK(size == header_size);
  WIRE_CHECK(h.count != 0);
  WIRE_CHECK(looks_like_header(p, size));
  unsigned char out[header_size];
  encode_header(h, out);
  WIRE_CHECK(std::memcmp(out, p, header_size) == 0);
}

// A body frame: record_reader and validate_body agree, every record lies inside the body,
// and a body read to the end was consumed exactly.
void fuzz_body(const unsigned char* p, std::size_t size, std::uint32_t count) {
  record_reader r(p, size, count);
  std::size_t consumed = 0;
  std::size_t largest = 0;
  std::uint32_t records = 0;
  while (auto rec = r.next()) {
    const auto* begin = reinterpret_cast<const unsigned char*>(rec->data());
    WIRE_CHECK(begin == p + consumed + record_prefix_size);
    WIRE_CHECK(rec->size() <= size - consumed - record_prefix_size);
    consumed += record_prefix_size + rec->size();
    if (rec->size() > largest) largest = rec->size();
    ++records;
  }
  // Once it stopped, it stays stopped.
  WIRE_CHECK(!r.next());
  const status st = r.error();
  WIRE_CHECK(st == status::ok || st == status::truncated || st == status::bad_length || st == status::trailing);
  WIRE_CHECK(records <= count);
  if (st == status::ok) {
    WIRE_CHECK(r.done());
    WIRE_CHECK(records == count);
    WIRE_CHECK(consumed == size);
  } else {
    WIRE_CHECK(!r.done());
  }

  for (const std::size_t max_record : {std::size_t{0}, std::size_t{1}, std::size_t{16}, std::size_t{1} << 20}) {
    bool too_large = true;
    std::size_t seen_largest = 12345;
    const status vst = validate_body(p, size, count, max_record, too_large, seen_largest);
    WIRE_CHECK(vst == st);
    if (vst == status::ok) {
      WIRE_CHECK(seen_largest == largest);
      WIRE_CHECK(too_large == (max_record != 0 && largest > max_record));
    } else {
      WIRE_CHECK(!too_large);
    }
  }
}

// A reply frame: what decodes encodes back to the same bytes.
void fuzz_reply(const unsigned char* p, std::size_t size) {
  reply r;
  const status st = decode_reply(p, size, r);
  WIRE_CHECK(!status_text(st).empty());
  const bool magic = size >= 3 && p[0] == magic0 && p[1] == magic1;
  if (!magic) WIRE_CHECK(st == status::bad_magic);
  if (st != status::ok) return;
  WIRE_CHECK(size >= reply_fixed_size);
  WIRE_CHECK(r.type == kind::ack || r.type == kind::nack || r.type == kind::expect);
  WIRE_CHECK(!reason_text(r.why).empty());
  WIRE_CHECK(encode_reply(r) == std::string_view(reinterpret_cast<const char*>(p), size));
}

// Reads fixed-size fields off the front of the input, zero past its end.
struct field_source {
  const unsigned char* p;
  std::size_t size;
  std::uint64_t take(std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v = (v << 8) | (size > 0 ? *p : 0u);
      if (size > 0) ++p, --size;
    }
    return v;
  }
};

// Cuts the next record off `rest`: its first byte (mod 64) is the length of what follows.
std::string_view next_piece(std::string_view& rest) {
  const std::size_t n = std::min<std::size_t>(static_cast<unsigned char>(rest[0]) % 64, rest.size() - 1);
  const std::string_view piece = rest.substr(1, n);
  rest.remove_prefix(1 + n);
  return piece;
}

// The other direction: a header, a reply and a body built from the input encode and decode
// back to the same values.
void fuzz_encode(const unsigned char* p, std::size_t size) {
  field_source in{p, size};

  batch_header h;
  h.count = static_cast<std::uint32_t>(in.take(4));
  h.publisher = in.take(8);
  h.seq = in.take(8);
  h.topic_seq = in.take(8);
  h.ack_floor = in.take(8);
  unsigned char frame[header_size];
  encode_header(h, frame);
  WIRE_CHECK(looks_like_header(frame, header_size));
  batch_header back;
  std::uint8_t seen = 0;
  const status hst = decode_header(frame, header_size, back, &seen);
  WIRE_CHECK(seen == version);
  WIRE_CHECK(same_header(back, h));
  WIRE_CHECK(hst == (h.count == 0 ? status::bad_count : status::ok));

  constexpr kind kinds[] = {kind::ack, kind::nack, kind::expect};
  reply rep;
  rep.type = kinds[in.take(1) % 3];
  rep.count = static_cast<std::uint32_t>(in.take(4));
  rep.publisher = in.take(8);
  rep.seq = in.take(8);
  rep.why = static_cast<reason>(in.take(1));
  const std::size_t text_len = std::min<std::size_t>(in.take(1), in.size);
  rep.text.assign(reinterpret_cast<const char*>(in.p), text_len);
  in.p += text_len;
  in.size -= text_len;
  const std::string wire_reply = encode_reply(rep);
  WIRE_CHECK(wire_reply.size() == reply_fixed_size + rep.text.size());
  reply rback;
  WIRE_CHECK(decode_reply(wire_reply.data(), wire_reply.size(), rback) == status::ok);
  WIRE_CHECK(rback.type == rep.type && rback.count == rep.count && rback.publisher == rep.publisher &&
             rback.seq == rep.seq && rback.why == rep.why && rback.text == rep.text);

  // The rest of the input, cut into at most 64 records.
  std::string body;
  std::uint32_t records = 0;
  std::string_view rest(reinterpret_cast<const char*>(in.p), in.size);
  while (!rest.empty() && records < 64) {
    append_record(body, next_piece(rest));
    ++records;
  }
  if (records == 0) return;
  record_reader r(body.data(), body.size(), records);
  std::string_view again(reinterpret_cast<const char*>(in.p), in.size);
  std::uint32_t read = 0;
  while (auto rec = r.next()) {
    WIRE_CHECK(*rec == next_piece(again));
    ++read;
  }
  WIRE_CHECK(r.done() && read == records);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  for (const status s : all_statuses) WIRE_CHECK(!status_text(s).empty());

  fuzz_header(data, size);
  fuzz_reply(data, size);

  // Header frame then body frame, as the relay's ROUTER receives a batch.
  const std::size_t head = std::min(size, header_size);
  fuzz_header(data, head);
  batch_header h;
  decode_header(data, head, h);
  fuzz_body(data + head, size - head, h.count);

  fuzz_encode(data, size);
  return 0;
}
