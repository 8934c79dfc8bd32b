#include "clients.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
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

void sleep_until_ns(std::uint64_t t);

// Waits for `fd` to become readable, at most until `t` (monotonic ns, to the nanosecond: poll's
// milliseconds would be coarser than the send interval at 10 000 msg/s).
void wait_readable_until_ns(int fd, std::uint64_t t) {
  const auto now = now_ns();
  if (now >= t) return;
  const auto left = t - now;
  timespec ts{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
  pollfd p{fd, POLLIN, 0};
  ::ppoll(&p, 1, &ts, nullptr);
}

// When each measured message of an acked run was sent (or due), until its acknowledgment is
// seen: the publisher's ack latency. A ring indexed by sequence, larger than the window, so a
// slot is not reused while its message is in flight. The caller reads the clock once for all the
// acknowledgments one reply (or one read) brought: a clock read per message would cost the
// publisher a fifth of its time at millions of messages a second.
class ack_clock {
public:
  explicit ack_clock(std::size_t window) {
    std::size_t n = 1024;
    while (n < window) n <<= 1;
    ring_.assign(n, 0);
  }
  void sent(std::uint64_t seq, std::uint64_t t) { ring_[seq & (ring_.size() - 1)] = t; }
  void acked(std::uint64_t seq, std::uint64_t now) {
    const auto t = ring_[seq & (ring_.size() - 1)];
    latency_.record(now > t ? now - t : 0);
    last_ = now;
  }
  void fill(client_result& r) const {
    r.ack_latency = latency_;
    r.ack_end_ns = last_;
  }

private:
  std::vector<std::uint64_t> ring_;
  histogram latency_;
  std::uint64_t last_ = 0;
};

// What a publisher sends through: the library's publisher (relay scenarios), a raw PUB socket
// sending [topic][payload] (the direct and zmq-proxy baselines), or a NATS connection. `seq` is
// the message's sequence (0: a probe, before the run), `t` its send (or due) time.
class sender {
public:
  virtual ~sender() = default;
  virtual void send(const std::string& topic, std::string_view payload, std::uint64_t seq, std::uint64_t t) = 0;
  virtual void flush() = 0;
  virtual void service() {}
  /// Under --rate, until the next message is due: an acked sender notes acknowledgments meanwhile.
  virtual void wait_until(std::uint64_t t) { sleep_until_ns(t); }
  virtual void finish() {}
  virtual void fill(client_result&) const {}
};

class library_sender : public sender {
public:
  library_sender(zmq::context_t& ctx, const zrelay::publisher_config& cfg)
      : pub_(ctx, cfg),
        acked_(cfg.mode == zrelay::delivery::acked),
        clock_(cfg.max_inflight + cfg.max_open_bytes / (zrelay::wire::record_prefix_size + stamp_size) + 65536) {
    pub_.connect();
  }
  void send(const std::string& topic, std::string_view payload, std::uint64_t seq, std::uint64_t t) override {
    if (seq == 1) base_ = pub_.stats().published;  // the probes before it are acknowledged first
    if (seq > 0) {
      clock_.sent(seq, t);
      last_sent_ = seq;
    }
    pub_.publish(topic, payload);
    note_acks();
  }
  void flush() override { pub_.flush(); }
  void service() override {
    pub_.service();
    note_acks();
  }
  // Wakes for each reply, so that an acknowledgment's time is when it came, not the next send.
  // ZMQ_FD only tells that the socket's state may have changed: ZMQ_EVENTS says whether a reply
  // is waiting (after service() read them all, the descriptor signals the next one).
  void wait_until(std::uint64_t t) override {
    if (!acked_) {
      sleep_until_ns(t);
      return;
    }
    void* sock = pub_.poll_item().socket;
    int fd = -1;
    std::size_t len = sizeof fd;
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) != 0) {
      sleep_until_ns(t);
      return;
    }
    while (now_ns() < t) {
      int events = 0;
      len = sizeof events;
      if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN) != 0) {
        service();
        continue;
      }
      wait_readable_until_ns(fd, t);
      service();
    }
  }
  // drain(), with the acknowledgments noted as they come.
  void finish() override {
    pub_.flush();
    if (!acked_) return;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (pub_.outstanding() > 0) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("acknowledgments still missing after 60 s");
      zmq::pollitem_t item = pub_.poll_item();
      zmq::poll(&item, 1, std::max(pub_.next_timeout(), std::chrono::milliseconds(1)));
      service();
    }
  }
  void fill(client_result& r) const override {
    r.acked = pub_.stats().acked;
    r.nacked = pub_.stats().nacked;
    r.retried = pub_.stats().retried;
    if (acked_) clock_.fill(r);
  }

private:
  // published() - outstanding() messages are done (acknowledged or refused for good). With one
  // topic they finish in the order they were published, so those are the first ones; with
  // interleaved topics (one open batch per topic) a topic's batch may go before an older message
  // of another, and the k-th acknowledgment is credited to the k-th message sent: the latency
  // distribution by completion order, not exact per message. The ring holds the window and
  // every message the open batches can hold (records of stamp_size bytes at least).
  void note_acks() {
    if (!acked_ || last_sent_ == 0) return;
    const auto done = pub_.stats().published - pub_.outstanding();
    if (next_ack_ > last_sent_ || base_ + next_ack_ > done) return;
    const auto now = now_ns();
    while (next_ack_ <= last_sent_ && base_ + next_ack_ <= done) clock_.acked(next_ack_++, now);
  }

  zrelay::publisher pub_;
  bool acked_;
  ack_clock clock_;
  std::uint64_t base_ = 0;  // messages published before sequence 1 (the probes)
  std::uint64_t last_sent_ = 0, next_ack_ = 1;
};

class raw_sender : public sender {
public:
  raw_sender(zmq::context_t& ctx, const std::vector<std::string>& endpoints) : sock_(ctx, zmq::socket_type::pub) {
    sock_.set(zmq::sockopt::sndhwm, 10000);
    sock_.set(zmq::sockopt::linger, 2000);
    for (const auto& ep : endpoints) sock_.connect(ep);
  }
  void send(const std::string& topic, std::string_view payload, std::uint64_t, std::uint64_t) override {
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
  void send(const std::string& topic, std::string_view payload, std::uint64_t, std::uint64_t) override {
    conn_.publish(topic, payload);
  }
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

// JetStream's acknowledged publish, as NATS clients publish asynchronously: every PUB carries a
// reply subject of its own (the inbox and the message's sequence), JetStream answers each once
// it has stored the message with a PubAck ({"stream":…,"seq":…}) or an error ({"error":…}), and
// at most `window` publishes wait for their answer (nats.go's PublishAsync has a window too). The
// PUBs are coalesced in 64 KiB writes and the answers read between writes, without a thread of
// their own. Probes go without a reply subject: stored, not acknowledged.
class nats_js_sender : public sender {
public:
  nats_js_sender(const std::string& url, std::size_t window, std::size_t size, int index)
      : conn_(url, std::chrono::seconds(5)),
        window_(window),
        clock_(window),
        inbox_("_INBOX.zbench" + std::to_string(::getpid()) + "_" + std::to_string(index) + "."),
        read_every_(std::max<std::size_t>(1, (64 << 10) / (size + 64))) {
    conn_.on_message([this](std::string_view subject, std::string_view payload) { on_answer(subject, payload); });
    conn_.subscribe(inbox_ + "*", 1);
    if (!conn_.round_trip(std::chrono::seconds(5)))
      throw std::runtime_error("nats-server did not confirm the reply subscription within 5 s" + error_suffix());
  }
  void send(const std::string& topic, std::string_view payload, std::uint64_t seq, std::uint64_t t) override {
    if (seq == 0) {
      conn_.publish(topic, payload);
      return;
    }
    if (pending_ >= window_) {
      const auto deadline = now_ns() + 60'000'000'000ull;
      while (pending_ >= window_) wait(deadline, "a free slot in the window");
    }
    clock_.sent(seq, t);
    reply_.assign(inbox_).append(std::to_string(seq));
    conn_.publish(topic, reply_, payload);
    ++pending_;
    if (++since_read_ >= read_every_) {
      since_read_ = 0;
      conn_.poll_input();
    }
  }
  void flush() override { conn_.flush(); }
  void service() override { conn_.service(); }
  void wait_until(std::uint64_t t) override {
    conn_.flush();
    while (now_ns() < t) {
      wait_readable_until_ns(conn_.fd(), t);
      conn_.poll_input();
    }
  }
  void finish() override {
    const auto deadline = now_ns() + 60'000'000'000ull;
    while (pending_ > 0) wait(deadline, "the last acknowledgments");
    if (nacked_ > 0)
      std::cerr << "zbench: nats-js: JetStream refused " << nacked_ << " messages, the first with " << first_error_
                << "\n";
  }
  void fill(client_result& r) const override {
    r.acked = acked_;
    r.nacked = nacked_;
    clock_.fill(r);
  }

private:
  std::string error_suffix() const { return conn_.error().empty() ? std::string() : ": " + conn_.error(); }

  void wait(std::uint64_t deadline, const char* what) {
    conn_.flush();
    if (conn_.receive(std::chrono::milliseconds(100)) == nats::connection::result::closed)
      throw std::runtime_error("nats-server closed the connection" + error_suffix());
    if (now_ns() > deadline)
      throw std::runtime_error(std::string("no JetStream acknowledgment within 60 s, waiting for ") + what + " (" +
                               std::to_string(pending_) + " outstanding)");
  }

  void on_answer(std::string_view subject, std::string_view payload) {
    if (subject.size() <= inbox_.size() || subject.compare(0, inbox_.size(), inbox_) != 0) return;
    std::uint64_t seq = 0;
    const auto digits = subject.substr(inbox_.size());
    if (std::from_chars(digits.data(), digits.data() + digits.size(), seq).ec != std::errc()) return;
    if (payload.find("\"error\"") != std::string_view::npos) {
      if (nacked_++ == 0) first_error_ = std::string(payload.substr(0, 200));
    } else if (payload.find("\"seq\"") != std::string_view::npos) {
      ++acked_;
      if (conn_.reads() != reads_seen_) {  // the first answer of this read
        reads_seen_ = conn_.reads();
        read_ns_ = now_ns();
      }
      clock_.acked(seq, read_ns_);
    } else {
      return;  // not an answer we know
    }
    if (pending_ > 0) --pending_;
  }

  nats::connection conn_;
  std::size_t window_;
  ack_clock clock_;
  std::string inbox_, reply_;
  std::size_t read_every_, since_read_ = 0;
  std::size_t pending_ = 0;
  std::uint64_t reads_seen_ = 0, read_ns_ = 0;
  std::uint64_t acked_ = 0, nacked_ = 0;
  std::string first_error_;
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

temp_dir::temp_dir(const std::string& parent, const std::string& prefix) {
  std::string base = parent;
  if (base.empty()) {
    const char* env = std::getenv("TMPDIR");
    base = env != nullptr && *env != '\0' ? env : "/tmp";
  }
  std::string templ = base + "/" + prefix + "XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr)
    throw std::runtime_error("cannot make a directory in " + base + ": " + std::strerror(errno));
  path_ = templ;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  if (ec) std::cerr << "zbench: cannot remove " << path_ << ": " << ec.message() << "\n";
}

std::int64_t temp_dir::bytes() const {
  std::error_code ec;
  std::int64_t total = 0;
  for (std::filesystem::recursive_directory_iterator it(path_, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_regular_file(fec)) total += static_cast<std::int64_t>(it->file_size(fec));
  }
  return ec ? -1 : total;
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

std::string nats_subscription(int n) { return n == 1 ? topic_name(0) : "bench.*"; }

std::string encode_result(const client_result& r) {
  std::ostringstream o;
  o << r.role << ' ' << r.index << ' ' << r.sent << ' ' << r.acked << ' ' << r.nacked << ' ' << r.retried << ' '
    << r.received << ' ' << r.lost << ' ' << r.duplicates << ' ' << r.start_ns << ' ' << r.end_ns << ' '
    << r.latency.serialize() << ' ' << r.ack_end_ns << ' ' << r.ack_latency.serialize();
  return o.str();
}

client_result decode_result(const std::string& text) {
  client_result r;
  std::istringstream in(text);
  std::string hist, ack_hist;
  in >> r.role >> r.index >> r.sent >> r.acked >> r.nacked >> r.retried >> r.received >> r.lost >> r.duplicates >>
      r.start_ns >> r.end_ns >> hist >> r.ack_end_ns >> ack_hist;
  r.latency = histogram::parse(hist);
  r.ack_latency = histogram::parse(ack_hist);
  return r;
}

void run_publisher(const options& opt, const wiring& w, int index, const channel& ch) {
  client_result res;
  res.role = "pub";
  res.index = index;
  try {
    zmq::context_t ctx(1);
    std::unique_ptr<sender> out;
    if (w.scenario == "relay" || relay_acked_scenario(w.scenario)) {
      zrelay::publisher_config c;
      c.mode = relay_acked_scenario(w.scenario) ? zrelay::delivery::acked : zrelay::delivery::batched;
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
    } else if (w.scenario == "nats-js") {
      out = std::make_unique<nats_js_sender>(w.pub_endpoint, opt.max_inflight, opt.size, index);
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
      out->send(topics.back(), payload, 0, now_ns());
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
          out->wait_until(due);
        }
        t = due;
      }
      ++seq;
      stamp(t, seq);
      out->send(topics[static_cast<std::size_t>((seq / opt.topic_run) % topics.size())], payload, seq, t);
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
// sequence numbers, latency from the send stamp. Order is only kept per topic (a publisher that
// coalesces interleaved topics sends one topic's batch before another's), so the sequence is
// followed per publisher and topic: message `seq` went to topic (seq / topic_run) % topics.
class tally {
public:
  tally(std::size_t pubs, std::size_t topics, std::uint64_t topic_run, client_result& res)
      : pubs_(pubs),
        topics_(std::max<std::size_t>(topics, 1)),
        run_(std::max<std::uint64_t>(topic_run, 1)),
        streams_(pubs * topics_),
        pubs_state_(pubs),
        sent_(pubs, 0),
        heard_(pubs, false),
        res_(res) {
    for (std::size_t k = 0; k < topics_; ++k) {
      stream s;
      s.expect = k * run_;
      s.block_end = s.expect + run_;
      if (s.expect == 0) s.expect = 1;  // 0 is the probe
      step_block(s);
      for (std::size_t p = 0; p < pubs; ++p) streams_[p * topics_ + k] = s;
    }
    for (auto& ps : pubs_state_) locate(ps, 1);
  }

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
    // The topic of seq: followed without dividing while the publisher's messages come in the order
    // sent (one topic, or runs of one), computed when they do not.
    auto& ps = pubs_state_[p];
    if (seq != ps.next) locate(ps, seq);
    const auto k = ps.topic;
    ps.next = seq + 1;
    if (++ps.pos == run_) {
      ps.pos = 0;
      if (++ps.topic == topics_) ps.topic = 0;
    }
    auto& s = streams_[p * topics_ + k];
    if (seq < s.expect) {
      ++res_.duplicates;
      return;
    }
    if (seq > s.expect) {
      // The topic's messages from the one expected up to this one never came.
      const auto missed = before(k, seq) - before(k, s.expect);
      res_.lost += missed;
      ps.covered += missed;
      s.block_end = (seq / run_ + 1) * run_;
    }
    s.expect = seq + 1;
    step_block(s);
    ++ps.covered;
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
  // Every message sent is heard or counted lost (each topic's last message came).
  bool complete() const {
    for (std::size_t p = 0; p < pubs_; ++p)
      if (pubs_state_[p].covered < sent_[p]) return false;
    return true;
  }
  std::uint64_t received() const { return res_.received; }
  /// Whatever never arrived counts as lost; the window is first to last receive.
  void finish() {
    for (std::size_t p = 0; p < pubs_; ++p)
      if (pubs_state_[p].covered < sent_[p]) res_.lost += sent_[p] - pubs_state_[p].covered;
    res_.start_ns = first_;
    res_.end_ns = last_;
  }

private:
  // One publisher's messages of one topic: the seq expected next, and where its run ends.
  struct stream {
    std::uint64_t expect = 0, block_end = 0;
  };
  // One publisher: the seq that would come next in the order sent, its topic and place in its run;
  // and how many of its messages were heard or counted lost so far.
  struct publisher_state {
    std::uint64_t next = 0, pos = 0, covered = 0;
    std::size_t topic = 0;
  };

  void locate(publisher_state& ps, std::uint64_t seq) const {
    const auto q = seq / run_;
    ps.next = seq;
    ps.pos = seq - q * run_;
    ps.topic = static_cast<std::size_t>(q % topics_);
  }
  // Past the end of its run, a topic's next message is a round of the other topics later.
  void step_block(stream& s) const {
    if (s.expect == s.block_end) {
      s.expect += run_ * (topics_ - 1);
      s.block_end = s.expect + run_;
    }
  }
  // How many of the sequence numbers 1 .. x-1 went to topic k.
  std::uint64_t before(std::size_t k, std::uint64_t x) const {
    const auto period = run_ * topics_;
    const auto lo = static_cast<std::uint64_t>(k) * run_;
    const auto rem = x % period;
    const auto in_rem = rem > lo ? std::min(rem - lo, run_) : 0;
    return (x / period) * run_ + in_rem - (k == 0 && x > 0 ? 1 : 0);  // 0 is no message
  }

  std::size_t pubs_, topics_;
  std::uint64_t run_;
  std::vector<stream> streams_;  // per publisher and topic
  std::vector<publisher_state> pubs_state_;
  std::vector<std::uint64_t> sent_;
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
    // A parent that hung up (an aborted run) may not wake the library's subscriber: it takes only
    // a readable descriptor as a wake-up, and a closed pipe is not that to zmq_poll. So the pipe
    // is also looked at whenever a wait ends empty.
    if (r == waited::woken || (r == waited::timeout && readable(ch.from_parent, 0))) {
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

// The nats subscriber: one SUB covering every subject (a wildcard for more than one), and a
// PING/PONG so the subscription is in place before the publishers' probes can count.
void run_nats_subscriber(const options& opt, const wiring& w, int index, const channel& ch, tally& t) {
  nats::connection conn(w.sub_endpoint, std::chrono::seconds(5));
  conn.on_message([&t](std::string_view, std::string_view payload) { t.on_payload(payload); });
  conn.subscribe(nats_subscription(opt.topics), 1);
  if (!conn.round_trip(std::chrono::seconds(5)))
    throw std::runtime_error("nats-server did not confirm the subscription within 5 s" +
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
    tally t(static_cast<std::size_t>(opt.pubs), static_cast<std::size_t>(opt.topics), opt.topic_run, res);
    if (nats_scenario(w.scenario)) {
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
