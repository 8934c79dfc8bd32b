#pragma once
// The loop: a small reactor. A table of registrations — a ZeroMQ socket or a file descriptor, the
// handler that reads it, and whether it is read while a message is held for a full subscriber —
// instead of hand-indexed poll arrays. The journal's commit notification (an eventfd), a replay
// socket, an upstream link and a control socket are each one more registration.
// (cppzmq's active_poller needs libzmq's draft API, which Debian's libzmq 4.3.4 does not enable.)

#include <chrono>
#include <functional>
#include <vector>

#include <zmq.hpp>

namespace zrelay {

class reactor {
public:
  using handler = std::function<void()>;
  /// Whether a registration is read while a message is held. The publishers' sockets are not: that
  /// is what makes back-pressure reach the publishers.
  enum class when_held { read, wait };

  /// Registers a socket. Handlers run in the order registered.
  void add(zmq::socket_t& s, handler h, when_held held = when_held::read);
  /// Registers a file descriptor (readable = its handler runs).
  void add(int fd, handler h, when_held held = when_held::read);

  /// Waits up to `timeout` for a registration to be readable and runs the handlers of those that
  /// are. While `holding`, registrations marked wait are not polled; `may_read()` is asked before
  /// each of their handlers runs and skips it when false (a message became held meanwhile, or
  /// still is). Returns the number of handlers run.
  int run_once(std::chrono::milliseconds timeout, bool holding, const std::function<bool()>& may_read);

  /// How many registrations there are.
  std::size_t size() const { return entries_.size(); }

private:
  struct entry {
    void* socket = nullptr;
    int fd = -1;
    handler fn;
    when_held held = when_held::read;
  };
  std::vector<entry> entries_;
  std::vector<zmq::pollitem_t> items_;   // this turn's poll set
  std::vector<std::size_t> item_entry_;  // the entry of each item
};

}  // namespace zrelay
