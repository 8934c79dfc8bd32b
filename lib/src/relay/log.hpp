#pragma once
// The relay's log: where its lines for people go, safe to change while the relay runs (set_logger
// from another thread; the security handler logs from its own).

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "zrelay/detail/once.hpp"

namespace zrelay {

class relay_log {
public:
  using log_fn = std::function<void(std::string_view)>;

  void set(log_fn fn, bool verbose) {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = std::move(fn);
    verbose_.store(verbose, std::memory_order_relaxed);
  }
  bool verbose() const { return verbose_.load(std::memory_order_relaxed); }

  /// Logs a line.
  void line(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (fn_) fn_(text);
  }
  /// Logs `text()` with verbose on; builds nothing otherwise.
  template <typename TextFn>
  void note(const TextFn& text) {
    if (verbose()) line(text());
  }
  /// Logs the first warning of kind `k` (all of them with verbose), saying that further ones are
  /// counted; `text()` builds the line only when it is logged.
  template <typename Kind, typename TextFn>
  void warn_once(detail::once_per_kind<Kind>& flags, Kind k, const TextFn& text,
                 std::string_view further = " (further ones are counted, not logged)") {
    const bool v = verbose();
    if (flags.first(k, v)) line(text() + (v ? std::string() : std::string(further)));
  }

private:
  std::mutex mutex_;
  log_fn fn_;
  std::atomic<bool> verbose_{false};
};

}  // namespace zrelay
