#include "zrelay/reload.hpp"

#include <algorithm>
#include <array>

#include "zrelay/cli.hpp"

namespace zrelay {
namespace {

// The keys that change live, each with what copies its field from one set of options to another:
// one table, so a key cannot be live without being copied.
struct live_key {
  const char* key;
  void (*take)(const relay_options& from, relay_options& to);
};
const std::array<live_key, 11> live_keys = {{
    {"on-full", [](const relay_options& f, relay_options& t) { t.relay.on_full = f.relay.on_full; }},
    {"full-wait", [](const relay_options& f, relay_options& t) { t.relay.full_wait = f.relay.full_wait; }},
    {"spin", [](const relay_options& f, relay_options& t) { t.relay.spin = f.relay.spin; }},
    {"max-msg-size", [](const relay_options& f, relay_options& t) { t.relay.max_msg_size = f.relay.max_msg_size; }},
    {"max-topic", [](const relay_options& f, relay_options& t) { t.relay.max_topic = f.relay.max_topic; }},
    {"journal-max-bytes",
     [](const relay_options& f, relay_options& t) { t.relay.journal.max_bytes = f.relay.journal.max_bytes; }},
    {"journal-max-age",
     [](const relay_options& f, relay_options& t) { t.relay.journal.max_age = f.relay.journal.max_age; }},
    {"allow-keys",
     [](const relay_options& f, relay_options& t) { t.relay.curve.allowed_keys = f.relay.curve.allowed_keys; }},
    {"verbose", [](const relay_options& f, relay_options& t) { t.verbose = f.verbose; }},
    {"stats-interval", [](const relay_options& f, relay_options& t) { t.stats_interval = f.stats_interval; }},
    {"sys-interval", [](const relay_options& f, relay_options& t) { t.relay.sys_interval = f.relay.sys_interval; }},
}};

const live_key* find_live(const std::string& key) {
  const auto it = std::find_if(live_keys.begin(), live_keys.end(), [&](const live_key& k) { return key == k.key; });
  return it == live_keys.end() ? nullptr : &*it;
}

bool same(const relay_setting& a, const relay_setting& b) { return a.set == b.set && (!a.set || a.text == b.text); }

std::string shown(const relay_setting& s) { return s.set ? "'" + s.text + "'" : "(not set)"; }

// Copies the field behind a live `key` from `from` to `to`.
void take(const std::string& key, const relay_options& from, relay_options& to) {
  if (const auto* k = find_live(key)) k->take(from, to);
}

}  // namespace

bool reloadable(const std::string& key) { return find_live(key) != nullptr; }

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
