// The relay's sockets: built from the config with their options, and the connection monitor.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

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
  // A connection that never shook hands (a port scan, a refused client, a ZMTP 1.0 greeting under
  // CURVE, which libzmq 4.3.4 ends with no handshake event), while a publisher is connected.
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_ACCEPTED, 7));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0));
  CHECK(w.connected() == 1);
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_ACCEPTED, 8));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_DISCONNECTED, 8));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_ACCEPTED, 8));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_DISCONNECTED, 8));
  CHECK(w.connected() == 1);
  // A descriptor never accepted.
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_DISCONNECTED, 99));
  CHECK(w.publisher_gone(ZMQ_EVENT_DISCONNECTED, 7));
  CHECK(w.connected() == 0);
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_DISCONNECTED, 7));  // said once
  // Two handshakes at once, one refused: the success waits until the refused one has gone.
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_ACCEPTED, 7));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_ACCEPTED, 9));
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_HANDSHAKE_SUCCEEDED, 0));
  CHECK(w.connected() == 1);
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_DISCONNECTED, 7));
  CHECK(w.connected() == 1);
  CHECK(w.publisher_gone(ZMQ_EVENT_DISCONNECTED, 9));
  CHECK(w.connected() == 0);
  CHECK_FALSE(w.publisher_gone(ZMQ_EVENT_CONNECTED, 5));
}

namespace {

// A TCP connection to `ep` that sends `bytes` and waits (with a deadline) until the peer closes it.
bool refused_after(const std::string& ep, const std::string& bytes) {
  const auto colon = ep.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(ep.substr(colon + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool closed = false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
      ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size())) {
    const auto until = std::chrono::steady_clock::now() + zrelay::test::deadline;
    char buf[256];
    while (!closed && std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      const auto n = ::read(fd, buf, sizeof buf);
      closed = n == 0 || (n < 0 && errno == ECONNRESET);
    }
  }
  ::close(fd);
  return closed;
}

}  // namespace

TEST_CASE("connection_watch: a ZMTP 1.0 greeting refused under CURVE ends no publisher's connection", "[sockets]") {
  zmq::context_t ctx;
  char server_public[41], server_secret[41], client_public[41], client_secret[41];
  REQUIRE(zmq_curve_keypair(server_public, server_secret) == 0);
  REQUIRE(zmq_curve_keypair(client_public, client_secret) == 0);
  zmq::socket_t watched(ctx, zmq::socket_type::router);
  watched.set(zmq::sockopt::linger, 0);
  watched.set(zmq::sockopt::curve_server, 1);
  watched.set(zmq::sockopt::curve_secretkey, std::string(server_secret));
  zrelay::connection_watch w(ctx, watched, "test-curve");
  const auto ep = zrelay::bind_socket(watched, "tcp://127.0.0.1:*");
  const auto client = [&] {
    auto c = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
    c->set(zmq::sockopt::linger, 0);
    c->set(zmq::sockopt::curve_serverkey, std::string(server_public));
    c->set(zmq::sockopt::curve_publickey, std::string(client_public));
    c->set(zmq::sockopt::curve_secretkey, std::string(client_secret));
    c->connect(ep);
    (void)c->send(zmq::str_buffer("hello"), zmq::send_flags::none);
    REQUIRE(zrelay::test::recv_parts(watched).size() == 2);  // the handshake is done
    return c;
  };
  std::uint64_t gone = 0;
  const auto until_connected = [&](std::uint64_t n) {
    const auto until = std::chrono::steady_clock::now() + zrelay::test::deadline;
    while (w.connected() != n && std::chrono::steady_clock::now() < until) {
      zmq::pollitem_t item{w.reader().handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 10ms);
      gone += w.read_events([](const std::string&) {});
    }
    return w.connected() == n;
  };
  const auto first = client();
  CHECK(until_connected(1));
  // Two clients greeting in ZMTP 1.0: libzmq refuses them under CURVE, with no handshake event.
  REQUIRE(refused_after(ep, std::string("\x01\x00", 2)));
  REQUIRE(refused_after(ep, std::string("\x01\x00", 2)));
  // A second publisher: its handshake's event comes after the refused ones' (one I/O thread).
  const auto second = client();
  CHECK(until_connected(2));
  CHECK(gone == 0);
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
