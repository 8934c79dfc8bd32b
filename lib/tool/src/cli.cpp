// Repeated -t must not be split at commas: a topic may contain one.
#define CXXOPTS_VECTOR_DELIMITER '\0'
#include "zrelay/cli.hpp"

#include <cxxopts.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "zrelay/config.hpp"
#include "zrelay/control.hpp"
#include "zrelay/defaults.hpp"
#include "zrelay/endpoint.hpp"
#include "zrelay/format.hpp"
#include "zrelay/input.hpp"
#include "zrelay/security.hpp"
#include "zrelay/version.hpp"

namespace zrelay::cli {
namespace {

// cxxopts quotes with typographic quotes; a terminal-friendly message uses plain ones.
std::string plain_quotes(std::string s) {
  for (const char* q : {"\xE2\x80\x98", "\xE2\x80\x99"}) {
    for (auto at = s.find(q); at != std::string::npos; at = s.find(q)) s.replace(at, 3, "'");
  }
  return s;
}

std::string lower_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

// "Option 'x' is missing an argument" -> "option '-x' is missing an argument", as typed.
std::string with_dashes(std::string text) {
  text = lower_first(text);
  const std::string lead = "option '";
  if (text.rfind(lead, 0) == 0) {
    const auto close = text.find('\'', lead.size());
    if (close != std::string::npos) text.insert(lead.size(), close - lead.size() == 1 ? "-" : "--");
  }
  return text;
}

cxxopts::ParseResult parse_or_throw(cxxopts::Options& o, int argc, const char* const* argv) {
  try {
    auto r = o.parse(argc, argv);
    if (!r.unmatched().empty()) throw usage_error("unexpected argument '" + r.unmatched().front() + "'");
    return r;
  } catch (const cxxopts::exceptions::no_such_option& e) {
    const auto text = with_dashes(plain_quotes(e.what()));
    throw usage_error("unknown " + text.substr(0, text.find(" does not exist")));
  } catch (const cxxopts::exceptions::exception& e) {
    throw usage_error(with_dashes(plain_quotes(e.what())));
  }
}

std::uint64_t parse_uint(const std::string& text, const std::string& what, std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t v = 0;
  bool ok = !text.empty() && text.size() <= 19;
  for (char c : text) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!ok || v < lo || v > hi)
    throw usage_error(what + " must be a whole number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                      ", not '" + text + "'");
  return v;
}

std::chrono::milliseconds parse_seconds(const std::string& text, const std::string& what, bool allow_zero) {
  std::size_t used = 0;
  double v = -1;
  try {
    // Plain decimal only: std::stod would also take " 1" and "0x1p1".
    if (!text.empty() && (std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.') &&
        text.find_first_of("xXpP") == std::string::npos)
      v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !std::isfinite(v) || v < 0 || (!allow_zero && v == 0) || v > 31536000)
    throw usage_error(what + " must be a number of seconds" + (allow_zero ? "" : " above 0") + ", not '" + text + "'");
  // A positive time never rounds to 0, which would mean "no limit".
  return std::chrono::milliseconds(v > 0 ? std::max<std::int64_t>(1, std::llround(v * 1000)) : 0);
}

std::string checked_endpoint(const std::string& text, endpoint_use use) {
  try {
    parse_endpoint(text, use);
  } catch (const endpoint_error& e) {
    throw usage_error(e.what());
  }
  return text;
}

std::string get(const cxxopts::ParseResult& r, const char* name) { return r[name].as<std::string>(); }

// --heartbeat MS, the same on every tool.
std::chrono::milliseconds get_heartbeat(const cxxopts::ParseResult& r) {
  return std::chrono::milliseconds(parse_uint(get(r, "heartbeat"), "--heartbeat", 0, 600'000));
}

// A size in the largest binary unit that divides it exactly, named from `units` (KiB, MiB, GiB):
// 1 << 20 is "1M" in arg_units (as parse_size reads it), "1 MiB" in prose_units.
using unit_names = std::array<const char*, 3>;
constexpr unit_names arg_units{"k", "M", "G"};
constexpr unit_names prose_units{" KiB", " MiB", " GiB"};
std::string size_text(std::uint64_t bytes, const unit_names& units) {
  std::size_t unit = 0;
  for (; unit < units.size() && bytes != 0 && bytes % 1024 == 0; ++unit) bytes /= 1024;
  return std::to_string(bytes) + (unit == 0 ? "" : units[unit - 1]);
}

std::string help_text(cxxopts::Options& o, const std::vector<std::string>& groups, const std::string& after) {
  return o.help(groups) + after;
}

// Every tool takes its own key pair; clients also the relay's public key, the relay an allowlist.
void add_security_options(cxxopts::Options& o, bool client) {
  auto add = o.add_options("Security");
  add("curve-key",
      client ? "CURVE: encrypt with this key pair (from 'zrelay keygen NAME'); needs --curve-server-key"
             : "CURVE: encrypt every socket with this key pair (from 'zrelay keygen NAME'); needs --allow-keys",
      cxxopts::value<std::string>(), "FILE.key");
  if (client)
    add("curve-server-key", "the relay's public key: 40 Z85 characters or the relay's .pub file",
        cxxopts::value<std::string>(), "KEY|FILE.pub");
  else
    add("allow-keys", "let in only CURVE clients whose public key FILE lists (one per line, # comments)",
        cxxopts::value<std::string>(), "FILE");
}

// Where each of zrelay's options comes from: the command line, which wins, or the --config file.
class relay_source {
public:
  relay_source(const cxxopts::ParseResult& r, const config_file* file) : r_(r), file_(file) {}
  bool in_file(const std::string& name) const { return file_ && file_->values.count(name) != 0; }
  /// Given on the command line or in the file.
  bool given(const std::string& name) const { return r_.count(name) != 0 || in_file(name); }
  /// Its text: the command line's, the file's, or the default.
  std::string get(const std::string& name) const {
    if (r_.count(name) == 0 && in_file(name)) return file_->values.at(name).text;
    return r_[name].as<std::string>();
  }
  /// A flag: on the command line, or true in the file.
  bool flag(const std::string& name) const {
    return r_.count(name) != 0 || (in_file(name) && file_->values.at(name).text == "true");
  }
  /// How an error names it: "--hwm", or "zrelay.toml:7: hwm" when the value is the file's.
  std::string what(const std::string& name) const {
    return r_.count(name) == 0 && in_file(name) ? file_->where(name) : "--" + name;
  }
  /// Whether its value is the file's.
  bool from_file(const std::string& name) const { return r_.count(name) == 0 && in_file(name); }
  /// Whether there is a value at all (given, or a default).
  bool has_value(const std::string& name) const { return given(name) || r_[name].has_default(); }

private:
  const cxxopts::ParseResult& r_;
  const config_file* file_;
};

// The key files are read here, so that a bad one is reported before anything binds or
// connects; one that cannot be read or parsed is a runtime error (key_error, exit status 1).
curve_config relay_curve(const relay_source& r) {
  curve_config c;
  if (r.given("allow-keys") && !r.given("curve-key"))
    throw usage_error(r.what("allow-keys") + " needs --curve-key (the relay's own key pair)");
  if (!r.given("curve-key")) return c;
  if (!r.given("allow-keys"))
    throw usage_error((r.from_file("curve-key") ? r.what("curve-key") + ": " : std::string()) +
                      "CURVE without --allow-keys would encrypt but authenticate nobody: give --allow-keys FILE");
  c.keys = read_key_file(r.get("curve-key"));
  c.allowed_keys = read_allowlist(r.get("allow-keys"));
  return c;
}

curve_config client_curve(const cxxopts::ParseResult& r) {
  curve_config c;
  if (r.count("curve-key") != r.count("curve-server-key"))
    throw usage_error("give --curve-key and --curve-server-key together (our key pair and the relay's public key)");
  if (!r.count("curve-key")) return c;
  c.keys = read_key_file(get(r, "curve-key"));
  c.server_key = parse_server_key(get(r, "curve-server-key"));
  return c;
}

// "90s", "10m", "2h", "7d": the number (at most 12 digits) and the seconds of its unit; a bare
// number is seconds when `bare_is_seconds`. False when `text` is no such duration.
bool split_duration(const std::string& text, bool bare_is_seconds, std::uint64_t& n, std::uint64_t& per) {
  std::size_t i = 0;
  n = 0;
  while (i < text.size() && i < 12 && text[i] >= '0' && text[i] <= '9')
    n = n * 10 + static_cast<std::uint64_t>(text[i++] - '0');
  const auto unit = text.substr(i);
  per = 0;
  if (unit == "s" || (unit.empty() && bare_is_seconds)) per = 1;
  else if (unit == "m") per = 60;
  else if (unit == "h") per = 3600;
  else if (unit == "d") per = 86400;
  return i > 0 && per != 0;
}

// --help shows zrelay's options in these groups, --print-config in the same order.
const std::vector<std::string> relay_groups = {"Configuration", "Sockets",   "Journal",
                                               "Federation",    "Behaviour", "Security"};

bool not_a_setting(const std::string& key) {
  return key == "help" || key == "version" || key == "config" || key == "print-config";
}

// Every option is a key of the config file and every key an option: a new option without a key
// fails here, in every test that parses a zrelay command line.
void check_relay_keys(const cxxopts::Options& o) {
  std::size_t options = 0;
  for (const auto& g : relay_groups)
    for (const auto& d : o.group_help(g).options) {
      if (not_a_setting(d.l.front())) continue;
      ++options;
      if (relay_keys().count(d.l.front()) == 0)
        throw std::logic_error("zrelay: option --" + d.l.front() + " has no config file key");
    }
  if (options != relay_keys().size()) throw std::logic_error("zrelay: a config file key is not an option");
}

std::string checked_endpoint(const relay_source& src, const std::string& name) {
  try {
    parse_endpoint(src.get(name), endpoint_use::bind);
  } catch (const endpoint_error& e) {
    throw usage_error(src.from_file(name) ? src.what(name) + ": " + e.what() : std::string(e.what()));
  }
  return src.get(name);
}

// The link to an upstream relay: --upstream HOST or --upstream-ack EP, CURVE with --upstream-server-key.
upstream_config relay_upstream(const relay_source& src, const curve_config& curve) {
  upstream_config u;
  const auto connect_ep = [&](const std::string& name, const std::string& text) {
    try {
      parse_endpoint(text, endpoint_use::connect);
    } catch (const endpoint_error& e) {
      throw usage_error(src.what(name) + ": " + e.what());
    }
    if (text.compare(0, 6, "tcp://") != 0 && text.compare(0, 6, "ipc://") != 0)
      throw usage_error(src.what(name) + ": a link to another relay is tcp:// or ipc://, not '" + text + "'");
    return text;
  };
  if (src.given("upstream-ack")) {
    u.ack = connect_ep("upstream-ack", src.get("upstream-ack"));
  } else if (src.given("upstream")) {
    const auto host = src.get("upstream");
    const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
    if (host.empty() || host.find_first_of(" /*") != std::string::npos ||
        (!bracketed && host.find(':') != std::string::npos))
      throw usage_error(src.what("upstream") +
                        " takes a host: a name, an IPv4 address or an [IPv6] address in "
                        "brackets, not '" +
                        host + "' (a port or an endpoint goes to --upstream-ack EP)");
    u.ack = connect_ep("upstream", "tcp://" + host + ":" + std::to_string(default_ack_port));
  }
  for (const auto* name : {"upstream-pub", "upstream-sub"})
    if (src.given(name)) {
      if (u.ack.empty()) throw usage_error(src.what(name) + " needs --upstream HOST or --upstream-ack EP");
      (void)connect_ep(name, src.get(name));
    }
  if (src.given("upstream-server-key")) {
    if (u.ack.empty())
      throw usage_error(src.what("upstream-server-key") + " needs --upstream HOST or --upstream-ack EP");
    if (!curve.enabled())
      throw usage_error(src.what("upstream-server-key") +
                        " needs --curve-key: the link authenticates with this relay's own key pair");
    u.server_key = parse_server_key(src.get("upstream-server-key"));  // key_error: status 1, as --curve-key
  }
  return u;
}

// --stats-interval and --sys-interval: 0 (off) or at least 10 ms (a line or a sample each).
std::chrono::milliseconds parse_interval(const relay_source& src, const std::string& name) {
  const auto v = parse_seconds(src.get(name), src.what(name), true);
  if (v.count() != 0 && v < std::chrono::milliseconds(10))
    throw usage_error(src.what(name) + " must be 0 (off) or at least 0.01 seconds, not '" + src.get(name) + "'");
  return v;
}

bool journal_setting(const std::string& key) {
  return key != "journal" && (key.rfind("journal-", 0) == 0 || key == "replay-bind");
}

std::vector<relay_setting> effective_settings(const cxxopts::Options& o, const relay_source& src, bool journal_on) {
  std::vector<relay_setting> out;
  for (const auto& g : relay_groups)
    for (const auto& d : o.group_help(g).options) {
      const auto& key = d.l.front();
      if (not_a_setting(key)) continue;
      relay_setting s;
      s.key = key;
      if (d.is_boolean) {
        s.text = src.flag(key) ? "true" : "false";
      } else if (src.has_value(key)) {
        s.text = src.get(key);
        s.set = journal_on || !journal_setting(key);
      } else {
        s.set = false;
      }
      out.push_back(std::move(s));
    }
  return out;
}

std::string print_config(const std::vector<relay_setting>& settings, const config_file* file) {
  std::string out = "# zrelay configuration in effect (zrelay --print-config" +
                    (file ? " with --config " + file->path : std::string()) +
                    ").\n# Each key is a long option of 'zrelay --help'; zrelay --config FILE reads this back.\n";
  for (const auto& s : settings) {
    const auto kind = relay_keys().at(s.key);
    if (s.set) out += toml_line(s.key, s.text, kind);
    else if (!s.text.empty()) out += "# " + toml_line(s.key, s.text, kind);  // applies with a journal
    else out += "# " + s.key + " (not set)\n";
  }
  return out;
}

}  // namespace

std::size_t parse_size(const std::string& text, const std::string& what) {
  std::string digits = text;
  std::uint64_t mult = 1;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'k':
      case 'K': mult = 1ull << 10; break;
      case 'm':
      case 'M': mult = 1ull << 20; break;
      case 'g':
      case 'G': mult = 1ull << 30; break;
      default: break;
    }
    if (mult != 1) digits.pop_back();
  }
  try {
    return static_cast<std::size_t>(parse_uint(digits, what, 0, (1ull << 40) / mult) * mult);
  } catch (const usage_error&) {
    throw usage_error(what + " must be a size in bytes such as 65536, 64k, 1M or 2G (at most 1024G), not '" + text +
                      "'");
  }
}

std::chrono::seconds parse_duration(const std::string& text, const std::string& what) {
  std::uint64_t n = 0, per = 0;
  if (!split_duration(text, true, n, per) || n < 1 || n > 100ull * 365 * 86400 / per)
    throw usage_error(what + " must be a duration such as 90s, 10m, 2h or 7d, not '" + text + "'");
  return std::chrono::seconds(n * per);
}

std::string parse_keygen(int argc, const char* const* argv) {
  if (argc != 3 || argv[2][0] == '-' || argv[2][0] == '\0')
    throw usage_error("usage: zrelay keygen NAME (writes NAME.key, the key pair, and NAME.pub, the public key)");
  return argv[2];
}

parsed<ctl_options> parse_ctl(int argc, const char* const* argv) {
  cxxopts::Options o("zrelay ctl", "zrelay ctl: ask a running zrelay, through its control socket (--control-bind).\n");
  o.custom_help("stats|reload [OPTIONS]");
  o.positional_help("");
  // clang-format off
  o.add_options()
      ("control-connect", "the relay's control socket (default: the control-bind of --config FILE, else " + default_endpoint(default_control_port) + ")", cxxopts::value<std::string>(), "EP")
      ("config", "the relay's configuration file: its control-bind is where to connect", cxxopts::value<std::string>(), "FILE")
      ("timeout", "give up when no answer comes within MS milliseconds", cxxopts::value<std::string>()->default_value("2000"), "MS")
      ("h,help", "print this help")
      ("command", "", cxxopts::value<std::vector<std::string>>());
  // clang-format on
  o.parse_positional({"command"});
  // argv[1] is "ctl": parse from there, as if it were the program's name.
  auto r = parse_or_throw(o, argc - 1, argv + 1);
  parsed<ctl_options> out;
  if (r.count("help")) {
    out.print = o.help({""}) +
                "\nCommands:\n"
                "  stats   print the relay's counters as one line of JSON\n"
                "  reload  do what SIGHUP does (re-read the configuration) and print what changed\n"
                "\nExit status: 0 done, 1 no answer within --timeout (is zrelay running, with that --control-bind?)\n"
                "or the relay reported a failure, 2 usage error.\n";
    return out;
  }
  const auto words = r.count("command") ? r["command"].as<std::vector<std::string>>() : std::vector<std::string>{};
  if (words.size() != 1)
    throw usage_error("usage: zrelay ctl stats|reload [--control-connect EP | --config FILE] [--timeout MS]");
  if (!control::parse_command(words[0]))
    throw usage_error("unknown command '" + words[0] + "' for zrelay ctl (stats, reload)");
  auto& c = out.options;
  c.command = words[0];
  if (r.count("control-connect")) {
    c.endpoint = checked_endpoint(get(r, "control-connect"), endpoint_use::connect);
  } else if (r.count("config")) {
    const auto file = read_config(get(r, "config"));
    const auto it = file.values.find("control-bind");
    if (it != file.values.end()) {
      if (it->second.text == "off")
        throw usage_error(file.where("control-bind") + " is off: that relay has no control socket");
      try {
        c.endpoint = checked_endpoint(it->second.text, endpoint_use::connect);
      } catch (const usage_error& e) {
        throw usage_error(file.where("control-bind") + ": " + e.what());
      }
    }
  }
  c.timeout = std::chrono::milliseconds(parse_uint(get(r, "timeout"), "--timeout", 1, 3'600'000));
  return out;
}

parsed<relay_options> parse_relay(int argc, const char* const* argv) {
  cxxopts::Options o("zrelay", "zrelay: a ZeroMQ pub/sub relay with acknowledged publishing.\n");
  o.custom_help("[OPTIONS]  |  zrelay keygen NAME  |  zrelay ctl stats|reload");
  const std::string pub_port = std::to_string(default_pub_port);
  // One option a line, as cxxopts tables are written:
  // clang-format off
  o.add_options("Configuration")
      ("config", "read options from this TOML file: each key is a long option below (hwm = 1000, pub-bind = \"tcp://127.0.0.1:5559\", verbose = true); options given on the command line win", cxxopts::value<std::string>(), "FILE")
      ("print-config", "print the configuration in effect (defaults, the file, the command line) as TOML that --config reads, and exit");
  o.add_options("Sockets")
      ("pub-bind", "XSUB socket for fire-and-forget publishers (PUB)", cxxopts::value<std::string>()->default_value(default_endpoint(default_pub_port)), "EP")
      ("sub-bind", "XPUB socket for subscribers (SUB)", cxxopts::value<std::string>()->default_value(default_endpoint(default_sub_port)), "EP")
      ("ack-bind", "ROUTER socket for acknowledged publishers (zpub)", cxxopts::value<std::string>()->default_value(default_endpoint(default_ack_port)), "EP")
      ("control-bind", "control socket for 'zrelay ctl stats|reload': loopback tcp or ipc:// only (it is not authenticated); off: none", cxxopts::value<std::string>()->default_value(default_endpoint(default_control_port)), "EP|off");
  o.add_options("Journal")
      ("journal", "store every message accepted in DIR (created if missing) and acknowledge a batch only once it is synced to disk; a restart on the same DIR resumes and replays", cxxopts::value<std::string>(), "DIR")
      ("journal-fsync", "on: acknowledge after the fdatasync that covers a batch (survives a power loss); off: after the write (survives a crash of zrelay, not of the machine)", cxxopts::value<std::string>()->default_value("on"), "on|off")
      ("journal-max-bytes", "retention: remove whole oldest segments while the journal is larger (default: a quarter of the filesystem DIR is on, at most 4G)", cxxopts::value<std::string>(), "SIZE")
      ("journal-max-age", "retention: remove whole oldest segments whose newest message is older, e.g. 90s, 10m, 2h, 7d (default: no limit)", cxxopts::value<std::string>(), "DURATION")
      ("journal-segment-size", "start a new segment file once one is this large", cxxopts::value<std::string>()->default_value("64M"), "SIZE")
      ("replay-bind", "ROUTER socket serving replays to 'zsub --all', --from-seq, --since, --last-per-topic (with --journal)", cxxopts::value<std::string>()->default_value(default_endpoint(default_replay_port)), "EP");
  o.add_options("Federation")
      ("upstream", "link this relay to the relay on HOST (a name, an IPv4 address or [IPv6]) at its ack port " + std::to_string(default_ack_port) + ": each forwards to the other what the other side's subscribers want, acked hop by hop; relays linked so form a tree (a loop is refused)", cxxopts::value<std::string>(), "HOST")
      ("upstream-ack", "the upstream's ack endpoint, set alone (default: tcp://HOST:" + std::to_string(default_ack_port) + " of --upstream): the link's one connection", cxxopts::value<std::string>(), "EP")
      ("upstream-pub", "the upstream's publisher endpoint: accepted and checked, not needed (messages, acks and subscriptions all travel on the ack endpoint's connection)", cxxopts::value<std::string>(), "EP")
      ("upstream-sub", "the upstream's subscriber endpoint: accepted and checked, not needed (as --upstream-pub)", cxxopts::value<std::string>(), "EP")
      ("upstream-server-key", "CURVE on the link: the upstream's public key (40 Z85 characters or its .pub file); the link uses this relay's --curve-key, which the upstream's --allow-keys must list (without it the link is plain, even with --curve-key)", cxxopts::value<std::string>(), "KEY");
  o.add_options("Behaviour")
      ("on-full", "when a subscriber's queue is full: drop (after --full-wait, deliver to the others and count it; the subscriber sees the gap) or block (lossless back-pressure to acked publishers)", cxxopts::value<std::string>()->default_value("drop"), "drop|block")
      ("full-wait", "with drop: how long a full subscriber may hold the others up before its messages are dropped", cxxopts::value<std::string>()->default_value("100"), "MS")
      ("hwm", "high-water mark of each socket, in ZeroMQ messages (a batch is one)", cxxopts::value<std::string>()->default_value("1000"), "N")
      ("max-msg-size", "largest message accepted: a larger one is refused and counted (acked publishers get a NACK 'too large'); a frame over max(" + std::to_string(frame_limit_factor) + " x BYTES + " + size_text(frame_limit_slack, prose_units) + ", " + size_text(frame_limit_floor, prose_units) + ") costs its sender the connection, unread; 0 for no limit", cxxopts::value<std::string>()->default_value(size_text(default_max_msg_size, arg_units)), "BYTES")
      ("max-topic", "longest topic (" + size_text(min_max_topic, arg_units) + " to " + size_text(max_topic_limit, arg_units) + "): a message with a longer topic frame is refused (acked publishers get a NACK) and counted; a subscriber sending a longer subscription is disconnected by ZeroMQ", cxxopts::value<std::string>()->default_value(std::to_string(default_max_topic)), "BYTES")
      ("heartbeat", "ZeroMQ heartbeat interval to publishers (one silent for 3 intervals is dropped) and TCP keepalive interval to subscribers (0: off)", cxxopts::value<std::string>()->default_value("1000"), "MS")
      ("stats-interval", "print the counters on stderr every SECONDS (a final line is always printed)", cxxopts::value<std::string>()->default_value("0"), "SECONDS")
      ("sys-interval", "publish the counters as JSON on the topic $SYS.<host name>.stats every SECONDS, for zsub -t '$SYS.' (0: off)", cxxopts::value<std::string>()->default_value("0"), "SECONDS")
      ("metrics-bind", "serve GET /metrics (Prometheus text format) and GET /healthz over HTTP on HOST:PORT ([::1]:PORT for IPv6; port 0: any free one, on the ready line as metrics=URL); off by default", cxxopts::value<std::string>(), "HOST:PORT")
      ("spin", "after handling a message, look for the next one without sleeping for up to US microseconds while messages come that often: lower latency for CPU (0 to 1000000; an idle relay never spins; 0: never)", cxxopts::value<std::string>()->default_value(std::to_string(default_spin_us)), "US")
      ("v,verbose", "log subscriptions, new publishers, publisher connections that end and every refused message")
      ("h,help", "print this help")
      ("version", "print the version");
  // clang-format on
  add_security_options(o, false);
  auto r = parse_or_throw(o, argc, argv);
  parsed<relay_options> out;
  check_relay_keys(o);
  if (r.count("help")) {
    out.print = help_text(
        o, relay_groups,
        "\nEndpoints are tcp://HOST:PORT, ipc://PATH or inproc://NAME; tcp://127.0.0.1:* binds an ephemeral\n"
        "port. On start zrelay prints one line with the endpoints it bound. The defaults listen on loopback\n"
        "only: to accept other hosts bind an address of this machine (tcp://192.0.2.10:" +
            pub_port +
            ") or all of them\n"
            "(tcp://*:" +
            pub_port +
            ") - and then encrypt and authenticate: 'zrelay keygen relay' and 'zrelay keygen NAME'\n"
            "per client write NAME.key (secret, mode 0600) and NAME.pub; start the relay with\n"
            "--curve-key relay.key --allow-keys FILE (the clients' .pub lines), and give each client its own\n"
            "--curve-key NAME.key and --curve-server-key relay.pub. A firewall in front still helps.\n"
            "\nSIGHUP (or 'zrelay ctl reload') reads the command line and the --config file again: what can\n"
            "change live is applied and logged (allow-keys, max-msg-size and max-topic up to their values at\n"
            "start, on-full, full-wait, spin, journal-max-bytes, journal-max-age, verbose, stats-interval,\n"
            "sys-interval), the rest is logged as needing a restart; a file that does not parse changes\n"
            "nothing. No client is dropped.\n"
            "\nzrelay ctl stats|reload [--control-connect EP | --config FILE] [--timeout MS] asks a running relay\n"
            "through its control socket: stats prints its counters as JSON, reload does what SIGHUP does and\n"
            "prints what changed (see 'zrelay ctl --help').\n"
            "\nExit status: 0 stopped by SIGINT/SIGTERM, 1 runtime error (cannot bind, cannot read a key file,\n"
            "cannot use the journal directory: not a directory, no permission, locked by another zrelay),\n"
            "2 usage error (the command line or the --config file: the error names the file, line and key).\n");
    return out;
  }
  if (r.count("version")) {
    out.print = std::string("zrelay ") + version_string + "\n";
    return out;
  }
  std::optional<config_file> file;
  if (r.count("config")) {
    file = read_config(get(r, "config"));
    out.options.config_path = get(r, "config");
  }
  const relay_source src(r, file ? &*file : nullptr);
  auto& c = out.options.relay;
  c.pub_bind = checked_endpoint(src, "pub-bind");
  c.sub_bind = checked_endpoint(src, "sub-bind");
  c.ack_bind = checked_endpoint(src, "ack-bind");
  try {
    c.on_full = parse_full_policy(src.get("on-full"));
  } catch (const std::invalid_argument& e) {
    throw usage_error(src.what("on-full") + ": " + e.what());
  }
  c.hwm = static_cast<int>(parse_uint(src.get("hwm"), src.what("hwm"), 1, 10'000'000));
  c.full_wait = std::chrono::milliseconds(parse_uint(src.get("full-wait"), src.what("full-wait"), 0, 3'600'000));
  c.heartbeat = std::chrono::milliseconds(parse_uint(src.get("heartbeat"), src.what("heartbeat"), 0, 600'000));
  c.spin = std::chrono::microseconds(parse_uint(src.get("spin"), src.what("spin"), 0, max_spin_us));
  c.max_msg_size = parse_size(src.get("max-msg-size"), src.what("max-msg-size"));
  c.max_topic = parse_size(src.get("max-topic"), src.what("max-topic"));
  if (c.max_topic < min_max_topic || c.max_topic > max_topic_limit)
    throw usage_error(src.what("max-topic") + " must be from " + std::to_string(min_max_topic) + " to " +
                      std::to_string(max_topic_limit) + " bytes, not '" + src.get("max-topic") + "'");
  out.options.stats_interval = parse_interval(src, "stats-interval");
  c.sys_interval = parse_interval(src, "sys-interval");
  auto& control = out.options.control_bind;
  control = src.get("control-bind");
  if (control == "off") {
    control.clear();
  } else {
    try {
      control::check_bind(control);
    } catch (const endpoint_error& e) {
      throw usage_error(src.what("control-bind") + ": " + e.what());
    }
  }
  if (src.given("metrics-bind")) {
    try {
      out.options.metrics_bind = parse_http_endpoint(src.get("metrics-bind"));
    } catch (const std::invalid_argument& e) {
      throw usage_error(src.what("metrics-bind") + " " + e.what());
    }
  }
  out.options.verbose = src.flag("verbose");
  c.curve = relay_curve(src);
  c.upstream = relay_upstream(src, c.curve);
  auto& j = c.journal;
  if (src.given("journal")) {
    j.dir = src.get("journal");
    if (j.dir.empty()) throw usage_error(src.what("journal") + " needs a directory");
    const auto fsync = src.get("journal-fsync");
    if (fsync != "on" && fsync != "off")
      throw usage_error(src.what("journal-fsync") + " must be on or off, not '" + fsync + "'");
    j.fsync = fsync == "on";
    if (src.given("journal-max-bytes")) {
      j.max_bytes = parse_size(src.get("journal-max-bytes"), src.what("journal-max-bytes"));
      if (j.max_bytes == 0) throw usage_error(src.what("journal-max-bytes") + " must be more than 0");
    }
    if (src.given("journal-max-age"))
      j.max_age = parse_duration(src.get("journal-max-age"), src.what("journal-max-age"));
    j.segment_bytes = parse_size(src.get("journal-segment-size"), src.what("journal-segment-size"));
    if (j.segment_bytes < 4096) throw usage_error(src.what("journal-segment-size") + " must be at least 4k");
    if (j.max_bytes != 0 && j.max_bytes < j.segment_bytes)
      throw usage_error(src.what("journal-max-bytes") + " (" + src.get("journal-max-bytes") +
                        ") must be at least the journal segment size (" + src.get("journal-segment-size") +
                        "): retention removes whole segments, never the one being written");
    j.replay_bind = checked_endpoint(src, "replay-bind");
  } else {
    for (const auto& d : o.group_help("Journal").options) {
      const auto& name = d.l.front();
      if (journal_setting(name) && src.given(name))
        throw usage_error(src.what(name) + (src.from_file(name)
                                                ? " needs a journal (journal = \"DIR\" in the file, or --journal DIR)"
                                                : " needs --journal DIR"));
    }
  }
  out.options.settings = effective_settings(o, src, !j.dir.empty());
  if (r.count("print-config")) out.print = print_config(out.options.settings, file ? &*file : nullptr);
  return out;
}

parsed<pub_options> parse_pub(int argc, const char* const* argv, bool stdin_is_terminal) {
  cxxopts::Options o("zpub", "zpub: publish messages to a zrelay, acknowledged by default.\n");
  o.custom_help("-t TOPIC [OPTIONS] < input");
  // One option a line, as cxxopts tables are written:
  // clang-format off
  o.add_options("Message")
      ("t,topic", "topic to publish on (required unless --topic-sep gives one per line)", cxxopts::value<std::string>(), "TOPIC")
      ("m,message", "send MSG as one message", cxxopts::value<std::string>(), "MSG")
      ("f,file", "send the content of FILE as one message (with -l, one message per line)", cxxopts::value<std::string>(), "FILE")
      ("s,stdin-file", "send all of standard input as one message")
      ("l,lines", "one message per line (the default for standard input)")
      ("d,delimiter", "split input at DELIM instead of newline; \\0 \\n \\t \\r \\\\ \\xHH are escapes", cxxopts::value<std::string>(), "DELIM")
      ("skip-empty", "do not send empty lines")
      ("topic-sep", "read each line as TOPIC<SEP>PAYLOAD", cxxopts::value<std::string>(), "SEP")
      ("max-msg-size", "refuse (and do not send) messages larger than BYTES, as the relay would; 0 for no limit", cxxopts::value<std::string>()->default_value(size_text(default_max_msg_size, arg_units)), "BYTES");
  o.add_options("Delivery")
      ("H,host", "relay host: shorthand for --ack-connect tcp://HOST:" + std::to_string(default_ack_port) + " and --pub-connect tcp://HOST:" + std::to_string(default_pub_port), cxxopts::value<std::string>(), "HOST")
      ("ack-connect", "relay ack socket (acknowledged publishing)", cxxopts::value<std::string>(), "EP")
      ("pub-connect", "relay publisher socket, with --no-ack", cxxopts::value<std::string>(), "EP")
      ("no-ack", "fire and forget: no acknowledgment, nothing resent (PUB to the relay's XSUB)")
      ("plain", "with --no-ack: send plain [topic][payload] messages, one per line, no zrelay header")
      ("max-inflight", "messages sent and not yet acknowledged, at most", cxxopts::value<std::string>()->default_value("50000"), "N")
      ("ack-timeout", "resend what is not acknowledged after MS milliseconds", cxxopts::value<std::string>()->default_value("3000"), "MS")
      ("retries", "resends before giving up: a message unacknowledged for --ack-timeout x (N+1) ends zpub with status 4 (12 s by default)", cxxopts::value<std::string>()->default_value("3"), "N")
      ("connect-timeout", "give up if the relay does not answer within MS milliseconds", cxxopts::value<std::string>()->default_value("3000"), "MS")
      ("heartbeat", "ZeroMQ heartbeat interval; the relay is reported lost after 3 silent intervals (0: off)", cxxopts::value<std::string>()->default_value("1000"), "MS")
      ("stats", "print sent/acked/nacked/retried and the rate on stderr at the end")
      ("h,help", "print this help")
      ("version", "print the version");
  // clang-format on
  add_security_options(o, true);
  auto r = parse_or_throw(o, argc, argv);
  parsed<pub_options> out;
  if (r.count("help")) {
    out.print = help_text(
        o, {"Message", "Delivery", "Security"},
        "\nWith a terminal on standard input and no -m, -f or -s, zpub asks for the topic and then for one\n"
        "message per line, and shows each acknowledgment; Ctrl-D ends.\n"
        "\nExit status: 0 every message acknowledged, 1 runtime error (cannot connect, cannot read input),\n"
        "2 usage error, 3 the relay refused a message (the reason is printed), 4 a message was never\n"
        "acknowledged (the relay went away, or a signal stopped zpub first). SIGINT, SIGTERM and SIGHUP\n"
        "stop it alike: it reads no more and exits 4 if messages were still unacknowledged.\n");
    return out;
  }
  if (r.count("version")) {
    out.print = std::string("zpub ") + version_string + "\n";
    return out;
  }
  auto& p = out.options;
  auto& pc = p.publisher;
  if (r.count("topic") > 1)
    throw usage_error("give one topic (-t); zpub publishes to one topic, or per line with --topic-sep");
  if (r.count("topic")) {
    p.topic = get(r, "topic");
    if (p.topic->empty()) throw usage_error("the topic must not be empty (-t)");
  }
  if (r.count("topic-sep")) {
    p.topic_sep = get(r, "topic-sep");
    if (p.topic_sep->empty()) throw usage_error("--topic-sep must not be empty");
  }
  if (r.count("message") + r.count("file") > 1) throw usage_error("give one input: -m MSG, -f FILE, or standard input");
  const bool lines = r.count("lines") > 0;
  if (r.count("message")) {
    p.source = pub_source::message;
    p.message = get(r, "message");
    p.whole = true;
    if (lines) throw usage_error("-l does not apply to -m");
  } else if (r.count("file")) {
    p.source = pub_source::file;
    p.file = get(r, "file");
    p.whole = !lines;
  } else if (r.count("stdin-file")) {
    p.whole = true;
  } else if (stdin_is_terminal) {
    p.source = pub_source::prompt;
  }
  if (r.count("stdin-file") && (lines || p.source == pub_source::message))
    throw usage_error(lines ? "-s and -l contradict each other" : "-s and -m contradict each other");
  if (r.count("delimiter")) {
    try {
      p.delimiter = parse_delimiter(get(r, "delimiter"));
    } catch (const std::invalid_argument& e) {
      throw usage_error(std::string("--delimiter: ") + e.what());
    }
  }
  p.skip_empty = r.count("skip-empty") > 0;
  p.max_msg_size = parse_size(get(r, "max-msg-size"), "--max-msg-size");
  if (!p.topic && !p.topic_sep && p.source != pub_source::prompt)
    throw usage_error("no topic: give -t TOPIC (or --topic-sep SEP to read it from each line)");

  const bool no_ack = r.count("no-ack") > 0;
  if (r.count("plain") && !no_ack)
    throw usage_error("--plain needs --no-ack (the relay acknowledges only zrelay batches)");
  pc.mode = !no_ack ? delivery::acked : r.count("plain") ? delivery::plain : delivery::batched;
  if (r.count("host")) {
    if (r.count("ack-connect") || r.count("pub-connect"))
      throw usage_error("give either -H HOST or --ack-connect/--pub-connect, not both");
    try {
      pc.ack_endpoint = tcp_endpoint(get(r, "host"), default_ack_port);
      pc.pub_endpoint = tcp_endpoint(get(r, "host"), default_pub_port);
    } catch (const endpoint_error& e) {
      throw usage_error(std::string("-H: ") + e.what());
    }
  }
  // Each mode talks to one socket of the relay: an endpoint for the other would be ignored.
  if (no_ack && r.count("ack-connect"))
    throw usage_error("--ack-connect does not apply with --no-ack (fire and forget goes to --pub-connect)");
  if (!no_ack && r.count("pub-connect"))
    throw usage_error("--pub-connect needs --no-ack (acknowledged messages go to --ack-connect)");
  if (r.count("ack-connect")) pc.ack_endpoint = checked_endpoint(get(r, "ack-connect"), endpoint_use::connect);
  if (r.count("pub-connect")) pc.pub_endpoint = checked_endpoint(get(r, "pub-connect"), endpoint_use::connect);
  pc.max_inflight = parse_uint(get(r, "max-inflight"), "--max-inflight", 1, 100'000'000);
  pc.ack_timeout = std::chrono::milliseconds(parse_uint(get(r, "ack-timeout"), "--ack-timeout", 1, 3'600'000));
  pc.retries = static_cast<int>(parse_uint(get(r, "retries"), "--retries", 0, 1000));
  pc.connect_timeout =
      std::chrono::milliseconds(parse_uint(get(r, "connect-timeout"), "--connect-timeout", 0, 3'600'000));
  pc.heartbeat = get_heartbeat(r);
  p.stats = r.count("stats") > 0;
  pc.curve = client_curve(r);
  return out;
}

namespace {

// Days from 1970-01-01 to the civil date y-m-d (proleptic Gregorian; H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool leap_year(unsigned y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Reads exactly `n` digits at text[at...]; false if they are not all digits.
bool digits(const std::string& text, std::size_t& at, std::size_t n, unsigned& v) {
  if (at + n > text.size()) return false;
  v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[at + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  at += n;
  return true;
}

bool expect(const std::string& text, std::size_t& at, const char* any) {
  if (at >= text.size() || std::strchr(any, text[at]) == nullptr) return false;
  ++at;
  return true;
}

// RFC 3339 date-time as ns since the epoch (may be negative); nullopt when the text is not one.
std::optional<std::int64_t> rfc3339_ns(const std::string& text) {
  std::size_t at = 0;
  unsigned y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!digits(text, at, 4, y) || !expect(text, at, "-") || !digits(text, at, 2, mo) || !expect(text, at, "-") ||
      !digits(text, at, 2, d) || !expect(text, at, "Tt ") || !digits(text, at, 2, h) || !expect(text, at, ":") ||
      !digits(text, at, 2, mi) || !expect(text, at, ":") || !digits(text, at, 2, sec))
    return std::nullopt;
  static const unsigned month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mo < 1 || mo > 12 || d < 1 || d > month_days[mo - 1] + (mo == 2 && leap_year(y) ? 1 : 0) || h > 23 || mi > 59 ||
      sec > 60)
    return std::nullopt;
  std::int64_t frac_ns = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    std::int64_t scale = 100000000;
    const auto from = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      frac_ns += (text[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == from) return std::nullopt;
  }
  std::int64_t offset_s = 0;
  if (expect(text, at, "Zz")) {
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const bool minus = text[at++] == '-';
    unsigned oh = 0, om = 0;
    if (!digits(text, at, 2, oh) || !expect(text, at, ":") || !digits(text, at, 2, om) || oh > 23 || om > 59)
      return std::nullopt;
    offset_s = (minus ? -1 : 1) * static_cast<std::int64_t>(oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (at != text.size()) return std::nullopt;
  // A leap second (:60) is the second after :59.
  const std::int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return secs * 1000000000 + frac_ns;
}

}  // namespace

std::uint64_t parse_since(const std::string& text, const std::string& what, std::chrono::system_clock::time_point now) {
  const auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  std::int64_t at = 0;
  if (const auto t = rfc3339_ns(text)) {
    at = *t;
  } else {
    // A duration: a whole number and a unit.
    std::uint64_t n = 0, per = 0;
    if (!split_duration(text, false, n, per))
      throw usage_error(what +
                        " takes a duration (90s, 10m, 2h, 1d) or an RFC 3339 time (2026-12-01T10:00:00Z, "
                        "2026-12-01T10:00:00+01:00), not '" +
                        text + "'");
    // Longer ago than the epoch (and than 64 bits of ns hold): from the start.
    const auto secs_now = static_cast<std::uint64_t>(now_ns < 0 ? 0 : now_ns / 1000000000);
    at = n > secs_now / per ? 0 : now_ns - static_cast<std::int64_t>(n * per) * 1000000000;
  }
  return at < 0 ? 0 : static_cast<std::uint64_t>(at);
}

parsed<sub_options> parse_sub(int argc, const char* const* argv, bool stdin_is_terminal) {
  cxxopts::Options o("zsub", "zsub: print the messages of a zrelay topic as they arrive.\n");
  o.custom_help("-t PREFIX [OPTIONS]");
  // One option a line, as cxxopts tables are written:
  // clang-format off
  o.add_options("Subscription")
      ("t,topic", "subscribe to topics starting with PREFIX (repeatable). ZeroMQ matches prefixes: 'news' also matches 'newsletter'; -t \"\" subscribes to everything", cxxopts::value<std::vector<std::string>>(), "PREFIX")
      ("H,host", "relay host: shorthand for --sub-connect tcp://HOST:" + std::to_string(default_sub_port) + " (with a replay option, --replay-connect tcp://HOST:" + std::to_string(default_replay_port) + ")", cxxopts::value<std::string>(), "HOST")
      ("sub-connect", "relay subscriber socket", cxxopts::value<std::string>()->default_value(default_endpoint(default_sub_port)), "EP")
      ("connect-timeout", "give up if the relay does not answer within MS milliseconds (0: wait)", cxxopts::value<std::string>()->default_value("3000"), "MS")
      ("heartbeat", "ZeroMQ heartbeat interval, on a connection of its own; the relay is reported lost after 3 silent intervals, never for a slow reader (0: off)", cxxopts::value<std::string>()->default_value("1000"), "MS")
      ("dedup", "drop messages seen before (after a publisher resent them)")
      ("T,filter-out", "do not print messages whose topic starts with PREFIX (repeatable), as mosquitto_sub -T (see below)", cxxopts::value<std::vector<std::string>>(), "PREFIX");
  o.add_options("Replay (from a relay started with --journal, then live)")
      ("all", "every message the relay's journal retains on these prefixes")
      ("from-seq", "from journal sequence N", cxxopts::value<std::string>(), "N")
      ("since", "what the relay accepted in the last DURATION (90s, 10m, 2h, 1d) or since an RFC 3339 time (2026-12-01T10:00:00Z, 2026-12-01T11:00:00+01:00)", cxxopts::value<std::string>(), "WHEN")
      ("last-per-topic", "the newest retained message of each matching topic (a last-value cache)")
      ("replay-connect", "relay replay socket (-H HOST sets its host too)", cxxopts::value<std::string>()->default_value(default_endpoint(default_replay_port)), "EP");
  o.add_options("Output")
      ("v,verbose", "print the topic, a space, then the payload; with a replay, say on stderr when it has caught up")
      ("json", "one JSON object per message: topic, payload (payload_base64 when not UTF-8), publisher, seq, journal_seq (from a journaling relay)")
      ("F,format", "print each message as FORMAT says (%-codes below), then a newline (NUL with -0), as mosquitto_sub -F does; overrides -v's topic and payload (-v still reports on a replay)", cxxopts::value<std::string>(), "FORMAT")
      ("0,null", "end each message with a NUL byte instead of a newline")
      ("C,count", "exit after N messages", cxxopts::value<std::string>(), "N")
      ("W,timeout", "exit with status 5 if no message arrives for SECONDS (one that -T filters out does not count)", cxxopts::value<std::string>(), "SECONDS")
      ("stats", "print received/gaps/missing/duplicates/disconnects on stderr at the end (missing>=N: messages lost in a disconnection are not all counted yet)")
      ("h,help", "print this help")
      ("version", "print the version");
  // clang-format on
  add_security_options(o, true);
  auto r = parse_or_throw(o, argc, argv);
  parsed<sub_options> out;
  if (r.count("help")) {
    out.print = help_text(
        o, {"Subscription", "Replay (from a relay started with --journal, then live)", "Output", "Security"},
        "\nMessages the relay could not deliver to this subscriber (it was too slow) show up as a gap in the\n"
        "publisher's sequence numbers; zsub reports each gap on stderr with the number of messages missing.\n"
        "A disconnection from the relay is reported too; the next message of each stream shows what it cost.\n"
        "\nA replay option reads the relay's journal through its replay socket instead of subscribing, and\n"
        "runs on into live delivery; with -v, zsub says on stderr when it has caught up. A replay from a\n"
        "sequence that retention removed starts at the oldest one retained, and zsub says so on stderr.\n"
        "\n-T PREFIX hides the messages whose topic starts with PREFIX (zsub's -t and -T match prefixes\n"
        "where mosquitto_sub's match topic filters): they are not printed and count for neither -C nor -W,\n"
        "but zsub still follows their sequence numbers, so a gap among them is reported on stderr, and\n"
        "--stats counts them as received.\n"
        "\n-F FORMAT: the text of FORMAT, with these codes replaced for each message:\n"
        "  %t  the topic\n"
        "  %p  the payload, as it is\n"
        "  %x  the payload in hexadecimal, lower case\n"
        "  %X  the payload in hexadecimal, upper case\n"
        "  %l  the length of the payload in bytes\n"
        "  %j  the message as one JSON object, as --json writes it\n"
        "  %i  the publisher id, 16 hex digits; '-' for a message that has none (from a plain ZeroMQ\n"
        "      publisher or zpub --plain)\n"
        "  %s  the message's sequence number within its publisher and topic; '-' likewise\n"
        "  %n  the relay's journal sequence (from a relay with --journal); '-' when not known\n"
        "  %I  when zsub received the message, ISO 8601 in local time to the second:\n"
        "      2026-12-01T22:04:05+01:00 (a live message carries no time on the wire; a replayed one,\n"
        "      too, shows when zsub read it, not when the relay stored it)\n"
        "  %U  when zsub received the message, Unix time with nanoseconds: 1796159045.123456789\n"
        "  %%  a %\n"
        "  \\n  a newline\n"
        "  \\t  a tab\n"
        "  \\0  a NUL byte\n"
        "  \\r  a carriage return\n"
        "  \\e  an escape (for colours)\n"
        "  \\a  a bell\n"
        "  \\v  a vertical tab\n"
        "  \\\\  a \\\n"
        "  @@  a @ (mosquitto_sub's @ time sequences are not supported: use %I or %U)\n"
        "Any other %, \\ or @ sequence, or one cut short at the end, is a usage error, and so is -F with\n"
        "--json (-F %j prints the same). Example: zsub -t logs. -F '%I %t %p'.\n"
        "\nExit status: 0 done (-C reached, or SIGINT/SIGTERM/SIGHUP), 1 runtime error (cannot connect,\n"
        "cannot write), 2 usage error, 3 the relay refused the subscription (a topic over its --max-topic),\n"
        "5 -W elapsed with no message.\n");
    return out;
  }
  if (r.count("version")) {
    out.print = std::string("zsub ") + version_string + "\n";
    return out;
  }
  auto& s = out.options;
  if (r.count("topic")) {
    s.subscriber.topics = r["topic"].as<std::vector<std::string>>();
  } else if (stdin_is_terminal) {
    s.prompt_topic = true;
  } else {
    throw usage_error("no topic: give -t PREFIX (-t \"\" subscribes to everything)");
  }
  auto& rc = s.subscriber.replay;
  if (r.count("all") + r.count("from-seq") + r.count("since") + r.count("last-per-topic") > 1)
    throw usage_error("give one replay option: --all, --from-seq, --since or --last-per-topic");
  if (r.count("all")) {
    rc.mode = replay_mode::from_seq;
    rc.value = 1;
  } else if (r.count("from-seq")) {
    rc.mode = replay_mode::from_seq;
    rc.value = parse_uint(get(r, "from-seq"), "--from-seq", 1, std::numeric_limits<std::int64_t>::max());
  } else if (r.count("since")) {
    rc.mode = replay_mode::since;
    rc.value = parse_since(get(r, "since"), "--since", std::chrono::system_clock::now());
  } else if (r.count("last-per-topic")) {
    rc.mode = replay_mode::last_per_topic;
  }
  const bool replay = rc.mode != replay_mode::none;
  // A replay talks to the replay socket only: an endpoint for the subscriber socket would be ignored.
  if (replay && r.count("sub-connect"))
    throw usage_error("--sub-connect does not apply to a replay (it connects to --replay-connect)");
  if (!replay && r.count("replay-connect"))
    throw usage_error("--replay-connect needs a replay option (--all, --from-seq, --since or --last-per-topic)");
  if (r.count("host")) {
    if (r.count("sub-connect")) throw usage_error("give either -H HOST or --sub-connect, not both");
    if (r.count("replay-connect")) throw usage_error("give either -H HOST or --replay-connect, not both");
    try {
      s.subscriber.endpoint = tcp_endpoint(get(r, "host"), default_sub_port);
      rc.endpoint = tcp_endpoint(get(r, "host"), default_replay_port);
    } catch (const endpoint_error& e) {
      throw usage_error(std::string("-H: ") + e.what());
    }
  } else {
    s.subscriber.endpoint = checked_endpoint(get(r, "sub-connect"), endpoint_use::connect);
    rc.endpoint = checked_endpoint(get(r, "replay-connect"), endpoint_use::connect);
  }
  s.subscriber.connect_timeout =
      std::chrono::milliseconds(parse_uint(get(r, "connect-timeout"), "--connect-timeout", 0, 3'600'000));
  s.subscriber.dedup = r.count("dedup") > 0;
  s.subscriber.heartbeat = get_heartbeat(r);
  if (r.count("json") && r.count("format")) throw usage_error("give either --json or -F (-F %j prints the same)");
  if (r.count("json") && r.count("verbose")) throw usage_error("--json already includes the topic; drop -v");
  s.format = r.count("json") ? sub_format::json : r.count("verbose") ? sub_format::topic_payload : sub_format::payload;
  if (r.count("format")) {
    const auto spec = get(r, "format");
    if (spec.empty()) throw usage_error("-F needs a FORMAT, not an empty one");
    try {
      s.custom.emplace(spec);
    } catch (const format_error& e) {
      throw usage_error(std::string("-F: ") + e.what());
    }
    s.format = sub_format::custom;
  }
  if (r.count("filter-out")) {
    s.filter_out = r["filter-out"].as<std::vector<std::string>>();
    for (const auto& f : s.filter_out)
      if (f.empty()) throw usage_error("-T \"\" would filter out every message");
  }
  if (r.count("null")) s.terminator = '\0';
  if (r.count("count")) s.count = parse_uint(get(r, "count"), "-C", 1, std::numeric_limits<std::uint64_t>::max() / 2);
  if (r.count("timeout")) s.idle = parse_seconds(get(r, "timeout"), "-W", false);
  s.stats = r.count("stats") > 0;
  s.verbose = r.count("verbose") > 0;
  s.subscriber.curve = client_curve(r);
  return out;
}

}  // namespace zrelay::cli
