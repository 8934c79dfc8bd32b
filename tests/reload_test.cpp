#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "testutil.hpp"
#include "zrelay/cli.hpp"
#include "zrelay/reload.hpp"

using namespace std::chrono_literals;
using namespace zrelay;
using zrelay::test::unique_inproc;

namespace {

bool has_line(const reload_report& r, const std::string& line) {
  return std::find(r.lines.begin(), r.lines.end(), line) != r.lines.end();
}

}  // namespace

TEST_CASE("reload_relay applies live settings, reports restarts, and keeps everything on a bad file", "[reload]") {
  char tmpl[] = "/tmp/zrelay-reload-test-XXXXXX";
  REQUIRE(::mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl, path = dir + "/zrelay.toml";
  const auto write = [&](const std::string& text) { std::ofstream(path, std::ios::trunc) << text; };
  write("full-wait = 100\nhwm = 1000\nmax-topic = 1024\n");
  const std::vector<std::string> args = {
      "zrelay",     "--config",           path,         "--pub-bind",        unique_inproc("pub"),
      "--sub-bind", unique_inproc("sub"), "--ack-bind", unique_inproc("ack")};
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  auto current = cli::parse_relay(static_cast<int>(argv.size()), argv.data()).options;
  zmq::context_t ctx;
  relay r(ctx, current.relay);
  std::chrono::milliseconds stats{-1};
  const auto set_stats = [&](std::chrono::milliseconds every) { stats = every; };

  SECTION("nothing changed") {
    const auto rep = reload_relay(r, current, args, set_stats);
    CHECK(rep.ok);
    CHECK(rep.lines == std::vector<std::string>{"no change"});
  }
  SECTION("live settings applied, the rest reported") {
    write("full-wait = 20\nhwm = 5000\nmax-topic = 600\nstats-interval = 2\nspin = 0\nsys-interval = 0.5\n");
    const auto rep = reload_relay(r, current, args, set_stats);
    CHECK(rep.ok);
    CHECK(has_line(rep, "full-wait: '100' -> '20': applied"));
    CHECK(has_line(rep, "max-topic: '1024' -> '600': applied"));
    CHECK(has_line(rep, "spin: '200' -> '0': applied"));
    CHECK(has_line(rep, "stats-interval: '0' -> '2': applied"));
    CHECK(has_line(rep, "sys-interval: '0' -> '0.5': applied"));
    CHECK(has_line(rep, "hwm: '1000' -> '5000': needs a restart, not applied"));
    CHECK(rep.lines.size() == 6);
    CHECK(current.relay.sys_interval == 500ms);
    CHECK(current.relay.full_wait == 20ms);
    CHECK(current.relay.max_topic == 600);
    CHECK(current.relay.hwm == 1000);  // in force: not applied
    CHECK(stats == 2000ms);
    // What was not applied is reported again by the next reload; what was is not.
    const auto again = reload_relay(r, current, args, set_stats);
    CHECK(again.lines == std::vector<std::string>{"hwm: '1000' -> '5000': needs a restart, not applied"});
    // A limit goes back up to its value at start, not past it.
    write("full-wait = 20\nhwm = 1000\nmax-topic = 2048\nstats-interval = 2\nspin = 0\nsys-interval = 0.5\n");
    const auto up = reload_relay(r, current, args, set_stats);
    REQUIRE(up.lines.size() == 1);
    CHECK_THAT(up.lines[0], Catch::StartsWith("max-topic: '600' -> '2048': not applied: raising it above 1024 bytes"));
    CHECK(current.relay.max_topic == 600);
  }
  SECTION("a bad file changes nothing and says why") {
    write("full-wait = 20\nhwm = \"many\"\n");
    const auto before = current.settings;
    const auto rep = reload_relay(r, current, args, set_stats);
    CHECK_FALSE(rep.ok);
    REQUIRE(rep.lines.size() == 1);
    CHECK(rep.lines[0] == "failed: " + path +
                              ":2: hwm must be an integer (hwm = 1000), not a string; "
                              "the configuration in force is unchanged");
    CHECK(current.relay.full_wait == 100ms);
    for (std::size_t i = 0; i < before.size(); ++i) CHECK(current.settings[i].text == before[i].text);
    CHECK(stats == -1ms);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}
