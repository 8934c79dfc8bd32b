#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "zrelay/defaults.hpp"
#include "zrelay/publisher.hpp"
#include "zrelay/relay.hpp"
#include "zrelay/subscriber.hpp"

using namespace zrelay;

TEST_CASE("default endpoints: the relay binds on loopback what the clients connect to", "[defaults]") {
  CHECK(default_endpoint(default_pub_port) == "tcp://127.0.0.1:5559");
  CHECK(default_endpoint(default_sub_port) == "tcp://127.0.0.1:5560");
  CHECK(default_endpoint(default_ack_port) == "tcp://127.0.0.1:5561");
  const relay_config relay;
  const publisher_config pub;
  const subscriber_config sub;
  CHECK(pub.pub_endpoint == relay.pub_bind);
  CHECK(pub.ack_endpoint == relay.ack_bind);
  CHECK(sub.endpoint == relay.sub_bind);
  CHECK(relay.pub_bind == "tcp://127.0.0.1:5559");
  CHECK(relay.sub_bind == "tcp://127.0.0.1:5560");
  CHECK(relay.ack_bind == "tcp://127.0.0.1:5561");
}

TEST_CASE("default limits: 1 MiB messages, 1024-byte topics within the topic limit's range", "[defaults]") {
  const relay_config relay;
  CHECK(relay.max_msg_size == 1u << 20);
  CHECK(relay.max_topic == 1024);
  CHECK(min_max_topic == 512);
  CHECK(max_topic_limit == 64u << 10);
  CHECK(min_max_topic <= relay.max_topic);
  CHECK(relay.max_topic <= max_topic_limit);
}

TEST_CASE("frame_limit is max(4 x the message limit + 64 KiB, 4 MiB), none without a limit", "[defaults]") {
  CHECK(frame_limit(0) == 0);
  CHECK(frame_limit(1) == 4u << 20);
  CHECK(frame_limit(1000) == 4u << 20);
  // Where the two meet: 4 x 1008 KiB + 64 KiB is 4 MiB exactly.
  CHECK(frame_limit(1008u << 10) == 4u << 20);
  CHECK(frame_limit((1008u << 10) + 1) == (4u << 20) + 4);
  CHECK(frame_limit(1u << 20) == (4u << 20) + (64u << 10));
  // ZeroMQ's option is a signed 64-bit number: the cap never goes past it.
  const auto most = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  CHECK(frame_limit(std::numeric_limits<std::size_t>::max()) == most);
  const auto largest = (most - (64u << 10)) / 4;  // the largest limit whose formula stays in range
  CHECK(frame_limit(largest) == 4 * largest + (64u << 10));
  CHECK(frame_limit(largest + 1) == most);
  static_assert(frame_limit(1000) == 4u << 20, "frame_limit is usable at compile time");
}
