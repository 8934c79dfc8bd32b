#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>

#include "replay_protocol.hpp"
#include "testutil.hpp"
#include "zrelay/publisher.hpp"
#include "zrelay/record.hpp"
#include "zrelay/subscriber.hpp"

using namespace zrelay;
using namespace zrelay::test;

namespace {

struct seen {
  std::string topic, payload;
  std::uint64_t publisher, seq;
  std::uint64_t journal_seq = 0;
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
        got.push_back({std::string(m.topic), std::string(m.payload), m.publisher, m.topic_seq, m.journal_seq});
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
  SECTION("each kind once: one kind does not silence another") {
    auto version = batch("t", 5, 1, {"x"});
    version[1][2] = 9;
    auto header = batch("t", 5, 1, {"x"});
    header[1].resize(10);
    auto body = batch("t", 6, 1, {"whole", "cut"});
    body[2].pop_back();
    std::vector<std::string> frames(65, "f");
    frames[0] = "t";
    for (int round = 0; round < 2; ++round) {
      for (const auto* m : {&version, &header, &body, &frames}) send_parts(f.xpub, *m);
    }
    // The two cut-short batches deliver their whole record each; "ok" comes after everything.
    f.roundtrip(batch("t", 7, 1, {"ok"}), 3);
    REQUIRE(f.got.size() == 3);
    CHECK(f.got[2].payload == "ok");
    CHECK(f.sub->stats().malformed == 8);
    REQUIRE(f.warnings.size() == 4);
    CHECK_THAT(f.warnings[0], Catch::Contains("protocol version 9"));
    CHECK_THAT(f.warnings[1], Catch::Contains("bad header"));
    CHECK_THAT(f.warnings[2], Catch::Contains("cut short"));
    CHECK_THAT(f.warnings[3], Catch::Contains("more than 64 frames"));
  }
}

TEST_CASE("subscriber reads version-2 headers from a journaling relay: the journal seq of each record",
          "[subscriber]") {
  fixture f;
  auto b = batch("t", 5, 1, {"x", "y"});
  wire::batch_header h;
  REQUIRE(wire::decode_header(b[1].data(), b[1].size(), h) == wire::status::ok);
  b[1].assign(wire::header_v2_size, '\0');
  wire::encode_delivered_header(h, 1000, b[1].data());
  f.roundtrip(b, 2);
  f.roundtrip(batch("t", 5, 3, {"v1"}, 3), 3);  // version 1: no journal seq
  f.roundtrip({"t", "plain"}, 4);
  REQUIRE(f.got.size() == 4);
  CHECK(f.got[0].journal_seq == 1000);
  CHECK(f.got[1].journal_seq == 1001);
  CHECK(f.got[1].seq == 2);
  CHECK(f.got[2].journal_seq == 0);
  CHECK(f.got[3].journal_seq == 0);
  CHECK(f.sub->stats().gaps == 0);
  CHECK(f.warnings.empty());
}

namespace {

namespace rp = replay_protocol;

// A ROUTER standing in for a relay's replay socket, and a replaying subscriber connected to it.
struct replay_fixture {
  replay_fixture() : router(ctx, zmq::socket_type::router), ep(unique_inproc("replay")) {
    router.set(zmq::sockopt::linger, 0);
    router.bind(ep);
    subscriber_config c;
    c.topics = {"t"};
    c.connect_timeout = 0ms;
    c.replay.mode = replay_mode::from_seq;
    c.replay.value = 5;
    c.replay.endpoint = ep;
    sub = std::make_unique<subscriber>(ctx, c);
    sub->on_warning([this](std::string_view w) { warnings.emplace_back(w); });
    sub->on_live([this](std::uint64_t s) { live_at = s; });
    sub->connect();
  }
  // The next request from the subscriber (the routing id kept for the answers).
  std::vector<std::string> request() {
    auto parts = recv_parts(router);
    REQUIRE(parts.size() >= 2);
    id = parts[0];
    parts.erase(parts.begin());
    return parts;
  }
  rp::request replay_request(std::vector<std::string>* prefixes = nullptr) {
    const auto parts = request();
    rp::request r;
    std::string why;
    REQUIRE(rp::decode_replay(parts[0].data(), parts[0].size(), r, why));
    if (prefixes) prefixes->assign(parts.begin() + 1, parts.end());
    return r;
  }
  std::uint32_t credit_request() {
    const auto parts = request();
    std::uint32_t n = 99;
    REQUIRE(parts.size() == 1);
    REQUIRE(rp::kind_of(parts[0].data(), parts[0].size()) == rp::kind::credit);
    REQUIRE(rp::decode_credit(parts[0].data(), parts[0].size(), n));
    return n;
  }
  void answer(const std::vector<std::string>& frames) {
    std::vector<std::string> parts{id};
    parts.insert(parts.end(), frames.begin(), frames.end());
    send_parts(router, parts);
  }
  void start(std::uint64_t first, std::uint64_t requested) {
    answer({rp::encode_start({first, first, first + 100, requested})});
  }
  void data(const std::string& entries, std::uint32_t count, std::uint64_t skipped = 0) {
    answer({rp::encode_data(count, skipped), entries});
  }
  void receive_until(std::size_t n) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (got.size() < n && std::chrono::steady_clock::now() < until) {
      sub->receive(100ms, [this](const message_view& m) {
        got.push_back({std::string(m.topic), std::string(m.payload), m.publisher, m.topic_seq, m.journal_seq});
        return true;
      });
    }
  }
  // Runs the subscriber until `done()` holds (or the deadline passes).
  void pump(const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done() && std::chrono::steady_clock::now() < until) {
      sub->receive(20ms, [this](const message_view& m) {
        got.push_back({std::string(m.topic), std::string(m.payload), m.publisher, m.topic_seq, m.journal_seq});
        return true;
      });
    }
  }
  bool request_waiting() {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    return zmq::poll(&item, 1, std::chrono::milliseconds(0)) > 0;
  }
  zmq::context_t ctx;
  zmq::socket_t router;
  std::string ep, id;
  std::unique_ptr<subscriber> sub;
  std::vector<seen> got;
  std::vector<std::string> warnings;
  std::uint64_t live_at = 0;
};

// A journal entry: a batch of `payloads` on `topic` (publisher 3) from journal seq `jseq`.
std::string batch_entry(std::uint64_t jseq, const std::string& topic, const std::vector<std::string>& payloads,
                        std::uint64_t topic_seq) {
  const auto f = batch(topic, 3, topic_seq, payloads, topic_seq);
  const std::string_view frames[] = {f[0], f[1], f[2]};
  std::string out;
  record::append(out, record::kind::batch, jseq, 1, static_cast<std::uint32_t>(payloads.size()), frames, 3);
  return out;
}

std::string plain_entry(std::uint64_t jseq, const std::string& topic, const std::string& payload) {
  const std::string_view frames[] = {topic, payload};
  std::string out;
  record::append(out, record::kind::plain, jseq, 1, 1, frames, 2);
  return out;
}

}  // namespace

TEST_CASE("a replaying subscriber asks, grants credit, reports retention, resumes and goes live", "[subscriber]") {
  replay_fixture f;
  std::vector<std::string> prefixes;
  auto r = f.replay_request(&prefixes);
  CHECK(r.mode == rp::mode::from_seq);
  CHECK(r.value == 5);
  CHECK(r.credit == 8);
  CHECK(prefixes == std::vector<std::string>{"t"});
  CHECK_FALSE(f.sub->live());

  // Retention took 5..9.
  f.start(10, 5);
  f.data(batch_entry(10, "t", {"a", "b"}, 1) + plain_entry(12, "t", "c"), 2);
  f.receive_until(3);
  REQUIRE(f.got.size() == 3);
  CHECK(f.got[0].journal_seq == 10);
  CHECK(f.got[1].journal_seq == 11);
  CHECK(f.got[1].seq == 2);
  CHECK(f.got[1].publisher == 3);
  CHECK(f.got[2].journal_seq == 12);
  CHECK(f.got[2].payload == "c");
  REQUIRE(f.warnings.size() == 1);
  CHECK(f.warnings[0] == "replay starts at journal seq 10: 5 messages were removed by retention");
  CHECK(f.sub->stats().replay_skipped == 5);
  CHECK(f.credit_request() == 1);  // one back for the DATA read

  SECTION("an unknown session: asked again from the next journal seq, and nothing twice") {
    f.answer({rp::encode_error(rp::error_code::unknown_session, "unknown session")});
    f.pump([&] { return f.request_waiting(); });
    r = f.replay_request();
    CHECK(r.mode == rp::mode::from_seq);
    CHECK(r.value == 13);
    // A DATA of the session replaced comes before the new START: not delivered.
    f.data(plain_entry(13, "t", "old"), 1);
    f.start(13, 13);
    // Overlap (12 again, and 13 cut in a batch from 12) is dropped by journal seq.
    f.data(plain_entry(12, "t", "c") + batch_entry(12, "t", {"c", "d", "e"}, 3), 2, 2);
    f.answer({rp::encode_live(15)});
    f.pump([&] { return f.got.size() >= 5 && f.sub->live(); });
    REQUIRE(f.got.size() == 5);
    CHECK(f.got[3].payload == "d");
    CHECK(f.got[3].journal_seq == 13);
    CHECK(f.got[3].seq == 4);
    CHECK(f.got[4].journal_seq == 14);
    CHECK(f.sub->stats().duplicates == 0);
    CHECK(f.sub->stats().replay_skipped == 7);
    REQUIRE(f.warnings.size() == 2);
    CHECK_THAT(f.warnings[1], Catch::Contains("passed over 2 messages"));
    f.pump([&] { return f.sub->live(); });
    CHECK(f.sub->live());
    CHECK(f.live_at == 15);
  }
  SECTION("a keepalive CREDIT 0 at least every second") {
    const auto until = std::chrono::steady_clock::now() + deadline;
    bool keepalive = false;
    while (!keepalive && std::chrono::steady_clock::now() < until) {
      f.sub->receive(50ms, [](const message_view&) { return true; });
      const auto parts = recv_parts(f.router, 0ms);
      if (!parts.empty()) {
        REQUIRE(parts.size() == 2);
        std::uint32_t n = 99;
        REQUIRE(rp::decode_credit(parts[1].data(), parts[1].size(), n));
        CHECK(n == 0);
        keepalive = true;
      }
    }
    CHECK(keepalive);
    CHECK(f.sub->next_timeout() <= 1000ms);
  }
  SECTION("a refusal ends it with the relay's reason") {
    f.answer({rp::encode_error(rp::error_code::too_many, "too many replays at once (64)")});
    CHECK_THROWS_MATCHES(f.receive_until(4), replay_refused,
                         Catch::Message("the relay at " + f.ep + " refused the replay: too many replays at once (64)"));
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

TEST_CASE("subscriber delivers a message that comes late into a reported gap, even with dedup", "[subscriber]") {
  fixture f(true);
  f.roundtrip(batch("t", 5, 1, {"1", "2", "3"}), 3);
  f.roundtrip(batch("t", 5, 6, {"6", "7"}), 5);  // 4 and 5 reported missing
  REQUIRE(f.gaps.size() == 1);
  CHECK(f.sub->stats().missing == 2);
  f.roundtrip(batch("t", 5, 4, {"4"}), 6);  // resent by the publisher: late, not again
  REQUIRE(f.got.size() == 6);
  CHECK((f.got[5].payload == "4" && f.got[5].seq == 4));
  CHECK(f.sub->stats().late == 1);
  CHECK(f.sub->stats().missing == 1);
  CHECK(f.sub->stats().duplicates == 0);
  SECTION("what came already is still a duplicate, in the same batch as a late one") {
    f.roundtrip(batch("t", 5, 4, {"4", "5", "6", "7", "8"}), 8);  // 4, 6, 7 again; 5 late; 8 new
    REQUIRE(f.got.size() == 8);
    CHECK((f.got[6].payload == "5" && f.got[6].seq == 5));
    CHECK((f.got[7].payload == "8" && f.got[7].seq == 8));
    CHECK(f.sub->stats().late == 2);
    CHECK(f.sub->stats().missing == 0);
    CHECK(f.sub->stats().duplicates == 3);
    CHECK(f.gaps.size() == 1);
  }
  SECTION("a late one inside the gap splits it") {
    f.roundtrip(batch("t", 5, 20, {"20"}), 7);  // 8 to 19 missing
    f.roundtrip(batch("t", 5, 12, {"12"}), 8);
    f.roundtrip(batch("t", 5, 12, {"12"}), 8);  // now a duplicate
    f.roundtrip(batch("t", 5, 11, {"11", "12", "13"}), 10);
    CHECK(f.sub->stats().late == 4);
    CHECK(f.sub->stats().duplicates == 2);
    CHECK(f.sub->stats().missing == 1 + 12 - 3);
  }
}

namespace {

// A stand-in relay on a loopback port that can be taken down and brought back on the same port.
struct tcp_server {
  explicit tcp_server(zmq::context_t& c) : ctx(c) {
    open("tcp://127.0.0.1:*");
    ep = xpub->get(zmq::sockopt::last_endpoint);
  }
  void open(const std::string& where) {
    mon.reset();
    xpub = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::xpub);
    xpub->set(zmq::sockopt::linger, 1000);  // what was sent goes out before the close
    const auto name = unique_inproc("server-monitor");
    REQUIRE(zmq_socket_monitor(xpub->handle(), name.c_str(), ZMQ_EVENT_HANDSHAKE_SUCCEEDED) == 0);
    mon = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::pair);
    mon->set(zmq::sockopt::linger, 0);
    mon->connect(name);
    xpub->bind(where);
  }
  // Waits for a client's handshake (ZeroMQ reconnects on its own thread; a subscriber resends
  // its subscriptions only once its own thread calls into the socket).
  bool handshake() { return recv_parts(*mon).size() == 2; }
  // Closes the connections and listens again on the same port (once ZeroMQ, which closes the
  // listener on its own thread, has let go of it).
  void restart() {
    xpub.reset();
    REQUIRE(eventually([this] {
      try {
        open(ep);
        return true;
      } catch (const zmq::error_t& e) {
        if (e.num() != EADDRINUSE) throw;
        return false;
      }
    }));
  }
  zmq::context_t& ctx;
  std::unique_ptr<zmq::socket_t> xpub;
  std::unique_ptr<zmq::socket_t> mon;  // declared after xpub: closed first
  std::string ep;
};

}  // namespace

TEST_CASE("subscriber reports a disconnection, counts a lower bound until each stream is heard from again",
          "[subscriber]") {
  zmq::context_t ctx;
  tcp_server server(ctx);
  subscriber_config c;
  c.endpoint = server.ep;
  c.topics = {"t"};
  c.heartbeat = 0ms;  // no probe: the server's one handshake is the subscriber's
  subscriber sub(ctx, c);
  std::vector<gap_info> gaps;
  std::vector<subscriber::link_event> events;
  sub.on_gap([&](const gap_info& g) { gaps.push_back(g); });
  sub.on_link([&](subscriber::link_event e) { events.push_back(e); });
  REQUIRE(sub.connect());
  REQUIRE(recv_parts(*server.xpub) == std::vector<std::string>{"\1t"});
  std::vector<std::uint64_t> got;
  // Receives until done(); the callback stops receive() once done() holds.
  const auto receive_until = [&](const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done() && std::chrono::steady_clock::now() < until)
      sub.receive(50ms, [&](const message_view& m) {
        got.push_back(m.topic_seq);
        return !done();
      });
    return done();
  };
  send_parts(*server.xpub, batch("t", 5, 1, {"1", "2"}));
  send_parts(*server.xpub, batch("t", 5, 3, {"3"}));
  send_parts(*server.xpub, batch("tt", 5, 4, {"tt 1"}, 1));  // a stream first seen after the close
  // Only the first message is read before the connection closes; the others stay queued.
  REQUIRE(receive_until([&] { return got.size() == 2; }));
  server.restart();
  // Connected again: ZeroMQ had reported the close before reconnecting.
  REQUIRE(server.handshake());
  REQUIRE(receive_until([&] { return got.size() == 4; }));
  REQUIRE(recv_parts(*server.xpub) == std::vector<std::string>{"\1t"});
  CHECK(got[2] == 3);
  CHECK(sub.stats().disconnects == 1);
  // Both came on the connection that closed: they say nothing about the time away.
  CHECK(sub.stats().unaccounted == 2);
  CHECK_FALSE(sub.stats().missing_exact());
  CHECK(std::find(events.begin(), events.end(), subscriber::link_event::cut) != events.end());

  send_parts(*server.xpub, batch("t", 5, 10, {"10"}));  // 4 to 9 were lost with the connection
  REQUIRE(receive_until([&] { return got.size() == 5; }));
  REQUIRE(gaps.size() == 1);
  CHECK(gaps[0].expected == 4);
  CHECK(gaps[0].received == 10);
  CHECK(gaps[0].across_disconnect);
  CHECK(sub.stats().missing == 6);
  CHECK(sub.stats().unaccounted == 1);
  CHECK_FALSE(sub.stats().missing_exact());
  send_parts(*server.xpub, batch("tt", 5, 11, {"tt 2"}, 2));  // nothing lost there
  REQUIRE(receive_until([&] { return got.size() == 6; }));
  CHECK(gaps.size() == 1);
  CHECK(sub.stats().unaccounted == 0);
  CHECK(sub.stats().missing_exact());
}

TEST_CASE("subscriber gives up on a relay that refuses its subscription", "[subscriber]") {
  zmq::context_t ctx;
  zmq::socket_t xpub(ctx, zmq::socket_type::xpub);
  xpub.set(zmq::sockopt::linger, 0);
  // As the relay does with its topic limit: a longer subscription frame closes the connection.
  xpub.set(zmq::sockopt::maxmsgsize, std::int64_t{600});
  xpub.bind("tcp://127.0.0.1:*");
  subscriber_config c;
  c.endpoint = xpub.get(zmq::sockopt::last_endpoint);
  c.topics = {std::string(1000, 'T')};
  subscriber sub(ctx, c);
  REQUIRE(sub.connect());
  const auto until = std::chrono::steady_clock::now() + deadline;
  const auto receive = [&] {
    while (std::chrono::steady_clock::now() < until) sub.receive(50ms, [](const message_view&) { return true; });
  };
  CHECK_THROWS_WITH(receive(), Catch::Contains("refused the subscription") && Catch::Contains("1000 bytes"));
}

TEST_CASE("subscriber runs in the caller's own poll loop, beside a publisher and a socket of the caller's",
          "[subscriber]") {
  zmq::context_t ctx;
  std::optional<running_relay> relay;  // reset to close its sockets, which stop() leaves open
  relay.emplace(ctx, tcp_config());
  subscriber_config c;
  c.endpoint = relay->ep().sub;
  c.topics = {"t"};
  subscriber sub(ctx, c);  // tcp with heartbeats: all three poll items are in use
  std::vector<subscriber::link_event> events;
  sub.on_link([&](subscriber::link_event e) { events.push_back(e); });
  REQUIRE(sub.connect());
  REQUIRE(wait_subscribed(ctx, relay->ep(), "t"));
  publisher pub(ctx, acked_publisher(relay->ep().ack));
  pub.connect();
  // The caller's own socket: each message on it is published by the loop.
  const auto name = unique_inproc("own");
  zmq::socket_t own(ctx, zmq::socket_type::pair);
  zmq::socket_t feed(ctx, zmq::socket_type::pair);
  own.bind(name);
  feed.connect(name);

  const auto sub_items = sub.poll_items();
  CHECK(std::all_of(sub_items.begin(), sub_items.end(), [](const zmq::pollitem_t& i) { return i.socket; }));
  std::vector<zmq::pollitem_t> items(sub_items.begin(), sub_items.end());
  items.push_back({own.handle(), 0, ZMQ_POLLIN, 0});
  items.push_back(pub.poll_item());
  std::vector<std::string> got;
  const subscriber::message_fn on_message = [&](const message_view& m) {
    got.emplace_back(m.payload);
    return true;
  };
  // One thread, one zmq::poll; the subscriber is serviced only when one of its items is readable.
  const auto loop_until = [&](const std::function<bool()>& done) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (!done() && std::chrono::steady_clock::now() < until) {
      items[4] = pub.poll_item();  // its events change with what waits to be sent
      zmq::poll(items, std::min(sub.next_timeout(), pub.next_timeout()));
      if (std::any_of(items.begin(), items.begin() + 3, [](const zmq::pollitem_t& i) { return i.revents; })) {
        if (!sub.service(on_message)) FAIL("the callback did not stop");
      }
      if (items[3].revents & ZMQ_POLLIN) {
        const auto parts = recv_parts(own, 0ms);
        REQUIRE(parts.size() == 1);
        pub.publish("t", parts[0]);
        pub.flush();
      }
      pub.service();
    }
    return done();
  };
  for (const char* m : {"one", "two", "three"}) send_parts(feed, {m});
  REQUIRE(loop_until([&] { return got.size() == 3 && pub.outstanding() == 0; }));
  CHECK(got == std::vector<std::string>{"one", "two", "three"});
  CHECK(sub.stats().received == 3);
  CHECK(sub.stats().gaps == 0);
  CHECK(pub.stats().acked == 3);
  CHECK(events.empty());

  // Losing the relay reaches service() with no data at all: through the monitors' items.
  relay.reset();
  const auto has = [&](subscriber::link_event e) { return std::find(events.begin(), events.end(), e) != events.end(); };
  REQUIRE(loop_until([&] { return has(subscriber::link_event::lost) && has(subscriber::link_event::cut); }));
  CHECK(sub.stats().disconnects == 1);
  CHECK(got.size() == 3);
}
