// zrelay: parse, build, run, map errors to exit statuses.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "zrelay/cli.hpp"
#include "zrelay/endpoint.hpp"
#include "zrelay/metrics.hpp"
#include "zrelay/relay.hpp"
#include "zrelay/security.hpp"
#include "zrelay/signals.hpp"
#include "zrelay/version.hpp"

int main(int argc, char** argv) {
  using namespace zrelay;
  try {
    if (argc > 1 && std::string_view(argv[1]) == "keygen") {
      const auto files = write_key_files(cli::parse_keygen(argc, argv), generate_key_pair());
      std::cout << "zrelay: wrote " << files.key_path << " (key pair: keep it secret) and " << files.pub_path
                << " (public key: give it to the other side)" << std::endl;
      return cli::exit_ok;
    }
    signal_watch signals;  // first: every thread started later inherits the blocked signals
    const auto started = std::chrono::system_clock::now();
    const auto args = cli::parse_relay(argc, argv);
    if (!args.print.empty()) {
      std::cout << args.print;
      return cli::exit_ok;
    }
    const auto& opt = args.options;
    zmq::context_t ctx(1);
    relay r(ctx, opt.relay);
    r.set_logger([](std::string_view line) { std::cerr << "zrelay: " << line << std::endl; }, opt.verbose);
    if (opt.stats_interval.count() > 0)
      r.on_tick(opt.stats_interval,
                [](const relay_counters& c) { std::cerr << "zrelay: stats " << format_counters(c) << std::endl; });
    std::unique_ptr<metrics_server> metrics;
    if (opt.metrics_bind)
      metrics = std::make_unique<metrics_server>(
          *opt.metrics_bind, [&r] { return r.counters(); },
          metrics_info{version_string, std::chrono::duration<double>(started.time_since_epoch()).count()});
    const auto& ep = r.endpoints();
    std::cout << "zrelay: ready pub=" << ep.pub << " sub=" << ep.sub << " ack=" << ep.ack
              << (ep.replay.empty() ? "" : " replay=" + ep.replay) << (metrics ? " metrics=" + metrics->url() : "")
              << std::endl;
    r.run(signals.fd());
    metrics.reset();
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
