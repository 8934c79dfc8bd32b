#pragma once
// zrelay --config FILE: a TOML file in which every command-line option of zrelay has a key with the
// same name (pub-bind = "tcp://127.0.0.1:5559", hwm = 1000, verbose = true). The file is read with
// toml++ (Debian's libtomlplusplus-dev); each value is checked for its type here and turned into the
// text the option would take on the command line, so that parse_relay checks a value the same way
// wherever it came from, and names the file, the line and the key when it is wrong.

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace zrelay::cli {

/// How a key's value is written in TOML.
enum class value_kind {
  text,      ///< a string: an endpoint, a path, drop|block
  whole,     ///< an integer
  seconds,   ///< an integer or a float (stats-interval = 0.5)
  size,      ///< an integer (bytes) or a string with a unit ("64M")
  duration,  ///< an integer (seconds) or a string with a unit ("7d")
  on_off,    ///< true/false or "on"/"off"
  flag,      ///< true or false (a flag such as verbose)
};

/// One key of a config file: the option's command-line text ("1000", "64M", "on", "true") and the
/// line it is on.
struct config_value {
  std::string text;
  std::size_t line = 0;
};

/// A config file, read: its path (as given) and its keys.
struct config_file {
  std::string path;
  std::map<std::string, config_value> values;
  /// "zrelay.toml:7: hwm" — how an error about `key` names it.
  std::string where(const std::string& key) const;
};

/// The keys zrelay's config file may have, and how each is written: zrelay's long options, less
/// --help, --version, --config and --print-config.
const std::map<std::string, value_kind>& relay_keys();

/// Parses TOML text read from `path`. Throws usage_error "PATH:LINE: …" for a TOML syntax error, a
/// key not in `keys`, a table or an array, or a value of the wrong type for its key.
config_file parse_config(std::string_view toml, const std::string& path,
                         const std::map<std::string, value_kind>& keys = relay_keys());
/// Reads FILE and parses it; a file that cannot be read is a usage_error naming it.
config_file read_config(const std::string& path, const std::map<std::string, value_kind>& keys = relay_keys());

/// One line of TOML, `key = value\n`, for an option's command-line `text` (what --print-config
/// prints; parse_config reads it back to the same text).
std::string toml_line(const std::string& key, const std::string& text, value_kind kind);

}  // namespace zrelay::cli
