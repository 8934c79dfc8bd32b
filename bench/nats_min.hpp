#pragma once
// nats-min's parser of what nats-server sends a client: one frame at the front of a buffer,
// parsed in place (the subject and payload point into the buffer), no sockets and no allocation.

#include <cstddef>
#include <cstring>
#include <string_view>

namespace nats_min {

/// One frame from the server. For a MSG, `subject` and `payload` point into the parsed buffer.
struct frame {
  enum class kind { msg, ping, pong, ok, err, info };
  kind what = kind::ok;
  std::string_view subject;
  std::string_view payload;
  std::string_view line;  ///< the control line without its CRLF (INFO, -ERR, a MSG header)
};

/// parse() could not take a frame: more bytes are needed, or this is not the NATS protocol.
inline constexpr long need_more = 0;
inline constexpr long bad = -1;

/// Parses the frame at the front of [p, p + n): the bytes it took (> 0), need_more, or bad.
inline long parse(const char* p, std::size_t n, frame& f) {
  constexpr std::size_t max_line = 64 * 1024;
  const auto* nl = static_cast<const char*>(std::memchr(p, '\n', n < max_line ? n : max_line));
  if (nl == nullptr) return n >= max_line ? bad : need_more;
  const auto header = static_cast<std::size_t>(nl - p) + 1;
  if (header < 2 || nl[-1] != '\r') return bad;
  const std::string_view line(p, header - 2);
  f.line = line;
  if (line.size() > 4 && line.compare(0, 4, "MSG ") == 0) {
    // MSG <subject> <sid> [reply-to] <#bytes>: the size is the last field.
    std::size_t size = 0, digits = 0, mult = 1;
    for (auto i = line.size(); i > 4 && line[i - 1] != ' '; --i, ++digits) {
      const char c = line[i - 1];
      if (c < '0' || c > '9' || digits >= 12) return bad;
      size += static_cast<std::size_t>(c - '0') * mult;
      mult *= 10;
    }
    const auto subject_end = line.find(' ', 4);
    if (digits == 0 || subject_end == std::string_view::npos || subject_end == 4 ||
        subject_end >= line.size() - digits - 1)
      return bad;  // no size, no subject, or no sid between them
    const std::size_t total = header + size + 2;
    if (n < total) return need_more;
    if (p[header + size] != '\r' || p[header + size + 1] != '\n') return bad;
    f.what = frame::kind::msg;
    f.subject = line.substr(4, subject_end - 4);
    f.payload = std::string_view(p + header, size);
    return static_cast<long>(total);
  }
  f.subject = f.payload = std::string_view();
  if (line == "PING") f.what = frame::kind::ping;
  else if (line == "PONG") f.what = frame::kind::pong;
  else if (line == "+OK") f.what = frame::kind::ok;
  else if (line.compare(0, 4, "-ERR") == 0) f.what = frame::kind::err;
  else if (line.compare(0, 5, "INFO ") == 0) f.what = frame::kind::info;
  else return bad;
  return static_cast<long>(header);
}

}  // namespace nats_min
