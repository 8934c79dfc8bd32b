// Results as a table for people, JSON lines or CSV for scripts. With several runs each number
// is the median run's, and msgs/s also shows the min and max.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "bench.hpp"
#include "zrelay/format.hpp"

namespace zbench {
namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string human(double v) {
  if (v >= 1e6) return fixed(v / 1e6, 2) + "M";
  if (v >= 1e3) return fixed(v / 1e3, 1) + "k";
  return fixed(v, 0);
}

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

// A run's error as a JSON string. It may carry bytes from outside (a path, a server's words):
// text that is not UTF-8 is shown as printable() shows it, so that the line stays valid JSON.
std::string json_string(const std::string& s) {
  std::string o;
  if (zrelay::valid_utf8(s)) zrelay::append_json_string(o, s);
  else zrelay::append_json_string(o, zrelay::printable(s.data(), s.size(), s.size()));
  return o;
}

}  // namespace

void report(const options& opt, const std::string& scenario, const std::vector<run_result>& runs, bool header) {
  std::vector<const run_result*> ok;
  std::string error;
  for (const auto& r : runs) {
    if (r.error.empty()) ok.push_back(&r);
    else error = r.error;
  }
  std::sort(ok.begin(), ok.end(),
            [](const run_result* a, const run_result* b) { return a->msgs_per_sec < b->msgs_per_sec; });
  const run_result* med = ok.empty() ? nullptr : ok[ok.size() / 2];
  const double lo = ok.empty() ? 0 : ok.front()->msgs_per_sec;
  const double hi = ok.empty() ? 0 : ok.back()->msgs_per_sec;
  const auto q = [med](double p) { return med ? us(med->latency.quantile(p)) : 0.0; };
  const double syncs_per_sec = med && med->store_syncs >= 0 && med->sync_seconds > 0
                                   ? static_cast<double>(med->store_syncs) / med->sync_seconds
                                   : 0;
  const double bytes_per_sync =
      med && med->store_syncs > 0 ? static_cast<double>(med->synced_bytes) / static_cast<double>(med->store_syncs) : 0;
  const auto aq = [med](double p) { return med ? us(med->ack_latency.quantile(p)) : 0.0; };
  const bool acks = acked_scenario(scenario);
  const double per_payload_byte = med && med->store_bytes >= 0 && med->sent > 0
                                      ? static_cast<double>(med->store_bytes) /
                                            (static_cast<double>(med->sent) * static_cast<double>(opt.size))
                                      : 0;

  if (opt.json) {
    std::ostringstream o;
    o << "{\"scenario\":\"" << scenario << "\",\"size\":" << opt.size << ",\"pubs\":" << opt.pubs
      << ",\"subs\":" << opt.subs << ",\"topics\":" << opt.topics << ",\"rate\":" << opt.rate
      << ",\"runs\":" << runs.size() << ",\"runs_ok\":" << ok.size();
    if (med) {
      o << ",\"sent\":" << med->sent << ",\"received\":" << med->received << ",\"lost\":" << med->lost
        << ",\"msgs_per_sec\":" << fixed(med->msgs_per_sec, 0) << ",\"msgs_per_sec_min\":" << fixed(lo, 0)
        << ",\"msgs_per_sec_max\":" << fixed(hi, 0) << ",\"mb_per_sec\":" << fixed(med->mb_per_sec, 2)
        << ",\"seconds\":" << fixed(med->seconds, 3) << ",\"latency_us\":{\"p50\":" << fixed(q(0.5), 1)
        << ",\"p90\":" << fixed(q(0.9), 1) << ",\"p99\":" << fixed(q(0.99), 1) << ",\"p999\":" << fixed(q(0.999), 1)
        << ",\"max\":" << fixed(us(med->latency.max()), 1) << "}";
      if (acks)
        o << ",\"acks\":{\"answered\":" << med->acked << ",\"nacked\":" << med->nacked
          << ",\"unanswered\":" << (med->sent > med->acked ? med->sent - med->acked : 0)
          << ",\"per_sec\":" << fixed(med->acked_per_sec, 0) << ",\"latency_us\":{\"p50\":" << fixed(aq(0.5), 1)
          << ",\"p90\":" << fixed(aq(0.9), 1) << ",\"p99\":" << fixed(aq(0.99), 1)
          << ",\"p999\":" << fixed(aq(0.999), 1) << ",\"max\":" << fixed(us(med->ack_latency.max()), 1) << "}}";
      if (med->store_bytes >= 0) {
        o << ",\"store\":{\"bytes\":" << med->store_bytes << ",\"per_payload_byte\":" << fixed(per_payload_byte, 3);
        if (med->store_syncs >= 0)
          o << ",\"syncs\":" << med->store_syncs << ",\"syncs_per_sec\":" << fixed(syncs_per_sec, 1)
            << ",\"bytes_per_sync\":" << fixed(bytes_per_sync, 0);
        o << "}";
      }
      if (med->relay_cpu_percent >= 0)
        o << ",\"relay\":{\"cpu_percent\":" << fixed(med->relay_cpu_percent, 1)
          << ",\"peak_rss_kib\":" << med->relay_peak_rss_kib << "}";
      o << ",\"clients\":[";
      bool first = true;
      for (const auto& c : med->clients) {
        const double secs = c.end_ns > c.start_ns ? static_cast<double>(c.end_ns - c.start_ns) / 1e9 : 0;
        const auto n = c.role == "pub" ? c.sent : c.received;
        o << (first ? "" : ",") << "{\"role\":\"" << c.role << "\",\"index\":" << c.index << ",\"msgs\":" << n
          << ",\"msgs_per_sec\":" << fixed(secs > 0 ? static_cast<double>(n) / secs : 0, 0);
        if (c.role == "pub")
          o << ",\"acked\":" << c.acked << ",\"nacked\":" << c.nacked << ",\"retried\":" << c.retried;
        else o << ",\"lost\":" << c.lost << ",\"duplicates\":" << c.duplicates;
        o << "}";
        first = false;
      }
      o << "]";
    }
    if (!error.empty()) o << ",\"error\":" << json_string(error);
    o << "}";
    std::cout << o.str() << std::endl;
    return;
  }
  if (opt.csv) {
    if (header)
      std::cout
          << "scenario,size,pubs,subs,topics,rate,runs,sent,received,lost,msgs_per_sec,msgs_per_sec_min,"
             "msgs_per_sec_max,mb_per_sec,p50_us,p90_us,p99_us,p999_us,max_us,relay_cpu_percent,relay_peak_rss_kib,"
             "acks_per_sec,ack_p50_us,ack_p99_us,store_bytes,error\n";
    std::cout << scenario << ',' << opt.size << ',' << opt.pubs << ',' << opt.subs << ',' << opt.topics << ','
              << opt.rate << ',' << runs.size() << ',';
    if (med) {
      std::cout << med->sent << ',' << med->received << ',' << med->lost << ',' << fixed(med->msgs_per_sec, 0) << ','
                << fixed(lo, 0) << ',' << fixed(hi, 0) << ',' << fixed(med->mb_per_sec, 2) << ',' << fixed(q(0.5), 1)
                << ',' << fixed(q(0.9), 1) << ',' << fixed(q(0.99), 1) << ',' << fixed(q(0.999), 1) << ','
                << fixed(us(med->latency.max()), 1) << ','
                << (med->relay_cpu_percent >= 0 ? fixed(med->relay_cpu_percent, 1) : "") << ','
                << (med->relay_peak_rss_kib >= 0 ? std::to_string(med->relay_peak_rss_kib) : "") << ','
                << (acks ? fixed(med->acked_per_sec, 0) : "") << ',' << (acks ? fixed(aq(0.5), 1) : "") << ','
                << (acks ? fixed(aq(0.99), 1) : "") << ','
                << (med->store_bytes >= 0 ? std::to_string(med->store_bytes) : "");
    } else {
      std::cout << ",,,,,,,,,,,,,,,,,";  // the 18 fields above, empty
    }
    std::cout << ',' << error << '\n' << std::flush;
    return;
  }
  if (header) {
    std::printf("%-13s %6s %5s %9s %9s %8s %9s %19s %8s %8s %8s %8s %8s %9s\n", "scenario", "size", "p:s", "sent",
                "received", "lost", "msgs/s", "(min - max)", "MB/s", "p50 us", "p90 us", "p99 us", "p99.9", "max us");
  }
  if (!med) {
    std::printf("%-13s %6zu  failed: %s\n", scenario.c_str(), opt.size, error.c_str());
    std::fflush(stdout);
    return;
  }
  const std::string ps = std::to_string(opt.pubs) + ":" + std::to_string(opt.subs);
  const std::string range = runs.size() > 1 ? "(" + human(lo) + " - " + human(hi) + ")" : "";
  std::printf("%-13s %6zu %5s %9s %9s %8llu %9s %19s %8.1f %8.1f %8.1f %8.1f %8.1f %9.1f\n", scenario.c_str(), opt.size,
              ps.c_str(), human(static_cast<double>(med->sent)).c_str(),
              human(static_cast<double>(med->received)).c_str(), static_cast<unsigned long long>(med->lost),
              human(med->msgs_per_sec).c_str(), range.c_str(), med->mb_per_sec, q(0.5), q(0.9), q(0.99), q(0.999),
              us(med->latency.max()));
  if (med->relay_cpu_percent >= 0)
    std::printf("%-13s %s: %.0f%% CPU, peak RSS %.1f MiB\n", "",
                nats_scenario(scenario) ? "nats-server" : "relay process", med->relay_cpu_percent,
                static_cast<double>(med->relay_peak_rss_kib) / 1024.0);
  if (acks)
    std::printf(
        "%-13s acks: %s/s, p50 %.1f us, p90 %.1f, p99 %.1f, p99.9 %.1f, max %.1f; %llu of %llu answered, %llu refused\n",
        "", human(med->acked_per_sec).c_str(), aq(0.5), aq(0.9), aq(0.99), aq(0.999), us(med->ack_latency.max()),
        static_cast<unsigned long long>(med->acked), static_cast<unsigned long long>(med->sent),
        static_cast<unsigned long long>(med->nacked));
  if (med->store_bytes >= 0) {
    std::printf("%-13s %s: %.1f MB on disk at the end, %.2f bytes per payload byte", "",
                scenario == "nats-js" ? "JetStream store" : "journal", static_cast<double>(med->store_bytes) / 1e6,
                per_payload_byte);
    if (med->store_syncs >= 0)
      std::printf("; %lld syncs, %.0f/s, %.0f bytes per sync", static_cast<long long>(med->store_syncs), syncs_per_sec,
                  bytes_per_sync);
    std::printf("\n");
  }
  if (!error.empty()) std::printf("%-13s (a run failed: %s)\n", "", error.c_str());
  std::fflush(stdout);
}

}  // namespace zbench
