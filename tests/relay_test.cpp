#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <thread>

// Heap in use is measurable with glibc, not under a sanitizer's own allocator.
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#include <malloc.h>
#define ZRELAY_TEST_HEAP_IN_USE 1
#endif

#include "relay/journal.hpp"
#include "testutil.hpp"
#include "zrelay/endpoint.hpp"
#include "zrelay/publisher.hpp"
#include "zrelay/record.hpp"
#include "zrelay/security.hpp"
#include "zrelay/subscriber.hpp"

using namespace zrelay;
using namespace zrelay::test;

namespace {

zmq::socket_t make_sub(zmq::context_t& ctx, const std::string& ep, const std::string& topic, int hwm = 0) {
  zmq::socket_t s(ctx, zmq::socket_type::sub);
  s.set(zmq::sockopt::rcvhwm, hwm);
  s.set(zmq::sockopt::sndhwm, 0);  // a SUB drops its own subscriptions past its send limit
  s.set(zmq::sockopt::linger, 0);
  s.set(zmq::sockopt::subscribe, topic);
  s.connect(ep);
  return s;
}

// A socket of `type` connected to ep that does not linger (an XPUB on the relay's publisher
// endpoint is a publisher that sees the subscriptions the relay passes up).
zmq::socket_t make_connected(zmq::context_t& ctx, zmq::socket_type type, const std::string& ep) {
  zmq::socket_t s(ctx, type);
  s.set(zmq::sockopt::linger, 0);
  s.connect(ep);
  return s;
}

zmq::socket_t make_dealer(zmq::context_t& ctx, const std::string& ep) {
  return make_connected(ctx, zmq::socket_type::dealer, ep);
}

// The next reply the relay sends a DEALER (one frame).
wire::reply next_reply(zmq::socket_t& dealer) {
  const auto parts = recv_parts(dealer);
  REQUIRE(parts.size() == 1);
  return reply_of(parts[0]);
}

// Sends [topic][header][body] on a DEALER and returns the reply.
wire::reply roundtrip(zmq::socket_t& dealer, const std::vector<std::string>& frames) {
  send_parts(dealer, frames);
  return next_reply(dealer);
}

// Replies until (and with) the first ACK that covers `seq`.
std::vector<wire::reply> replies_through(zmq::socket_t& dealer, std::uint64_t seq) {
  std::vector<wire::reply> got;
  while (got.empty() || got.back().type != wire::kind::ack || got.back().seq < seq) {
    got.push_back(next_reply(dealer));
    REQUIRE(got.back().type != wire::kind::batch);  // a reply that decodes
  }
  return got;
}

// The lines a relay logs (on its own thread), for a test to read. Declare it before the relay.
class log_lines {
public:
  relay::log_fn fn() {
    return [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(m_);
      lines_.emplace_back(line);
    };
  }
  std::vector<std::string> containing(const std::string& text) {
    std::lock_guard<std::mutex> lock(m_);
    std::vector<std::string> out;
    for (const auto& l : lines_)
      if (l.find(text) != std::string::npos) out.push_back(l);
    return out;
  }

private:
  std::mutex m_;
  std::vector<std::string> lines_;
};

// An XPUB on the relay's publisher endpoint: a fire-and-forget publisher that hears the
// subscriptions the relay passes up (once it has heard one, a subscriber's subscription to that
// topic is in force at the relay).
zmq::socket_t make_publisher(zmq::context_t& ctx, const bound_endpoints& ep) {
  zmq::socket_t pub(ctx, zmq::socket_type::xpub);
  pub.set(zmq::sockopt::linger, 0);
  pub.set(zmq::sockopt::rcvhwm, 0);
  pub.connect(ep.pub);
  return pub;
}

// Connects a plain TCP socket to a relay's tcp://127.0.0.1:PORT endpoint, writes `bytes` (maybe
// none) and closes it: a port scan, or a client of another protocol.
void probe_tcp(const std::string& ep, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoi(ep.substr(ep.rfind(':') + 1))));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  const bool connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
  if (connected && !bytes.empty()) (void)!::write(fd, bytes.data(), bytes.size());
  ::close(fd);
  REQUIRE(connected);
}

// The header of a batch as a subscriber receives it.
wire::batch_header header_of(const std::vector<std::string>& parts) {
  wire::batch_header h;
  REQUIRE(parts.size() == 3);
  REQUIRE(wire::decode_header(parts[1].data(), parts[1].size(), h) == wire::status::ok);
  return h;
}

}  // namespace

TEST_CASE("relay forwards a plain [topic][payload] from XSUB to a subscriber", "[relay]") {
  zmq::context_t ctx;
  SECTION("over inproc") {
    running_relay r(ctx, inproc_config());
    auto sub = make_sub(ctx, r.ep().sub, "t");
    REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
    zmq::socket_t pub(ctx, zmq::socket_type::xpub);
    pub.connect(r.ep().pub);
    REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});  // the subscription reached us
    send_parts(pub, {"t", "hello"});
    CHECK(recv_parts(sub) == std::vector<std::string>{"t", "hello"});
    CHECK(eventually([&] { return r.get().counters().msgs_out == 1; }));  // counted just after the send
  }
  SECTION("over tcp on ephemeral ports") {
    running_relay r(ctx, tcp_config());
    CHECK(r.ep().pub.rfind("tcp://127.0.0.1:", 0) == 0);
    CHECK(r.ep().pub.find('*') == std::string::npos);
    auto sub = make_sub(ctx, r.ep().sub, "t");
    REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
    zmq::socket_t pub(ctx, zmq::socket_type::xpub);
    pub.connect(r.ep().pub);
    REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});
    send_parts(pub, {"t", "hello"});
    CHECK(recv_parts(sub) == std::vector<std::string>{"t", "hello"});
  }
}

TEST_CASE("relay counters tell /healthz that the loop turns, and when the relay stops", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, inproc_config());
  const auto start = std::chrono::steady_clock::now();
  // Idle, the loop turns at least every 100 ms: once 1.5 s have passed, its last turn is recent.
  CHECK(eventually([&] { return std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(1500); }));
  const auto c = r.get().counters();
  CHECK(c.live.loop_age_ms < 1000);
  CHECK_FALSE(c.live.stopping);
  r.get().request_stop();
  CHECK(r.get().counters().live.stopping);
}

TEST_CASE("relay passes subscriptions up to publishers and filters by prefix", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, inproc_config());
  auto pub = make_connected(ctx, zmq::socket_type::xpub, r.ep().pub);
  auto sub = make_sub(ctx, r.ep().sub, "news");
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1news"});
  send_parts(pub, {"sports", "no"});
  send_parts(pub, {"newsletter", "yes 1"});
  send_parts(pub, {"news", "yes 2"});
  CHECK(recv_parts(sub) == std::vector<std::string>{"newsletter", "yes 1"});
  CHECK(recv_parts(sub) == std::vector<std::string>{"news", "yes 2"});
  CHECK(recv_parts(sub, 50ms).empty());
  sub.set(zmq::sockopt::unsubscribe, "news");
  CHECK(recv_parts(pub) == std::vector<std::string>{std::string(1, '\0') + "news"});
  CHECK(r.get().counters().subscriptions == 1);
}

TEST_CASE("relay acks a window of batches cumulatively, one ACK for the batches it reads together", "[relay]") {
  // The relay reads no publisher while it holds a message for a full subscriber (block), so the
  // window queues up at its ack socket meanwhile and is read all at once when the subscriber reads.
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.on_full = full_policy::block;
  cfg.hwm = 1;
  running_relay r(ctx, cfg);
  auto sub = make_sub(ctx, r.ep().sub, "t", 0);  // takes everything
  auto full = make_sub(ctx, r.ep().sub, "full", 1);
  auto pub = make_publisher(ctx, r.ep());
  std::vector<std::string> heard{recv_parts(pub).at(0), recv_parts(pub).at(0)};
  std::sort(heard.begin(), heard.end());
  REQUIRE(heard == std::vector<std::string>{"\1full", "\1t"});
  for (int i = 0; i < 3; ++i) send_parts(pub, {"full", "x"});  // the queue holds 2: the third is held
  REQUIRE(eventually([&] { return r.get().counters().blocked == 1; }));
  auto dealer = make_dealer(ctx, r.ep().ack);
  const std::uint64_t id = 42, batches = 50, per_batch = 3, last = batches * per_batch;
  for (std::uint64_t seq = 1; seq <= last; seq += per_batch)
    send_parts(dealer, batch("t", id, seq, {"a" + std::to_string(seq), "b", "c"}, seq, 1));  // nothing acked yet
  for (int i = 0; i < 3; ++i) REQUIRE(recv_parts(full) == std::vector<std::string>{"full", "x"});
  const auto replies = replies_through(dealer, last);
  INFO(replies.size() << " replies to " << batches << " batches");
  std::uint64_t acked = 0;
  for (const auto& rep : replies) {
    CHECK(rep.type == wire::kind::ack);
    CHECK(rep.publisher == id);
    CHECK(rep.seq > acked);
    CHECK(rep.seq % per_batch == 0);  // whole batches only
    acked = rep.seq;
  }
  CHECK(acked == last);
  CHECK(replies.size() < batches / 2);  // coalesced: a relay acking each batch sends 50
  // Nothing more comes for those: the next reply is the next batch's.
  const auto next = roundtrip(dealer, batch("t", id, last + 1, {"after"}));
  CHECK((next.type == wire::kind::ack && next.seq == last + 1));
  // Forwarded in order, each batch whole.
  for (std::uint64_t seq = 1; seq <= last + 1; seq += per_batch) {
    const auto h = header_of(recv_parts(sub));
    CHECK(h.seq == seq);
    CHECK(h.count == (seq <= last ? per_batch : 1));
  }
  CHECK(r.get().counters().dropped == 0);
}

TEST_CASE("relay re-acks a duplicate without republishing", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, inproc_config());
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
  auto dealer = make_dealer(ctx, r.ep().ack);
  CHECK(roundtrip(dealer, batch("t", 7, 1, {"a", "b"})).seq == 2);
  const auto again = roundtrip(dealer, batch("t", 7, 1, {"a", "b"}));
  CHECK(again.type == wire::kind::ack);
  CHECK(again.seq == 2);
  CHECK(roundtrip(dealer, batch("t", 7, 3, {"c"})).seq == 3);
  // The subscriber sees the first batch once, then the next one.
  CHECK(recv_parts(sub).size() == 3);
  const auto next = recv_parts(sub);
  REQUIRE(next.size() == 3);
  CHECK(next[2] == std::string("\0\0\0\1c", 5));
  CHECK(r.get().counters().duplicates == 2);
}

TEST_CASE("relay asks for a resend when a batch arrives ahead of its predecessors", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, inproc_config());
  auto dealer = make_dealer(ctx, r.ep().ack);
  SECTION("a gap after accepted batches") {
    CHECK(roundtrip(dealer, batch("t", 9, 1, {"a"})).seq == 1);
    const auto rep = roundtrip(dealer, batch("t", 9, 5, {"e"}, 5, 2));
    CHECK(rep.type == wire::kind::expect);
    CHECK(rep.seq == 2);
  }
  SECTION("a relay meeting a publisher for the first time starts at its ack floor") {
    const auto rep = roundtrip(dealer, batch("t", 10, 5, {"e"}, 5, 3));
    CHECK(rep.type == wire::kind::expect);
    CHECK(rep.seq == 3);
    CHECK(roundtrip(dealer, batch("t", 10, 3, {"c", "d"}, 3, 3)).seq == 4);
  }
}

TEST_CASE("relay refuses bad messages on the ack socket with a NACK and a reason", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.max_msg_size = 16;
  running_relay r(ctx, cfg);
  auto sub = make_sub(ctx, r.ep().sub, "");
  REQUIRE(wait_subscribed(ctx, r.ep(), ""));
  auto dealer = make_dealer(ctx, r.ep().ack);
  auto good = batch("t", 5, 1, {"ok"});

  SECTION("too large") {
    const auto rep = roundtrip(dealer, batch("t", 5, 1, {std::string(17, 'x')}));
    CHECK(rep.type == wire::kind::nack);
    CHECK(rep.why == wire::reason::too_large);
    CHECK(rep.seq == 1);
    CHECK(rep.count == 1);
    CHECK_THAT(rep.text, Catch::Contains("17 bytes exceeds the limit of 16"));
    good = batch("t", 5, 2, {"ok"});
  }
  SECTION("wrong number of frames") {
    const auto rep = roundtrip(dealer, {"t", "only two"});
    CHECK(rep.why == wire::reason::malformed);
    CHECK_THAT(rep.text, Catch::Contains("expected 3 frames"));
  }
  SECTION("a header that is not a zrelay header") {
    const auto rep = roundtrip(dealer, {"t", "garbage header", "body"});
    CHECK(rep.why == wire::reason::malformed);
    CHECK_THAT(rep.text, Catch::Contains("bad magic"));
  }
  SECTION("an unknown protocol version") {
    auto frames = batch("t", 5, 1, {"x"});
    frames[1][2] = 2;
    const auto rep = roundtrip(dealer, frames);
    CHECK(rep.why == wire::reason::unsupported_version);
    CHECK(rep.publisher == 5);
    CHECK(rep.seq == 1);
    CHECK_THAT(rep.text, Catch::Contains("speaks protocol version 1, got 2"));
  }
  SECTION("a truncated body") {
    auto frames = batch("t", 5, 1, {"abc"});
    frames[2].pop_back();
    const auto rep = roundtrip(dealer, frames);
    CHECK(rep.why == wire::reason::malformed);
    CHECK_THAT(rep.text, Catch::Contains("body"));
    good = batch("t", 5, 2, {"ok"});
  }
  SECTION("more frames than a batch has") {
    const auto rep = roundtrip(dealer, {"t", "a", "b", "c", "d", "e"});
    CHECK(rep.why == wire::reason::malformed);
    CHECK_THAT(rep.text, Catch::Contains("got 6"));
  }
  // Whatever was refused, nothing of it reached the subscriber, and the relay goes on.
  const auto rep = roundtrip(dealer, good);
  CHECK(rep.type == wire::kind::ack);
  const auto parts = recv_parts(sub);
  REQUIRE(parts.size() == 3);
  CHECK(parts[2] == std::string("\0\0\0\2ok", 6));
  CHECK(r.get().counters().nacks >= 1);
}

TEST_CASE("relay survives random frames on every socket", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, tcp_config());
  std::mt19937 rng(1234);
  auto random_bytes = [&rng](std::size_t max) {
    std::string s(rng() % (max + 1), '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  };
  auto dealer = make_dealer(ctx, r.ep().ack);
  auto pub = make_connected(ctx, zmq::socket_type::pub, r.ep().pub);
  auto xsub = make_connected(ctx, zmq::socket_type::xsub, r.ep().sub);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::string> frames(1 + rng() % 6);
    for (auto& f : frames) f = random_bytes(rng() % 3 == 0 ? 64 : 4096);
    if (i % 3 == 0 && frames.size() >= 2) frames[1].replace(0, std::min<std::size_t>(2, frames[1].size()), "ZR");
    send_parts(dealer, frames);
    send_parts(pub, frames);
    send_parts(xsub, {frames[0]});
  }
  // The relay is still up and serves a legitimate publisher.
  auto sub = make_sub(ctx, r.ep().sub, "ok");
  REQUIRE(wait_subscribed(ctx, r.ep(), "ok"));
  auto clean = make_dealer(ctx, r.ep().ack);
  CHECK(roundtrip(clean, batch("ok", 99, 1, {"still here"})).type == wire::kind::ack);
  const auto parts = recv_parts(sub);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0] == "ok");
  CHECK(r.get().counters().malformed > 0);
}

TEST_CASE("relay drop policy: a stuck subscriber does not stall the others and drops are counted", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.hwm = 10;
  running_relay r(ctx, cfg);
  auto live = make_sub(ctx, r.ep().sub, "t", 0);
  REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
  auto stuck = make_sub(ctx, r.ep().sub, "t", 1);  // never read
  stuck.set(zmq::sockopt::subscribe, "t-stuck");   // seen upstream only once "t" was, too
  REQUIRE(wait_subscribed(ctx, r.ep(), "t-stuck"));
  auto pc = acked_publisher(r.ep().ack);
  publisher pub(ctx, pc);
  pub.connect();
  const int n = 500;
  int got = 0;
  for (int i = 0; i < n; ++i) {
    pub.publish("t", std::to_string(i));
    pub.flush();  // one ZeroMQ message each, so the stuck queue fills quickly
    while (recv_parts(live, 0ms).size() == 3) ++got;
  }
  REQUIRE(pub.drain(deadline));
  CHECK(pub.stats().acked == static_cast<std::uint64_t>(n));
  while (got < n && recv_parts(live).size() == 3) ++got;
  CHECK(got == n);
  CHECK(r.get().counters().dropped > 0);
}

TEST_CASE("relay block policy holds acks while a subscriber is full, then delivers everything", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.hwm = 5;
  cfg.on_full = full_policy::block;
  running_relay r(ctx, cfg);
  auto slow = make_sub(ctx, r.ep().sub, "t", 1);
  REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
  auto pc = acked_publisher(r.ep().ack);
  pc.ack_timeout = 60s;  // no resends in this test: the relay is only slow
  publisher pub(ctx, pc);
  pub.connect();
  const int n = 100;
  for (int i = 0; i < n; ++i) {
    pub.publish("t", std::to_string(i));
    pub.flush();
  }
  REQUIRE(eventually([&] { return r.get().counters().blocked > 0; }));
  pub.service();
  CHECK(pub.stats().acked < static_cast<std::uint64_t>(n));  // back-pressure reached the publisher
  // The subscriber reads: every message arrives, in order, none dropped.
  std::uint64_t expect_seq = 1;
  for (int i = 0; i < n; ++i) {
    const auto parts = recv_parts(slow);
    REQUIRE(parts.size() == 3);
    wire::batch_header h;
    REQUIRE(wire::decode_header(parts[1].data(), parts[1].size(), h) == wire::status::ok);
    CHECK(h.topic_seq == expect_seq);
    expect_seq += h.count;
  }
  REQUIRE(pub.drain(deadline));
  CHECK(pub.stats().acked == static_cast<std::uint64_t>(n));
  CHECK(r.get().counters().dropped == 0);
}

TEST_CASE("relay run() serves until request_stop or a readable stop descriptor, then returns", "[relay]") {
  const bool by_fd = GENERATE(false, true);
  zmq::context_t ctx;
  relay rl(ctx, inproc_config());
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  auto returned = std::async(std::launch::async, [&] { rl.run(by_fd ? fds[0] : -1); });
  auto dealer = make_dealer(ctx, rl.endpoints().ack);
  send_parts(dealer, batch("t", 1, 1, {"a"}));
  const auto parts = recv_parts(dealer);  // run() is in its loop
  if (by_fd) CHECK(::write(fds[1], "x", 1) == 1);
  else rl.request_stop();
  const bool in_time = returned.wait_for(deadline) == std::future_status::ready;
  if (!in_time) ctx.shutdown();  // run() returns on that, so the test fails here instead of hanging
  returned.get();
  ::close(fds[0]);
  ::close(fds[1]);
  REQUIRE(parts.size() == 1);
  CHECK(reply_of(parts[0]).type == wire::kind::ack);
  CHECK(in_time);
}

TEST_CASE("relay runs a watched descriptor's and socket's handlers in its thread while running", "[relay]") {
  zmq::context_t ctx;
  relay rl(ctx, inproc_config());
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  zmq::socket_t control(ctx, zmq::socket_type::rep);
  control.bind("inproc://watched-control");
  std::atomic<int> fd_reads{0};
  std::thread::id fd_thread, socket_thread;
  rl.watch(fds[0], [&] {
    char c = 0;
    if (::read(fds[0], &c, 1) == 1) ++fd_reads;
    fd_thread = std::this_thread::get_id();
  });
  rl.watch(control, [&] {
    zmq::message_t m;
    if (!control.recv(m, zmq::recv_flags::dontwait)) return;
    socket_thread = std::this_thread::get_id();
    (void)control.send(zmq::buffer(std::string("got ") + m.to_string()), zmq::send_flags::dontwait);
  });
  std::thread::id run_thread;
  auto returned = std::async(std::launch::async, [&] {
    run_thread = std::this_thread::get_id();
    rl.run();
  });
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::rcvtimeo, static_cast<int>(deadline.count()));
  req.connect("inproc://watched-control");
  REQUIRE(req.send(zmq::buffer(std::string("ping")), zmq::send_flags::none));
  zmq::message_t answer;
  const bool answered = req.recv(answer).has_value();
  REQUIRE(::write(fds[1], "x", 1) == 1);
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (fd_reads.load() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::yield();
  const int reads = fd_reads.load();
  rl.request_stop();
  const bool in_time = returned.wait_for(deadline) == std::future_status::ready;
  if (!in_time) ctx.shutdown();
  returned.get();
  ::close(fds[0]);
  ::close(fds[1]);
  REQUIRE(answered);
  CHECK(answer.to_string() == "got ping");
  CHECK(reads == 1);
  CHECK(fd_thread == run_thread);
  CHECK(socket_thread == run_thread);
  CHECK(in_time);
}

TEST_CASE("relay refuses a topic limit out of range", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.max_topic = min_max_topic - 1;
  CHECK_THROWS_AS(relay(ctx, cfg), std::invalid_argument);
  cfg.max_topic = max_topic_limit + 1;
  CHECK_THROWS_AS(relay(ctx, cfg), std::invalid_argument);
}

TEST_CASE("relay reports a port already in use and malformed endpoints", "[relay]") {
  zmq::context_t ctx;
  relay first(ctx, tcp_config());
  auto cfg = tcp_config();
  cfg.pub_bind = first.endpoints().pub;
  CHECK_THROWS_WITH(relay(ctx, cfg), Catch::StartsWith("cannot bind '" + first.endpoints().pub + "': ") &&
                                         Catch::Contains("Address already in use"));
  cfg = tcp_config();
  cfg.sub_bind = "tcp://127.0.0.1";
  CHECK_THROWS_AS(relay(ctx, cfg), endpoint_error);
}

TEST_CASE("relay refuses only the oversized messages of a batch and forwards the rest", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.max_msg_size = 4;
  running_relay r(ctx, cfg);
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
  auto dealer = make_dealer(ctx, r.ep().ack);
  send_parts(dealer, batch("t", 3, 10, {"a", "bb", "too big", "c", "huge one"}, 100));
  // A NACK for each oversized message, then an ACK for the whole batch.
  std::vector<wire::reply> replies;
  while (replies.empty() || replies.back().type != wire::kind::ack) {
    replies.push_back(next_reply(dealer));
  }
  REQUIRE(replies.size() == 3);
  CHECK((replies[0].type == wire::kind::nack && replies[0].seq == 12 && replies[0].count == 1));
  CHECK(replies[0].why == wire::reason::too_large);
  CHECK((replies[1].type == wire::kind::nack && replies[1].seq == 14 && replies[1].count == 1));
  CHECK(replies[2].seq == 14);
  // The subscriber gets the others, with the sequence numbers they had: the gap is the refusal.
  const auto first = recv_parts(sub);
  REQUIRE(first.size() == 3);
  wire::batch_header h;
  REQUIRE(wire::decode_header(first[1].data(), first[1].size(), h) == wire::status::ok);
  CHECK((h.count == 2 && h.seq == 10 && h.topic_seq == 100));
  CHECK(first[2] == std::string("\0\0\0\1a\0\0\0\2bb", 11));
  const auto second = recv_parts(sub);
  REQUIRE(second.size() == 3);
  REQUIRE(wire::decode_header(second[1].data(), second[1].size(), h) == wire::status::ok);
  CHECK((h.count == 1 && h.seq == 13 && h.topic_seq == 103));
  CHECK(r.get().counters().nacks == 2);
  CHECK(eventually([&] { return r.get().counters().msgs_out == 3; }));
}

TEST_CASE("relay counts a message with an unreadable header as one message", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, inproc_config());
  auto dealer = make_dealer(ctx, r.ep().ack);
  auto frames = batch("t", 5, 1, {"x"});
  frames[1][4] = frames[1][5] = frames[1][6] = frames[1][7] = '\xff';  // count 4294967295 ...
  frames[1].push_back('!');                                            // ... in a header of 41 bytes
  CHECK(roundtrip(dealer, frames).why == wire::reason::malformed);
  CHECK(r.get().counters().msgs_in == 1);
  CHECK(r.get().counters().nacks == 1);
}

TEST_CASE("relay names a bind host it cannot find", "[relay]") {
  zmq::context_t ctx;
  auto cfg = tcp_config();
  cfg.pub_bind = "tcp://no-such-host.invalid:1";
  CHECK_THROWS_WITH(relay(ctx, cfg), "cannot bind 'tcp://no-such-host.invalid:1': no such host or interface "
                                     "'no-such-host.invalid'");
}

TEST_CASE("relay loses none of thousands of subscriptions on their way in or up to publishers", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, inproc_config());
  zmq::socket_t upstream(ctx, zmq::socket_type::xpub);  // a publisher watching subscriptions arrive
  upstream.set(zmq::sockopt::linger, 0);
  upstream.set(zmq::sockopt::rcvhwm, 0);
  upstream.connect(r.ep().pub);
  subscriber_config sc;
  sc.endpoint = r.ep().sub;
  sc.connect_timeout = 0ms;
  const int topics = 5000;  // well past every high-water mark on the way
  for (int i = 0; i < topics; ++i) sc.topics.push_back("topic." + std::to_string(i) + ".");
  subscriber sub(ctx, sc);
  sub.connect();
  int heard = 0;
  while (heard < topics) {
    const auto parts = recv_parts(upstream);
    REQUIRE(parts.size() == 1);
    REQUIRE(parts[0][0] == '\1');
    ++heard;
  }
  CHECK(r.get().counters().subscriptions == static_cast<std::uint64_t>(topics));
  // And the last one matches at the relay's subscriber socket.
  send_parts(upstream, {"topic." + std::to_string(topics - 1) + ".x", "last"});
  std::string got;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (got.empty() && std::chrono::steady_clock::now() < until)
    sub.receive(100ms, [&](const message_view& m) {
      got = std::string(m.payload);
      return false;
    });
  CHECK(got == "last");
}

TEST_CASE("relay cuts off a frame over the frame limit without reading it, and counts the lost connection", "[relay]") {
  zmq::context_t ctx;
  auto cfg = tcp_config();  // the limit is enforced by the TCP engine, and only TCP has monitors
  cfg.max_msg_size = 1000;
  log_lines log;
  running_relay r(ctx, cfg, log.fn(), true);
  const auto cap = frame_limit(cfg.max_msg_size);
  REQUIRE(cap == 4u << 20);
  auto pub = make_publisher(ctx, r.ep());
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});
  // Both stay open: the connection that ends is the one ZeroMQ cut.
  auto big = make_dealer(ctx, r.ep().ack);
  send_parts(big, batch("t", 8, 1, {std::string(cap, 'x')}));  // a body of cap + 4 bytes
  CHECK(eventually([&] { return r.get().counters().disconnects == 1; }));
  send_parts(pub, {"t", std::string(cap + 1, 'p')});
  CHECK(eventually([&] { return r.get().counters().disconnects == 2; }));
  // (Counted just before it is logged.)
  CHECK(eventually([&] { return log.containing("or ZeroMQ cut it for a frame over 4194304 bytes").size() == 2; }));
  CHECK(log.containing("a connection to the ack socket tcp://127.0.0.1:").size() == 1);
  // Just over the limit: still read, and refused with a NACK.
  auto near = make_dealer(ctx, r.ep().ack);
  const auto rep = roundtrip(near, batch("t", 9, 1, {std::string(1001, 'y')}));
  CHECK(rep.why == wire::reason::too_large);
  // A legitimate publisher is served; the huge frames never counted as messages.
  send_parts(near, batch("t", 9, 2, {"ok"}));
  CHECK(replies_through(near, 2).back().type == wire::kind::ack);
  const auto parts = recv_parts(sub);
  REQUIRE(parts.size() == 3);
  CHECK(parts[2] == std::string("\0\0\0\2ok", 6));
  CHECK(r.get().counters().msgs_in == 2);
  CHECK(r.get().counters().bytes_in < 10000);
}

TEST_CASE("relay reads, refuses and answers a frame many times over the limit without cutting the connection",
          "[relay]") {
  zmq::context_t ctx;
  auto cfg = tcp_config();
  cfg.max_msg_size = 1000;
  running_relay r(ctx, cfg);
  auto pub = make_publisher(ctx, r.ep());
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});
  SECTION("an acked publisher's 200 KB record gets its NACK, and its next message goes through") {
    auto dealer = make_dealer(ctx, r.ep().ack);
    send_parts(dealer, batch("t", 8, 1, {std::string(200000, 'x')}));
    send_parts(dealer, batch("t", 8, 2, {"after"}));
    const auto replies = replies_through(dealer, 2);
    REQUIRE(replies.front().type == wire::kind::nack);
    CHECK(replies.front().why == wire::reason::too_large);
    CHECK((replies.front().seq == 1 && replies.front().count == 1));
    CHECK(replies.front().text == "a message of 200000 bytes exceeds the limit of 1000");
    CHECK(header_of(recv_parts(sub)).seq == 2);
    CHECK(r.get().counters().nacks == 1);
    CHECK(r.get().counters().disconnects == 0);  // here: the dealer's own close at the end counts
  }
  SECTION("a plain publisher's 2 MB message is dropped and counted, and its next message goes through") {
    send_parts(pub, {"t", std::string(2000000, 'x')});
    send_parts(pub, {"t", "after"});
    CHECK(recv_parts(sub) == std::vector<std::string>{"t", "after"});
    CHECK(r.get().counters().refused == 1);
    CHECK(r.get().counters().disconnects == 0);
  }
}

TEST_CASE("relay drops and counts a fire-and-forget message over the size limit, and logs it", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.max_msg_size = 16;
  const bool verbose = GENERATE(false, true);
  log_lines log;
  running_relay r(ctx, cfg, log.fn(), verbose);
  auto pub = make_publisher(ctx, r.ep());
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});
  send_parts(pub, {"t", std::string(17, 'a')});             // [topic][payload]
  send_parts(pub, {"t" + std::string(17, 'b')});            // one frame: topic and payload
  send_parts(pub, {"t", std::string(9, 'c'), "12345678"});  // three frames, not a batch: 17 after the topic
  send_parts(pub, {"t", std::string(16, 'd')});             // at the limit: forwarded
  send_parts(pub, {"t" + std::string(15, 'e')});
  CHECK(recv_parts(sub) == std::vector<std::string>{"t", std::string(16, 'd')});
  CHECK(recv_parts(sub) == std::vector<std::string>{"t" + std::string(15, 'e')});
  const auto c = r.get().counters();
  CHECK(c.refused == 3);
  CHECK(c.malformed == 0);
  CHECK(c.msgs_in == 5);
  const auto lines = log.containing("warning: dropped 1 message(s) from a fire-and-forget publisher: a message of ");
  if (verbose) {
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "warning: dropped 1 message(s) from a fire-and-forget publisher: a message of 17 bytes exceeds "
                      "the limit of 16");
    CHECK(lines[1] == "warning: dropped 1 message(s) from a fire-and-forget publisher: a message of 18 bytes exceeds "
                      "the limit of 16");
  } else {
    CHECK(lines ==
          std::vector<std::string>{"warning: dropped 1 message(s) from a fire-and-forget publisher: a message "
                                   "of 17 bytes exceeds the limit of 16 (further ones are counted, not logged)"});
  }
}

TEST_CASE("relay checks fire-and-forget batches: drops what does not decode and the oversized records", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.max_msg_size = 16;
  log_lines log;
  running_relay r(ctx, cfg, log.fn());
  auto pub = make_publisher(ctx, r.ep());
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});
  auto mismatch = batch("t", 5, 1, {"a", "b"}, 1, 0);
  mismatch[2] += "extra";  // bytes after the last record
  send_parts(pub, mismatch);
  auto newer = batch("t", 5, 3, {"c"}, 3, 0);
  newer[1][2] = 2;  // protocol version 2
  send_parts(pub, newer);
  send_parts(pub, batch("t", 5, 10, {"a", std::string(17, 'x'), std::string(20, 'y'), "b"}, 100, 0));
  send_parts(pub, batch("t", 5, 14, {"last"}, 104, 0));
  // The records within the limit, with the sequence numbers they had; nothing of the others.
  const auto first = recv_parts(sub);
  CHECK(first[2] == std::string("\0\0\0\1a", 5));
  auto h = header_of(first);
  CHECK((h.count == 1 && h.seq == 10 && h.topic_seq == 100));
  const auto second = recv_parts(sub);
  CHECK(second[2] == std::string("\0\0\0\1b", 5));
  h = header_of(second);
  CHECK((h.count == 1 && h.seq == 13 && h.topic_seq == 103));
  CHECK(header_of(recv_parts(sub)).seq == 14);
  const auto c = r.get().counters();
  CHECK(c.malformed == 2);
  CHECK(c.refused == 2);
  CHECK(c.msgs_in == 1 + 1 + 4 + 1);
  CHECK(eventually([&] { return r.get().counters().msgs_out == 3; }));  // counted just after the send
  CHECK(
      log.containing("warning: dropped 1 message(s) from a fire-and-forget publisher: body: bytes left over after the "
                     "last record (further ones are counted, not logged)")
          .size() == 1);
  CHECK(log.containing("warning: dropped 2 message(s) from a fire-and-forget publisher: 2 messages of up to 20 bytes "
                       "exceed the limit of 16 (further ones are counted, not logged)")
            .size() == 1);
  // Another rule broken, so logged too: one kind of bad input does not hide another.
  CHECK(log.containing("warning: dropped 1 message(s) from a fire-and-forget publisher: this relay speaks protocol "
                       "version 1, got 2 (further ones are counted, not logged)")
            .size() == 1);
}

TEST_CASE("relay names each run of refused records by its own largest record", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.max_msg_size = 1000;
  running_relay r(ctx, cfg);
  auto dealer = make_dealer(ctx, r.ep().ack);
  const std::string ok = "fits";
  send_parts(dealer, batch("t", 3, 1,
                           {std::string(1001, 'a'), std::string(1500, 'b'), ok, std::string(2000, 'c'), ok,
                            std::string(5000, 'd')}));
  const auto replies = replies_through(dealer, 6);
  REQUIRE(replies.size() == 4);
  CHECK((replies[0].seq == 1 && replies[0].count == 2));
  CHECK(replies[0].text == "2 messages of up to 1500 bytes exceed the limit of 1000");
  CHECK((replies[1].seq == 4 && replies[1].count == 1));
  CHECK(replies[1].text == "a message of 2000 bytes exceeds the limit of 1000");
  CHECK((replies[2].seq == 6 && replies[2].count == 1));
  CHECK(replies[2].text == "a message of 5000 bytes exceeds the limit of 1000");
  for (int i = 0; i < 3; ++i) CHECK(replies[i].why == wire::reason::too_large);
  CHECK(r.get().counters().nacks == 4);
}

TEST_CASE("relay never acknowledges part of a batch", "[relay]") {
  // A batch with a record over the limit in the middle goes out as two; while the second waits
  // for a full subscriber, no ACK covers the first: a publisher's ack floor stays at a batch's
  // start, and a resend of the batch is not taken for a lie.
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.max_msg_size = 4;
  cfg.on_full = full_policy::block;
  cfg.hwm = 1;
  running_relay r(ctx, cfg);
  auto pub = make_publisher(ctx, r.ep());
  auto slow = make_sub(ctx, r.ep().sub, "t", 1);
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});
  send_parts(pub, {"t", "fill"});  // the queue holds 2 (XPUB's 1 and the subscriber's 1): one left
  auto dealer = make_dealer(ctx, r.ep().ack);
  send_parts(dealer, batch("t", 3, 1, {"a", "too big", "b"}));
  const auto nack = next_reply(dealer);
  CHECK((nack.type == wire::kind::nack && nack.seq == 2));
  REQUIRE(eventually([&] { return r.get().counters().blocked == 1; }));
  CHECK(recv_parts(dealer, 300ms).empty());  // no ACK 2 for the half that went out
  // The subscriber reads: the rest goes out, and one ACK covers the whole batch.
  CHECK(recv_parts(slow) == std::vector<std::string>{"t", "fill"});
  CHECK(header_of(recv_parts(slow)).seq == 1);
  CHECK(header_of(recv_parts(slow)).seq == 3);
  const auto ack = next_reply(dealer);
  CHECK((ack.type == wire::kind::ack && ack.seq == 3));
}

TEST_CASE("relay refuses a batch whose ack floor breaks the rules, and acks nothing it was not sent", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, inproc_config());
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
  auto dealer = make_dealer(ctx, r.ep().ack);
  auto refused = [&](const std::vector<std::string>& frames, const std::string& text) {
    const auto rep = roundtrip(dealer, frames);
    CHECK(rep.type == wire::kind::nack);
    CHECK(rep.why == wire::reason::malformed);
    CHECK(rep.text == text);
    return rep;
  };
  int accepted = 0;
  SECTION("a floor above the batch's sequence, from a publisher the relay knows") {
    CHECK(roundtrip(dealer, batch("t", 4, 1, {"one"})).seq == 1);
    const auto rep = refused(batch("t", 4, 12, {"x"}, 12, 100),
                             "ack floor 100 is above the batch's sequence 12 (a batch is unacknowledged until the "
                             "relay acks it)");
    CHECK((rep.seq == 12 && rep.count == 1));
    // Nothing moved: the next batch is acked as 2, not 99 or 100.
    const auto next = roundtrip(dealer, batch("t", 4, 2, {"two"}, 2, 2));
    CHECK((next.type == wire::kind::ack && next.seq == 2));
    accepted = 2;
  }
  SECTION("a new publisher whose floor falls inside its first batch") {
    refused(batch("t", 5, 5, {"a", "b", "c"}, 5, 6),
            "ack floor 6 is above the batch's sequence 5 (a batch is unacknowledged until the relay acks it)");
    CHECK(roundtrip(dealer, batch("t", 5, 5, {"a", "b", "c"}, 5, 5)).seq == 7);
    accepted = 1;
  }
  SECTION("a floor of 0") {
    refused(batch("t", 6, 1, {"a"}, 1, 0),
            "the ack floor must be set on the ack socket (the oldest sequence not yet acknowledged, 1 or more)");
    CHECK(roundtrip(dealer, batch("t", 6, 1, {"a"})).seq == 1);
    accepted = 1;
  }
  SECTION("a batch that runs past the last sequence number") {
    const auto seq = UINT64_MAX - 1;
    refused(batch("t", 7, seq, {"a", "b"}, 1),
            "sequence 18446744073709551614 + count 2 runs past the last sequence number");
    CHECK(roundtrip(dealer, batch("t", 7, seq, {"a"}, 1)).seq == seq);
    accepted = 1;
  }
  SECTION("a batch whose topic sequence runs past the last sequence number") {
    const auto rep = refused(batch("t", 7, 1, {"a", "b"}, UINT64_MAX),
                             "topic sequence 18446744073709551615 + count 2 runs past the last sequence number");
    CHECK((rep.seq == 1 && rep.count == 2));
    // Nothing moved: the same sequence is accepted next, not taken for a duplicate.
    const auto next = roundtrip(dealer, batch("t", 7, 1, {"a"}, UINT64_MAX - 1));
    CHECK((next.type == wire::kind::ack && next.seq == 1));
    accepted = 1;
  }
  SECTION("a floor above the relay's next sequence, up to the batch's own, was acked by an earlier relay") {
    CHECK(roundtrip(dealer, batch("t", 8, 1, {"one"})).seq == 1);
    const auto rep = roundtrip(dealer, batch("t", 8, 10, {"ten"}, 10, 10));
    CHECK((rep.type == wire::kind::ack && rep.seq == 10));
    CHECK(r.get().counters().malformed == 0);
    accepted = 2;
  }
  // Whatever was refused never reached the subscriber: only the accepted batches did.
  for (int i = 0; i < accepted; ++i) {
    const auto h = header_of(recv_parts(sub));
    CHECK((h.ack_floor >= 1 && h.ack_floor <= h.seq && h.count <= UINT64_MAX - h.seq &&
           h.count <= UINT64_MAX - h.topic_seq));
  }
  CHECK(recv_parts(sub, 100ms).empty());
}

TEST_CASE("relay sends one EXPECT per sequence it asks for, again after progress or a while", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  SECTION("a burst of batches behind a loss brings one EXPECT") {
    cfg.expect_repeat = 60s;
    running_relay r(ctx, cfg);
    auto dealer = make_dealer(ctx, r.ep().ack);
    CHECK(roundtrip(dealer, batch("t", 9, 1, {"1"})).seq == 1);
    for (std::uint64_t seq = 5; seq < 30; ++seq) send_parts(dealer, batch("t", 9, seq, {"x"}, seq, 2));
    send_parts(dealer, batch("t", 9, 1, {"1"}));  // a duplicate, re-acked: every reply before it is in
    const auto replies = replies_through(dealer, 1);
    REQUIRE(replies.size() == 2);
    CHECK((replies[0].type == wire::kind::expect && replies[0].seq == 2));
    // After progress the relay asks for the new sequence, once.
    CHECK(roundtrip(dealer, batch("t", 9, 2, {"2"}, 2, 2)).seq == 2);
    send_parts(dealer, batch("t", 9, 5, {"x"}, 5, 3));
    send_parts(dealer, batch("t", 9, 6, {"x"}, 6, 3));
    const auto rep = next_reply(dealer);
    CHECK((rep.type == wire::kind::expect && rep.seq == 3));
    CHECK(recv_parts(dealer, 200ms).empty());
  }
  SECTION("an EXPECT that may have been lost is sent again after expect_repeat") {
    cfg.expect_repeat = 200ms;
    running_relay r(ctx, cfg);
    auto dealer = make_dealer(ctx, r.ep().ack);
    CHECK(roundtrip(dealer, batch("t", 9, 1, {"1"})).seq == 1);
    const auto t0 = std::chrono::steady_clock::now();  // before the relay's first EXPECT
    const auto first = roundtrip(dealer, batch("t", 9, 5, {"x"}, 5, 2));
    CHECK((first.type == wire::kind::expect && first.seq == 2));
    // The publisher goes on sending (here every 20 ms) until it hears the request again.
    std::vector<std::string> again;
    const auto until = t0 + deadline;
    while (again.empty() && std::chrono::steady_clock::now() < until) {
      send_parts(dealer, batch("t", 9, 5, {"x"}, 5, 2));
      again = recv_parts(dealer, 20ms);
    }
    const auto waited = std::chrono::steady_clock::now() - t0;
    REQUIRE(again.size() == 1);
    const auto rep = reply_of(again[0]);
    CHECK((rep.type == wire::kind::expect && rep.seq == 2));
    CHECK(waited >= 200ms);
  }
}

TEST_CASE("relay refuses an empty topic and a topic sequence of 0 on the ack socket, and moves past them", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, inproc_config());
  auto sub = make_sub(ctx, r.ep().sub, "");
  REQUIRE(wait_subscribed(ctx, r.ep(), ""));
  auto dealer = make_dealer(ctx, r.ep().ack);
  send_parts(dealer, batch("", 7, 1, {"a"}));
  auto replies = replies_through(dealer, 1);
  REQUIRE(replies.size() == 2);
  CHECK((replies[0].type == wire::kind::nack && replies[0].why == wire::reason::malformed && replies[0].seq == 1));
  CHECK(replies[0].text == "the topic must not be empty on the ack socket");
  auto zero = batch("t", 7, 2, {"b", "c"});
  std::fill(zero[1].begin() + 24, zero[1].begin() + 32, '\0');  // topic seq
  send_parts(dealer, zero);
  replies = replies_through(dealer, 3);
  REQUIRE(replies.size() == 2);
  CHECK((replies[0].type == wire::kind::nack && replies[0].why == wire::reason::malformed));
  CHECK((replies[0].seq == 2 && replies[0].count == 2));
  CHECK(replies[0].text == "the topic sequence must not be zero on the ack socket (it starts at 1 for each topic)");
  CHECK(roundtrip(dealer, batch("t", 7, 4, {"d"}, 1)).seq == 4);
  // Only the last one reached the subscriber.
  const auto got = recv_parts(sub);
  CHECK(got.at(2) == std::string("\0\0\0\1d", 5));
  CHECK(recv_parts(sub, 100ms).empty());
  const auto c = r.get().counters();
  CHECK(c.nacks == 3);
  CHECK(c.malformed == 2);
}

TEST_CASE("relay serves legitimate clients after 5000 connect and disconnect cycles", "[relay][slow]") {
  zmq::context_t ctx;
  running_relay r(ctx, tcp_config());
  const std::string* eps[] = {&r.ep().pub, &r.ep().sub, &r.ep().ack};
  for (int round = 0; round < 50; ++round) {
    zmq::context_t churn;  // closing it waits for its sockets, so this process's descriptors last
    for (int i = 0; i < 100; ++i) {
      zmq::socket_t s(churn, i % 3 == 1 ? zmq::socket_type::sub : zmq::socket_type::dealer);
      s.set(zmq::sockopt::linger, 0);
      s.connect(*eps[i % 3]);
      if (i % 3 == 2) send_parts(s, {"t", "half a batch"});
    }
  }
  auto sub = make_sub(ctx, r.ep().sub, "ok");
  REQUIRE(wait_subscribed(ctx, r.ep(), "ok"));
  auto clean = make_dealer(ctx, r.ep().ack);
  CHECK(roundtrip(clean, batch("ok", 77, 1, {"still here"})).type == wire::kind::ack);
  CHECK(recv_parts(sub).size() == 3);
}

TEST_CASE("relay holds messages and subscriptions to the topic limit", "[relay]") {
  zmq::context_t ctx;
  auto cfg = tcp_config();  // the frame limit is enforced by the TCP engine
  cfg.max_topic = min_max_topic;
  running_relay r(ctx, cfg);
  const std::string ok(min_max_topic, 'a');
  auto sub = make_sub(ctx, r.ep().sub, ok);
  REQUIRE(wait_subscribed(ctx, r.ep(), ok));
  auto pub = make_connected(ctx, zmq::socket_type::xpub, r.ep().pub);
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1" + ok});

  SECTION("a fire-and-forget message with a long topic frame is dropped and counted") {
    send_parts(pub, {ok + "x", "refused"});
    send_parts(pub, {ok, "delivered"});
    CHECK(recv_parts(sub) == std::vector<std::string>{ok, "delivered"});
    CHECK(r.get().counters().refused == 1);
  }
  SECTION("a one-frame message is all topic as far as matching goes, and is not held to it") {
    send_parts(pub, {ok + " and a long tail in one frame"});
    CHECK(recv_parts(sub) == std::vector<std::string>{ok + " and a long tail in one frame"});
    CHECK(r.get().counters().refused == 0);
  }
  SECTION("an acked publisher gets a NACK, and its sequence goes on") {
    auto dealer = make_dealer(ctx, r.ep().ack);
    const auto rep = roundtrip(dealer, batch(ok + "x", 5, 1, {"refused"}));
    CHECK(rep.type == wire::kind::nack);
    CHECK(rep.why == wire::reason::too_large);
    CHECK_THAT(rep.text, Catch::Contains("a topic of 513 bytes exceeds the limit of 512"));
    // The refused one is acked as done (at once, or together with the next).
    send_parts(dealer, batch(ok, 5, 2, {"delivered"}));
    wire::reply next;
    do {
      next = next_reply(dealer);
      REQUIRE(next.type == wire::kind::ack);
    } while (next.seq < 2);
    CHECK(next.seq == 2);
    const auto parts = recv_parts(sub);
    REQUIRE(parts.size() == 3);
    CHECK(parts[0] == ok);
  }
  SECTION("a subscription over the limit costs its sender the connection, before it takes effect") {
    auto rude = make_sub(ctx, r.ep().sub, "b" + ok);
    const std::string fine_topic(min_max_topic, 'c');
    auto fine = make_sub(ctx, r.ep().sub, fine_topic);  // connects after rude
    REQUIRE(wait_subscribed(ctx, r.ep(), fine_topic));
    // The long one never reached the publishers (they hear every subscription in force on connect).
    auto late = make_connected(ctx, zmq::socket_type::xpub, r.ep().pub);
    std::vector<std::string> heard{recv_parts(late).at(0), recv_parts(late).at(0)};
    std::sort(heard.begin(), heard.end());
    CHECK(heard == std::vector<std::string>{"\1" + ok, "\1" + fine_topic});
    CHECK(recv_parts(late, 200ms).empty());
    send_parts(pub, {ok, "still served"});
    CHECK(recv_parts(sub) == std::vector<std::string>{ok, "still served"});
  }
}

TEST_CASE("relay memory stays flat while 10000 subscriptions come and go in a loop", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, tcp_config());
  const int topics = 10000, rounds = 12;
  std::vector<std::string> names;
  for (int i = 0; i < topics; ++i) names.push_back("churn." + std::to_string(i) + ".");
  std::size_t in_use_after_warmup = 0;
  for (int round = 1; round <= rounds; ++round) {
    auto sub = make_sub(ctx, r.ep().sub, names[0]);
    for (int i = 1; i < topics; ++i) sub.set(zmq::sockopt::subscribe, names[i]);
    const auto want = static_cast<std::uint64_t>(topics) * round;  // all of them in force, then all gone
    REQUIRE(eventually([&] { return r.get().counters().subscriptions == want; }));
    // Half the rounds unsubscribe one by one, the other half just disconnect (and every round
    // ends with the socket closed, so each is measured alike).
    if (round % 2 == 0)
      for (const auto& n : names) sub.set(zmq::sockopt::unsubscribe, n);
    else sub.close();
    REQUIRE(eventually([&] { return r.get().counters().unsubscriptions == want; }));
    if (round % 2 == 0) sub.close();
#ifdef ZRELAY_TEST_HEAP_IN_USE
    const auto mi = mallinfo2();  // what malloc has handed out, all threads: from its heaps and mmap'd
    const std::size_t in_use = mi.uordblks + mi.hblkhd;
    if (round == 2) in_use_after_warmup = in_use;
    if (round > 2) {
      INFO("round " << round << ": " << in_use << " bytes in use, " << in_use_after_warmup << " after round 2");
      CHECK(in_use < in_use_after_warmup + (512u << 10));
    }
#endif
  }
  const auto c = r.get().counters();
  CHECK(c.subscriptions == static_cast<std::uint64_t>(topics) * rounds);
  CHECK(c.unsubscriptions == static_cast<std::uint64_t>(topics) * rounds);
  (void)in_use_after_warmup;
}

TEST_CASE("relay ignores and counts bogus subscription frames and still applies real ones", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, tcp_config());
  // An XSUB may send any frame upstream: here, to the relay's subscriber socket.
  auto rogue = make_connected(ctx, zmq::socket_type::xsub, r.ep().sub);
  send_parts(rogue, {"\x02not a subscription"});
  send_parts(rogue, {""});
  // ZeroMQ takes each frame of a message on its own: a subscription, then garbage.
  send_parts(rogue, {"\x01two", "frames"});
  send_parts(rogue, {"\x01real"});
  REQUIRE(wait_subscribed(ctx, r.ep(), "real"));
  const auto c = r.get().counters();
  CHECK(c.malformed == 3);
  CHECK(c.subscriptions == 2);
  auto pub = make_connected(ctx, zmq::socket_type::xpub, r.ep().pub);
  std::vector<std::string> heard{recv_parts(pub).at(0), recv_parts(pub).at(0)};
  std::sort(heard.begin(), heard.end());
  CHECK(heard == std::vector<std::string>{"\1real", "\1two"});
  send_parts(pub, {"real", "delivered"});
  CHECK(recv_parts(rogue) == std::vector<std::string>{"real", "delivered"});
}

TEST_CASE("relay destroyed with replies queued leaves its context working when the publisher then goes", "[relay]") {
  // The relay's ack socket lingers in ZeroMQ after the relay is gone, with NACKs queued for a
  // publisher that does not read them; that publisher's disconnection must not reach a monitor
  // whose reader has closed (ZeroMQ's I/O thread would block on it, and every socket of the
  // context with it).
  zmq::context_t ctx;
  zmq::context_t other;  // the publisher's and the witness reader's: not the one at stake
  auto cfg = tcp_config();
  cfg.linger = 10s;  // the ack socket outlives the relay until its peer goes
  auto r = std::make_unique<running_relay>(ctx, cfg);
  zmq::socket_t flood(other, zmq::socket_type::dealer);
  flood.set(zmq::sockopt::rcvhwm, 1);  // reads nothing: the NACKs queue up at the relay
  flood.set(zmq::sockopt::sndhwm, 0);
  flood.set(zmq::sockopt::linger, 0);
  flood.connect(r->ep().ack);
  const std::uint64_t n = 200000;  // NACKs: far more than the kernel's buffers hold
  for (std::uint64_t i = 0; i < n; ++i) send_parts(flood, {"x"});
  REQUIRE(eventually([&] { return r->get().counters().nacks == n; }, 30s));
  r.reset();
  flood.close();
  other.close();  // waits until the publisher's connection is closed
  // Sockets of the relay's context still get their messages through.
  zmq::context_t third;
  zmq::socket_t pull(third, zmq::socket_type::pull);
  pull.set(zmq::sockopt::linger, 0);
  pull.bind("tcp://127.0.0.1:*");
  zmq::socket_t push(ctx, zmq::socket_type::push);
  push.set(zmq::sockopt::linger, 0);
  push.connect(pull.get(zmq::sockopt::last_endpoint));
  send_parts(push, {"still working"});
  CHECK(recv_parts(pull, 5s) == std::vector<std::string>{"still working"});
}

TEST_CASE("relay counts in disconnects only the connections that completed their handshake", "[relay]") {
  zmq::context_t ctx;  // one I/O thread: the relay sees connections end in the order they did
  running_relay r(ctx, tcp_config());
  for (const auto* ep : {&r.ep().ack, &r.ep().pub}) {
    probe_tcp(*ep, "");                                           // a port scan
    probe_tcp(*ep, "GET / HTTP/1.0\r\n\r\n");                     // another protocol
    probe_tcp(*ep, std::string("\xff\0\0\0\0\0\0\0\1\x7f", 10));  // half a ZMTP greeting
  }
  {
    // A CURVE client, for a relay without CURVE: refused at every reconnect until it closes.
    zmq::context_t own;  // closing it closes the client's connections
    zmq::socket_t curve(own, zmq::socket_type::dealer);
    curve.set(zmq::sockopt::linger, 0);
    apply_curve_client(curve, [] {
      curve_config c;
      c.keys = generate_key_pair();
      c.server_key = generate_key_pair().public_key;
      return c;
    }());
    const int failed = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    REQUIRE(zmq_socket_monitor(curve.handle(), "inproc://curve-client", failed) == 0);
    zmq::socket_t events(own, zmq::socket_type::pair);
    events.set(zmq::sockopt::linger, 0);
    events.connect("inproc://curve-client");
    curve.set(zmq::sockopt::reconnect_ivl, 10);
    curve.connect(r.ep().ack);
    // Up to three attempts refused: the client retries after a failure it cannot explain (the
    // relay closed first), not after it has seen the other mechanism itself.
    for (int i = 0; i < 3; ++i) {
      const auto ev = recv_parts(events);
      REQUIRE(ev.size() == 2);
      std::uint16_t id = 0;
      std::memcpy(&id, ev[0].data(), sizeof id);
      if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) break;
    }
    zmq_socket_monitor(curve.handle(), nullptr, 0);
  }
  // A publisher served after all that: the relay has seen those connections end by now.
  auto first = make_dealer(ctx, r.ep().ack);
  CHECK(roundtrip(first, batch("t", 1, 1, {"a"})).type == wire::kind::ack);
  CHECK(r.get().counters().disconnects == 0);
  // A publisher that goes is counted.
  first.close();
  CHECK(eventually([&] { return r.get().counters().disconnects == 1; }));
  auto pub = make_publisher(ctx, r.ep());
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});
  pub.close();
  CHECK(eventually([&] { return r.get().counters().disconnects == 2; }));
  probe_tcp(r.ep().pub, "");
  auto second = make_dealer(ctx, r.ep().ack);
  CHECK(roundtrip(second, batch("t", 2, 1, {"b"})).type == wire::kind::ack);
  CHECK(r.get().counters().disconnects == 2);
}

TEST_CASE("relay gauges count the connections open on each socket, each going back to 0 when they close", "[relay]") {
  zmq::context_t ctx;
  running_relay r(ctx, tcp_config());
  const auto open = [&](std::uint64_t sub, std::uint64_t pub, std::uint64_t ack) {
    return [&r, sub, pub, ack] {
      const auto c = r.get().counters();
      return c.subscriber_connections == sub && c.publisher_connections == pub && c.ack_connections == ack;
    };
  };
  CHECK(open(0, 0, 0)());
  {
    auto sub1 = make_connected(ctx, zmq::socket_type::sub, r.ep().sub);
    auto sub2 = make_connected(ctx, zmq::socket_type::sub, r.ep().sub);
    auto pub = make_connected(ctx, zmq::socket_type::pub, r.ep().pub);
    auto dealer = make_dealer(ctx, r.ep().ack);
    CHECK(eventually(open(2, 1, 1)));
    CHECK(roundtrip(dealer, batch("t", 1, 1, {"a"})).type == wire::kind::ack);
    CHECK(r.get().counters().publishers == 1);
    sub2.close();
    CHECK(eventually(open(1, 1, 1)));
  }
  CHECK(eventually(open(0, 0, 0)));
  const auto c = r.get().counters();
  CHECK(c.held == 0);
  CHECK(c.disconnects == 2);      // the publishers' connections; a subscriber's end is not a disconnect
  CHECK(c.journal_pending == 0);  // no journal: its gauges stay 0
  CHECK(c.journal_segments == 0);
}

TEST_CASE("relay counts a publisher that goes while it shuts down in its last counters", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.ack_bind = "tcp://127.0.0.1:*";  // monitored; the subscriber's queue is exact over inproc
  cfg.on_full = full_policy::block;
  cfg.hwm = 1;
  cfg.linger = 1500ms;  // shutdown waits this long for the full subscriber
  log_lines log;
  running_relay r(ctx, cfg, log.fn(), true);
  auto slow = make_sub(ctx, r.ep().sub, "t", 1);
  REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
  auto dealer = make_dealer(ctx, r.ep().ack);
  for (std::uint64_t seq = 1; seq <= 3; ++seq) send_parts(dealer, batch("t", 4, seq, {"x"}));
  replies_through(dealer, 2);  // the subscriber's queue holds 2: the third is held
  REQUIRE(eventually([&] { return r.get().counters().blocked == 1; }));
  r.get().request_stop();
  // The relay has left its loop and waits for linger: the publisher goes during the shutdown.
  REQUIRE(eventually([&] { return !log.containing("stopping: 1 message(s) held").empty(); }));
  dealer.close();
  r.stop();
  CHECK(r.get().counters().disconnects == 1);
}

TEST_CASE("relay refuses a batch with more than 64 runs of oversized records whole, with one NACK", "[relay]") {
  zmq::context_t ctx;
  auto cfg = tcp_config();
  cfg.max_msg_size = 1;
  running_relay r(ctx, cfg);
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
  auto dealer = make_dealer(ctx, r.ep().ack);
  // `runs` runs of one record over the limit, each after one within it.
  auto alternating = [](std::size_t runs, const std::string& ok) {
    std::vector<std::string> records;
    for (std::size_t i = 0; i < runs; ++i) {
      records.push_back(ok);
      records.push_back("xx");
    }
    return records;
  };
  SECTION("64 runs: a NACK for each, and the records within the limit are forwarded") {
    send_parts(dealer, batch("t", 5, 1, alternating(64, "o")));
    const auto replies = replies_through(dealer, 128);
    REQUIRE(replies.size() == 65);
    for (std::size_t i = 0; i < 64; ++i) {
      CHECK((replies[i].type == wire::kind::nack && replies[i].seq == 2 + 2 * i && replies[i].count == 1));
      CHECK(replies[i].text == "a message of 2 bytes exceeds the limit of 1");
    }
    for (std::uint64_t i = 0; i < 64; ++i) CHECK(header_of(recv_parts(sub)).seq == 1 + 2 * i);
    CHECK(r.get().counters().nacks == 64);
  }
  SECTION("65 runs: one NACK for the whole batch, then the ACK past it, and nothing forwarded") {
    send_parts(dealer, batch("t", 5, 1, alternating(65, "o")));
    send_parts(dealer, batch("t", 5, 131, {"o"}));
    const auto replies = replies_through(dealer, 131);
    REQUIRE(replies.size() == 2);
    CHECK(replies[0].type == wire::kind::nack);
    CHECK(replies[0].why == wire::reason::too_large);
    CHECK((replies[0].seq == 1 && replies[0].count == 130));
    CHECK(replies[0].text == "65 messages of up to 2 bytes exceed the limit of 1 in 65 runs (more than 64 runs in one "
                             "batch: the whole batch of 130 messages is refused)");
    CHECK(header_of(recv_parts(sub)).seq == 131);  // the first thing the subscriber sees
    CHECK(r.get().counters().nacks == 130);
  }
  SECTION("a 4 MiB batch of 419 430 runs: its one NACK comes before the ACK that covers it") {
    // A NACK per run would be more replies than the ack socket holds: most were lost, and the
    // ACK after them passed every refused record off as accepted.
    const auto records = alternating((frame_limit(cfg.max_msg_size) - 64) / 10, "");
    const auto count = records.size();
    send_parts(dealer, batch("t", 5, 1, records));
    const auto replies = replies_through(dealer, count);
    REQUIRE(replies.size() == 2);
    CHECK((replies[0].type == wire::kind::nack && replies[0].seq == 1 && replies[0].count == count));
    CHECK(replies[1].seq == count);
  }
}

TEST_CASE("relay drops a fire-and-forget batch with more than 64 runs of oversized records whole", "[relay]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.max_msg_size = 1;
  log_lines log;
  running_relay r(ctx, cfg, log.fn());
  auto pub = make_publisher(ctx, r.ep());
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});
  std::vector<std::string> records;
  for (int i = 0; i < 65; ++i) records.insert(records.end(), {"o", "xx"});
  send_parts(pub, batch("t", 5, 1, records, 1, 0));
  send_parts(pub, batch("t", 5, 131, {"o"}, 131, 0));
  CHECK(header_of(recv_parts(sub)).seq == 131);
  CHECK(r.get().counters().refused == 130);
  CHECK(log.containing("warning: dropped 130 message(s) from a fire-and-forget publisher: 65 messages of up to 2 bytes "
                       "exceed the limit of 1 in 65 runs (more than 64 runs in one batch: the whole batch of 130 "
                       "messages is refused)")
            .size() == 1);
}

TEST_CASE("relay stopping under block acks nothing held behind a message it dropped for a full subscriber", "[relay]") {
  // At shutdown what a full subscriber cannot take is sent past it and not acked. After that
  // ZeroMQ skips the full subscriber without a word, so what follows seems to go out: the second
  // part of a batch split around an oversized record used to be acked, and its ACK covered the
  // first part, which the subscriber never got.
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.max_msg_size = 1000;
  cfg.hwm = 5;
  cfg.on_full = full_policy::block;
  cfg.linger = 200ms;
  running_relay r(ctx, cfg);
  auto stuck = make_sub(ctx, r.ep().sub, "t", 1);
  REQUIRE(wait_subscribed(ctx, r.ep(), "t"));
  auto dealer = make_dealer(ctx, r.ep().ack);
  for (std::uint64_t seq = 1; seq <= 6; ++seq) send_parts(dealer, batch("t", 7, seq, {"fill"}));
  replies_through(dealer, 6);  // the subscriber's queue (5 + 1) is full
  send_parts(dealer, batch("t", 7, 7, {"a", std::string(1001, 'x'), "b"}));
  const auto nack = next_reply(dealer);
  CHECK((nack.type == wire::kind::nack && nack.seq == 8));
  REQUIRE(eventually([&] { return r.get().counters().blocked == 1; }));  // "a" held, "b" behind it
  r.stop();
  CHECK(r.get().counters().dropped >= 1);
  // Whatever the relay acked after that (over inproc its replies are in before stop() returns),
  // the subscriber has.
  std::uint64_t last_ack = 6;
  for (auto parts = recv_parts(dealer, 100ms); !parts.empty(); parts = recv_parts(dealer, 100ms)) {
    const auto rep = reply_of(parts[0]);
    if (rep.type == wire::kind::ack) last_ack = std::max(last_ack, rep.seq);
  }
  std::uint64_t have = 0;
  for (auto parts = recv_parts(stuck, 100ms); !parts.empty(); parts = recv_parts(stuck, 100ms)) {
    const auto h = header_of(parts);
    if (h.seq == have + 1 || (h.seq == 9 && have == 7)) have = h.seq + h.count - 1;  // 8 was refused
  }
  CHECK(last_ack <= have);
  CHECK(last_ack == 6);
}

TEST_CASE("relay drops a fire-and-forget batch whose sequence numbers run past the last one", "[relay]") {
  zmq::context_t ctx;
  log_lines log;
  running_relay r(ctx, inproc_config(), log.fn());
  auto pub = make_publisher(ctx, r.ep());
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(recv_parts(pub) == std::vector<std::string>{"\1t"});
  send_parts(pub, batch("t", 5, 1, {"a", "b"}, UINT64_MAX, 0));
  send_parts(pub, batch("t", 5, UINT64_MAX, {"a", "b"}, 1, 0));
  send_parts(pub, batch("t", 5, 3, {"last"}, 3, 0));
  CHECK(header_of(recv_parts(sub)).seq == 3);
  CHECK(r.get().counters().malformed == 2);
  CHECK(log.containing("warning: dropped 2 message(s) from a fire-and-forget publisher: topic sequence "
                       "18446744073709551615 + count 2 runs past the last sequence number")
            .size() == 1);
  CHECK(log.containing("warning: dropped 2 message(s) from a fire-and-forget publisher: sequence "
                       "18446744073709551615 + count 2 runs past the last sequence number")
            .size() == 1);
}

TEST_CASE("relay logs the first refusal under each rule, not only the first of each reason", "[relay]") {
  zmq::context_t ctx;
  log_lines log;
  running_relay r(ctx, inproc_config(), log.fn());
  auto dealer = make_dealer(ctx, r.ep().ack);
  // Six rules, all NACK malformed; each is logged, once.
  for (int round = 0; round < 2; ++round) {
    const std::uint64_t base = 10 * round;
    CHECK(roundtrip(dealer, {"t"}).why == wire::reason::malformed);
    CHECK(roundtrip(dealer, batch("t", 9, base + 1, {"a"}, 1, 0)).why == wire::reason::malformed);
    CHECK(roundtrip(dealer, batch("t", 9, base + 1, {"a"}, 1, base + 2)).why == wire::reason::malformed);
    send_parts(dealer, batch("", 9, base + 1, {"a"}, 1));
    CHECK(replies_through(dealer, base + 1).front().text == "the topic must not be empty on the ack socket");
    send_parts(dealer, batch("t", 9, base + 2, {"a"}, UINT64_MAX));
    CHECK(next_reply(dealer).why == wire::reason::malformed);
    auto zero = batch("t", 9, base + 2, {"b"});
    std::fill(zero[1].begin() + 24, zero[1].begin() + 32, '\0');  // topic seq 0
    send_parts(dealer, zero);
    CHECK(replies_through(dealer, base + 2).front().text ==
          "the topic sequence must not be zero on the ack socket (it starts at 1 for each topic)");
  }
  const auto lines = log.containing("warning: refused ");
  CHECK(lines.size() == 6);
  for (const char* text :
       {"expected 3 frames", "the ack floor must be set", "ack floor 2 is above", "the topic must not be empty",
        "topic sequence 18446744073709551615 + count 1", "the topic sequence must not be zero"})
    CHECK(log.containing(text).size() == 1);
}

// --- with a journal -------------------------------------------------------------------------

namespace {

// A fresh directory under $TMPDIR (or /tmp), removed with the object.
struct temp_dir {
  std::string path;
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/zrelay-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
};

relay_config journal_config_in(const std::string& dir) {
  auto c = inproc_config();
  c.journal.dir = dir;
  c.journal.replay_bind = unique_inproc("replay");
  return c;
}

// Every message the journal in `dir` holds, as (jseq, topic, payload), read with the store itself.
struct stored_message {
  std::uint64_t jseq = 0;
  std::string topic, payload;
};
std::vector<stored_message> journal_contents(const std::string& dir) {
  journal::config c;
  c.dir = dir;
  journal::store s(c);
  std::vector<stored_message> out;
  const auto start = s.seek_seq(1);
  if (!start) return out;
  auto cur = s.open(*start);
  std::string buf;
  std::uint64_t skipped = 0;
  while (true) {
    buf.clear();
    if (s.read(cur, buf, 1 << 20, skipped) == 0) break;
    std::size_t at = 0;
    record::entry e;
    while (at < buf.size()) {
      REQUIRE(record::decode(buf.data() + at, buf.size() - at, e) == record::status::ok);
      if (e.what == record::kind::batch) {
        wire::record_reader rr(e.frames[2].data(), e.frames[2].size(), e.count);
        std::uint64_t j = e.jseq;
        while (auto p = rr.next()) out.push_back({j++, std::string(e.topic()), std::string(*p)});
      } else {
        out.push_back({e.jseq, std::string(e.topic()), std::string(e.frames[e.nframes - 1])});
      }
      at += e.size;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("relay with a journal delivers batches with their journal sequence, plain messages untouched",
          "[relay][journal]") {
  temp_dir dir;
  zmq::context_t ctx;
  std::optional<running_relay> relay_on;
  auto& r = relay_on.emplace(ctx, journal_config_in(dir.path));
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(eventually([&] { return r.get().counters().subscriptions == 1; }));  // XPUB applied it
  auto dealer = make_dealer(ctx, r.ep().ack);
  CHECK(roundtrip(dealer, batch("t", 7, 1, {"a", "b"})).seq == 2);
  auto plain = make_publisher(ctx, r.ep());
  (void)recv_parts(plain);  // the subscription: the publisher is connected
  send_parts(plain, {"t", "plain"});
  CHECK(roundtrip(dealer, batch("t", 7, 3, {"c"})).seq == 3);
  auto first = recv_parts(sub);
  REQUIRE(first.size() == 3);
  wire::batch_header h;
  std::uint64_t jseq = 0;
  std::uint8_t version = 0;
  REQUIRE(wire::decode_delivered_header(first[1].data(), first[1].size(), h, jseq, &version) == wire::status::ok);
  CHECK(version == wire::delivered_version);
  CHECK(jseq == 1);
  CHECK((h.seq == 1 && h.count == 2 && h.publisher == 7));
  CHECK(recv_parts(sub) == std::vector<std::string>{"t", "plain"});  // jseq 3, untouched
  const auto third = recv_parts(sub);
  REQUIRE(third.size() == 3);
  REQUIRE(wire::decode_delivered_header(third[1].data(), third[1].size(), h, jseq) == wire::status::ok);
  CHECK(jseq == 4);
  CHECK(r.get().counters().journaled == 4);
  relay_on.reset();  // the journal is the relay's until then
  const auto stored = journal_contents(dir.path);
  REQUIRE(stored.size() == 4);
  for (std::size_t i = 0; i < stored.size(); ++i) CHECK(stored[i].jseq == i + 1);
  CHECK(stored[2].payload == "plain");
}

TEST_CASE("relay restarted on its journal acks a stored batch again instead of storing it twice", "[relay][journal]") {
  temp_dir dir;
  zmq::context_t ctx;
  {
    running_relay r(ctx, journal_config_in(dir.path));
    auto dealer = make_dealer(ctx, r.ep().ack);
    CHECK(roundtrip(dealer, batch("t", 9, 1, {"a", "b", "c"}, 1, 1)).seq == 3);
  }
  {
    running_relay r(ctx, journal_config_in(dir.path));
    auto dealer = make_dealer(ctx, r.ep().ack);
    // The same batch again, as a publisher that never saw its ACK resends it (floor 1).
    const auto again = roundtrip(dealer, batch("t", 9, 1, {"a", "b", "c"}, 1, 1));
    CHECK((again.type == wire::kind::ack && again.seq == 3));
    CHECK(r.get().counters().duplicates == 3);
    CHECK(roundtrip(dealer, batch("t", 9, 4, {"d"}, 4, 1)).seq == 4);
  }
  const auto stored = journal_contents(dir.path);
  REQUIRE(stored.size() == 4);
  CHECK(stored[3].payload == "d");
  CHECK(stored[3].jseq == 4);
}

TEST_CASE("relay with a journal NACKs 'unavailable' when a sync fails, and stores the resend once",
          "[relay][journal]") {
  temp_dir dir;
  zmq::context_t ctx;
  auto cfg = journal_config_in(dir.path);
  std::atomic<int> fail_next{0};
  cfg.journal.test_sync = [&](int fd) { return fail_next.exchange(0) != 0 ? EIO : ::fdatasync(fd); };
  std::optional<running_relay> relay_on;
  auto& r = relay_on.emplace(ctx, cfg);
  auto sub = make_sub(ctx, r.ep().sub, "t");
  REQUIRE(eventually([&] { return r.get().counters().subscriptions == 1; }));  // XPUB applied it
  auto dealer = make_dealer(ctx, r.ep().ack);
  CHECK(roundtrip(dealer, batch("t", 5, 1, {"a"}, 1, 1)).seq == 1);
  fail_next = 1;
  const auto refused = roundtrip(dealer, batch("t", 5, 2, {"b", "c"}, 2, 1));
  CHECK(refused.type == wire::kind::nack);
  CHECK(refused.why == wire::reason::unavailable);
  CHECK((refused.seq == 2 && refused.count == 2));
  CHECK(refused.text.find("journal unavailable") != std::string::npos);
  // The publisher keeps it and sends it again: now it is stored, acked, delivered once.
  const auto resent = roundtrip(dealer, batch("t", 5, 2, {"b", "c"}, 2, 2));
  CHECK((resent.type == wire::kind::ack && resent.seq == 3));
  std::uint64_t jseq = 0;
  wire::batch_header h;
  auto m = recv_parts(sub);
  REQUIRE(m.size() == 3);
  REQUIRE(wire::decode_delivered_header(m[1].data(), m[1].size(), h, jseq) == wire::status::ok);
  CHECK((h.seq == 1 && jseq == 1));
  m = recv_parts(sub);
  REQUIRE(m.size() == 3);
  REQUIRE(wire::decode_delivered_header(m[1].data(), m[1].size(), h, jseq) == wire::status::ok);
  CHECK((h.seq == 2 && jseq == 2));  // the failed attempt's numbers were never shown: reused, dense
  CHECK(recv_parts(sub, 200ms).empty());
  CHECK(r.get().counters().journal_errors == 1);
  relay_on.reset();
  const auto stored = journal_contents(dir.path);
  REQUIRE(stored.size() == 3);
  CHECK((stored[1].payload == "b" && stored[1].jseq == 2 && stored[2].payload == "c"));
}

// Known bug, left for the lead (relay.cpp): a batch split around an oversized record is stored as
// parts, and only the last part carries the token. When the journal fails between the parts, the
// first part is stored, the token is abandoned, the session goes back to the batch's first sequence,
// and the publisher's resend stores the first part a second time.
TEST_CASE("relay with a journal stores a split batch's parts once when the journal fails between them",
          "[relay][journal]") {
  temp_dir dir;
  zmq::context_t ctx;
  auto cfg = journal_config_in(dir.path);
  cfg.max_msg_size = 4;
  cfg.journal.segment_bytes = 1;  // an entry a segment: the roll syncs the first part on its own
  std::atomic<int> armed{0};      // 2: the next sync succeeds, the one after fails
  cfg.journal.test_sync = [&](int fd) {
    const int a = armed.load();
    if (a > 0) {
      armed = a - 1;
      if (a == 1) return EIO;
    }
    return ::fdatasync(fd) == 0 ? 0 : errno;
  };
  std::optional<running_relay> relay_on;
  auto& r = relay_on.emplace(ctx, cfg);
  auto dealer = make_dealer(ctx, r.ep().ack);
  CHECK(roundtrip(dealer, batch("t", 5, 1, {"a"}, 1, 1)).seq == 1);
  armed = 2;
  // Parts [b] (seq 2, journal seq 2) and [c] (seq 4, journal seq 3); "big" is refused for good.
  send_parts(dealer, batch("t", 5, 2, {"b", "big!!", "c"}, 2, 2));
  std::vector<wire::reply> replies;
  while (replies.size() < 2) replies.push_back(next_reply(dealer));
  CHECK(replies[0].why == wire::reason::too_large);
  CHECK(replies[1].why == wire::reason::unavailable);
  // The publisher keeps the batch and sends it again.
  send_parts(dealer, batch("t", 5, 2, {"b", "big!!", "c"}, 2, 2));
  wire::reply last;
  do last = next_reply(dealer);
  while (last.type != wire::kind::ack);
  CHECK(last.seq == 4);
  relay_on.reset();
  std::vector<std::string> payloads;
  for (const auto& m : journal_contents(dir.path)) payloads.push_back(m.payload);
  CHECK(payloads == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("relay with a journal: every acked message survives a cut back to the last sync (power loss)",
          "[relay][journal]") {
  temp_dir dir;
  zmq::context_t ctx;
  auto cfg = journal_config_in(dir.path);
  cfg.journal.segment_bytes = 64 * 1024;  // several segments, so the cut also removes whole files
  std::mutex m;
  std::map<std::string, std::uint64_t> synced;  // segment -> its size at its latest sync
  cfg.journal.test_synced = [&](const std::string& path, std::uint64_t size) {
    std::lock_guard<std::mutex> lock(m);
    synced[path] = size;
  };
  std::map<std::string, std::uint64_t> at_cut;
  std::uint64_t acked = 0;
  {
    running_relay r(ctx, cfg);
    publisher p(ctx, acked_publisher(r.ep().ack));
    p.connect();
    for (int i = 0; i < 5000; ++i) {
      p.publish("t", "m" + std::to_string(i));
      if (i % 97 == 0) p.flush();
    }
    REQUIRE(p.drain(deadline));
    acked = p.stats().acked;
    {
      // The power goes now: only what was synced before this moment is on the disk. Every ACK the
      // publisher has came after the sync that covered it.
      std::lock_guard<std::mutex> lock(m);
      at_cut = synced;
    }
    for (int i = 5000; i < 6000; ++i) p.publish("t", "m" + std::to_string(i));  // written, maybe synced, lost
    (void)p.drain(deadline);
  }
  REQUIRE(acked == 5000);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path)) {
    const auto path = entry.path().string();
    if (entry.path().extension() != ".seg") continue;
    const auto it = at_cut.find(path);
    if (it == at_cut.end()) {
      std::filesystem::remove(path);  // created after the cut (or never synced): gone
    } else {
      std::filesystem::resize_file(path, it->second);
    }
  }
  const auto stored = journal_contents(dir.path);
  REQUIRE(stored.size() >= 5000);
  for (std::size_t i = 0; i < 5000; ++i) {
    CHECK(stored[i].payload == "m" + std::to_string(i));
    CHECK(stored[i].jseq == i + 1);
  }
}

// --- $SYS ---

namespace {

// A subscriber to "$SYS.", connected.
std::unique_ptr<subscriber> sys_subscriber(zmq::context_t& ctx, const std::string& endpoint) {
  subscriber_config sc;
  sc.endpoint = endpoint;
  sc.connect_timeout = 0ms;
  sc.topics = {"$SYS."};
  auto sub = std::make_unique<subscriber>(ctx, sc);
  sub->connect();
  return sub;
}

// Reads $SYS samples from `sub` until `done(payload)` holds or the deadline passes; every sample is
// checked to come on the relay's $SYS topic from one publisher, in consecutive topic sequence.
bool read_sys_until(subscriber& sub, const relay& r, const std::function<bool(const std::string&)>& done,
                    std::uint64_t* samples = nullptr) {
  std::uint64_t publisher = 0, next = 0, n = 0;
  bool ok = true, finished = false;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!finished && ok && std::chrono::steady_clock::now() < until) {
    sub.receive(100ms, [&](const message_view& m) {
      ++n;
      ok = m.topic == r.sys_topic() && m.publisher != 0 && (publisher == 0 || m.publisher == publisher) &&
           (next == 0 || m.topic_seq == next) && m.journal_seq == 0;
      publisher = m.publisher;
      next = m.topic_seq + 1;
      finished = done(std::string(m.payload));
      return ok && !finished;
    });
  }
  if (samples) *samples = n;
  return ok && finished;
}

}  // namespace

TEST_CASE("relay publishes its counters on $SYS as a stream of its own, without a gap, not journaled", "[relay][sys]") {
  zmq::context_t ctx;
  temp_dir dir;
  const bool journal = GENERATE(false, true);
  INFO("journal " << journal);
  auto cfg = journal ? journal_config_in(dir.path) : inproc_config();
  cfg.sys_interval = 20ms;
  running_relay r(ctx, cfg);
  CHECK(r.get().sys_topic().rfind("$SYS.", 0) == 0);
  CHECK(r.get().sys_topic().size() > 11);
  auto sub = sys_subscriber(ctx, r.ep().sub);
  publisher p(ctx, acked_publisher(r.ep().ack));
  p.connect();
  for (int i = 0; i < 3; ++i) p.publish("t", "m" + std::to_string(i));
  REQUIRE(p.drain(deadline));
  std::uint64_t samples = 0;
  CHECK(read_sys_until(
      *sub, r.get(), [](const std::string& s) { return s.find("\"msgs_in\":3,") != std::string::npos; }, &samples));
  // Two more after that one: the stream goes on in sequence.
  std::uint64_t more = 0;
  CHECK(read_sys_until(
      *sub, r.get(), [&](const std::string&) { return ++more == 2; }, nullptr));
  CHECK(sub->stats().gaps == 0);
  CHECK(sub->stats().malformed == 0);
  const auto c = r.get().counters();
  CHECK(c.msgs_out == 3);  // the samples are not user messages
  if (journal) CHECK(c.journaled == 3);
}

TEST_CASE("relay status JSON names the relay, its host and pid, the time, then every counter", "[relay][sys]") {
  zmq::context_t ctx;
  relay r(ctx, inproc_config());
  const auto j = r.status_json();
  INFO(j);
  REQUIRE(j.rfind("{\"relay\":\"", 0) == 0);
  const auto id = j.substr(10, 16);
  CHECK(std::all_of(id.begin(), id.end(), [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); }));
  CHECK(j.substr(26, 9) == "\",\"host\":");
  CHECK(j.find(",\"pid\":" + std::to_string(::getpid()) + ",\"time\":\"20") != std::string::npos);
  CHECK(j.find("Z\",\"uptime_ms\":") != std::string::npos);
  CHECK(j.find(",\"msgs_in\":0,") != std::string::npos);
  CHECK(j.size() > 2);
  CHECK(j.find(",\"upstream_up\":0,") != std::string::npos);  // the last counter
  CHECK(j.substr(j.size() - 12) == ",\"links\":[]}");         // then the links (none)
  const auto host = r.sys_topic().substr(5, r.sys_topic().size() - 5 - 6);
  CHECK(j.find("\"host\":\"" + host + "\"") != std::string::npos);
  CHECK(r.sys_topic().substr(r.sys_topic().size() - 6) == ".stats");
}

TEST_CASE("relay sends $SYS samples past a full subscriber while it holds messages for it", "[relay][sys]") {
  zmq::context_t ctx;
  auto cfg = inproc_config();
  cfg.on_full = full_policy::block;
  cfg.hwm = 1;
  cfg.sys_interval = 20ms;
  running_relay r(ctx, cfg);
  auto pub = make_publisher(ctx, r.ep());
  zmq::socket_t stuck(ctx, zmq::socket_type::sub);  // subscribes to everything, reads nothing
  stuck.set(zmq::sockopt::linger, 0);
  stuck.set(zmq::sockopt::rcvhwm, 1);
  stuck.set(zmq::sockopt::subscribe, "");
  stuck.connect(r.ep().sub);
  REQUIRE(recv_parts(pub).size() == 1);  // its subscription has reached the publisher
  // Block policy: the relay holds a message for the stuck subscriber and stops reading publishers.
  REQUIRE(eventually([&] {
    send_parts(pub, {"t", "x"});
    return r.get().counters().blocked > 0;
  }));
  auto sub = sys_subscriber(ctx, r.ep().sub);
  std::uint64_t seen = 0;
  CHECK(read_sys_until(*sub, r.get(), [&](const std::string& s) {
    return s.find("\"blocked\":1,") != std::string::npos && ++seen == 3;
  }));
  CHECK(r.get().counters().blocked == 1);  // still held: the samples went past it
}
