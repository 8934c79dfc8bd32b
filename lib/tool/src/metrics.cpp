#include "zrelay/metrics.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "zrelay/relay.hpp"

namespace zrelay {
namespace {

constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";
// libmicrohttpd (Debian's libmicrohttpd-dev) serves on one thread of its own, every connection
// non-blocking (epoll): a slow client holds up no other. What one connection may cost is bounded:
// its request line and headers live in a buffer of this size (a longer request is answered 431 or
// 414 and closed; a GET has no body, and none is read), and a connection idle this long is closed.
constexpr std::size_t connection_memory = 16 * 1024;
constexpr unsigned idle_timeout_seconds = 2;
// Connections at once, in all: a scraper needs one. Past this, new ones are refused at once.
constexpr unsigned max_connections = 64;

std::string escape_help(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

// A label value: the same, and a double quote.
std::string escape_label(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void metric(std::string& out, const std::string& name, const char* type, std::string_view help,
            const std::string& sample) {
  out += "# HELP " + name + ' ' + escape_help(help) + '\n';
  out += "# TYPE " + name + ' ' + type + '\n';
  out += name + sample + '\n';
}

}  // namespace

http_endpoint parse_http_endpoint(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
  if (text.find("://") != std::string_view::npos)
    throw std::invalid_argument(quoted + ": give HOST:PORT (127.0.0.1:9560), not a URL");
  http_endpoint ep;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) throw std::invalid_argument(quoted + ": no ']' after the IPv6 address");
    ep.host = std::string(text.substr(1, close - 1));
    ep.ipv6 = true;
    if (ep.host.find(':') == std::string::npos)
      throw std::invalid_argument(quoted + ": brackets hold an IPv6 address, e.g. [::1]:9560");
    if (close + 1 >= text.size() || text[close + 1] != ':')
      throw std::invalid_argument(quoted + ": no port (HOST:PORT, [IPV6]:PORT)");
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw std::invalid_argument(quoted + ": no port (HOST:PORT, [IPV6]:PORT)");
    if (text.find(':') != colon)
      throw std::invalid_argument(quoted + ": an IPv6 address needs brackets, e.g. [::1]:9560");
    ep.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  if (ep.host.empty()) throw std::invalid_argument(quoted + ": no host (use 127.0.0.1, [::1], 0.0.0.0, ...)");
  if (ep.host.find_first_of(" /[]@?#") != std::string::npos)
    throw std::invalid_argument(quoted + ": '" + ep.host + "' is not a host name or address");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
      std::stoul(std::string(port)) > 65535)
    throw std::invalid_argument(quoted + ": the port must be a number from 0 to 65535 (0: any free port)");
  ep.port = static_cast<std::uint16_t>(std::stoul(std::string(port)));
  return ep;
}

std::string http_url(const http_endpoint& ep) {
  return "http://" + (ep.ipv6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
}

std::string format_metrics(const relay_counters& c, const metrics_info& info) {
  std::string out;
  for_each_counter_described(c, [&out](const char* name, counter_kind kind, const char* doc, std::uint64_t value) {
    const bool counter = kind == counter_kind::counter;
    metric(out, std::string("zrelay_") + name + (counter ? "_total" : ""), counter ? "counter" : "gauge", doc,
           ' ' + std::to_string(value));
  });
  metric(out, "zrelay_info", "gauge", "the relay's version, in the label (always 1)",
         "{version=\"" + escape_label(info.version) + "\"} 1");
  char start[64];
  std::snprintf(start, sizeof start, " %.3f", info.start_time_seconds);
  metric(out, "zrelay_start_time_seconds", "gauge", "when the relay started, in seconds since the Unix epoch", start);
  return out;
}

health check_health(const relay_counters& c) {
  if (c.live.stopping) return {503, "stopping\n"};
  // Idle, the relay thread turns at least every 100 ms: one that has not for seconds is stuck.
  if (c.live.loop_age_ms > max_loop_age_ms)
    return {503, "relay loop not turning for " + std::to_string(c.live.loop_age_ms / 1000) + " s\n"};
  if (c.journal_unavailable != 0)
    return {503, "journal unavailable: acked messages are refused with NACK 'unavailable'\n"};
  return {};
}

struct metrics_server::impl {
  impl(std::function<relay_counters()> c, metrics_info i) : counters(std::move(c)), info(std::move(i)) {}

  // The answer to one request (on the server's thread).
  static MHD_Result answer(void* cls, MHD_Connection* conn, const char* path, const char* method, const char*,
                           const char*, std::size_t*, void**) {
    auto& m = *static_cast<impl*>(cls);
    int status = 200;
    std::string body;
    const char* type = "text/plain";
    const bool get = std::strcmp(method, "GET") == 0 || std::strcmp(method, "HEAD") == 0;
    if (!get) {
      status = 405;
      body = "method not allowed: use GET\n";
    } else if (std::strcmp(path, "/metrics") == 0) {
      body = format_metrics(m.counters(), m.info);
      type = content_type;
    } else if (std::strcmp(path, "/healthz") == 0) {
      const auto h = check_health(m.counters());
      status = h.status;
      body = h.body;
    } else {
      status = 404;
      body = "not found: the paths are /metrics and /healthz\n";
    }
    MHD_Response* res = MHD_create_response_from_buffer(body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
    if (res == nullptr) return MHD_NO;  // out of memory: MHD closes the connection
    (void)MHD_add_response_header(res, "Content-Type", type);
    if (status == 405) (void)MHD_add_response_header(res, "Allow", "GET, HEAD");
    // One request a connection: a scraper's next scrape is seconds away, and no slot waits on it.
    (void)MHD_add_response_header(res, "Connection", "close");
    const auto queued = MHD_queue_response(conn, static_cast<unsigned>(status), res);
    MHD_destroy_response(res);
    return queued;
  }

  std::function<relay_counters()> counters;
  metrics_info info;
  std::string url;
  MHD_Daemon* daemon = nullptr;
};

metrics_server::metrics_server(const http_endpoint& ep, std::function<relay_counters()> counters, metrics_info info)
    : impl_(std::make_unique<impl>(std::move(counters), std::move(info))) {
  auto& m = *impl_;
  const auto where = "cannot bind '" + (ep.ipv6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port) + "'";
  // The listening socket is made here, so that a bind error says why and only SO_REUSEADDR is set
  // (no SO_REUSEPORT: a second relay on the port must fail, not share it).
  addrinfo hints{};
  hints.ai_family = ep.ipv6 ? AF_INET6 : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(ep.host.c_str(), std::to_string(ep.port).c_str(), &hints, &found); rc != 0)
    throw bind_error(where + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> list(found, freeaddrinfo);
  const int fd = ::socket(found->ai_family, found->ai_socktype | SOCK_CLOEXEC, found->ai_protocol);
  if (fd < 0) throw bind_error(where + ": " + std::strerror(errno));
  const int yes = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 64) != 0) {
    const int err = errno;
    ::close(fd);
    throw bind_error(where + ": " + std::strerror(err));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  (void)getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto bound_ep = ep;
  bound_ep.port = ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                                   : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  m.url = http_url(bound_ep);
  const unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         (found->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
  m.daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &impl::answer, &m,          //
                              MHD_OPTION_LISTEN_SOCKET, fd,                           //
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, connection_memory,  //
                              MHD_OPTION_CONNECTION_LIMIT, max_connections,           //
                              MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout_seconds,    //
                              MHD_OPTION_END);
  if (m.daemon == nullptr) {
    ::close(fd);
    throw bind_error(where + ": libmicrohttpd could not start serving on it");
  }
}

metrics_server::~metrics_server() {
  // Closes every connection, slow ones too, and the listening socket, and joins the thread.
  if (impl_->daemon != nullptr) MHD_stop_daemon(impl_->daemon);
}

const std::string& metrics_server::url() const { return impl_->url; }

}  // namespace zrelay
