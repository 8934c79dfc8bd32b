#include "zrelay/wire.hpp"

#include <cstring>

#include "big_endian.hpp"

namespace zrelay::wire {
namespace {

using big_endian::get32;
using big_endian::get64;
using big_endian::put32;
using big_endian::put64;

}  // namespace

std::string_view reason_text(reason r) {
  switch (r) {
    case reason::none: return "none";
    case reason::too_large: return "too large";
    case reason::malformed: return "malformed";
    case reason::unsupported_version: return "unsupported version";
    case reason::overloaded: return "overloaded";
    case reason::not_allowed: return "not allowed";
    case reason::unavailable: return "unavailable";
  }
  return "unknown reason";
}

std::string_view status_text(status s) {
  switch (s) {
    case status::ok: return "ok";
    case status::bad_magic: return "not a zrelay frame (bad magic)";
    case status::bad_version: return "unsupported protocol version";
    case status::bad_kind: return "unexpected frame kind";
    case status::truncated: return "truncated";
    case status::bad_count: return "record count is zero";
    case status::bad_length: return "record length runs past the end of the body";
    case status::trailing: return "bytes left over after the last record";
  }
  return "unknown status";
}

void encode_header(const batch_header& h, void* out) {
  auto* p = static_cast<unsigned char*>(out);
  p[0] = magic0;
  p[1] = magic1;
  p[2] = version;
  p[3] = static_cast<unsigned char>(kind::batch);
  put32(p + 4, h.count);
  put64(p + 8, h.publisher);
  put64(p + 16, h.seq);
  put64(p + 24, h.topic_seq);
  put64(p + 32, h.ack_floor);
}

void encode_delivered_header(const batch_header& h, std::uint64_t jseq, void* out) {
  auto* p = static_cast<unsigned char*>(out);
  encode_header(h, p);
  p[2] = delivered_version;
  put64(p + header_size, jseq);
}

status decode_delivered_header(const void* data, std::size_t size, batch_header& out, std::uint64_t& jseq,
                               std::uint8_t* version_seen) {
  const auto* p = static_cast<const unsigned char*>(data);
  jseq = 0;
  if (size < 3 || p[0] != magic0 || p[1] != magic1 || p[2] != delivered_version)
    return decode_header(data, size, out, version_seen);
  if (version_seen) *version_seen = p[2];
  if (size < 4) return status::truncated;
  if (p[3] != static_cast<unsigned char>(kind::batch)) return status::bad_kind;
  if (size != header_v2_size) return size < header_v2_size ? status::truncated : status::trailing;
  out.count = get32(p + 4);
  out.publisher = get64(p + 8);
  out.seq = get64(p + 16);
  out.topic_seq = get64(p + 24);
  out.ack_floor = get64(p + 32);
  jseq = get64(p + header_size);
  if (out.count == 0) return status::bad_count;
  return status::ok;
}

bool looks_like_header(const void* data, std::size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  return size >= 4 && p[0] == magic0 && p[1] == magic1 && p[3] == static_cast<unsigned char>(kind::batch);
}

status decode_header(const void* data, std::size_t size, batch_header& out, std::uint8_t* version_seen) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size < 3 || p[0] != magic0 || p[1] != magic1) return status::bad_magic;
  if (version_seen) *version_seen = p[2];
  // Fill what is there even for another version: the caller answers with these numbers.
  if (size >= 8) out.count = get32(p + 4);
  if (size >= 16) out.publisher = get64(p + 8);
  if (size >= 24) out.seq = get64(p + 16);
  if (size >= 32) out.topic_seq = get64(p + 24);
  if (size >= 40) out.ack_floor = get64(p + 32);
  if (p[2] != version) return status::bad_version;
  if (size < 4) return status::truncated;
  if (p[3] != static_cast<unsigned char>(kind::batch)) return status::bad_kind;
  if (size != header_size) return size < header_size ? status::truncated : status::trailing;
  if (out.count == 0) return status::bad_count;
  return status::ok;
}

void append_record(std::string& body, std::string_view payload) {
  // One resize and two copies: two appends cost twice the checks, and this runs per message.
  const auto at = body.size();
  body.resize(at + record_prefix_size + payload.size());
  auto* p = reinterpret_cast<unsigned char*>(&body[at]);
  put32(p, static_cast<std::uint32_t>(payload.size()));
  if (!payload.empty()) std::memcpy(p + record_prefix_size, payload.data(), payload.size());
}

record_reader::record_reader(const void* data, std::size_t size, std::uint32_t count)
    : p_(static_cast<const unsigned char*>(data)), end_(p_ + size), remaining_(count) {}

std::optional<std::string_view> record_reader::next() {
  if (error_ != status::ok) return std::nullopt;
  if (remaining_ == 0) {
    if (p_ != end_) error_ = status::trailing;
    return std::nullopt;
  }
  const auto left = static_cast<std::size_t>(end_ - p_);
  if (left < record_prefix_size) {
    error_ = status::truncated;
    return std::nullopt;
  }
  const std::uint32_t len = get32(p_);
  if (len > left - record_prefix_size) {
    error_ = status::bad_length;
    return std::nullopt;
  }
  std::string_view rec(reinterpret_cast<const char*>(p_ + record_prefix_size), len);
  p_ += record_prefix_size + len;
  --remaining_;
  return rec;
}

status validate_body(const void* data, std::size_t size, std::uint32_t count, std::size_t max_record, bool& too_large,
                     std::size_t& largest) {
  too_large = false;
  largest = 0;
  record_reader r(data, size, count);
  while (auto rec = r.next()) {
    if (rec->size() > largest) largest = rec->size();
  }
  if (r.error() != status::ok) return r.error();
  if (max_record != 0 && largest > max_record) too_large = true;
  return status::ok;
}

std::string encode_reply(const reply& r) {
  std::string out(reply_fixed_size + r.text.size(), '\0');
  auto* p = reinterpret_cast<unsigned char*>(out.data());
  p[0] = magic0;
  p[1] = magic1;
  p[2] = version;
  p[3] = static_cast<unsigned char>(r.type);
  put32(p + 4, r.count);
  put64(p + 8, r.publisher);
  put64(p + 16, r.seq);
  p[24] = static_cast<unsigned char>(r.why);
  std::memcpy(p + reply_fixed_size, r.text.data(), r.text.size());
  return out;
}

status decode_reply(const void* data, std::size_t size, reply& out) {
  const auto* p = static_cast<const unsigned char*>(data);
  if (size < 3 || p[0] != magic0 || p[1] != magic1) return status::bad_magic;
  if (p[2] != version) return status::bad_version;
  if (size < reply_fixed_size) return status::truncated;
  const auto k = p[3];
  if (k != static_cast<unsigned char>(kind::ack) && k != static_cast<unsigned char>(kind::nack) &&
      k != static_cast<unsigned char>(kind::expect))
    return status::bad_kind;
  out.type = static_cast<kind>(k);
  out.count = get32(p + 4);
  out.publisher = get64(p + 8);
  out.seq = get64(p + 16);
  out.why = static_cast<reason>(p[24]);
  out.text.assign(reinterpret_cast<const char*>(p + reply_fixed_size), size - reply_fixed_size);
  return status::ok;
}

}  // namespace zrelay::wire
