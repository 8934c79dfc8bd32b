#pragma once
// The command-line layer shared by zrelay, zpub and zsub: parsing from an argv list (no sockets,
// testable in-process; only the key files named on it are read), usage errors, and the exit
// statuses documented in README.md.

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "zrelay/options.hpp"

namespace zrelay::cli {

/// Exit statuses of all tools (README "Exit status").
enum exit_code : int {
  exit_ok = 0,
  exit_error = 1,    ///< runtime error: cannot bind, cannot connect, I/O
  exit_usage = 2,    ///< bad command line
  exit_refused = 3,  ///< zpub: the relay refused at least one message (NACK)
  exit_unacked = 4,  ///< zpub: at least one message was never acknowledged
  exit_idle = 5,     ///< zsub: -W elapsed with no message
};

/// A bad command line; what() is one sentence without the tool name.
class usage_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A parsed command line: the options, or text to print and exit 0 with (--help, --version).
template <class Options>
struct parsed {
  Options options;
  std::string print;
};

/// Parses zrelay's arguments; throws usage_error, or key_error for a bad key file or allowlist.
parsed<relay_options> parse_relay(int argc, const char* const* argv);
/// The NAME of `zrelay keygen NAME` (argv[1] is "keygen"); throws usage_error.
std::string parse_keygen(int argc, const char* const* argv);
/// `zrelay ctl stats|reload [--control-connect EP] [--timeout MS]` (argv[1] is "ctl"); throws
/// usage_error. --help gives the text to print.
parsed<ctl_options> parse_ctl(int argc, const char* const* argv);
/// Parses zpub's arguments; `stdin_is_terminal` decides whether it may prompt. Throws usage_error
/// (key_error for a bad key file).
parsed<pub_options> parse_pub(int argc, const char* const* argv, bool stdin_is_terminal);
/// Parses zsub's arguments; throws usage_error (key_error for a bad key file).
parsed<sub_options> parse_sub(int argc, const char* const* argv, bool stdin_is_terminal);

/// "1", "64k", "1M", "2G" (powers of 1024) as bytes; throws usage_error naming `what`.
std::size_t parse_size(const std::string& text, const std::string& what);
/// "90s", "10m", "2h", "7d" (a bare number is seconds) as seconds, at least 1; throws usage_error naming `what`.
std::chrono::seconds parse_duration(const std::string& text, const std::string& what);

/// zsub --since: a duration back from `now` ("90s", "10m", "2h", "1d") or an RFC 3339 time
/// ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00.5+01:00"), as ns since the Unix epoch (0 for a
/// moment before it). Throws usage_error naming `what`.
std::uint64_t parse_since(const std::string& text, const std::string& what, std::chrono::system_clock::time_point now);

}  // namespace zrelay::cli
