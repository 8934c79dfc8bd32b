#pragma once
// The link protocol (docs/PROTOCOL.md, "Links between relays"): what two relays linked by
// --upstream say to each other on the one connection between them, a DEALER of the downstream
// relay connected to the upstream's ack socket (ROUTER). Pure functions on bytes (fuzzed).
//
// Every frame 1 starts "ZR", version 2, a kind byte; then the sender's relay id (u64). Integers
// big-endian; a name or prefix is u16 length + bytes.
//   HELLO    0x30  downstream -> upstream: id, name
//   WELCOME  0x31  upstream -> downstream: id, rooted (u8), chain (u8 n, n x (u64 id, name)): the
//                  upstream first, then its upstream, ... ; rooted: the last one has no upstream
//   CHAIN    0x32  upstream -> downstream: the same as WELCOME, sent when the chain changes
//   REFUSE   0x33  either way: id, text (the rest of the frame, UTF-8)
//   READY    0x34  either way: id, u64 resume: the sender's subscriptions are all sent (after a
//                  handshake); from a downstream, resume is the upstream journal seq after the last
//                  message it took from the upstream (0: none), so that an upstream with a journal
//                  that no longer holds the link's window sends what it missed again
//   BYE      0x35  either way: the sender ends the link
//   PING     0x36  downstream -> upstream, once a second; PONG 0x37 the answer
//   SUB      0x38  either way: id, u32 n, n prefixes the sender's side now wants
//   UNSUB    0x39  either way: id, u32 n, n prefixes it no longer wants
//   DATA     0x40  either way, one frame: id, u64 seq, u32 count, u64 ack floor, u64 jseq end (the
//                  sender's journal seq after the entries' last message; 0: no journal): 40 bytes,
//                  then `count` journal-format entries (zrelay/record.hpp), entry i of link
//                  sequence seq + i. Answered as the ack socket answers a publisher's batch: an
//                  ACK or EXPECT reply (version 1, docs/PROTOCOL.md) whose publisher is the sender's id.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace zrelay::link_wire {

inline constexpr std::uint8_t version = 2;

enum class kind : std::uint8_t {
  hello = 0x30,
  welcome = 0x31,
  chain = 0x32,
  refuse = 0x33,
  ready = 0x34,
  bye = 0x35,
  ping = 0x36,
  pong = 0x37,
  sub = 0x38,
  unsub = 0x39,
  data = 0x40,
};

/// Longest relay name; names longer are cut.
inline constexpr std::size_t max_name = 255;
/// The longest chain of relays a WELCOME or CHAIN carries (a longer tree is refused as a loop would be).
inline constexpr std::size_t max_chain = 32;
/// Bytes of DATA's header, before its entries (in the same frame).
inline constexpr std::size_t data_size = 40;
/// A SUB or UNSUB frame is cut at about this many bytes (more frames follow).
inline constexpr std::size_t max_prefix_frame = 64 * 1024;

struct relay_ref {
  std::uint64_t id = 0;
  std::string name;
  bool operator==(const relay_ref& o) const { return id == o.id && name == o.name; }
};

/// A decoded control frame (one of the fields below is set, by kind).
struct message {
  link_wire::kind what = kind::hello;
  std::uint64_t id = 0;               ///< the sender's relay id
  std::string name;                   ///< hello
  bool rooted = false;                ///< welcome, chain
  std::vector<relay_ref> chain;       ///< welcome, chain
  std::string text;                   ///< refuse
  std::vector<std::string> prefixes;  ///< sub, unsub
  std::uint64_t resume = 0;           ///< ready
  std::size_t too_long = 0;           ///< sub, unsub: prefixes over the limit, left out of `prefixes`
  std::size_t longest = 0;            ///< the longest of them
};

struct data_header {
  std::uint64_t id = 0;
  std::uint64_t seq = 0;
  std::uint32_t count = 0;
  std::uint64_t floor = 0;
  std::uint64_t jseq_end = 0;
};

/// The kind of a frame that starts "ZR", version 2; nullopt for anything else.
std::optional<kind> kind_of(const void* data, std::size_t size);

std::string encode_hello(std::uint64_t id, std::string_view name);
std::string encode_chain(kind k, std::uint64_t id, bool rooted, const std::vector<relay_ref>& chain);
std::string encode_refuse(std::uint64_t id, std::string_view text);
/// BYE, PING, PONG: the id alone.
std::string encode_signal(kind k, std::uint64_t id);
std::string encode_ready(std::uint64_t id, std::uint64_t resume);
/// SUB or UNSUB of prefixes[from, to).
std::string encode_prefixes(kind k, std::uint64_t id, const std::vector<std::string>& prefixes, std::size_t from,
                            std::size_t to);
std::string encode_data(const data_header& h);

/// Decodes a control frame (any kind but data). False, with `why`, for a frame that breaks the
/// format: too short, a length past the end, bytes after the end, more than max_chain relays. A
/// prefix over `max_prefix` bytes is left out (counted in too_long), the frame taken.
bool decode(const void* data, std::size_t size, std::size_t max_prefix, message& out, std::string& why);
bool decode_data(const void* data, std::size_t size, data_header& out, std::string& why);

}  // namespace zrelay::link_wire
