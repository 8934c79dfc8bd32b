#pragma once
// Text forms of messages for zsub's output: JSON (binary-safe), base64, UTF-8 checks.

#include <cstdint>
#include <string>
#include <string_view>

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

}  // namespace zrelay
