#include "zrelay/stats.hpp"

namespace zrelay {

relay_counters relay_stats::snapshot() const {
  relay_counters c;
  const auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  c.msgs_in = get(msgs_in);
  c.bytes_in = get(bytes_in);
  c.msgs_out = get(msgs_out);
  c.bytes_out = get(bytes_out);
  c.acks = get(acks);
  c.nacks = get(nacks);
  c.duplicates = get(duplicates);
  c.dropped = get(dropped);
  c.blocked = get(blocked);
  c.malformed = get(malformed);
  c.subscriptions = get(subscriptions);
  c.unsubscriptions = get(unsubscriptions);
  c.publishers = get(publishers);
  return c;
}

std::string format_counters(const relay_counters& c) {
  std::string s;
  const auto put = [&s](const char* key, std::uint64_t v) {
    if (!s.empty()) s += ' ';
    s += key;
    s += '=';
    s += std::to_string(v);
  };
  put("msgs_in", c.msgs_in);
  put("bytes_in", c.bytes_in);
  put("msgs_out", c.msgs_out);
  put("bytes_out", c.bytes_out);
  put("acks", c.acks);
  put("nacks", c.nacks);
  put("duplicates", c.duplicates);
  put("dropped", c.dropped);
  put("blocked", c.blocked);
  put("malformed", c.malformed);
  put("subscriptions", c.subscriptions);
  put("unsubscriptions", c.unsubscriptions);
  put("publishers", c.publishers);
  return s;
}

}  // namespace zrelay
