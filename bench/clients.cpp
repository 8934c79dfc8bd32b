#include "clients.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "nats.hpp"
#include "zrelay/publisher.hpp"
#include "zrelay/subscriber.hpp"

namespace zbench {
namespace {

// The low 48 bits of a payload's second stamp word (see stamp_size): the sequence.
constexpr std::uint64_t seq_mask = (std::uint64_t{1} << 48) - 1;

// What a publisher sends through: the library's publisher (relay scenarios) or a raw PUB
// socket sending [topic][payload] (the direct and zmq-proxy baselines).
class sender {
public:
  virtual ~sender() = default;
  virtual void send(const std::string& topic, std::string_view payload) = 0;
  virtual void flush() = 0;
  virtual void service() {}
  virtual void finish() {}
  virtual void fill(client_result&) const {}
};

class library_sender : public sender {
public:
  library_sender(zmq::context_t& ctx, const zrelay::publisher_config& cfg) : pub_(ctx, cfg) { pub_.connect(); }
  void send(const std::string& topic, std::string_view payload) override { pub_.publish(topic, payload); }
  void flush() override { pub_.flush(); }
  void service() override { pub_.service(); }
  void finish() override {
    if (!pub_.drain(std::chrono::seconds(60))) throw std::runtime_error("acknowledgments still missing after 60 s");
  }
  void fill(client_result& r) const override {
    r.acked = pub_.stats().acked;
    r.nacked = pub_.stats().nacked;
    r.retried = pub_.stats().retried;
  }

private:
  zrelay::publisher pub_;
};

class raw_sender : public sender {
public:
  raw_sender(zmq::context_t& ctx, const std::vector<std::string>& endpoints) : sock_(ctx, zmq::socket_type::pub) {
    sock_.set(zmq::sockopt::sndhwm, 10000);
    sock_.set(zmq::sockopt::linger, 2000);
    for (const auto& ep : endpoints) sock_.connect(ep);
  }
  void send(const std::string& topic, std::string_view payload) override {
    (void)sock_.send(zmq::buffer(topic), zmq::send_flags::sndmore);
    (void)sock_.send(zmq::buffer(payload.data(), payload.size()), zmq::send_flags::none);
  }
  void flush() override {}

private:
  zmq::socket_t sock_;
};

// nats-server's core protocol: PUBs coalesced in 64 KiB writes, as NATS clients do. (--size
// was checked against the server's max_payload before any client started: see nats_middle.)
class nats_sender : public sender {
public:
  explicit nats_sender(const std::string& url) : conn_(url, std::chrono::seconds(5)) {}
  void send(const std::string& topic, std::string_view payload) override { conn_.publish(topic, payload); }
  void flush() override { conn_.flush(); }
  void service() override { conn_.service(); }
  // The PONG comes after the server has routed every PUB before the PING: the counterpart of
  // waiting for the relay's acknowledgments.
  void finish() override {
    if (!conn_.round_trip(std::chrono::seconds(60)))
      throw std::runtime_error("no PONG from nats-server within 60 s" +
                               (conn_.error().empty() ? std::string() : ": " + conn_.error()));
  }

private:
  nats::connection conn_;
};

void sleep_until_ns(std::uint64_t t) {
  timespec ts{static_cast<time_t>(t / 1'000'000'000), static_cast<long>(t % 1'000'000'000)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {}
}

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) > 0;
}

}  // namespace

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

void stop_child(pid_t pid, std::chrono::milliseconds grace) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  int status = 0;
  const auto until = std::chrono::steady_clock::now() + grace;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool line_reader::next(std::string& line, bool& eof) {
  eof = false;
  for (;;) {
    const auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      return true;
    }
    if (!readable(fd_, 0)) return false;
    char tmp[4096];
    const auto n = ::read(fd_, tmp, sizeof tmp);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      eof = true;
      return false;
    }
    buf_.append(tmp, static_cast<std::size_t>(n));
  }
}

void write_line(int fd, const std::string& line) {
  const std::string out = line + "\n";
  std::size_t done = 0;
  while (done < out.size()) {
    const auto n = ::write(fd, out.data() + done, out.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

std::string topic_name(std::uint64_t k) {
  char name[32];
  std::snprintf(name, sizeof name, "bench.%07llu", static_cast<unsigned long long>(k));
  return name;
}

std::vector<std::string> topic_names(int n) {
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(std::max(n, 0)));
  for (int k = 0; k < n; ++k) names.push_back(topic_name(static_cast<std::uint64_t>(k)));
  return names;
}

std::string encode_result(const client_result& r) {
  std::ostringstream o;
  o << r.role << ' ' << r.index << ' ' << r.sent << ' ' << r.acked << ' ' << r.nacked << ' ' << r.retried << ' '
    << r.received << ' ' << r.lost << ' ' << r.duplicates << ' ' << r.start_ns << ' ' << r.end_ns << ' '
    << r.latency.serialize();
  return o.str();
}

client_result decode_result(const std::string& text) {
  client_result r;
  std::istringstream in(text);
  std::string hist;
  in >> r.role >> r.index >> r.sent >> r.acked >> r.nacked >> r.retried >> r.received >> r.lost >> r.duplicates >>
      r.start_ns >> r.end_ns >> hist;
  r.latency = histogram::parse(hist);
  return r;
}

void run_publisher(const options& opt, const wiring& w, int index, const channel& ch) {
  client_result res;
  res.role = "pub";
  res.index = index;
  try {
    zmq::context_t ctx(1);
    std::unique_ptr<sender> out;
    if (w.scenario == "relay" || w.scenario == "relay-ack") {
      zrelay::publisher_config c;
      c.mode = w.scenario == "relay-ack" ? zrelay::delivery::acked : zrelay::delivery::batched;
      (c.mode == zrelay::delivery::acked ? c.ack_endpoint : c.pub_endpoint) = w.pub_endpoint;
      c.max_inflight = opt.max_inflight;
      c.connect_timeout = std::chrono::seconds(5);
      c.subscription_wait = std::chrono::milliseconds(0);
      c.hwm = 10000;
      out = std::make_unique<library_sender>(ctx, c);
    } else if (w.scenario == "direct") {
      out = std::make_unique<raw_sender>(ctx, w.sub_endpoints);
    } else if (w.scenario == "nats") {
      out = std::make_unique<nats_sender>(w.pub_endpoint);
    } else {
      out = std::make_unique<raw_sender>(ctx, std::vector<std::string>{w.pub_endpoint});
    }
    const auto topics = topic_names(opt.topics);
    std::string payload(opt.size, 'x');  // opt.size >= stamp_size: main() rejects less
    const auto stamp = [&payload, index](std::uint64_t t, std::uint64_t seq) {
      const std::uint64_t id = (static_cast<std::uint64_t>(index) << 48) | seq;
      std::memcpy(payload.data(), &t, 8);
      std::memcpy(payload.data() + 8, &id, 8);
    };

    // Probe until the parent says every subscriber hears us. On the last topic: subscriptions
    // are sent and applied in order, so once it matches, every topic does.
    line_reader ctl(ch.from_parent);
    std::string line;
    bool eof = false;
    const auto probe_deadline = now_ns() + 30'000'000'000ull;
    for (;;) {
      stamp(now_ns(), 0);
      out->send(topics.back(), payload);
      out->flush();
      out->service();
      if (readable(ch.from_parent, 10) && ctl.next(line, eof) && line == "go") break;
      if (eof || now_ns() > probe_deadline) throw std::runtime_error("no go from the parent within 30 s");
    }

    ::prctl(PR_SET_TIMERSLACK, 1UL);  // wake on schedule (the default slack is 50 µs)
    const std::uint64_t start = now_ns();
    const std::uint64_t stop_at = opt.duration > 0 ? start + static_cast<std::uint64_t>(opt.duration * 1e9) : 0;
    const double interval = opt.rate > 0 ? 1e9 / opt.rate : 0;
    std::uint64_t seq = 0;
    std::uint64_t next_progress = start + 100'000'000;
    for (;;) {
      if (stop_at == 0 && seq >= opt.msgs) break;
      std::uint64_t t = now_ns();
      if (stop_at != 0 && t >= stop_at) break;
      if (interval > 0) {
        // Open loop: message n is due at start + n * interval, whatever happened before, and its
        // latency counts from then (so a stall is not hidden by sending later).
        const auto due = start + static_cast<std::uint64_t>(static_cast<double>(seq) * interval);
        if (due > t) {
          out->flush();
          out->service();
          // Sleep, not spin: on a 2-core machine a spinning publisher takes the core the relay needs.
          sleep_until_ns(due);
        }
        t = due;
      }
      ++seq;
      stamp(t, seq);
      out->send(topics[static_cast<std::size_t>((seq / opt.topic_run) % topics.size())], payload);
      if ((seq & 4095) == 0 && t >= next_progress) {
        write_line(ch.to_parent, "progress " + std::to_string(seq));
        next_progress = t + 100'000'000;
      }
    }
    out->flush();
    res.end_ns = now_ns();
    out->finish();
    res.start_ns = start;
    res.sent = seq;
    out->fill(res);
    write_line(ch.to_parent, "result " + encode_result(res));
  } catch (const std::exception& e) {
    write_line(ch.to_parent, std::string("error publisher ") + std::to_string(index) + ": " + e.what());
  }
}

namespace {

// The per-message accounting every subscriber kind shares: probes, loss and duplicates from the
// sequence numbers, latency from the send stamp.
class tally {
public:
  tally(std::size_t pubs, client_result& res)
      : pubs_(pubs), next_(pubs, 1), sent_(pubs, 0), heard_(pubs, false), res_(res) {}

  void on_payload(std::string_view payload) {
    if (payload.size() < stamp_size) return;
    std::uint64_t t = 0, id = 0;
    std::memcpy(&t, payload.data(), 8);
    std::memcpy(&id, payload.data() + 8, 8);
    const auto p = static_cast<std::size_t>(id >> 48);
    const auto seq = id & seq_mask;
    if (p >= pubs_) return;
    if (seq == 0) {
      if (!heard_[p]) {
        heard_[p] = true;
        ++heard_count_;
      }
      return;
    }
    const auto now = now_ns();
    if (first_ == 0) first_ = now;
    last_ = now;
    if (seq < next_[p]) {
      ++res_.duplicates;
      return;
    }
    if (seq > next_[p]) res_.lost += seq - next_[p];
    next_[p] = seq + 1;
    ++res_.received;
    res_.latency.record(now > t ? now - t : 0);
  }
  /// Every publisher's probe arrived.
  bool heard_all() const { return heard_count_ == pubs_; }
  /// The counts of the parent's "end N0 N1 …".
  void set_sent(const std::string& counts) {
    std::istringstream in(counts);
    for (auto& s : sent_) in >> s;
  }
  bool complete() const {
    for (std::size_t p = 0; p < pubs_; ++p)
      if (next_[p] <= sent_[p]) return false;
    return true;
  }
  std::uint64_t received() const { return res_.received; }
  /// Whatever never arrived counts as lost; the window is first to last receive.
  void finish() {
    for (std::size_t p = 0; p < pubs_; ++p)
      if (next_[p] <= sent_[p]) res_.lost += sent_[p] - (next_[p] - 1);
    res_.start_ns = first_;
    res_.end_ns = last_;
  }

private:
  std::size_t pubs_;
  std::vector<std::uint64_t> next_, sent_;
  std::vector<bool> heard_;
  std::size_t heard_count_ = 0;
  std::uint64_t first_ = 0, last_ = 0;
  client_result& res_;
};

// Why a subscriber's wait for messages returned.
enum class waited { delivered, timeout, woken, closed };

// The subscriber's side of the control protocol, the same for every kind: "ready" once every
// publisher's probe arrived; after "end", on until everything is in, the connection is gone, or
// nothing arrived for --grace.
void subscriber_loop(const options& opt, const channel& ch, tally& t,
                     const std::function<waited(std::chrono::milliseconds)>& wait) {
  bool ready = false, ended = false;
  line_reader ctl(ch.from_parent);
  std::string line;
  bool eof = false;
  std::uint64_t idle_since = 0;
  const auto grace_ns = static_cast<std::uint64_t>(opt.grace.count()) * 1'000'000ull;
  for (;;) {
    const auto r = wait(std::chrono::milliseconds(ended ? 50 : 100));
    if (!ready && t.heard_all()) {
      ready = true;
      write_line(ch.to_parent, "ready");
    }
    if (r == waited::woken) {
      while (ctl.next(line, eof)) {
        if (line.rfind("end", 0) == 0) {
          t.set_sent(line.substr(3));
          ended = true;
          idle_since = now_ns();
        }
      }
      if (eof) throw std::runtime_error("the parent went away");
    }
    if (ended) {
      if (t.complete()) break;
      if (r == waited::closed) break;  // nothing more can arrive: the rest counts as lost
      if (r == waited::delivered) idle_since = now_ns();
      if (now_ns() - idle_since > grace_ns) break;
    }
  }
  t.finish();
}

// The nats subscriber: SUB to every subject, and a PING/PONG so the subscriptions are in place
// before the publishers' probes can count.
void run_nats_subscriber(const options& opt, const wiring& w, int index, const channel& ch, tally& t) {
  nats::connection conn(w.sub_endpoint, std::chrono::seconds(5));
  conn.on_message([&t](std::string_view payload) { t.on_payload(payload); });
  int sid = 0;
  for (const auto& topic : topic_names(opt.topics)) conn.subscribe(topic, ++sid);
  if (!conn.round_trip(std::chrono::seconds(5)))
    throw std::runtime_error("nats-server did not confirm the subscriptions within 5 s" +
                             (conn.error().empty() ? std::string() : ": " + conn.error()));
  bool told = false;
  subscriber_loop(opt, ch, t, [&](std::chrono::milliseconds timeout) {
    switch (conn.receive(timeout, ch.from_parent)) {
      case nats::connection::result::delivered: return waited::delivered;
      case nats::connection::result::woken: return waited::woken;
      case nats::connection::result::timeout: return waited::timeout;
      case nats::connection::result::closed: break;
    }
    if (!t.heard_all()) throw std::runtime_error("nats-server closed the connection: " + conn.error());
    // nats-server cuts a subscriber that falls behind (a slow consumer) instead of slowing the
    // publisher; say so, since the only other trace is the loss count.
    if (!told) {
      std::cerr << "zbench: nats subscriber " << index << ": " << conn.error() << " after " << t.received()
                << " messages; the rest counts as lost\n";
      told = true;
    }
    return waited::closed;
  });
}

}  // namespace

void run_subscriber(const options& opt, const wiring& w, int index, const channel& ch) {
  client_result res;
  res.role = "sub";
  res.index = index;
  try {
    tally t(static_cast<std::size_t>(opt.pubs), res);
    if (w.scenario == "nats") {
      run_nats_subscriber(opt, w, index, ch, t);
      write_line(ch.to_parent, "result " + encode_result(res));
      return;
    }
    zmq::context_t ctx(1);
    zrelay::subscriber_config c;
    c.bind = w.scenario == "direct";
    c.endpoint = c.bind ? "tcp://127.0.0.1:*" : w.sub_endpoint;
    c.topics = topic_names(opt.topics);
    c.connect_timeout = std::chrono::seconds(5);
    c.hwm = 10000;
    zrelay::subscriber sub(ctx, c);
    sub.connect();
    if (c.bind) write_line(ch.to_parent, "endpoint " + sub.endpoint());

    const auto on_message = [&t](const zrelay::message_view& m) {
      t.on_payload(m.payload);
      return true;
    };
    subscriber_loop(opt, ch, t, [&](std::chrono::milliseconds timeout) {
      switch (sub.receive(timeout, on_message, ch.from_parent)) {
        case zrelay::subscriber::result::delivered: return waited::delivered;
        case zrelay::subscriber::result::woken: return waited::woken;
        default: return waited::timeout;  // `stopped` cannot happen: on_message never stops
      }
    });
    write_line(ch.to_parent, "result " + encode_result(res));
  } catch (const std::exception& e) {
    write_line(ch.to_parent, std::string("error subscriber ") + std::to_string(index) + ": " + e.what());
  }
}

}  // namespace zbench
