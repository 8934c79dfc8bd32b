#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "zrelay/input.hpp"

using zrelay::parse_delimiter;
using zrelay::record_splitter;
using zrelay::split_topic;

namespace {

using records = std::vector<std::string>;

// What a split reports for a record over its limit.
std::string oversized(std::uint64_t size) { return "<" + std::to_string(size) + " bytes>"; }

// Feeds `input` in chunks of the given sizes (the last size repeats), then finishes.
records split(const std::string& delim, const std::string& input, const std::vector<std::size_t>& chunks,
              std::size_t limit = 0) {
  records out;
  const record_splitter::record_fn collect = [&out](std::string_view r) { out.emplace_back(r); };
  const record_splitter::oversized_fn skipped = [&out](std::uint64_t size) { out.push_back(oversized(size)); };
  record_splitter s(delim, limit);
  std::size_t at = 0;
  std::size_t i = 0;
  while (at < input.size()) {
    const std::size_t n = std::min(chunks[std::min(i, chunks.size() - 1)], input.size() - at);
    s.feed(std::string_view(input).substr(at, n), collect, skipped);
    at += n;
    ++i;
  }
  s.finish(collect, skipped);
  return out;
}

records split_whole(const std::string& delim, const std::string& input) {
  return split(delim, input, {input.size() == 0 ? 1 : input.size()});
}

}  // namespace

TEST_CASE("record_splitter splits at a newline and keeps everything else", "[input]") {
  SECTION("plain lines") { CHECK(split_whole("\n", "a\nbb\nccc\n") == records{"a", "bb", "ccc"}); }
  SECTION("empty records are kept") { CHECK(split_whole("\n", "\na\n\n\nb\n") == records{"", "a", "", "", "b"}); }
  SECTION("CRLF keeps the CR in the record") {
    CHECK(split_whole("\n", "one\r\ntwo\r\n") == records{"one\r", "two\r"});
  }
  SECTION("a last record without delimiter comes from finish()") {
    CHECK(split_whole("\n", "a\nlast") == records{"a", "last"});
  }
  SECTION("no input, no records") { CHECK(split_whole("\n", "").empty()); }
  SECTION("a trailing delimiter does not add an empty record") { CHECK(split_whole("\n", "a\n") == records{"a"}); }
  SECTION("binary bytes pass through") {
    const std::string in("\x00\xff\x01\n\x80", 5);
    CHECK(split_whole("\n", in) == records{std::string("\x00\xff\x01", 3), "\x80"});
  }
}

TEST_CASE("record_splitter finds a record split across feed() calls at every byte boundary", "[input]") {
  const std::string input = "alpha\nbeta\n\ngamma\r\ndelta";
  const records expected{"alpha", "beta", "", "gamma\r", "delta"};
  for (std::size_t cut = 1; cut < input.size(); ++cut) {
    INFO("cut at " << cut);
    records out;
    const auto collect = [&out](std::string_view r) { out.emplace_back(r); };
    record_splitter s("\n");
    s.feed(std::string_view(input).substr(0, cut), collect);
    s.feed(std::string_view(input).substr(cut), collect);
    s.finish(collect);
    CHECK(out == expected);
  }
  SECTION("one byte at a time") { CHECK(split("\n", input, {1}) == expected); }
  SECTION("two bytes at a time") { CHECK(split("\n", input, {2}) == expected); }
  SECTION("three bytes at a time") { CHECK(split("\n", input, {3}) == expected); }
}

TEST_CASE("record_splitter finds a multi-byte delimiter straddling chunks", "[input]") {
  const std::string input = "one\r\ntwo\r\n\r\nthree\rfour\r\n";
  const records expected{"one", "two", "", "three\rfour"};
  SECTION("every two-chunk cut") {
    for (std::size_t cut = 1; cut < input.size(); ++cut) {
      INFO("cut at " << cut);
      records out;
      const auto collect = [&out](std::string_view r) { out.emplace_back(r); };
      record_splitter s("\r\n");
      s.feed(std::string_view(input).substr(0, cut), collect);
      s.feed(std::string_view(input).substr(cut), collect);
      s.finish(collect);
      CHECK(out == expected);
    }
  }
  SECTION("one byte at a time") { CHECK(split("\r\n", input, {1}) == expected); }
  SECTION("a long delimiter fed one byte at a time") {
    CHECK(split("<END>", "a<END>b<EN<END>c<END>", {1}) == records{"a", "b<EN", "c"});
  }
  SECTION("a long delimiter in chunks of 3 and 4") {
    const std::string in = "xx<END><END>yyyy<END>z";
    const records want{"xx", "", "yyyy", "z"};
    CHECK(split("<END>", in, {3}) == want);
    CHECK(split("<END>", in, {4}) == want);
    CHECK(split("<END>", in, {2, 7, 1}) == want);
  }
  SECTION("a self-overlapping delimiter") {
    CHECK(split_whole("aa", "aaa") == records{"", "a"});
    CHECK(split("aa", "aaa", {1}) == records{"", "a"});
    CHECK(split("aa", "xaaaay", {1}) == records{"x", "", "y"});
  }
}

TEST_CASE("record_splitter agrees with a reference split for arbitrary chunkings", "[input]") {
  // Inputs over a tiny alphabet make delimiters, partial delimiters and empty records common;
  // a fixed seed keeps the test reproducible.
  std::mt19937 rng(20240611);
  for (const std::string delim : {"\n", "ab", "aba", "\r\n", "xyzxy"}) {
    for (int round = 0; round < 200; ++round) {
      std::string input;
      const auto len = std::uniform_int_distribution<std::size_t>(0, 60)(rng);
      const std::string alphabet = delim + "c";
      for (std::size_t i = 0; i < len; ++i)
        input += alphabet[std::uniform_int_distribution<std::size_t>(0, alphabet.size() - 1)(rng)];
      records want;
      std::size_t start = 0;
      for (auto hit = input.find(delim); hit != std::string::npos; hit = input.find(delim, start)) {
        want.push_back(input.substr(start, hit - start));
        start = hit + delim.size();
      }
      if (start < input.size()) want.push_back(input.substr(start));
      std::vector<std::size_t> chunks;
      for (int i = 0; i < 20; ++i) chunks.push_back(std::uniform_int_distribution<std::size_t>(1, 7)(rng));
      INFO("delimiter '" << delim << "' input '" << input << "'");
      CHECK(split(delim, input, chunks) == want);
      // With a limit, each record over it is reported by its length instead.
      const auto limit = std::uniform_int_distribution<std::size_t>(1, 8)(rng);
      records capped;
      for (const auto& r : want) capped.push_back(r.size() > limit ? oversized(r.size()) : r);
      INFO("limit " << limit);
      CHECK(split(delim, input, chunks, limit) == capped);
    }
  }
}

TEST_CASE("record_splitter with a limit skips a huge record without holding it", "[input]") {
  const std::size_t limit = 1000;
  records out;
  const record_splitter::record_fn collect = [&out](std::string_view r) { out.emplace_back(r); };
  const record_splitter::oversized_fn skipped = [&out](std::uint64_t size) { out.push_back(oversized(size)); };
  record_splitter s("\r\n", limit);
  s.feed("before\r\n", collect, skipped);
  const std::string chunk(65536, 'x');
  std::size_t most_held = 0;
  for (int i = 0; i < 1600; ++i) {  // 100 MiB without a delimiter
    s.feed(chunk, collect, skipped);
    most_held = std::max(most_held, s.pending());
  }
  CHECK(most_held <= 1);           // what could begin the delimiter
  s.feed("\r", collect, skipped);  // the delimiter split across reads
  s.feed("\nexactly", collect, skipped);
  s.feed(std::string(limit - 7, 'y') + "\r\nlast without a delimiter, over the limit", collect, skipped);
  s.finish(collect, skipped);
  CHECK(out == records{"before", oversized(1600ull * 65536), "exactly" + std::string(limit - 7, 'y'),
                       "last without a delimiter, over the limit"});
  SECTION("a last record over the limit is reported at finish()") {
    s.feed(std::string(limit + 1, 'z'), collect, skipped);
    s.finish(collect, skipped);
    CHECK(out.back() == oversized(limit + 1));
  }
}

TEST_CASE("record_splitter splits at a NUL delimiter", "[input]") {
  const std::string input("first\0second\0\0third", 19);
  const std::string nul(1, '\0');
  const records expected{"first", "second", "", "third"};
  CHECK(split(nul, input, {input.size()}) == expected);
  CHECK(split(nul, input, {1}) == expected);
  CHECK(split(parse_delimiter("\\0"), input, {4}) == expected);
}

TEST_CASE("record_splitter holds an unfinished record until its delimiter or finish()", "[input]") {
  records out;
  const auto collect = [&out](std::string_view r) { out.emplace_back(r); };
  record_splitter s("\n");
  s.feed("abc", collect);
  CHECK(out.empty());
  CHECK(s.pending() == 3);
  s.feed("de\nfg", collect);
  CHECK(out == records{"abcde"});
  CHECK(s.pending() == 2);
  s.feed("\n", collect);
  CHECK(out == records{"abcde", "fg"});
  CHECK(s.pending() == 0);
  s.finish(collect);
  CHECK(out == records{"abcde", "fg"});

  SECTION("finish() resets, so the splitter can be reused") {
    s.feed("tail", collect);
    s.finish(collect);
    CHECK(out == records{"abcde", "fg", "tail"});
    CHECK(s.pending() == 0);
    s.finish(collect);
    CHECK(out.size() == 3);
  }
}

TEST_CASE("record_splitter passes a 10 MB record through intact", "[input]") {
  std::string big(10u << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  const std::string input = "before\n" + big + "\nafter";
  std::vector<std::size_t> sizes;
  std::size_t count = 0;
  bool big_ok = false;
  const auto collect = [&](std::string_view r) {
    sizes.push_back(r.size());
    if (++count == 2) big_ok = r == big;
  };
  record_splitter s("\n");
  for (std::size_t at = 0; at < input.size(); at += 65536) s.feed(std::string_view(input).substr(at, 65536), collect);
  s.finish(collect);
  CHECK(sizes == std::vector<std::size_t>{6, big.size(), 5});
  CHECK(big_ok);
}

TEST_CASE("record_splitter refuses an empty delimiter", "[input]") {
  CHECK_THROWS_MATCHES(record_splitter(""), std::invalid_argument, Catch::Message("the delimiter must not be empty"));
}

TEST_CASE("split_topic splits at the first separator", "[input]") {
  SECTION("single-byte separator") {
    const auto r = split_topic("news hello world", " ");
    REQUIRE(r);
    CHECK(r->first == "news");
    CHECK(r->second == "hello world");
  }
  SECTION("multi-byte separator") {
    const auto r = split_topic("a::b::c", "::");
    REQUIRE(r);
    CHECK(r->first == "a");
    CHECK(r->second == "b::c");
  }
  SECTION("empty topic and empty payload") {
    const auto r1 = split_topic("\tpayload", "\t");
    REQUIRE(r1);
    CHECK(r1->first.empty());
    CHECK(r1->second == "payload");
    const auto r2 = split_topic("topic\t", "\t");
    REQUIRE(r2);
    CHECK(r2->first == "topic");
    CHECK(r2->second.empty());
  }
  SECTION("no separator") { CHECK_FALSE(split_topic("no separator here", "|")); }
  SECTION("empty separator") { CHECK_FALSE(split_topic("abc", "")); }
  SECTION("empty record") { CHECK_FALSE(split_topic("", " ")); }
}

TEST_CASE("parse_delimiter turns escapes into bytes", "[input]") {
  CHECK(parse_delimiter("\\n") == "\n");
  CHECK(parse_delimiter("\\t") == "\t");
  CHECK(parse_delimiter("\\r") == "\r");
  CHECK(parse_delimiter("\\r\\n") == "\r\n");
  CHECK(parse_delimiter("\\0") == std::string(1, '\0'));
  CHECK(parse_delimiter("\\\\") == "\\");
  CHECK(parse_delimiter("\\x41") == "A");
  CHECK(parse_delimiter("\\x1e") == "\x1e");
  CHECK(parse_delimiter("\\xFF") == "\xff");
  CHECK(parse_delimiter("\\x00") == std::string(1, '\0'));
  CHECK(parse_delimiter("\\x2C\\x2c") == ",,");
  SECTION("anything else is literal") {
    CHECK(parse_delimiter(",") == ",");
    CHECK(parse_delimiter("---") == "---");
    CHECK(parse_delimiter("\n") == "\n");
    CHECK(parse_delimiter("a\\nb") == "a\nb");
  }
  SECTION("a lone trailing backslash is literal") {
    CHECK(parse_delimiter("\\") == "\\");
    CHECK(parse_delimiter("x\\") == "x\\");
  }
}

TEST_CASE("parse_delimiter rejects empty text and bad escapes", "[input]") {
  SECTION("empty") {
    CHECK_THROWS_MATCHES(parse_delimiter(""), std::invalid_argument, Catch::Message("the delimiter must not be empty"));
  }
  SECTION("unknown escape") {
    CHECK_THROWS_MATCHES(parse_delimiter("\\q"), std::invalid_argument,
                         Catch::Message("unknown escape '\\q' (use \\n \\t \\r \\0 \\\\ or \\xHH)"));
    CHECK_THROWS_WITH(parse_delimiter("ab\\e"), "unknown escape '\\e' (use \\n \\t \\r \\0 \\\\ or \\xHH)");
  }
  SECTION("\\x without two hex digits") {
    for (const char* text : {"\\x", "\\x4", "\\xg1", "\\x1g", "\\x 1"}) {
      INFO(text);
      CHECK_THROWS_MATCHES(parse_delimiter(text), std::invalid_argument, Catch::Message("'\\x' needs two hex digits"));
    }
  }
}
