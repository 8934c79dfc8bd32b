// subprop: how long a subscription takes to travel through relays, hop by hop (bench/federation).
//
// A SUB socket connects to one relay's subscriber port (its XPUB, --sub). Raw XPUB sockets connect
// to the publisher ports (XSUB, --watch, in hop order) of that relay and of the relays beyond it: a
// relay without a journal passes each new subscription on to its XSUB's peers, so the moment
// "\x01PREFIX" arrives at a watcher is when that relay had learned of the interest. For each of
// --count distinct prefixes the SUB subscribes and the time until every watcher has seen it is
// taken, then it unsubscribes and the same is taken for "\x00PREFIX". Times are from the SUB's
// setsockopt; "hop k" is watcher k's time minus watcher k-1's, per prefix. Percentiles by rank.
//
//   subprop --sub tcp://127.0.0.1:A --watch tcp://127.0.0.1:B [--watch tcp://127.0.0.1:C] [--count 1000]
//
// With --await PREFIX instead of --sub it only waits (--timeout) until every watcher has seen
// "\x01PREFIX" (an XSUB hands a new peer every subscription it holds): exit status 0, or 1 at the
// deadline. bench/federation starts a pipe's zpub once the relay at the publisher's end has learned
// of the zsub at the other.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <zmq.hpp>

namespace {

using clock_type = std::chrono::steady_clock;

struct config {
  std::string sub;
  std::string await;  // --await: only wait for this prefix
  std::vector<std::string> watch;
  int count = 1000;
  int timeout_ms = 5000;  // for one change to reach every watcher
};

// The value at rank ceil(q * n) of the sorted samples (q = 0.5: the median).
double rank(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  auto k = static_cast<std::size_t>(q * static_cast<double>(v.size()) + 0.999999);
  k = std::clamp<std::size_t>(k, 1, v.size());
  return v[k - 1];
}

// Waits until every watcher has received `want` (other messages are skipped); fills each one's
// arrival time in microseconds after `t0`. False at the deadline.
bool await_all(std::vector<zmq::socket_t>& watchers, const std::string& want, clock_type::time_point t0,
               std::vector<double>& us, int timeout_ms) {
  std::vector<bool> seen(watchers.size(), false);
  std::size_t left = watchers.size();
  const auto deadline = t0 + std::chrono::milliseconds(timeout_ms);
  std::vector<zmq::pollitem_t> items;
  for (auto& w : watchers) items.push_back({w.handle(), 0, ZMQ_POLLIN, 0});
  while (left > 0) {
    const auto now = clock_type::now();
    if (now > deadline) return false;
    zmq::poll(items.data(), items.size(), std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
    const auto at = clock_type::now();
    for (std::size_t i = 0; i < watchers.size(); ++i) {
      if (!(items[i].revents & ZMQ_POLLIN)) continue;
      zmq::message_t m;
      while (watchers[i].recv(m, zmq::recv_flags::dontwait)) {
        if (seen[i] || m.to_string() != want) continue;
        seen[i] = true;
        --left;
        us[i] = std::chrono::duration<double, std::micro>(at - t0).count();
      }
    }
  }
  return true;
}

void print(const char* what, const std::vector<std::vector<double>>& at, const config& c) {
  for (std::size_t k = 0; k < c.watch.size(); ++k) {
    std::vector<double> hop;
    for (const auto& s : at) hop.push_back(k == 0 ? s[0] : s[k] - s[k - 1]);
    std::vector<double> total;
    for (const auto& s : at) total.push_back(s[k]);
    std::printf("%s hop %zu (%s): n %zu  hop median %.1f us p99 %.1f us max %.1f us  from the SUB: median %.1f us "
                "p99 %.1f us\n",
                what, k + 1, c.watch[k].c_str(), hop.size(), rank(hop, 0.5), rank(hop, 0.99), rank(hop, 1.0),
                rank(total, 0.5), rank(total, 0.99));
  }
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: subprop (--sub EP | --await PREFIX) --watch EP [--watch EP ...] [--count N] [--timeout MS]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  config c;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--sub") c.sub = argv[++i];
    else if (a == "--watch") c.watch.emplace_back(argv[++i]);
    else if (a == "--await") c.await = argv[++i];
    else if (a == "--count") c.count = std::atoi(argv[++i]);
    else if (a == "--timeout") c.timeout_ms = std::atoi(argv[++i]);
    else usage();
  }
  if (c.sub.empty() == c.await.empty() || c.watch.empty() || c.count < 1 || c.timeout_ms < 1) usage();
  try {
    zmq::context_t ctx(1);
    std::vector<zmq::socket_t> watchers;
    for (const auto& ep : c.watch) {
      watchers.emplace_back(ctx, zmq::socket_type::xpub);
      watchers.back().set(zmq::sockopt::linger, 0);
      watchers.back().set(zmq::sockopt::rcvhwm, 0);
      watchers.back().connect(ep);
    }
    std::vector<double> us(watchers.size(), 0);
    if (!c.await.empty()) {
      if (await_all(watchers, std::string(1, '\1') + c.await, clock_type::now(), us, c.timeout_ms)) return 0;
      std::fprintf(stderr, "subprop: no subscription to '%s' reached every watcher within %d ms\n", c.await.c_str(),
                   c.timeout_ms);
      return 1;
    }
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::sndhwm, 0);
    sub.connect(c.sub);
    // Every connection is up and the path works before anything is timed: a first prefix, not
    // counted, given 10 s (connecting and the relays' links settling).
    const std::string tag = "subprop." + std::to_string(::getpid()) + ".";
    sub.set(zmq::sockopt::subscribe, tag + "warmup");
    if (!await_all(watchers, std::string(1, '\1') + tag + "warmup", clock_type::now(), us, 10000)) {
      std::fprintf(stderr, "subprop: the first subscription did not reach every watcher within 10 s\n");
      return 1;
    }
    std::vector<std::vector<double>> subs, unsubs;
    for (int i = 0; i < c.count; ++i) {
      const auto prefix = tag + std::to_string(i) + ".";
      for (const bool on : {true, false}) {
        const auto t0 = clock_type::now();
        if (on) sub.set(zmq::sockopt::subscribe, prefix);
        else sub.set(zmq::sockopt::unsubscribe, prefix);
        if (!await_all(watchers, std::string(1, on ? '\1' : '\0') + prefix, t0, us, c.timeout_ms)) {
          std::fprintf(stderr, "subprop: %s '%s' did not reach every watcher within %d ms\n",
                       on ? "subscribing to" : "unsubscribing from", prefix.c_str(), c.timeout_ms);
          return 1;
        }
        (on ? subs : unsubs).push_back(us);
      }
    }
    print("subscribe", subs, c);
    print("unsubscribe", unsubs, c);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "subprop: %s\n", e.what());
    return 1;
  }
}
