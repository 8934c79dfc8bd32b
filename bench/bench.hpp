#pragma once
// zbench's pieces: options, the client roles (run as threads or processes), scenarios, reports.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "histogram.hpp"
#include "zrelay/relay.hpp"

namespace zbench {

/// The scenarios, as named on the command line; "all" runs these.
inline const std::vector<std::string> scenario_names = {"relay",       "relay-ack", "relay-journal",
                                                        "relay-plain", "direct",    "zmq-proxy"};
/// Scenarios only run when named: they need software outside this project (nats-server).
inline const std::vector<std::string> extra_scenario_names = {"nats", "nats-js"};

/// Publishers that wait for an acknowledgment of every message (and report ack latency).
inline bool acked_scenario(const std::string& s) { return s == "relay-ack" || s == "relay-journal" || s == "nats-js"; }
/// The relay scenarios whose publishers use the relay's ROUTER (acked).
inline bool relay_acked_scenario(const std::string& s) { return s == "relay-ack" || s == "relay-journal"; }
/// The scenarios whose clients speak NATS.
inline bool nats_scenario(const std::string& s) { return s == "nats" || s == "nats-js"; }

/// Every payload starts with 16 bytes: the send time (ns, the scheduled one under --rate) and
/// (publisher index << 48 | sequence). Sequence 0 is a probe, sent until the run starts. --size
/// is never smaller.
inline constexpr std::size_t stamp_size = 16;

/// What the user asked for.
struct options {
  std::vector<std::string> scenarios{"relay"};
  std::uint64_t msgs = 1'000'000;  ///< per publisher (unless duration is set)
  double duration = 0;             ///< seconds per run; 0: use msgs
  std::size_t size = 64;
  int pubs = 1;
  int subs = 1;
  int topics = 1;
  std::uint64_t topic_run = 1000;  ///< consecutive messages per topic before moving to the next
  double rate = 0;                 ///< messages per second per publisher; 0: as fast as possible
  int runs = 1;
  zrelay::full_policy on_full = zrelay::full_policy::drop;
  int hwm = 1000;  ///< relay high-water mark (embedded or spawned relay)
  std::size_t max_inflight = 50000;
  bool processes = false;                           ///< each client in its own process
  int stuck = 0;                                    ///< extra subscribers that subscribe and never read
  bool relay_process = false;                       ///< spawn the zrelay binary instead of embedding the relay
  std::string zrelay_path;                          ///< where that binary is
  std::string nats_server_path;                     ///< --nats-server; empty: nats-server on PATH (or /usr/sbin)
  std::string journal_dir;                          ///< --journal-dir (empty: $TMPDIR or /tmp)
  bool journal_fsync = true;                        ///< --journal-fsync (relay-journal)
  std::optional<zrelay::bound_endpoints> external;  ///< --relay: use a running relay
  std::vector<std::string> external_subs;           ///< --relay's sub= endpoints: subscriber i takes the (i mod n)th
  int relay_pid = 0;                                ///< --relay-pid: measure that process's CPU and memory
  std::chrono::milliseconds grace{2000};            ///< how long subscribers wait for stragglers
  bool json = false;
  bool csv = false;
  bool progress = false;
};

/// Where a client connects (or binds) in one run.
struct wiring {
  std::string scenario;
  std::string pub_endpoint;                ///< relay XSUB / ROUTER / proxy XSUB / nats URL; empty for direct
  std::vector<std::string> sub_endpoints;  ///< direct: every subscriber's bound endpoint
  std::string sub_endpoint;                ///< relay XPUB / proxy XPUB / nats URL; for direct: bind this
};

/// One client's outcome, as it reports it.
struct client_result {
  std::string role;  ///< "pub" or "sub"
  int index = 0;
  std::uint64_t sent = 0, acked = 0, nacked = 0, retried = 0;  ///< publisher
  std::uint64_t received = 0, lost = 0, duplicates = 0;        ///< subscriber
  std::uint64_t start_ns = 0, end_ns = 0;                      ///< first send / last send, or first / last receive
  histogram latency;
  std::uint64_t ack_end_ns = 0;  ///< acked publisher: when the last acknowledgment was seen
  histogram ack_latency;         ///< acked publisher: send (or due) time to acknowledgment seen
};

/// One run of one scenario.
struct run_result {
  std::vector<client_result> clients;
  std::uint64_t sent = 0, received = 0, lost = 0;
  double seconds = 0;
  double msgs_per_sec = 0;
  double mb_per_sec = 0;
  histogram latency;
  std::uint64_t acked = 0;   ///< acked scenarios: measured messages answered (acknowledged, or refused for good)
  std::uint64_t nacked = 0;  ///< refusals the publishers counted
  double acked_per_sec = 0;  ///< acknowledgments per second, first send to last acknowledgment
  histogram ack_latency;
  std::int64_t store_bytes = -1;  ///< the journal's (or JetStream store's) files at the end; -1: none
  std::int64_t store_syncs = -1;  ///< the journal's syncs from the start of the run to its end; -1: unknown
  std::int64_t synced_bytes = 0;  ///< what the journal grew by meanwhile
  double sync_seconds = 0;        ///< over how long
  double relay_cpu_percent = -1;  ///< -1: not measured
  std::int64_t relay_peak_rss_kib = -1;
  std::string error;
};

/// Monotonic nanoseconds, comparable across processes on one machine.
std::uint64_t now_ns();

/// From now on SIGINT and SIGTERM end the run under way as a failed one ("interrupted"), so that
/// its clients are ended and its temporary directories removed; a second signal ends zbench at
/// once. Forked clients inherit the handler; the parent kills them. A publisher thread (without
/// --processes) cannot be killed: it finishes its messages or --duration first.
void catch_interrupts();
/// Whether SIGINT or SIGTERM came.
bool interrupted();

/// Runs a scenario once.
run_result run_once(const options& opt, const std::string& scenario, int run_index, int runs);

/// Prints the results (median, min, max over runs) as a table, JSON lines or CSV.
void report(const options& opt, const std::string& scenario, const std::vector<run_result>& runs, bool header);

}  // namespace zbench
