#include "zrelay/reload.hpp"

#include <algorithm>
#include <array>

#include "zrelay/cli.hpp"

namespace zrelay {
namespace {

constexpr std::array<const char*, 11> live_keys = {
    "on-full",         "full-wait",  "spin",    "max-msg-size",   "max-topic",    "journal-max-bytes",
    "journal-max-age", "allow-keys", "verbose", "stats-interval", "sys-interval",
};

bool same(const relay_setting& a, const relay_setting& b) { return a.set == b.set && (!a.set || a.text == b.text); }

std::string shown(const relay_setting& s) { return s.set ? "'" + s.text + "'" : "(not set)"; }

// Copies the field behind a live `key` from `from` to `to`.
void take(const std::string& key, const relay_options& from, relay_options& to) {
  auto& t = to.relay;
  const auto& f = from.relay;
  if (key == "on-full") t.on_full = f.on_full;
  else if (key == "full-wait") t.full_wait = f.full_wait;
  else if (key == "spin") t.spin = f.spin;
  else if (key == "max-msg-size") t.max_msg_size = f.max_msg_size;
  else if (key == "max-topic") t.max_topic = f.max_topic;
  else if (key == "journal-max-bytes") t.journal.max_bytes = f.journal.max_bytes;
  else if (key == "journal-max-age") t.journal.max_age = f.journal.max_age;
  else if (key == "allow-keys") t.curve.allowed_keys = f.curve.allowed_keys;
  else if (key == "sys-interval") t.sys_interval = f.sys_interval;
  else if (key == "verbose") to.verbose = from.verbose;
  else if (key == "stats-interval") to.stats_interval = from.stats_interval;
}

}  // namespace

bool reloadable(const std::string& key) {
  return std::find(live_keys.begin(), live_keys.end(), key) != live_keys.end();
}

reload_report reload_relay(relay& r, relay_options& current, const std::vector<std::string>& args,
                           const std::function<void(std::chrono::milliseconds)>& set_stats) {
  reload_report report;
  cli::parsed<relay_options> next;
  try {
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    next = cli::parse_relay(static_cast<int>(argv.size()), argv.data());
  } catch (const std::exception& e) {
    report.ok = false;
    report.lines.push_back(std::string("failed: ") + e.what() + "; the configuration in force is unchanged");
    return report;
  }
  const auto& now = next.options;
  const bool journal_same = now.relay.journal.dir == current.relay.journal.dir;
  const bool curve_same = now.relay.curve.enabled() == current.relay.curve.enabled() &&
                          now.relay.curve.keys.public_key == current.relay.curve.keys.public_key;
  // What changed, and what of it can change live.
  std::vector<std::size_t> live, restart;
  for (std::size_t i = 0; i < now.settings.size() && i < current.settings.size(); ++i) {
    const auto& key = now.settings[i].key;
    bool changed = !same(current.settings[i], now.settings[i]);
    // The allowlist's file may be the same and its keys not.
    if (key == "allow-keys" && now.relay.curve.allowed_keys != current.relay.curve.allowed_keys) changed = true;
    // So may the key pair's (a new pair written to the same file): that takes a restart.
    if (key == "curve-key" && now.relay.curve.keys.public_key != current.relay.curve.keys.public_key) changed = true;
    if (!changed) continue;
    const bool can = reloadable(key) && (key.rfind("journal-", 0) != 0 || journal_same) &&
                     (key != "allow-keys" || (curve_same && current.relay.curve.enabled()));
    (can ? live : restart).push_back(i);
  }
  relay_options want = current;
  for (const auto i : live) take(now.settings[i].key, now, want);
  const auto refused = r.reconfigure(want.relay);
  for (const auto i : live) {
    const auto& key = now.settings[i].key;
    auto line = key + ": " + shown(current.settings[i]) + " -> " + shown(now.settings[i]);
    if (key == "allow-keys")
      line = "allow-keys: " + std::to_string(now.relay.curve.allowed_keys.size()) + " key(s) from " +
             shown(now.settings[i]) + " (were " + std::to_string(current.relay.curve.allowed_keys.size()) +
             "); new handshakes are judged by them, connected clients stay";
    const auto no = std::find_if(refused.begin(), refused.end(),
                                 [&](const relay::not_applied& n) { return n.key == key; });
    if (no != refused.end()) {
      report.lines.push_back(line + ": not applied: " + no->why);
      continue;
    }
    take(key, now, current);
    current.settings[i] = now.settings[i];
    if (key == "verbose") r.set_verbose(current.verbose);
    if (key == "stats-interval" && set_stats) set_stats(current.stats_interval);
    report.lines.push_back(line + (key == "allow-keys" ? "" : ": applied"));
  }
  for (const auto i : restart) {
    const auto& key = now.settings[i].key;
    const bool same_file = same(current.settings[i], now.settings[i]);  // the same file, other contents
    const auto what = same_file ? shown(now.settings[i]) : shown(current.settings[i]) + " -> " + shown(now.settings[i]);
    if (key == "curve-key" && same_file)
      report.lines.push_back(key + ": " + what + " holds another key pair now: needs a restart, not applied");
    else if (key == "allow-keys" && !curve_same)
      report.lines.push_back(key + ": " + what + ": not applied: the key pair changed, which needs a restart");
    else report.lines.push_back(key + ": " + what + ": needs a restart, not applied");
  }
  if (report.lines.empty()) report.lines.push_back("no change");
  return report;
}

}  // namespace zrelay
