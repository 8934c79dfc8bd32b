#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

#include "testutil.hpp"
#include "zrelay/connection.hpp"
#include "zrelay/security.hpp"

using namespace zrelay;
using namespace zrelay::test;
using Catch::Contains;
using Catch::StartsWith;

namespace {

using clock_type = std::chrono::steady_clock;

// A TCP socket on 127.0.0.1 and an ephemeral port that speaks no ZMTP: bound only (a connection
// to it is refused), or listening without ever accepting (the kernel completes the connection,
// nobody answers). Holding the port keeps anyone else from taking it meanwhile.
class raw_port {
public:
  explicit raw_port(bool listening) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    if (listening) REQUIRE(::listen(fd_, 16) == 0);
    endpoint_ = "tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~raw_port() { ::close(fd_); }
  raw_port(const raw_port&) = delete;
  raw_port& operator=(const raw_port&) = delete;
  int fd() const { return fd_; }
  const std::string& endpoint() const { return endpoint_; }

private:
  int fd_;
  std::string endpoint_;
};

// A TCP server of another protocol: accepts every connection and closes it at once.
class hang_up_server {
public:
  hang_up_server() : port_(true), thread_([this] { run(); }) {}
  ~hang_up_server() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return port_.endpoint(); }
  int accepted() const { return accepted_; }

private:
  void run() {
    while (!stop_) {
      pollfd p{port_.fd(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(port_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      ::close(c);
      ++accepted_;
    }
  }

  raw_port port_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

zmq::socket_t bound_router(zmq::context_t& ctx, const std::string& ep = "tcp://127.0.0.1:*") {
  zmq::socket_t s(ctx, zmq::socket_type::router);
  s.set(zmq::sockopt::linger, 0);
  s.bind(ep);
  return s;
}

// Closes `s` and waits (with a deadline) until ZeroMQ reports its listener closed and the socket
// gone: ZeroMQ closes them on its own threads, and the port is free once it says so. False if it
// never said.
bool close_and_wait(zmq::context_t& ctx, std::unique_ptr<zmq::socket_t>& s) {
  const auto name = unique_inproc("close-monitor");
  if (zmq_socket_monitor(s->handle(), name.c_str(), ZMQ_EVENT_CLOSED | ZMQ_EVENT_MONITOR_STOPPED) != 0) return false;
  zmq::socket_t events(ctx, zmq::socket_type::pair);
  events.set(zmq::sockopt::linger, 0);
  events.connect(name);
  s.reset();
  bool closed = false;
  // [event id (16 bits) + value][endpoint]; the events reader stays until the last one came.
  for (auto parts = recv_parts(events); parts.size() == 2; parts = recv_parts(events)) {
    std::uint16_t id = 0;
    if (parts[0].size() >= sizeof id) std::memcpy(&id, parts[0].data(), sizeof id);
    if (id == ZMQ_EVENT_CLOSED) closed = true;
    if (id == ZMQ_EVENT_MONITOR_STOPPED) return closed;
  }
  return false;
}

zmq::socket_t client(zmq::context_t& ctx) {
  zmq::socket_t s(ctx, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  return s;
}

// Polls a link_monitor until it reports a change or the deadline passes; the changes seen.
std::vector<link_monitor::change> next_changes(link_monitor& link) {
  std::vector<link_monitor::change> seen;
  const auto until = clock_type::now() + deadline;
  while (seen.empty() && clock_type::now() < until) {
    auto item = link.poll_item();
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    link.drain([&seen](link_monitor::change c) { seen.push_back(c); });
  }
  return seen;
}

}  // namespace

TEST_CASE("connect_and_wait returns once the ZeroMQ handshake with the peer is done", "[connection]") {
  zmq::context_t ctx;
  auto peer = bound_router(ctx);
  const auto ep = peer.get(zmq::sockopt::last_endpoint);
  auto s = client(ctx);
  REQUIRE(connect_and_wait(ctx, s, ep, deadline));
  // Connected, not only connecting: what is sent now is not queued for a connection to come.
  s.set(zmq::sockopt::immediate, 1);
  send_parts(s, {"hello"});
  const auto got = recv_parts(peer);
  REQUIRE(got.size() == 2);
  CHECK(got[1] == "hello");
}

TEST_CASE("connect_and_wait does not wait with a zero timeout, nor over inproc", "[connection]") {
  zmq::context_t ctx;
  SECTION("a zero timeout connects to a port nobody serves and returns true at once") {
    raw_port nobody(false);
    auto s = client(ctx);
    const auto t0 = clock_type::now();
    CHECK(connect_and_wait(ctx, s, nobody.endpoint(), 0ms));
    CHECK(clock_type::now() - t0 < deadline / 2);
    CHECK(s.get(zmq::sockopt::last_endpoint) == nobody.endpoint());
  }
  SECTION("inproc connects before its peer binds") {
    const auto ep = unique_inproc("later");
    auto s = client(ctx);
    CHECK(connect_and_wait(ctx, s, ep, deadline));
    auto peer = bound_router(ctx, ep);
    send_parts(s, {"queued"});
    const auto got = recv_parts(peer);
    REQUIRE(got.size() == 2);
    CHECK(got[1] == "queued");
  }
}

TEST_CASE("connect_and_wait names the endpoint and why it cannot be used", "[connection]") {
  zmq::context_t ctx;
  auto s = client(ctx);
  SECTION("malformed") {
    CHECK_THROWS_AS(connect_and_wait(ctx, s, "tcp://127.0.0.1", deadline), connect_error);
    CHECK_THROWS_WITH(connect_and_wait(ctx, s, "tcp://127.0.0.1", deadline),
                      "cannot connect to 'tcp://127.0.0.1': malformed endpoint 'tcp://127.0.0.1': tcp needs HOST:PORT");
  }
  SECTION("a bind-only endpoint") {
    CHECK_THROWS_WITH(connect_and_wait(ctx, s, "tcp://*:5561", deadline),
                      "cannot connect to 'tcp://*:5561': malformed endpoint 'tcp://*:5561': '*' as host is only for "
                      "binding");
  }
  SECTION("a host that does not resolve") {
    CHECK_THROWS_WITH(connect_and_wait(ctx, s, "tcp://no-such-host.invalid:5561", deadline),
                      StartsWith("cannot connect to 'tcp://no-such-host.invalid:5561': cannot resolve "
                                 "'no-such-host.invalid': "));
  }
}

TEST_CASE("connect_and_wait tells a refused connection from a silent peer", "[connection]") {
  zmq::context_t ctx;
  auto s = client(ctx);
  SECTION("nothing listens: refused") {
    raw_port nobody(false);
    CHECK_THROWS_WITH(connect_and_wait(ctx, s, nobody.endpoint(), 1000ms),
                      "cannot connect to '" + nobody.endpoint() +
                          "': connection refused or unreachable after 1000 ms (is zrelay running there?)");
  }
  SECTION("a listener that never answers: no answer, after the timeout") {
    raw_port silent(true);
    const auto t0 = clock_type::now();
    CHECK_THROWS_WITH(
        connect_and_wait(ctx, s, silent.endpoint(), 200ms),
        "cannot connect to '" + silent.endpoint() + "': no answer after 200 ms (is zrelay running there?)");
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - t0);
    INFO("waited " << waited.count() << " ms");
    CHECK(waited >= 199ms);  // the wait is counted in whole milliseconds
    CHECK(waited < deadline);
  }
}

TEST_CASE("connect_and_wait reports a failed handshake", "[connection]") {
  zmq::context_t ctx;
  auto s = client(ctx);
  SECTION("a server of another protocol, which hangs up") {
    hang_up_server other;
    CHECK_THROWS_WITH(connect_and_wait(ctx, s, other.endpoint(), deadline),
                      "cannot connect to '" + other.endpoint() +
                          "': the ZeroMQ handshake failed (is that a zrelay port? if it uses CURVE, give --curve-key "
                          "and --curve-server-key)");
    CHECK(other.accepted() >= 1);
  }
  SECTION("a CURVE client and a server without CURVE") {
    auto plain = bound_router(ctx);
    curve_config c;
    c.keys = generate_key_pair();
    c.server_key = generate_key_pair().public_key;
    apply_curve_client(s, c);
    // ZeroMQ reports the mismatch, or (when the server closed first) only a failure.
    CHECK_THROWS_WITH(connect_and_wait(ctx, s, plain.get(zmq::sockopt::last_endpoint), deadline),
                      StartsWith("cannot connect to '" + plain.get(zmq::sockopt::last_endpoint) + "': ") &&
                          Contains("CURVE") && Contains("--curve-server-key"));
  }
}

TEST_CASE("connect_and_wait returns false when the stop descriptor becomes readable", "[connection]") {
  zmq::context_t ctx;
  raw_port silent(true);
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  REQUIRE(::write(fds[1], "x", 1) == 1);
  auto s = client(ctx);
  const auto t0 = clock_type::now();
  const bool connected = connect_and_wait(ctx, s, silent.endpoint(), 3 * deadline, fds[0]);
  const auto waited = clock_type::now() - t0;
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK_FALSE(connected);
  CHECK(waited < deadline);
}

TEST_CASE("set_heartbeat sets the interval, and three intervals as timeout and TTL", "[connection]") {
  zmq::context_t ctx;
  auto s = client(ctx);
  SECTION("an interval") {
    set_heartbeat(s, 1000ms);
    CHECK(s.get(zmq::sockopt::heartbeat_ivl) == 1000);
    CHECK(s.get(zmq::sockopt::heartbeat_timeout) == 3000);
    CHECK(s.get(zmq::sockopt::heartbeat_ttl) == 3000);
  }
  SECTION("0 sets nothing: no heartbeats") {
    set_heartbeat(s, 0ms);
    CHECK(s.get(zmq::sockopt::heartbeat_ivl) == 0);
    CHECK(s.get(zmq::sockopt::heartbeat_timeout) == -1);
    CHECK(s.get(zmq::sockopt::heartbeat_ttl) == 0);
  }
}

TEST_CASE("set_keepalive probes after the interval in whole seconds, three times", "[connection]") {
  zmq::context_t ctx;
  auto s = client(ctx);
  SECTION("an interval, rounded up to seconds") {
    set_keepalive(s, 1500ms);
    CHECK(s.get(zmq::sockopt::tcp_keepalive) == 1);
    CHECK(s.get(zmq::sockopt::tcp_keepalive_idle) == 2);
    CHECK(s.get(zmq::sockopt::tcp_keepalive_intvl) == 2);
    CHECK(s.get(zmq::sockopt::tcp_keepalive_cnt) == 3);
  }
  SECTION("whole seconds stay as they are") {
    set_keepalive(s, 5000ms);
    CHECK(s.get(zmq::sockopt::tcp_keepalive_idle) == 5);
    CHECK(s.get(zmq::sockopt::tcp_keepalive_intvl) == 5);
  }
  SECTION("0 sets nothing: the system's default") {
    set_keepalive(s, 0ms);
    CHECK(s.get(zmq::sockopt::tcp_keepalive) == -1);
    CHECK(s.get(zmq::sockopt::tcp_keepalive_idle) == -1);
  }
}

TEST_CASE("link_monitor reports the peer lost once, and restored when it is back", "[connection]") {
  zmq::context_t ctx;
  auto peer = std::make_unique<zmq::socket_t>(bound_router(ctx));
  const auto ep = peer->get(zmq::sockopt::last_endpoint);
  auto s = client(ctx);
  s.set(zmq::sockopt::reconnect_ivl, 20);
  REQUIRE(connect_and_wait(ctx, s, ep, deadline));
  link_monitor link(ctx, s);
  CHECK_FALSE(link.lost());
  {
    auto item = link.poll_item();
    CHECK(item.events == ZMQ_POLLIN);
  }
  // Connected from the start: nothing to report.
  std::vector<link_monitor::change> seen;
  link.drain([&seen](link_monitor::change c) { seen.push_back(c); });
  CHECK(seen.empty());

  // The peer goes: ZeroMQ retries every 20 ms, each refused.
  REQUIRE(close_and_wait(ctx, peer));
  CHECK(next_changes(link) == std::vector<link_monitor::change>{link_monitor::change::lost});
  CHECK(link.lost());
  // The same peer back on the same port: restored, and the link carries messages again.
  peer = std::make_unique<zmq::socket_t>(bound_router(ctx, ep));
  auto changes = next_changes(link);
  CHECK(changes == std::vector<link_monitor::change>{link_monitor::change::restored});
  CHECK_FALSE(link.lost());
  send_parts(s, {"again"});
  const auto got = recv_parts(*peer);
  REQUIRE(got.size() == 2);
  CHECK(got[1] == "again");
  // Gone again: lost again (a drain without a callback only keeps count).
  peer.reset();
  const auto until = clock_type::now() + deadline;
  while (!link.lost() && clock_type::now() < until) {
    auto item = link.poll_item();
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    link.drain({});
  }
  CHECK(link.lost());
}
