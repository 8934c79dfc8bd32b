// zpub: read messages (stdin lines, -m, -f, or a prompt) and publish them through a zrelay.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <vector>

#include "zrelay/cli.hpp"
#include "zrelay/connection.hpp"
#include "zrelay/defaults.hpp"
#include "zrelay/input.hpp"
#include "zrelay/publisher.hpp"
#include "zrelay/signals.hpp"

namespace {

using namespace zrelay;
using clock_type = std::chrono::steady_clock;

class input_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// Records of one kind that were not sent: how many, and the first one's number.
struct skipped_records {
  std::uint64_t count = 0;
  std::uint64_t first = 0;

  void add(std::uint64_t record) {
    if (count++ == 0) first = record;
  }
};

// Routes records to topics and remembers those it could not route.
struct router {
  const pub_options& opt;
  publisher& pub;
  std::uint64_t records = 0;
  skipped_records no_separator;  // --topic-sep and no -t: a record without the separator
  skipped_records empty_topic;   // ... or with nothing before it

  std::uint64_t oversized = 0;
  std::uint64_t first_oversized = 0;
  std::size_t first_oversized_size = 0;

  router(const pub_options& o, publisher& p) : opt(o), pub(p) {}

  // A message the relay would refuse is refused here, before it costs a round trip.
  bool too_large(std::size_t size) {
    if (opt.max_msg_size == 0 || size <= opt.max_msg_size) return false;
    if (oversized++ == 0) {
      first_oversized = records;
      first_oversized_size = size;
    }
    return true;
  }

  // A record of `size` bytes that was skipped without being kept (it is over the limit).
  void skipped(std::uint64_t size) {
    ++records;
    too_large(static_cast<std::size_t>(size));
  }

  void operator()(std::string_view rec) {
    ++records;
    if (opt.skip_empty && rec.empty()) return;
    if (opt.topic_sep) {
      const auto split = split_topic(rec, *opt.topic_sep);
      if (split && !split->first.empty()) {
        if (!too_large(split->second.size())) pub.publish(split->first, split->second);
        return;
      }
      // A record that names no topic goes to -t whole; without -t it is an error, and the two
      // ways of naming none are told apart (":x" has the separator, its topic is empty).
      if (!opt.topic) {
        (split ? empty_topic : no_separator).add(records);
        return;
      }
    }
    if (!too_large(rec.size())) pub.publish(*opt.topic, rec);
  }
};

// Reads fd (named `name` in errors) to its end, feeding the splitter, flushing the publisher
// whenever input pauses and servicing acks while it waits. Returns false when interrupted.
bool pump(int fd, const std::string& name, int sig_fd, publisher& pub,
          const std::function<void(std::string_view)>& chunk) {
  std::vector<char> buf(256 * 1024);
  bool unflushed = false;
  for (;;) {
    zmq::pollitem_t items[] = {pub.poll_item(), {nullptr, fd, ZMQ_POLLIN, 0}, {nullptr, sig_fd, ZMQ_POLLIN, 0}};
    // After a read, only look whether more input is there already: batches fill across reads
    // while it keeps coming (many topics' batches take many reads to fill).
    zmq::poll(items, 3, unflushed ? std::chrono::milliseconds(0) : pub.next_timeout());
    if (items[2].revents & ZMQ_POLLIN) return false;
    if (items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) {
      const auto n = ::read(fd, buf.data(), buf.size());
      if (n == 0) return true;
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        throw input_error("cannot read " + name + ": " + std::strerror(errno));
      }
      chunk(std::string_view(buf.data(), static_cast<std::size_t>(n)));
      unflushed = true;
    } else if (unflushed) {
      pub.flush();  // the input paused: nothing waits in a batch while it is quiet
      unflushed = false;
    }
    pub.service();
  }
}

// One line from a terminal, or nullopt on end of input or a signal.
std::optional<std::string> ask(const char* prompt, int sig_fd, publisher* pub) {
  std::cout << prompt << std::flush;
  std::string line;
  char c = 0;
  for (;;) {
    zmq::pollitem_t items[] = {{nullptr, 0, ZMQ_POLLIN, 0},
                               {nullptr, sig_fd, ZMQ_POLLIN, 0},
                               pub ? pub->poll_item() : zmq::pollitem_t{nullptr, -1, 0, 0}};
    zmq::poll(items, pub ? 3 : 2, std::chrono::milliseconds(1000));
    if (items[1].revents & ZMQ_POLLIN) return std::nullopt;
    if (pub) pub->service();
    if (!(items[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) continue;
    const auto n = ::read(0, &c, 1);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      std::cout << '\n';
      return line.empty() ? std::nullopt : std::optional<std::string>(line);
    }
    if (c == '\n') return line;
    line += c;
  }
}

// The SimpleMQTT way: ask for a topic, then for messages, showing each acknowledgment. Ends on
// end of input; the exit status comes from the publisher's counters, as for piped input.
void prompt_loop(const pub_options& opt, publisher& pub, int sig_fd) {
  std::string topic = opt.topic.value_or("");
  while (topic.empty()) {
    auto t = ask("Topic: ", sig_fd, nullptr);
    if (!t) return;
    topic = *t;
    if (topic.empty()) std::cout << "The topic must not be empty.\n";
  }
  const auto wait = opt.publisher.ack_timeout * (opt.publisher.retries + 2);
  std::cout << std::fixed << std::setprecision(2);  // every time shown alike
  while (auto msg = ask("Message (Ctrl-D to end): ", sig_fd, &pub)) {
    const auto before = pub.stats();
    const auto t0 = clock_type::now();
    pub.publish(topic, *msg);
    if (opt.publisher.mode != delivery::acked) {
      pub.flush();
      std::cout << "sent (fire and forget)\n";
      continue;
    }
    const bool done = pub.drain(wait);
    const auto ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
    if (pub.stats().nacked > before.nacked) std::cout << "refused by the relay: " << pub.stats().first_refusal << '\n';
    else if (done) std::cout << "acknowledged in " << ms << " ms\n";
    else std::cout << "not acknowledged yet after " << ms << " ms\n";
  }
}

int finish(const pub_options& opt, publisher& pub, const router& route, bool interrupted_early,
           const std::string& failure, clock_type::time_point started) {
  const auto& s = pub.stats();
  if (opt.stats) {
    const double secs = std::chrono::duration<double>(clock_type::now() - started).count();
    std::cerr << "zpub: stats published=" << s.published << " sent=" << s.sent << " acked=" << s.acked
              << " nacked=" << s.nacked << " retried=" << s.retried << " seconds=" << secs
              << " rate=" << static_cast<std::uint64_t>(secs > 0 ? static_cast<double>(s.published) / secs : 0)
              << " msgs/s" << std::endl;
  }
  if (s.unavailable > 0)
    std::cerr << "zpub: warning: the relay could not store " << s.unavailable << " message(s) when they were sent ("
              << s.last_unavailable << "); they were sent again" << std::endl;
  int status = cli::exit_ok;
  if (route.no_separator.count > 0) {
    std::cerr << "zpub: error: " << route.no_separator.count << " record(s) had no topic separator '" << *opt.topic_sep
              << "' and there is no -t to fall back on (first: record " << route.no_separator.first << ")" << std::endl;
    status = cli::exit_error;
  }
  if (route.empty_topic.count > 0) {
    std::cerr << "zpub: error: " << route.empty_topic.count << " record(s) had an empty topic (nothing before '"
              << *opt.topic_sep << "') and there is no -t to fall back on (first: record " << route.empty_topic.first
              << ")" << std::endl;
    status = cli::exit_error;
  }
  if (route.oversized > 0) {
    std::cerr << "zpub: error: " << route.oversized << " message(s) larger than --max-msg-size (" << opt.max_msg_size
              << " bytes) not sent (first: record " << route.first_oversized << ", " << route.first_oversized_size
              << " bytes)" << std::endl;
    status = cli::exit_refused;
  }
  if (s.nacked > 0) {
    std::cerr << "zpub: error: relay refused " << s.nacked << " message(s): " << s.first_refusal << std::endl;
    status = cli::exit_refused;
  }
  const auto unacked = opt.publisher.mode == delivery::acked ? s.published - s.acked - s.nacked : 0;
  if (!failure.empty()) {
    std::cerr << "zpub: error: " << failure << "; " << unacked << " message(s) not acknowledged" << std::endl;
    return cli::exit_unacked;
  }
  if (unacked > 0) {
    std::cerr << "zpub: error: " << (interrupted_early ? "interrupted; " : "") << unacked
              << " message(s) not acknowledged" << std::endl;
    return cli::exit_unacked;
  }
  return status;
}

int run(const pub_options& opt, const signal_watch& signals) {
  zmq::context_t ctx(1);
  auto cfg = opt.publisher;
  cfg.stop_fd = signals.fd();
  publisher pub(ctx, cfg);
  pub.on_link([&pub](link_monitor::change c) {
    if (c == link_monitor::change::lost)
      std::cerr << "zpub: warning: lost the relay at " << pub.endpoint()
                << "; reconnecting (what it did not acknowledge is sent again)" << std::endl;
    else std::cerr << "zpub: reconnected to " << pub.endpoint() << std::endl;
  });
  int fd = 0;
  std::string input_name = "standard input";
  if (opt.source == pub_source::file) {
    input_name = "'" + opt.file + "'";
    fd = ::open(opt.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw input_error("cannot open " + input_name + ": " + std::strerror(errno));
  }
  // A directory opens but cannot be read: say so now, before connecting to the relay.
  struct stat st {};
  if ((opt.source == pub_source::file || opt.source == pub_source::stdin_stream) && ::fstat(fd, &st) == 0 &&
      S_ISDIR(st.st_mode)) {
    if (fd > 0) ::close(fd);
    throw input_error("cannot read " + input_name + ": " + std::strerror(EISDIR));
  }
  try {
    pub.connect();
  } catch (const interrupted&) {
    return cli::exit_ok;
  }
  const auto started = clock_type::now();
  router route{opt, pub};
  bool stopped = false;
  std::string failure;
  try {
    if (opt.source == pub_source::prompt) {
      prompt_loop(opt, pub, signals.fd());
    } else if (opt.source == pub_source::message) {
      route(opt.message);
    } else if (opt.whole) {
      // Read all of it, but keep no more than the limit in memory: a 1 GiB input is refused,
      // not buffered.
      std::string all;
      std::size_t total = 0;
      const std::size_t keep = opt.max_msg_size == 0 ? SIZE_MAX : opt.max_msg_size + 1;
      stopped = !pump(fd, input_name, signals.fd(), pub, [&](std::string_view c) {
        total += c.size();
        if (all.size() < keep) all.append(c.substr(0, std::min(c.size(), keep - all.size())));
      });
      if (!stopped) {
        if (total > all.size()) {
          route.skipped(total);
        } else {
          route(all);
        }
      }
    } else {
      // A record too long to send is not held in memory either, however long it gets. With
      // topics in the records, room for the longest topic the relay takes and the separator.
      const std::size_t max_record =
          opt.max_msg_size == 0 ? 0 : opt.max_msg_size + (opt.topic_sep ? max_topic_limit + opt.topic_sep->size() : 0);
      record_splitter split(opt.delimiter, max_record);
      const record_splitter::record_fn each = [&route](std::string_view rec) { route(rec); };
      const record_splitter::oversized_fn skipped = [&route](std::uint64_t size) { route.skipped(size); };
      stopped = !pump(fd, input_name, signals.fd(), pub, [&](std::string_view c) { split.feed(c, each, skipped); });
      if (!stopped) split.finish(each, skipped);
    }
    // Everything read is sent; wait for the acknowledgments (the publisher gives up by itself
    // after its retries, so this bound is only a backstop).
    pub.drain(opt.publisher.ack_timeout * (opt.publisher.retries + 2));
  } catch (const delivery_error& e) {
    failure = e.what();
  } catch (const interrupted&) {
    stopped = true;
  }
  if (fd > 0) ::close(fd);
  return finish(opt, pub, route, stopped, failure, started);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    // SIGHUP too: closing the terminal zpub runs in ends it as SIGTERM does, not with status 129.
    zrelay::signal_watch signals({SIGHUP});
    const auto args = zrelay::cli::parse_pub(argc, argv, ::isatty(0) == 1);
    if (!args.print.empty()) {
      std::cout << args.print;
      return zrelay::cli::exit_ok;
    }
    return run(args.options, signals);
  } catch (const zrelay::cli::usage_error& e) {
    std::cerr << "zpub: error: " << e.what() << " (see 'zpub --help')" << std::endl;
    return zrelay::cli::exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "zpub: error: " << e.what() << std::endl;
    return zrelay::cli::exit_error;
  }
}
