#include <catch2/catch.hpp>

#include <httplib.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "zrelay/metrics.hpp"
#include "zrelay/relay.hpp"

using zrelay::format_metrics;
using zrelay::http_endpoint;
using zrelay::metrics_info;
using zrelay::metrics_server;
using zrelay::parse_http_endpoint;
using zrelay::relay_counters;

namespace {

struct entry {
  std::string name;
  bool gauge;
  std::string doc;
};

// ZRELAY_COUNTERS as a list: the tests walk it, so a counter added there is covered here too.
const std::vector<entry>& entries() {
  static const std::vector<entry> list{
#define ENTRY(name, kind, doc) {#name, zrelay::counter_kind::kind == zrelay::counter_kind::gauge, doc},
      ZRELAY_COUNTERS(ENTRY)
#undef ENTRY
  };
  return list;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("format_metrics writes every counter with its help, its type and its value", "[metrics]") {
  relay_counters c;
  std::uint64_t v = 1;
#define SET(name, kind, doc) c.name = (std::uint64_t{1} << 40) + v++;
  ZRELAY_COUNTERS(SET)
#undef SET
  const auto text = format_metrics(c, metrics_info{"1.2.3", 1764620000.25});
  INFO(text);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  const auto lines = lines_of(text);
  REQUIRE(lines.size() == 3 * (entries().size() + 2));
  for (std::size_t i = 0; i < entries().size(); ++i) {
    const auto& e = entries()[i];
    const auto name = "zrelay_" + e.name + (e.gauge ? "" : "_total");
    INFO(name);
    CHECK(lines[3 * i] == "# HELP " + name + " " + e.doc);
    CHECK(lines[3 * i + 1] == "# TYPE " + name + (e.gauge ? " gauge" : " counter"));
    CHECK(lines[3 * i + 2] == name + " " + std::to_string((std::uint64_t{1} << 40) + i + 1));
  }
  const auto n = 3 * entries().size();
  CHECK(lines[n + 1] == "# TYPE zrelay_info gauge");
  CHECK(lines[n + 2] == "zrelay_info{version=\"1.2.3\"} 1");
  CHECK(lines[n + 4] == "# TYPE zrelay_start_time_seconds gauge");
  CHECK(lines[n + 5] == "zrelay_start_time_seconds 1764620000.250");
}

TEST_CASE("format_metrics: what is a gauge and what a counter", "[metrics]") {
  const auto text = format_metrics(relay_counters{}, metrics_info{});
  CHECK(text.find("# TYPE zrelay_msgs_in_total counter\nzrelay_msgs_in_total 0\n") != std::string::npos);
  CHECK(text.find("# TYPE zrelay_publishers gauge\nzrelay_publishers 0\n") != std::string::npos);
  CHECK(text.find("# TYPE zrelay_subscriber_connections gauge\n") != std::string::npos);
  CHECK(text.find("# TYPE zrelay_held gauge\n") != std::string::npos);
  CHECK(text.find("zrelay_publishers_total") == std::string::npos);
  for (const auto& e : entries()) {
    INFO(e.name);
    // A gauge named like a counter, or a counter like a gauge, would mislead rate() and promtool.
    CHECK((e.name.size() >= 6 && e.name.compare(e.name.size() - 6, 6, "_total") == 0) == false);
    CHECK(e.doc.find('\n') == std::string::npos);
  }
}

TEST_CASE("format_metrics escapes the version label", "[metrics]") {
  const auto text = format_metrics(relay_counters{}, metrics_info{"a\"b\\c\nd", 0});
  CHECK(text.find("zrelay_info{version=\"a\\\"b\\\\c\\nd\"} 1\n") != std::string::npos);
}

TEST_CASE("check_health is ok unless the journal is unavailable", "[metrics]") {
  relay_counters c;
  CHECK(zrelay::check_health(c).status == 200);
  CHECK(zrelay::check_health(c).body == "ok\n");
  c.journal_unavailable = 1;
  CHECK(zrelay::check_health(c).status == 503);
  CHECK(zrelay::check_health(c).body.rfind("journal unavailable", 0) == 0);
}

TEST_CASE("check_health is 503 while the relay stops or its loop does not turn", "[metrics]") {
  relay_counters c;
  c.live.loop_age_ms = 5000;  // at the limit: still ok
  CHECK(zrelay::check_health(c).status == 200);
  c.live.loop_age_ms = 7300;
  CHECK(zrelay::check_health(c).status == 503);
  CHECK(zrelay::check_health(c).body == "relay loop not turning for 7 s\n");
  c.journal_unavailable = 1;  // the stuck loop is said first
  CHECK(zrelay::check_health(c).body == "relay loop not turning for 7 s\n");
  c.live.stopping = true;
  CHECK(zrelay::check_health(c).status == 503);
  CHECK(zrelay::check_health(c).body == "stopping\n");
}

TEST_CASE("parse_http_endpoint takes HOST:PORT and [IPV6]:PORT", "[metrics]") {
  auto ep = parse_http_endpoint("127.0.0.1:9560");
  CHECK(ep.host == "127.0.0.1");
  CHECK(ep.port == 9560);
  CHECK_FALSE(ep.ipv6);
  CHECK(zrelay::http_url(ep) == "http://127.0.0.1:9560");
  ep = parse_http_endpoint("[::1]:0");
  CHECK(ep.host == "::1");
  CHECK(ep.port == 0);
  CHECK(ep.ipv6);
  CHECK(zrelay::http_url(ep) == "http://[::1]:0");
  CHECK(parse_http_endpoint("localhost:65535").port == 65535);
  CHECK(parse_http_endpoint("0.0.0.0:1").host == "0.0.0.0");

  CHECK_THROWS_WITH(parse_http_endpoint("127.0.0.1"), "'127.0.0.1': no port (HOST:PORT, [IPV6]:PORT)");
  CHECK_THROWS_WITH(parse_http_endpoint(":80"), Catch::StartsWith("':80': no host"));
  CHECK_THROWS_WITH(parse_http_endpoint("::1:80"), Catch::Contains("needs brackets"));
  CHECK_THROWS_WITH(parse_http_endpoint("[::1"), Catch::Contains("no ']'"));
  CHECK_THROWS_WITH(parse_http_endpoint("http://127.0.0.1:9560"),
                    "'http://127.0.0.1:9560': give HOST:PORT (127.0.0.1:9560), not a URL");
  CHECK_THROWS_WITH(parse_http_endpoint("[1.2.3.4]:80"), Catch::Contains("brackets hold an IPv6 address"));
  for (const char* bad : {"h:", "h:65536", "h:-1", "h:1x", "h:123456", "[::1]", "[::1]80", "h/x:80", ""}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_http_endpoint(bad), std::invalid_argument);
  }
}

TEST_CASE("metrics_server serves /metrics and /healthz, and nothing else", "[metrics]") {
  std::atomic<std::uint64_t> msgs{7}, down{0};
  const metrics_info info{"9.9.9", 12.5};
  metrics_server server(
      http_endpoint{"127.0.0.1", 0, false},
      [&] {
        relay_counters c;
        c.msgs_in = msgs.load();
        c.journal_unavailable = down.load();
        return c;
      },
      info);
  const auto& url = server.url();
  REQUIRE(url.rfind("http://127.0.0.1:", 0) == 0);
  REQUIRE(url.substr(17) != "0");
  httplib::Client client(url);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);

  auto res = client.Get("/metrics");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
  relay_counters expected;
  expected.msgs_in = 7;
  CHECK(res->body == format_metrics(expected, info));
  msgs = 8;  // read on each request
  res = client.Get("/metrics");
  REQUIRE(res);
  CHECK(res->body.find("\nzrelay_msgs_in_total 8\n") != std::string::npos);

  res = client.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body == "ok\n");
  down = 1;
  res = client.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 503);

  res = client.Get("/metrics/x");
  REQUIRE(res);
  CHECK(res->status == 404);
  res = client.Get("/");
  REQUIRE(res);
  CHECK(res->status == 404);
  res = client.Post("/metrics", "x", "text/plain");
  REQUIRE(res);
  CHECK(res->status == 405);
  CHECK(res->get_header_value("Allow") == "GET, HEAD");

  SECTION("a second server on the same port cannot bind") {
    const auto port = static_cast<std::uint16_t>(std::stoul(url.substr(17)));
    CHECK_THROWS_MATCHES(
        metrics_server(
            http_endpoint{"127.0.0.1", port, false}, [] { return relay_counters{}; }, metrics_info{}),
        zrelay::bind_error,
        Catch::Matchers::Message("cannot bind '127.0.0.1:" + std::to_string(port) + "': Address already in use"));
  }
}

TEST_CASE("metrics_server stops at once when destroyed right after it starts", "[metrics]") {
  for (int i = 0; i < 20; ++i)
    metrics_server(
        http_endpoint{"127.0.0.1", 0, false}, [] { return relay_counters{}; }, metrics_info{});
}

namespace {

// A plain TCP connection to the server at `url` (http://127.0.0.1:PORT), or -1.
int connect_to(const std::string& url) {
  const auto port = static_cast<std::uint16_t>(std::stoul(url.substr(url.rfind(':') + 1)));
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
  if (fd >= 0) ::close(fd);
  return -1;
}

}  // namespace

TEST_CASE("metrics_server bounds what a client costs: an endless header is cut off, slow clients hold up no one",
          "[metrics]") {
  auto server = std::make_unique<metrics_server>(
      http_endpoint{"127.0.0.1", 0, false}, [] { return relay_counters{}; }, metrics_info{});
  const auto url = server->url();
  // A header that never ends: the server stops reading it at its 16 KiB and closes the connection.
  const int big = connect_to(url);
  REQUIRE(big >= 0);
  const std::string start = "GET /metrics HTTP/1.1\r\nX-A: ";
  REQUIRE(::send(big, start.data(), start.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(start.size()));
  const std::string chunk(65536, 'a');
  std::size_t sent = 0;
  while (sent < (std::size_t{64} << 20)) {
    const auto n = ::send(big, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  ::close(big);
  CHECK(sent < (std::size_t{64} << 20));  // cut off long before 64 MiB
  // Ten clients that send a byte and then nothing: the next scrape is answered all the same.
  std::vector<int> slow;
  for (int i = 0; i < 10; ++i) {
    const int fd = connect_to(url);
    REQUIRE(fd >= 0);
    REQUIRE(::send(fd, "G", 1, MSG_NOSIGNAL) == 1);
    slow.push_back(fd);
  }
  httplib::Client client(url);
  client.set_connection_timeout(5);
  client.set_read_timeout(5);
  const auto res = client.Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
  // Stopping closes them: it waits for none of them.
  const auto t0 = std::chrono::steady_clock::now();
  server.reset();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  char c = 0;
  for (const int fd : slow) {
    CHECK(::recv(fd, &c, 1, 0) <= 0);  // closed by the server
    ::close(fd);
  }
}
