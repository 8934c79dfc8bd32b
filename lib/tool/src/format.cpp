#include "zrelay/format.hpp"

#include <charconv>
#include <cstdint>
#include <cstdio>

namespace zrelay {

bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n;
    std::uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= n) return false;
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    static constexpr std::uint32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    p += n + 1;
  }
  return true;
}

void append_base64(std::string& out, std::string_view s) {
  static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  std::size_t i = 0;
  for (; i + 3 <= s.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  const std::size_t rest = s.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t{p[i]} << 16;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) | (std::uint32_t{p[i + 1]} << 8);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += '=';
  }
}

namespace {

void append_field(std::string& out, const char* name, std::string_view value) {
  out += '"';
  out += name;
  if (valid_utf8(value)) {
    out += "\":";
    append_json_string(out, value);
  } else {
    out += "_base64\":\"";
    append_base64(out, value);
    out += '"';
  }
}

}  // namespace

void append_json_message(std::string& out, const message_view& m) {
  out += '{';
  append_field(out, "topic", m.topic);
  out += ',';
  append_field(out, "payload", m.payload);
  if (m.publisher != 0) {
    out += ",\"publisher\":\"";
    out += to_hex(m.publisher);
    out += "\",\"seq\":";
    out += std::to_string(m.topic_seq);
  }
  if (m.journal_seq != 0) {
    out += ",\"journal_seq\":";
    out += std::to_string(m.journal_seq);
  }
  out += '}';
}

namespace {

void append_number(std::string& out, std::uint64_t v) {
  char buf[20];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, static_cast<std::size_t>(r.ptr - buf));  // (pointer, pointer) would be the slow iterator form
}

void append_hex(std::string& out, std::string_view s, const char* digits) {
  const auto at = out.size();
  out.resize(at + 2 * s.size());
  char* p = &out[at];
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    *p++ = digits[b >> 4];
    *p++ = digits[b & 15];
  }
}

void append_id(std::string& out, std::uint64_t v) {
  static constexpr char digits[] = "0123456789abcdef";
  const auto at = out.size();
  out.resize(at + 16);
  char* p = &out[at];
  for (int i = 15; i >= 0; --i, v >>= 4) p[i] = digits[v & 15];
}

// mosquitto_sub's codes that have no counterpart in zrelay (MQTT properties, QoS, retain, a raw JSON payload).
bool mosquitto_only(char c) { return std::string_view("ACDEFJmPqRrS").find(c) != std::string_view::npos; }

}  // namespace

message_format::message_format(std::string_view spec) {
  auto add = [this](field f) {
    parts_.push_back({f, {}});
    if (f == field::iso_time || f == field::unix_time) uses_time_ = true;
  };
  auto add_text = [this](char c) {
    if (parts_.empty() || parts_.back().what != field::text) parts_.push_back({field::text, {}});
    parts_.back().text += c;
  };
  for (std::size_t i = 0; i < spec.size(); ++i) {
    const char c = spec[i];
    if (c != '%' && c != '\\' && c != '@') {
      add_text(c);
      continue;
    }
    if (i + 1 == spec.size())
      throw format_error(std::string("a lone '") + c + "' at the end" +
                         (c == '%'    ? " (write %% for a %)"
                          : c == '\\' ? " (write \\\\ for a \\)"
                                      : " (write @@ for a @)"));
    const char n = spec[++i];
    // What the user typed, for the error: a character of several UTF-8 bytes whole.
    std::string seq{c, n};
    for (std::size_t j = i + 1; j < spec.size() && (spec[j] & 0xC0) == 0x80 && (n & 0x80); ++j) seq += spec[j];
    if (c == '@') {
      if (n != '@')
        throw format_error("'" + seq +
                           "': mosquitto_sub's @ time sequences are not supported (use %I or %U; @@ is a @)");
      add_text('@');
    } else if (c == '\\') {
      static constexpr std::string_view from = "\\0aenrtv", to("\\\0\a\033\n\r\t\v", 8);
      const auto at = from.find(n);
      if (at == std::string_view::npos) throw format_error("unknown escape '" + seq + "'");
      add_text(to[at]);
    } else {
      switch (n) {
        case '%': add_text('%'); break;
        case 't': add(field::topic); break;
        case 'p': add(field::payload); break;
        case 'x': add(field::hex); break;
        case 'X': add(field::hex_upper); break;
        case 'l': add(field::length); break;
        case 'j': add(field::json); break;
        case 'i': add(field::publisher); break;
        case 's': add(field::seq); break;
        case 'n': add(field::journal_seq); break;
        case 'I': add(field::iso_time); break;
        case 'U': add(field::unix_time); break;
        default:
          if (n == '-' || n == '.' || (n >= '0' && n <= '9'))
            throw format_error("'" + seq + "': field widths and precisions (mosquitto_sub's %10t) are not supported");
          if (mosquitto_only(n))
            throw format_error("'" + seq + "' is one of mosquitto_sub's MQTT codes, with no counterpart in zrelay");
          throw format_error("unknown code '" + seq + "'");
      }
    }
  }
}

void message_format::append(std::string& out, const message_view& m, const timespec& received) {
  for (const auto& p : parts_) {
    switch (p.what) {
      case field::text:
        // Most text between codes is one character (a space, a tab), cheaper as one.
        if (p.text.size() == 1) {
          out += p.text[0];
        } else {
          out += p.text;
        }
        break;
      case field::topic: out.append(m.topic); break;
      case field::payload: out.append(m.payload); break;
      case field::hex: append_hex(out, m.payload, "0123456789abcdef"); break;
      case field::hex_upper: append_hex(out, m.payload, "0123456789ABCDEF"); break;
      case field::length: append_number(out, m.payload.size()); break;
      case field::json: append_json_message(out, m); break;
      case field::publisher:
        if (m.publisher != 0) {
          append_id(out, m.publisher);
        } else {
          out += '-';
        }
        break;
      case field::seq:
        if (m.publisher != 0) {
          append_number(out, m.topic_seq);
        } else {
          out += '-';
        }
        break;
      case field::journal_seq:
        if (m.journal_seq != 0) {
          append_number(out, m.journal_seq);
        } else {
          out += '-';
        }
        break;
      case field::iso_time:
        // localtime_r costs a time zone lookup: once per second is enough.
        if (!iso_cached_ || received.tv_sec != iso_second_) {
          std::tm local{};
          iso_text_.clear();
          if (localtime_r(&received.tv_sec, &local) != nullptr)
            append_iso8601(iso_text_, received.tv_sec, local.tm_gmtoff);
          iso_second_ = received.tv_sec;
          iso_cached_ = true;
        }
        out += iso_text_;
        break;
      case field::unix_time: {
        // A timespec before 1970 counts its nanoseconds up from a negative second: -0.5 s is {-1, 500000000}.
        std::int64_t sec = received.tv_sec;
        long ns = received.tv_nsec;
        if (sec < 0) {
          out += '-';
          if (ns > 0) {
            sec += 1;
            ns = 1'000'000'000 - ns;
          }
          sec = -sec;
        }
        append_number(out, static_cast<std::uint64_t>(sec));
        char digits[10] = {'.'};
        for (int i = 9; i >= 1; --i, ns /= 10) digits[i] = static_cast<char>('0' + ns % 10);
        out.append(digits, 10);
        break;
      }
    }
  }
}

void append_iso8601(std::string& out, std::time_t t, long utc_offset) {
  const std::time_t shifted = t + utc_offset;
  std::tm tm{};
  if (gmtime_r(&shifted, &tm) == nullptr) return;
  const int off = static_cast<int>((utc_offset < 0 ? -utc_offset : utc_offset) % 86400);  // zones are within a day
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, utc_offset < 0 ? '-' : '+', off / 3600, off / 60 % 60);
  out += buf;
}

}  // namespace zrelay
