#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "zrelay/wire.hpp"

using namespace zrelay::wire;

namespace {

batch_header sample_header() {
  batch_header h;
  h.count = 3;
  h.publisher = 0x0102030405060708ull;
  h.seq = 0x1112131415161718ull;
  h.topic_seq = 0x2122232425262728ull;
  h.ack_floor = 0x3132333435363738ull;
  return h;
}

std::string encoded(const batch_header& h) {
  std::string out(header_size, '\0');
  encode_header(h, out.data());
  return out;
}

std::string body_of(const std::vector<std::string>& records) {
  std::string body;
  for (const auto& r : records) append_record(body, r);
  return body;
}

// A raw u32 big-endian length prefix, for bodies append_record would not produce.
std::string prefix(std::uint32_t n) {
  std::string s(4, '\0');
  s[0] = static_cast<char>(n >> 24);
  s[1] = static_cast<char>(n >> 16);
  s[2] = static_cast<char>(n >> 8);
  s[3] = static_cast<char>(n);
  return s;
}

std::vector<std::string> read_all(const std::string& body, std::uint32_t count, status& err) {
  std::vector<std::string> out;
  record_reader r(body.data(), body.size(), count);
  while (auto rec = r.next()) out.emplace_back(*rec);
  err = r.error();
  return out;
}

}  // namespace

TEST_CASE("encode_header writes the documented big-endian layout", "[wire]") {
  const auto bytes = encoded(sample_header());
  const std::string expected = std::string("ZR\x01\x01", 4) + std::string("\x00\x00\x00\x03", 4) +
                               "\x01\x02\x03\x04\x05\x06\x07\x08"
                               "\x11\x12\x13\x14\x15\x16\x17\x18"
                               "\x21\x22\x23\x24\x25\x26\x27\x28"
                               "\x31\x32\x33\x34\x35\x36\x37\x38";
  REQUIRE(bytes.size() == header_size);
  CHECK(bytes == expected);
}

TEST_CASE("decode_header round-trips every field of an encoded header", "[wire]") {
  SECTION("typical values") {
    const auto h = sample_header();
    const auto bytes = encoded(h);
    batch_header out;
    std::uint8_t seen = 0;
    REQUIRE(decode_header(bytes.data(), bytes.size(), out, &seen) == status::ok);
    CHECK(seen == version);
    CHECK(out.count == h.count);
    CHECK(out.publisher == h.publisher);
    CHECK(out.seq == h.seq);
    CHECK(out.topic_seq == h.topic_seq);
    CHECK(out.ack_floor == h.ack_floor);
  }
  SECTION("extreme values") {
    batch_header h;
    h.count = 0xFFFFFFFFu;
    h.publisher = ~std::uint64_t{0};
    h.seq = 1;
    h.topic_seq = ~std::uint64_t{0} - 1;
    h.ack_floor = 0;
    const auto bytes = encoded(h);
    batch_header out;
    REQUIRE(decode_header(bytes.data(), bytes.size(), out) == status::ok);
    CHECK(out.count == h.count);
    CHECK(out.publisher == h.publisher);
    CHECK(out.seq == h.seq);
    CHECK(out.topic_seq == h.topic_seq);
    CHECK(out.ack_floor == 0);
  }
}

TEST_CASE("decode_header rejects bytes without the ZR magic", "[wire]") {
  auto bytes = encoded(sample_header());
  batch_header out;
  SECTION("first byte wrong") {
    bytes[0] = 'X';
    CHECK(decode_header(bytes.data(), bytes.size(), out) == status::bad_magic);
  }
  SECTION("second byte wrong") {
    bytes[1] = 'r';
    CHECK(decode_header(bytes.data(), bytes.size(), out) == status::bad_magic);
  }
  SECTION("empty frame") { CHECK(decode_header(bytes.data(), 0, out) == status::bad_magic); }
  SECTION("a plain text payload") {
    const std::string text = "hello world, this is not a zrelay header!";
    CHECK(decode_header(text.data(), text.size(), out) == status::bad_magic);
    CHECK_FALSE(looks_like_header(text.data(), text.size()));
  }
  CHECK(status_text(status::bad_magic) == "not a zrelay frame (bad magic)");
}

TEST_CASE("decode_header reports another version and still fills the fields for the NACK", "[wire]") {
  const auto h = sample_header();
  auto bytes = encoded(h);
  bytes[2] = 2;
  batch_header out;
  std::uint8_t seen = 0;
  REQUIRE(decode_header(bytes.data(), bytes.size(), out, &seen) == status::bad_version);
  CHECK(seen == 2);
  CHECK(out.count == h.count);
  CHECK(out.publisher == h.publisher);
  CHECK(out.seq == h.seq);
  CHECK(out.topic_seq == h.topic_seq);
  CHECK(out.ack_floor == h.ack_floor);
  CHECK(status_text(status::bad_version) == "unsupported protocol version");

  SECTION("a short header of another version fills only what is present") {
    batch_header partial;
    std::uint8_t v = 0;
    // 24 bytes: magic, version, kind, count, publisher, seq; no topic_seq or ack_floor.
    REQUIRE(decode_header(bytes.data(), 24, partial, &v) == status::bad_version);
    CHECK(v == 2);
    CHECK(partial.count == h.count);
    CHECK(partial.publisher == h.publisher);
    CHECK(partial.seq == h.seq);
    CHECK(partial.topic_seq == 0);
    CHECK(partial.ack_floor == 0);
  }
  SECTION("version 0 is not this version either") {
    bytes[2] = 0;
    CHECK(decode_header(bytes.data(), bytes.size(), out) == status::bad_version);
  }
  SECTION("looks_like_header accepts any version") { CHECK(looks_like_header(bytes.data(), bytes.size())); }
}

TEST_CASE("decode_header rejects a frame that is not a batch", "[wire]") {
  auto bytes = encoded(sample_header());
  batch_header out;
  SECTION("kind ack") { bytes[3] = static_cast<char>(kind::ack); }
  SECTION("kind nack") { bytes[3] = static_cast<char>(kind::nack); }
  SECTION("kind expect") { bytes[3] = static_cast<char>(kind::expect); }
  SECTION("kind 0") { bytes[3] = 0; }
  SECTION("kind 0xFF") { bytes[3] = static_cast<char>(0xFF); }
  CHECK(decode_header(bytes.data(), bytes.size(), out) == status::bad_kind);
  CHECK_FALSE(looks_like_header(bytes.data(), bytes.size()));
  CHECK(status_text(status::bad_kind) == "unexpected frame kind");
}

TEST_CASE("decode_header reports a truncated header", "[wire]") {
  const auto bytes = encoded(sample_header());
  batch_header out;
  for (std::size_t size = 3; size < header_size; ++size) {
    INFO("size " << size);
    CHECK(decode_header(bytes.data(), size, out) == status::truncated);
  }
  CHECK(status_text(status::truncated) == "truncated");
}

TEST_CASE("decode_header reports bytes after the header", "[wire]") {
  auto bytes = encoded(sample_header());
  bytes += "x";
  batch_header out;
  CHECK(decode_header(bytes.data(), bytes.size(), out) == status::trailing);
  CHECK(status_text(status::trailing) == "bytes left over after the last record");
}

TEST_CASE("decode_header refuses a batch of zero records", "[wire]") {
  auto h = sample_header();
  h.count = 0;
  const auto bytes = encoded(h);
  batch_header out;
  CHECK(decode_header(bytes.data(), bytes.size(), out) == status::bad_count);
  CHECK(status_text(status::bad_count) == "record count is zero");
}

TEST_CASE("looks_like_header needs magic and the batch kind", "[wire]") {
  const auto bytes = encoded(sample_header());
  CHECK(looks_like_header(bytes.data(), bytes.size()));
  CHECK(looks_like_header(bytes.data(), 4));
  CHECK_FALSE(looks_like_header(bytes.data(), 3));
  CHECK_FALSE(looks_like_header(bytes.data(), 0));
}

TEST_CASE("record_reader walks the records append_record wrote", "[wire]") {
  SECTION("several records, including an empty one and binary bytes") {
    const std::vector<std::string> records{"one", "", std::string("\0\xff\n", 3), "four"};
    const auto body = body_of(records);
    CHECK(body.size() == 4 * record_prefix_size + 3 + 0 + 3 + 4);
    record_reader r(body.data(), body.size(), 4);
    std::vector<std::string> got;
    while (auto rec = r.next()) got.emplace_back(*rec);
    CHECK(got == records);
    CHECK(r.error() == status::ok);
    CHECK(r.done());
  }
  SECTION("the prefix is a big-endian u32 length") {
    std::string body;
    append_record(body, std::string(0x0102, 'a'));
    REQUIRE(body.size() == 4 + 0x0102);
    CHECK(body.substr(0, 4) == std::string("\x00\x00\x01\x02", 4));
  }
  SECTION("zero records in an empty body") {
    record_reader r(nullptr, 0, 0);
    CHECK_FALSE(r.next().has_value());
    CHECK(r.error() == status::ok);
    CHECK(r.done());
  }
}

TEST_CASE("record_reader reports a malformed body", "[wire]") {
  status err = status::ok;
  SECTION("a record length runs past the end of the body") {
    const auto body = prefix(10) + "short";
    CHECK(read_all(body, 1, err).empty());
    CHECK(err == status::bad_length);
    CHECK(status_text(err) == "record length runs past the end of the body");
  }
  SECTION("a huge record length") {
    const auto body = body_of({"ok"}) + prefix(0xFFFFFFFFu) + "x";
    CHECK(read_all(body, 2, err) == std::vector<std::string>{"ok"});
    CHECK(err == status::bad_length);
  }
  SECTION("fewer records than the count") {
    const auto body = body_of({"a", "b"});
    CHECK(read_all(body, 3, err) == std::vector<std::string>{"a", "b"});
    CHECK(err == status::truncated);
  }
  SECTION("a length prefix cut short") {
    const auto body = body_of({"a"}) + std::string("\x00\x00", 2);
    CHECK(read_all(body, 2, err) == std::vector<std::string>{"a"});
    CHECK(err == status::truncated);
  }
  SECTION("bytes after the last record") {
    const auto body = body_of({"a", "b"}) + "z";
    CHECK(read_all(body, 2, err) == std::vector<std::string>{"a", "b"});
    CHECK(err == status::trailing);
  }
  SECTION("a whole extra record after the count") {
    const auto body = body_of({"a", "b", "c"});
    CHECK(read_all(body, 2, err) == std::vector<std::string>{"a", "b"});
    CHECK(err == status::trailing);
  }
  SECTION("after an error next() keeps returning nothing") {
    const auto body = prefix(10) + "short";
    record_reader r(body.data(), body.size(), 1);
    CHECK_FALSE(r.next().has_value());
    CHECK_FALSE(r.next().has_value());
    CHECK(r.error() == status::bad_length);
    CHECK_FALSE(r.done());
  }
}

TEST_CASE("validate_body checks records and reports the largest", "[wire]") {
  bool too_large = true;
  std::size_t largest = 99;
  SECTION("a valid body without a limit") {
    const auto body = body_of({"a", "bbbb", "cc"});
    CHECK(validate_body(body.data(), body.size(), 3, 0, too_large, largest) == status::ok);
    CHECK_FALSE(too_large);
    CHECK(largest == 4);
  }
  SECTION("a record exactly at max_record is accepted") {
    const auto body = body_of({"a", "bbbb"});
    CHECK(validate_body(body.data(), body.size(), 2, 4, too_large, largest) == status::ok);
    CHECK_FALSE(too_large);
    CHECK(largest == 4);
  }
  SECTION("a record over max_record sets too_large") {
    const auto body = body_of({"a", "bbbbb", "cc"});
    CHECK(validate_body(body.data(), body.size(), 3, 4, too_large, largest) == status::ok);
    CHECK(too_large);
    CHECK(largest == 5);
  }
  SECTION("a length overrunning the body") {
    const auto body = body_of({"a"}) + prefix(100) + "b";
    CHECK(validate_body(body.data(), body.size(), 2, 0, too_large, largest) == status::bad_length);
    CHECK_FALSE(too_large);
  }
  SECTION("a truncated body") {
    const auto body = body_of({"a"});
    CHECK(validate_body(body.data(), body.size(), 2, 0, too_large, largest) == status::truncated);
  }
  SECTION("bytes after the last record") {
    const auto body = body_of({"a"}) + "\x01";
    CHECK(validate_body(body.data(), body.size(), 1, 0, too_large, largest) == status::trailing);
  }
}

TEST_CASE("encode_reply and decode_reply round-trip every kind", "[wire]") {
  reply r;
  SECTION("ack") {
    r.type = kind::ack;
    r.publisher = 0xAABBCCDDEEFF0011ull;
    r.seq = 12345;
  }
  SECTION("nack with reason text") {
    r.type = kind::nack;
    r.count = 7;
    r.publisher = 42;
    r.seq = 100;
    r.why = reason::too_large;
    r.text = "message of 2000000 bytes is larger than 1048576 — über";
  }
  SECTION("expect") {
    r.type = kind::expect;
    r.publisher = 1;
    r.seq = ~std::uint64_t{0};
  }
  const auto bytes = encode_reply(r);
  REQUIRE(bytes.size() == reply_fixed_size + r.text.size());
  CHECK(bytes.substr(0, 3) == "ZR\x01");
  CHECK(static_cast<unsigned char>(bytes[3]) == static_cast<unsigned char>(r.type));
  reply out;
  out.text = "stale";
  REQUIRE(decode_reply(bytes.data(), bytes.size(), out) == status::ok);
  CHECK(out.type == r.type);
  CHECK(out.count == r.count);
  CHECK(out.publisher == r.publisher);
  CHECK(out.seq == r.seq);
  CHECK(out.why == r.why);
  CHECK(out.text == r.text);
}

TEST_CASE("encode_reply writes the documented layout", "[wire]") {
  reply r;
  r.type = kind::nack;
  r.count = 2;
  r.publisher = 0x0102030405060708ull;
  r.seq = 0x1112131415161718ull;
  r.why = reason::overloaded;
  r.text = "busy";
  const std::string expected = std::string("ZR\x01\x03\x00\x00\x00\x02", 8) +
                               "\x01\x02\x03\x04\x05\x06\x07\x08"
                               "\x11\x12\x13\x14\x15\x16\x17\x18" +
                               "\x04" + "busy";
  CHECK(encode_reply(r) == expected);
}

TEST_CASE("decode_reply rejects each malformed reply", "[wire]") {
  reply good;
  good.type = kind::ack;
  good.publisher = 9;
  good.seq = 10;
  auto bytes = encode_reply(good);
  reply out;
  SECTION("bad magic") {
    bytes[0] = 'Q';
    CHECK(decode_reply(bytes.data(), bytes.size(), out) == status::bad_magic);
  }
  SECTION("empty frame") { CHECK(decode_reply(bytes.data(), 0, out) == status::bad_magic); }
  SECTION("wrong version") {
    bytes[2] = 7;
    CHECK(decode_reply(bytes.data(), bytes.size(), out) == status::bad_version);
  }
  SECTION("a batch header is not a reply") {
    bytes[3] = static_cast<char>(kind::batch);
    CHECK(decode_reply(bytes.data(), bytes.size(), out) == status::bad_kind);
  }
  SECTION("unknown kind") {
    bytes[3] = 9;
    CHECK(decode_reply(bytes.data(), bytes.size(), out) == status::bad_kind);
  }
  SECTION("truncated at every length below the fixed size") {
    for (std::size_t size = 3; size < reply_fixed_size; ++size) {
      INFO("size " << size);
      CHECK(decode_reply(bytes.data(), size, out) == status::truncated);
    }
  }
  // A rejected reply leaves the output untouched.
  CHECK(out.type == kind::ack);
  CHECK(out.publisher == 0);
  CHECK(out.seq == 0);
  CHECK(out.text.empty());
}

TEST_CASE("reason_text and status_text name every value", "[wire]") {
  CHECK(reason_text(reason::none) == "none");
  CHECK(reason_text(reason::too_large) == "too large");
  CHECK(reason_text(reason::malformed) == "malformed");
  CHECK(reason_text(reason::unsupported_version) == "unsupported version");
  CHECK(reason_text(reason::overloaded) == "overloaded");
  CHECK(reason_text(reason::not_allowed) == "not allowed");
  CHECK(reason_text(static_cast<reason>(200)) == "unknown reason");
  CHECK(status_text(status::ok) == "ok");
  CHECK(status_text(static_cast<status>(99)) == "unknown status");
}
