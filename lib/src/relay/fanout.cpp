#include "relay/fanout.hpp"

#include <cerrno>

namespace zrelay {

fanout::fanout(zmq::socket_t& xpub, full_policy policy, std::chrono::milliseconds full_wait, relay_stats& stats,
               relay_log& log, done_fn done)
    : xpub_(xpub), policy_(policy), full_wait_(full_wait), stats_(stats), log_(log), done_(std::move(done)) {
  // Only retry(true) sends without dontwait.
  xpub_.set(zmq::sockopt::sndtimeo, static_cast<int>(hold_wait.count()));
}

// False: the subscriber socket is full (nothing sent). With `wait`, the first frame waits up to
// hold_wait for room: libzmq wakes it when a subscriber's queue drains below its low-water mark.
bool fanout::try_send(zmq::message_t* frames, std::size_t n, bool wait) {
  for (std::size_t i = 0; i < n; ++i) {
    const auto more = i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none;
    if (i == 0 && wait) {
      try {
        if (!xpub_.send(frames[0], more)) return false;  // hold_wait passed without room
        continue;
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) throw;
        // A signal cut the wait short: the send below finds whether there is room now, and the
        // policy decides as for any held message (the caller's loop looks at its stop flag).
      }
    }
    if (!xpub_.send(frames[i], more | zmq::send_flags::dontwait)) {
      if (i == 0) return false;
      // Cannot happen (the high-water mark counts whole messages) but must not tear a message in
      // two: finish it lossily.
      send_dropping(frames + i, n - i);
      return true;
    }
  }
  return true;
}

// Sends frames[0..n) past any full subscriber, which misses them.
void fanout::send_dropping(zmq::message_t* frames, std::size_t n) {
  xpub_.set(zmq::sockopt::xpub_nodrop, 0);
  for (std::size_t i = 0; i < n; ++i)
    (void)xpub_.send(frames[i],
                     (i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none) | zmq::send_flags::dontwait);
  xpub_.set(zmq::sockopt::xpub_nodrop, 1);
}

bool fanout::send_aside(zmq::message_t* frames, std::size_t n) {
  if (try_send(frames, n)) return true;
  send_dropping(frames, n);
  return false;
}

void fanout::out(std::uint64_t msgs, std::uint64_t bytes, std::uint64_t tag, outcome o) {
  relay_stats::add(stats_.msgs_out, msgs);
  relay_stats::add(stats_.bytes_out, bytes);
  if (tag != 0 && done_) done_(tag, o);
}

void fanout::pass_by(zmq::message_t* frames, std::size_t n, std::uint64_t msgs) {
  send_dropping(frames, n);
  relay_stats::add(stats_.dropped, msgs);
  // Once, verbose or not: the drops themselves are counted.
  if (warned_.first(warning::not_keeping_up))
    log_.line("warning: a subscriber is not keeping up; messages it misses are dropped and counted (it sees the "
              "gap)");
}

bool fanout::send(zmq::message_t* frames, std::size_t n, std::uint64_t msgs, std::uint64_t bytes, std::uint64_t tag) {
  if (held_.empty()) {
    if (try_send(frames, n)) {
      out(msgs, bytes, tag, outcome::sent);
      return true;
    }
    held_since_ = clock::now();
    relay_stats::add(stats_.blocked);
  }
  held_message h;
  h.frames.resize(n);
  for (std::size_t i = 0; i < n; ++i) h.frames[i].move(frames[i]);
  h.msgs = msgs;
  h.bytes = bytes;
  h.tag = tag;
  held_.push_back(std::move(h));
  return false;
}

bool fanout::retry(bool wait) { return held_.empty() || flush_held(false, wait); }

void fanout::give_up() { (void)flush_held(true); }

bool fanout::flush_held(bool give_up, bool wait) {
  // Shutting down, once something was sent past a full subscriber, ZeroMQ skips that subscriber
  // without a word: what seems to go out after it may not reach it, nor can the relay tell.
  bool passed_a_full_one = false;
  while (!held_.empty()) {
    auto& h = held_.front();
    auto o = passed_a_full_one ? outcome::uncertain : outcome::sent;
    const bool sent = try_send(h.frames.data(), h.frames.size(), wait);
    wait = false;  // once per call: the caller's loop reads its other sockets between waits
    if (!sent) {
      if (!give_up) {
        if (policy_ == full_policy::block) return false;
        if (clock::now() - held_since_ < full_wait_) return false;
      }
      pass_by(h.frames.data(), h.frames.size(), h.msgs);
      o = outcome::dropped;
      if (give_up) {
        o = outcome::uncertain;
        passed_a_full_one = true;
      }
    }
    out(h.msgs, h.bytes, h.tag, o);
    held_.pop_front();
    held_since_ = clock::now();
  }
  return true;
}

}  // namespace zrelay
