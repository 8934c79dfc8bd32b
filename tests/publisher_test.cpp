#include <catch2/catch.hpp>

#include <memory>
#include <thread>

#include "testutil.hpp"
#include "zrelay/connection.hpp"
#include "zrelay/publisher.hpp"

using namespace zrelay;
using namespace zrelay::test;

namespace {

// A relay stand-in: a ROUTER the test drives by hand.
struct fake_relay {
  explicit fake_relay(zmq::context_t& ctx) : router(ctx, zmq::socket_type::router), ep(unique_inproc("fake")) {
    router.set(zmq::sockopt::linger, 0);
    router.bind(ep);
  }
  // One received batch: routing id, topic, decoded header, records.
  struct received {
    std::string route, topic;
    wire::batch_header header;
    std::vector<std::string> records;
  };
  std::optional<received> next(std::chrono::milliseconds limit = deadline) {
    auto parts = recv_parts(router, limit);
    if (parts.empty()) return std::nullopt;
    REQUIRE(parts.size() == 4);
    received r;
    r.route = parts[0];
    r.topic = parts[1];
    REQUIRE(wire::decode_header(parts[2].data(), parts[2].size(), r.header) == wire::status::ok);
    wire::record_reader rd(parts[3].data(), parts[3].size(), r.header.count);
    while (auto rec = rd.next()) r.records.emplace_back(*rec);
    REQUIRE(rd.done());
    return r;
  }
  void reply(const received& to, wire::kind k, std::uint64_t seq, std::uint32_t count = 0,
             wire::reason why = wire::reason::none, const std::string& text = "") {
    wire::reply r;
    r.type = k;
    r.publisher = to.header.publisher;
    r.seq = seq;
    r.count = count;
    r.why = why;
    r.text = text;
    send_parts(router, {to.route, wire::encode_reply(r)});
  }
  zmq::socket_t router;
  std::string ep;
};

publisher_config to_fake(const fake_relay& f) { return acked_publisher(f.ep); }

}  // namespace

TEST_CASE("publisher coalesces consecutive messages of one topic into one batch", "[publisher]") {
  zmq::context_t ctx;
  fake_relay relay(ctx);
  publisher pub(ctx, to_fake(relay));
  pub.connect();
  SECTION("until flush") {
    for (int i = 0; i < 100; ++i) pub.publish("t", "m" + std::to_string(i));
    pub.flush();
    auto b = relay.next();
    REQUIRE(b);
    CHECK(b->topic == "t");
    CHECK(b->header.count == 100);
    CHECK(b->header.seq == 1);
    CHECK(b->header.topic_seq == 1);
    CHECK(b->header.publisher == pub.id());
    CHECK(b->records.front() == "m0");
    CHECK(b->records.back() == "m99");
  }
  SECTION("each topic has its own batch and its own sequence; flush sends them oldest first") {
    pub.publish("a", "1");
    pub.publish("a", "2");
    pub.publish("b", "3");
    pub.publish("a", "4");
    CHECK(pub.outstanding() == 4);  // all of them in open batches
    pub.flush();
    auto b1 = relay.next(), b2 = relay.next();
    REQUIRE((b1 && b2));
    CHECK((b1->topic == "a" && b1->header.count == 3 && b1->header.seq == 1 && b1->header.topic_seq == 1));
    CHECK(b1->records == std::vector<std::string>{"1", "2", "4"});
    CHECK((b2->topic == "b" && b2->header.count == 1 && b2->header.seq == 4 && b2->header.topic_seq == 1));
    CHECK(!relay.next(50ms));
  }
  SECTION("a batch is sent once it reaches max_batch_bytes") {
    publisher_config c = to_fake(relay);
    c.max_batch_bytes = 100;
    publisher small(ctx, c);
    small.connect();
    for (int i = 0; i < 10; ++i) small.publish("t", std::string(30, 'x'));
    // Each record is 34 bytes: a third would pass 100, so batches hold two.
    auto b = relay.next();
    REQUIRE(b);
    CHECK(b->header.count == 2);
  }
}

TEST_CASE("publisher coalesces interleaved topics: one batch per topic, order and dense sequence kept", "[publisher]") {
  zmq::context_t ctx;
  fake_relay relay(ctx);
  auto cfg = to_fake(relay);
  cfg.ack_timeout = 50ms;
  publisher pub(ctx, cfg);
  pub.connect();
  constexpr int topics = 100, rounds = 10;
  const std::vector<std::string> in_order{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  for (int r = 0; r < rounds; ++r)
    for (int t = 0; t < topics; ++t) pub.publish("topic." + std::to_string(t), std::to_string(r));
  CHECK(pub.outstanding() == topics * rounds);
  CHECK(pub.stats().sent == 0);  // nothing full, no bound reached: all still open
  pub.flush();
  CHECK(pub.outstanding() == topics * rounds);  // sent, not acknowledged yet
  std::vector<fake_relay::received> got;
  for (int t = 0; t < topics; ++t) {
    auto b = relay.next();
    REQUIRE(b);
    got.push_back(*b);
  }
  CHECK(!relay.next(50ms));  // 100 ZeroMQ messages for 1000 messages, no more
  std::uint64_t next_seq = 1;
  for (int t = 0; t < topics; ++t) {
    const auto& b = got[static_cast<std::size_t>(t)];
    CHECK(b.topic == "topic." + std::to_string(t));  // oldest opened first: topics as they first came
    CHECK(b.header.seq == next_seq);                 // dense across topics, in the order sent
    CHECK(b.header.topic_seq == 1);
    CHECK(b.records == in_order);
    next_seq += b.header.count;
  }
  CHECK(next_seq == topics * rounds + 1);
  SECTION("the next messages of a topic continue its sequence") {
    pub.publish("topic.7", "10");
    pub.publish("topic.3", "10");
    pub.publish("topic.7", "11");
    pub.flush();
    auto b1 = relay.next(), b2 = relay.next();
    REQUIRE((b1 && b2));
    CHECK((b1->topic == "topic.7" && b1->header.seq == 1001 && b1->header.topic_seq == 11));
    CHECK(b1->records == std::vector<std::string>{"10", "11"});
    CHECK((b2->topic == "topic.3" && b2->header.seq == 1003 && b2->header.topic_seq == 11));
    relay.reply(*b2, wire::kind::ack, 1003);
    REQUIRE(pub.drain(deadline));
    CHECK(pub.stats().acked == 1003);
  }
  SECTION("a timeout resends every topic's batch with the same numbers, in the same order") {
    for (int t = 0; t < topics; ++t) {
      std::optional<fake_relay::received> again;
      while (!again) {
        pub.service();
        again = relay.next(10ms);
      }
      const auto& first = got[static_cast<std::size_t>(t)];
      CHECK(again->topic == first.topic);
      CHECK(again->header.seq == first.header.seq);
      CHECK(again->header.topic_seq == first.header.topic_seq);
      CHECK(again->records == first.records);
    }
    relay.reply(got.back(), wire::kind::ack, topics * rounds);
    REQUIRE(pub.drain(deadline));
    CHECK(pub.stats().acked == topics * rounds);
    CHECK(pub.stats().retried == topics * rounds);
    CHECK(pub.outstanding() == 0);
  }
  SECTION("an EXPECT resends from the batch the relay names, whatever its topic") {
    relay.reply(got.back(), wire::kind::expect, got[50].header.seq);
    std::optional<fake_relay::received> resent;
    while (!resent) {
      pub.service();
      resent = relay.next(10ms);
    }
    CHECK(resent->topic == "topic.50");
    CHECK(resent->header.seq == got[50].header.seq);
    CHECK(pub.outstanding() == 500);  // 0-49 are acknowledged by the EXPECT
    relay.reply(got.back(), wire::kind::ack, topics * rounds);
    REQUIRE(pub.drain(deadline));
    CHECK(pub.stats().acked == topics * rounds);
  }
  SECTION("a NACK counts against the batch that holds its sequence") {
    relay.reply(got[20], wire::kind::nack, got[20].header.seq + 3, 1, wire::reason::too_large);
    relay.reply(got.back(), wire::kind::ack, topics * rounds);
    REQUIRE(pub.drain(deadline));
    CHECK(pub.stats().nacked == 1);
    CHECK(pub.stats().acked == topics * rounds - 1);
  }
}

TEST_CASE("publisher bounds its open batches: past max_open_batches or max_open_bytes the oldest is sent",
          "[publisher]") {
  zmq::context_t ctx;
  fake_relay relay(ctx);
  auto cfg = to_fake(relay);
  cfg.max_batch_delay = std::chrono::hours(1);  // only the bounds under test send (the waits below take 50 ms)
  SECTION("count") {
    cfg.max_open_batches = 3;
    publisher pub(ctx, cfg);
    pub.connect();
    pub.publish("a", "1");
    pub.publish("b", "2");
    pub.publish("c", "3");
    pub.publish("a", "4");  // a is open: no new batch
    CHECK(!relay.next(50ms));
    pub.publish("d", "5");  // a fourth: the oldest (a) goes
    auto b = relay.next();
    REQUIRE(b);
    CHECK((b->topic == "a" && b->header.seq == 1 && b->records == std::vector<std::string>{"1", "4"}));
    CHECK(!relay.next(50ms));
    CHECK(pub.outstanding() == 5);
    pub.publish("e", "6");  // then b
    b = relay.next();
    REQUIRE(b);
    CHECK((b->topic == "b" && b->header.seq == 3));
    pub.flush();
    for (const auto* t : {"c", "d", "e"}) {
      b = relay.next();
      REQUIRE(b);
      CHECK(b->topic == t);
    }
    CHECK(b->header.seq == 6);
  }
  SECTION("bytes") {
    cfg.max_open_bytes = 100;  // a record of 30 bytes takes 34: two fit, a third does not
    publisher pub(ctx, cfg);
    pub.connect();
    const std::string x(30, 'x');
    pub.publish("a", x);
    pub.publish("b", x);
    CHECK(!relay.next(50ms));
    pub.publish("a", x);  // 102 bytes would be open: the oldest (a) goes first, then takes this one
    auto b = relay.next();
    REQUIRE(b);
    CHECK((b->topic == "a" && b->header.count == 1 && b->header.seq == 1));
    CHECK(!relay.next(50ms));
    pub.publish("c", x);  // b is the oldest now
    b = relay.next();
    REQUIRE(b);
    CHECK((b->topic == "b" && b->header.seq == 2));
    CHECK(pub.outstanding() == 4);
    pub.flush();
    b = relay.next();
    REQUIRE(b);
    CHECK((b->topic == "a" && b->header.seq == 3 && b->header.topic_seq == 2));
    b = relay.next();
    REQUIRE(b);
    CHECK((b->topic == "c" && b->header.seq == 4));
  }
}

TEST_CASE("publisher without acks sends to the relay's XSUB: batches, or plain messages", "[publisher]") {
  zmq::context_t ctx;
  // A relay's XSUB stand-in, subscribed to "t": the publisher's XPUB sends only what is subscribed.
  zmq::socket_t xsub(ctx, zmq::socket_type::xsub);
  xsub.set(zmq::sockopt::linger, 0);
  const auto ep = unique_inproc("xsub");
  xsub.bind(ep);
  send_parts(xsub, {"\1t"});
  publisher_config c;
  c.pub_endpoint = ep;
  c.ack_endpoint = "inproc://nothing-here";  // not used: connecting to it would fail
  c.connect_timeout = 0ms;
  c.subscription_wait = deadline;  // connect() returns once the subscription is in
  // The XSUB takes the connection, and sends it the subscription, only while its own thread is in
  // a call: that thread waits for the first message while this one connects and publishes.
  std::vector<std::string> first;
  const auto publish_two = [&](publisher& pub) {
    std::thread reader([&] { first = recv_parts(xsub); });
    pub.connect();
    pub.publish("t", "a");
    pub.publish("t", "b");
    CHECK(pub.drain(0ms));  // flushes; nothing to wait for
    reader.join();
  };
  SECTION("batched") {
    c.mode = delivery::batched;
    publisher pub(ctx, c);
    CHECK(pub.endpoint() == ep);
    publish_two(pub);
    REQUIRE(first.size() == 3);
    CHECK(first[0] == "t");
    wire::batch_header h;
    REQUIRE(wire::decode_header(first[1].data(), first[1].size(), h) == wire::status::ok);
    CHECK((h.count == 2 && h.publisher == pub.id() && h.seq == 1 && h.topic_seq == 1));
    wire::record_reader rd(first[2].data(), first[2].size(), h.count);
    std::vector<std::string> records;
    while (auto r = rd.next()) records.emplace_back(*r);
    CHECK(rd.done());
    CHECK(records == std::vector<std::string>{"a", "b"});
    CHECK(pub.stats().sent == 2);
    CHECK(pub.outstanding() == 0);
  }
  SECTION("batched, interleaved topics: one batch per topic, dense sequence in the order sent") {
    c.mode = delivery::batched;
    publisher pub(ctx, c);
    std::thread reader([&] { first = recv_parts(xsub); });
    pub.connect();
    pub.publish("t1", "a");
    pub.publish("t2", "b");
    pub.publish("t1", "c");
    CHECK(pub.outstanding() == 3);
    pub.flush();
    CHECK(pub.outstanding() == 0);
    reader.join();
    const auto second = recv_parts(xsub);
    REQUIRE((first.size() == 3 && second.size() == 3));
    wire::batch_header h1, h2;
    REQUIRE(wire::decode_header(first[1].data(), first[1].size(), h1) == wire::status::ok);
    REQUIRE(wire::decode_header(second[1].data(), second[1].size(), h2) == wire::status::ok);
    CHECK((first[0] == "t1" && h1.count == 2 && h1.seq == 1 && h1.topic_seq == 1));
    CHECK((second[0] == "t2" && h2.count == 1 && h2.seq == 3 && h2.topic_seq == 1));
    wire::record_reader rd(first[2].data(), first[2].size(), h1.count);
    std::vector<std::string> records;
    while (auto r = rd.next()) records.emplace_back(*r);
    CHECK(records == std::vector<std::string>{"a", "c"});
    CHECK(pub.stats().sent == 3);
  }
  SECTION("plain") {
    c.mode = delivery::plain;
    publisher pub(ctx, c);
    CHECK(pub.endpoint() == ep);
    publish_two(pub);
    CHECK(first == std::vector<std::string>{"t", "a"});
    CHECK(recv_parts(xsub) == std::vector<std::string>{"t", "b"});
    CHECK(pub.stats().sent == 2);
    CHECK(pub.outstanding() == 0);
  }
}

TEST_CASE("publisher counts cumulative acks and nacks", "[publisher]") {
  zmq::context_t ctx;
  fake_relay relay(ctx);
  publisher pub(ctx, to_fake(relay));
  pub.connect();
  for (int i = 0; i < 3; ++i) {
    pub.publish("t", "x");
    pub.flush();
  }
  auto b1 = relay.next();
  REQUIRE(b1);
  REQUIRE(relay.next());
  REQUIRE(relay.next());
  relay.reply(*b1, wire::kind::nack, 2, 1, wire::reason::too_large, "a message of 9 bytes exceeds the limit of 8");
  relay.reply(*b1, wire::kind::ack, 3);
  REQUIRE(pub.drain(deadline));
  CHECK(pub.stats().acked == 2);
  CHECK(pub.stats().nacked == 1);
  CHECK(pub.stats().nacked_by_reason.at(wire::reason::too_large) == 1);
  CHECK(pub.stats().first_refusal == "too large: a message of 9 bytes exceeds the limit of 8");
}

TEST_CASE("publisher resends with the same sequence on timeout and gives up after its retries", "[publisher]") {
  zmq::context_t ctx;
  fake_relay relay(ctx);
  auto cfg = to_fake(relay);
  cfg.ack_timeout = 50ms;
  cfg.retries = 2;
  publisher pub(ctx, cfg);
  pub.connect();
  pub.publish("t", "once");
  pub.flush();
  auto first = relay.next();
  REQUIRE(first);
  SECTION("the relay answers the resend") {
    std::optional<fake_relay::received> again;
    while (!again) {
      pub.service();
      again = relay.next(10ms);
    }
    CHECK(again->header.seq == first->header.seq);
    CHECK(again->header.topic_seq == first->header.topic_seq);
    CHECK(again->records == first->records);
    relay.reply(*again, wire::kind::ack, again->header.seq);
    REQUIRE(pub.drain(deadline));
    CHECK(pub.stats().retried == 1);
    CHECK(pub.stats().acked == 1);
  }
  SECTION("nobody answers") {
    CHECK_THROWS_WITH(pub.drain(deadline), "no acknowledgment from " + relay.ep + " after 2 retries");
    CHECK(pub.stats().acked == 0);
    CHECK(pub.stats().retried == 2);
    CHECK_THROWS_AS(pub.publish("t", "more"), delivery_error);
  }
}

TEST_CASE("publisher goes back to the sequence the relay expects", "[publisher]") {
  zmq::context_t ctx;
  fake_relay relay(ctx);
  publisher pub(ctx, to_fake(relay));
  pub.connect();
  for (int i = 0; i < 3; ++i) {
    pub.publish("t", std::to_string(i));
    pub.flush();
  }
  auto b1 = relay.next(), b2 = relay.next(), b3 = relay.next();
  REQUIRE((b1 && b2 && b3));
  relay.reply(*b3, wire::kind::expect, 2);  // batch 1 arrived, 2 got lost
  std::optional<fake_relay::received> resent;
  while (!resent) {
    pub.service();
    resent = relay.next(10ms);
  }
  CHECK(resent->header.seq == 2);
  CHECK(resent->header.ack_floor == 2);
  auto after = relay.next();
  REQUIRE(after);
  CHECK(after->header.seq == 3);
  relay.reply(*after, wire::kind::ack, 3);
  REQUIRE(pub.drain(deadline));
  CHECK(pub.stats().acked == 3);
  CHECK(pub.stats().retried == 2);
}

TEST_CASE("publisher window: publish waits while max_inflight messages are unacknowledged", "[publisher]") {
  zmq::context_t ctx;
  fake_relay relay(ctx);
  auto cfg = to_fake(relay);
  cfg.max_inflight = 2;
  cfg.ack_timeout = 60s;
  publisher pub(ctx, cfg);
  pub.connect();
  std::thread acker([&] {
    std::uint64_t acked = 0;
    while (acked < 5) {
      auto b = relay.next();
      if (!b) return;
      acked = b->header.seq + b->header.count - 1;
      relay.reply(*b, wire::kind::ack, acked);
    }
  });
  for (int i = 0; i < 5; ++i) {
    pub.publish("t", std::to_string(i));
    pub.flush();
    CHECK(pub.outstanding() <= 2);
  }
  CHECK(pub.drain(deadline));
  acker.join();
  CHECK(pub.stats().acked == 5);
}

TEST_CASE("publisher window with interleaved topics: open batches wait their turn, the window holds", "[publisher]") {
  zmq::context_t ctx;
  fake_relay relay(ctx);
  auto cfg = to_fake(relay);
  cfg.max_inflight = 4;
  cfg.ack_timeout = 60s;
  publisher pub(ctx, cfg);
  pub.connect();
  std::uint64_t most_unacked = 0;
  std::vector<std::string> order;
  std::thread acker([&] {
    std::uint64_t acked = 0;
    while (acked < 20) {
      auto b = relay.next();
      if (!b) return;
      most_unacked = std::max(most_unacked, b->header.seq + b->header.count - 1 - acked);
      for (const auto& r : b->records) order.push_back(b->topic + "=" + r);
      acked = b->header.seq + b->header.count - 1;
      relay.reply(*b, wire::kind::ack, acked);
    }
  });
  for (int r = 0; r < 4; ++r)
    for (int t = 0; t < 5; ++t) pub.publish("t" + std::to_string(t), std::to_string(r));
  CHECK(pub.outstanding() == 20);
  CHECK(pub.drain(deadline));
  acker.join();
  CHECK(pub.stats().acked == 20);
  CHECK(most_unacked <= 4);
  // Five batches of four, each topic's in order.
  REQUIRE(order.size() == 20);
  CHECK(order[0] == "t0=0");
  CHECK(order[3] == "t0=3");
  CHECK(order[4] == "t1=0");
  CHECK(order[19] == "t4=3");
}

TEST_CASE("publisher reports an unreachable relay", "[publisher]") {
  zmq::context_t ctx;
  publisher_config cfg;
  cfg.connect_timeout = 200ms;
  SECTION("nothing listens") {
    zmq::socket_t probe(ctx, zmq::socket_type::router);
    probe.bind("tcp://127.0.0.1:*");
    cfg.ack_endpoint = probe.get(zmq::sockopt::last_endpoint);
    probe.unbind(cfg.ack_endpoint);
    probe.close();
    publisher pub(ctx, cfg);
    CHECK_THROWS_WITH(pub.connect(), Catch::StartsWith("cannot connect to '" + cfg.ack_endpoint + "': ") &&
                                         Catch::Contains("is zrelay running there?"));
  }
  SECTION("the host does not resolve") {
    cfg.ack_endpoint = "tcp://no-such-host.invalid:5561";
    publisher pub(ctx, cfg);
    CHECK_THROWS_WITH(pub.connect(),
                      Catch::StartsWith("cannot connect to 'tcp://no-such-host.invalid:5561': cannot resolve"));
  }
}

TEST_CASE("publisher gives up on a relay that stopped reading even when its queue is full", "[publisher]") {
  zmq::context_t ctx;
  zmq::socket_t deaf(ctx, zmq::socket_type::router);  // takes one message, never reads
  deaf.set(zmq::sockopt::rcvhwm, 1);
  deaf.set(zmq::sockopt::linger, 0);
  const auto ep = unique_inproc("deaf");
  deaf.bind(ep);
  auto c = acked_publisher(ep);
  c.hwm = 1;
  c.ack_timeout = 50ms;
  c.retries = 1;
  publisher pub(ctx, c);
  pub.connect();
  for (int i = 0; i < 10; ++i) {
    pub.publish("t", std::to_string(i));
    pub.flush();
  }
  const auto started = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(pub.drain(deadline), "no acknowledgment from " + ep + " after 1 retry");
  CHECK(std::chrono::steady_clock::now() - started < deadline);
}

TEST_CASE("an acked publisher closes at once, not lingering over what the relay never acknowledged", "[publisher]") {
  // What is still queued when an acked publisher closes is unacknowledged and counted so: zpub
  // lingered an --ack-timeout over it after giving up on a relay that was gone (15 s, not 12).
  zmq::context_t ctx;
  zmq::socket_t relay(ctx, zmq::socket_type::router);
  relay.set(zmq::sockopt::linger, 0);
  relay.bind("tcp://127.0.0.1:*");
  auto cfg = acked_publisher(relay.get(zmq::sockopt::last_endpoint));
  cfg.connect_timeout = deadline;
  cfg.ack_timeout = 3 * deadline;  // what the publisher used to linger for
  auto pub = std::make_unique<publisher>(ctx, cfg);
  bool lost = false;
  pub->on_link([&lost](link_monitor::change c) { lost = lost || c == link_monitor::change::lost; });
  pub->connect();
  relay.close();  // the relay is gone: nothing will take what the publisher sends
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!lost && std::chrono::steady_clock::now() < until) {
    auto item = pub->poll_item();
    zmq::poll(&item, 1, std::chrono::milliseconds(10));
    pub->service();
  }
  REQUIRE(lost);
  pub->publish("t", "never acknowledged");
  pub->flush();
  CHECK(pub->outstanding() == 1);
  const auto started = std::chrono::steady_clock::now();
  pub.reset();
  ctx.close();
  CHECK(std::chrono::steady_clock::now() - started < deadline);
}

TEST_CASE("publisher sends a batch open longer than max_batch_delay when the next batch opens, though input goes on",
          "[publisher]") {
  zmq::context_t ctx;
  fake_relay relay(ctx);
  auto cfg = to_fake(relay);
  cfg.max_batch_delay = std::chrono::milliseconds(0);  // every open batch is old by the next one
  publisher pub(ctx, cfg);
  pub.connect();
  pub.publish("quiet", "1");
  pub.publish("busy", "2");  // opens a batch: "quiet" is old, and goes
  auto b = relay.next();
  REQUIRE(b);
  CHECK((b->topic == "quiet" && b->header.seq == 1 && b->records == std::vector<std::string>{"1"}));
  pub.publish("busy", "3");  // no batch opens: nothing is looked at, nothing goes
  CHECK(!relay.next(50ms));
  CHECK(pub.outstanding() == 3);
  pub.publish("quiet", "4");  // opens one: "busy" goes, with both its records
  b = relay.next();
  REQUIRE(b);
  CHECK((b->topic == "busy" && b->header.seq == 2 && b->records == std::vector<std::string>{"2", "3"}));
  pub.flush();
  b = relay.next();
  REQUIRE(b);
  CHECK((b->topic == "quiet" && b->header.seq == 4 && b->header.topic_seq == 2));
}
