#include <catch2/catch.hpp>

#include <httplib.h>

#include <atomic>
#include <cstdint>
#include <map>
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
