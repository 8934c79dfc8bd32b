#pragma once
// Text forms of messages for zsub's output: JSON (binary-safe), base64, UTF-8 checks, and the
// format strings of zsub -F.

#include <cstdint>
#include <ctime>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "zrelay/subscriber.hpp"
#include "zrelay/text.hpp"

namespace zrelay {

/// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF).
bool valid_utf8(std::string_view s);

/// Appends the standard base64 (RFC 4648, with padding) of `s`.
void append_base64(std::string& out, std::string_view s);

/// Appends one JSON object and no newline:
/// {"topic":"…","payload":"…","publisher":"<16 hex>","seq":N,"journal_seq":J}. A topic or payload
/// that is not UTF-8 is written as "topic_base64" / "payload_base64" instead; publisher and seq
/// appear only for sequenced (zrelay) messages, journal_seq only when known (a journaling relay).
void append_json_message(std::string& out, const message_view& m);

/// A -F format string that cannot be used; what() names the bad sequence.
class format_error : public std::invalid_argument {
public:
  using std::invalid_argument::invalid_argument;
};

/// A zsub -F format string (mosquitto_sub's %-codes and \-escapes, those that mean something here:
/// see zsub --help), parsed once into parts so that formatting a message is one pass over them.
class message_format {
public:
  /// Parses `spec`; throws format_error for an unknown or unsupported code or escape, a lone % or
  /// \ at the end, or @ (mosquitto_sub's time sequences) other than @@.
  explicit message_format(std::string_view spec);
  /// True when a part prints the time of receipt (%I, %U): only then need the caller read the clock.
  bool uses_time() const { return uses_time_; }
  /// Appends `m` as the format says, with no terminator; `received` is when it arrived
  /// (CLOCK_REALTIME), printed in local time by %I. Not const: %I reuses the text of the last second.
  void append(std::string& out, const message_view& m, const timespec& received);

private:
  enum class field {
    text,
    topic,
    payload,
    hex,
    hex_upper,
    length,
    json,
    publisher,
    seq,
    journal_seq,
    iso_time,
    unix_time
  };
  struct part {
    field what;
    std::string text;  // field::text only
  };
  std::vector<part> parts_;
  bool uses_time_ = false;
  bool iso_cached_ = false;
  std::time_t iso_second_ = 0;  // the second iso_text_ shows, when iso_cached_
  std::string iso_text_;
};

/// Appends `t` (seconds since the Unix epoch) as RFC 3339 / ISO 8601 to the second, in the time zone
/// `utc_offset` seconds east of UTC: 2026-12-01T22:04:05+01:00 (+00:00 for UTC).
void append_iso8601(std::string& out, std::time_t t, long utc_offset);

}  // namespace zrelay
