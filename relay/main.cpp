// zrelay: parse, build, run, map errors to exit statuses.
#include <cstdio>
#include <iostream>
#include <memory>

#include "zrelay/cli.hpp"
#include "zrelay/control.hpp"
#include "zrelay/endpoint.hpp"
#include "zrelay/relay.hpp"
#include "zrelay/security.hpp"
#include "zrelay/signals.hpp"

namespace {

// zrelay ctl stats|reload: one request to a running relay's control socket.
int ctl(int argc, char** argv) {
  using namespace zrelay;
  cli::parsed<ctl_options> args;
  try {
    args = cli::parse_ctl(argc, argv);
  } catch (const cli::usage_error& e) {
    std::cerr << "zrelay: error: " << e.what() << " (see 'zrelay ctl --help')" << std::endl;
    return cli::exit_usage;
  }
  if (!args.print.empty()) {
    std::cout << args.print;
    return cli::exit_ok;
  }
  const auto& o = args.options;
  zmq::context_t ctx(1);
  const auto a = control::call(ctx, o.endpoint, *control::parse_command(o.command), o.timeout);
  if (!a) {
    std::cerr << "zrelay: error: no answer from the control socket at '" << o.endpoint << "' within "
              << o.timeout.count() << " ms (is zrelay running there, with --control-bind " << o.endpoint << "?)"
              << std::endl;
    return cli::exit_error;
  }
  if (!a->ok) {
    std::cerr << "zrelay: error: " << a->body << std::endl;
    return cli::exit_error;
  }
  std::cout << a->body << std::endl;
  return cli::exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace zrelay;
  try {
    if (argc > 1 && std::string_view(argv[1]) == "keygen") {
      const auto files = write_key_files(cli::parse_keygen(argc, argv), generate_key_pair());
      std::cout << "zrelay: wrote " << files.key_path << " (key pair: keep it secret) and " << files.pub_path
                << " (public key: give it to the other side)" << std::endl;
      return cli::exit_ok;
    }
    if (argc > 1 && std::string_view(argv[1]) == "ctl") return ctl(argc, argv);
    signal_watch signals;  // first: every thread started later inherits the blocked signals
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
    std::unique_ptr<control::server> ctl_server;
    if (!opt.control_bind.empty()) {
      control::handlers h;
      h.stats = [&r] { return r.status_json(); };
      // The lead's reload replaces this.
      h.reload = [] { return control::answer{true, "reload: nothing to reload (no --config)"}; };
      ctl_server = std::make_unique<control::server>(ctx, opt.control_bind, std::move(h));
      ctl_server->set_logger([](std::string_view line) { std::cerr << "zrelay: " << line << std::endl; });
      r.watch(ctl_server->socket(), [&s = *ctl_server] { s.serve(); });
    }
    const auto& ep = r.endpoints();
    std::cout << "zrelay: ready pub=" << ep.pub << " sub=" << ep.sub << " ack=" << ep.ack
              << (ep.replay.empty() ? "" : " replay=" + ep.replay)
              << (ctl_server ? " control=" + ctl_server->endpoint() : "") << std::endl;
    r.run(signals.fd());
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
