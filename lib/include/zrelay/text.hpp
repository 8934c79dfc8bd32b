#pragma once
// Bytes as text: hex ids, log-safe renderings of untrusted bytes, JSON string literals.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace zrelay {

/// A publisher id as people see it: 16 lowercase hex digits.
std::string to_hex(std::uint64_t v);

/// Untrusted bytes for a log line (a topic, a subscription): printable ASCII as it is; every other
/// byte, and \ and ', as \xHH. At most `limit` bytes are shown, then "..." if there were more.
std::string printable(const void* data, std::size_t size, std::size_t limit = 80);

/// Appends `s` as a JSON string literal: " and \ escaped, control characters (and DEL) as \n, \t …
/// or \u00XX, everything else as it is. `s` must be valid UTF-8 for the result to be valid JSON.
void append_json_string(std::string& out, std::string_view s);

}  // namespace zrelay
