#pragma once
// Defaults and limits, in one place: the relay's ports and endpoints, the message and topic limits
// and the frame cap. relay_config, publisher_config, subscriber_config and the tools' command lines
// (defaults and help text) take them from here.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

namespace zrelay {

/// Default ports of the relay's three sockets.
inline constexpr unsigned default_pub_port = 5559;  ///< XSUB: fire-and-forget publishers
inline constexpr unsigned default_sub_port = 5560;  ///< XPUB: subscribers
inline constexpr unsigned default_ack_port = 5561;  ///< ROUTER: acked publishers
/// Default port of the replay socket (ROUTER; bound only with a journal).
inline constexpr unsigned default_replay_port = 5562;
/// Default port of the control socket (zrelay --control-bind, `zrelay ctl`; loopback only).
inline constexpr unsigned default_control_port = 5563;

/// A default endpoint: `port` on loopback ("tcp://127.0.0.1:5559"). The relay binds these, the
/// clients connect to them.
inline std::string default_endpoint(unsigned port) { return "tcp://127.0.0.1:" + std::to_string(port); }

/// The relay's spin window (relay_config::spin, zrelay --spin), in microseconds, and its largest value.
inline constexpr unsigned default_spin_us = 200;
inline constexpr unsigned max_spin_us = 1'000'000;

/// Largest message the relay accepts, and zpub sends, by default (0 would be no limit).
inline constexpr std::size_t default_max_msg_size = std::size_t{1} << 20;

/// The longest topic the relay accepts by default, and the range its limit (relay_config::max_topic)
/// may take. Below the minimum, ZeroMQ's frame limit on the subscriber socket would cut off handshakes.
inline constexpr std::size_t default_max_topic = 1024;
inline constexpr std::size_t min_max_topic = 512;
inline constexpr std::size_t max_topic_limit = std::size_t{64} << 10;

/// The parts of frame_limit(): frame_limit_factor x the message limit + frame_limit_slack, and at
/// least frame_limit_floor.
inline constexpr std::size_t frame_limit_factor = 4;
inline constexpr std::size_t frame_limit_slack = std::size_t{64} << 10;
inline constexpr std::size_t frame_limit_floor = std::size_t{4} << 20;

/// The largest frame the relay reads on its publisher and ack sockets for a message limit of
/// max_msg_size: max(4 x max_msg_size + 64 KiB, 4 MiB), or 0 (none) when max_msg_size is 0.
/// ZeroMQ cuts the connection of a peer that sends a longer frame, at its size header.
///
/// Four times the limit, and at least 4 MiB: a message a few times too large, or a long line sent to
/// a relay with a small limit, is read and refused (with a NACK where there is someone to send it to)
/// instead of costing its sender the connection. 64 KiB more leaves room for a batch of small records
/// and the frame's own overhead.
constexpr std::size_t frame_limit(std::size_t max_msg_size) {
  // ZeroMQ's option is signed.
  constexpr auto most = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
  if (max_msg_size == 0) return 0;
  if (max_msg_size > (most - frame_limit_slack) / frame_limit_factor) return most;
  return std::max(frame_limit_factor * max_msg_size + frame_limit_slack, frame_limit_floor);
}

}  // namespace zrelay
