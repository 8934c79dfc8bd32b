#include "relay/loop.hpp"

#include <sched.h>

#include <algorithm>

namespace zrelay {

void reactor::add(zmq::socket_t& s, handler h, when_held held) {
  entries_.push_back({s.handle(), -1, std::move(h), held});
}

void reactor::add(int fd, handler h, when_held held) { entries_.push_back({nullptr, fd, std::move(h), held}); }

void reactor::set_spin(std::chrono::microseconds window, std::function<clock::time_point()> now) {
  window_ = window;
  now_ = std::move(now);
  gap_ = window_ + std::chrono::nanoseconds(1);  // no spin until two turns with work came close enough
}

// Polls without sleeping, and without holding on to the core, until something is readable or the window ends.
bool reactor::spin(std::chrono::milliseconds timeout) {
  // Never past the caller's timeout: the relay's tick, sweep and stop flag come due on time.
  const auto until = now() + std::min<std::chrono::nanoseconds>(window_, timeout);
  do {
    ++polls_.spinning;
    if (zmq::poll(items_.data(), items_.size(), std::chrono::milliseconds(0)) > 0) return true;
    // Gives the core to whatever else is ready on it (the I/O threads, the clients on a small
    // machine): the spin takes only time nobody else wants.
    ::sched_yield();
  } while (now() < until);
  return false;
}

// The gap between turns with work, smoothed over about 8 of them: one pause does not stop the
// spinning of a steady stream, a rate that fell below the window stops it within a few messages.
void reactor::note_work() {
  const auto t = now();
  if (last_work_ != clock::time_point{}) {
    const auto gap = std::min<std::chrono::nanoseconds>(t - last_work_, 8 * (window_ + std::chrono::nanoseconds(1)));
    gap_ += (gap - gap_) / 8;
  }
  last_work_ = t;
}

int reactor::run_once(std::chrono::milliseconds timeout, bool holding, const std::function<bool()>& may_read) {
  items_.clear();
  item_entry_.clear();
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const auto& e = entries_[i];
    if (holding && e.held == when_held::wait) continue;
    items_.push_back({e.socket, e.fd, ZMQ_POLLIN, 0});
    item_entry_.push_back(i);
  }
  const bool may_spin = worked_ && !holding && window_.count() > 0 && gap_ <= window_ && timeout.count() > 0;
  worked_ = false;
  if (!(may_spin && spin(timeout))) {
    if (timeout.count() != 0) ++polls_.blocking;
    else ++polls_.spinning;
    if (zmq::poll(items_.data(), items_.size(), timeout) <= 0) return 0;
  }
  if (window_.count() > 0) note_work();
  int ran = 0;
  for (std::size_t k = 0; k < items_.size(); ++k) {
    if (!(items_[k].revents & ZMQ_POLLIN)) continue;
    auto& e = entries_[item_entry_[k]];
    if (e.held == when_held::wait && may_read && !may_read()) continue;
    e.fn();
    ++ran;
  }
  worked_ = ran > 0;
  return ran;
}

}  // namespace zrelay
