// The relay's loop: a table of registrations polled together.
#include <catch2/catch.hpp>

#include <pthread.h>
#include <unistd.h>

#include <condition_variable>
#include <ctime>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "relay/loop.hpp"
#include "testutil.hpp"
#include "zrelay/relay.hpp"

using namespace std::chrono_literals;
using zrelay::reactor;

namespace {

struct pair_sockets {
  explicit pair_sockets(zmq::context_t& ctx) : a(ctx, zmq::socket_type::pair), b(ctx, zmq::socket_type::pair) {
    const auto ep = zrelay::test::unique_inproc("loop");
    a.bind(ep);
    b.connect(ep);
  }
  void poke() { (void)b.send(zmq::str_buffer("x"), zmq::send_flags::none); }
  void take() {
    zmq::message_t m;
    (void)a.recv(m, zmq::recv_flags::dontwait);
  }
  zmq::socket_t a, b;
};

struct pipe_fds {
  pipe_fds() { REQUIRE(::pipe(fd) == 0); }
  ~pipe_fds() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
  void poke() { REQUIRE(::write(fd[1], "x", 1) == 1); }
  int fd[2] = {-1, -1};
};

}  // namespace

TEST_CASE("reactor runs the handlers of what is readable, in the order registered", "[loop]") {
  zmq::context_t ctx;
  pair_sockets first(ctx), second(ctx);
  pipe_fds p;
  reactor loop;
  std::vector<std::string> ran;
  loop.add(first.a, [&] {
    ran.push_back("first");
    first.take();
  });
  loop.add(p.fd[0], [&] { ran.push_back("fd"); });
  loop.add(second.a, [&] {
    ran.push_back("second");
    second.take();
  });
  CHECK(loop.size() == 3);
  // Nothing readable: the timeout passes and nothing runs.
  CHECK(loop.run_once(1ms, false, {}) == 0);
  CHECK(ran.empty());
  second.poke();
  p.poke();
  first.poke();
  // inproc delivery is asynchronous: poll until all three were seen at once.
  const auto until = std::chrono::steady_clock::now() + zrelay::test::deadline;
  int n = 0;
  while (n < 3 && std::chrono::steady_clock::now() < until) {
    ran.clear();
    zmq::pollitem_t items[] = {{first.a.handle(), 0, ZMQ_POLLIN, 0}, {second.a.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 2, 10ms) == 2) n = loop.run_once(1000ms, false, {});
  }
  REQUIRE(n == 3);
  CHECK(ran == std::vector<std::string>{"first", "fd", "second"});
}

TEST_CASE("reactor does not poll what waits while a message is held, and asks before reading it", "[loop]") {
  zmq::context_t ctx;
  pair_sockets always(ctx), gated(ctx);
  reactor loop;
  int always_ran = 0, gated_ran = 0;
  loop.add(always.a, [&] {
    ++always_ran;
    always.take();
  });
  loop.add(
      gated.a,
      [&] {
        ++gated_ran;
        gated.take();
      },
      reactor::when_held::wait);
  gated.poke();
  // Holding: the gated socket is not polled, so its message does not wake the loop.
  CHECK(loop.run_once(20ms, true, [] { return true; }) == 0);
  CHECK(gated_ran == 0);
  // Not holding, but may_read says no (a message became held meanwhile): skipped.
  int asked = 0;
  const auto until = std::chrono::steady_clock::now() + zrelay::test::deadline;
  while (asked == 0 && std::chrono::steady_clock::now() < until)
    loop.run_once(10ms, false, [&] {
      ++asked;
      return false;
    });
  CHECK(asked == 1);
  CHECK(gated_ran == 0);
  // Then allowed: it runs. The ungated socket runs whatever may_read says.
  always.poke();
  const auto until2 = std::chrono::steady_clock::now() + zrelay::test::deadline;
  while ((gated_ran == 0 || always_ran == 0) && std::chrono::steady_clock::now() < until2)
    loop.run_once(10ms, false, [] { return true; });
  CHECK(gated_ran == 1);
  CHECK(always_ran == 1);
}

namespace {

// A clock the test moves: each reading advances it by `step`, and `on_read` (if set) runs first.
struct fake_clock {
  reactor::clock::time_point t{std::chrono::seconds(1)};
  std::chrono::nanoseconds step{1000};
  std::function<void()> on_read;
  std::function<reactor::clock::time_point()> fn() {
    return [this] {
      if (on_read) on_read();
      return t += step;
    };
  }
};

struct byte_reader {
  explicit byte_reader(pipe_fds& p) : p_(p) {}
  void operator()() {
    char c;
    REQUIRE(::read(p_.fd[0], &c, 1) == 1);
    ++read;
  }
  pipe_fds& p_;
  int read = 0;
};

}  // namespace

TEST_CASE("reactor spin: an idle loop blocks and never spins", "[loop][spin]") {
  pipe_fds p;
  reactor loop;
  byte_reader r(p);
  loop.add(p.fd[0], std::ref(r));
  loop.set_spin(std::chrono::microseconds(1'000'000));  // the real clock, a window of a second
  for (int i = 0; i < 20; ++i) CHECK(loop.run_once(1ms, false, {}) == 0);
  CHECK(loop.polls().spinning == 0);
  CHECK(loop.polls().blocking == 20);
}

TEST_CASE("reactor spin: after work at short gaps it spins for the window, then blocks", "[loop][spin]") {
  pipe_fds p;
  reactor loop;
  byte_reader r(p);
  loop.add(p.fd[0], std::ref(r));
  fake_clock c;  // 1 us a reading: a 100 us window is about 100 polls
  loop.set_spin(std::chrono::microseconds(100), c.fn());

  // Two turns with work, a few microseconds apart: the second ends the "no gap known yet".
  p.poke();
  CHECK(loop.run_once(1000ms, false, {}) == 1);
  p.poke();
  CHECK(loop.run_once(1000ms, false, {}) == 1);
  CHECK(loop.polls().spinning == 0);  // no spin before a short gap was seen
  CHECK(r.read == 2);

  SECTION("nothing comes: it spins through the window, then blocks (and the next wait does not spin)") {
    const auto blocking = loop.polls().blocking;
    CHECK(loop.run_once(1ms, false, {}) == 0);
    CHECK(loop.polls().spinning >= 50);
    CHECK(loop.polls().spinning <= 101);
    CHECK(loop.polls().blocking == blocking + 1);
    const auto spun = loop.polls().spinning;
    CHECK(loop.run_once(1ms, false, {}) == 0);
    CHECK(loop.polls().spinning == spun);  // the last turn did no work: straight to blocking
    CHECK(loop.polls().blocking == blocking + 2);
  }

  SECTION("what comes while it spins is handled without blocking") {
    int reads = 0;
    c.on_read = [&] {
      if (++reads == 10) p.poke();
    };
    const auto blocking = loop.polls().blocking;
    CHECK(loop.run_once(1000ms, false, {}) == 1);
    CHECK(r.read == 3);
    CHECK(loop.polls().blocking == blocking);
    CHECK(loop.polls().spinning >= 5);
    CHECK(loop.polls().spinning < 50);
  }

  SECTION("holding a message: no spin") {
    const auto blocking = loop.polls().blocking;
    CHECK(loop.run_once(1ms, true, {}) == 0);
    CHECK(loop.polls().spinning == 0);
    CHECK(loop.polls().blocking == blocking + 1);
  }

  SECTION("gaps longer than the window stop the spinning within a few messages") {
    c.step = std::chrono::nanoseconds(1);  // readings alone hardly move time now
    std::vector<std::uint64_t> spun;
    for (int i = 0; i < 12; ++i) {
      c.t += 1000us;  // one message a millisecond, ten times the window
      p.poke();
      const auto before = loop.polls().spinning;
      CHECK(loop.run_once(1000ms, false, {}) == 1);
      spun.push_back(loop.polls().spinning - before);
    }
    CHECK(r.read == 14);
    // The first wait still spun (it found the message at once); from the third on, none.
    CHECK(spun.front() == 1);
    for (std::size_t i = 2; i < spun.size(); ++i) CHECK(spun[i] == 0);
  }
}

TEST_CASE("reactor spin: a timeout shorter than the window ends the spin at the timeout", "[loop][spin]") {
  pipe_fds p;
  reactor loop;
  byte_reader r(p);
  loop.add(p.fd[0], std::ref(r));
  fake_clock c;  // 1 us a reading
  loop.set_spin(std::chrono::microseconds(5000), c.fn());
  p.poke();
  CHECK(loop.run_once(1000ms, false, {}) == 1);
  p.poke();
  CHECK(loop.run_once(1000ms, false, {}) == 1);
  const auto spun = loop.polls().spinning;
  CHECK(loop.run_once(1ms, false, {}) == 0);  // the relay's next tick is 1 ms away
  CHECK(loop.polls().spinning - spun >= 500);
  CHECK(loop.polls().spinning - spun <= 1001);  // not the 5 000 of the window
}

TEST_CASE("reactor spin: a window of 0 never spins", "[loop][spin]") {
  pipe_fds p;
  reactor loop;
  byte_reader r(p);
  loop.add(p.fd[0], std::ref(r));
  fake_clock c;
  loop.set_spin(std::chrono::microseconds(0), c.fn());
  for (int i = 0; i < 5; ++i) {
    p.poke();
    CHECK(loop.run_once(1000ms, false, {}) == 1);
  }
  CHECK(loop.run_once(1ms, false, {}) == 0);
  CHECK(loop.polls().spinning == 0);
  CHECK(loop.polls().blocking == 6);
}

namespace {

std::chrono::nanoseconds cpu_time(std::thread& t) {
  clockid_t id;
  REQUIRE(::pthread_getcpuclockid(t.native_handle(), &id) == 0);
  timespec ts{};
  REQUIRE(::clock_gettime(id, &ts) == 0);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

}  // namespace

TEST_CASE("relay: once traffic stops, the relay's thread sleeps (it does not spin)", "[loop][spin]") {
  zmq::context_t ctx;
  auto cfg = zrelay::test::inproc_config();
  cfg.spin = std::chrono::microseconds(200);
  zrelay::relay r(ctx, cfg);
  // The relay's own ticks mark the idle time measured below (no sleep in the test).
  std::mutex mu;
  std::condition_variable cv;
  int ticks = 0;
  r.on_tick(100ms, [&](const zrelay::relay_counters&) {
    std::lock_guard<std::mutex> lock(mu);
    ++ticks;
    cv.notify_all();
  });
  std::thread t([&] { r.run(); });
  struct joiner {
    zrelay::relay& r;
    std::thread& t;
    ~joiner() {
      r.request_stop();
      t.join();
    }
  } join{r, t};
  zmq::socket_t pub(ctx, zmq::socket_type::pub), sub(ctx, zmq::socket_type::sub);
  sub.set(zmq::sockopt::subscribe, "");
  sub.set(zmq::sockopt::rcvtimeo, 10);
  sub.connect(r.endpoints().sub);
  pub.connect(r.endpoints().pub);
  // Ping-pong: each message after the previous one arrived, so they come at short gaps and the
  // relay spins between them (the first ones also wait for the subscription to reach the publisher).
  const auto until = std::chrono::steady_clock::now() + zrelay::test::deadline;
  int got = 0;
  while (got < 500 && std::chrono::steady_clock::now() < until) {
    (void)pub.send(zmq::str_buffer("t"), zmq::send_flags::sndmore);
    (void)pub.send(zmq::str_buffer("x"), zmq::send_flags::none);
    zmq::message_t m;
    if (!sub.recv(m)) continue;  // not subscribed yet: that one was dropped
    while (m.more()) REQUIRE(sub.recv(m));
    ++got;
  }
  REQUIRE(got >= 500);
  // No traffic now: over three of its 100 ms ticks a spinning thread would use most of that CPU;
  // a sleeping one wakes a few times and uses next to none.
  const auto before = cpu_time(t);
  {
    std::unique_lock<std::mutex> lock(mu);
    const int from = ticks;
    REQUIRE(cv.wait_for(lock, zrelay::test::deadline, [&] { return ticks >= from + 3; }));
  }
  const auto used = cpu_time(t) - before;
  CHECK(used < 30ms);
}
