#include "zrelay/metrics.hpp"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

// The only file that includes httplib.h: it is big, and nothing else needs it.
#include <httplib.h>

#include "zrelay/relay.hpp"

namespace zrelay {
namespace {

constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";
// A request is a GET: no body is read (nor would one over 1 KiB be). The request line and each
// header are capped at 8 KiB by the library itself (CPPHTTPLIB_REQUEST_URI_MAX_LENGTH,
// CPPHTTPLIB_HEADER_MAX_LENGTH: 414 and 400).
constexpr std::size_t max_body = 1024;
// A scraper sends its request at once: a connection silent this long is closed, so that a few idle
// ones cannot keep the workers from a scrape for long.
constexpr time_t read_timeout_seconds = 1;
constexpr time_t write_timeout_seconds = 2;
constexpr std::size_t workers = 2;
// Connections accepted and waiting for a worker; past that the accepting thread answers the next
// one itself, and accepts nothing meanwhile: the kernel's backlog takes the rest.
constexpr std::size_t max_waiting = 8;

// # HELP text: a backslash and a line feed are escaped (the text format 0.0.4).
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

// httplib's pool starts 8 threads or more and grows its queue without bound; this one has two
// workers and a short queue.
class bounded_queue : public httplib::TaskQueue {
public:
  bounded_queue() {
    for (std::size_t i = 0; i < workers; ++i) workers_.emplace_back([this] { work(); });
  }
  ~bounded_queue() override {
    if (!workers_.empty()) shutdown();
  }
  bounded_queue(const bounded_queue&) = delete;
  bounded_queue& operator=(const bounded_queue&) = delete;

  void enqueue(std::function<void()> fn) override {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (jobs_.size() < max_waiting) {
        jobs_.push_back(std::move(fn));
        cv_.notify_one();
        return;
      }
    }
    fn();  // the read and write timeouts bound how long this holds up accepting
  }

  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(m_);
        cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;  // stopping, and every connection accepted was answered
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace

http_endpoint parse_http_endpoint(std::string_view text) {
  const std::string quoted = "'" + std::string(text) + "'";
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
  impl(const http_endpoint& e, std::function<relay_counters()> c, metrics_info i)
      : ep(e), counters(std::move(c)), info(std::move(i)) {}

  void serve(const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("method not allowed: use GET\n", "text/plain");
    } else if (req.path == "/metrics") {
      res.set_content(format_metrics(counters(), info), content_type);
    } else if (req.path == "/healthz") {
      const auto h = check_health(counters());
      res.status = h.status;
      res.set_content(h.body, "text/plain");
    } else {
      res.status = 404;
      res.set_content("not found: the paths are /metrics and /healthz\n", "text/plain");
    }
  }

  http_endpoint ep;
  std::function<relay_counters()> counters;
  metrics_info info;
  std::string url;
  httplib::Server svr;
  std::atomic<bool> listened{false};  // listen_after_bind() returned
  std::thread listener;
};

metrics_server::metrics_server(const http_endpoint& ep, std::function<relay_counters()> counters, metrics_info info)
    : impl_(std::make_unique<impl>(ep, std::move(counters), std::move(info))) {
  auto& m = *impl_;
  const auto where = "cannot bind '" + (ep.ipv6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port) + "'";
  // Resolved here first, so that a host that does not resolve says so (httplib only says it failed).
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(ep.host.c_str(), nullptr, &hints, &found); rc != 0)
    throw bind_error(where + ": " + gai_strerror(rc));
  freeaddrinfo(found);

  m.svr.new_task_queue = [] { return new bounded_queue; };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let two relays share the port.
  m.svr.set_socket_options([](int fd) {
    const int yes = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  m.svr.set_keep_alive_timeout(read_timeout_seconds);  // also how long a new connection may wait to send
  m.svr.set_read_timeout(read_timeout_seconds, 0);
  m.svr.set_write_timeout(write_timeout_seconds, 0);
  m.svr.set_keep_alive_max_count(1);  // one request a connection: no worker waits on an idle keep-alive
  m.svr.set_payload_max_length(max_body);
  m.svr.set_pre_routing_handler([&m](const httplib::Request& req, httplib::Response& res) {
    m.serve(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  m.svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    res.set_content("internal error\n", "text/plain");
  });

  errno = 0;
  int port = ep.port;
  const bool bound = ep.port == 0 ? (port = m.svr.bind_to_any_port(ep.host)) > 0 : m.svr.bind_to_port(ep.host, port);
  if (!bound) throw bind_error(where + (errno != 0 ? std::string(": ") + std::strerror(errno) : std::string()));
  auto bound_ep = ep;
  bound_ep.port = static_cast<std::uint16_t>(port);
  m.url = http_url(bound_ep);
  m.listener = std::thread([&m] {
    // httplib writes with send(..., 0): a client gone would raise SIGPIPE, which kills the process.
    // Blocked in this thread and the workers it starts (they inherit the mask), a write to it fails
    // with EPIPE instead.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    (void)pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    (void)m.svr.listen_after_bind();
    m.listened.store(true);
  });
  // stop() does nothing before the server runs: a server stopped at once would never end.
  while (!m.svr.is_running() && !m.listened.load()) std::this_thread::yield();
}

metrics_server::~metrics_server() {
  impl_->svr.stop();
  if (impl_->listener.joinable()) impl_->listener.join();
}

const std::string& metrics_server::url() const { return impl_->url; }

}  // namespace zrelay
