// nats-min: a minimal, well-written NATS client benchmark, the yardstick for zbench's nats
// scenario. One publisher and one subscriber, each its own process, through a nats-server (the
// one at --url, or one it starts with --server); raw POSIX sockets and the NATS text protocol.
//
// The publisher formats PUBs straight into a 64 KiB buffer and writes it when full (one write
// per ~800 messages of 64 B); the subscriber reads into a 1 MiB buffer and parses MSG frames in
// place; neither allocates per message. With --subjects K a new subject comes on every message
// and the subscriber has one wildcard subscription. With --rate R the publisher writes each
// message when it is due (open loop) and the subscriber reports one-way latency percentiles.
// --stamp reads the clock for every message on both sides (zbench's accounting, without the rest
// of zbench), to tell the cost of that accounting from the cost of zbench's NATS client.
//
//   nats-min --server /usr/sbin/nats-server --msgs 5000000 --size 64 [--subjects 1000] [--rate 10000]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "nats_min.hpp"

namespace {

struct config {
  std::string url;     // nats://127.0.0.1:PORT
  std::string server;  // nats-server to start instead (on a free port)
  std::uint64_t msgs = 1'000'000;
  std::size_t size = 64;
  int subjects = 1;
  double rate = 0;
  int runs = 1;
  int grace_ms = 2000;
  bool stamp = false;  // read the clock for every message on both sides, as zbench's accounting does
};

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "nats-min: %s\n", why.c_str());
  std::exit(1);
}

int connect_to(const std::string& url) {
  auto rest = url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3);
  const auto colon = rest.rfind(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::atoi(rest.substr(colon + 1).c_str())));
  if (colon == std::string::npos || ::inet_pton(AF_INET, rest.substr(0, colon).c_str(), &a.sin_addr) != 1)
    die("--url must be nats://IPv4:PORT, not " + url);
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// To a socket (without SIGPIPE) or a pipe.
void write_all(int fd, const char* p, std::size_t n, bool socket = true) {
  while (n > 0) {
    const auto w = socket ? ::send(fd, p, n, MSG_NOSIGNAL) : ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) die(std::string("write: ") + std::strerror(errno));
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// One connection's input: a large buffer, frames parsed in place.
class reader {
public:
  explicit reader(int fd) : fd_(fd), buf_(1 << 20) {}
  // Reads once (blocking up to `timeout_ms`) and hands every complete frame to `fn`; false at the
  // timeout or when the server closed the connection.
  template <class Fn>
  bool read(int timeout_ms, Fn&& fn) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    if (end_ == buf_.size()) {  // a frame larger than what is left: move it to the front, grow if need be
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
      if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
    }
    const auto n = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
    if (n <= 0) return n < 0 && errno == EINTR;
    end_ += static_cast<std::size_t>(n);
    nats_min::frame f;
    for (;;) {
      const long used = nats_min::parse(buf_.data() + begin_, end_ - begin_, f);
      if (used == nats_min::bad)
        die("protocol error near '" + std::string(buf_.data() + begin_, std::min<std::size_t>(40, end_ - begin_)) +
            "'");
      if (used == nats_min::need_more) break;
      begin_ += static_cast<std::size_t>(used);
      if (f.what == nats_min::frame::kind::ping) write_all(fd_, "PONG\r\n", 6);
      if (f.what == nats_min::frame::kind::err)
        std::fprintf(stderr, "nats-min: %.*s\n", int(f.line.size()), f.line.data());
      fn(f);
    }
    if (begin_ == end_) begin_ = end_ = 0;
    else if (buf_.size() - end_ < buf_.size() / 8) {
      std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    return true;
  }
  // Sends PING and reads until its PONG: the server has handled everything sent before.
  void round_trip() {
    write_all(fd_, "PING\r\n", 6);
    bool pong = false;
    while (!pong)
      if (!read(10'000, [&pong](const nats_min::frame& f) { pong |= f.what == nats_min::frame::kind::pong; }))
        die("no PONG from nats-server within 10 s");
  }

private:
  int fd_;
  std::vector<char> buf_;
  std::size_t begin_ = 0, end_ = 0;
};

// Connects, and says CONNECT once the server's INFO came.
int open_connection(const std::string& url) {
  const int fd = connect_to(url);
  if (fd < 0) die("cannot connect to " + url + ": " + std::strerror(errno));
  return fd;
}

void hello(int fd, reader& in) {
  bool info = false;
  while (!info)
    if (!in.read(5000, [&info](const nats_min::frame& f) { info |= f.what == nats_min::frame::kind::info; }))
      die("no INFO from nats-server");
  const char connect[] = "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"nats-min\",\"lang\":\"c++\"}\r\n";
  write_all(fd, connect, sizeof connect - 1);
}

std::string subject(int k) {
  char s[32];
  std::snprintf(s, sizeof s, "bench.%07d", k);
  return s;
}

// The subscriber: counts (and under --rate times) messages until all came or none came for the
// grace period. Writes "first_ns last_ns received p50 p99 max" to `out`.
void subscriber(const config& c, int ready_fd, int out) {
  const int fd = open_connection(c.url);
  reader in(fd);
  hello(fd, in);
  const std::string sub = "SUB " + (c.subjects == 1 ? subject(0) : std::string("bench.*")) + " 1\r\n";
  write_all(fd, sub.data(), sub.size());
  in.round_trip();
  write_all(ready_fd, "r", 1, false);
  std::uint64_t received = 0, first = 0, last = 0;
  std::vector<std::uint64_t> latency;
  if (c.rate > 0) latency.reserve(c.msgs);
  const bool timed = c.rate > 0;
  std::uint64_t stamp_sum = 0;  // --stamp: kept so the clock reads are not optimised away
  while (received < c.msgs) {
    std::uint64_t now = 0;
    const bool got = in.read(c.grace_ms, [&](const nats_min::frame& f) {
      if (f.what != nats_min::frame::kind::msg) return;
      ++received;
      if (c.stamp) {
        now = now_ns();
        std::uint64_t t = 0;
        std::memcpy(&t, f.payload.data(), sizeof t);
        stamp_sum += now > t ? now - t : 0;
      } else if (timed) {
        if (now == 0) now = now_ns();  // one clock read per read() call: all these came together
        std::uint64_t t = 0;
        std::memcpy(&t, f.payload.data(), sizeof t);
        latency.push_back(now > t ? now - t : 0);
      }
    });
    if (!got) break;
    last = now != 0 ? now : now_ns();
    if (first == 0) first = last;
  }
  std::sort(latency.begin(), latency.end());
  const auto pct = [&latency](double q) {
    return latency.empty() ? 0
                           : latency[std::min(latency.size() - 1,
                                              static_cast<std::size_t>(q * static_cast<double>(latency.size())))];
  };
  const auto line = std::to_string(first) + " " + std::to_string(last) + " " + std::to_string(received) + " " +
                    std::to_string(pct(0.5)) + " " + std::to_string(pct(0.99)) + " " +
                    std::to_string(latency.empty() ? 0 : latency.back()) + "\n";
  write_all(out, line.data(), line.size(), false);
  if (c.stamp && received > 0)
    std::fprintf(stderr, "nats-min: mean latency %.1f us\n",
                 static_cast<double>(stamp_sum) / 1e3 / static_cast<double>(received));
}

void sleep_until(std::uint64_t t) {
  timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {}
}

// The publisher: PUBs formatted into one buffer, written when the next would not fit (as fast as
// possible), or as soon as the due ones are in (--rate). Writes "start_ns end_ns" to `out`.
void publisher(const config& c, int go_fd, int out) {
  const int fd = open_connection(c.url);
  reader in(fd);
  hello(fd, in);
  in.round_trip();
  std::vector<std::string> headers;  // "PUB <subject> <size>\r\n" of every subject
  for (int k = 0; k < c.subjects; ++k) headers.push_back("PUB " + subject(k) + " " + std::to_string(c.size) + "\r\n");
  std::string payload(c.size, 'x');
  payload += "\r\n";
  std::vector<char> buf(64 * 1024);
  std::size_t used = 0;
  char go = 0;
  if (::read(go_fd, &go, 1) != 1) die("no go");
  ::prctl(PR_SET_TIMERSLACK, 1UL);  // wake on schedule under --rate (the default slack is 50 us)
  const std::uint64_t start = now_ns();
  const double interval = c.rate > 0 ? 1e9 / c.rate : 0;
  for (std::uint64_t seq = 0; seq < c.msgs; ++seq) {
    const auto& h = headers[seq % headers.size()];
    if (used + h.size() + payload.size() > buf.size()) {
      write_all(fd, buf.data(), used);
      used = 0;
    }
    if (interval > 0) {
      const auto due = start + static_cast<std::uint64_t>(static_cast<double>(seq) * interval);
      if (due > now_ns()) {
        if (used > 0) write_all(fd, buf.data(), used);  // what is due goes out before we sleep
        used = 0;
        sleep_until(due);
      }
      std::memcpy(payload.data(), &due, sizeof due);  // latency counts from when it was due
    } else if (c.stamp) {
      const auto t = now_ns();
      std::memcpy(payload.data(), &t, sizeof t);
    }
    std::memcpy(buf.data() + used, h.data(), h.size());
    std::memcpy(buf.data() + used + h.size(), payload.data(), payload.size());
    used += h.size() + payload.size();
  }
  write_all(fd, buf.data(), used);
  const auto end = now_ns();
  in.round_trip();  // every PUB routed
  const auto line = std::to_string(start) + " " + std::to_string(end) + "\n";
  write_all(out, line.data(), line.size(), false);
}

std::string read_line(int fd) {
  std::string s;
  char ch = 0;
  while (::read(fd, &ch, 1) == 1 && ch != '\n') s += ch;
  return s;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    die("no free port");
  ::close(fd);
  return ntohs(a.sin_port);
}

pid_t start_server(const std::string& path, std::string& url) {
  const auto port = std::to_string(free_port());
  url = "nats://127.0.0.1:" + port;
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);  // its log is not ours
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(path.c_str(), "nats-server", "-a", "127.0.0.1", "-p", port.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  for (int i = 0; i < 500; ++i) {  // 10 s
    const int fd = connect_to(url);
    if (fd >= 0) {
      ::close(fd);
      return pid;
    }
    if (::waitpid(pid, nullptr, WNOHANG) == pid) die(path + " exited at start");
    ::usleep(20'000);
  }
  ::kill(pid, SIGTERM);
  die(path + " did not accept connections within 10 s");
}

struct outcome {
  double msgs_per_sec = 0, pub_per_sec = 0;
  std::uint64_t received = 0, p50 = 0, p99 = 0, max = 0;
};

outcome run(config c) {
  pid_t server = -1;
  if (!c.server.empty()) server = start_server(c.server, c.url);
  int ready[2], go[2], sub_out[2], pub_out[2];
  if (::pipe(ready) != 0 || ::pipe(go) != 0 || ::pipe(sub_out) != 0 || ::pipe(pub_out) != 0) die("pipe");
  const pid_t sub = ::fork();
  if (sub == 0) {
    for (int fd : {ready[0], go[0], go[1], sub_out[0], pub_out[0], pub_out[1]}) ::close(fd);
    subscriber(c, ready[1], sub_out[1]);
    ::_exit(0);
  }
  const pid_t pub = ::fork();
  if (pub == 0) {
    for (int fd : {ready[0], ready[1], go[1], sub_out[0], sub_out[1], pub_out[0]}) ::close(fd);
    publisher(c, go[0], pub_out[1]);
    ::_exit(0);
  }
  for (int fd : {ready[1], go[0], sub_out[1], pub_out[1]}) ::close(fd);
  const auto fail = [&](const char* why) {  // end everything this run started
    for (pid_t p : {pub, sub, server})
      if (p > 0) {
        ::kill(p, SIGTERM);
        ::waitpid(p, nullptr, 0);
      }
    die(why);
  };
  char r = 0;
  if (::read(ready[0], &r, 1) != 1) fail("the subscriber failed");
  write_all(go[1], "g", 1, false);
  std::uint64_t start = 0, end = 0, first = 0, last = 0;
  outcome o;
  if (std::sscanf(read_line(pub_out[0]).c_str(), "%" SCNu64 " %" SCNu64, &start, &end) != 2)
    fail("the publisher failed");
  if (std::sscanf(read_line(sub_out[0]).c_str(), "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                  &first, &last, &o.received, &o.p50, &o.p99, &o.max) != 6)
    fail("the subscriber failed");
  ::waitpid(pub, nullptr, 0);
  ::waitpid(sub, nullptr, 0);
  for (int fd : {ready[0], go[1], sub_out[0], pub_out[0]}) ::close(fd);
  if (server > 0) {
    ::kill(server, SIGTERM);
    ::waitpid(server, nullptr, 0);
  }
  o.msgs_per_sec = last > start ? static_cast<double>(o.received) * 1e9 / static_cast<double>(last - start) : 0;
  o.pub_per_sec = end > start ? static_cast<double>(c.msgs) * 1e9 / static_cast<double>(end - start) : 0;
  return o;
}

double number(int& i, int argc, char** argv) {
  if (i + 1 >= argc) die(std::string(argv[i]) + " needs a value");
  char* end = nullptr;
  const double v = std::strtod(argv[++i], &end);
  if (*end != '\0' || v < 0) die(std::string(argv[i - 1]) + ": not a number: " + argv[i]);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--url" && i + 1 < argc) c.url = argv[++i];
    else if (a == "--server" && i + 1 < argc) c.server = argv[++i];
    else if (a == "--msgs") c.msgs = static_cast<std::uint64_t>(number(i, argc, argv));
    else if (a == "--size") c.size = static_cast<std::size_t>(number(i, argc, argv));
    else if (a == "--subjects") c.subjects = static_cast<int>(number(i, argc, argv));
    else if (a == "--rate") c.rate = number(i, argc, argv);
    else if (a == "--runs") c.runs = static_cast<int>(number(i, argc, argv));
    else if (a == "--stamp") c.stamp = true;
    else if (a == "--grace") c.grace_ms = static_cast<int>(number(i, argc, argv));
    else {
      std::fprintf(stderr,
                   "usage: nats-min (--url nats://IP:PORT | --server PATH) [--msgs N] [--size BYTES] [--subjects K]\n"
                   "                [--rate MSGS_PER_S] [--stamp] [--runs N] [--grace MS]\n");
      return 2;
    }
  }
  if ((c.url.empty() == c.server.empty()) || c.msgs == 0 || c.subjects < 1 || c.runs < 1 || c.size < 8 ||
      c.size > 64 * 1024 - 64)
    die("give --url or --server; --msgs, --subjects, --runs at least 1; --size from 8 to 65472");
  std::vector<outcome> runs;
  const auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  for (int i = 0; i < c.runs; ++i) {
    runs.push_back(run(c));
    const auto& o = runs.back();
    std::printf("run %d: received %" PRIu64 " of %" PRIu64 ": %.0f msgs/s (publisher %.0f msgs/s)", i + 1, o.received,
                c.msgs, o.msgs_per_sec, o.pub_per_sec);
    if (c.rate > 0) std::printf("  latency p50 %.1f us p99 %.1f us max %.1f us", us(o.p50), us(o.p99), us(o.max));
    std::printf("\n");
  }
  // Each figure's median over the runs on its own, as zbench reports them.
  const auto median = [&runs](auto field) {
    std::vector<decltype(field(runs[0]))> v;
    for (const auto& o : runs) v.push_back(field(o));
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("nats-min median of %d: subjects %d size %zu msgs %" PRIu64 ": %.0f msgs/s", c.runs, c.subjects, c.size,
              c.msgs, median([](const outcome& o) { return o.msgs_per_sec; }));
  if (c.rate > 0)
    std::printf("  latency p50 %.1f us p99 %.1f us", us(median([](const outcome& o) { return o.p50; })),
                us(median([](const outcome& o) { return o.p99; })));
  std::printf("\n");
  bool lost = false;
  for (const auto& o : runs) lost |= o.received != c.msgs;
  return lost ? 1 : 0;
}
