// zsub: subscribe to topic prefixes on a zrelay and print what arrives.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <string_view>

#include "zrelay/cli.hpp"
#include "zrelay/defaults.hpp"
#include "zrelay/format.hpp"
#include "zrelay/signals.hpp"
#include "zrelay/subscriber.hpp"

namespace {

using namespace zrelay;

// Output goes through one buffer, written when it fills and whenever the socket runs dry, so a
// fast stream costs few writes and a slow one is still printed at once.
class output {
public:
  explicit output(sub_options& opt) : opt_(opt) { buf_.reserve(1 << 17); }
  void add(const message_view& m) {
    switch (opt_.format) {
      case sub_format::custom: {
        timespec now{};
        if (opt_.custom->uses_time()) ::clock_gettime(CLOCK_REALTIME, &now);
        opt_.custom->append(buf_, m, now);
        break;
      }
      case sub_format::payload: buf_.append(m.payload); break;
      case sub_format::topic_payload:
        buf_.append(m.topic);
        buf_ += ' ';
        buf_.append(m.payload);
        break;
      case sub_format::json: append_json_message(buf_, m); break;
    }
    buf_ += opt_.terminator;
    if (buf_.size() >= (1 << 16)) flush();
  }
  void flush() {
    std::size_t done = 0;
    while (done < buf_.size()) {
      const auto n = ::write(1, buf_.data() + done, buf_.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EBADF) throw std::runtime_error("cannot write output: standard output is not open for writing");
        throw std::runtime_error(std::string("cannot write output: ") + std::strerror(errno));
      }
      done += static_cast<std::size_t>(n);
    }
    buf_.clear();
  }

private:
  sub_options& opt_;
  std::string buf_;
};

// Why standard output cannot take the messages, or "" when it can. Asked before anything opens a
// descriptor: with descriptor 1 closed, the next one opened (ZeroMQ's own) would take its place.
std::string output_problem() {
  const int flags = ::fcntl(1, F_GETFL);
  if (flags < 0) return "standard output is closed";
  if ((flags & O_ACCMODE) == O_RDONLY) return "standard output is not open for writing";
  return "";
}

// The stats line: `missing>=N` while a disconnection is not accounted for (see README, zsub).
void print_stats(const subscriber_stats& s) {
  std::cerr << "zsub: stats received=" << s.received << " gaps=" << s.gaps << " missing"
            << (s.missing_exact() ? "=" : ">=") << s.missing << " duplicates=" << s.duplicates
            << " malformed=" << s.malformed << " late=" << s.late << " disconnects=" << s.disconnects;
  if (!s.missing_exact()) std::cerr << " unaccounted=" << s.unaccounted;
  std::cerr << std::endl;
}

int run(sub_options opt, const signal_watch& signals) {
  if (opt.prompt_topic) {
    std::cerr << "Topic to subscribe to (empty for everything): " << std::flush;
    std::string topic;
    if (!std::getline(std::cin, topic)) return cli::exit_ok;
    opt.subscriber.topics.push_back(topic);
  }
  // A relay drops a subscriber whose subscription is over its topic limit, with no word to it
  // (ZeroMQ has no reply to a subscription), and zsub would reconnect again and again: say why
  // up front.
  const auto relay_limit = default_max_topic;
  for (const auto& t : opt.subscriber.topics)
    if (t.size() > relay_limit)
      std::cerr << "zsub: warning: a topic of " << t.size() << " bytes is over zrelay's default --max-topic ("
                << relay_limit
                << "): unless the relay was started with a larger one, it drops this connection (and zsub "
                   "stops with status 3)"
                << std::endl;
  zmq::context_t ctx(1);
  subscriber sub(ctx, opt.subscriber);
  sub.on_gap([](const gap_info& g) {
    std::cerr << "zsub: warning: " << g.missing() << " message(s) missing on topic '" << g.topic << "' from publisher "
              << to_hex(g.publisher) << " (sequence " << g.expected << " to " << g.received - 1
              << (g.across_disconnect ? "), across a disconnection" : ")") << std::endl;
  });
  sub.on_warning([](std::string_view w) { std::cerr << "zsub: warning: " << w << std::endl; });
  sub.on_link([ep = sub.endpoint()](subscriber::link_event e) {
    switch (e) {
      case subscriber::link_event::lost:
        std::cerr << "zsub: warning: lost the relay at " << ep << "; reconnecting" << std::endl;
        break;
      case subscriber::link_event::restored: std::cerr << "zsub: reconnected to " << ep << std::endl; break;
      case subscriber::link_event::cut:
        std::cerr << "zsub: warning: disconnected from " << ep
                  << ": messages published until zsub has subscribed again may be lost (the next message of each "
                     "stream shows how many)"
                  << std::endl;
        break;
    }
  });
  if (opt.verbose)
    sub.on_live([](std::uint64_t jseq) {
      std::cerr << "zsub: replay: caught up; live from journal seq " << jseq << " on" << std::endl;
    });
  if (!sub.connect(signals.fd())) return cli::exit_ok;

  output out(opt);
  std::uint64_t seen = 0;
  // -T: a message filtered out is not printed and counts for neither -C nor -W; the subscriber has
  // already tracked its sequence, so its stream's gaps are still found.
  std::size_t burst_printed = 0, burst_filtered = 0;
  const auto filtered_out = [&opt](std::string_view topic) {
    for (const auto& f : opt.filter_out)
      if (topic.compare(0, f.size(), f) == 0) return true;
    return false;
  };
  const subscriber::message_fn on_message = [&](const message_view& m) {
    if (!opt.filter_out.empty() && filtered_out(m.topic)) {
      ++burst_filtered;
      return true;
    }
    ++burst_printed;
    out.add(m);
    return opt.count == 0 || ++seen < opt.count;
  };
  using clock = std::chrono::steady_clock;
  auto idle_since = clock::now();
  int status = cli::exit_ok;
  try {
    for (;;) {
      auto wait = std::chrono::milliseconds(-1);
      if (opt.idle.count() > 0) {
        wait = std::chrono::ceil<std::chrono::milliseconds>(idle_since + opt.idle - clock::now());
        if (wait.count() <= 0) wait = std::chrono::milliseconds(0);
      }
      burst_printed = burst_filtered = 0;
      auto r = sub.receive(wait, on_message, signals.fd());
      out.flush();
      if (r == subscriber::result::stopped || r == subscriber::result::woken) break;
      if (r == subscriber::result::delivered && opt.idle.count() > 0) {
        // A burst of nothing but what -T filtered out does not restart the wait for a message.
        if (burst_filtered == 0 || burst_printed > 0) {
          idle_since = clock::now();
        } else if (clock::now() - idle_since >= opt.idle) {
          r = subscriber::result::timeout;
        }
      }
      if (r == subscriber::result::timeout) {
        std::cerr << "zsub: no message for " << static_cast<double>(opt.idle.count()) / 1000 << " s" << std::endl;
        status = cli::exit_idle;
        break;
      }
    }
  } catch (const subscription_refused& e) {
    std::cerr << "zsub: error: " << e.what() << std::endl;
    status = cli::exit_refused;
  } catch (const replay_refused& e) {
    std::cerr << "zsub: error: " << e.what() << std::endl;
    status = cli::exit_error;
  }
  if (opt.stats) print_stats(sub.stats());
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    // First: nothing may open a descriptor before descriptor 1 is checked.
    if (const auto problem = output_problem(); !problem.empty()) {
      std::cerr << "zsub: error: cannot write output: " << problem << std::endl;
      return zrelay::cli::exit_error;
    }
    // SIGHUP (a closed terminal) ends zsub as SIGTERM does.
    zrelay::signal_watch signals({SIGHUP});
    const auto args = zrelay::cli::parse_sub(argc, argv, ::isatty(0) == 1);
    if (!args.print.empty()) {
      std::cout << args.print;
      return zrelay::cli::exit_ok;
    }
    return run(args.options, signals);
  } catch (const zrelay::cli::usage_error& e) {
    std::cerr << "zsub: error: " << e.what() << " (see 'zsub --help')" << std::endl;
    return zrelay::cli::exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "zsub: error: " << e.what() << std::endl;
    return zrelay::cli::exit_error;
  }
}
