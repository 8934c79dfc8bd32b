#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "zrelay/stats.hpp"

using zrelay::format_counters;
using zrelay::relay_counters;
using zrelay::relay_stats;

TEST_CASE("relay_stats starts at zero", "[stats]") {
  const relay_stats s;
  const auto c = s.snapshot();
  CHECK(c.msgs_in == 0);
  CHECK(c.bytes_in == 0);
  CHECK(c.msgs_out == 0);
  CHECK(c.bytes_out == 0);
  CHECK(c.acks == 0);
  CHECK(c.nacks == 0);
  CHECK(c.duplicates == 0);
  CHECK(c.dropped == 0);
  CHECK(c.blocked == 0);
  CHECK(c.malformed == 0);
  CHECK(c.subscriptions == 0);
  CHECK(c.unsubscriptions == 0);
  CHECK(c.disconnects == 0);
  CHECK(c.publishers == 0);
}

TEST_CASE("relay_stats::add accumulates and snapshot copies every counter", "[stats]") {
  relay_stats s;
  relay_stats::add(s.msgs_in);
  relay_stats::add(s.msgs_in, 9);
  relay_stats::add(s.bytes_in, 2);
  relay_stats::add(s.msgs_out, 3);
  relay_stats::add(s.bytes_out, 4);
  relay_stats::add(s.acks, 5);
  relay_stats::add(s.nacks, 6);
  relay_stats::add(s.duplicates, 7);
  relay_stats::add(s.dropped, 8);
  relay_stats::add(s.blocked, 11);
  relay_stats::add(s.malformed, 12);
  relay_stats::add(s.subscriptions, 13);
  relay_stats::add(s.unsubscriptions, 14);
  relay_stats::add(s.disconnects, 16);
  relay_stats::add(s.publishers, 15);
  relay_stats::add(s.publishers, 0);
  const auto c = s.snapshot();
  CHECK(c.msgs_in == 10);
  CHECK(c.bytes_in == 2);
  CHECK(c.msgs_out == 3);
  CHECK(c.bytes_out == 4);
  CHECK(c.acks == 5);
  CHECK(c.nacks == 6);
  CHECK(c.duplicates == 7);
  CHECK(c.dropped == 8);
  CHECK(c.blocked == 11);
  CHECK(c.malformed == 12);
  CHECK(c.subscriptions == 13);
  CHECK(c.unsubscriptions == 14);
  CHECK(c.disconnects == 16);
  CHECK(c.publishers == 15);

  SECTION("a snapshot is a copy that later adds do not change") {
    relay_stats::add(s.msgs_in, 100);
    CHECK(c.msgs_in == 10);
    CHECK(s.snapshot().msgs_in == 110);
  }
  SECTION("large values are kept exactly") {
    relay_stats::add(s.bytes_out, (std::uint64_t{1} << 40));
    CHECK(s.snapshot().bytes_out == (std::uint64_t{1} << 40) + 4);
  }
}

TEST_CASE("format_counters writes every counter as key=value in a fixed order", "[stats]") {
  SECTION("zeros") {
    CHECK(format_counters(relay_counters{}) ==
          "msgs_in=0 bytes_in=0 msgs_out=0 bytes_out=0 acks=0 nacks=0 duplicates=0 dropped=0 blocked=0 "
          "malformed=0 subscriptions=0 unsubscriptions=0 refused=0 clients_refused=0 disconnects=0 "
          "publishers=0");
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
    const auto line = format_counters(c);
    CHECK(line ==
          "msgs_in=1 bytes_in=2 msgs_out=3 bytes_out=4 acks=5 nacks=6 duplicates=7 dropped=8 blocked=9 "
          "malformed=10 subscriptions=11 unsubscriptions=12 refused=13 clients_refused=14 disconnects=15 "
          "publishers=18446744073709551615");
    CHECK(line.find('\n') == std::string::npos);
    for (const char* key : {"msgs_in=", "bytes_in=", "msgs_out=", "bytes_out=", "acks=", "nacks=", "duplicates=",
                            "dropped=", "blocked=", "malformed=", "subscriptions=", "unsubscriptions=",
                            "refused=", "clients_refused=", "disconnects=", "publishers="}) {
      INFO(key);
      CHECK_THAT(line, Catch::Contains(key));
    }
  }
}
