#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zrelay/record.hpp"
#include "zrelay/wire.hpp"

using namespace zrelay;
using record::status;

namespace {

// A batch entry's three frames, kept alive together.
struct batch {
  std::string topic, header, body;
  std::string_view frames[3];
};

batch make_batch(const std::string& topic, const std::vector<std::string>& records, std::uint64_t seq = 100) {
  batch b;
  b.topic = topic;
  wire::batch_header h;
  h.count = static_cast<std::uint32_t>(records.size());
  h.publisher = 7;
  h.seq = seq;
  h.topic_seq = seq + 1000;
  h.ack_floor = 1;
  b.header.assign(wire::header_size, '\0');
  wire::encode_header(h, b.header.data());
  for (const auto& r : records) wire::append_record(b.body, r);
  b.frames[0] = b.topic;
  b.frames[1] = b.header;
  b.frames[2] = b.body;
  return b;
}

std::string encode_batch(const batch& b, std::uint64_t jseq, std::uint64_t time_ns = 5) {
  std::string out;
  wire::batch_header h;
  REQUIRE(wire::decode_header(b.header.data(), b.header.size(), h) == wire::status::ok);
  record::append(out, record::kind::batch, jseq, time_ns, h.count, b.frames, 3);
  return out;
}

std::string encode_plain(const std::vector<std::string_view>& frames, std::uint64_t jseq) {
  std::string out;
  record::append(out, record::kind::plain, jseq, 9, 1, frames.data(), frames.size());
  return out;
}

void put32(std::string& s, std::size_t at, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

// Rewrites the CRC after a deliberate change of the content, so that the content rule is what fails.
void fix_crc(std::string& s) {
  // CRC-32C bit by bit: the reference the library's hardware CRC must match.
  std::uint32_t crc = 0xFFFFFFFF;
  for (std::size_t i = record::crc_from; i < s.size(); ++i) {
    crc ^= static_cast<unsigned char>(s[i]);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  put32(s, 4, ~crc);
}

}  // namespace

TEST_CASE("record: a batch entry round-trips through encode and decode", "[record]") {
  const auto b = make_batch("weather", {"a", "bc", ""});
  const auto bytes = encode_batch(b, 42, 123456789);
  REQUIRE(bytes.size() == record::encoded_size(b.frames, 3));
  CHECK(bytes.substr(0, 4) == "ZRJ1");
  record::entry e;
  REQUIRE(record::decode(bytes.data(), bytes.size(), e) == status::ok);
  CHECK(e.jseq == 42);
  CHECK(e.time_ns == 123456789);
  CHECK(e.what == record::kind::batch);
  CHECK(e.count == 3);
  CHECK(e.end() == 45);
  CHECK(e.size == bytes.size());
  CHECK(e.topic() == "weather");
  CHECK(e.frames[1] == b.header);
  CHECK(e.frames[2] == b.body);
  CHECK(e.header.publisher == 7);
  CHECK(e.header.seq == 100);
  // Trailing bytes after the entry are the next entry's business.
  const auto two = bytes + bytes;
  REQUIRE(record::decode(two.data(), two.size(), e) == status::ok);
  CHECK(e.size == bytes.size());
}

TEST_CASE("record: a plain entry of one and of several frames round-trips", "[record]") {
  record::entry e;
  const auto one = encode_plain({"just a frame"}, 1);
  REQUIRE(record::decode(one.data(), one.size(), e) == status::ok);
  CHECK(e.what == record::kind::plain);
  CHECK(e.count == 1);
  CHECK(e.nframes == 1);
  CHECK(e.frames[0] == "just a frame");
  CHECK(e.topic().empty());
  const auto three = encode_plain({"topic", "", "payload"}, 9);
  REQUIRE(record::decode(three.data(), three.size(), e) == status::ok);
  CHECK(e.nframes == 3);
  CHECK(e.topic() == "topic");
  CHECK(e.frames[1].empty());
  CHECK(e.frames[2] == "payload");
}

TEST_CASE("record: the CRC is the standard CRC-32C of bytes 8 to the end", "[record]") {
  auto bytes = encode_plain({"x"}, 3);
  const std::string before = bytes;
  fix_crc(bytes);  // the bitwise reference
  CHECK(bytes == before);
}

TEST_CASE("record: decode reports every status and never reads past size", "[record]") {
  const auto b = make_batch("t", {"r1", "r2"});
  const auto good = encode_batch(b, 10);
  record::entry e;

  SECTION("short_data: every proper prefix, the empty one included") {
    for (std::size_t n = 0; n < good.size(); ++n) {
      // A copy of exactly n bytes, so that ASan sees a read past them.
      const std::string cut = good.substr(0, n);
      CHECK(record::decode(cut.data(), cut.size(), e) == status::short_data);
    }
  }
  SECTION("bad_magic") {
    auto bad = good;
    bad[2] = 'X';
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_magic);
    const std::string two = "ZX";
    CHECK(record::decode(two.data(), two.size(), e) == status::bad_magic);
  }
  SECTION("bad_length: below the fixed part, and above the largest entry") {
    auto bad = good;
    put32(bad, 8, 19);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_length);
    put32(bad, 8, 0xFFFFFFFF);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_length);
  }
  SECTION("bad_crc: any flipped byte after the CRC") {
    for (std::size_t i = record::crc_from; i < good.size(); ++i) {
      auto bad = good;
      bad[i] = static_cast<char>(bad[i] ^ 0x01);
      const auto s = record::decode(bad.data(), bad.size(), e);
      // A flipped length byte may also make the entry longer than the bytes, or impossible.
      if (i < 12) {
        CHECK((s == status::bad_crc || s == status::short_data || s == status::bad_length));
      } else {
        CHECK(s == status::bad_crc);
      }
    }
    auto bad = good;
    bad[5] = static_cast<char>(bad[5] ^ 0x80);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_crc);
  }
  SECTION("bad_content: each rule, with a CRC that matches") {
    auto bad = good;
    // jseq 0
    for (int i = 12; i < 20; ++i) bad[i] = 0;
    fix_crc(bad);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_content);
    // an unknown kind
    bad = good;
    bad[28] = 3;
    fix_crc(bad);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_content);
    // flags not 0
    bad = good;
    bad[29] = 1;
    fix_crc(bad);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_content);
    // a batch of 2 frames
    bad = good;
    bad[31] = 2;
    fix_crc(bad);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_content);
    // a batch whose header says 3 records, its body holds 2
    bad = good;
    const std::size_t header_at = record::prefix_size + 4 + 1 + 4;
    put32(bad, header_at + 4, 3);
    fix_crc(bad);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_content);
    // a frame longer than the entry
    bad = good;
    put32(bad, record::prefix_size, 1000);
    fix_crc(bad);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_content);
    // a plain entry of 0 frames and of 65
    auto plain = encode_plain({"a"}, 1);
    plain.resize(record::prefix_size);
    put32(plain, 8, static_cast<std::uint32_t>(record::prefix_size - 12));
    plain[31] = 0;
    fix_crc(plain);
    CHECK(record::decode(plain.data(), plain.size(), e) == status::bad_content);
    std::vector<std::string_view> many(65, "f");
    std::string big;
    record::append(big, record::kind::plain, 1, 1, 1, many.data(), 64);
    big[31] = 65;
    fix_crc(big);
    CHECK(record::decode(big.data(), big.size(), e) == status::bad_content);
    // jseq + count wraps
    bad = good;
    for (int i = 12; i < 20; ++i) bad[i] = static_cast<char>(0xFF);
    fix_crc(bad);
    CHECK(record::decode(bad.data(), bad.size(), e) == status::bad_content);
  }
  SECTION("status_text names each") {
    for (auto s :
         {status::ok, status::short_data, status::bad_magic, status::bad_length, status::bad_crc, status::bad_content})
      CHECK(record::status_text(s) != "unknown status");
  }
}

TEST_CASE("record: append_from trims a batch to the messages from a journal sequence on", "[record]") {
  const auto b = make_batch("t", {"m0", "m1", "m22", "m333"}, 50);
  const auto bytes = encode_batch(b, 20, 77);
  record::entry e;
  REQUIRE(record::decode(bytes.data(), bytes.size(), e) == status::ok);

  std::string out;
  record::append_from(out, e, 20);
  CHECK(out == bytes);

  out.clear();
  record::append_from(out, e, 22);
  record::entry t;
  REQUIRE(record::decode(out.data(), out.size(), t) == status::ok);
  CHECK(t.size == out.size());
  CHECK(t.jseq == 22);
  CHECK(t.count == 2);
  CHECK(t.end() == e.end());
  CHECK(t.time_ns == 77);
  CHECK(t.header.seq == 52);
  CHECK(t.header.topic_seq == 1052);
  CHECK(t.header.publisher == 7);
  CHECK(t.header.ack_floor == 1);
  CHECK(t.topic() == "t");
  wire::record_reader rd(t.frames[2].data(), t.frames[2].size(), t.count);
  CHECK(rd.next() == std::optional<std::string_view>("m22"));
  CHECK(rd.next() == std::optional<std::string_view>("m333"));
  CHECK(!rd.next());
  CHECK(rd.done());

  out.clear();
  record::append_from(out, e, 23);
  REQUIRE(record::decode(out.data(), out.size(), t) == status::ok);
  CHECK(t.count == 1);
  CHECK(t.jseq == 23);

  // A plain entry is always whole.
  const auto plain = encode_plain({"x", "y"}, 5);
  REQUIRE(record::decode(plain.data(), plain.size(), e) == status::ok);
  out.clear();
  record::append_from(out, e, 5);
  CHECK(out == plain);
}

TEST_CASE("record: resync finds the next entry that decodes after damage", "[record]") {
  const auto a = encode_plain({"first"}, 1);
  const auto b = encode_plain({"second"}, 2);
  std::string damaged = a;
  damaged[20] = static_cast<char>(damaged[20] ^ 0x40);
  // Garbage that looks like a magic but is no entry, between the two.
  const std::string all = damaged + "ZRJ1garbage" + b;
  record::entry e;
  REQUIRE(record::decode(all.data(), all.size(), e) == status::bad_crc);
  const auto at = record::resync(all.data(), all.size());
  CHECK(at == a.size() + 11);
  REQUIRE(record::decode(all.data() + at, all.size() - at, e) == status::ok);
  CHECK(e.jseq == 2);
  // Nothing that decodes: the size.
  const std::string junk = damaged + "ZRJ1";
  CHECK(record::resync(junk.data(), junk.size()) == junk.size());
  CHECK(record::resync(junk.data(), 2) == 2);
  CHECK(record::resync(nullptr, 0) == 0);
}
