#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <ctime>
#include <thread>

#include "testutil.hpp"
#include "zrelay/signals.hpp"

using namespace zrelay;
using namespace zrelay::test;

namespace {

// The signals these tests raise. A signal_watch blocks them for good in the thread that made it,
// so this restores the thread's mask afterwards, taking first whatever of them is still pending
// (unblocked, it would end the test program).
class restore_signals {
public:
  restore_signals() { pthread_sigmask(SIG_SETMASK, nullptr, &saved_); }
  ~restore_signals() {
    sigset_t raised;
    sigemptyset(&raised);
    for (const int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&raised, s);
    const timespec none{0, 0};
    while (sigtimedwait(&raised, nullptr, &none) > 0) {}
    pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  restore_signals(const restore_signals&) = delete;
  restore_signals& operator=(const restore_signals&) = delete;

private:
  sigset_t saved_;
};

bool blocked_here(int sig) {
  sigset_t now;
  pthread_sigmask(SIG_SETMASK, nullptr, &now);
  return sigismember(&now, sig) == 1;
}

bool readable(int fd, std::chrono::milliseconds limit) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(limit.count())) == 1 && (p.revents & POLLIN) != 0;
}

}  // namespace

TEST_CASE("signal_watch turns SIGINT and SIGTERM into a readable descriptor that names the signal", "[signals]") {
  restore_signals restore;
  const int sig = GENERATE(SIGINT, SIGTERM);
  signal_watch w;
  REQUIRE(w.fd() >= 0);
  CHECK_FALSE(readable(w.fd(), 0ms));
  CHECK_FALSE(w.triggered());
  CHECK(w.signal_number() == 0);
  // raise() sends it to this thread, which blocks it: it stays pending, for the descriptor.
  REQUIRE(std::raise(sig) == 0);
  CHECK(readable(w.fd(), deadline));
  CHECK(w.triggered());
  CHECK(w.signal_number() == sig);
  CHECK_FALSE(readable(w.fd(), 0ms));  // read: no longer pending
}

TEST_CASE("signal_watch remembers the first signal", "[signals]") {
  restore_signals restore;
  signal_watch w({SIGUSR1});
  REQUIRE(std::raise(SIGTERM) == 0);
  REQUIRE(readable(w.fd(), deadline));
  CHECK(w.triggered());
  REQUIRE(std::raise(SIGUSR1) == 0);
  CHECK(w.triggered());
  CHECK(w.signal_number() == SIGTERM);
  CHECK(readable(w.fd(), 0ms));  // the second is left on the descriptor, unread
}

TEST_CASE("signal_watch take() returns each signal once, in turn, and 0 when none waits", "[signals]") {
  restore_signals restore;
  signal_watch w({SIGHUP});
  CHECK(w.take() == 0);
  REQUIRE(std::raise(SIGHUP) == 0);
  REQUIRE(readable(w.fd(), deadline));
  CHECK(w.take() == SIGHUP);
  CHECK(w.take() == 0);  // one SIGHUP, read once
  REQUIRE(std::raise(SIGHUP) == 0);
  REQUIRE(std::raise(SIGTERM) == 0);
  REQUIRE(readable(w.fd(), deadline));
  const int first = w.take(), second = w.take();
  // A signalfd hands pending signals over lowest number first.
  CHECK(first == SIGHUP);
  CHECK(second == SIGTERM);
  CHECK(w.signal_number() == SIGTERM);
  CHECK(w.take() == 0);
}

TEST_CASE("signal_watch also watches the signals it is given, in threads started after it", "[signals]") {
  restore_signals restore;
  const bool hup_before = blocked_here(SIGHUP);
  {
    signal_watch plain;
    CHECK(blocked_here(SIGINT));
    CHECK(blocked_here(SIGTERM));
    CHECK(blocked_here(SIGHUP) == hup_before);  // only what it was given
  }
  signal_watch w({SIGHUP});
  CHECK(blocked_here(SIGHUP));
  bool in_thread = false;
  std::thread([&in_thread] {
    in_thread = blocked_here(SIGINT) && blocked_here(SIGTERM) && blocked_here(SIGHUP);
  }).join();
  CHECK(in_thread);
  REQUIRE(std::raise(SIGHUP) == 0);
  CHECK(readable(w.fd(), deadline));
  CHECK(w.triggered());
  CHECK(w.signal_number() == SIGHUP);
}

TEST_CASE("signal_watch closes its descriptor when destroyed", "[signals]") {
  restore_signals restore;
  int fd = -1;
  {
    signal_watch w;
    fd = w.fd();
    REQUIRE(::fcntl(fd, F_GETFD) >= 0);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);  // not inherited by a program it starts
  }
  errno = 0;
  CHECK(::fcntl(fd, F_GETFD) == -1);
  CHECK(errno == EBADF);
}
