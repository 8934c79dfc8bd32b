#include <catch2/catch.hpp>

#include <string>

#include "zrelay/format.hpp"

using zrelay::append_base64;
using zrelay::append_json_message;
using zrelay::message_view;
using zrelay::valid_utf8;

namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s += static_cast<char>(c);
  return s;
}

std::string base64(std::string_view s) {
  std::string out;
  append_base64(out, s);
  return out;
}

std::string json(const message_view& m) {
  std::string out;
  append_json_message(out, m);
  return out;
}

}  // namespace

TEST_CASE("valid_utf8 accepts well-formed UTF-8", "[format]") {
  CHECK(valid_utf8(""));
  CHECK(valid_utf8("plain ASCII"));
  CHECK(valid_utf8(std::string("nul\0inside", 10)));
  CHECK(valid_utf8(bytes({0x7F})));
  CHECK(valid_utf8(bytes({0xC2, 0x80})));              // U+0080, smallest 2-byte
  CHECK(valid_utf8("\xC3\xBC"));                       // ü
  CHECK(valid_utf8(bytes({0xDF, 0xBF})));              // U+07FF
  CHECK(valid_utf8(bytes({0xE0, 0xA0, 0x80})));        // U+0800, smallest 3-byte
  CHECK(valid_utf8("\xE2\x82\xAC"));                   // €
  CHECK(valid_utf8(bytes({0xED, 0x9F, 0xBF})));        // U+D7FF, just below the surrogates
  CHECK(valid_utf8(bytes({0xEE, 0x80, 0x80})));        // U+E000, just above them
  CHECK(valid_utf8(bytes({0xEF, 0xBF, 0xBF})));        // U+FFFF
  CHECK(valid_utf8(bytes({0xF0, 0x90, 0x80, 0x80})));  // U+10000, smallest 4-byte
  CHECK(valid_utf8("\xF0\x9F\x98\x80"));               // 😀
  CHECK(valid_utf8(bytes({0xF4, 0x8F, 0xBF, 0xBF})));  // U+10FFFF, the last code point
  CHECK(valid_utf8("mixed \xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 end"));
}

TEST_CASE("valid_utf8 rejects overlong forms", "[format]") {
  CHECK_FALSE(valid_utf8(bytes({0xC0, 0x80})));              // overlong NUL
  CHECK_FALSE(valid_utf8(bytes({0xC1, 0xBF})));              // overlong U+007F
  CHECK_FALSE(valid_utf8(bytes({0xE0, 0x80, 0x80})));        // overlong NUL, 3 bytes
  CHECK_FALSE(valid_utf8(bytes({0xE0, 0x9F, 0xBF})));        // overlong U+07FF
  CHECK_FALSE(valid_utf8(bytes({0xF0, 0x80, 0x80, 0x80})));  // overlong NUL, 4 bytes
  CHECK_FALSE(valid_utf8(bytes({0xF0, 0x8F, 0xBF, 0xBF})));  // overlong U+FFFF
  CHECK_FALSE(valid_utf8(bytes({0xC0, 0xAF})));              // overlong '/'
}

TEST_CASE("valid_utf8 rejects surrogates and code points past U+10FFFF", "[format]") {
  CHECK_FALSE(valid_utf8(bytes({0xED, 0xA0, 0x80})));                    // U+D800
  CHECK_FALSE(valid_utf8(bytes({0xED, 0xBF, 0xBF})));                    // U+DFFF
  CHECK_FALSE(valid_utf8(bytes({0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80})));  // CESU-8 surrogate pair
  CHECK_FALSE(valid_utf8(bytes({0xF4, 0x90, 0x80, 0x80})));              // U+110000
  CHECK_FALSE(valid_utf8(bytes({0xF5, 0x80, 0x80, 0x80})));
  CHECK_FALSE(valid_utf8(bytes({0xF7, 0xBF, 0xBF, 0xBF})));
  CHECK_FALSE(valid_utf8(bytes({0xF8, 0x88, 0x80, 0x80, 0x80})));  // old 5-byte form
  CHECK_FALSE(valid_utf8(bytes({0xFC, 0x84, 0x80, 0x80, 0x80, 0x80})));
  CHECK_FALSE(valid_utf8(bytes({0xFE})));
  CHECK_FALSE(valid_utf8(bytes({0xFF})));
}

TEST_CASE("valid_utf8 rejects truncated sequences and stray continuation bytes", "[format]") {
  CHECK_FALSE(valid_utf8(bytes({0xC3})));
  CHECK_FALSE(valid_utf8(bytes({0xE2, 0x82})));
  CHECK_FALSE(valid_utf8(bytes({0xF0, 0x9F, 0x98})));
  CHECK_FALSE(valid_utf8("ok then \xE2\x82"));
  CHECK_FALSE(valid_utf8(bytes({0xC3, 0x41})));              // lead byte then ASCII
  CHECK_FALSE(valid_utf8(bytes({0xE2, 0x28, 0xA1})));        // bad second byte
  CHECK_FALSE(valid_utf8(bytes({0xF0, 0x9F, 0x98, 0x41})));  // bad last byte
  CHECK_FALSE(valid_utf8(bytes({0x80})));
  CHECK_FALSE(valid_utf8(bytes({0xBF})));
  CHECK_FALSE(valid_utf8(bytes({0x41, 0x80, 0x41})));
  CHECK_FALSE(valid_utf8(bytes({0xC3, 0xBC, 0xBC})));  // one continuation too many
}

TEST_CASE("append_base64 matches the RFC 4648 test vectors", "[format]") {
  CHECK(base64("") == "");
  CHECK(base64("f") == "Zg==");
  CHECK(base64("fo") == "Zm8=");
  CHECK(base64("foo") == "Zm9v");
  CHECK(base64("foob") == "Zm9vYg==");
  CHECK(base64("fooba") == "Zm9vYmE=");
  CHECK(base64("foobar") == "Zm9vYmFy");
  SECTION("binary bytes use + and /") {
    CHECK(base64(bytes({0xFB, 0xFF, 0xBF})) == "+/+/");
    CHECK(base64(bytes({0x00, 0x00, 0x00})) == "AAAA");
    CHECK(base64(bytes({0xFF, 0xFE})) == "//4=");
    CHECK(base64(bytes({0x00})) == "AA==");
  }
  SECTION("appends to what is there") {
    std::string out = "prefix:";
    append_base64(out, "foo");
    CHECK(out == "prefix:Zm9v");
  }
}

TEST_CASE("append_json_message writes topic and payload as strings when they are UTF-8", "[format]") {
  message_view m;
  m.topic = "news";
  m.payload = "gr\xC3\xBC\xC3\x9F \"dich\"\n";
  CHECK(json(m) == "{\"topic\":\"news\",\"payload\":\"gr\xC3\xBC\xC3\x9F \\\"dich\\\"\\n\"}");
}

TEST_CASE("append_json_message writes binary fields as base64", "[format]") {
  message_view m;
  SECTION("binary payload") {
    const std::string payload = bytes({0xFF, 0xFE, 0x00});
    m.topic = "bin";
    m.payload = payload;
    CHECK(json(m) == "{\"topic\":\"bin\",\"payload_base64\":\"//4A\"}");
  }
  SECTION("binary topic") {
    const std::string topic = bytes({0xC0, 0x80});
    m.topic = topic;
    m.payload = "text";
    CHECK(json(m) == "{\"topic_base64\":\"wIA=\",\"payload\":\"text\"}");
  }
  SECTION("a payload with a NUL is still UTF-8") {
    const std::string payload("a\0b", 3);
    m.topic = "t";
    m.payload = payload;
    CHECK(json(m) == "{\"topic\":\"t\",\"payload\":\"a\\u0000b\"}");
  }
}

TEST_CASE("append_json_message includes publisher and seq only for sequenced messages", "[format]") {
  message_view m;
  m.topic = "t";
  m.payload = "p";
  SECTION("plain message: publisher 0") {
    m.topic_seq = 5;  // ignored without a publisher
    CHECK(json(m) == "{\"topic\":\"t\",\"payload\":\"p\"}");
  }
  SECTION("sequenced message: 16 lowercase hex digits and the topic sequence") {
    m.publisher = 0x0123456789ABCDEFull;
    m.topic_seq = 42;
    CHECK(json(m) == "{\"topic\":\"t\",\"payload\":\"p\",\"publisher\":\"0123456789abcdef\",\"seq\":42}");
  }
  SECTION("small publisher id is zero-padded, huge seq is exact") {
    m.publisher = 1;
    m.topic_seq = 18446744073709551615ull;
    CHECK(json(m) ==
          "{\"topic\":\"t\",\"payload\":\"p\",\"publisher\":\"0000000000000001\",\"seq\":18446744073709551615}");
  }
  SECTION("appends without a newline") {
    std::string out = "x";
    append_json_message(out, m);
    CHECK(out == "x{\"topic\":\"t\",\"payload\":\"p\"}");
  }
}

TEST_CASE("append_json_message includes journal_seq only when it is known", "[format]") {
  message_view m;
  m.topic = "t";
  m.payload = "p";
  SECTION("unknown (0): left out") { CHECK(json(m) == "{\"topic\":\"t\",\"payload\":\"p\"}"); }
  SECTION("a plain message from a replay") {
    m.journal_seq = 7;
    CHECK(json(m) == "{\"topic\":\"t\",\"payload\":\"p\",\"journal_seq\":7}");
  }
  SECTION("a sequenced message: after seq") {
    m.publisher = 1;
    m.topic_seq = 2;
    m.journal_seq = 18446744073709551615ull;
    CHECK(json(m) == "{\"topic\":\"t\",\"payload\":\"p\",\"publisher\":\"0000000000000001\",\"seq\":2,"
                     "\"journal_seq\":18446744073709551615}");
  }
}
