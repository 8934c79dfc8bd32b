#pragma once
// zrelay's reload (SIGHUP, `zrelay ctl reload`): the command line and its --config file read again,
// what can change while the relay runs applied, the rest reported as needing a restart.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "zrelay/options.hpp"
#include "zrelay/relay.hpp"

namespace zrelay {

/// What a reload did, one line per setting that changed (for the log and `zrelay ctl reload`).
struct reload_report {
  bool ok = true;  ///< false: the new configuration is not valid, and nothing changed
  std::vector<std::string> lines;
};

/// Whether `key` (a long option of zrelay) can change while the relay runs.
bool reloadable(const std::string& key);

/// From the relay thread only (a watch handler): parses `args` (zrelay's command line, the program
/// name first) again — so its --config file, key files and allowlist are read again — and applies
/// to `r` what can change live; `current` becomes the options in force. `set_stats` applies a new
/// stats interval. A configuration that does not parse changes nothing; the report says why.
reload_report reload_relay(relay& r, relay_options& current, const std::vector<std::string>& args,
                           const std::function<void(std::chrono::milliseconds)>& set_stats);

}  // namespace zrelay
