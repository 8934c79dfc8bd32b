// The relay's loop: a table of registrations polled together.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <string>
#include <vector>

#include "relay/loop.hpp"
#include "testutil.hpp"

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
