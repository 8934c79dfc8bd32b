#pragma once
// Turning a byte stream into messages: records split at a delimiter, optionally "topic SEP payload".

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace zrelay {

/// Splits a stream into records at a delimiter of one or more bytes. No length limit; the bytes
/// are passed through exactly (a "\r" before "\n" stays part of the record).
class record_splitter {
public:
  using record_fn = std::function<void(std::string_view)>;

  /// `delimiter` must not be empty.
  explicit record_splitter(std::string delimiter);
  /// Feeds bytes; calls fn for each record completed by them.
  void feed(std::string_view data, const record_fn& fn);
  /// End of input: a last record that had no delimiter after it, if any.
  void finish(const record_fn& fn);
  /// Bytes held waiting for their delimiter.
  std::size_t pending() const { return buf_.size() - start_; }

private:
  std::string delim_;
  std::string buf_;
  std::size_t start_ = 0;  // first byte of buf_ not yet part of a record
};

/// Splits "topic<sep>payload" at the first sep; nullopt when sep does not occur.
std::optional<std::pair<std::string_view, std::string_view>> split_topic(std::string_view record,
                                                                          std::string_view sep);

/// Turns the text of a --delimiter option into bytes: "\n", "\t", "\r", "\0", "\\" and "\xHH"
/// are escapes, anything else is taken literally. Throws std::invalid_argument for "" or a bad escape.
std::string parse_delimiter(std::string_view text);

}  // namespace zrelay
