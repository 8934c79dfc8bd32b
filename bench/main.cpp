// zbench: throughput, latency percentiles and loss through zrelay, and the baselines beside it.
#include <unistd.h>

#include <cxxopts.hpp>

#include <iostream>
#include <sstream>

#include "bench.hpp"
#include "zrelay/cli.hpp"
#include "zrelay/endpoint.hpp"

namespace {

using zrelay::cli::usage_error;

const char* const help_tail = R"(
Scenarios (--scenario, comma-separated, or "all"):
  relay       zpub's publisher, fire and forget:  PUB -> relay XSUB -> XPUB -> SUB (zsub's subscriber)
  relay-ack   zpub's publisher, acknowledged:    DEALER -> relay ROUTER -> XPUB -> SUB
  relay-journal
              relay-ack through a relay with a journal (zrelay --journal) in a fresh temporary
              directory (see --journal-dir), removed after the run; acks after the fsync that
              covers them (see --journal-fsync). Reports the journal's size on disk.
  relay-plain plain ZeroMQ clients through the relay, as another language's PUB and SUB sockets
              would use it: [topic][payload] per send, PUB -> relay XSUB -> XPUB -> SUB; compare
              with zmq-proxy
  direct      raw ZeroMQ baseline, one [topic][payload] per send: PUB -> SUB
  zmq-proxy   raw ZeroMQ baseline through zmq_proxy(XSUB, XPUB), XPUB_NODROP, HWM 10 000
  nats        the peer: nats-server (started by zbench on a free port, see --nats-server), core
              PUB -> SUB over its text protocol, PUBs coalesced in 64 KiB writes; its CPU and peak
              RSS are reported like --relay-process's. Not part of "all": it needs nats-server
              (apt-get install nats-server). A subscriber that falls behind is disconnected by
              nats-server (a slow consumer); what it did not receive counts as lost. With --topics
              K the subjects are bench.0000000 to bench.<K-1> (in runs of --topic-run, as for the
              relay) and each subscriber, stuck ones too, makes ONE subscription, the wildcard
              bench.* (the subject itself when K is 1), as a NATS user would write it.
  nats-js     the peer's store: nats-server with JetStream (-js, its store in a temporary
              directory, see --journal-dir), one stream with file storage on the bench subjects;
              every PUB carries a reply subject and JetStream acknowledges it once stored, with at
              most --max-inflight publishes waiting (NATS's asynchronous publishing); core
              subscribers with nats' one subscription, as in nats. nats-server 2.9 syncs its files every
              2 minutes, not before acknowledging. Not part of "all" either.

Acked scenarios (relay-ack, relay-journal, nats-js) also report the acknowledgments: their rate
(first send to last acknowledgment) and latency (send time to the acknowledgment, as the
publisher sees it; under --rate it looks for them between sends, so up to one interval late).
With --topics and a short --topic-run the publisher keeps a batch open per topic and a topic's
batch may be acknowledged before an older message of another: the k-th acknowledgment is then
credited to the k-th message sent (latency by completion order, not exactly per message).

Every message carries its send time and a sequence number: "lost" is counted from the sequence
numbers (and the count each publisher reports), latency is one-way from the send time (with
--rate, from the time the message was due, so a stall is not hidden). msgs/s is messages received
by all subscribers together per second, from the first send to the last receive. The plain
scenarios (relay-plain, direct, zmq-proxy) lose messages at full speed (a PUB drops at its
high-water mark): compare their rates with their loss beside them.

Examples:
  zbench --scenario all --msgs 2000000 --size 64 --runs 3
  zbench --scenario relay-ack,direct --rate 10000 --duration 10        # latency at a fixed rate
  zbench --scenario nats,relay-ack --relay-process --size 1024         # against nats-server
  zbench --scenario relay-ack,relay-journal,nats-js --processes --relay-process   # stores
  zbench --scenario relay --subs 10 --processes                        # fan-out, clients in processes
  zbench --scenario relay-ack --relay-process --msgs 10000000          # relay CPU and peak memory
  zbench --scenario relay --relay-process --stuck 1 --subs 2           # a consumer that never reads
  zbench --relay pub=tcp://h:5559,sub=tcp://h:5560,ack=tcp://h:5561 --relay-pid 1234

Exit status: 0 every run completed, 1 a run failed, 2 usage error, 130 interrupted (SIGINT or
SIGTERM: the run under way is ended and its temporary directories removed).
)";

std::string dir_of_self() {
  char buf[4096];
  const auto n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<std::size_t>(n));
  return p.substr(0, p.rfind('/'));
}

std::string find_zrelay() {
  const auto dir = dir_of_self();
  for (const auto& c : {dir + "/zrelay", dir + "/../relay/zrelay"})
    if (::access(c.c_str(), X_OK) == 0) return c;
  return "zrelay";
}

template <class T>
T number(const cxxopts::ParseResult& r, const char* name, double lo, double hi) {
  const auto text = r[name].as<std::string>();
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || v < lo || v > hi)
    throw usage_error(std::string("--") + name + " must be a number from " +
                      std::to_string(static_cast<long long>(lo)) + " to " + std::to_string(static_cast<long long>(hi)) +
                      ", not '" + text + "'");
  return static_cast<T>(v);
}

zbench::options parse(int argc, char** argv, std::string& print) {
  cxxopts::Options o("zbench", "zbench: throughput, latency and loss through zrelay and ZeroMQ baselines.\n");
  o.custom_help("[OPTIONS]");
  // One option a line, as cxxopts tables are written:
  // clang-format off
  o.add_options("Workload")
      ("scenario", "relay, relay-ack, relay-journal, relay-plain, direct, zmq-proxy, nats, nats-js, or all (all but the nats ones)", cxxopts::value<std::string>()->default_value("relay"), "NAMES")
      ("msgs", "messages per publisher", cxxopts::value<std::string>()->default_value("1000000"), "N")
      ("duration", "run for SECONDS instead of a message count", cxxopts::value<std::string>(), "SECONDS")
      ("size", "message size in bytes (at least 16: send time and sequence)", cxxopts::value<std::string>()->default_value("64"), "BYTES")
      ("pubs", "publishers", cxxopts::value<std::string>()->default_value("1"), "P")
      ("subs", "subscribers (each receives every message)", cxxopts::value<std::string>()->default_value("1"), "S")
      ("topics", "distinct topics; every subscriber subscribes to each one (nats, nats-js: one wildcard covering them)", cxxopts::value<std::string>()->default_value("1"), "K")
      ("topic-run", "consecutive messages a publisher sends on one topic before the next", cxxopts::value<std::string>()->default_value("1000"), "N")
      ("rate", "open loop: messages per second per publisher on a fixed schedule (0: as fast as possible)", cxxopts::value<std::string>()->default_value("0"), "R")
      ("runs", "repeat each scenario and report the median (and min, max)", cxxopts::value<std::string>()->default_value("1"), "N");
  o.add_options("Relay")
      ("on-full", "relay policy for a full subscriber: drop or block", cxxopts::value<std::string>()->default_value("drop"), "POLICY")
      ("hwm", "relay high-water mark", cxxopts::value<std::string>()->default_value("1000"), "N")
      ("max-inflight", "acked publisher window, in messages", cxxopts::value<std::string>()->default_value("50000"), "N")
      ("relay-process", "run the zrelay binary as its own process (reports its CPU and peak RSS)")
      ("zrelay", "the zrelay binary for --relay-process", cxxopts::value<std::string>(), "PATH")
      ("relay", "use a running relay: pub=EP,sub=EP,ack=EP; sub= again for more subscriber endpoints, taken in turn (linked relays)", cxxopts::value<std::string>(), "EPS")
      ("relay-pid", "with --relay: report that process's CPU and peak RSS", cxxopts::value<std::string>(), "PID")
      ("processes", "run every publisher and subscriber in its own process (default: threads)")
      ("nats-server", "the nats-server binary for the nats scenario (default: nats-server on PATH or in /usr/sbin)", cxxopts::value<std::string>(), "PATH")
      ("journal-dir", "where relay-journal's journal and nats-js's JetStream store are made, a fresh directory per run (default: $TMPDIR or /tmp)", cxxopts::value<std::string>(), "DIR")
      ("journal-fsync", "relay-journal: on (acks after the fsync) or off (acks after the write)", cxxopts::value<std::string>()->default_value("on"), "on|off")
      ("stuck", "add N subscribers that subscribe to every topic and never read (a stuck consumer)", cxxopts::value<std::string>()->default_value("0"), "N");
  o.add_options("Output")
      ("json", "one JSON object per scenario")
      ("csv", "CSV with a header line")
      ("no-progress", "no progress bar on stderr")
      ("grace", "how long subscribers wait for the last messages after the publishers finish", cxxopts::value<std::string>()->default_value("2000"), "MS")
      ("h,help", "print this help");
  // clang-format on
  cxxopts::ParseResult r;
  try {
    r = o.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    throw usage_error(e.what());
  }
  if (!r.unmatched().empty()) throw usage_error("unexpected argument '" + r.unmatched().front() + "'");
  zbench::options opt;
  if (r.count("help")) {
    print = o.help({"Workload", "Relay", "Output"}) + help_tail;
    return opt;
  }
  const auto names = r["scenario"].as<std::string>();
  opt.scenarios.clear();
  if (names == "all") {
    opt.scenarios = zbench::scenario_names;
  } else {
    std::istringstream in(names);
    std::string n;
    while (std::getline(in, n, ',')) {
      const auto known = [&n](const std::vector<std::string>& list) {
        return std::find(list.begin(), list.end(), n) != list.end();
      };
      if (!known(zbench::scenario_names) && !known(zbench::extra_scenario_names))
        throw usage_error("unknown scenario '" + n +
                          "' (relay, relay-ack, relay-journal, relay-plain, direct, zmq-proxy, nats, nats-js or all)");
      opt.scenarios.push_back(n);
    }
  }
  opt.msgs = number<std::uint64_t>(r, "msgs", 1, 1e12);
  if (r.count("duration")) opt.duration = number<double>(r, "duration", 0.001, 86400);
  opt.size = zrelay::cli::parse_size(r["size"].as<std::string>(), "--size");
  if (opt.size < zbench::stamp_size || opt.size > (64u << 20)) throw usage_error("--size must be from 16 bytes to 64M");
  opt.pubs = number<int>(r, "pubs", 1, 1000);
  opt.subs = number<int>(r, "subs", 1, 1000);
  opt.topics = number<int>(r, "topics", 1, 1'000'000);
  opt.topic_run = number<std::uint64_t>(r, "topic-run", 1, 1e12);
  opt.rate = number<double>(r, "rate", 0, 1e9);
  opt.runs = number<int>(r, "runs", 1, 1000);
  try {
    opt.on_full = zrelay::parse_full_policy(r["on-full"].as<std::string>());
  } catch (const std::invalid_argument& e) {
    throw usage_error(std::string("--on-full: ") + e.what());
  }
  opt.hwm = number<int>(r, "hwm", 1, 1e7);
  opt.max_inflight = number<std::size_t>(r, "max-inflight", 1, 1e9);
  opt.processes = r.count("processes") > 0;
  opt.stuck = number<int>(r, "stuck", 0, 1000);
  opt.relay_process = r.count("relay-process") > 0;
  opt.zrelay_path = r.count("zrelay") ? r["zrelay"].as<std::string>() : find_zrelay();
  if (r.count("nats-server")) opt.nats_server_path = r["nats-server"].as<std::string>();
  if (r.count("journal-dir")) {
    opt.journal_dir = r["journal-dir"].as<std::string>();
    if (opt.journal_dir.empty()) throw usage_error("--journal-dir must not be empty");
  }
  const auto fsync = r["journal-fsync"].as<std::string>();
  if (fsync != "on" && fsync != "off") throw usage_error("--journal-fsync takes on or off, not '" + fsync + "'");
  opt.journal_fsync = fsync == "on";
  if (r.count("relay")) {
    zrelay::bound_endpoints ep;
    std::istringstream in(r["relay"].as<std::string>());
    std::string item;
    while (std::getline(in, item, ',')) {
      const auto eq = item.find('=');
      const auto key = item.substr(0, eq == std::string::npos ? 0 : eq);
      const auto val = eq == std::string::npos ? "" : item.substr(eq + 1);
      try {
        zrelay::parse_endpoint(val, zrelay::endpoint_use::connect);
      } catch (const zrelay::endpoint_error& e) {
        throw usage_error(std::string("--relay: ") + e.what());
      }
      if (key == "pub") ep.pub = val;
      else if (key == "sub") opt.external_subs.push_back(val);
      else if (key == "ack") ep.ack = val;
      else throw usage_error("--relay takes pub=EP,sub=EP,ack=EP, not '" + item + "'");
    }
    if (!opt.external_subs.empty()) ep.sub = opt.external_subs.front();
    if (ep.pub.empty() || ep.sub.empty() || ep.ack.empty()) throw usage_error("--relay needs pub=EP,sub=EP,ack=EP");
    opt.external = ep;
  }
  if (r.count("relay-pid")) opt.relay_pid = number<int>(r, "relay-pid", 1, 1e9);
  if (opt.external && opt.relay_process) throw usage_error("--relay and --relay-process contradict each other");
  opt.json = r.count("json") > 0;
  opt.csv = r.count("csv") > 0;
  if (opt.json && opt.csv) throw usage_error("choose --json or --csv");
  opt.grace = std::chrono::milliseconds(number<long>(r, "grace", 1, 600000));
  opt.progress = r.count("no-progress") == 0 && ::isatty(2) == 1;
  return opt;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::string print;
    const auto opt = parse(argc, argv, print);
    if (!print.empty()) {
      std::cout << print;
      return 0;
    }
    zbench::catch_interrupts();
    int status = 0;
    bool header = true;
    for (const auto& scenario : opt.scenarios) {
      std::vector<zbench::run_result> runs;
      for (int i = 0; i < opt.runs && !zbench::interrupted(); ++i) {
        runs.push_back(zbench::run_once(opt, scenario, i, opt.runs));
        if (!runs.back().error.empty()) status = 1;
      }
      zbench::report(opt, scenario, runs, header);
      header = false;
      if (zbench::interrupted()) return 130;
    }
    return status;
  } catch (const usage_error& e) {
    std::cerr << "zbench: error: " << e.what() << " (see 'zbench --help')" << std::endl;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "zbench: error: " << e.what() << std::endl;
    return 1;
  }
}
