#include "clients.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <vector>

#include <zmq.hpp>

#include "zrelay/publisher.hpp"
#include "zrelay/subscriber.hpp"

namespace zbench {
namespace {

// Every payload starts with 16 bytes: the send time (ns, the scheduled one under --rate) and
// (publisher index << 48 | sequence). Sequence 0 is a probe, sent until the run starts.
constexpr std::size_t stamp_size = 16;
constexpr std::uint64_t seq_mask = (std::uint64_t{1} << 48) - 1;

std::string topic_name(std::uint64_t k) { return "bench." + std::to_string(k); }

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
      c.acked = w.scenario == "relay-ack";
      (c.acked ? c.ack_endpoint : c.pub_endpoint) = w.pub_endpoint;
      c.max_inflight = opt.max_inflight;
      c.connect_timeout = std::chrono::seconds(5);
      c.subscription_wait = std::chrono::milliseconds(0);
      c.hwm = 10000;
      out = std::make_unique<library_sender>(ctx, c);
    } else if (w.scenario == "direct") {
      out = std::make_unique<raw_sender>(ctx, w.sub_endpoints);
    } else {
      out = std::make_unique<raw_sender>(ctx, std::vector<std::string>{w.pub_endpoint});
    }
    std::vector<std::string> topics;
    for (int k = 0; k < opt.topics; ++k) topics.push_back(topic_name(static_cast<std::uint64_t>(k)));
    std::string payload(std::max(opt.size, stamp_size), 'x');
    const auto stamp = [&payload, index](std::uint64_t t, std::uint64_t seq) {
      const std::uint64_t id = (static_cast<std::uint64_t>(index) << 48) | seq;
      std::memcpy(payload.data(), &t, 8);
      std::memcpy(payload.data() + 8, &id, 8);
    };

    // Probe until the parent says every subscriber hears us.
    line_reader ctl(ch.from_parent);
    std::string line;
    bool eof = false;
    const auto probe_deadline = now_ns() + 30'000'000'000ull;
    for (;;) {
      stamp(now_ns(), 0);
      out->send(topics[0], payload);
      out->flush();
      out->service();
      if (readable(ch.from_parent, 10) && ctl.next(line, eof) && line == "go") break;
      if (eof || now_ns() > probe_deadline) throw std::runtime_error("no go from the parent within 30 s");
    }

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
          if (due - t > 200'000) sleep_until_ns(due - 100'000);
          while (now_ns() < due) {}
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

void run_subscriber(const options& opt, const wiring& w, int index, const channel& ch) {
  client_result res;
  res.role = "sub";
  res.index = index;
  try {
    zmq::context_t ctx(1);
    zrelay::subscriber_config c;
    c.bind = w.scenario == "direct";
    c.endpoint = c.bind ? "tcp://127.0.0.1:*" : w.sub_endpoint;
    for (int k = 0; k < opt.topics; ++k) c.topics.push_back(topic_name(static_cast<std::uint64_t>(k)));
    c.connect_timeout = std::chrono::seconds(5);
    c.hwm = 10000;
    zrelay::subscriber sub(ctx, c);
    sub.connect();
    if (c.bind) write_line(ch.to_parent, "endpoint " + sub.endpoint());

    const auto pubs = static_cast<std::size_t>(opt.pubs);
    std::vector<std::uint64_t> next(pubs, 1), sent(pubs, 0);
    std::vector<bool> heard(pubs, false);
    std::size_t heard_count = 0;
    bool ready = false, ended = false;
    std::uint64_t first = 0, last = 0;
    const auto on_message = [&](const zrelay::message_view& m) {
      if (m.payload.size() < stamp_size) return true;
      std::uint64_t t = 0, id = 0;
      std::memcpy(&t, m.payload.data(), 8);
      std::memcpy(&id, m.payload.data() + 8, 8);
      const auto p = static_cast<std::size_t>(id >> 48);
      const auto seq = id & seq_mask;
      if (p >= pubs) return true;
      if (seq == 0) {
        if (!heard[p]) {
          heard[p] = true;
          ++heard_count;
        }
        return true;
      }
      const auto now = now_ns();
      if (first == 0) first = now;
      last = now;
      if (seq < next[p]) {
        ++res.duplicates;
        return true;
      }
      if (seq > next[p]) res.lost += seq - next[p];
      next[p] = seq + 1;
      ++res.received;
      res.latency.record(now > t ? now - t : 0);
      return true;
    };
    const auto complete = [&] {
      for (std::size_t p = 0; p < pubs; ++p)
        if (next[p] <= sent[p]) return false;
      return true;
    };
    line_reader ctl(ch.from_parent);
    std::string line;
    bool eof = false;
    std::uint64_t idle_since = 0;
    const auto grace_ns = static_cast<std::uint64_t>(opt.grace.count()) * 1'000'000ull;
    for (;;) {
      const auto r = sub.receive(std::chrono::milliseconds(ended ? 50 : 100), on_message, ch.from_parent);
      if (!ready && heard_count == pubs) {
        ready = true;
        write_line(ch.to_parent, "ready");
      }
      if (r == zrelay::subscriber::result::woken) {
        while (ctl.next(line, eof)) {
          if (line.rfind("end", 0) == 0) {
            std::istringstream in(line.substr(3));
            for (auto& s : sent) in >> s;
            ended = true;
            idle_since = now_ns();
          }
        }
        if (eof) throw std::runtime_error("the parent went away");
      }
      if (ended) {
        if (complete()) break;
        if (r == zrelay::subscriber::result::delivered) idle_since = now_ns();
        if (now_ns() - idle_since > grace_ns) break;
      }
    }
    for (std::size_t p = 0; p < pubs; ++p)
      if (next[p] <= sent[p]) res.lost += sent[p] - (next[p] - 1);
    res.start_ns = first;
    res.end_ns = last;
    write_line(ch.to_parent, "result " + encode_result(res));
  } catch (const std::exception& e) {
    write_line(ch.to_parent, std::string("error subscriber ") + std::to_string(index) + ": " + e.what());
  }
}

}  // namespace zbench
