#pragma once
// Turning a byte stream into messages: records split at a delimiter, optionally "topic SEP payload".

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace zrelay {

/// Splits a stream into records at a delimiter of one or more bytes; the bytes are passed
/// through exactly (a "\r" before "\n" stays part of the record). With a limit, a record longer
/// than it is not held in memory: its bytes are counted and skipped, and when it ends its length
/// is reported instead.
class record_splitter {
public:
  using record_fn = std::function<void(std::string_view)>;
  using oversized_fn = std::function<void(std::uint64_t size)>;

  /// `delimiter` must not be empty. `max_record` 0: no limit.
  explicit record_splitter(std::string delimiter, std::size_t max_record = 0);
  /// Feeds bytes; calls fn for each record completed by them (and on_oversized, with its length,
  /// for each one over the limit).
  void feed(std::string_view data, const record_fn& fn, const oversized_fn& on_oversized = {});
  /// End of input: a last record that had no delimiter after it, if any.
  void finish(const record_fn& fn, const oversized_fn& on_oversized = {});
  /// Bytes held waiting for their delimiter.
  std::size_t pending() const { return buf_.size() - start_; }

private:
  // A record of `size` bytes ends; `data` is its bytes unless some were skipped.
  void emit(std::string_view data, std::uint64_t size, const record_fn& fn, const oversized_fn& on_oversized);

  std::string delim_;
  std::size_t max_;
  std::string buf_;
  std::size_t start_ = 0;      // first byte of buf_ not yet part of a record
  std::uint64_t skipped_ = 0;  // bytes of the current (oversized) record already dropped
};

/// Splits "topic<sep>payload" at the first sep; nullopt when sep does not occur.
std::optional<std::pair<std::string_view, std::string_view>> split_topic(std::string_view record, std::string_view sep);

/// Turns the text of a --delimiter option into bytes: "\n", "\t", "\r", "\0", "\\" and "\xHH"
/// are escapes, anything else is taken literally. Throws std::invalid_argument for "" or a bad escape.
std::string parse_delimiter(std::string_view text);

}  // namespace zrelay
