// The relay's fanout: the subscriber socket, the held queue and the full policy.
#include <catch2/catch.hpp>

#include <string>
#include <tuple>
#include <vector>

#include "relay/fanout.hpp"
#include "testutil.hpp"

using namespace std::chrono_literals;
using zrelay::fanout;
using zrelay::full_policy;

namespace {

// An XPUB with one subscriber that reads only when told; both ends hold few messages.
struct bench_socket {
  explicit bench_socket(zmq::context_t& ctx) : xpub(ctx, zmq::socket_type::xpub), sub(ctx, zmq::socket_type::sub) {
    const auto ep = zrelay::test::unique_inproc("fanout");
    xpub.set(zmq::sockopt::sndhwm, 4);
    xpub.set(zmq::sockopt::xpub_nodrop, 1);
    xpub.set(zmq::sockopt::linger, 0);
    xpub.bind(ep);
    sub.set(zmq::sockopt::rcvhwm, 4);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::subscribe, "");
    sub.connect(ep);
    // The subscription reaches the XPUB before anything is sent to it.
    const auto parts = zrelay::test::recv_parts(xpub);
    REQUIRE(parts.size() == 1);
    REQUIRE(parts[0] == std::string(1, '\1'));
  }
  zmq::socket_t xpub, sub;
};

// A fanout on those sockets, with what it reports.
struct fixture {
  fixture(full_policy policy, std::chrono::milliseconds full_wait)
      : b(ctx), f(b.xpub, policy, full_wait, stats, log, [this](std::uint64_t tag, fanout::outcome o) {
          seen.emplace_back(tag, o);
        }) {}
  zmq::context_t ctx;
  bench_socket b;
  zrelay::relay_stats stats;
  zrelay::relay_log log;
  std::vector<std::pair<std::uint64_t, fanout::outcome>> seen;
  fanout f;
};

bool send_one(fanout& f, const std::string& payload, std::uint64_t tag) {
  zmq::message_t frames[2] = {zmq::message_t(std::string("t")), zmq::message_t(payload)};
  return f.send(frames, 2, 1, 1 + payload.size(), tag);
}

// Sends until the fanout holds a message (a bound keeps a bug from looping forever); returns how
// many went out before.
int fill(fanout& f) {
  for (int i = 0; i < 100000; ++i)
    if (!send_one(f, "fill-" + std::to_string(i), 0)) return i;
  return -1;
}

int drain(zmq::socket_t& sub) {
  int n = 0;
  while (!zrelay::test::recv_parts(sub, 0ms).empty()) ++n;
  return n;
}

}  // namespace

TEST_CASE("fanout sends at once while subscribers keep up and reports each tagged message sent", "[fanout]") {
  fixture x(full_policy::block, 100ms);
  auto [f, b, stats, outcomes] = std::tie(x.f, x.b, x.stats, x.seen);
  CHECK(send_one(f, "a", 7));
  CHECK(send_one(f, "b", 0));  // untagged: counted, not reported
  CHECK_FALSE(f.holding());
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0] == std::make_pair(std::uint64_t{7}, fanout::outcome::sent));
  const auto c = stats.snapshot();
  CHECK(c.msgs_out == 2);
  CHECK(c.bytes_out == 4);
  CHECK(c.blocked == 0);
  CHECK(zrelay::test::recv_parts(b.sub) == std::vector<std::string>{"t", "a"});
  CHECK(zrelay::test::recv_parts(b.sub) == std::vector<std::string>{"t", "b"});
}

TEST_CASE("fanout under block holds messages in order until the full subscriber reads", "[fanout]") {
  fixture x(full_policy::block, 0ms);
  auto [f, b, stats, outcomes] = std::tie(x.f, x.b, x.stats, x.seen);
  const int before = fill(f);
  REQUIRE(before > 0);
  CHECK(f.holding());
  CHECK(f.held() == 1);
  CHECK_FALSE(send_one(f, "tagged", 5));  // behind the held one, whatever room appears
  CHECK(f.held() == 2);
  CHECK(stats.snapshot().blocked == 1);
  CHECK_FALSE(f.retry());  // block: no wait ends it
  CHECK(outcomes.empty());
  // The subscriber reads: what was held goes, in order, and the tagged message is reported sent.
  std::vector<std::string> got;
  const auto until = std::chrono::steady_clock::now() + zrelay::test::deadline;
  while ((f.holding() || got.size() < static_cast<std::size_t>(before) + 2) &&
         std::chrono::steady_clock::now() < until) {
    const auto parts = zrelay::test::recv_parts(b.sub, 10ms);
    if (parts.size() == 2) got.push_back(parts[1]);
    (void)f.retry();
  }
  REQUIRE(got.size() == static_cast<std::size_t>(before) + 2);
  CHECK(got[static_cast<std::size_t>(before)] == "fill-" + std::to_string(before));
  CHECK(got.back() == "tagged");
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0] == std::make_pair(std::uint64_t{5}, fanout::outcome::sent));
  CHECK(stats.snapshot().dropped == 0);
  CHECK(stats.snapshot().msgs_out == static_cast<std::uint64_t>(before) + 2);
}

TEST_CASE("fanout under drop passes a full subscriber by after full_wait and counts the drop", "[fanout]") {
  fixture x(full_policy::drop, 0ms);
  auto [f, b, stats, outcomes] = std::tie(x.f, x.b, x.stats, x.seen);
  std::vector<std::string> lines;
  x.log.set([&](std::string_view l) { lines.emplace_back(l); }, false);
  // Tagged messages until one is held: that one is dropped for the full subscriber.
  std::uint64_t tag = 0;
  while (tag < 100000 && send_one(f, "m", ++tag)) {}
  REQUIRE(f.holding());
  CHECK(f.retry());  // full_wait 0: it goes past the full subscriber at once
  CHECK_FALSE(f.holding());
  REQUIRE(outcomes.size() == tag);
  CHECK(outcomes.back() == std::make_pair(tag, fanout::outcome::dropped));
  CHECK(outcomes.front().second == fanout::outcome::sent);
  CHECK(stats.snapshot().dropped == 1);
  CHECK(stats.snapshot().blocked == 1);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].find("not keeping up") != std::string::npos);
  // The subscriber catches up, falls behind again: another drop, no second warning.
  CHECK(drain(b.sub) > 0);
  const auto until = std::chrono::steady_clock::now() + zrelay::test::deadline;
  while (stats.snapshot().dropped < 2 && std::chrono::steady_clock::now() < until) {
    if (!send_one(f, "again", 0)) (void)f.retry();
  }
  CHECK(stats.snapshot().dropped == 2);
  CHECK(lines.size() == 1);
}

TEST_CASE("fanout giving up at shutdown reports everything after the first drop as uncertain", "[fanout]") {
  fixture x(full_policy::block, 0ms);
  auto [f, b, stats, outcomes] = std::tie(x.f, x.b, x.stats, x.seen);
  REQUIRE(fill(f) > 0);
  CHECK_FALSE(send_one(f, "first", 1));
  CHECK_FALSE(send_one(f, "second", 2));
  f.give_up();
  CHECK_FALSE(f.holding());
  REQUIRE(outcomes.size() == 2);
  CHECK(outcomes[0] == std::make_pair(std::uint64_t{1}, fanout::outcome::uncertain));
  CHECK(outcomes[1] == std::make_pair(std::uint64_t{2}, fanout::outcome::uncertain));
  CHECK(stats.snapshot().dropped >= 1);
  CHECK(drain(b.sub) > 0);
}

TEST_CASE("fanout under block never passes a full subscriber by, however long it was full", "[fanout]") {
  fixture x(full_policy::block, 0ms);
  auto [f, b, stats, outcomes] = std::tie(x.f, x.b, x.stats, x.seen);
  REQUIRE(fill(f) > 0);
  for (int i = 0; i < 3; ++i) CHECK_FALSE(f.retry());
  CHECK_FALSE(send_one(f, "behind", 9));
  CHECK(f.held() == 2);
  CHECK(stats.snapshot().dropped == 0);
  CHECK(outcomes.empty());
}

TEST_CASE("fanout retry that waits for room returns without it, and sends as soon as the subscriber reads",
          "[fanout]") {
  fixture x(full_policy::block, 0ms);
  auto [f, b, stats, outcomes] = std::tie(x.f, x.b, x.stats, x.seen);
  const int before = fill(f);
  REQUIRE(before > 0);
  CHECK_FALSE(send_one(f, "tagged", 3));
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(f.retry(true));  // no room: back after hold_wait, nothing lost
  CHECK(std::chrono::steady_clock::now() - t0 < zrelay::test::deadline);
  CHECK(f.held() == 2);
  std::vector<std::string> got;
  const auto until = std::chrono::steady_clock::now() + zrelay::test::deadline;
  while ((f.holding() || got.size() < static_cast<std::size_t>(before) + 2) &&
         std::chrono::steady_clock::now() < until) {
    const auto parts = zrelay::test::recv_parts(b.sub, 0ms);
    if (parts.size() == 2) got.push_back(parts[1]);
    else (void)f.retry(true);
  }
  REQUIRE(got.size() == static_cast<std::size_t>(before) + 2);
  CHECK(got[static_cast<std::size_t>(before)] == "fill-" + std::to_string(before));
  CHECK(got.back() == "tagged");
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0] == std::make_pair(std::uint64_t{3}, fanout::outcome::sent));
  CHECK(stats.snapshot().dropped == 0);
}
