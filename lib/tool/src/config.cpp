#include "zrelay/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <vector>

#include <toml++/toml.h>

#include "zrelay/cli.hpp"

namespace zrelay::cli {
namespace {

std::string kind_name(value_kind k, const std::string& key) {
  switch (k) {
    case value_kind::text: return "a string (" + key + " = \"...\")";
    case value_kind::whole: return "an integer (" + key + " = 1000)";
    case value_kind::seconds: return "a number of seconds (" + key + " = 5 or " + key + " = 0.5)";
    case value_kind::size: return "a size: an integer of bytes or a string such as \"64M\"";
    case value_kind::duration: return "a duration: an integer of seconds or a string such as \"7d\"";
    case value_kind::on_off: return "true, false, \"on\" or \"off\"";
    case value_kind::flag: return "true or false";
  }
  return "?";
}

constexpr std::uint64_t max_config_bytes = std::uint64_t{1} << 20;

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "nothing";
  }
}

std::string float_text(double v) {
  std::ostringstream o;
  o.precision(15);
  o << v;
  return o.str();
}

// The option's command-line text for a value of the right type; false for the wrong type.
bool text_of(const toml::node& n, value_kind k, std::string& out) {
  switch (k) {
    case value_kind::text:
      if (!n.is_string()) return false;
      out = *n.value<std::string>();
      return true;
    case value_kind::whole:
      if (!n.is_integer()) return false;
      out = std::to_string(*n.value<std::int64_t>());
      return true;
    case value_kind::seconds:
      if (n.is_integer()) out = std::to_string(*n.value<std::int64_t>());
      else if (n.is_floating_point()) out = float_text(*n.value<double>());
      else return false;
      return true;
    case value_kind::size:
    case value_kind::duration:
      if (n.is_integer()) out = std::to_string(*n.value<std::int64_t>());
      else if (n.is_string()) out = *n.value<std::string>();
      else return false;
      return true;
    case value_kind::on_off:
      if (n.is_boolean()) out = *n.value<bool>() ? "on" : "off";
      else if (n.is_string()) out = *n.value<std::string>();
      else return false;
      return true;
    case value_kind::flag:
      if (!n.is_boolean()) return false;
      out = *n.value<bool>() ? "true" : "false";
      return true;
  }
  return false;
}

// Levenshtein distance, for "did you mean".
std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string suggestion(const std::string& key, const std::map<std::string, value_kind>& keys) {
  std::string best;
  std::size_t best_d = 3;  // at most two edits away
  for (const auto& k : keys) {
    std::string lower = key;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    const auto d = std::min(distance(key, k.first), distance(lower, k.first));
    if (d < best_d) {
      best_d = d;
      best = k.first;
    }
  }
  return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
}

// The code point of the UTF-8 sequence at s[i] (moving i to its last byte), or 0 when none is there.
std::uint32_t utf8_at(const std::string& s, std::size_t& i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  const std::size_t n = c >= 0xF0 && c <= 0xF4 ? 3 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xC2 && c <= 0xDF ? 1 : 0;
  if (n == 0 || i + n >= s.size()) return 0;
  std::uint32_t cp = c & (n == 1 ? 0x1F : n == 2 ? 0x0F : 0x07);
  for (std::size_t k = 1; k <= n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  const std::uint32_t least = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
  if (cp < least || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  i += n;
  return cp;
}

// A TOML basic string; false when `s` is not UTF-8 (which a TOML file cannot hold).
bool quoted(const std::string& s, std::string& out) {
  out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    // A non-ASCII character as an escape: the reader takes non-ASCII only on comment lines.
    if (c >= 0x80) {
      const auto cp = utf8_at(s, i);
      char buf[16];
      if (cp > 0xFFFF) std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(cp));
      else std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
      if (cp == 0) return false;
      out += buf;
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return true;
}

// toml++ 3.3.0 (Debian 12) reaches __builtin_unreachable when it classifies some non-ASCII code
// points (its table of Unicode whitespace: U+01CA in a value, for one): undefined behaviour on a
// hostile file. Found by the config fuzz target. So a non-ASCII byte is refused before toml++ sees
// the text, except on a comment line (one whose first character is '#'). A path or an endpoint with
// non-ASCII characters can be written with TOML's \uXXXX escapes in a string instead.
void refuse_non_ascii(std::string_view t, const std::string& path) {
  if (t.rfind("\xEF\xBB\xBF", 0) == 0)
    throw usage_error(path + ":1: the file starts with a UTF-8 byte order mark: save it without one");
  std::size_t line = 1;
  bool line_start = true, comment = false;
  for (const char c : t) {
    if (c == '\n') {
      ++line;
      line_start = true;
      comment = false;
      continue;
    }
    if (line_start && (c == ' ' || c == '\t')) continue;
    if (line_start) comment = c == '#';
    line_start = false;
    if (!comment && static_cast<unsigned char>(c) >= 0x80)
      throw usage_error(path + ":" + std::to_string(line) +
                        ": a non-ASCII character outside a comment line: write it as \\uXXXX in a string "
                        "(toml++ 3.3 mishandles some of them)");
  }
}

// A TOML integer as the command line would have it: an optional '-' and 1 to 19 digits (an int64).
bool integer_text(const std::string& s) {
  const std::size_t from = !s.empty() && s[0] == '-' ? 1 : 0;
  return s.size() > from && s.size() - from <= 19 &&
         std::all_of(s.begin() + static_cast<std::ptrdiff_t>(from), s.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string config_file::where(const std::string& key) const {
  const auto it = values.find(key);
  return path + ":" + (it == values.end() ? std::string("?") : std::to_string(it->second.line)) + ": " + key;
}

const std::map<std::string, value_kind>& relay_keys() {
  static const std::map<std::string, value_kind> keys = {
      {"pub-bind", value_kind::text},
      {"sub-bind", value_kind::text},
      {"ack-bind", value_kind::text},
      {"control-bind", value_kind::text},
      {"journal", value_kind::text},
      {"journal-fsync", value_kind::on_off},
      {"journal-max-bytes", value_kind::size},
      {"journal-max-age", value_kind::duration},
      {"journal-segment-size", value_kind::size},
      {"replay-bind", value_kind::text},
      {"upstream", value_kind::text},
      {"upstream-ack", value_kind::text},
      {"upstream-pub", value_kind::text},
      {"upstream-sub", value_kind::text},
      {"upstream-server-key", value_kind::text},
      {"on-full", value_kind::text},
      {"full-wait", value_kind::whole},
      {"hwm", value_kind::whole},
      {"max-msg-size", value_kind::size},
      {"max-topic", value_kind::size},
      {"heartbeat", value_kind::whole},
      {"stats-interval", value_kind::seconds},
      {"sys-interval", value_kind::seconds},
      {"metrics-bind", value_kind::text},
      {"spin", value_kind::whole},
      {"verbose", value_kind::flag},
      {"curve-key", value_kind::text},
      {"allow-keys", value_kind::text},
  };
  return keys;
}

config_file parse_config(std::string_view text, const std::string& path,
                         const std::map<std::string, value_kind>& keys) {
  config_file out;
  out.path = path;
  refuse_non_ascii(text, path);
  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    throw usage_error(path + ":" + std::to_string(e.source().begin.line) +
                      ": not valid TOML: " + std::string(e.description()));
  }
  for (auto&& [k, node] : root) {
    const std::string key(k.str());
    const auto line = static_cast<std::size_t>(node.source().begin.line);
    const std::string at = path + ":" + std::to_string(line) + ": ";
    if (node.is_table())
      throw usage_error(at + "'" + key +
                        "' is a table: a zrelay config has only key = value lines, each key a long option of "
                        "'zrelay --help'");
    const auto kind = keys.find(key);
    if (kind == keys.end())
      throw usage_error(at + "unknown key '" + key + "'" + suggestion(key, keys) +
                        ": the keys are the long options of 'zrelay --help'");
    std::string value;
    if (!text_of(node, kind->second, value))
      throw usage_error(at + key + " must be " + kind_name(kind->second, key) + ", not " + type_name(node));
    out.values[key] = {value, line};
  }
  return out;
}

config_file read_config(const std::string& path, const std::map<std::string, value_kind>& keys) {
  const auto cannot = [&](const std::string& why) {
    return usage_error("cannot read config file '" + path + "': " + why);
  };
  // Opened once and looked at through the descriptor: the file checked is the file read. O_NONBLOCK:
  // opening a FIFO does not wait for a writer (it is refused below).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw cannot(std::strerror(errno));
  struct closer {
    int fd;
    ~closer() { (void)::close(fd); }
  } const close_fd{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw cannot(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw cannot("it is a directory");
  // Not a FIFO or a device: reading one may never end (and signals wait meanwhile).
  if (!S_ISREG(st.st_mode)) throw cannot("not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) > max_config_bytes)
    throw cannot(std::to_string(st.st_size) + " bytes, more than a config file's " + std::to_string(max_config_bytes));
  // At most one byte past the limit, should the file grow while it is read.
  std::string text(max_config_bytes + 1, '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const auto n = ::read(fd, &text[got], text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw cannot(std::strerror(errno));
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > max_config_bytes) throw cannot("more than a config file's " + std::to_string(max_config_bytes) + " bytes");
  text.resize(got);
  return parse_config(text, path, keys);
}

namespace {

// TOML allows no leading zeros ("0100"), which the command line takes: the same number without them.
std::string without_leading_zeros(std::string s) {
  const std::size_t from = !s.empty() && s[0] == '-' ? 1 : 0;
  std::size_t zeros = 0;
  while (from + zeros + 1 < s.size() && s[from + zeros] == '0' && s[from + zeros + 1] >= '0' &&
         s[from + zeros + 1] <= '9')
    ++zeros;
  return s.erase(from, zeros);
}

}  // namespace

std::string toml_line(const std::string& key, const std::string& text, value_kind kind) {
  std::string value;
  const auto quote = [&](const std::string& t, std::string& out) {
    if (!quoted(t, out)) throw usage_error(key + ": '" + t + "' is not UTF-8, which TOML cannot hold");
  };
  switch (kind) {
    case value_kind::whole:
    case value_kind::size:
    case value_kind::duration:
      if (integer_text(text)) value = without_leading_zeros(text);
      else quote(text, value);
      break;
    case value_kind::seconds:
      // TOML wants a digit on both sides of the point: ".5" is 0.5, "5." is 5.0; and no leading zeros.
      value = without_leading_zeros(text);
      if (!value.empty() && value.front() == '.') value.insert(0, "0");
      if (!value.empty() && value.back() == '.') value += "0";
      break;
    case value_kind::flag: value = text == "true" ? "true" : "false"; break;
    case value_kind::on_off:
    case value_kind::text: quote(text, value); break;
  }
  return key + " = " + value + "\n";
}

}  // namespace zrelay::cli
