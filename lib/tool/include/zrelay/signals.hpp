#pragma once
// SIGINT/SIGTERM as a file descriptor to poll: no handler, no global flag.

#include <initializer_list>

namespace zrelay {

/// Blocks SIGINT, SIGTERM and the signals in `more` (SIGHUP for a tool that ends on it) in the
/// calling thread (and the threads it starts afterwards) and delivers them through a signalfd.
/// Create it first in main(), before any thread exists.
class signal_watch {
public:
  explicit signal_watch(std::initializer_list<int> more = {});
  ~signal_watch();
  signal_watch(const signal_watch&) = delete;
  signal_watch& operator=(const signal_watch&) = delete;

  /// The descriptor to poll for POLLIN.
  int fd() const { return fd_; }
  /// Non-blocking: true once a signal has arrived (remembered after the first time).
  bool triggered();
  /// Non-blocking: the next signal that arrived (each one once), or 0 when none is waiting. For a
  /// tool that acts on every signal (zrelay reloads on each SIGHUP).
  int take();
  /// The signal that arrived, or 0.
  int signal_number() const { return signo_; }

private:
  int fd_ = -1;
  int signo_ = 0;
};

}  // namespace zrelay
