#pragma once
// Helpers shared by the in-process tests: a relay on its own thread, waits with deadlines.

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "zrelay/publisher.hpp"
#include "zrelay/relay.hpp"
#include "zrelay/wire.hpp"

namespace zrelay::test {

using namespace std::chrono_literals;

/// A generous bound for anything that should take milliseconds on an idle machine.
inline constexpr std::chrono::milliseconds deadline{10000};

/// An inproc name no other test uses.
inline std::string unique_inproc(const std::string& what) {
  static std::atomic<int> n{0};
  return "inproc://" + what + "-" + std::to_string(++n);
}

/// Relay config on fresh inproc endpoints.
inline relay_config inproc_config() {
  relay_config c;
  c.pub_bind = unique_inproc("pub");
  c.sub_bind = unique_inproc("sub");
  c.ack_bind = unique_inproc("ack");
  c.linger = 0ms;
  return c;
}

/// Relay config on ephemeral loopback ports.
inline relay_config tcp_config() {
  relay_config c;
  c.pub_bind = c.sub_bind = c.ack_bind = "tcp://127.0.0.1:*";
  c.linger = 0ms;
  return c;
}

/// An acknowledged publisher's config for `ack_endpoint`, connecting without waiting.
inline publisher_config acked_publisher(const std::string& ack_endpoint) {
  publisher_config c;
  c.ack_endpoint = ack_endpoint;
  c.connect_timeout = 0ms;
  return c;
}

/// Runs a relay on its own thread for the life of the object.
class running_relay {
public:
  /// `log` (if any) is set before the relay starts: it is called on the relay's thread.
  running_relay(zmq::context_t& ctx, relay_config cfg, relay::log_fn log = {}, bool verbose = false)
      : relay_(ctx, std::move(cfg)) {
    if (log) relay_.set_logger(std::move(log), verbose);
    thread_ = std::thread([this] { relay_.run(); });
  }
  ~running_relay() { stop(); }
  void stop() {
    relay_.request_stop();
    if (thread_.joinable()) thread_.join();
  }
  relay& get() { return relay_; }
  const bound_endpoints& ep() const { return relay_.endpoints(); }

private:
  relay relay_;
  std::thread thread_;
};

/// Receives one whole ZeroMQ message, waiting at most `limit`; empty when nothing came.
inline std::vector<std::string> recv_parts(zmq::socket_t& s, std::chrono::milliseconds limit = deadline) {
  std::vector<std::string> parts;
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, limit) == 0) return parts;
  zmq::message_t m;
  do {
    (void)s.recv(m);
    parts.emplace_back(static_cast<const char*>(m.data()), m.size());
  } while (m.more());
  return parts;
}

/// Sends each string as a frame of one message.
inline void send_parts(zmq::socket_t& s, const std::vector<std::string>& parts) {
  for (std::size_t i = 0; i < parts.size(); ++i) {
    zmq::message_t m(parts[i].data(), parts[i].size());
    (void)s.send(m, i + 1 < parts.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  }
}

/// Blocks until the relay has passed a subscription to `topic` up to its XSUB side, which is
/// also the moment its XPUB starts matching it: a probe XPUB connected to the relay's
/// publisher endpoint is sent every current subscription on connect.
inline bool wait_subscribed(zmq::context_t& ctx, const bound_endpoints& ep, const std::string& topic) {
  zmq::socket_t probe(ctx, zmq::socket_type::xpub);
  probe.set(zmq::sockopt::linger, 0);
  probe.connect(ep.pub);
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    const auto parts = recv_parts(probe, 100ms);
    if (parts.size() == 1 && parts[0] == std::string(1, '\1') + topic) return true;
  }
  return false;
}

/// Polls `pred` (a counter the relay thread moves) until it holds or the deadline passes.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = deadline) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::yield();
  }
  return true;
}

/// Encodes a batch the way zpub does: [topic][header][body]. The ack floor is `seq` unless given
/// (everything before the batch acknowledged).
inline std::vector<std::string> batch(const std::string& topic, std::uint64_t publisher, std::uint64_t seq,
                                      const std::vector<std::string>& payloads, std::uint64_t topic_seq = 0,
                                      std::optional<std::uint64_t> ack_floor = std::nullopt) {
  wire::batch_header h;
  h.count = static_cast<std::uint32_t>(payloads.size());
  h.publisher = publisher;
  h.seq = seq;
  h.topic_seq = topic_seq ? topic_seq : seq;
  h.ack_floor = ack_floor.value_or(seq);
  std::string header(wire::header_size, '\0');
  wire::encode_header(h, header.data());
  std::string body;
  for (const auto& p : payloads) wire::append_record(body, p);
  return {topic, header, body};
}

/// Decodes a reply frame (the test fails on a bad one through the returned status).
inline wire::reply reply_of(const std::string& frame) {
  wire::reply r;
  if (wire::decode_reply(frame.data(), frame.size(), r) != wire::status::ok) r.type = wire::kind::batch;
  return r;
}

}  // namespace zrelay::test
