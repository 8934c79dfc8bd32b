#include <catch2/catch.hpp>

#include <cctype>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "zrelay/stats.hpp"

using zrelay::for_each_counter;
using zrelay::format_counters;
using zrelay::format_counters_json;
using zrelay::relay_counters;
using zrelay::relay_stats;

namespace {

// The counters' names in ZRELAY_COUNTERS's order: every test below walks this list, so a counter
// added to ZRELAY_COUNTERS is covered without touching this file.
const std::vector<std::string>& counter_names() {
  static const std::vector<std::string> names{
#define NAME(name, kind, doc) #name,
      ZRELAY_COUNTERS(NAME)
#undef NAME
  };
  return names;
}

// A value of its own for the i-th counter: a copy into the wrong member, or a counter left out,
// does not go unnoticed. Past 2^32, so that a narrowing copy would show too.
std::uint64_t value_for(std::size_t i) { return (std::uint64_t{1} << 33) + 1000 * (i + 1) + i; }

// What for_each_counter yields, in order.
std::vector<std::pair<std::string, std::uint64_t>> visited(const relay_counters& c) {
  std::vector<std::pair<std::string, std::uint64_t>> v;
  for_each_counter(c, [&v](const char* name, std::uint64_t value) { v.emplace_back(name, value); });
  return v;
}

// A strict reader of the one shape format_counters_json writes, an object whose members are
// strings mapped to unsigned integers: {"a":1,"b":2}. Fails on anything else (whitespace, a
// trailing comma, leading zeros, an unterminated name, text after the object).
bool parse_flat_object(const std::string& s, std::vector<std::pair<std::string, std::uint64_t>>& out) {
  std::size_t i = 0;
  if (i >= s.size() || s[i++] != '{') return false;
  if (i < s.size() && s[i] == '}') return ++i == s.size();
  for (;;) {
    if (i >= s.size() || s[i++] != '"') return false;
    std::string name;
    while (i < s.size() && s[i] != '"') {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == '\\') return false;  // no escapes expected in counter names
      name += s[i++];
    }
    if (i >= s.size() || name.empty()) return false;
    ++i;  // the closing quote
    if (i >= s.size() || s[i++] != ':') return false;
    const std::size_t digits = i;
    std::uint64_t value = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      const std::uint64_t d = static_cast<std::uint64_t>(s[i++] - '0');
      if (value > (UINT64_MAX - d) / 10) return false;
      value = value * 10 + d;
    }
    if (i == digits || (i - digits > 1 && s[digits] == '0')) return false;
    out.emplace_back(name, value);
    if (i >= s.size()) return false;
    if (s[i] == '}') return ++i == s.size();
    if (s[i++] != ',') return false;
  }
}

}  // namespace

// How many entries ZRELAY_COUNTERS has.
constexpr std::size_t counter_count = 0
#define ONE(name, kind, doc) +1
    ZRELAY_COUNTERS(ONE)
#undef ONE
    ;

TEST_CASE("the snapshot has a member for each counter and nothing else", "[stats]") {
  // A member added to relay_counters outside ZRELAY_COUNTERS would be missing from the stats
  // line, the JSON form and the live set (the liveness /healthz reads is no counter).
  STATIC_REQUIRE(sizeof(relay_counters) == sizeof(std::uint64_t) * counter_count + sizeof(relay_counters::liveness));
  REQUIRE(counter_names().size() == counter_count);
  const std::set<std::string> distinct(counter_names().begin(), counter_names().end());
  CHECK(distinct.size() == counter_count);
}

TEST_CASE("relay_stats starts at zero", "[stats]") {
  const relay_stats s;
  const auto v = visited(s.snapshot());
  REQUIRE(v.size() == counter_names().size());
  for (const auto& [name, value] : v) {
    INFO(name);
    CHECK(value == 0);
  }
}

TEST_CASE("relay_stats::add accumulates and snapshot copies every counter", "[stats]") {
  relay_stats s;
  std::size_t i = 0;
  // Each counter gets its own value, in two adds (one with the default n = 1).
#define ADD(name, kind, doc)                  \
  relay_stats::add(s.name, value_for(i) - 1); \
  relay_stats::add(s.name);                   \
  ++i;
  ZRELAY_COUNTERS(ADD)
#undef ADD
  const auto c = s.snapshot();
  const auto v = visited(c);
  REQUIRE(v.size() == counter_names().size());
  for (std::size_t k = 0; k < v.size(); ++k) {
    INFO(v[k].first);
    CHECK(v[k].first == counter_names()[k]);
    CHECK(v[k].second == value_for(k));
  }

  SECTION("adding 0 leaves a counter as it is") {
    relay_stats::add(s.publishers, 0);
    CHECK(s.snapshot().publishers == c.publishers);
  }
  SECTION("a counter can be set outright (the relay stores the number of publishers)") {
    s.publishers.store(7, std::memory_order_relaxed);
    CHECK(s.snapshot().publishers == 7);
  }
  SECTION("a snapshot is a copy that later adds do not change") {
    relay_stats::add(s.msgs_in, 100);
    CHECK(c.msgs_in == value_for(0));
    CHECK(s.snapshot().msgs_in == value_for(0) + 100);
  }
  SECTION("large values are kept exactly") {
    relay_stats::add(s.bytes_out, (std::uint64_t{1} << 60));
    CHECK(s.snapshot().bytes_out == (std::uint64_t{1} << 60) + c.bytes_out);
  }
}

TEST_CASE("for_each_counter visits every counter once, by name, with its value", "[stats]") {
  relay_counters c;
  std::size_t i = 0;
#define SET(name, kind, doc) c.name = value_for(i++);
  ZRELAY_COUNTERS(SET)
#undef SET
  const auto v = visited(c);
  REQUIRE(v.size() == counter_names().size());
  for (std::size_t k = 0; k < v.size(); ++k) {
    INFO(k);
    CHECK(v[k].first == counter_names()[k]);
    CHECK(v[k].second == value_for(k));
  }
}

TEST_CASE("format_counters writes every counter as key=value in a fixed order", "[stats]") {
  SECTION("zeros") {
    CHECK(
        format_counters(relay_counters{}) ==
        "msgs_in=0 bytes_in=0 msgs_out=0 bytes_out=0 acks=0 nacks=0 duplicates=0 dropped=0 blocked=0 "
        "malformed=0 subscriptions=0 unsubscriptions=0 refused=0 clients_refused=0 disconnects=0 "
        "publishers=0 journaled=0 journal_syncs=0 journal_errors=0 unjournaled=0 replays=0 replayed=0 "
        "subscriber_connections=0 publisher_connections=0 ack_connections=0 held=0 journal_pending=0 journal_unavailable=0 "
        "journal_messages=0 journal_bytes=0 journal_segments=0 journal_bytes_written=0 journal_segments_removed=0 "
        "link_msgs_out=0 link_msgs_in=0 link_resent=0 link_dropped=0 link_subs_out=0 link_subs_in=0 links_refused=0 "
        "links_active=0 upstream_up=0");
  }
  SECTION("distinct values land on their own keys") {
    relay_counters c;
    c.msgs_in = 1;
    c.bytes_in = 2;
    c.msgs_out = 3;
    c.bytes_out = 4;
    c.acks = 5;
    c.nacks = 6;
    c.duplicates = 7;
    c.dropped = 8;
    c.blocked = 9;
    c.malformed = 10;
    c.subscriptions = 11;
    c.unsubscriptions = 12;
    c.refused = 13;
    c.clients_refused = 14;
    c.disconnects = 15;
    c.publishers = 18446744073709551615ull;
    c.journaled = 19;
    c.journal_syncs = 20;
    c.journal_errors = 21;
    c.unjournaled = 22;
    c.replays = 16;
    c.replayed = 17;
    c.subscriber_connections = 23;
    c.publisher_connections = 24;
    c.ack_connections = 25;
    c.held = 26;
    c.journal_pending = 27;
    c.journal_unavailable = 1;
    c.journal_messages = 28;
    c.journal_bytes = 29;
    c.journal_segments = 30;
    c.journal_bytes_written = 31;
    c.journal_segments_removed = 32;
    c.link_msgs_out = 33;
    c.link_msgs_in = 34;
    c.link_resent = 35;
    c.link_dropped = 36;
    c.link_subs_out = 37;
    c.link_subs_in = 38;
    c.links_refused = 39;
    c.links_active = 40;
    c.upstream_up = 1;
    const auto line = format_counters(c);
    CHECK(line ==
          "msgs_in=1 bytes_in=2 msgs_out=3 bytes_out=4 acks=5 nacks=6 duplicates=7 dropped=8 blocked=9 "
          "malformed=10 subscriptions=11 unsubscriptions=12 refused=13 clients_refused=14 disconnects=15 "
          "publishers=18446744073709551615 journaled=19 journal_syncs=20 journal_errors=21 unjournaled=22 "
          "replays=16 replayed=17 subscriber_connections=23 publisher_connections=24 ack_connections=25 held=26 "
          "journal_pending=27 journal_unavailable=1 journal_messages=28 journal_bytes=29 journal_segments=30 "
          "journal_bytes_written=31 journal_segments_removed=32 link_msgs_out=33 link_msgs_in=34 link_resent=35 "
          "link_dropped=36 link_subs_out=37 link_subs_in=38 links_refused=39 links_active=40 upstream_up=1");
  }
  SECTION("every counter in the list, each once, in the list's order") {
    relay_counters c;
    std::size_t i = 0;
#define SET(name, kind, doc) c.name = value_for(i++);
    ZRELAY_COUNTERS(SET)
#undef SET
    std::string expected;
    for (std::size_t k = 0; k < counter_names().size(); ++k)
      expected += (k ? " " : "") + counter_names()[k] + "=" + std::to_string(value_for(k));
    CHECK(format_counters(c) == expected);
  }
}

TEST_CASE("format_counters_json writes one flat object with every counter once", "[stats]") {
  SECTION("the text itself") {
    relay_counters c;
    c.msgs_in = 10;
    c.bytes_in = 640;
    c.publishers = 18446744073709551615ull;
    CHECK(
        format_counters_json(c) ==
        "{\"msgs_in\":10,\"bytes_in\":640,\"msgs_out\":0,\"bytes_out\":0,\"acks\":0,\"nacks\":0,\"duplicates\":0,"
        "\"dropped\":0,\"blocked\":0,\"malformed\":0,\"subscriptions\":0,\"unsubscriptions\":0,\"refused\":0,"
        "\"clients_refused\":0,\"disconnects\":0,\"publishers\":18446744073709551615,\"journaled\":0,\"journal_syncs\":0,"
        "\"journal_errors\":0,\"unjournaled\":0,\"replays\":0,\"replayed\":0,\"subscriber_connections\":0,"
        "\"publisher_connections\":0,\"ack_connections\":0,\"held\":0,\"journal_pending\":0,"
        "\"journal_unavailable\":0,\"journal_messages\":0,\"journal_bytes\":0,\"journal_segments\":0,"
        "\"journal_bytes_written\":0,\"journal_segments_removed\":0,\"link_msgs_out\":0,\"link_msgs_in\":0,"
        "\"link_resent\":0,\"link_dropped\":0,\"link_subs_out\":0,\"link_subs_in\":0,\"links_refused\":0,"
        "\"links_active\":0,\"upstream_up\":0}");
  }
  SECTION("parsed back: each name once, with its value, in the list's order") {
    relay_counters c;
    std::size_t i = 0;
#define SET(name, kind, doc) c.name = value_for(i++);
    ZRELAY_COUNTERS(SET)
#undef SET
    const auto text = format_counters_json(c);
    INFO(text);
    CHECK(text.find('\n') == std::string::npos);
    std::vector<std::pair<std::string, std::uint64_t>> members;
    REQUIRE(parse_flat_object(text, members));
    REQUIRE(members.size() == counter_names().size());
    std::map<std::string, int> times;
    for (std::size_t k = 0; k < members.size(); ++k) {
      INFO(members[k].first);
      CHECK(++times[members[k].first] == 1);
      CHECK(members[k].first == counter_names()[k]);
      CHECK(members[k].second == value_for(k));
    }
  }
  SECTION("zeros parse too") {
    std::vector<std::pair<std::string, std::uint64_t>> members;
    REQUIRE(parse_flat_object(format_counters_json(relay_counters{}), members));
    CHECK(members.size() == counter_names().size());
  }
}

TEST_CASE("the JSON reader used above refuses what is not the shape", "[stats]") {
  // The checks above are only as strict as this reader.
  std::vector<std::pair<std::string, std::uint64_t>> m;
  CHECK(parse_flat_object("{}", m));
  CHECK(parse_flat_object("{\"a\":1,\"b\":20}", m));
  for (const char* bad : {"", "{", "}", "{\"a\":1,}", "{\"a\":1", "{\"a\":}", "{\"a\":01}", "{\"a\":-1}", "{\"a\" :1}",
                          "{\"a\":1} ", "{a:1}", "{\"\":1}", "{\"a\":18446744073709551616}", "{\"a\":1}\n"}) {
    INFO(bad);
    CHECK_FALSE(parse_flat_object(bad, m));
  }
}
