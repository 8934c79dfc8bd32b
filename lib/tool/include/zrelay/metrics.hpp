#pragma once
// Metrics over HTTP (zrelay --metrics-bind HOST:PORT): GET /metrics in the Prometheus text
// exposition format 0.0.4, GET /healthz. The server (libmicrohttpd) runs on a thread of its own and
// reads the relay's counters, which are relaxed atomics, through a function it is given.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "zrelay/stats.hpp"

namespace zrelay {

/// Where the metrics server listens: a host name or address (an IPv6 one without its brackets) and
/// a port (0: any free one).
struct http_endpoint {
  std::string host;
  std::uint16_t port = 0;
  bool ipv6 = false;  ///< given in brackets: [::1]:9560
};

/// Parses HOST:PORT, [IPV6]:PORT; throws std::invalid_argument with a message that names the
/// problem (no port, an empty host, a port that is not 0 to 65535, an IPv6 address without brackets).
http_endpoint parse_http_endpoint(std::string_view text);

/// "http://HOST:PORT/" without the slash, brackets around an IPv6 host.
std::string http_url(const http_endpoint& ep);

/// What the metrics page says besides the counters.
struct metrics_info {
  std::string version;              ///< zrelay_info{version="…"} 1
  double start_time_seconds = 0.0;  ///< zrelay_start_time_seconds: when the relay started, Unix time
};

/// The page GET /metrics serves: per counter of ZRELAY_COUNTERS a # HELP and a # TYPE line and its
/// sample, zrelay_NAME_total for a counter and zrelay_NAME for a gauge, then zrelay_info and
/// zrelay_start_time_seconds. Every line ends in "\n".
std::string format_metrics(const relay_counters& c, const metrics_info& info);

/// What GET /healthz answers: 200 "ok\n" while the relay runs normally, 503 and the reason while
/// it stops, while its loop has not turned for over max_loop_age_ms, or while the journal cannot
/// store (what acked publishers send is refused with NACK "unavailable").
constexpr std::uint64_t max_loop_age_ms = 5000;
struct health {
  int status = 200;
  std::string body = "ok\n";
};
health check_health(const relay_counters& c);

/// The HTTP server: binds in the constructor, serves on one thread of its own (every connection
/// non-blocking), stops in the destructor (closing every connection). A connection may hold 16 KiB
/// of request line and headers (no body is read) and one request; one idle for 2 s is closed; 64 at
/// most are open.
class metrics_server {
public:
  /// Binds `ep` and starts serving; `counters` is called on the server's thread for each request.
  /// Throws bind_error ("cannot bind 'HOST:PORT': …").
  metrics_server(const http_endpoint& ep, std::function<relay_counters()> counters, metrics_info info);
  ~metrics_server();
  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  /// What was bound (an ephemeral port resolved): http://HOST:PORT.
  const std::string& url() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zrelay
