// The relay's sockets: built from the config with their options, and the connection monitor.
#include <catch2/catch.hpp>

#include "relay/sockets.hpp"
#include "testutil.hpp"

using namespace std::chrono_literals;

TEST_CASE("relay_sockets set the frame limits from the config and resolve ephemeral ports", "[sockets]") {
  zmq::context_t ctx;
  auto cfg = zrelay::test::tcp_config();
  cfg.max_msg_size = 2u << 20;
  cfg.max_topic = 2000;
  cfg.hwm = 50;
  zrelay::relay_sockets s(ctx, cfg);
  CHECK(s.bound.pub.empty());  // configured, not bound yet
  s.bind(cfg);
  CHECK(s.router.get(zmq::sockopt::maxmsgsize) == static_cast<std::int64_t>(zrelay::frame_limit(cfg.max_msg_size)));
  CHECK(s.xsub.get(zmq::sockopt::maxmsgsize) == static_cast<std::int64_t>(zrelay::frame_limit(cfg.max_msg_size)));
  // A subscription frame is its topic and a 10-byte command name.
  CHECK(s.xpub.get(zmq::sockopt::maxmsgsize) == 2010);
  CHECK(s.xpub.get(zmq::sockopt::sndhwm) == 50);
  CHECK(s.xpub.get(zmq::sockopt::rcvhwm) == 0);  // subscriptions never meet a high-water mark
  CHECK(s.xsub.get(zmq::sockopt::sndhwm) == 0);
  CHECK(s.router.get(zmq::sockopt::sndhwm) == 100000);  // room for replies
  CHECK(s.xpub.get(zmq::sockopt::heartbeat_ivl) == 0);  // subscribers: keepalives, not heartbeats
  CHECK(s.xpub.get(zmq::sockopt::tcp_keepalive) == 1);
  CHECK(s.router.get(zmq::sockopt::heartbeat_ivl) == 1000);
  for (const auto* ep : {&s.bound.pub, &s.bound.sub, &s.bound.ack}) {
    CHECK(ep->rfind("tcp://127.0.0.1:", 0) == 0);
    CHECK(ep->find('*') == std::string::npos);
  }
  CHECK(s.bound.pub != s.bound.sub);
}

TEST_CASE("relay_sockets without a message limit set no frame limit on the publisher sockets", "[sockets]") {
  zmq::context_t ctx;
  auto cfg = zrelay::test::inproc_config();
  cfg.max_msg_size = 0;
  zrelay::relay_sockets s(ctx, cfg);
  CHECK(s.router.get(zmq::sockopt::maxmsgsize) == -1);
  CHECK(s.xsub.get(zmq::sockopt::maxmsgsize) == -1);
}

TEST_CASE("relay_sockets refuse a topic limit out of range before binding anything", "[sockets]") {
  zmq::context_t ctx;
  auto cfg = zrelay::test::tcp_config();
  cfg.max_topic = zrelay::min_max_topic - 1;
  CHECK_THROWS_AS(zrelay::relay_sockets(ctx, cfg), std::invalid_argument);
  cfg.max_topic = zrelay::max_topic_limit + 1;
  CHECK_THROWS_AS(zrelay::relay_sockets(ctx, cfg), std::invalid_argument);
}

TEST_CASE("bind_socket names the endpoint it cannot bind", "[sockets]") {
  zmq::context_t ctx;
  zmq::socket_t a(ctx, zmq::socket_type::pair), b(ctx, zmq::socket_type::pair);
  const auto ep = zrelay::bind_socket(a, "tcp://127.0.0.1:*");
  try {
    (void)zrelay::bind_socket(b, ep);
    FAIL("bound the same port twice");
  } catch (const zrelay::bind_error& e) {
    CHECK(std::string(e.what()) == "cannot bind '" + ep + "': Address already in use");
  }
}

TEST_CASE("connection_watch counts only the end of connections whose handshake completed", "[sockets]") {
  zmq::context_t ctx;
  zmq::socket_t watched(ctx, zmq::socket_type::router);
  zrelay::connection_watch w(ctx, watched, "test");
  // A handshake that failed: its DISCONNECTED is not a publisher's.
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_DISCONNECTED));
  // A connection that never shook hands (a port scan).
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_DISCONNECTED));
  // Two publishers, and a refused client whose events interleave with theirs.
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_HANDSHAKE_SUCCEEDED));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_HANDSHAKE_SUCCEEDED));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH));
  int gone = 0;
  for (int i = 0; i < 3; ++i) gone += w.publisher_gone(ZMQ_EVENT_DISCONNECTED) ? 1 : 0;
  CHECK(gone == 2);
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_DISCONNECTED));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_CONNECTED));
}

TEST_CASE("connection_watch reads a real publisher's end from the monitor", "[sockets]") {
  zmq::context_t ctx;
  zmq::socket_t watched(ctx, zmq::socket_type::router);
  watched.set(zmq::sockopt::linger, 0);
  const auto ep = zrelay::bind_socket(watched, "tcp://127.0.0.1:*");
  zrelay::connection_watch w(ctx, watched, "test-real");
  {
    zmq::socket_t client(ctx, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    client.connect(ep);
    (void)client.send(zmq::str_buffer("hello"), zmq::send_flags::none);
    REQUIRE(zrelay::test::recv_parts(watched).size() == 2);  // the handshake is done
  }
  std::uint64_t gone = 0;
  std::vector<std::string> addresses;
  const auto until = std::chrono::steady_clock::now() + zrelay::test::deadline;
  while (gone == 0 && std::chrono::steady_clock::now() < until) {
    zmq::pollitem_t item{w.reader().handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 10ms);
    gone += w.read_events([&](const std::string& a) { addresses.push_back(a); });
  }
  CHECK(gone == 1);
  REQUIRE(addresses.size() == 1);
  CHECK(addresses[0].rfind("tcp://127.0.0.1:", 0) == 0);
}
