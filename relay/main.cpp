// zrelay: parse, build, run, map errors to exit statuses. SIGHUP reloads; systemd hears of it all.
#include <systemd/sd-daemon.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "zrelay/cli.hpp"
#include "zrelay/endpoint.hpp"
#include "zrelay/relay.hpp"
#include "zrelay/reload.hpp"
#include "zrelay/security.hpp"
#include "zrelay/signals.hpp"

int main(int argc, char** argv) {
  using namespace zrelay;
  try {
    if (argc > 1 && std::string_view(argv[1]) == "keygen") {
      const auto files = write_key_files(cli::parse_keygen(argc, argv), generate_key_pair());
      std::cout << "zrelay: wrote " << files.key_path << " (key pair: keep it secret) and " << files.pub_path
                << " (public key: give it to the other side)" << std::endl;
      return cli::exit_ok;
    }
    signal_watch signals({SIGHUP});  // first: every thread started later inherits the blocked signals
    const auto args = cli::parse_relay(argc, argv);
    if (!args.print.empty()) {
      std::cout << args.print;
      return cli::exit_ok;
    }
    auto current = args.options;
    const std::vector<std::string> command_line(argv, argv + argc);
    zmq::context_t ctx(1);
    relay r(ctx, current.relay);
    const auto log = [](std::string_view line) { std::cerr << "zrelay: " << line << std::endl; };
    r.set_logger(log, current.verbose);
    const auto print_stats = [](const relay_counters& c) {
      std::cerr << "zrelay: stats " << format_counters(c) << std::endl;
    };
    r.on_tick(current.stats_interval, print_stats);
    const auto reload = [&]() -> reload_report {
      (void)sd_notify(0, "RELOADING=1");
      auto report = reload_relay(r, current, command_line,
                                 [&](std::chrono::milliseconds every) { r.on_tick(every, print_stats); });
      for (const auto& line : report.lines) log("reload: " + line);
      (void)sd_notify(0,
                      report.ok ? "READY=1\nSTATUS=reloaded" : "READY=1\nSTATUS=reload failed: old configuration kept");
      return report;
    };
    // SIGHUP reloads; SIGINT and SIGTERM stop (in the relay's thread, between messages).
    r.watch(signals.fd(), [&] {
      for (int s = signals.take(); s != 0; s = signals.take()) {
        if (s == SIGHUP) (void)reload();
        else r.request_stop();
      }
    });
    const auto& ep = r.endpoints();
    std::cout << "zrelay: ready pub=" << ep.pub << " sub=" << ep.sub << " ack=" << ep.ack
              << (ep.replay.empty() ? "" : " replay=" + ep.replay) << std::endl;
    // Every socket is bound: a Type=notify unit's start is done (nothing happens outside systemd).
    (void)sd_notify(0, ("READY=1\nSTATUS=serving pub=" + ep.pub + " sub=" + ep.sub + " ack=" + ep.ack).c_str());
    r.run();
    (void)sd_notify(0, "STOPPING=1");
    std::cerr << "zrelay: final " << format_counters(r.counters()) << std::endl;
    return cli::exit_ok;
  } catch (const cli::usage_error& e) {
    std::cerr << "zrelay: error: " << e.what() << " (see 'zrelay --help')" << std::endl;
    return cli::exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "zrelay: error: " << e.what() << std::endl;
    return cli::exit_error;
  }
}
