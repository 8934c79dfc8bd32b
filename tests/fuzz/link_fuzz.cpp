// libFuzzer target for what a linked relay may send (lib/src/relay/link_wire.cpp, federation.cpp):
// frames from strangers on any of four routes (route 0 is the upstream), replies, subscriptions of
// this relay's own subscribers, messages to forward and time passing, in any order. Whatever comes,
// the federation keeps its books: nothing crashes, the counters stay within what was given, and a
// frame the decoder takes encodes back the same. tests/fuzz/run.sh builds and runs it.
//
// An input is a list of operations, each a byte (its low 3 bits the operation) and its operands:
//   0 control frame: route byte, u8 length, bytes     1 reply (25 bytes): route byte, bytes
//   2 local (un)subscribe: u8 length, bytes            3 forward: u8 length, topic bytes
//   4 time passes: byte x 50 ms                        5 DATA header frame: route, 40 bytes

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "relay/federation.hpp"
#include "relay/link_wire.hpp"
#include "zrelay/wire.hpp"

using namespace zrelay;

namespace {

#define LINK_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "link_fuzz: check failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

struct input {
  const std::uint8_t* p;
  std::size_t left;
  bool more() const { return left != 0; }
  std::uint8_t byte() {
    if (left == 0) return 0;
    --left;
    return *p++;
  }
  std::string bytes(std::size_t n) {
    if (n > left) n = left;
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    left -= n;
    return s;
  }
};

const std::string routes[4] = {"", "r1", "r2", std::string("\0\x80\0\0\x01", 5)};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  relay_stats stats;
  relay_log log;
  std::size_t lines = 0;
  log.set([&](std::string_view) { ++lines; }, true);
  std::size_t sent = 0;
  federation::settings s;
  s.id = 42;
  s.name = "fuzz";
  s.upstream = "tcp://up";
  s.max_prefix = 64;
  s.window_msgs = 100;
  federation::io io;
  io.send = [&](std::string_view, std::string_view f1, std::string_view) {
    LINK_CHECK(f1.size() >= 4);
    ++sent;
  };
  std::size_t xsub_subscribed = 0;
  io.xsub = [&](bool sub, std::string_view) {
    if (sub) ++xsub_subscribed;
    else {
      LINK_CHECK(xsub_subscribed > 0);  // never unsubscribes what it did not subscribe
      --xsub_subscribed;
    }
  };
  federation fed(s, io, stats, log);
  auto now = federation::clock::now();
  std::uint64_t forwarded = 0;
  input in{data, size};
  while (in.more()) {
    const auto op = in.byte() & 7;
    switch (op) {
      case 0: {
        const auto& route = routes[in.byte() & 3];
        const auto frame = in.bytes(in.byte());
        link_wire::message m;
        std::string why;
        if (link_wire::decode(frame.data(), frame.size(), 64, m, why)) {
          // What decodes, encodes back: the format has one way to say each thing.
          std::string again;
          using k = link_wire::kind;
          switch (m.what) {
            case k::hello: again = link_wire::encode_hello(m.id, m.name); break;
            case k::welcome:
            case k::chain: again = link_wire::encode_chain(m.what, m.id, m.rooted, m.chain); break;
            case k::refuse: again = link_wire::encode_refuse(m.id, m.text); break;
            case k::sub:
            case k::unsub: again = link_wire::encode_prefixes(m.what, m.id, m.prefixes, 0, m.prefixes.size()); break;
            case k::ready: again = link_wire::encode_ready(m.id, m.resume); break;
            default: again = link_wire::encode_signal(m.what, m.id); break;
          }
          // A prefix over the limit is left out of what decoded: only the rest comes back.
          LINK_CHECK(again == frame || m.too_long != 0);
        } else {
          LINK_CHECK(!why.empty());
        }
        if (link_wire::kind_of(frame.data(), frame.size())) fed.control(route, frame.data(), frame.size(), now);
        break;
      }
      case 1: {
        const auto& route = routes[in.byte() & 3];
        const auto frame = in.bytes(25);
        wire::reply r;
        if (wire::decode_reply(frame.data(), frame.size(), r) == wire::status::ok) fed.reply(route, r, now);
        break;
      }
      case 2: {
        const auto prefix = in.bytes(in.byte() & 15);
        fed.local((in.byte() & 1) != 0, prefix);
        break;
      }
      case 3: {
        const auto topic = in.bytes(in.byte() & 15);
        const std::string payload = "p";
        const std::string_view frames[2] = {topic, payload};
        fed.forward(frames, 2, false, 1, federation::none, 1);
        ++forwarded;
        break;
      }
      case 4:
        now += std::chrono::milliseconds(50) * in.byte();
        fed.turn(now);
        break;
      case 5: {
        const auto& route = routes[in.byte() & 3];
        const auto frame = in.bytes(link_wire::data_size);
        link_wire::data_header h;
        std::string why;
        if (link_wire::decode_data(frame.data(), frame.size(), h, why)) {
          LINK_CHECK(link_wire::encode_data(h) == frame);
          const auto li = fed.data_link(route, h.id, now);
          if (li != federation::none) fed.received(li, h.count);
        }
        break;
      }
      default: fed.turn(now); break;
    }
  }
  fed.turn(now + std::chrono::seconds(60));
  (void)fed.describe();
  (void)fed.json();
  // Every message forwarded went to each link at most once, or was dropped and counted.
  LINK_CHECK(stats.link_msgs_out.load() <= forwarded * 260);
  LINK_CHECK(stats.links_active.load() <= 257);
  (void)lines;
  (void)sent;
  return 0;
}
