#include "zrelay/stats.hpp"

namespace zrelay {

relay_counters relay_stats::snapshot() const {
  relay_counters c;
#define ZRELAY_COUNTER_COPY(name, kind, doc) c.name = name.load(std::memory_order_relaxed);
  ZRELAY_COUNTERS(ZRELAY_COUNTER_COPY)
#undef ZRELAY_COUNTER_COPY
  return c;
}

std::string format_counters(const relay_counters& c) {
  std::string s;
  for_each_counter(c, [&s](const char* name, std::uint64_t value) {
    if (!s.empty()) s += ' ';
    s += name;
    s += '=';
    s += std::to_string(value);
  });
  return s;
}

// The names are C++ identifiers: nothing in them needs escaping.
std::string format_counters_json(const relay_counters& c) {
  std::string s = "{";
  for_each_counter(c, [&s](const char* name, std::uint64_t value) {
    if (s.size() > 1) s += ',';
    s += '"';
    s += name;
    s += "\":";
    s += std::to_string(value);
  });
  s += '}';
  return s;
}

}  // namespace zrelay
