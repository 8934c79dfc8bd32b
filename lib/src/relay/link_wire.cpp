#include "relay/link_wire.hpp"

#include <algorithm>

#include "big_endian.hpp"
#include "zrelay/wire.hpp"

namespace zrelay::link_wire {
namespace {

using big_endian::get16;
using big_endian::get32;
using big_endian::get64;

constexpr std::size_t fixed = 12;  // "ZR", version, kind, u64 id

std::string start(kind k, std::uint64_t id) {
  std::string s(fixed, '\0');
  s[0] = static_cast<char>(wire::magic0);
  s[1] = static_cast<char>(wire::magic1);
  s[2] = static_cast<char>(version);
  s[3] = static_cast<char>(k);
  big_endian::put64(reinterpret_cast<unsigned char*>(&s[4]), id);
  return s;
}

void put8(std::string& s, std::uint8_t v) { s.push_back(static_cast<char>(v)); }
// Appends v big-endian with big_endian::putN, as every zrelay frame writes integers.
template <typename T, void (*Put)(unsigned char*, T)>
void append_be(std::string& s, T v) {
  unsigned char b[sizeof(T)];
  Put(b, v);
  s.append(reinterpret_cast<const char*>(b), sizeof b);
}
void put16(std::string& s, std::uint16_t v) { append_be<std::uint16_t, big_endian::put16>(s, v); }
void put32(std::string& s, std::uint32_t v) { append_be<std::uint32_t, big_endian::put32>(s, v); }
void put64(std::string& s, std::uint64_t v) { append_be<std::uint64_t, big_endian::put64>(s, v); }
void put_string(std::string& s, std::string_view v, std::size_t max = 0xFFFF) {
  if (v.size() > max) v = v.substr(0, max);
  put16(s, static_cast<std::uint16_t>(v.size()));
  s.append(v.data(), v.size());
}

// Reads fields off a frame, never past its end.
struct reader {
  const unsigned char* p;
  std::size_t left;
  bool ok = true;
  bool need(std::size_t n) {
    if (!ok || left < n) ok = false;
    return ok;
  }
  std::uint8_t u8() {
    if (!need(1)) return 0;
    --left;
    return *p++;
  }
  std::uint16_t u16() {
    if (!need(2)) return 0;
    const auto v = get16(p);
    p += 2;
    left -= 2;
    return v;
  }
  std::uint32_t u32() {
    if (!need(4)) return 0;
    const auto v = get32(p);
    p += 4;
    left -= 4;
    return v;
  }
  std::uint64_t u64() {
    if (!need(8)) return 0;
    const auto v = get64(p);
    p += 8;
    left -= 8;
    return v;
  }
  std::string str() {
    const auto n = u16();
    if (!need(n)) return {};
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    left -= n;
    return s;
  }
};

}  // namespace

std::optional<kind> kind_of(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size < 4 || p[0] != wire::magic0 || p[1] != wire::magic1 || p[2] != version) return std::nullopt;
  return static_cast<kind>(p[3]);
}

std::string encode_hello(std::uint64_t id, std::string_view name) {
  auto s = start(kind::hello, id);
  put_string(s, name, max_name);
  return s;
}

std::string encode_chain(kind k, std::uint64_t id, bool rooted, const std::vector<relay_ref>& chain) {
  auto s = start(k, id);
  put8(s, rooted ? 1 : 0);
  const auto n = std::min(chain.size(), max_chain);
  put8(s, static_cast<std::uint8_t>(n));
  for (std::size_t i = 0; i < n; ++i) {
    put64(s, chain[i].id);
    put_string(s, chain[i].name, max_name);
  }
  return s;
}

std::string encode_refuse(std::uint64_t id, std::string_view text) {
  auto s = start(kind::refuse, id);
  s.append(text.data(), text.size());
  return s;
}

std::string encode_signal(kind k, std::uint64_t id) { return start(k, id); }

std::string encode_ready(std::uint64_t id, std::uint64_t resume) {
  auto s = start(kind::ready, id);
  put64(s, resume);
  return s;
}

std::string encode_prefixes(kind k, std::uint64_t id, const std::vector<std::string>& prefixes, std::size_t from,
                            std::size_t to) {
  auto s = start(k, id);
  put32(s, static_cast<std::uint32_t>(to - from));
  for (std::size_t i = from; i < to; ++i) put_string(s, prefixes[i]);
  return s;
}

std::string encode_data(const data_header& h) {
  auto s = start(kind::data, h.id);
  put64(s, h.seq);
  put32(s, h.count);
  put64(s, h.floor);
  put64(s, h.jseq_end);
  return s;
}

bool decode(const void* data, std::size_t size, std::size_t max_prefix, message& out, std::string& why) {
  const auto k = kind_of(data, size);
  if (!k) {
    why = "not a link frame";
    return false;
  }
  if (size < fixed) {
    why = "a link frame of " + std::to_string(size) + " bytes is too short";
    return false;
  }
  reader r{static_cast<const unsigned char*>(data) + 4, size - 4};
  out = message{};
  out.what = *k;
  out.id = r.u64();
  switch (*k) {
    case kind::hello:
      out.name = r.str();
      if (out.name.size() > max_name) {
        why = "a relay name of " + std::to_string(out.name.size()) + " bytes (at most " + std::to_string(max_name) +
              ")";
        return false;
      }
      break;
    case kind::welcome:
    case kind::chain: {
      const auto rooted = r.u8();
      if (rooted > 1) {
        why = "rooted must be 0 or 1";
        return false;
      }
      out.rooted = rooted == 1;
      const auto n = r.u8();
      if (n == 0 || n > max_chain) {
        why = "a chain of " + std::to_string(n) + " relays (1 to " + std::to_string(max_chain) + ")";
        return false;
      }
      for (unsigned i = 0; i < n && r.ok; ++i) {
        relay_ref ref;
        ref.id = r.u64();
        ref.name = r.str();
        if (ref.name.size() > max_name) r.ok = false;
        out.chain.push_back(std::move(ref));
      }
      break;
    }
    case kind::refuse:
      out.text.assign(reinterpret_cast<const char*>(r.p), r.left);
      r.left = 0;
      break;
    case kind::ready: out.resume = r.u64(); break;
    case kind::bye:
    case kind::ping:
    case kind::pong: break;
    case kind::sub:
    case kind::unsub: {
      const auto n = r.u32();
      // Each prefix takes at least its 2 length bytes: a count past that is a lie.
      if (n > r.left / 2) {
        why = "a count of " + std::to_string(n) + " prefixes in " + std::to_string(r.left) + " bytes";
        return false;
      }
      out.prefixes.reserve(n);
      for (std::uint32_t i = 0; i < n && r.ok; ++i) {
        auto p = r.str();
        // One prefix over this relay's limit costs that prefix only, not the others in the frame.
        if (p.size() > max_prefix) {
          ++out.too_long;
          out.longest = std::max(out.longest, p.size());
        } else {
          out.prefixes.push_back(std::move(p));
        }
      }
      break;
    }
    case kind::data: why = "DATA has two frames"; return false;
    default: why = "unknown link kind " + std::to_string(static_cast<unsigned>(*k)); return false;
  }
  if (!r.ok) {
    why = "a link frame ends inside a field";
    return false;
  }
  if (r.left != 0) {
    why = std::to_string(r.left) + " bytes after the end of a link frame";
    return false;
  }
  return true;
}

bool decode_data(const void* data, std::size_t size, data_header& out, std::string& why) {
  const auto k = kind_of(data, size);
  if (!k || *k != kind::data || size != data_size) {
    why = "DATA's first frame must be " + std::to_string(data_size) + " bytes, not " + std::to_string(size);
    return false;
  }
  const auto* p = static_cast<const unsigned char*>(data);
  out.id = get64(p + 4);
  out.seq = get64(p + 12);
  out.count = get32(p + 20);
  out.floor = get64(p + 24);
  out.jseq_end = get64(p + 32);
  if (out.id == 0 || out.seq == 0 || out.count == 0 || out.floor == 0 || out.floor > out.seq ||
      out.seq + out.count < out.seq) {
    why = "DATA's id, sequence, count and ack floor must be set, the floor at most the sequence, and the sequence "
          "must not wrap";
    return false;
  }
  return true;
}

}  // namespace zrelay::link_wire
