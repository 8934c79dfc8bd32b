#include <catch2/catch.hpp>

#include "testutil.hpp"
#include "zrelay/subscriber.hpp"

using namespace zrelay;
using namespace zrelay::test;

namespace {

struct seen {
  std::string topic, payload;
  std::uint64_t publisher, seq;
};

// An XPUB standing in for the relay, and a subscriber connected to it.
struct fixture {
  explicit fixture(bool dedup = false) : xpub(ctx, zmq::socket_type::xpub), ep(unique_inproc("xpub")) {
    xpub.set(zmq::sockopt::linger, 0);
    xpub.bind(ep);
    subscriber_config c;
    c.endpoint = ep;
    c.topics = {"t"};
    c.dedup = dedup;
    c.connect_timeout = 0ms;
    sub = std::make_unique<subscriber>(ctx, c);
    sub->on_gap([this](const gap_info& g) { gaps.push_back(g); });
    sub->on_warning([this](std::string_view w) { warnings.emplace_back(w); });
    sub->connect();
    REQUIRE(recv_parts(xpub) == std::vector<std::string>{"\1t"});
  }
  // Sends, then receives until `n` messages were delivered (or the deadline passes).
  void roundtrip(const std::vector<std::string>& frames, std::size_t n) {
    send_parts(xpub, frames);
    receive_until(n);
  }
  void receive_until(std::size_t n) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (got.size() < n && std::chrono::steady_clock::now() < until) {
      sub->receive(100ms, [this](const message_view& m) {
        got.push_back({std::string(m.topic), std::string(m.payload), m.publisher, m.topic_seq});
        return true;
      });
    }
  }
  zmq::context_t ctx;
  zmq::socket_t xpub;
  std::string ep;
  std::unique_ptr<subscriber> sub;
  std::vector<seen> got;
  std::vector<gap_info> gaps;
  std::vector<std::string> warnings;
};

}  // namespace

TEST_CASE("subscriber unpacks batches and plain messages", "[subscriber]") {
  fixture f;
  f.roundtrip(batch("t", 77, 1, {"a", "", "c"}), 3);
  REQUIRE(f.got.size() == 3);
  CHECK((f.got[0].topic == "t" && f.got[0].payload == "a" && f.got[0].publisher == 77 && f.got[0].seq == 1));
  CHECK((f.got[1].payload.empty() && f.got[1].seq == 2));
  CHECK((f.got[2].payload == "c" && f.got[2].seq == 3));
  f.roundtrip({"t", "plain"}, 4);
  CHECK((f.got[3].topic == "t" && f.got[3].payload == "plain" && f.got[3].publisher == 0));
  f.roundtrip({"t only frame"}, 5);
  CHECK((f.got[4].topic.empty() && f.got[4].payload == "t only frame"));
  f.roundtrip({"t", "several ", "frames"}, 6);
  CHECK(f.got[5].payload == "several frames");
  CHECK(f.gaps.empty());
}

TEST_CASE("subscriber reports a gap in a publisher's topic sequence", "[subscriber]") {
  fixture f;
  f.roundtrip(batch("t", 5, 1, {"1", "2", "3"}), 3);
  f.roundtrip(batch("t", 5, 10, {"6", "7"}, 6), 5);
  REQUIRE(f.gaps.size() == 1);
  CHECK(f.gaps[0].topic == "t");
  CHECK(f.gaps[0].publisher == 5);
  CHECK(f.gaps[0].expected == 4);
  CHECK(f.gaps[0].received == 6);
  CHECK(f.gaps[0].missing() == 2);
  CHECK(f.sub->stats().missing == 2);
  SECTION("other publishers and topics are separate streams") {
    f.roundtrip(batch("t", 6, 100, {"x"}, 100), 6);  // first sight of publisher 6: no gap
    f.roundtrip(batch("tt", 5, 12, {"y"}, 1), 7);    // another topic of publisher 5
    CHECK(f.gaps.size() == 1);
  }
}

TEST_CASE("subscriber counts repeated sequences and drops them with dedup", "[subscriber]") {
  SECTION("without dedup they are delivered") {
    fixture f;
    f.roundtrip(batch("t", 5, 1, {"1", "2"}), 2);
    f.roundtrip(batch("t", 5, 2, {"2", "3"}, 2), 4);
    CHECK(f.sub->stats().duplicates == 1);
    CHECK(f.got.size() == 4);
  }
  SECTION("with dedup only the new ones are") {
    fixture f(true);
    f.roundtrip(batch("t", 5, 1, {"1", "2"}), 2);
    f.roundtrip(batch("t", 5, 2, {"2", "3"}, 2), 3);
    REQUIRE(f.got.size() == 3);
    CHECK(f.got[2].payload == "3");
    CHECK(f.got[2].seq == 3);
    CHECK(f.sub->stats().duplicates == 1);
    CHECK(f.gaps.empty());
  }
}

TEST_CASE("subscriber warns once about data it cannot read and goes on", "[subscriber]") {
  fixture f;
  SECTION("another protocol version") {
    auto b = batch("t", 5, 1, {"x"});
    b[1][2] = 9;
    send_parts(f.xpub, b);
    send_parts(f.xpub, b);
    f.roundtrip(batch("t", 5, 1, {"ok"}), 1);
    REQUIRE(f.warnings.size() == 1);
    CHECK_THAT(f.warnings[0], Catch::Contains("protocol version 9"));
    CHECK(f.sub->stats().malformed == 2);
  }
  SECTION("a body cut short delivers what is whole") {
    auto b = batch("t", 5, 1, {"whole", "cut"});
    b[2].pop_back();
    f.roundtrip(b, 1);
    f.roundtrip(batch("t", 5, 3, {"ok"}, 3), 2);
    CHECK(f.got[0].payload == "whole");
    CHECK(f.got[1].payload == "ok");
    REQUIRE(f.warnings.size() == 1);
    CHECK_THAT(f.warnings[0], Catch::Contains("cut short"));
  }
}

TEST_CASE("subscriber stops mid-batch when the callback says so", "[subscriber]") {
  fixture f;
  send_parts(f.xpub, batch("t", 5, 1, {"1", "2", "3"}));
  std::vector<std::string> got;
  subscriber::result r = subscriber::result::timeout;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (r == subscriber::result::timeout && std::chrono::steady_clock::now() < until) {
    r = f.sub->receive(100ms, [&](const message_view& m) {
      got.emplace_back(m.payload);
      return got.size() < 2;
    });
  }
  CHECK(r == subscriber::result::stopped);
  CHECK(got == std::vector<std::string>{"1", "2"});
}
