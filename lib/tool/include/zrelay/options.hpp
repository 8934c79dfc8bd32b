#pragma once
// What each tool was asked to do, once its command line is parsed (see cli.hpp).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "zrelay/defaults.hpp"
#include "zrelay/format.hpp"
#include "zrelay/metrics.hpp"
#include "zrelay/publisher.hpp"
#include "zrelay/relay.hpp"
#include "zrelay/subscriber.hpp"

namespace zrelay {

/// One of zrelay's settings as --print-config shows it: its key (the long option), its text as the
/// command line would give it, and whether it is set (one that is not is shown commented out).
struct relay_setting {
  std::string key;
  std::string text;
  bool set = true;
};

/// zrelay's options.
struct relay_options {
  relay_config relay;
  std::chrono::milliseconds stats_interval{0};  ///< 0: only the final line
  bool verbose = false;
  std::string config_path;                    ///< --config (empty: none)
  std::vector<relay_setting> settings;        ///< every key, in --help's order, with its effective text
  std::optional<http_endpoint> metrics_bind;  ///< --metrics-bind: serve /metrics and /healthz there
  std::string control_bind = default_endpoint(default_control_port);  ///< empty: no control socket (off)
};

/// `zrelay ctl COMMAND`'s options.
struct ctl_options {
  std::string command;  ///< "stats" or "reload"
  std::string endpoint = default_endpoint(default_control_port);
  std::chrono::milliseconds timeout{2000};
};

/// Where zpub's messages come from.
enum class pub_source { stdin_stream, message, file, prompt };

/// zpub's options.
struct pub_options {
  publisher_config publisher;
  std::optional<std::string> topic;
  pub_source source = pub_source::stdin_stream;
  std::string message;  ///< -m
  std::string file;     ///< -f
  bool whole = false;   ///< the whole input is one message (-s, and -m/-f without -l)
  std::string delimiter = "\n";
  bool skip_empty = false;
  std::optional<std::string> topic_sep;
  std::size_t max_msg_size = default_max_msg_size;  ///< refuse larger messages before sending (0: no limit)
  bool stats = false;
};

/// How zsub writes a message.
enum class sub_format { payload, topic_payload, json, custom };

/// zsub's options.
struct sub_options {
  subscriber_config subscriber;
  bool prompt_topic = false;  ///< no -t and a terminal: ask
  sub_format format = sub_format::payload;
  std::optional<message_format> custom;  ///< -F (format is custom)
  std::vector<std::string> filter_out;   ///< -T: topic prefixes not printed
  char terminator = '\n';                ///< -0 makes it NUL
  std::uint64_t count = 0;               ///< -C: stop after this many (0 = never)
  std::chrono::milliseconds idle{0};     ///< -W: give up after this long without a message (0 = never)
  bool stats = false;
  bool verbose = false;  ///< -v: besides the topic, say on stderr when a replay has caught up
};

}  // namespace zrelay
