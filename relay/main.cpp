// zrelay: parse, build, run, map errors to exit statuses. SIGHUP reloads; systemd hears of it all.
#include <systemd/sd-daemon.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "zrelay/cli.hpp"
#include "zrelay/control.hpp"
#include "zrelay/endpoint.hpp"
#include "zrelay/metrics.hpp"
#include "zrelay/relay.hpp"
#include "zrelay/reload.hpp"
#include "zrelay/security.hpp"
#include "zrelay/signals.hpp"
#include "zrelay/version.hpp"

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
    signal_watch signals({SIGHUP});  // first: every thread started later inherits the blocked signals
    const auto started = std::chrono::system_clock::now();
    const auto args = cli::parse_relay(argc, argv);
    if (!args.print.empty()) {
      std::cout << args.print;
      return cli::exit_ok;
    }
    auto current = args.options;
    const std::vector<std::string> command_line(argv, argv + argc);
    zmq::context_t ctx(1);
    // The control socket binds after the relay's: its ipc path is checked before any of them binds.
    if (!current.control_bind.empty()) control::server::check_free(current.control_bind);
    relay r(ctx, current.relay);
    // One write a line: the relay's and the security handler's threads both log.
    const auto log = [](std::string_view line) {
      const std::string text = "zrelay: " + std::string(line) + "\n";
      std::cerr.write(text.data(), static_cast<std::streamsize>(text.size())).flush();
    };
    r.set_logger(log, current.verbose);
    const auto print_stats = [&r, log](const relay_counters& c) {
      log("stats " + format_counters(c) + r.links_text());
    };
    if (!current.relay.upstream.ack.empty() && current.relay.curve.enabled() &&
        current.relay.upstream.server_key.empty())
      log("note: the link to " + current.relay.upstream.ack +
          " is plain (not encrypted): give --upstream-server-key for CURVE on it");
    for (const auto& st : current.settings)
      if ((st.key == "upstream-pub" || st.key == "upstream-sub") && st.set)
        log("note: --" + st.key +
            " is not needed: the link's messages, acks and subscriptions all travel on "
            "the upstream's ack endpoint (" +
            current.relay.upstream.ack + ")");
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
    std::unique_ptr<control::server> ctl_server;
    if (!current.control_bind.empty()) {
      control::handlers h;
      h.stats = [&r] { return r.status_json(); };
      // What SIGHUP does; the answer is the reload's lines.
      h.reload = [&] {
        const auto report = reload();
        std::string text;
        for (const auto& line : report.lines) text += (text.empty() ? "" : "\n") + std::string("reload: ") + line;
        return control::answer{report.ok, text};
      };
      ctl_server = std::make_unique<control::server>(ctx, current.control_bind, std::move(h));
      ctl_server->set_logger(log);
      r.watch(ctl_server->socket(), [&s = *ctl_server] { s.serve(); });
    }
    std::unique_ptr<metrics_server> metrics;
    if (current.metrics_bind)
      metrics = std::make_unique<metrics_server>(
          *current.metrics_bind, [&r] { return r.counters(); },
          metrics_info{version_string, std::chrono::duration<double>(started.time_since_epoch()).count()});
    const auto& ep = r.endpoints();
    std::cout << "zrelay: ready pub=" << ep.pub << " sub=" << ep.sub << " ack=" << ep.ack
              << (ep.replay.empty() ? "" : " replay=" + ep.replay)
              << (ep.upstream.empty() ? "" : " upstream=" + ep.upstream)
              << (ctl_server ? " control=" + ctl_server->endpoint() : "")
              << (metrics ? " metrics=" + metrics->url() : "") << std::endl;
    // Every socket is bound: a Type=notify unit's start is done (nothing happens outside systemd).
    (void)sd_notify(0, ("READY=1\nSTATUS=serving pub=" + ep.pub + " sub=" + ep.sub + " ack=" + ep.ack).c_str());
    r.run();
    (void)sd_notify(0, "STOPPING=1");
    metrics.reset();
    log("final " + format_counters(r.counters()) + r.links_text());
    return cli::exit_ok;
  } catch (const cli::usage_error& e) {
    std::cerr << "zrelay: error: " << e.what() << " (see 'zrelay --help')" << std::endl;
    return cli::exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "zrelay: error: " << e.what() << std::endl;
    return cli::exit_error;
  }
}
