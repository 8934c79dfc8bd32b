#pragma once
// The loop: a small reactor. A table of registrations — a ZeroMQ socket or a file descriptor, the
// handler that reads it, and whether it is read while a message is held for a full subscriber —
// instead of hand-indexed poll arrays. The journal's commit notification (an eventfd), a replay
// socket, an upstream link and a control socket are each one more registration.
// (cppzmq's active_poller needs libzmq's draft API, which Debian's libzmq 4.3.4 does not enable.)
//
// Spin-then-sleep: a thread asleep in zmq_poll takes tens of microseconds to wake. With a spin
// window set, a wait that follows a turn which ran handlers first polls without sleeping for up to
// that window, but only while work has been coming at shorter gaps than the window (a spin that
// would end before the next message burns the CPU and saves nothing). Between polls it yields the
// core to any other ready thread. Then it blocks as before: an idle loop never spins.

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include <zmq.hpp>

namespace zrelay {

class reactor {
public:
  using handler = std::function<void()>;
  using clock = std::chrono::steady_clock;
  /// Whether a registration is read while a message is held. The publishers' sockets are not: that
  /// is what makes back-pressure reach the publishers.
  enum class when_held { read, wait };
  /// How often each kind of poll happened (for tests and profiles).
  struct poll_counts {
    std::uint64_t blocking = 0;  ///< polls that could sleep (a timeout other than 0)
    std::uint64_t spinning = 0;  ///< polls with no timeout, in a spin window
  };

  /// Registers a socket. Handlers run in the order registered.
  void add(zmq::socket_t& s, handler h, when_held held = when_held::read);
  /// Registers a file descriptor (readable = its handler runs).
  void add(int fd, handler h, when_held held = when_held::read);

  /// The spin window (0, the default: never spin). `now` replaces the clock (tests).
  void set_spin(std::chrono::microseconds window, std::function<clock::time_point()> now = {});

  /// Waits up to `timeout` for a registration to be readable and runs the handlers of those that
  /// are (spinning first, see above, unless `holding`). While `holding`, registrations marked wait
  /// are not polled; `may_read()` is asked before each of their handlers runs and skips it when
  /// false (a message became held meanwhile, or still is). Returns the number of handlers run.
  int run_once(std::chrono::milliseconds timeout, bool holding, const std::function<bool()>& may_read);

  /// How many registrations there are.
  std::size_t size() const { return entries_.size(); }
  const poll_counts& polls() const { return polls_; }

private:
  struct entry {
    void* socket = nullptr;
    int fd = -1;
    handler fn;
    when_held held = when_held::read;
  };
  clock::time_point now() const { return now_ ? now_() : clock::now(); }
  // Whether something became readable within the window (and the timeout).
  bool spin(std::chrono::milliseconds timeout);
  void note_work();

  std::vector<entry> entries_;
  std::vector<zmq::pollitem_t> items_;   // this turn's poll set
  std::vector<std::size_t> item_entry_;  // the entry of each item
  std::chrono::nanoseconds window_{0};
  std::function<clock::time_point()> now_;
  bool worked_ = false;             // the last turn ran handlers
  clock::time_point last_work_{};   // when the last turn that ran handlers began
  std::chrono::nanoseconds gap_{};  // smoothed gap between turns that ran handlers
  poll_counts polls_;
};

}  // namespace zrelay
