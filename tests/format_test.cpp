#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <string>

#include "zrelay/format.hpp"

using zrelay::append_base64;
using zrelay::append_iso8601;
using zrelay::append_json_message;
using zrelay::format_error;
using zrelay::message_format;
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

// `spec` applied to `m`, received at `t`.
std::string formatted(std::string_view spec, const message_view& m, timespec t = {}) {
  message_format f(spec);
  std::string out;
  f.append(out, m, t);
  return out;
}

message_view sequenced() {
  message_view m;
  m.topic = "news.sport";
  m.payload = "goal";
  m.publisher = 0x00ab00cd00ef0012ull;
  m.topic_seq = 42;
  return m;
}

// Sets TZ for the test and puts it back after: localtime_r reads TZ only through tzset().
class time_zone {
public:
  explicit time_zone(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    had_ = std::getenv("TZ") != nullptr;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~time_zone() {
    if (had_) {
      ::setenv("TZ", old_.c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  time_zone(const time_zone&) = delete;
  time_zone& operator=(const time_zone&) = delete;

private:
  std::string old_;
  bool had_ = false;
};

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

TEST_CASE("message_format replaces each code with its field", "[format]") {
  const auto m = sequenced();
  CHECK(formatted("%t", m) == "news.sport");
  CHECK(formatted("%p", m) == "goal");
  CHECK(formatted("%t %p", m) == "news.sport goal");
  CHECK(formatted("%x", m) == "676f616c");
  CHECK(formatted("%X", m) == "676F616C");
  CHECK(formatted("%l", m) == "4");
  CHECK(formatted("%i", m) == "00ab00cd00ef0012");
  CHECK(formatted("%s", m) == "42");
  CHECK(formatted("%j", m) ==
        "{\"topic\":\"news.sport\",\"payload\":\"goal\",\"publisher\":\"00ab00cd00ef0012\",\"seq\":42}");
  CHECK(formatted("[%t] %l bytes from %i #%s: %p", m) == "[news.sport] 4 bytes from 00ab00cd00ef0012 #42: goal");
}

TEST_CASE("message_format adds no terminator and keeps text as it is", "[format]") {
  const auto m = sequenced();
  CHECK(formatted("plain text, no codes", m) == "plain text, no codes");
  CHECK(formatted("\xC3\xBC %t \xE2\x82\xAC", m) == "\xC3\xBC news.sport \xE2\x82\xAC");
  SECTION("it appends to what is there") {
    message_format f("%p");
    std::string out = "before:";
    f.append(out, m, {});
    f.append(out, m, {});
    CHECK(out == "before:goalgoal");
  }
}

TEST_CASE("message_format reads mosquitto_sub's escapes", "[format]") {
  const auto m = sequenced();
  CHECK(formatted("%t\\t%p\\n", m) == "news.sport\tgoal\n");
  CHECK(formatted("\\\\", m) == "\\");
  CHECK(formatted("100%%", m) == "100%");
  CHECK(formatted("%%t", m) == "%t");
  CHECK(formatted("a@@b", m) == "a@b");
  CHECK(formatted("%t\\0%p", m) == std::string("news.sport\0goal", 15));
  CHECK(formatted("\\r\\e\\a\\v", m) == "\r\033\a\v");
}

TEST_CASE("message_format prints '-' for what a message does not have", "[format]") {
  message_view m;
  m.topic = "t";
  m.payload = "";
  SECTION("a plain message: no publisher, sequence or journal sequence") {
    CHECK(formatted("%i %s %n|%p|%l|%x", m) == "- - -||0|");
    CHECK(formatted("%j", m) == "{\"topic\":\"t\",\"payload\":\"\"}");
  }
  SECTION("a plain message from a journal") {
    m.journal_seq = 7;
    CHECK(formatted("%i %s %n", m) == "- - 7");
  }
  SECTION("a sequenced message from a journal") {
    m.publisher = 1;
    m.topic_seq = 18446744073709551615ull;
    m.journal_seq = 18446744073709551615ull;
    CHECK(formatted("%i %s %n", m) == "0000000000000001 18446744073709551615 18446744073709551615");
  }
}

TEST_CASE("message_format writes binary payloads as they are, or in hex", "[format]") {
  message_view m;
  m.topic = "bin";
  const std::string payload("\x00\xff\x10\n", 4);
  m.payload = payload;
  CHECK(formatted("%p", m) == payload);
  CHECK(formatted("%x", m) == "00ff100a");
  CHECK(formatted("%X", m) == "00FF100A");
  CHECK(formatted("%l", m) == "4");
  CHECK(formatted("%j", m) == "{\"topic\":\"bin\",\"payload_base64\":\"AP8QCg==\"}");
}

TEST_CASE("message_format prints the time of receipt only for %I and %U", "[format]") {
  const auto m = sequenced();
  CHECK_FALSE(message_format("%t %p %x %X %l %j %i %s %n %% \\n").uses_time());
  CHECK(message_format("%I").uses_time());
  CHECK(message_format("x%U").uses_time());
  SECTION("%U: seconds, a dot and nine digits of nanoseconds") {
    CHECK(formatted("%U", m, {1796159045, 123456789}) == "1796159045.123456789");
    CHECK(formatted("%U", m, {1796159045, 5}) == "1796159045.000000005");
    CHECK(formatted("%U", m, {0, 0}) == "0.000000000");
    CHECK(formatted("%U", m, {-1, 500000000}) == "-0.500000000");
    CHECK(formatted("%U", m, {-2, 0}) == "-2.000000000");
  }
  SECTION("%I: local time to the second, with the zone's offset") {
    {
      time_zone tz("UTC0");
      CHECK(formatted("%I", m, {1796159045, 999999999}) == "2026-12-01T21:04:05+00:00");
    }
    {
      time_zone tz("IST-5:30");  // POSIX: 5:30 east of UTC, no tzdata needed
      CHECK(formatted("%I", m, {1796159045, 0}) == "2026-12-02T02:34:05+05:30");
    }
    {
      time_zone tz("XST8");  // 8 hours west
      CHECK(formatted("%I %t", m, {1796159045, 0}) == "2026-12-01T13:04:05-08:00 news.sport");
    }
  }
  SECTION("%I follows the clock from one second to the next") {
    time_zone tz("UTC0");
    message_format f("%I|");
    std::string out;
    f.append(out, m, {1796159045, 0});
    f.append(out, m, {1796159045, 900000000});
    f.append(out, m, {1796159046, 0});
    f.append(out, m, {0, 0});
    CHECK(out == "2026-12-01T21:04:05+00:00|2026-12-01T21:04:05+00:00|2026-12-01T21:04:06+00:00|"
                 "1970-01-01T00:00:00+00:00|");
  }
}

TEST_CASE("append_iso8601 writes RFC 3339 times that zsub --since reads back", "[format]") {
  std::string out;
  append_iso8601(out, 1796159045, 0);
  CHECK(out == "2026-12-01T21:04:05+00:00");
  out.clear();
  append_iso8601(out, 1796159045, 3600);
  CHECK(out == "2026-12-01T22:04:05+01:00");
  out.clear();
  append_iso8601(out, 1796159045, -(3 * 3600 + 30 * 60));
  CHECK(out == "2026-12-01T17:34:05-03:30");
  out.clear();
  append_iso8601(out, 951782400, 0);  // a leap day
  CHECK(out == "2000-02-29T00:00:00+00:00");
}

TEST_CASE("message_format refuses what it cannot print, naming it", "[format]") {
  SECTION("an unknown code") {
    CHECK_THROWS_MATCHES(message_format("%t %y"), format_error, Catch::Message("unknown code '%y'"));
    CHECK_THROWS_MATCHES(message_format("%\xC3\xA9"), format_error, Catch::Message("unknown code '%\xC3\xA9'"));
  }
  SECTION("mosquitto_sub's MQTT codes") {
    for (const char* code : {"%q", "%r", "%m", "%J", "%A", "%C", "%D", "%E", "%F", "%P", "%R", "%S"}) {
      INFO(code);
      CHECK_THROWS_MATCHES(message_format(code), format_error,
                           Catch::Message("'" + std::string(code) +
                                          "' is one of mosquitto_sub's MQTT codes, with no counterpart in zrelay"));
    }
  }
  SECTION("field widths") {
    CHECK_THROWS_MATCHES(message_format("%10t"), format_error,
                         Catch::Message("'%1': field widths and precisions (mosquitto_sub's %10t) are not supported"));
    CHECK_THROWS_WITH(message_format("%-5p"), Catch::StartsWith("'%-': field widths"));
    CHECK_THROWS_WITH(message_format("%.5p"), Catch::StartsWith("'%.': field widths"));
  }
  SECTION("an unknown escape") {
    CHECK_THROWS_MATCHES(message_format("%t\\q"), format_error, Catch::Message("unknown escape '\\q'"));
    CHECK_THROWS_MATCHES(message_format("\\x41"), format_error, Catch::Message("unknown escape '\\x'"));
  }
  SECTION("mosquitto_sub's @ time sequences") {
    CHECK_THROWS_MATCHES(
        message_format("@Y-@m-@d %t"), format_error,
        Catch::Message("'@Y': mosquitto_sub's @ time sequences are not supported (use %I or %U; @@ is a @)"));
  }
  SECTION("a sequence cut short at the end") {
    CHECK_THROWS_MATCHES(message_format("%t %"), format_error,
                         Catch::Message("a lone '%' at the end (write %% for a %)"));
    CHECK_THROWS_MATCHES(message_format("%t\\"), format_error,
                         Catch::Message("a lone '\\' at the end (write \\\\ for a \\)"));
    CHECK_THROWS_MATCHES(message_format("%t@"), format_error,
                         Catch::Message("a lone '@' at the end (write @@ for a @)"));
  }
  SECTION("what comes after an escaped sign is text") { CHECK_NOTHROW(message_format("%%y \\\\q @@Y %%")); }
}
