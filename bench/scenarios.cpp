// One run of one scenario: the relay (or proxy) in the middle, subscribers, then publishers,
// as threads or as forked processes, coordinated over pipes (see clients.hpp).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include <zmq.hpp>

#include "bench.hpp"
#include "clients.hpp"
#include "nats.hpp"

namespace zbench {
namespace {

// Starts a client as a thread or a process; join() waits for it.
class client_handle {
public:
  client_handle(bool process, std::function<void(const channel&)> body) {
    int down[2], up[2];
    if (::pipe2(down, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe failed: ") + std::strerror(errno));
    if (::pipe2(up, O_CLOEXEC) != 0) {
      const int err = errno;
      ::close(down[0]);
      ::close(down[1]);
      throw std::runtime_error(std::string("pipe failed: ") + std::strerror(err));
    }
    ch_ = {down[1], down[0], up[1], up[0]};
    if (process) {
      std::cout.flush();
      std::cerr.flush();
      pid_ = ::fork();
      if (pid_ < 0) {
        const int err = errno;
        close_all();  // no destructor runs for a constructor that throws
        throw std::runtime_error(std::string("fork failed: ") + std::strerror(err));
      }
      if (pid_ == 0) {
        ::close(ch_.to_client);
        ::close(ch_.from_client);
        body(ch_);
        ::_exit(0);  // no destructors of the parent's objects in the child
      }
      ::close(ch_.from_parent);
      ::close(ch_.to_parent);
      ch_.from_parent = ch_.to_parent = -1;
    } else {
      thread_ = std::thread([this, body] { body(ch_); });
    }
  }
  ~client_handle() {
    join();
    close_all();
  }
  void join() {
    if (thread_.joinable()) thread_.join();
    if (pid_ > 0) {
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }
  void kill() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
  }
  // Closes the parent's side of the control pipe: a client thread (which cannot be killed) then
  // sees "the parent went away" instead of waiting forever for a line that will not come.
  void hang_up() {
    if (ch_.to_client >= 0) ::close(ch_.to_client);
    ch_.to_client = -1;
  }
  const channel& ch() const { return ch_; }

private:
  void close_all() {
    for (int* fd : {&ch_.to_client, &ch_.from_parent, &ch_.to_parent, &ch_.from_client}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }

  channel ch_;
  pid_t pid_ = -1;
  std::thread thread_;
};

// What sits in the middle of a run.
class middle {
public:
  virtual ~middle() = default;
  virtual wiring wire() const = 0;
  virtual int pid() const { return 0; }
  /// The bytes of its store (journal, JetStream) on disk now; -1: it has none.
  virtual std::int64_t store_bytes() const { return -1; }
  /// The syncs of its journal so far, if it can tell (the embedded relay's counters); -1: unknown.
  virtual std::int64_t store_syncs() const { return -1; }
};

// The relay scenarios' wiring: publishers at the relay's XSUB, or its ROUTER when acknowledged;
// subscribers at its XPUB.
wiring relay_wiring(const std::string& scenario, const zrelay::bound_endpoints& ep) {
  return {scenario, relay_acked_scenario(scenario) ? ep.ack : ep.pub, {}, ep.sub};
}

// relay-journal's journal: a fresh directory per run (under --journal-dir), removed after it.
std::unique_ptr<temp_dir> journal_for(const options& opt, const std::string& scenario) {
  if (scenario != "relay-journal") return nullptr;
  return std::make_unique<temp_dir>(opt.journal_dir, "zbench-journal.");
}

class embedded_relay : public middle {
public:
  embedded_relay(const options& opt, const std::string& scenario)
      : journal_(journal_for(opt, scenario)), ctx_(2), scenario_(scenario) {
    zrelay::relay_config c;
    c.pub_bind = c.sub_bind = c.ack_bind = "tcp://127.0.0.1:*";
    c.on_full = opt.on_full;
    c.hwm = opt.hwm;
    c.linger = std::chrono::milliseconds(0);
    if (journal_) {
      c.journal.dir = journal_->path();
      c.journal.fsync = opt.journal_fsync;
      c.journal.replay_bind = "tcp://127.0.0.1:*";
    }
    relay_ = std::make_unique<zrelay::relay>(ctx_, c);
    thread_ = std::thread([this] { relay_->run(); });
  }
  ~embedded_relay() override {
    relay_->request_stop();
    thread_.join();
  }
  wiring wire() const override { return relay_wiring(scenario_, relay_->endpoints()); }
  std::int64_t store_bytes() const override { return journal_ ? journal_->bytes() : -1; }
  std::int64_t store_syncs() const override {
    return journal_ ? static_cast<std::int64_t>(relay_->counters().journal_syncs) : -1;
  }

private:
  std::unique_ptr<temp_dir> journal_;  // first: removed after the relay has stopped
  zmq::context_t ctx_;
  std::string scenario_;
  std::unique_ptr<zrelay::relay> relay_;
  std::thread thread_;
};

// A relay in another process (--relay): its endpoints, and the process whose CPU and memory are
// sampled (0: none).
class external_relay : public middle {
public:
  external_relay(const std::string& scenario, const zrelay::bound_endpoints& ep, int pid)
      : scenario_(scenario), ep_(ep), pid_(pid) {}
  wiring wire() const override { return relay_wiring(scenario_, ep_); }
  int pid() const override { return pid_; }

protected:
  std::string scenario_;
  zrelay::bound_endpoints ep_;
  pid_t pid_;
};

// The zrelay binary in its own process, on ephemeral ports; its ready line gives the endpoints.
class relay_process : public external_relay {
public:
  relay_process(const options& opt, const std::string& scenario)
      : external_relay(scenario, {}, -1), journal_(journal_for(opt, scenario)) {
    const std::string hwm = std::to_string(opt.hwm);
    const std::string any = "tcp://127.0.0.1:*";
    const std::string policy = opt.on_full == zrelay::full_policy::block ? "block" : "drop";
    std::vector<std::string> args = {"zrelay", "--pub-bind", any, "--sub-bind", any, "--ack-bind", any};
    args.insert(args.end(), {"--control-bind", "off", "--hwm", hwm, "--on-full", policy});
    if (journal_) {
      args.insert(args.end(), {"--journal", journal_->path(), "--replay-bind", any});
      if (!opt.journal_fsync) args.insert(args.end(), {"--journal-fsync", "off"});
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe failed: ") + std::strerror(errno));
    pid_ = ::fork();
    if (pid_ < 0) {
      const int err = errno;
      ::close(out[0]);
      ::close(out[1]);
      throw std::runtime_error("cannot start " + opt.zrelay_path + ": fork failed: " + std::strerror(err));
    }
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::execv(opt.zrelay_path.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    // No destructor runs for a constructor that throws: from here on the child is ended on
    // every way out.
    std::string line;
    try {
      line = ready_line(out[0], opt.zrelay_path);
    } catch (...) {
      ::close(out[0]);
      stop();
      throw;
    }
    ::close(out[0]);
    const auto field = [&line](const std::string& key) {
      const auto at = line.find(key + "=");
      if (at == std::string::npos) return std::string();
      const auto from = at + key.size() + 1;
      return line.substr(from, line.find(' ', from) - from);
    };
    ep_ = {field("pub"), field("sub"), field("ack"), field("replay"), field("upstream")};
    if (ep_.pub.empty() || ep_.sub.empty() || ep_.ack.empty()) {
      stop();
      throw std::runtime_error("cannot start " + opt.zrelay_path + " (unexpected ready line '" + line + "')");
    }
  }
  ~relay_process() override { stop(); }
  std::int64_t store_bytes() const override { return journal_ ? journal_->bytes() : -1; }

private:
  // The first line the relay writes, within 10 s.
  static std::string ready_line(int fd, const std::string& path) {
    line_reader r(fd);
    std::string line;
    bool eof = false;
    const auto until = now_ns() + 10'000'000'000ull;
    while (!r.next(line, eof)) {
      if (eof) throw std::runtime_error("cannot start " + path + " (it exited without a ready line)");
      if (now_ns() > until) throw std::runtime_error("cannot start " + path + " (no ready line within 10 s)");
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 100);
    }
    return line;
  }
  // It stops on SIGTERM after flushing for at most its linger (1 s by default).
  void stop() {
    stop_child(pid_, std::chrono::seconds(5));
    pid_ = -1;
  }

  std::unique_ptr<temp_dir> journal_;  // removed after stop()
};

// The baseline: zmq_proxy between XSUB and XPUB, XPUB_NODROP, high-water marks of 10 000.
class zmq_proxy : public middle {
public:
  zmq_proxy() : ctx_(2), xsub_(ctx_, zmq::socket_type::xsub), xpub_(ctx_, zmq::socket_type::xpub) {
    for (auto* s : {&xsub_, &xpub_}) {
      s->set(zmq::sockopt::sndhwm, 10000);
      s->set(zmq::sockopt::rcvhwm, 10000);
      s->set(zmq::sockopt::linger, 0);
      s->bind("tcp://127.0.0.1:*");
    }
    xpub_.set(zmq::sockopt::xpub_nodrop, 1);
    thread_ = std::thread([this] {
      try {
        zmq::proxy(xsub_, xpub_);
      } catch (const zmq::error_t&) {
        // ETERM: the run is over
      }
      xsub_.close();
      xpub_.close();
    });
  }
  ~zmq_proxy() override {
    ctx_.shutdown();
    thread_.join();
  }
  wiring wire() const override {
    return {"zmq-proxy", xsub_.get(zmq::sockopt::last_endpoint), {}, xpub_.get(zmq::sockopt::last_endpoint)};
  }

private:
  zmq::context_t ctx_;
  zmq::socket_t xsub_, xpub_;
  std::thread thread_;
};

// nats-server as a child process, the peer the relay is measured against.
class nats_middle : public middle {
public:
  explicit nats_middle(const options& opt) : server_(opt.nats_server_path) {
    // Fail before any client starts: a publisher failing while subscribers wait for its probes
    // would only be noticed at the 30 s deadline.
    const nats::connection probe(server_.url(), std::chrono::seconds(5));
    if (opt.size > probe.max_payload())  // opt.size >= stamp_size: main() rejects less
      throw std::runtime_error("--size " + std::to_string(opt.size) + " exceeds nats-server's max_payload of " +
                               std::to_string(probe.max_payload()) + " bytes");
  }
  wiring wire() const override { return {"nats", server_.url(), {}, server_.url()}; }
  int pid() const override { return server_.pid(); }

private:
  nats::server server_;
};

// nats-server with JetStream and its file store in a fresh directory, and one stream with file
// storage on every bench subject, made through the JetStream API as a NATS client makes it.
// Limits retention without limits (nothing is dropped during a run), acknowledgments on. The
// publishers' PUBs carry reply subjects (see nats_js_sender); the subscribers are core
// subscribers on the subjects, as in the nats scenario, so the shape is relay-ack's.
class nats_js_middle : public middle {
public:
  explicit nats_js_middle(const options& opt)
      : store_(opt.journal_dir, "zbench-jetstream."), server_(opt.nats_server_path, store_.path()) {
    nats::connection admin(server_.url(), std::chrono::seconds(5));
    if (opt.size > admin.max_payload())
      throw std::runtime_error("--size " + std::to_string(opt.size) + " exceeds nats-server's max_payload of " +
                               std::to_string(admin.max_payload()) + " bytes");
    const std::string config =
        R"({"name":"ZBENCH","subjects":["bench.>"],"retention":"limits","max_consumers":-1,"max_msgs":-1,)"
        R"("max_bytes":-1,"max_age":0,"max_msg_size":-1,"storage":"file","discard":"old","num_replicas":1,)"
        R"("no_ack":false})";
    // JetStream may still be starting when the port accepts connections: ask again for a while.
    std::string answer;
    const auto until = now_ns() + 10'000'000'000ull;
    for (;;) {
      try {
        answer = admin.request("$JS.API.STREAM.CREATE.ZBENCH", config, std::chrono::seconds(1));
        break;
      } catch (const std::runtime_error& e) {
        if (now_ns() > until || !admin.error().empty())
          throw std::runtime_error(std::string("cannot create the JetStream stream: ") + e.what());
      }
    }
    if (answer.find("\"error\"") != std::string::npos || answer.find("\"storage\":\"file\"") == std::string::npos)
      throw std::runtime_error("JetStream refused the stream: " + answer.substr(0, 300));
  }
  wiring wire() const override { return {"nats-js", server_.url(), {}, server_.url()}; }
  int pid() const override { return server_.pid(); }
  std::int64_t store_bytes() const override { return store_.bytes(); }

private:
  temp_dir store_;  // first: removed after the server has stopped
  nats::server server_;
};

class nothing : public middle {
public:
  wiring wire() const override { return {"direct", "", {}, ""}; }
};

std::unique_ptr<middle> make_middle(const options& opt, const std::string& scenario) {
  if (scenario == "zmq-proxy") return std::make_unique<zmq_proxy>();
  if (scenario == "direct") return std::make_unique<nothing>();
  if (scenario == "nats") return std::make_unique<nats_middle>(opt);
  if (scenario == "nats-js") return std::make_unique<nats_js_middle>(opt);
  if (opt.external) return std::make_unique<external_relay>(scenario, *opt.external, opt.relay_pid);
  if (opt.relay_process) return std::make_unique<relay_process>(opt, scenario);
  return std::make_unique<embedded_relay>(opt, scenario);
}

// CPU time (user + system, in seconds) and peak resident memory of a process; -1 when unknown.
struct proc_sample {
  double cpu_seconds = -1;
  std::int64_t peak_rss_kib = -1;
};

proc_sample sample(int pid) {
  proc_sample s;
  if (pid <= 0) return s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  std::getline(stat, content);
  const auto close = content.rfind(')');
  if (close != std::string::npos) {
    std::istringstream in(content.substr(close + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    s.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) s.peak_rss_kib = std::stoll(line.substr(6));
  }
  return s;
}

volatile std::sig_atomic_t interrupt_seen = 0;  // set by the handler, read by wait_line

extern "C" void on_interrupt(int) { interrupt_seen = 1; }

constexpr int interrupted_line = -2;

// Waits for one line from any of the clients; returns its index, -1 at the deadline, or
// interrupted_line once SIGINT or SIGTERM came.
int wait_line(const std::vector<std::unique_ptr<client_handle>>& clients, std::vector<line_reader>& readers,
              std::string& line, std::uint64_t deadline) {
  for (;;) {
    for (std::size_t i = 0; i < readers.size(); ++i) {
      bool eof = false;
      if (readers[i].next(line, eof)) return static_cast<int>(i);
    }
    if (interrupt_seen != 0) return interrupted_line;
    if (now_ns() > deadline) return -1;
    std::vector<pollfd> fds;
    for (const auto& c : clients) fds.push_back({c->ch().from_client, POLLIN, 0});
    ::poll(fds.data(), fds.size(), 100);
  }
}

void progress_bar(const options& opt, const std::string& scenario, double fraction, int run, int runs) {
  if (!opt.progress) return;
  const int width = 30;
  const int filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * width);
  std::cerr << "\r" << scenario << " run " << run + 1 << "/" << runs << " ["
            << std::string(static_cast<std::size_t>(filled), '#')
            << std::string(static_cast<std::size_t>(width - filled), ' ') << "] " << static_cast<int>(fraction * 100)
            << "% " << std::flush;
}

}  // namespace

void catch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sa.sa_flags = SA_RESETHAND;  // a second one ends zbench at once
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

bool interrupted() { return interrupt_seen != 0; }

run_result run_once(const options& opt, const std::string& scenario, int run_index, int runs) {
  run_result out;
  try {
    auto mid = make_middle(opt, scenario);
    auto w = mid->wire();
    const auto deadline_for = [](double seconds) { return now_ns() + static_cast<std::uint64_t>(seconds * 1e9); };

    std::vector<std::unique_ptr<client_handle>> subs, pubs;  // before abort_all, which ends them
    std::vector<line_reader> sub_readers, pub_readers;
    for (int i = 0; i < opt.subs; ++i) {
      auto wi = w;  // --relay with several sub= endpoints: subscribers take them in turn
      if (opt.external && !opt.external_subs.empty())
        wi.sub_endpoint = opt.external_subs[static_cast<std::size_t>(i) % opt.external_subs.size()];
      subs.push_back(std::make_unique<client_handle>(
          opt.processes, [&opt, wi, i](const channel& ch) { run_subscriber(opt, wi, i, ch); }));
      sub_readers.emplace_back(subs.back()->ch().from_client);
    }
    // Ends every client (a thread cannot be killed: it is told the parent went away) and fails the
    // run; the middle, and with it a journal or store directory, goes on the way out.
    const auto abort_all = [&](const std::string& why) {
      for (auto* group : {&pubs, &subs}) {
        for (auto& c : *group) {
          c->kill();
          c->hang_up();
        }
      }
      throw std::runtime_error(why);
    };
    std::string line;
    std::vector<bool> sub_ready(subs.size(), false);
    std::size_t ready = 0;
    if (scenario == "direct") {
      for (int got = 0; got < opt.subs;) {
        const int i = wait_line(subs, sub_readers, line, deadline_for(10));
        if (i == interrupted_line) abort_all("interrupted");
        if (i < 0) abort_all("subscribers did not bind within 10 s");
        if (line.rfind("error", 0) == 0) abort_all(line.substr(6));
        if (line.rfind("endpoint ", 0) == 0) {
          w.sub_endpoints.push_back(line.substr(9));
          ++got;
        }
      }
    }
    for (int i = 0; i < opt.pubs; ++i) {
      pubs.push_back(std::make_unique<client_handle>(
          opt.processes, [&opt, w, i](const channel& ch) { run_publisher(opt, w, i, ch); }));
      pub_readers.emplace_back(pubs.back()->ch().from_client);
    }
    while (ready < subs.size()) {
      const int i = wait_line(subs, sub_readers, line, deadline_for(30));
      if (i == interrupted_line) abort_all("interrupted");
      if (i < 0) abort_all("subscribers did not hear every publisher within 30 s");
      if (line.rfind("error", 0) == 0) abort_all(line.substr(6));
      if (line == "ready" && !sub_ready[static_cast<std::size_t>(i)]) {
        sub_ready[static_cast<std::size_t>(i)] = true;
        ++ready;
      }
    }
    // Stuck consumers: subscribed to everything, smallest queue, never read (direct: they would
    // need every publisher to connect to them, so they are for the middle scenarios only).
    zmq::context_t stuck_ctx(1);
    std::vector<zmq::socket_t> stuck;
    std::vector<std::unique_ptr<nats::connection>> stuck_nats;
    if (nats_scenario(scenario)) {
      // The same for NATS: a small receive buffer, subscribed (confirmed by a PONG), never read.
      for (int i = 0; i < opt.stuck; ++i) {
        stuck_nats.push_back(std::make_unique<nats::connection>(w.sub_endpoint, std::chrono::seconds(5), 4096));
        stuck_nats.back()->subscribe(nats_subscription(opt.topics), 1);
        if (!stuck_nats.back()->round_trip(std::chrono::seconds(5)))
          abort_all("a stuck nats subscriber could not subscribe");
      }
    } else if (scenario != "direct") {
      for (int i = 0; i < opt.stuck; ++i) {
        stuck.emplace_back(stuck_ctx, zmq::socket_type::sub);
        stuck.back().set(zmq::sockopt::rcvhwm, 1);
        stuck.back().set(zmq::sockopt::rcvbuf, 4096);
        stuck.back().set(zmq::sockopt::linger, 0);
        for (const auto& topic : topic_names(opt.topics)) stuck.back().set(zmq::sockopt::subscribe, topic);
        stuck.back().connect(w.sub_endpoint);
      }
    }
    const auto before = sample(mid->pid());
    const auto bytes_before = mid->store_bytes();
    const auto syncs_before = mid->store_syncs();
    const auto t0 = now_ns();
    for (auto& p : pubs) write_line(p->ch().to_client, "go");

    std::vector<std::uint64_t> sent(pubs.size(), 0);
    std::vector<std::uint64_t> progress(pubs.size(), 0);
    std::size_t done = 0;
    const double limit = (opt.duration > 0 ? opt.duration : 0) + 600;
    while (done < pubs.size()) {
      const int i = wait_line(pubs, pub_readers, line, deadline_for(limit));
      if (i == interrupted_line) abort_all("interrupted");
      if (i < 0) abort_all("publishers did not finish within " + std::to_string(static_cast<int>(limit)) + " s");
      if (line.rfind("error", 0) == 0) abort_all(line.substr(6));
      if (line.rfind("progress ", 0) == 0) {
        progress[static_cast<std::size_t>(i)] = std::stoull(line.substr(9));
        double fraction = 0;
        if (opt.duration > 0) {
          fraction = static_cast<double>(now_ns() - t0) / (opt.duration * 1e9);
        } else {
          std::uint64_t total = 0;
          for (auto p : progress) total += p;
          fraction = static_cast<double>(total) / static_cast<double>(opt.msgs * pubs.size());
        }
        progress_bar(opt, scenario, fraction, run_index, runs);
      } else if (line.rfind("result ", 0) == 0) {
        auto r = decode_result(line.substr(7));
        sent[static_cast<std::size_t>(i)] = r.sent;
        out.clients.push_back(r);
        ++done;
      }
    }
    std::string end = "end";
    for (auto s : sent) end += " " + std::to_string(s);
    for (auto& s : subs) write_line(s->ch().to_client, end);
    for (std::size_t got = 0; got < subs.size();) {
      const int i = wait_line(subs, sub_readers, line, deadline_for(60));
      if (i == interrupted_line) abort_all("interrupted");
      if (i < 0) abort_all("subscribers did not finish within 60 s of the end");
      if (line.rfind("error", 0) == 0) abort_all(line.substr(6));
      if (line.rfind("result ", 0) == 0) {
        out.clients.push_back(decode_result(line.substr(7)));
        ++got;
      }
    }
    const auto after = sample(mid->pid());
    const auto t1 = now_ns();
    out.store_bytes = mid->store_bytes();
    const auto syncs_after = mid->store_syncs();
    if (syncs_before >= 0 && syncs_after >= syncs_before) {
      out.store_syncs = syncs_after - syncs_before;
      out.sync_seconds = static_cast<double>(t1 - t0) / 1e9;
      out.synced_bytes = out.store_bytes - bytes_before;
    }
    if (after.cpu_seconds >= 0 && before.cpu_seconds >= 0)
      out.relay_cpu_percent = 100.0 * (after.cpu_seconds - before.cpu_seconds) / (static_cast<double>(t1 - t0) / 1e9);
    out.relay_peak_rss_kib = after.peak_rss_kib;
    for (auto& c : pubs) c->join();
    for (auto& c : subs) c->join();
    if (opt.progress) std::cerr << "\r" << std::string(60, ' ') << "\r" << std::flush;

    std::uint64_t start = UINT64_MAX, finish = 0, acks_end = 0;
    for (const auto& c : out.clients) {
      if (c.role == "pub") {
        out.sent += c.sent;
        out.acked += c.ack_latency.count();  // measured messages whose answer came (not the probes)
        out.nacked += c.nacked;
        out.ack_latency.merge(c.ack_latency);
        acks_end = std::max(acks_end, c.ack_end_ns);
        start = std::min(start, c.start_ns);
      } else {
        out.received += c.received;
        out.lost += c.lost;
        finish = std::max(finish, c.end_ns);
        out.latency.merge(c.latency);
      }
    }
    out.seconds = finish > start ? static_cast<double>(finish - start) / 1e9 : 0;
    out.msgs_per_sec = out.seconds > 0 ? static_cast<double>(out.received) / out.seconds : 0;
    out.mb_per_sec = out.msgs_per_sec * static_cast<double>(opt.size) / 1e6;
    // The acknowledgments of the measured messages (a relay's counters include the probes).
    if (acks_end > start)
      out.acked_per_sec = static_cast<double>(out.ack_latency.count()) / (static_cast<double>(acks_end - start) / 1e9);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

}  // namespace zbench
