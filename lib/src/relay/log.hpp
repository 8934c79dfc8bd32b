#pragma once
// The relay's log: where its lines for people go, safe to change while the relay runs (set_logger
// from another thread; the security handler logs from its own).

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "zrelay/detail/once.hpp"

namespace zrelay {

class relay_log {
public:
  using log_fn = std::function<void(std::string_view)>;

  void set(log_fn fn, bool verbose) {
    auto shared = fn ? std::make_shared<const log_fn>(std::move(fn)) : nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = std::move(shared);
    verbose_.store(verbose, std::memory_order_relaxed);
  }
  bool verbose() const { return verbose_.load(std::memory_order_relaxed); }
  void set_verbose(bool verbose) { verbose_.store(verbose, std::memory_order_relaxed); }

  /// Logs a line. The function is called outside the lock: a slow one holds up no other thread's
  /// set(), and one that calls set() itself does not deadlock.
  void line(const std::string& text) {
    if (const auto fn = current()) (*fn)(text);
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
    if (!v && flags.seen(k)) return;  // a flood of one kind costs no lock
    // Nowhere to log yet: the first one is still to be logged once there is.
    const auto fn = current();
    if (!fn) return;
    if (!flags.first(k, v)) return;
    (*fn)(text() + (v ? std::string() : std::string(further)));
  }

private:
  std::shared_ptr<const log_fn> current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return fn_;
  }

  mutable std::mutex mutex_;
  std::shared_ptr<const log_fn> fn_;
  std::atomic<bool> verbose_{false};
};

}  // namespace zrelay
