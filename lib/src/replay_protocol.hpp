#pragma once
// The replay protocol (docs/PROTOCOL.md, "Replay"): the frames a subscriber (DEALER) and a relay's
// replay socket (ROUTER) exchange. Pure functions on bytes, shared by the server (relay/replay.cpp)
// and the client (subscriber.cpp). All integers big-endian; frame 1 of every message starts "ZR",
// version 1, kind.
//
// Client -> relay
//   REPLAY  0x10, 24 bytes:  4 u8 mode (1 from-seq, 2 since, 3 last-per-topic), 5..7 zero,
//                            8 u64 value, 16 u32 credit, 20 u32 zero; frames 2..: topic prefixes
//   CREDIT  0x11,  8 bytes:  4 u32 more DATA messages (0: keepalive)
// Relay -> client
//   START   0x20, 40 bytes:  4 u32 zero, 8 u64 first, 16 u64 oldest, 24 u64 head, 32 u64 requested
//   DATA    0x21, 16 bytes:  4 u32 entries, 8 u64 skipped; frame 2: the entries (zrelay/record.hpp)
//   LIVE    0x22, 16 bytes:  4 u32 zero, 8 u64 head
//   ERROR   0x2F, 4+ bytes:  4 u8 code, 5.. UTF-8 text

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "big_endian.hpp"
#include "zrelay/wire.hpp"

namespace zrelay::replay_protocol {

/// The replay protocol speaks the wire format's version (the same version byte).
inline constexpr std::uint8_t version = wire::version;

enum class kind : std::uint8_t { replay = 0x10, credit = 0x11, start = 0x20, data = 0x21, live = 0x22, error = 0x2F };
enum class mode : std::uint8_t { from_seq = 1, since = 2, last_per_topic = 3 };
enum class error_code : std::uint8_t { bad_request = 1, unknown_session = 2, too_many = 3 };

inline constexpr std::size_t replay_size = 24;
inline constexpr std::size_t credit_size = 8;
inline constexpr std::size_t start_size = 40;
inline constexpr std::size_t data_size = 16;
inline constexpr std::size_t live_size = 16;
inline constexpr std::size_t error_fixed_size = 5;
/// Topic prefixes a REPLAY may carry.
inline constexpr std::size_t max_prefixes = 1024;

struct request {
  replay_protocol::mode mode = mode::from_seq;
  std::uint64_t value = 0;
  std::uint32_t credit = 0;
};

struct start_info {
  std::uint64_t first = 0, oldest = 0, head = 0, requested = 0;
};

namespace detail {
using big_endian::get32;
using big_endian::get64;
using big_endian::put32;
using big_endian::put64;
inline std::string frame(kind k, std::size_t size) {
  std::string s(size, '\0');
  s[0] = static_cast<char>(wire::magic0);
  s[1] = static_cast<char>(wire::magic1);
  s[2] = static_cast<char>(version);
  s[3] = static_cast<char>(k);
  return s;
}
inline unsigned char* bytes(std::string& s) { return reinterpret_cast<unsigned char*>(&s[0]); }
}  // namespace detail

/// The kind of a frame 1 that starts "ZR", version 1; nullopt for anything else.
inline std::optional<kind> kind_of(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size < 4 || p[0] != wire::magic0 || p[1] != wire::magic1 || p[2] != version) return std::nullopt;
  return static_cast<kind>(p[3]);
}

inline std::string encode_replay(const request& r) {
  auto s = detail::frame(kind::replay, replay_size);
  s[4] = static_cast<char>(r.mode);
  detail::put64(detail::bytes(s) + 8, r.value);
  detail::put32(detail::bytes(s) + 16, r.credit);
  return s;
}
/// A REPLAY's frame 1; false (and `why`) when it breaks a rule.
inline bool decode_replay(const void* data, std::size_t size, request& out, std::string& why) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size != replay_size) {
    why = "a REPLAY frame is " + std::to_string(replay_size) + " bytes, not " + std::to_string(size);
    return false;
  }
  if (p[4] < 1 || p[4] > 3) {
    why = "unknown replay mode " + std::to_string(p[4]);
    return false;
  }
  if (p[5] != 0 || p[6] != 0 || p[7] != 0 || detail::get32(p + 20) != 0) {
    why = "reserved bytes of a REPLAY frame are not zero";
    return false;
  }
  out.mode = static_cast<mode>(p[4]);
  out.value = detail::get64(p + 8);
  out.credit = detail::get32(p + 16);
  return true;
}

inline std::string encode_credit(std::uint32_t n) {
  auto s = detail::frame(kind::credit, credit_size);
  detail::put32(detail::bytes(s) + 4, n);
  return s;
}
inline bool decode_credit(const void* data, std::size_t size, std::uint32_t& n) {
  if (size != credit_size) return false;
  n = detail::get32(static_cast<const unsigned char*>(data) + 4);
  return true;
}

inline std::string encode_start(const start_info& st) {
  auto s = detail::frame(kind::start, start_size);
  detail::put64(detail::bytes(s) + 8, st.first);
  detail::put64(detail::bytes(s) + 16, st.oldest);
  detail::put64(detail::bytes(s) + 24, st.head);
  detail::put64(detail::bytes(s) + 32, st.requested);
  return s;
}
inline bool decode_start(const void* data, std::size_t size, start_info& out) {
  if (size != start_size) return false;
  const auto* p = static_cast<const unsigned char*>(data);
  out.first = detail::get64(p + 8);
  out.oldest = detail::get64(p + 16);
  out.head = detail::get64(p + 24);
  out.requested = detail::get64(p + 32);
  return true;
}

inline std::string encode_data(std::uint32_t entries, std::uint64_t skipped) {
  auto s = detail::frame(kind::data, data_size);
  detail::put32(detail::bytes(s) + 4, entries);
  detail::put64(detail::bytes(s) + 8, skipped);
  return s;
}
inline bool decode_data(const void* data, std::size_t size, std::uint32_t& entries, std::uint64_t& skipped) {
  if (size != data_size) return false;
  const auto* p = static_cast<const unsigned char*>(data);
  entries = detail::get32(p + 4);
  skipped = detail::get64(p + 8);
  return true;
}

inline std::string encode_live(std::uint64_t head) {
  auto s = detail::frame(kind::live, live_size);
  detail::put64(detail::bytes(s) + 8, head);
  return s;
}
inline bool decode_live(const void* data, std::size_t size, std::uint64_t& head) {
  if (size != live_size) return false;
  head = detail::get64(static_cast<const unsigned char*>(data) + 8);
  return true;
}

inline std::string encode_error(error_code c, std::string_view text) {
  auto s = detail::frame(kind::error, error_fixed_size - 1);
  s += static_cast<char>(c);
  s.append(text.data(), text.size());
  return s;
}
inline bool decode_error(const void* data, std::size_t size, std::uint8_t& code, std::string_view& text) {
  if (size < error_fixed_size) return false;
  const auto* p = static_cast<const char*>(data);
  code = static_cast<std::uint8_t>(p[4]);
  text = std::string_view(p + error_fixed_size, size - error_fixed_size);
  return true;
}

}  // namespace zrelay::replay_protocol
