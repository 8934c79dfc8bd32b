#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "zrelay/cli.hpp"
#include "zrelay/config.hpp"

using namespace std::chrono_literals;
using zrelay::cli::config_file;
using zrelay::cli::parse_config;
using zrelay::cli::toml_line;
using zrelay::cli::usage_error;
using zrelay::cli::value_kind;

namespace {

std::string text_of(const config_file& f, const std::string& key) { return f.values.at(key).text; }

// A config file in a directory of its own, removed with it.
class temp_config {
public:
  explicit temp_config(const std::string& text) {
    char tmpl[] = "/tmp/zrelay-config-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
    std::ofstream(path()) << text;
  }
  ~temp_config() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  temp_config(const temp_config&) = delete;
  temp_config& operator=(const temp_config&) = delete;
  std::string path() const { return dir_ + "/zrelay.toml"; }
  void rewrite(const std::string& text) const { std::ofstream(path(), std::ios::trunc) << text; }

private:
  std::string dir_;
};

zrelay::cli::parsed<zrelay::relay_options> relay(std::vector<std::string> args) {
  std::vector<const char*> v{"zrelay"};
  for (const auto& a : args) v.push_back(a.c_str());
  return zrelay::cli::parse_relay(static_cast<int>(v.size()), v.data());
}

}  // namespace

TEST_CASE("parse_config turns each type into the option's command-line text, with its line", "[config]") {
  const auto f = parse_config("# comment\n"
                              "pub-bind = \"tcp://127.0.0.1:6000\"\n"
                              "hwm = 2000\n"
                              "stats-interval = 0.5\n"
                              "full-wait = 0\n"
                              "max-msg-size = \"2M\"\n"
                              "journal-max-bytes = 1048576\n"
                              "journal-max-age = \"7d\"\n"
                              "journal-fsync = false\n"
                              "verbose = true\n",
                              "z.toml");
  CHECK(f.path == "z.toml");
  CHECK(text_of(f, "pub-bind") == "tcp://127.0.0.1:6000");
  CHECK(f.values.at("pub-bind").line == 2);
  CHECK(text_of(f, "hwm") == "2000");
  CHECK(f.values.at("hwm").line == 3);
  CHECK(text_of(f, "stats-interval") == "0.5");
  CHECK(text_of(f, "full-wait") == "0");
  CHECK(text_of(f, "max-msg-size") == "2M");
  CHECK(text_of(f, "journal-max-bytes") == "1048576");
  CHECK(text_of(f, "journal-max-age") == "7d");
  CHECK(text_of(f, "journal-fsync") == "off");
  CHECK(text_of(f, "verbose") == "true");
  CHECK(f.where("hwm") == "z.toml:3: hwm");
  CHECK(parse_config("journal-fsync = \"on\"", "z").values.at("journal-fsync").text == "on");
  CHECK(parse_config("stats-interval = 5", "z").values.at("stats-interval").text == "5");
  CHECK(parse_config("", "z").values.empty());
}

TEST_CASE("parse_config names the file, the line and the key of what is wrong", "[config]") {
  CHECK_THROWS_MATCHES(parse_config("hwm = 1\nhwmm = 2\n", "z.toml"), usage_error,
                       Catch::Message("z.toml:2: unknown key 'hwmm' (did you mean 'hwm'?): the keys are the long "
                                      "options of 'zrelay --help'"));
  CHECK_THROWS_MATCHES(parse_config("\n\nhwm = \"1000\"\n", "z.toml"), usage_error,
                       Catch::Message("z.toml:3: hwm must be an integer (hwm = 1000), not a string"));
  CHECK_THROWS_MATCHES(parse_config("verbose = 1", "z.toml"), usage_error,
                       Catch::Message("z.toml:1: verbose must be true or false, not an integer"));
  CHECK_THROWS_MATCHES(parse_config("pub-bind = 5559", "z.toml"), usage_error,
                       Catch::Message("z.toml:1: pub-bind must be a string (pub-bind = \"...\"), not an integer"));
  CHECK_THROWS_MATCHES(parse_config("hwm = 1.5", "z.toml"), usage_error,
                       Catch::Message("z.toml:1: hwm must be an integer (hwm = 1000), not a float"));
  CHECK_THROWS_MATCHES(parse_config("spin = [1, 2]", "z.toml"), usage_error,
                       Catch::Message("z.toml:1: spin must be an integer (spin = 1000), not an array"));
  CHECK_THROWS_WITH(parse_config("journal-max-age = 2026-12-01", "z.toml"),
                    Catch::Contains("z.toml:1: journal-max-age must be a duration") && Catch::Contains("not a date"));
  CHECK_THROWS_WITH(parse_config("[journal]\ndir = \"x\"\n", "z.toml"),
                    Catch::StartsWith("z.toml:1: 'journal' is a table"));
  CHECK_THROWS_WITH(parse_config("journal.dir = \"x\"\n", "z.toml"),
                    Catch::StartsWith("z.toml:1: 'journal' is a table"));
  CHECK_THROWS_WITH(parse_config("x = 1\nhwm = \n", "z.toml"), Catch::StartsWith("z.toml:2: not valid TOML: "));
  CHECK_THROWS_WITH(parse_config("hwm = 1\nhwm = 2\n", "z.toml"),
                    Catch::StartsWith("z.toml:2: not valid TOML: "));  // a key twice
  CHECK_THROWS_WITH(parse_config("help = true", "z.toml"), Catch::StartsWith("z.toml:1: unknown key 'help'"));
  CHECK_THROWS_WITH(parse_config("config = \"other.toml\"", "z.toml"),
                    Catch::StartsWith("z.toml:1: unknown key 'config'"));
  CHECK_THROWS_WITH(parse_config(std::string("hwm = 1\0", 8), "z.toml"),
                    Catch::StartsWith("z.toml:1: not valid TOML: "));
}

TEST_CASE("toml_line writes what parse_config reads back to the same text", "[config]") {
  struct sample {
    const char* key;
    const char* text;
    value_kind kind;
  };
  const std::vector<sample> samples = {
      {"pub-bind", "tcp://127.0.0.1:5559", value_kind::text},
      {"journal", "/var/lib/zrelay/a \"quoted\" \\ dir\t\x01", value_kind::text},
      {"journal", "/var/lib/z\xC3\xA9lay/\xF0\x9F\x98\x80", value_kind::text},  // non-ASCII: written as escapes
      {"hwm", "1000", value_kind::whole},
      {"max-msg-size", "1M", value_kind::size},
      {"max-msg-size", "65536", value_kind::size},
      {"journal-max-age", "7d", value_kind::duration},
      {"journal-fsync", "on", value_kind::on_off},
      {"stats-interval", "0.25", value_kind::seconds},
      {"verbose", "true", value_kind::flag},
      {"verbose", "false", value_kind::flag},
  };
  for (const auto& s : samples) {
    const auto line = toml_line(s.key, s.text, s.kind);
    INFO(line);
    CHECK(line.back() == '\n');
    CHECK(parse_config(line, "z").values.at(s.key).text == s.text);
  }
  // TOML wants digits on both sides of a point; the text the command line took stays the same number.
  CHECK(toml_line("stats-interval", ".5", value_kind::seconds) == "stats-interval = 0.5\n");
  CHECK(toml_line("stats-interval", "2.", value_kind::seconds) == "stats-interval = 2.0\n");
  CHECK(toml_line("journal", "/j\xC3\xA9", value_kind::text) == "journal = \"/j\\u00e9\"\n");
  // Nor leading zeros, which the command line takes ("--hwm 0100").
  CHECK(toml_line("hwm", "0100", value_kind::whole) == "hwm = 100\n");
  CHECK(toml_line("hwm", "0", value_kind::whole) == "hwm = 0\n");
  CHECK(toml_line("max-msg-size", "00065536", value_kind::size) == "max-msg-size = 65536\n");
  CHECK(toml_line("stats-interval", "05", value_kind::seconds) == "stats-interval = 5\n");
  CHECK(toml_line("stats-interval", "00.25", value_kind::seconds) == "stats-interval = 0.25\n");
  CHECK(parse_config(toml_line("hwm", "0100", value_kind::whole), "z").values.at("hwm").text == "100");
}

TEST_CASE("toml_line writes UTF-8 as escapes and refuses text that is not UTF-8", "[config]") {
  CHECK(toml_line("journal", "/j\xE2\x82\xAC", value_kind::text) == "journal = \"/j\\u20ac\"\n");
  CHECK(toml_line("journal", "/j\xF0\x9F\x98\x80", value_kind::text) == "journal = \"/j\\U0001f600\"\n");
  CHECK(toml_line("journal", "/j\xF4\x8F\xBF\xBF", value_kind::text) == "journal = \"/j\\U0010ffff\"\n");
  // Lead bytes no UTF-8 sequence starts with (0xF8 once decoded to U+8000), a cut sequence, a
  // continuation byte alone, an overlong form, a surrogate, a code point past U+10FFFF.
  for (const std::string bad : {"/x\xF8\x80\x80", "/x\xF5\x80\x80\x80", "/x\xFF\x80\x80", "/x\xE2\x82", "/x\x80",
                                "/x\xC0\xAF", "/x\xED\xA0\x80", "/x\xF4\x90\x80\x80"}) {
    INFO(bad);
    CHECK_THROWS_MATCHES(toml_line("journal", bad, value_kind::text), usage_error,
                         Catch::Message("journal: '" + bad + "' is not UTF-8, which TOML cannot hold"));
  }
  CHECK_THROWS_AS(toml_line("full-wait", "1\xF8\x80\x80s", value_kind::duration), usage_error);
}

TEST_CASE("parse_relay --config: the file's values, the command line winning, errors naming the file", "[config]") {
  temp_config file("hwm = 2000\nfull-wait = 50\nverbose = true\nmax-msg-size = \"2M\"\n");
  auto p = relay({"--config", file.path()});
  CHECK(p.options.relay.hwm == 2000);
  CHECK(p.options.relay.full_wait == 50ms);
  CHECK(p.options.relay.max_msg_size == std::size_t{2} << 20);
  CHECK(p.options.verbose);
  CHECK(p.options.config_path == file.path());
  p = relay({"--config", file.path(), "--hwm", "5", "--full-wait=7"});
  CHECK(p.options.relay.hwm == 5);
  CHECK(p.options.relay.full_wait == 7ms);
  CHECK(p.options.relay.max_msg_size == std::size_t{2} << 20);

  file.rewrite("spin = 5\nhwm = 0\n");
  CHECK_THROWS_MATCHES(relay({"--config", file.path()}), usage_error,
                       Catch::Message(file.path() + ":2: hwm must be a whole number from 1 to 10000000, not '0'"));
  // The command line's value replaces the file's bad one: nothing is wrong then.
  CHECK(relay({"--config", file.path(), "--hwm", "3"}).options.relay.hwm == 3);
  CHECK_THROWS_MATCHES(relay({"--config", file.path(), "--hwm", "0"}), usage_error,
                       Catch::Message("--hwm must be a whole number from 1 to 10000000, not '0'"));
  file.rewrite("journal-fsync = \"off\"\n");
  CHECK_THROWS_MATCHES(
      relay({"--config", file.path()}), usage_error,
      Catch::Message(file.path() +
                     ":1: journal-fsync needs a journal (journal = \"DIR\" in the file, or --journal DIR)"));
  file.rewrite("sub-bind = \"localhost:5560\"\n");
  CHECK_THROWS_WITH(relay({"--config", file.path()}), Catch::StartsWith(file.path() + ":1: sub-bind: "));
  file.rewrite("on-full = \"sometimes\"\n");
  CHECK_THROWS_WITH(relay({"--config", file.path()}), Catch::StartsWith(file.path() + ":1: on-full: "));
  CHECK_THROWS_MATCHES(relay({"--config", "/nonexistent/zrelay.toml"}), usage_error,
                       Catch::Message("cannot read config file '/nonexistent/zrelay.toml': No such file or directory"));
}

TEST_CASE("parse_relay --print-config prints every key, and --config reads it back to the same settings", "[config]") {
  temp_config file("journal = \"/tmp/zrelay-j\"\njournal-max-bytes = \"1G\"\nstats-interval = 0.5\nverbose = true\n");
  const auto first = relay({"--config", file.path(), "--hwm", "77", "--print-config"});
  const auto& text = first.print;
  CHECK(text.find("hwm = 77\n") != std::string::npos);
  CHECK(text.find("journal = \"/tmp/zrelay-j\"\n") != std::string::npos);
  CHECK(text.find("journal-max-bytes = \"1G\"\n") != std::string::npos);
  CHECK(text.find("# journal-max-age (not set)\n") != std::string::npos);
  CHECK(text.find("verbose = true\n") != std::string::npos);
  CHECK(text.find("# curve-key (not set)\n") != std::string::npos);
  // Every option but --help, --version, --config and --print-config appears once.
  for (const auto& k : zrelay::cli::relay_keys()) {
    INFO(k.first);
    CHECK(text.find(k.first + " ") != std::string::npos);
  }
  temp_config again(text);
  const auto second = relay({"--config", again.path()});
  REQUIRE(second.options.settings.size() == first.options.settings.size());
  for (std::size_t i = 0; i < first.options.settings.size(); ++i) {
    INFO(first.options.settings[i].key);
    CHECK(second.options.settings[i].key == first.options.settings[i].key);
    CHECK(second.options.settings[i].text == first.options.settings[i].text);
    CHECK(second.options.settings[i].set == first.options.settings[i].set);
  }
  CHECK(second.options.relay.hwm == 77);
  CHECK(second.options.relay.journal.dir == "/tmp/zrelay-j");
  CHECK(second.options.stats_interval == 500ms);
  // Without a journal, its settings are shown commented out: set, they would need --journal.
  const auto plain = relay({"--print-config"}).print;
  CHECK(plain.find("# journal-fsync = \"on\"\n") != std::string::npos);
  temp_config defaults(plain);
  CHECK(relay({"--config", defaults.path()}).options.relay.journal.dir.empty());
}

TEST_CASE("zrelay ctl --config takes the control socket from the relay's configuration file", "[config]") {
  const auto ctl = [](std::vector<std::string> args) {
    std::vector<const char*> v{"zrelay", "ctl"};
    for (const auto& a : args) v.push_back(a.c_str());
    return zrelay::cli::parse_ctl(static_cast<int>(v.size()), v.data()).options;
  };
  temp_config file("hwm = 5\ncontrol-bind = \"ipc:///run/zrelay/control\"\n");
  CHECK(ctl({"stats", "--config", file.path()}).endpoint == "ipc:///run/zrelay/control");
  // --control-connect wins; a file without the key leaves the default.
  CHECK(ctl({"stats", "--config", file.path(), "--control-connect", "tcp://127.0.0.1:7000"}).endpoint ==
        "tcp://127.0.0.1:7000");
  file.rewrite("hwm = 5\n");
  CHECK(ctl({"reload", "--config", file.path()}).endpoint == "tcp://127.0.0.1:5563");
  file.rewrite("control-bind = \"off\"\n");
  CHECK_THROWS_WITH(ctl({"stats", "--config", file.path()}),
                    Catch::StartsWith(file.path() + ":1: control-bind is off"));
  file.rewrite("control-bind = 5\n");
  CHECK_THROWS_WITH(ctl({"stats", "--config", file.path()}),
                    Catch::StartsWith(file.path() + ":1: control-bind must be a string"));
}

TEST_CASE("read_config refuses what is not a config file: a FIFO, a device, a huge file, a byte order mark",
          "[config]") {
  CHECK_THROWS_WITH(zrelay::cli::read_config("/dev/zero"),
                    Catch::Equals("cannot read config file '/dev/zero': not a regular file"));
  // A FIFO no one writes to: refused at once (opening it does not wait for a writer).
  temp_config fifo_dir("");
  const auto fifo = fifo_dir.path() + ".fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH(zrelay::cli::read_config(fifo),
                    Catch::Equals("cannot read config file '" + fifo + "': not a regular file"));
  CHECK_THROWS_WITH(zrelay::cli::read_config("/tmp"),
                    Catch::Equals("cannot read config file '/tmp': it is a directory"));
  temp_config full(std::string(1u << 20, '#'));
  CHECK(zrelay::cli::read_config(full.path()).values.empty());
  temp_config big(std::string((1u << 20) + 1, '#'));
  CHECK_THROWS_WITH(zrelay::cli::read_config(big.path()), Catch::Contains("more than a config file's 1048576"));
  temp_config bom("\xEF\xBB\xBFhwm = 1\n");
  CHECK_THROWS_WITH(zrelay::cli::read_config(bom.path()),
                    Catch::EndsWith(":1: the file starts with a UTF-8 byte order mark: save it without one"));
  CHECK_THROWS_WITH(parse_config("HWM = 1", "z"), Catch::Contains("(did you mean 'hwm'?)"));
  CHECK_THROWS_WITH(parse_config("journal = \"/j\xC3\xA9\"", "z"),
                    Catch::StartsWith("z:1: a non-ASCII character outside a comment line"));
  CHECK(parse_config("# Gr\xC3\xB6\xC3\x9F"
                     "e\njournal = \"/j\\u00e9\"",
                     "z")
            .values.at("journal")
            .text == "/j\xC3\xA9");
}
