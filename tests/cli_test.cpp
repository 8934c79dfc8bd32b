#include <catch2/catch.hpp>

#include <chrono>
#include <initializer_list>
#include <string>
#include <vector>

#include "zrelay/cli.hpp"
#include "zrelay/version.hpp"

using namespace std::chrono_literals;
using zrelay::delivery;
using zrelay::full_policy;
using zrelay::pub_source;
using zrelay::sub_format;
using zrelay::cli::parse_size;
using zrelay::cli::usage_error;

namespace {

// argv lists as a shell would pass them, with the program name in front.
std::vector<const char*> argv_of(const char* program, std::initializer_list<const char*> args) {
  std::vector<const char*> v{program};
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

zrelay::cli::parsed<zrelay::relay_options> relay(std::initializer_list<const char*> args) {
  const auto v = argv_of("zrelay", args);
  return zrelay::cli::parse_relay(static_cast<int>(v.size()), v.data());
}

zrelay::cli::parsed<zrelay::pub_options> pub(std::initializer_list<const char*> args, bool tty = false) {
  const auto v = argv_of("zpub", args);
  return zrelay::cli::parse_pub(static_cast<int>(v.size()), v.data(), tty);
}

zrelay::cli::parsed<zrelay::sub_options> sub(std::initializer_list<const char*> args, bool tty = false) {
  const auto v = argv_of("zsub", args);
  return zrelay::cli::parse_sub(static_cast<int>(v.size()), v.data(), tty);
}

zrelay::cli::parsed<zrelay::ctl_options> ctl(std::initializer_list<const char*> args) {
  auto v = argv_of("zrelay", args);
  v.insert(v.begin() + 1, "ctl");
  return zrelay::cli::parse_ctl(static_cast<int>(v.size()), v.data());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// zrelay

TEST_CASE("parse_relay: --control-bind defaults to loopback 5563, takes ipc and off, refuses other hosts",
          "[cli][control]") {
  CHECK(relay({}).options.control_bind == "tcp://127.0.0.1:5563");
  CHECK(relay({"--control-bind", "off"}).options.control_bind.empty());
  CHECK(relay({"--control-bind", "ipc:///tmp/zrelay.ctl"}).options.control_bind == "ipc:///tmp/zrelay.ctl");
  CHECK(relay({"--control-bind", "tcp://127.0.0.1:*"}).options.control_bind == "tcp://127.0.0.1:*");
  CHECK_THROWS_WITH(relay({"--control-bind", "tcp://*:5563"}),
                    Catch::StartsWith("--control-bind: cannot use 'tcp://*:5563' for the control socket: it is not "
                                      "authenticated"));
  CHECK_THROWS_AS(relay({"--control-bind", "nonsense"}), zrelay::cli::usage_error);
}

TEST_CASE("parse_relay: --sys-interval takes seconds, 0 by default (off)", "[cli][sys]") {
  CHECK(relay({}).options.relay.sys_interval == 0ms);
  CHECK(relay({"--sys-interval", "10"}).options.relay.sys_interval == 10000ms);
  CHECK(relay({"--sys-interval", "0.25"}).options.relay.sys_interval == 250ms);
  CHECK_THROWS_WITH(relay({"--sys-interval", "-1"}), "--sys-interval must be a number of seconds, not '-1'");
  CHECK_THROWS_AS(relay({"--sys-interval", "soon"}), zrelay::cli::usage_error);
}

TEST_CASE("parse_ctl takes one command, the endpoint and a timeout", "[cli][control]") {
  const auto d = ctl({"stats"});
  CHECK(d.print.empty());
  CHECK(d.options.command == "stats");
  CHECK(d.options.endpoint == "tcp://127.0.0.1:5563");
  CHECK(d.options.timeout == 2000ms);
  const auto o = ctl({"reload", "--control-connect", "ipc:///tmp/c", "--timeout", "50"});
  CHECK(o.options.command == "reload");
  CHECK(o.options.endpoint == "ipc:///tmp/c");
  CHECK(o.options.timeout == 50ms);
  CHECK(ctl({"--timeout", "50", "stats"}).options.command == "stats");
  CHECK(ctl({"--help"}).print.find("Exit status: 0 done, 1 no answer") != std::string::npos);
  const std::string usage = "usage: zrelay ctl stats|reload [--control-connect EP | --config FILE] [--timeout MS]";
  CHECK_THROWS_WITH(ctl({}), usage);
  CHECK_THROWS_WITH(ctl({"stats", "reload"}), usage);
  CHECK_THROWS_WITH(ctl({"stop"}), "unknown command 'stop' for zrelay ctl (stats, reload)");
  CHECK_THROWS_WITH(ctl({"stats", "--timeout", "0"}), "--timeout must be a whole number from 1 to 3600000, not '0'");
  CHECK_THROWS_WITH(ctl({"stats", "--nope"}), "unknown option '--nope'");
  CHECK_THROWS_AS(ctl({"stats", "--control-connect", "tcp://*:1"}), zrelay::cli::usage_error);
}

TEST_CASE("parse_relay defaults bind loopback with the documented settings", "[cli]") {
  const auto p = relay({});
  CHECK(p.print.empty());
  const auto& o = p.options;
  CHECK(o.relay.pub_bind == "tcp://127.0.0.1:5559");
  CHECK(o.relay.sub_bind == "tcp://127.0.0.1:5560");
  CHECK(o.relay.ack_bind == "tcp://127.0.0.1:5561");
  CHECK(o.relay.on_full == full_policy::drop);
  CHECK(o.relay.hwm == 1000);
  CHECK(o.relay.max_msg_size == 1048576);
  CHECK(o.relay.full_wait == 100ms);
  CHECK(o.relay.spin == std::chrono::microseconds(zrelay::default_spin_us));
  CHECK(o.stats_interval == 0ms);
  CHECK_FALSE(o.verbose);
}

TEST_CASE("parse_relay reads every flag", "[cli]") {
  const auto p = relay({"--pub-bind", "tcp://*:6000", "--sub-bind", "ipc:///tmp/zrelay-sub", "--ack-bind",
                        "tcp://[::1]:*", "--on-full", "block", "--full-wait", "250", "--hwm", "50", "--max-msg-size",
                        "64k", "--stats-interval", "2.5", "--spin", "50", "-v"});
  CHECK(p.print.empty());
  const auto& o = p.options;
  CHECK(o.relay.pub_bind == "tcp://*:6000");
  CHECK(o.relay.sub_bind == "ipc:///tmp/zrelay-sub");
  CHECK(o.relay.ack_bind == "tcp://[::1]:*");
  CHECK(o.relay.on_full == full_policy::block);
  CHECK(o.relay.hwm == 50);
  CHECK(o.relay.full_wait == 250ms);
  CHECK(o.relay.max_msg_size == 65536);
  CHECK(o.stats_interval == 2500ms);
  CHECK(o.relay.spin == 50us);
  CHECK(o.verbose);

  SECTION("long form of -v, '=' syntax and a size of 0 for no limit") {
    const auto q =
        relay({"--verbose", "--max-msg-size=0", "--on-full=drop", "--hwm=10000000", "--full-wait=0", "--spin=0"});
    CHECK(q.options.verbose);
    CHECK(q.options.relay.max_msg_size == 0);
    CHECK(q.options.relay.on_full == full_policy::drop);
    CHECK(q.options.relay.hwm == 10000000);
    CHECK(q.options.relay.full_wait == 0ms);
    CHECK(q.options.relay.spin == 0us);
    CHECK(relay({"--spin", "1000000"}).options.relay.spin == 1s);
  }
}

TEST_CASE("parse_relay --help and --version set the text to print", "[cli]") {
  SECTION("--help") {
    const auto p = relay({"--help"});
    CHECK_THAT(p.print, Catch::Contains("--pub-bind") && Catch::Contains("--on-full") &&
                            Catch::Contains("Exit status: 0 stopped by SIGINT/SIGTERM"));
  }
  SECTION("-h wins over values that would be errors") {
    const auto p = relay({"-h", "--hwm", "0"});
    CHECK_THAT(p.print, Catch::Contains("--stats-interval"));
  }
  SECTION("--version") { CHECK(relay({"--version"}).print == std::string("zrelay ") + zrelay::version_string + "\n"); }
}

TEST_CASE("parse_relay reports each usage error in words", "[cli]") {
  SECTION("unknown flag") {
    CHECK_THROWS_MATCHES(relay({"--bogus"}), usage_error, Catch::Message("unknown option '--bogus'"));
  }
  SECTION("stray argument") {
    CHECK_THROWS_MATCHES(relay({"extra"}), usage_error, Catch::Message("unexpected argument 'extra'"));
  }
  SECTION("option without its value") {
    CHECK_THROWS_MATCHES(relay({"--hwm"}), usage_error, Catch::Message("option '--hwm' is missing an argument"));
  }
  SECTION("malformed endpoints") {
    CHECK_THROWS_MATCHES(relay({"--pub-bind", "localhost:5559"}), usage_error,
                         Catch::Message("malformed endpoint 'localhost:5559': expected tcp://HOST:PORT, "
                                        "ipc://PATH or inproc://NAME"));
    CHECK_THROWS_WITH(relay({"--sub-bind", "tcp://127.0.0.1:0"}),
                      "malformed endpoint 'tcp://127.0.0.1:0': the port must be 1-65535 or '*'");
    CHECK_THROWS_WITH(relay({"--ack-bind", "udp://x:1"}),
                      "malformed endpoint 'udp://x:1': unknown transport 'udp' (use tcp, ipc or inproc)");
  }
  SECTION("bad --on-full") {
    CHECK_THROWS_MATCHES(relay({"--on-full", "sometimes"}), usage_error,
                         Catch::Message("--on-full: 'sometimes' is not a policy (use drop or block)"));
  }
  SECTION("bad --hwm") {
    for (const char* v : {"0", "abc", "10000001", "-5", "1.5", ""}) {
      INFO(v);
      CHECK_THROWS_MATCHES(
          relay({"--hwm", v}), usage_error,
          Catch::Message("--hwm must be a whole number from 1 to 10000000, not '" + std::string(v) + "'"));
    }
  }
  SECTION("bad --full-wait") {
    for (const char* v : {"abc", "-1", "1.5", "", "3600001"}) {
      INFO(v);
      CHECK_THROWS_MATCHES(
          relay({"--full-wait", v}), usage_error,
          Catch::Message("--full-wait must be a whole number from 0 to 3600000, not '" + std::string(v) + "'"));
    }
  }
  SECTION("bad --spin") {
    for (const char* v : {"abc", "-1", "1.5", "", "1000001", "200us"}) {
      INFO(v);
      CHECK_THROWS_MATCHES(
          relay({"--spin", v}), usage_error,
          Catch::Message("--spin must be a whole number from 0 to 1000000, not '" + std::string(v) + "'"));
    }
  }
  SECTION("bad --max-msg-size") {
    for (const char* v : {"1T", "abc", "", "k", "1.5M", "-1", "1kb", "2000G"}) {
      INFO(v);
      CHECK_THROWS_MATCHES(
          relay({"--max-msg-size", v}), usage_error,
          Catch::Message("--max-msg-size must be a size in bytes such as 65536, 64k, 1M or 2G (at most 1024G), not '" +
                         std::string(v) + "'"));
    }
  }
  SECTION("bad --stats-interval") {
    for (const char* v : {"-1", "abc", "1s", "inf", "nan", "31536001", ""}) {
      INFO(v);
      CHECK_THROWS_MATCHES(
          relay({"--stats-interval", v}), usage_error,
          Catch::Message("--stats-interval must be a number of seconds, not '" + std::string(v) + "'"));
    }
  }
}

TEST_CASE("parse_relay --metrics-bind: off by default, HOST:PORT or [IPV6]:PORT, a usage error otherwise", "[cli]") {
  CHECK_FALSE(relay({}).options.metrics_bind);
  const auto o = relay({"--metrics-bind", "127.0.0.1:0"}).options;
  REQUIRE(o.metrics_bind);
  CHECK(o.metrics_bind->host == "127.0.0.1");
  CHECK(o.metrics_bind->port == 0);
  const auto v6 = relay({"--metrics-bind", "[::1]:9560"}).options;
  REQUIRE(v6.metrics_bind);
  CHECK(v6.metrics_bind->host == "::1");
  CHECK(v6.metrics_bind->port == 9560);
  CHECK_THROWS_MATCHES(relay({"--metrics-bind", "9560"}), usage_error,
                       Catch::Message("--metrics-bind '9560': no port (HOST:PORT, [IPV6]:PORT)"));
  CHECK_THROWS_MATCHES(relay({"--metrics-bind", "h:99999"}), usage_error,
                       Catch::Message("--metrics-bind 'h:99999': the port must be a number from 0 to 65535 (0: any "
                                      "free port)"));
  CHECK_THROWS_AS(relay({"--metrics-bind"}), usage_error);
}

// ---------------------------------------------------------------------------------------------
// zpub

TEST_CASE("parse_pub defaults to acked lines from standard input", "[cli]") {
  const auto p = pub({"-t", "news"});
  CHECK(p.print.empty());
  const auto& o = p.options;
  REQUIRE(o.topic);
  CHECK(*o.topic == "news");
  CHECK(o.source == pub_source::stdin_stream);
  CHECK_FALSE(o.whole);
  CHECK(o.message.empty());
  CHECK(o.file.empty());
  CHECK(o.delimiter == "\n");
  CHECK_FALSE(o.skip_empty);
  CHECK_FALSE(o.topic_sep);
  CHECK_FALSE(o.stats);
  const auto& c = o.publisher;
  CHECK(c.mode == delivery::acked);
  CHECK(c.ack_endpoint == "tcp://127.0.0.1:5561");
  CHECK(c.pub_endpoint == "tcp://127.0.0.1:5559");
  CHECK(c.max_inflight == 50000);
  CHECK(c.ack_timeout == 3000ms);
  CHECK(c.retries == 3);
  CHECK(c.connect_timeout == 3000ms);
}

TEST_CASE("parse_pub reads each input source", "[cli]") {
  SECTION("-m sends one message") {
    const auto o = pub({"-t", "x", "-m", "hello world"}).options;
    CHECK(o.source == pub_source::message);
    CHECK(o.message == "hello world");
    CHECK(o.whole);
  }
  SECTION("-m with an empty message is allowed") {
    const auto o = pub({"-t", "x", "--message", ""}).options;
    CHECK(o.source == pub_source::message);
    CHECK(o.message.empty());
  }
  SECTION("-f sends the file as one message") {
    const auto o = pub({"-t", "x", "-f", "data.bin"}).options;
    CHECK(o.source == pub_source::file);
    CHECK(o.file == "data.bin");
    CHECK(o.whole);
  }
  SECTION("-f with -l sends one message per line") {
    const auto o = pub({"-t", "x", "--file", "data.txt", "-l"}).options;
    CHECK(o.source == pub_source::file);
    CHECK_FALSE(o.whole);
  }
  SECTION("-s sends all of standard input as one message") {
    const auto o = pub({"-t", "x", "-s"}).options;
    CHECK(o.source == pub_source::stdin_stream);
    CHECK(o.whole);
  }
  SECTION("-s with a terminal still reads standard input, no prompt") {
    const auto o = pub({"-t", "x", "--stdin-file"}, true).options;
    CHECK(o.source == pub_source::stdin_stream);
    CHECK(o.whole);
  }
  SECTION("-l is the default for standard input") {
    const auto o = pub({"-t", "x", "--lines"}).options;
    CHECK(o.source == pub_source::stdin_stream);
    CHECK_FALSE(o.whole);
  }
}

TEST_CASE("parse_pub reads every message and delivery flag", "[cli]") {
  SECTION("delimiter, skip-empty, topic-sep, stats") {
    const auto o = pub({"--topic-sep", "|", "-d", "\\0", "--skip-empty", "--stats"}).options;
    CHECK_FALSE(o.topic);
    REQUIRE(o.topic_sep);
    CHECK(*o.topic_sep == "|");
    CHECK(o.delimiter == std::string(1, '\0'));
    CHECK(o.skip_empty);
    CHECK(o.stats);
  }
  SECTION("a multi-byte delimiter with escapes") {
    CHECK(pub({"-t", "x", "--delimiter", "\\r\\n"}).options.delimiter == "\r\n");
    CHECK(pub({"-t", "x", "-d", "--"}).options.delimiter == "--");
  }
  SECTION("-H sets both endpoints") {
    const auto c = pub({"-t", "x", "-H", "relay.example.com"}).options.publisher;
    CHECK(c.ack_endpoint == "tcp://relay.example.com:5561");
    CHECK(c.pub_endpoint == "tcp://relay.example.com:5559");
  }
  SECTION("-H brackets an IPv6 host") {
    const auto c = pub({"-t", "x", "--host", "::1"}).options.publisher;
    CHECK(c.ack_endpoint == "tcp://[::1]:5561");
    CHECK(c.pub_endpoint == "tcp://[::1]:5559");
  }
  SECTION("explicit endpoints, each with its mode") {
    CHECK(pub({"-t", "x", "--ack-connect", "ipc:///tmp/ack"}).options.publisher.ack_endpoint == "ipc:///tmp/ack");
    const auto c = pub({"-t", "x", "--no-ack", "--pub-connect", "inproc://pub"}).options.publisher;
    CHECK(c.mode == delivery::batched);
    CHECK(c.pub_endpoint == "inproc://pub");
  }
  SECTION("--no-ack, and --plain with it") {
    const auto a = pub({"-t", "x", "--no-ack"}).options.publisher;
    CHECK(a.mode == delivery::batched);
    const auto b = pub({"-t", "x", "--no-ack", "--plain"}).options.publisher;
    CHECK(b.mode == delivery::plain);
  }
  SECTION("numbers") {
    const auto c =
        pub({"-t", "x", "--max-inflight", "5", "--ack-timeout", "100", "--retries", "0", "--connect-timeout", "0"})
            .options.publisher;
    CHECK(c.max_inflight == 5);
    CHECK(c.ack_timeout == 100ms);
    CHECK(c.retries == 0);
    CHECK(c.connect_timeout == 0ms);
  }
  SECTION("numbers at their upper bounds") {
    const auto c = pub({"-t", "x", "--max-inflight", "100000000", "--ack-timeout", "3600000", "--retries", "1000",
                        "--connect-timeout", "3600000"})
                       .options.publisher;
    CHECK(c.max_inflight == 100000000);
    CHECK(c.ack_timeout == 3600000ms);
    CHECK(c.retries == 1000);
    CHECK(c.connect_timeout == 3600000ms);
  }
}

TEST_CASE("parse_pub --help and --version set the text to print", "[cli]") {
  SECTION("--help") {
    const auto p = pub({"--help"});
    CHECK_THAT(p.print, Catch::Contains("--topic") && Catch::Contains("--no-ack") &&
                            Catch::Contains("3 the relay refused a message"));
    // The bound on giving up, and the signals that stop zpub, as README states them.
    CHECK_THAT(p.print, Catch::Contains("--ack-timeout x (N+1)") && Catch::Contains("(12 s by default)") &&
                            Catch::Contains("SIGINT, SIGTERM and SIGHUP"));
  }
  SECTION("-h needs no topic") { CHECK_FALSE(pub({"-h"}).print.empty()); }
  SECTION("--version") { CHECK(pub({"--version"}).print == std::string("zpub ") + zrelay::version_string + "\n"); }
}

TEST_CASE("parse_pub needs a topic unless it may prompt", "[cli]") {
  SECTION("no topic and standard input is not a terminal") {
    CHECK_THROWS_MATCHES(pub({}), usage_error,
                         Catch::Message("no topic: give -t TOPIC (or --topic-sep SEP to read it from each line)"));
  }
  SECTION("no topic with -m even on a terminal") {
    CHECK_THROWS_WITH(pub({"-m", "hi"}, true),
                      "no topic: give -t TOPIC (or --topic-sep SEP to read it from each line)");
  }
  SECTION("a terminal without -m, -f or -s prompts for the topic") {
    const auto o = pub({}, true).options;
    CHECK(o.source == pub_source::prompt);
    CHECK_FALSE(o.topic);
  }
  SECTION("a terminal with -t prompts for messages only") {
    const auto o = pub({"-t", "news"}, true).options;
    CHECK(o.source == pub_source::prompt);
    REQUIRE(o.topic);
    CHECK(*o.topic == "news");
  }
  SECTION("an empty topic") {
    CHECK_THROWS_MATCHES(pub({"-t", ""}), usage_error, Catch::Message("the topic must not be empty (-t)"));
    CHECK_THROWS_WITH(pub({"--topic="}, true), "the topic must not be empty (-t)");
  }
  SECTION("an empty --topic-sep") {
    CHECK_THROWS_MATCHES(pub({"--topic-sep", ""}), usage_error, Catch::Message("--topic-sep must not be empty"));
  }
}

TEST_CASE("parse_pub refuses contradictory inputs", "[cli]") {
  SECTION("-m with -f") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "-m", "a", "-f", "b"}), usage_error,
                         Catch::Message("give one input: -m MSG, -f FILE, or standard input"));
  }
  SECTION("-m twice") {
    CHECK_THROWS_WITH(pub({"-t", "x", "-m", "a", "-m", "b"}), "give one input: -m MSG, -f FILE, or standard input");
  }
  SECTION("-f twice") {
    CHECK_THROWS_WITH(pub({"-t", "x", "-f", "a", "-f", "b"}), "give one input: -m MSG, -f FILE, or standard input");
  }
  SECTION("-l with -m") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "-m", "a", "-l"}), usage_error, Catch::Message("-l does not apply to -m"));
  }
  SECTION("-s with -l") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "-s", "-l"}), usage_error, Catch::Message("-s and -l contradict each other"));
  }
  SECTION("-s with -m") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "-s", "-m", "a"}), usage_error,
                         Catch::Message("-s and -m contradict each other"));
  }
}

TEST_CASE("parse_pub refuses bad delivery options", "[cli]") {
  SECTION("--plain without --no-ack") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "--plain"}), usage_error,
                         Catch::Message("--plain needs --no-ack (the relay acknowledges only zrelay batches)"));
  }
  SECTION("an endpoint of the other mode would be ignored") {
    CHECK_THROWS_MATCHES(
        pub({"-t", "x", "--ack-connect", "tcp://relay:5561", "--no-ack"}), usage_error,
        Catch::Message("--ack-connect does not apply with --no-ack (fire and forget goes to --pub-connect)"));
    CHECK_THROWS_WITH(pub({"-t", "x", "--no-ack", "--plain", "--ack-connect", "tcp://relay:5561"}),
                      "--ack-connect does not apply with --no-ack (fire and forget goes to --pub-connect)");
    CHECK_THROWS_MATCHES(pub({"-t", "x", "--pub-connect", "tcp://relay:5559"}), usage_error,
                         Catch::Message("--pub-connect needs --no-ack (acknowledged messages go to --ack-connect)"));
    CHECK_THROWS_WITH(pub({"-t", "x", "--ack-connect", "tcp://relay:5561", "--pub-connect", "tcp://relay:5559"}),
                      "--pub-connect needs --no-ack (acknowledged messages go to --ack-connect)");
  }
  SECTION("-H together with --ack-connect") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "-H", "relay", "--ack-connect", "tcp://relay:5561"}), usage_error,
                         Catch::Message("give either -H HOST or --ack-connect/--pub-connect, not both"));
  }
  SECTION("-H together with --pub-connect") {
    CHECK_THROWS_WITH(pub({"-t", "x", "--pub-connect", "tcp://relay:5559", "-H", "relay"}),
                      "give either -H HOST or --ack-connect/--pub-connect, not both");
  }
  SECTION("-H with a bad host") {
    CHECK_THROWS_MATCHES(
        pub({"-t", "x", "-H", "bad host"}), usage_error,
        Catch::Message("-H: malformed endpoint 'tcp://bad host:5561': 'bad host' is not a valid host name"));
    CHECK_THROWS_WITH(pub({"-t", "x", "-H", "*"}),
                      "-H: malformed endpoint 'tcp://*:5561': '*' as host is only for binding");
  }
  SECTION("malformed connect endpoints") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "--ack-connect", "tcp://*:5561"}), usage_error,
                         Catch::Message("malformed endpoint 'tcp://*:5561': '*' as host is only for binding"));
    CHECK_THROWS_WITH(pub({"-t", "x", "--no-ack", "--pub-connect", "tcp://127.0.0.1:*"}),
                      "malformed endpoint 'tcp://127.0.0.1:*': '*' as port is only for binding");
    CHECK_THROWS_WITH(pub({"-t", "x", "--ack-connect", "relay:5561"}),
                      "malformed endpoint 'relay:5561': expected tcp://HOST:PORT, ipc://PATH or inproc://NAME");
  }
  SECTION("bad numbers") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "--max-inflight", "0"}), usage_error,
                         Catch::Message("--max-inflight must be a whole number from 1 to 100000000, not '0'"));
    CHECK_THROWS_WITH(pub({"-t", "x", "--max-inflight", "100000001"}),
                      "--max-inflight must be a whole number from 1 to 100000000, not '100000001'");
    CHECK_THROWS_WITH(pub({"-t", "x", "--ack-timeout", "0"}),
                      "--ack-timeout must be a whole number from 1 to 3600000, not '0'");
    CHECK_THROWS_WITH(pub({"-t", "x", "--ack-timeout", "1.5"}),
                      "--ack-timeout must be a whole number from 1 to 3600000, not '1.5'");
    CHECK_THROWS_WITH(pub({"-t", "x", "--retries", "1001"}),
                      "--retries must be a whole number from 0 to 1000, not '1001'");
    CHECK_THROWS_WITH(pub({"-t", "x", "--retries", "three"}),
                      "--retries must be a whole number from 0 to 1000, not 'three'");
    CHECK_THROWS_WITH(pub({"-t", "x", "--connect-timeout", ""}),
                      "--connect-timeout must be a whole number from 0 to 3600000, not ''");
    CHECK_THROWS_WITH(pub({"-t", "x", "--connect-timeout", "99999999999999999999"}),
                      "--connect-timeout must be a whole number from 0 to 3600000, not '99999999999999999999'");
  }
  SECTION("bad --delimiter escape") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "-d", "\\q"}), usage_error,
                         Catch::Message("--delimiter: unknown escape '\\q' (use \\n \\t \\r \\0 \\\\ or \\xHH)"));
    CHECK_THROWS_WITH(pub({"-t", "x", "-d", "\\x4"}), "--delimiter: '\\x' needs two hex digits");
    CHECK_THROWS_WITH(pub({"-t", "x", "-d", ""}), "--delimiter: the delimiter must not be empty");
  }
  SECTION("unknown flags and stray arguments") {
    CHECK_THROWS_MATCHES(pub({"-t", "x", "--bogus"}), usage_error, Catch::Message("unknown option '--bogus'"));
    CHECK_THROWS_WITH(pub({"-t", "x", "-z"}), "unknown option '-z'");
    CHECK_THROWS_WITH(pub({"-t", "x", "hello"}), "unexpected argument 'hello'");
    CHECK_THROWS_WITH(pub({"-t"}), "option '-t' is missing an argument");
  }
}

// ---------------------------------------------------------------------------------------------
// zsub

TEST_CASE("parse_sub defaults", "[cli]") {
  const auto p = sub({"-t", "news"});
  CHECK(p.print.empty());
  const auto& o = p.options;
  CHECK(o.subscriber.topics == std::vector<std::string>{"news"});
  CHECK(o.subscriber.endpoint == "tcp://127.0.0.1:5560");
  CHECK(o.subscriber.connect_timeout == 3000ms);
  CHECK_FALSE(o.subscriber.dedup);
  CHECK_FALSE(o.prompt_topic);
  CHECK(o.format == sub_format::payload);
  CHECK(o.terminator == '\n');
  CHECK(o.count == 0);
  CHECK(o.idle == 0ms);
  CHECK_FALSE(o.stats);
  CHECK_FALSE(o.custom.has_value());
  CHECK(o.filter_out.empty());
}

TEST_CASE("parse_sub keeps commas inside repeated -t topics", "[cli]") {
  SECTION("repeated -t") {
    CHECK(sub({"-t", "a,b", "-t", "c", "--topic", "d,"}).options.subscriber.topics ==
          std::vector<std::string>{"a,b", "c", "d,"});
  }
  SECTION("-t \"\" subscribes to everything") {
    CHECK(sub({"-t", ""}).options.subscriber.topics == std::vector<std::string>{""});
  }
  SECTION("an empty topic among others") {
    CHECK(sub({"-t", "x", "-t", ""}).options.subscriber.topics == std::vector<std::string>{"x", ""});
  }
}

TEST_CASE("parse_sub reads every flag", "[cli]") {
  SECTION("output and counting flags") {
    const auto o = sub({"-t", "x", "--dedup", "-v", "-0", "-C", "10", "-W", "1.5", "--stats", "--connect-timeout", "0",
                        "--sub-connect", "ipc:///tmp/zrelay-sub"})
                       .options;
    CHECK(o.subscriber.dedup);
    CHECK(o.format == sub_format::topic_payload);
    CHECK(o.terminator == '\0');
    CHECK(o.count == 10);
    CHECK(o.idle == 1500ms);
    CHECK(o.stats);
    CHECK(o.subscriber.connect_timeout == 0ms);
    CHECK(o.subscriber.endpoint == "ipc:///tmp/zrelay-sub");
  }
  SECTION("--json and long forms") {
    const auto o = sub({"-t", "x", "--json", "--null", "--count", "1", "--timeout", "2"}).options;
    CHECK(o.format == sub_format::json);
    CHECK(o.terminator == '\0');
    CHECK(o.count == 1);
    CHECK(o.idle == 2000ms);
  }
  SECTION("-W parses fractions, exponents and rounds to milliseconds") {
    CHECK(sub({"-t", "x", "-W", "0.25"}).options.idle == 250ms);
    CHECK(sub({"-t", "x", "-W", "1e1"}).options.idle == 10000ms);
    CHECK(sub({"-t", "x", "-W", "0.001"}).options.idle == 1ms);
    CHECK(sub({"-t", "x", "-W", "31536000"}).options.idle == 31536000000ms);
  }
  SECTION("-C up to its limit") {
    CHECK(sub({"-t", "x", "-C", "9223372036854775807"}).options.count == 9223372036854775807ull);
  }
  SECTION("-H host") {
    CHECK(sub({"-t", "x", "-H", "relay.example.com"}).options.subscriber.endpoint == "tcp://relay.example.com:5560");
    CHECK(sub({"-t", "x", "--host", "::1"}).options.subscriber.endpoint == "tcp://[::1]:5560");
  }
}

TEST_CASE("parse_sub reads -F and -T", "[cli]") {
  const zrelay::message_view m{"t.a", "p", 0, 0, 0};
  const auto print = [&m](zrelay::sub_options& o) {
    std::string out;
    o.custom->append(out, m, {});
    return out;
  };
  SECTION("-F: a compiled format") {
    auto o = sub({"-t", "x", "-F", "%t=%p\\t%i"}).options;
    CHECK(o.format == sub_format::custom);
    REQUIRE(o.custom.has_value());
    CHECK(print(o) == "t.a=p\t-");
    CHECK(o.terminator == '\n');
  }
  SECTION("--format, with -0") {
    auto o = sub({"-t", "x", "--format", "%p", "-0"}).options;
    CHECK(o.format == sub_format::custom);
    CHECK(o.terminator == '\0');
    CHECK(print(o) == "p");
  }
  SECTION("-F overrides -v's form; -v keeps its replay report") {
    auto o = sub({"-t", "x", "-v", "-F", "[%p]"}).options;
    CHECK(o.format == sub_format::custom);
    CHECK(o.verbose);
    CHECK(print(o) == "[p]");
  }
  SECTION("-T and --filter-out, repeated, commas kept") {
    const auto o = sub({"-t", "", "-T", "a,b", "--filter-out", "debug.", "-T", "x"}).options;
    CHECK(o.filter_out == std::vector<std::string>{"a,b", "debug.", "x"});
    CHECK(o.subscriber.topics == std::vector<std::string>{""});
  }
}

TEST_CASE("parse_sub reads the replay options", "[cli]") {
  using zrelay::replay_mode;
  SECTION("none by default") {
    const auto o = sub({"-t", "x"}).options;
    CHECK(o.subscriber.replay.mode == replay_mode::none);
    CHECK(o.subscriber.replay.endpoint == "tcp://127.0.0.1:5562");
    CHECK_FALSE(o.verbose);
  }
  SECTION("--all is from journal seq 1") {
    const auto r = sub({"-t", "x", "--all"}).options.subscriber.replay;
    CHECK(r.mode == replay_mode::from_seq);
    CHECK(r.value == 1);
  }
  SECTION("--from-seq") {
    const auto r = sub({"-t", "x", "--from-seq", "42"}).options.subscriber.replay;
    CHECK(r.mode == replay_mode::from_seq);
    CHECK(r.value == 42);
  }
  SECTION("--last-per-topic") {
    CHECK(sub({"-t", "x", "--last-per-topic"}).options.subscriber.replay.mode == replay_mode::last_per_topic);
  }
  SECTION("--since an RFC 3339 time") {
    const auto r = sub({"-t", "x", "--since", "2026-12-01T10:00:00Z"}).options.subscriber.replay;
    CHECK(r.mode == replay_mode::since);
    CHECK(r.value == 1796119200ull * 1000000000);
  }
  SECTION("--replay-connect, and -H for both sockets") {
    CHECK(sub({"-t", "x", "--all", "--replay-connect", "tcp://r:7000"}).options.subscriber.replay.endpoint ==
          "tcp://r:7000");
    const auto o = sub({"-t", "x", "--all", "-H", "relay.example.com", "-v"}).options;
    CHECK(o.subscriber.replay.endpoint == "tcp://relay.example.com:5562");
    CHECK(o.subscriber.endpoint == "tcp://relay.example.com:5560");
    CHECK(o.verbose);
  }
  SECTION("usage errors") {
    CHECK_THROWS_MATCHES(sub({"-t", "x", "--all", "--last-per-topic"}), usage_error,
                         Catch::Message("give one replay option: --all, --from-seq, --since or --last-per-topic"));
    CHECK_THROWS_MATCHES(sub({"-t", "x", "--from-seq", "1", "--since", "1h"}), usage_error,
                         Catch::Message("give one replay option: --all, --from-seq, --since or --last-per-topic"));
    CHECK_THROWS_MATCHES(sub({"-t", "x", "--from-seq", "0"}), usage_error,
                         Catch::Message("--from-seq must be a whole number from 1 to 9223372036854775807, not '0'"));
    CHECK_THROWS_MATCHES(
        sub({"-t", "x", "--replay-connect", "tcp://r:1"}), usage_error,
        Catch::Message("--replay-connect needs a replay option (--all, --from-seq, --since or --last-per-topic)"));
    CHECK_THROWS_MATCHES(sub({"-t", "x", "--all", "--sub-connect", "tcp://r:1"}), usage_error,
                         Catch::Message("--sub-connect does not apply to a replay (it connects to --replay-connect)"));
    CHECK_THROWS_MATCHES(sub({"-t", "x", "--all", "-H", "r", "--replay-connect", "tcp://r:1"}), usage_error,
                         Catch::Message("give either -H HOST or --replay-connect, not both"));
    CHECK_THROWS_WITH(sub({"-t", "x", "--since", "yesterday"}),
                      Catch::StartsWith("--since takes a duration (90s, 10m, 2h, 1d) or an RFC 3339 time"));
  }
}

TEST_CASE("parse_since reads durations back from now and RFC 3339 times", "[cli]") {
  using zrelay::cli::parse_since;
  const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));
  const std::uint64_t now_ns = 1800000000ull * 1000000000;
  SECTION("durations") {
    CHECK(parse_since("90s", "--since", now) == now_ns - 90ull * 1000000000);
    CHECK(parse_since("10m", "--since", now) == now_ns - 600ull * 1000000000);
    CHECK(parse_since("2h", "--since", now) == now_ns - 7200ull * 1000000000);
    CHECK(parse_since("1d", "--since", now) == now_ns - 86400ull * 1000000000);
    CHECK(parse_since("0s", "--since", now) == now_ns);
    CHECK(parse_since("100000d", "--since", now) == 0);  // before the epoch
    CHECK(parse_since("150000d", "--since", now) == 0);  // more ns than 64 bits hold: still before the epoch
    CHECK(parse_since("999999999999d", "--since", now) == 0);
  }
  SECTION("RFC 3339 times") {
    CHECK(parse_since("1970-01-01T00:00:00Z", "--since", now) == 0);
    CHECK(parse_since("2026-12-01T10:00:00Z", "--since", now) == 1796119200ull * 1000000000);
    CHECK(parse_since("2026-12-01T11:00:00+01:00", "--since", now) == 1796119200ull * 1000000000);
    CHECK(parse_since("2026-12-01t09:30:00-00:30", "--since", now) == 1796119200ull * 1000000000);
    CHECK(parse_since("2026-12-01T10:00:00.25z", "--since", now) == 1796119200ull * 1000000000 + 250000000);
    CHECK(parse_since("2024-02-29T00:00:00Z", "--since", now) == 1709164800ull * 1000000000);
  }
  SECTION("what zsub -F %I prints, in any zone") {
    for (const long offset : {0L, 3600L, -(9L * 3600 + 30 * 60), 14L * 3600}) {
      INFO(offset);
      std::string text;
      zrelay::append_iso8601(text, 1796119200, offset);
      CHECK(parse_since(text, "--since", now) == 1796119200ull * 1000000000);
    }
  }
  SECTION("what is neither") {
    for (const char* v : {"", "s", "90", "1.5h", "-1h", "1w", "90 s", "2026-12-01", "2026-12-01T10:00:00",
                          "2026-13-01T10:00:00Z", "2025-02-29T00:00:00Z", "2026-12-01T24:00:00Z",
                          "2026-12-01T10:00:00+1:00", "2026-12-01T10:00:00.Z", "2026-12-01T10:00:00Zx"}) {
      INFO(v);
      CHECK_THROWS_AS(parse_since(v, "--since", now), usage_error);
    }
  }
}

TEST_CASE("parse_sub --help and --version set the text to print", "[cli]") {
  SECTION("--help") {
    const auto p = sub({"--help"});
    CHECK_THAT(p.print, Catch::Contains("--topic") && Catch::Contains("--json") &&
                            Catch::Contains("5 -W elapsed with no message") && Catch::Contains("--all") &&
                            Catch::Contains("--from-seq") && Catch::Contains("--since") &&
                            Catch::Contains("--last-per-topic") && Catch::Contains("--replay-connect"));
    CHECK_THAT(p.print, Catch::Contains("-T, --filter-out PREFIX") && Catch::Contains("-F, --format FORMAT"));
    // Every -F code on a line of its own (help2man makes the man page from this text).
    for (const char* code : {"%t", "%p",  "%x",  "%X",  "%l",  "%j",  "%i",  "%s",  "%n",   "%I", "%U",
                             "%%", "\\n", "\\t", "\\0", "\\r", "\\e", "\\a", "\\v", "\\\\", "@@"}) {
      INFO(code);
      CHECK_THAT(p.print, Catch::Contains("\n  " + std::string(code) + "  "));
    }
  }
  SECTION("-h needs no topic") { CHECK_FALSE(sub({"-h"}).print.empty()); }
  SECTION("--version") { CHECK(sub({"--version"}).print == std::string("zsub ") + zrelay::version_string + "\n"); }
}

TEST_CASE("parse_sub needs a topic unless it may prompt", "[cli]") {
  SECTION("no topic and standard input is not a terminal") {
    CHECK_THROWS_MATCHES(sub({}), usage_error,
                         Catch::Message("no topic: give -t PREFIX (-t \"\" subscribes to everything)"));
  }
  SECTION("a terminal prompts for the topic") {
    const auto o = sub({}, true).options;
    CHECK(o.prompt_topic);
    CHECK(o.subscriber.topics.empty());
  }
  SECTION("-t on a terminal does not prompt") { CHECK_FALSE(sub({"-t", "x"}, true).options.prompt_topic); }
}

TEST_CASE("parse_sub reports each usage error in words", "[cli]") {
  SECTION("-H together with --sub-connect") {
    CHECK_THROWS_MATCHES(sub({"-t", "x", "-H", "relay", "--sub-connect", "tcp://relay:5560"}), usage_error,
                         Catch::Message("give either -H HOST or --sub-connect, not both"));
  }
  SECTION("-H with a bad host") {
    CHECK_THROWS_MATCHES(
        sub({"-t", "x", "-H", "bad host"}), usage_error,
        Catch::Message("-H: malformed endpoint 'tcp://bad host:5560': 'bad host' is not a valid host name"));
  }
  SECTION("malformed --sub-connect") {
    CHECK_THROWS_MATCHES(sub({"-t", "x", "--sub-connect", "tcp://*:5560"}), usage_error,
                         Catch::Message("malformed endpoint 'tcp://*:5560': '*' as host is only for binding"));
    CHECK_THROWS_WITH(sub({"-t", "x", "--sub-connect", "tcp://[::1]:65536"}),
                      "malformed endpoint 'tcp://[::1]:65536': the port must be 1-65535 or '*'");
  }
  SECTION("--json with -v") {
    CHECK_THROWS_MATCHES(sub({"-t", "x", "--json", "-v"}), usage_error,
                         Catch::Message("--json already includes the topic; drop -v"));
  }
  SECTION("-F with --json") {
    CHECK_THROWS_MATCHES(sub({"-t", "x", "--json", "-F", "%t"}), usage_error,
                         Catch::Message("give either --json or -F (-F %j prints the same)"));
  }
  SECTION("a bad -F") {
    CHECK_THROWS_MATCHES(sub({"-t", "x", "-F", "%t %y"}), usage_error, Catch::Message("-F: unknown code '%y'"));
    CHECK_THROWS_MATCHES(sub({"-t", "x", "-F", "%t %"}), usage_error,
                         Catch::Message("-F: a lone '%' at the end (write %% for a %)"));
    CHECK_THROWS_MATCHES(sub({"-t", "x", "-F", "%t\\"}), usage_error,
                         Catch::Message("-F: a lone '\\' at the end (write \\\\ for a \\)"));
    CHECK_THROWS_MATCHES(sub({"-t", "x", "-F", ""}), usage_error,
                         Catch::Message("-F needs a FORMAT, not an empty one"));
    CHECK_THROWS_WITH(sub({"-t", "x", "-F"}), "option '-F' is missing an argument");
  }
  SECTION("-T \"\"") {
    CHECK_THROWS_MATCHES(sub({"-t", "x", "-T", "a", "-T", ""}), usage_error,
                         Catch::Message("-T \"\" would filter out every message"));
  }
  SECTION("bad -C") {
    for (const char* v : {"0", "abc", "-1", "1.5", "", "9223372036854775808"}) {
      INFO(v);
      CHECK_THROWS_MATCHES(
          sub({"-t", "x", "-C", v}), usage_error,
          Catch::Message("-C must be a whole number from 1 to 9223372036854775807, not '" + std::string(v) + "'"));
    }
  }
  SECTION("bad -W") {
    for (const char* v : {"0", "0.0", "-1", "abc", "2s", "inf", "nan", "", "31536001"}) {
      INFO(v);
      CHECK_THROWS_MATCHES(sub({"-t", "x", "-W", v}), usage_error,
                           Catch::Message("-W must be a number of seconds above 0, not '" + std::string(v) + "'"));
    }
  }
  SECTION("bad --connect-timeout") {
    CHECK_THROWS_WITH(sub({"-t", "x", "--connect-timeout", "-1"}),
                      "--connect-timeout must be a whole number from 0 to 3600000, not '-1'");
  }
  SECTION("unknown flags and stray arguments") {
    CHECK_THROWS_MATCHES(sub({"-t", "x", "--bogus"}), usage_error, Catch::Message("unknown option '--bogus'"));
    CHECK_THROWS_WITH(sub({"-t", "x", "news"}), "unexpected argument 'news'");
    CHECK_THROWS_WITH(sub({"-C"}), "option '-C' is missing an argument");
  }
}

TEST_CASE("a positive time never rounds to 0, which would mean no limit", "[cli]") {
  SECTION("-W") { CHECK(sub({"-t", "x", "-W", "0.0001"}).options.idle == 1ms); }
  SECTION("--stats-interval: 0 or at least 10 ms") {
    CHECK(relay({"--stats-interval", "0.01"}).options.stats_interval == 10ms);
    CHECK_THROWS_WITH(relay({"--stats-interval", "0.0001"}),
                      "--stats-interval must be 0 (off) or at least 0.01 seconds, not '0.0001'");
    CHECK_THROWS_WITH(relay({"--sys-interval", "0.009"}),
                      "--sys-interval must be 0 (off) or at least 0.01 seconds, not '0.009'");
  }
  SECTION("--stats-interval 0 stays 0 (only the final line)") {
    CHECK(relay({"--stats-interval", "0"}).options.stats_interval == 0ms);
  }
}

// ---------------------------------------------------------------------------------------------
// parse_size

TEST_CASE("parse_size reads bytes with k, M and G suffixes in powers of 1024", "[cli]") {
  CHECK(parse_size("0", "--x") == 0);
  CHECK(parse_size("1", "--x") == 1);
  CHECK(parse_size("65536", "--x") == 65536);
  CHECK(parse_size("64k", "--x") == 65536);
  CHECK(parse_size("64K", "--x") == 65536);
  CHECK(parse_size("1M", "--x") == 1048576);
  CHECK(parse_size("1m", "--x") == 1048576);
  CHECK(parse_size("2G", "--x") == 2147483648ull);
  CHECK(parse_size("2g", "--x") == 2147483648ull);
  CHECK(parse_size("0k", "--x") == 0);
  SECTION("the limit is 1 TiB") {
    CHECK(parse_size("1024G", "--x") == (std::size_t{1} << 40));
    CHECK(parse_size("1048576M", "--x") == (std::size_t{1} << 40));
    CHECK(parse_size("1099511627776", "--x") == (std::size_t{1} << 40));
  }
}

TEST_CASE("parse_size rejects what is not a size, naming the option", "[cli]") {
  for (const char* v : {"", "k", "M", "1T", "1.5M", "-1", "1kb", " 1", "1 ", "0x10", "1025G", "1048577M",
                        "1099511627777", "99999999999999999999"}) {
    INFO(v);
    CHECK_THROWS_MATCHES(
        parse_size(v, "--max-msg-size"), usage_error,
        Catch::Message("--max-msg-size must be a size in bytes such as 65536, 64k, 1M or 2G (at most 1024G), not '" +
                       std::string(v) + "'"));
  }
}
