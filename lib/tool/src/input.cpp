#include "zrelay/input.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace zrelay {

record_splitter::record_splitter(std::string delimiter, std::size_t max_record)
    : delim_(std::move(delimiter)), max_(max_record) {
  if (delim_.empty()) throw std::invalid_argument("the delimiter must not be empty");
}

void record_splitter::emit(std::string_view data, std::uint64_t size, const record_fn& fn,
                           const oversized_fn& on_oversized) {
  skipped_ = 0;
  if (max_ != 0 && size > max_) {
    if (on_oversized) on_oversized(size);
  } else {
    fn(data);
  }
}

void record_splitter::feed(std::string_view data, const record_fn& fn, const oversized_fn& on_oversized) {
  // Compact before growing, so the buffer holds at most one partial record plus one chunk.
  if (start_ > 0 && start_ >= buf_.size() / 2) {
    buf_.erase(0, start_);
    start_ = 0;
  }
  const std::size_t scan_from = buf_.size() >= delim_.size() - 1 ? buf_.size() - (delim_.size() - 1) : 0;
  buf_.append(data.data(), data.size());
  std::size_t pos = std::max(scan_from, start_);
  const char* base = buf_.data();
  const std::size_t size = buf_.size();
  for (;;) {
    std::size_t hit;
    if (delim_.size() == 1) {
      const void* p = std::memchr(base + pos, delim_[0], size - pos);
      if (!p) break;
      hit = static_cast<std::size_t>(static_cast<const char*>(p) - base);
    } else {
      hit = std::string_view(base, size).find(delim_, pos);
      if (hit == std::string_view::npos) break;
    }
    emit(std::string_view(base + start_, hit - start_), skipped_ + (hit - start_), fn, on_oversized);
    start_ = hit + delim_.size();
    pos = start_;
  }
  if (start_ == buf_.size()) {
    buf_.clear();
    start_ = 0;
  } else if (max_ != 0 && (skipped_ > 0 || pending() > max_ + delim_.size() - 1)) {
    // Over the limit and not finished (the last bytes may yet begin a delimiter split across
    // reads): drop what is held but those.
    const std::size_t drop = pending() - std::min(pending(), delim_.size() - 1);
    skipped_ += drop;
    start_ += drop;
  }
}

void record_splitter::finish(const record_fn& fn, const oversized_fn& on_oversized) {
  if (start_ < buf_.size() || skipped_ > 0)
    emit(std::string_view(buf_.data() + start_, buf_.size() - start_), skipped_ + pending(), fn, on_oversized);
  buf_.clear();
  start_ = 0;
}

std::optional<std::pair<std::string_view, std::string_view>> split_topic(std::string_view record,
                                                                         std::string_view sep) {
  if (sep.empty()) return std::nullopt;
  const auto at = sep.size() == 1 ? record.find(sep[0]) : record.find(sep);  // one byte: memchr
  if (at == std::string_view::npos) return std::nullopt;
  return std::make_pair(record.substr(0, at), record.substr(at + sep.size()));
}

std::string parse_delimiter(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    const char c = text[++i];
    switch (c) {
      case 'n': out += '\n'; break;
      case 't': out += '\t'; break;
      case 'r': out += '\r'; break;
      case '0': out += '\0'; break;
      case '\\': out += '\\'; break;
      case 'x': {
        const auto hexval = [](char h) -> int {
          if (h >= '0' && h <= '9') return h - '0';
          if (h >= 'a' && h <= 'f') return h - 'a' + 10;
          if (h >= 'A' && h <= 'F') return h - 'A' + 10;
          return -1;
        };
        const int hi = i + 1 < text.size() ? hexval(text[i + 1]) : -1;
        const int lo = i + 2 < text.size() ? hexval(text[i + 2]) : -1;
        if (hi < 0 || lo < 0) throw std::invalid_argument("'\\x' needs two hex digits");
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        break;
      }
      default:
        throw std::invalid_argument(std::string("unknown escape '\\") + c + "' (use \\n \\t \\r \\0 \\\\ or \\xHH)");
    }
  }
  if (out.empty()) throw std::invalid_argument("the delimiter must not be empty");
  return out;
}

}  // namespace zrelay
