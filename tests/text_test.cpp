#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "zrelay/text.hpp"

using zrelay::append_json_string;
using zrelay::printable;
using zrelay::to_hex;

namespace {

std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string shown(std::string_view s, std::size_t limit = 80) { return printable(s.data(), s.size(), limit); }

}  // namespace

TEST_CASE("to_hex writes 16 lowercase hex digits, leading zeros kept", "[text]") {
  CHECK(to_hex(0) == "0000000000000000");
  CHECK(to_hex(1) == "0000000000000001");
  CHECK(to_hex(0xabcdef) == "0000000000abcdef");
  CHECK(to_hex(0x0123456789abcdefull) == "0123456789abcdef");
  CHECK(to_hex(UINT64_MAX) == "ffffffffffffffff");
}

TEST_CASE("printable keeps printable ASCII and writes every other byte as \\xHH", "[text]") {
  CHECK(shown("") == "");
  CHECK(shown("news.eu-west 42 ~!") == "news.eu-west 42 ~!");
  SECTION("control characters and DEL") {
    CHECK(shown("a\nb") == "a\\x0ab");
    CHECK(shown("\t\r") == "\\x09\\x0d");
    CHECK(shown(std::string("nul\0in", 6)) == "nul\\x00in");
    CHECK(shown("\x1b[31m") == "\\x1b[31m");
    CHECK(shown("\x7f") == "\\x7f");
  }
  SECTION("backslash and single quote, so that the text between quotes reads one way") {
    CHECK(shown("a\\x41") == "a\\x5cx41");
    CHECK(shown("it's") == "it\\x27s");
    CHECK(shown("\"") == "\"");
  }
  SECTION("bytes past ASCII, UTF-8 or not, byte by byte") {
    CHECK(shown("caf\xC3\xA9") == "caf\\xc3\\xa9");
    CHECK(shown("\xff\x80") == "\\xff\\x80");
  }
}

TEST_CASE("printable shows at most `limit` bytes, then ...", "[text]") {
  const std::string eighty(80, 'x');
  CHECK(shown(eighty) == eighty);
  CHECK(shown(eighty + "y") == eighty + "...");
  CHECK(shown("abcdef", 3) == "abc...");
  CHECK(shown("abc", 3) == "abc");
  CHECK(shown("abc", 0) == "...");
  SECTION("the limit counts input bytes, not the escapes they become") {
    CHECK(shown("\n\n\n\n", 2) == "\\x0a\\x0a...");
  }
  SECTION("the default limit is 80") {
    const std::string s(200, 'z');
    CHECK(printable(s.data(), s.size()) == std::string(80, 'z') + "...");
  }
}

TEST_CASE("append_json_string escapes what JSON requires", "[text]") {
  CHECK(json_string("") == "\"\"");
  CHECK(json_string("plain") == "\"plain\"");
  CHECK(json_string("say \"hi\"") == "\"say \\\"hi\\\"\"");
  CHECK(json_string("back\\slash") == "\"back\\\\slash\"");
  CHECK(json_string("a/b") == "\"a/b\"");
  SECTION("named control characters") { CHECK(json_string("\n\r\t\b\f") == "\"\\n\\r\\t\\b\\f\""); }
  SECTION("other control characters as \\u00XX") {
    CHECK(json_string(std::string(1, '\0')) == "\"\\u0000\"");
    CHECK(json_string("\x01") == "\"\\u0001\"");
    CHECK(json_string("\x1b[0m") == "\"\\u001b[0m\"");
    CHECK(json_string("\x1f") == "\"\\u001f\"");
    CHECK(json_string("\x7f") == "\"\\u007f\"");
    CHECK(json_string(" ") == "\" \"");
  }
  SECTION("every byte below 0x20 is escaped, none is left raw") {
    for (int c = 0; c < 0x20; ++c) {
      INFO(c);
      const auto out = json_string(std::string(1, static_cast<char>(c)));
      CHECK(out.size() > 3);
      CHECK(out.find(static_cast<char>(c)) == std::string::npos);
    }
  }
  SECTION("UTF-8 passes through unchanged") {
    CHECK(json_string("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  }
  SECTION("appends to what is there") {
    std::string out = "[";
    append_json_string(out, "x");
    CHECK(out == "[\"x\"");
  }
}
