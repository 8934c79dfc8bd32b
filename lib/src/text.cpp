#include "zrelay/text.hpp"

namespace zrelay {
namespace {

constexpr char hex_digits[] = "0123456789abcdef";

void append_hex_byte(std::string& out, unsigned char c) {
  out += hex_digits[c >> 4];
  out += hex_digits[c & 15];
}

}  // namespace

std::string to_hex(std::uint64_t v) {
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = hex_digits[v & 15];
  return s;
}

// \ and ' are escaped too: the text is shown between single quotes, and a backslash that was in
// the input must not read as the start of an escape.
std::string printable(const void* data, std::size_t size, std::size_t limit) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  for (std::size_t i = 0; i < size && i < limit; ++i) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      append_hex_byte(out, c);
    }
  }
  if (size > limit) out += "...";
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\u00";
          append_hex_byte(out, c);
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

}  // namespace zrelay
