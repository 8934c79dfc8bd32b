#include "zrelay/control.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

#include "testutil.hpp"
#include "zrelay/relay.hpp"

using namespace zrelay;
using namespace zrelay::test;

namespace {

control::request parse(const std::vector<std::string>& frames, std::size_t seen = 0) {
  std::vector<std::string_view> v(frames.begin(), frames.end());
  return control::parse_request(v.data(), v.size(), seen ? seen : v.size());
}

// A relay on its own thread with a control server in its loop.
struct relay_with_control {
  relay r;
  control::server s;
  std::thread t;
  relay_with_control(zmq::context_t& ctx, control::handlers h)
      : r(ctx, inproc_config()), s(ctx, unique_inproc("control"), std::move(h)) {
    r.watch(s.socket(), [this] { s.serve(); });
    t = std::thread([this] { r.run(); });
  }
  ~relay_with_control() { stop(); }
  void stop() {
    r.request_stop();
    if (t.joinable()) t.join();
  }
};

}  // namespace

TEST_CASE("control request parser takes one frame naming a command and refuses anything else", "[control]") {
  CHECK(parse({"stats"}).what == control::command::stats);
  CHECK(parse({"reload"}).what == control::command::reload);
  CHECK(parse({"stats"}).error.empty());
  SECTION("unknown command") {
    const auto r = parse({"shutdown"});
    CHECK(!r.what);
    CHECK(r.error == "unknown command 'shutdown' (stats, reload)");
  }
  SECTION("case matters") { CHECK(!parse({"STATS"}).what); }
  SECTION("several frames") {
    const auto r = parse({"stats", "reload"});
    CHECK(!r.what);
    CHECK(r.error == "a request is one frame holding a command (stats, reload); this one had 2 frames");
    CHECK(parse({"stats"}, 70).error.find("this one had 70 frames") != std::string::npos);
  }
  SECTION("no frame") { CHECK(parse({}).error.find("had 0 frames") != std::string::npos); }
  SECTION("empty") { CHECK(parse({""}).error == "empty request: send a command (stats, reload)"); }
  SECTION("too long") {
    const auto r = parse({std::string(control::max_request + 1, 's')});
    CHECK(!r.what);
    CHECK(r.error == "a request of 65 bytes is no command (at most 64)");
    CHECK(!parse({std::string(control::max_request, 's')}).error.empty());  // unknown, but read
  }
  SECTION("binary or with spaces") {
    CHECK(parse({std::string("stats\0", 6)}).error.find("not printable ASCII") != std::string::npos);
    CHECK(parse({"stats\n"}).error.find("not printable ASCII") != std::string::npos);
    CHECK(parse({"\xff\xfe"}).error.find("not printable ASCII") != std::string::npos);
    CHECK(parse({" stats"}).error.find("not printable ASCII") != std::string::npos);
  }
}

TEST_CASE("control socket binds loopback, ipc and inproc only", "[control]") {
  for (const char* ok : {"tcp://127.0.0.1:5563", "tcp://127.0.0.1:*", "tcp://127.1.2.3:1", "tcp://[::1]:5563",
                         "ipc:///run/zrelay/control", "inproc://ctl"})
    CHECK_NOTHROW(control::check_bind(ok));
  const std::string why =
      "' for the control socket: it is not authenticated, so it binds loopback only (tcp://127.0.0.1:PORT, "
      "tcp://[::1]:PORT) or ipc://PATH";
  for (const char* refused :
       {"tcp://*:5563", "tcp://0.0.0.0:5563", "tcp://192.0.2.10:5563", "tcp://[::]:5563", "tcp://eth0:5563",
        "tcp://127.0.0:1", "tcp://127.0.0.1.5:1", "tcp://127.a.0.1:1", "tcp://1270.0.0.1:1"})
    CHECK_THROWS_WITH(control::check_bind(refused), "cannot use '" + std::string(refused) + why);
  CHECK_THROWS_WITH(control::check_bind("tcp://localhost:5563"),
                    "cannot use 'tcp://localhost:5563' for the control socket: ZeroMQ binds addresses, not host names "
                    "(tcp://127.0.0.1:5563)");
  CHECK_THROWS_AS(control::check_bind("udp://127.0.0.1:1"), endpoint_error);
}

TEST_CASE("control socket answers stats and reload on the relay thread and refuses bad requests", "[control]") {
  zmq::context_t ctx;
  control::handlers h;
  std::thread::id served_on;
  h.stats = [&] {
    served_on = std::this_thread::get_id();
    return std::string("{\"msgs_in\":0}");
  };
  bool reload_ok = true;
  h.reload = [&] { return control::answer{reload_ok, reload_ok ? "reload: 2 changes" : "reload: bad file"}; };
  relay_with_control rc(ctx, h);
  const auto ep = rc.s.endpoint();

  auto a = control::call(ctx, ep, control::command::stats, deadline);
  REQUIRE(a);
  CHECK(a->ok);
  CHECK(a->body == "{\"msgs_in\":0}");
  CHECK(served_on == rc.t.get_id());
  a = control::call(ctx, ep, control::command::reload, deadline);
  REQUIRE(a);
  CHECK(a->ok);
  CHECK(a->body == "reload: 2 changes");

  // Stranger requests, from a DEALER (no delimiter) and with one.
  zmq::socket_t d(ctx, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.connect(ep);
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"stats", "reload"}, "this one had 2 frames"},
      {{"", "stats", "x"}, "this one had 2 frames"},
      {{std::string(1000, 'x')}, "a request of 1000 bytes is no command"},
      {{std::string("\0\1\2", 3)}, "not printable ASCII"},
      {{"bogus"}, "unknown command 'bogus'"},
  };
  for (const auto& [frames, text] : bad) {
    send_parts(d, frames);
    const auto reply = recv_parts(d);
    INFO(frames.front().size() << " " << text);
    REQUIRE(reply.size() >= 2);
    CHECK(reply[reply.size() - 2] == "error");
    CHECK(reply.back().find(text) != std::string::npos);
    CHECK(reply.size() == (frames.size() > 1 && frames[0].empty() ? 3u : 2u));  // the envelope comes back
  }
  send_parts(d, {"", "stats"});
  CHECK(recv_parts(d) == std::vector<std::string>{"", "ok", "{\"msgs_in\":0}"});

  reload_ok = false;
  a = control::call(ctx, ep, control::command::reload, deadline);
  REQUIRE(a);
  CHECK(!a->ok);
  CHECK(a->body == "reload: bad file");
  rc.stop();
  CHECK(rc.s.answered() == 4);
  CHECK(rc.s.refused() == bad.size());
}

TEST_CASE("control call gives up at its timeout when nothing answers", "[control]") {
  zmq::context_t ctx;
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(!control::call(ctx, unique_inproc("nobody"), control::command::stats, 200ms));
  const auto took = std::chrono::steady_clock::now() - t0;
  CHECK(took >= 200ms);
  CHECK(took < 5s);
}

TEST_CASE("control call says so when what answers is no control socket", "[control]") {
  zmq::context_t ctx;
  zmq::socket_t rep(ctx, zmq::socket_type::rep);
  const auto ep = unique_inproc("not-control");
  rep.bind(ep);
  std::thread t([&] {
    (void)recv_parts(rep);
    send_parts(rep, {"hello"});
  });
  CHECK_THROWS_WITH(control::call(ctx, ep, control::command::stats, deadline),
                    "'" + ep +
                        "' answered with something other than a control reply: is it zrelay's --control-bind "
                        "endpoint?");
  t.join();
}

TEST_CASE("control server reports a port in use with the way out", "[control]") {
  zmq::context_t ctx;
  control::server first(ctx, "tcp://127.0.0.1:*", {});
  CHECK_THROWS_WITH(control::server(ctx, first.endpoint(), {}),
                    Catch::Contains("(the control socket): Address already in use (another zrelay? give "
                                    "--control-bind another endpoint, or off)"));
}
