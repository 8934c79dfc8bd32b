#include "zrelay/stats.hpp"

#include <array>
#include <utility>

namespace zrelay {
namespace {

// Every counter once: its name on the stats line, its place in the snapshot and in the live set.
struct counter_field {
  const char* name;
  std::uint64_t relay_counters::*copy;
  std::atomic<std::uint64_t> relay_stats::*live;
};

constexpr std::array<counter_field, 16> fields{{
    {"msgs_in", &relay_counters::msgs_in, &relay_stats::msgs_in},
    {"bytes_in", &relay_counters::bytes_in, &relay_stats::bytes_in},
    {"msgs_out", &relay_counters::msgs_out, &relay_stats::msgs_out},
    {"bytes_out", &relay_counters::bytes_out, &relay_stats::bytes_out},
    {"acks", &relay_counters::acks, &relay_stats::acks},
    {"nacks", &relay_counters::nacks, &relay_stats::nacks},
    {"duplicates", &relay_counters::duplicates, &relay_stats::duplicates},
    {"dropped", &relay_counters::dropped, &relay_stats::dropped},
    {"blocked", &relay_counters::blocked, &relay_stats::blocked},
    {"malformed", &relay_counters::malformed, &relay_stats::malformed},
    {"subscriptions", &relay_counters::subscriptions, &relay_stats::subscriptions},
    {"unsubscriptions", &relay_counters::unsubscriptions, &relay_stats::unsubscriptions},
    {"refused", &relay_counters::refused, &relay_stats::refused},
    {"clients_refused", &relay_counters::clients_refused, &relay_stats::clients_refused},
    {"disconnects", &relay_counters::disconnects, &relay_stats::disconnects},
    {"publishers", &relay_counters::publishers, &relay_stats::publishers},
}};

}  // namespace

relay_counters relay_stats::snapshot() const {
  relay_counters c;
  for (const auto& f : fields) c.*f.copy = (this->*f.live).load(std::memory_order_relaxed);
  return c;
}

std::string format_counters(const relay_counters& c) {
  std::string s;
  for (const auto& f : fields) {
    if (!s.empty()) s += ' ';
    s += f.name;
    s += '=';
    s += std::to_string(c.*f.copy);
  }
  return s;
}

}  // namespace zrelay
