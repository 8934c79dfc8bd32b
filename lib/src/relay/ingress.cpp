#include "relay/ingress.hpp"

#include <algorithm>

namespace zrelay::ingress {
namespace {

refusal make(rule broken, const wire::batch_header& h, std::uint32_t count, std::uint64_t counted) {
  refusal r;
  r.broken = broken;
  r.seq = h.seq;
  r.count = count;
  r.counted = counted;
  return r;
}

// The numbers of a batch's records exist: seq + count and topic seq + count stay within 64 bits
// (record i has seq + i and topic seq + i). Checked on both publisher sockets.
bool numbers_wrap(const wire::batch_header& h, refusal& r) {
  if (h.count > UINT64_MAX - h.seq) {
    r = make(rule::seq_wraps, h, h.count, h.count);
    return true;
  }
  if (h.count > UINT64_MAX - h.topic_seq) {
    r = make(rule::topic_seq_wraps, h, h.count, h.count);
    r.figure = h.topic_seq;
    return true;
  }
  return false;
}

// The rules of the sequence fields on the ack socket, which decide what the relay remembers and
// acks: false when the header keeps them.
bool broken_sequence_rule(const wire::batch_header& h, refusal& r) {
  if (h.publisher == 0 || h.seq == 0) {
    r = make(rule::zero_id, h, h.count, h.count);
    return true;
  }
  if (h.ack_floor == 0) {
    r = make(rule::floor_zero, h, h.count, h.count);
    return true;
  }
  // Every record of a batch is unacknowledged until the relay acks it, and the relay acks a batch
  // whole: a floor above the batch's first sequence claims acks that were never sent.
  if (h.ack_floor > h.seq) {
    r = make(rule::floor_above_seq, h, h.count, h.count);
    r.figure = h.ack_floor;
    return true;
  }
  return numbers_wrap(h, r);
}

// The refusal of a header that did not decode: one message, whatever count it claims.
refusal unreadable_header(wire::status hs, const wire::batch_header& h, std::uint8_t version_seen) {
  if (hs == wire::status::bad_version) {
    auto r = make(rule::version, h, std::max<std::uint32_t>(h.count, 1), 1);
    r.figure = version_seen;
    return r;
  }
  auto r = make(rule::header, h, 1, 1);
  r.status = hs;
  return r;
}

// A run of records refused for their size.
refusal oversized(const wire::batch_header& h, const record_run& run) {
  refusal r;
  r.broken = rule::too_large;
  r.seq = h.seq + run.first;
  r.count = run.count;
  r.counted = run.count;
  r.figure = run.count;
  r.size = run.largest;
  return r;
}

// A batch refused whole for its number of runs of oversized records.
refusal too_many_runs(const wire::batch_header& h, const std::vector<record_run>& over) {
  auto r = make(rule::too_many_runs, h, h.count, h.count);
  for (const auto& run : over) {
    r.figure += run.count;
    r.size = std::max(r.size, run.largest);
  }
  r.other = over.size();
  return r;
}

// Checks a batch's body against its header's count and the size limit. False: it does not hold
// `count` records, and `r` is the refusal (counted as one message: the count is not believed; the
// NACK covers `nack_count` records).
bool body_breaks(std::string_view body, const wire::batch_header& h, const limits& l, std::uint32_t nack_count,
                 bool& too_large, refusal& r) {
  std::size_t largest = 0;
  const auto bs = wire::validate_body(body.data(), body.size(), h.count, l.max_msg_size, too_large, largest);
  if (bs == wire::status::ok) return false;
  r = make(rule::body, h, nack_count, 1);
  r.status = bs;
  return true;
}

void refuse(verdict& v, const refusal& r) {
  v.what = verdict::action::refuse;
  v.refusals.push_back(r);
}

}  // namespace

wire::reason reason_of(rule r) {
  switch (r) {
    case rule::version: return wire::reason::unsupported_version;
    case rule::long_topic:
    case rule::too_large:
    case rule::too_many_runs: return wire::reason::too_large;
    default: return wire::reason::malformed;
  }
}

std::string describe(const refusal& r, const limits& l) {
  const auto n = [](std::uint64_t v) { return std::to_string(v); };
  switch (r.broken) {
    case rule::frames:
      return r.ack_socket ? "expected 3 frames [topic][header][body], got " + n(r.figure)
                          : "more than " + n(max_frames) + " frames";
    case rule::version: return "this relay speaks protocol version " + n(wire::version) + ", got " + n(r.figure);
    case rule::header: return "header: " + std::string(wire::status_text(r.status));
    case rule::body: return "body: " + std::string(wire::status_text(r.status));
    case rule::zero_id: return "publisher id and sequence must not be zero on the ack socket";
    case rule::floor_zero:
      return "the ack floor must be set on the ack socket (the oldest sequence not yet acknowledged, 1 or more)";
    case rule::floor_above_seq:
      return "ack floor " + n(r.figure) + " is above the batch's sequence " + n(r.seq) +
             " (a batch is unacknowledged until the relay acks it)";
    case rule::seq_wraps:
      return "sequence " + n(r.seq) + " + count " + n(r.count) + " runs past the last sequence number";
    case rule::topic_seq_wraps:
      return "topic sequence " + n(r.figure) + " + count " + n(r.count) + " runs past the last sequence number";
    case rule::overlap:
      return "batch overlaps messages already accepted (sequence " + n(r.seq) + ", expected " + n(r.figure) + ")";
    case rule::empty_topic: return "the topic must not be empty on the ack socket";
    case rule::long_topic: return "a topic of " + n(r.size) + " bytes exceeds the limit of " + n(l.max_topic);
    case rule::topic_seq_zero:
      return "the topic sequence must not be zero on the ack socket (it starts at 1 for each topic)";
    case rule::too_large:
      if (r.figure == 1) return "a message of " + n(r.size) + " bytes exceeds the limit of " + n(l.max_msg_size);
      return n(r.figure) + " messages of up to " + n(r.size) + " bytes exceed the limit of " + n(l.max_msg_size);
    case rule::too_many_runs:
      return n(r.figure) + " messages of up to " + n(r.size) + " bytes exceed the limit of " + n(l.max_msg_size) +
             " in " + n(r.other) + " runs (more than " + n(max_refused_runs) +
             " runs in one batch: the whole batch of " + n(r.count) + " messages is refused)";
    case rule::count_: break;
  }
  return "?";
}

void verdict::reset() {
  what = action::forward;
  batch = false;
  header = wire::batch_header{};
  end = msgs = malformed = refused = 0;
  refusals.clear();
  whole = true;
  kept.clear();
}

void split_runs(std::string_view body, std::uint32_t count, std::size_t max_msg_size, std::vector<record_run>& kept,
                std::vector<record_run>& over) {
  const auto* base = body.data();
  wire::record_reader rd(body.data(), body.size(), count);
  std::uint32_t i = 0;
  while (auto rec = rd.next()) {
    const auto to = static_cast<std::size_t>(rec->data() + rec->size() - base);
    const auto from = static_cast<std::size_t>(rec->data() - base) - wire::record_prefix_size;
    auto& runs = max_msg_size != 0 && rec->size() > max_msg_size ? over : kept;
    if (runs.empty() || runs.back().first + runs.back().count != i) runs.push_back({i, 0, from, to, 0});
    auto& r = runs.back();
    ++r.count;
    r.to = to;
    r.largest = std::max(r.largest, rec->size());
    ++i;
  }
}

void judge_acked(const std::string_view* frames, std::size_t frames_seen, const limits& l, verdict& out) {
  out.reset();
  auto& h = out.header;
  std::uint8_t version_seen = 0;
  const auto hs = frames_seen >= 2 ? wire::decode_header(frames[1].data(), frames[1].size(), h, &version_seen)
                                   : wire::status::truncated;
  if (frames_seen != 3) {
    // Not [topic][header][body]: whatever its header says is not believed, so it counts as one
    // message (a hostile client cannot add 2^32 - 1 to the counters with one frame). The NACK covers
    // the records it claims, so that a client that merely framed a batch wrongly learns its fate.
    out.msgs = 1;
    out.malformed = 1;
    auto r = make(rule::frames, h, hs == wire::status::ok ? std::max<std::uint32_t>(h.count, 1) : 1, 1);
    r.figure = frames_seen;
    r.ack_socket = true;
    refuse(out, r);
    return;
  }
  if (hs != wire::status::ok) {
    out.msgs = 1;
    out.malformed = hs == wire::status::bad_version ? 0 : 1;
    refuse(out, unreadable_header(hs, h, version_seen));
    return;
  }
  // Nor is the count of a header whose body does not match it: the body is checked first.
  bool too_large = false;
  refusal r;
  if (body_breaks(frames[2], h, l, h.count, too_large, r)) {
    out.msgs = 1;
    out.malformed = 1;
    refuse(out, r);
    return;
  }
  out.msgs = h.count;
  // A header that breaks the sequence rules changes nothing the relay remembers, as one that does
  // not decode: its numbers cannot be trusted.
  if (broken_sequence_rule(h, r)) {
    out.malformed = 1;
    refuse(out, r);
    return;
  }
  out.batch = true;
  out.end = h.seq + h.count;
  out.whole = !too_large;
}

void judge_in_session(std::string_view topic, std::string_view body, std::uint64_t next, const limits& l,
                      verdict& out) {
  const auto& h = out.header;
  const auto refuse_batch = [&](rule broken) -> refusal& {
    out.what = verdict::action::refuse_batch;
    if (reason_of(broken) == wire::reason::malformed) out.malformed += 1;
    out.refusals.push_back(make(broken, h, h.count, h.count));
    return out.refusals.back();
  };
  if (out.end <= next) {
    out.what = verdict::action::duplicate;
    return;
  }
  if (h.seq > next) {
    out.what = verdict::action::expect;
    return;
  }
  if (h.seq < next) {
    refuse_batch(rule::overlap).figure = next;
    return;
  }
  // What this batch would put before subscribers: refused for good, as oversized records are.
  if (topic.empty()) {
    refuse_batch(rule::empty_topic);
    return;
  }
  if (topic.size() > l.max_topic) {
    refuse_batch(rule::long_topic).size = topic.size();
    return;
  }
  if (h.topic_seq == 0) {
    refuse_batch(rule::topic_seq_zero);
    return;
  }
  out.what = verdict::action::forward;
  if (out.whole) return;
  std::vector<record_run> over;
  split_runs(body, h.count, l.max_msg_size, out.kept, over);
  if (over.size() > max_refused_runs) {
    out.kept.clear();
    out.what = verdict::action::refuse_batch;
    out.refusals.push_back(too_many_runs(h, over));
    return;
  }
  for (const auto& run : over) out.refusals.push_back(oversized(h, run));
}

// A message of one frame is all topic as far as prefix matching goes: only a separate topic frame
// is held to the limit. Its payload is what a subscriber prints: the frame itself, or the frames
// after the topic.
static bool plain_topic_too_long(const frames_view& m, const limits& l) {
  return m.n >= 2 && m.frames[0].size() > l.max_topic;
}
static std::size_t plain_payload(const frames_view& m) {
  std::size_t payload = 0;
  for (std::size_t i = m.n == 1 ? 0 : 1; i < m.n; ++i) payload += m.frames[i].size();
  return payload;
}

bool plain_within_limits(const frames_view& m, const limits& l) {
  const auto* f = m.frames;
  if (m.truncated || m.n == 0 || (m.n == 3 && wire::looks_like_header(f[1].data(), f[1].size()))) return false;
  // The rules of judge_fire_and_forget's plain part below.
  if (plain_topic_too_long(m, l)) return false;
  return l.max_msg_size == 0 || plain_payload(m) <= l.max_msg_size;
}

void judge_fire_and_forget(const frames_view& m, const limits& l, verdict& out) {
  out.reset();
  // A refusal of something it cannot read is one malformed message; of what it will not forward
  // (size, topic), the messages it drops.
  const auto drop = [&](const refusal& r) {
    if (reason_of(r.broken) == wire::reason::too_large) out.refused += r.counted;
    else out.malformed += 1;
    out.refusals.push_back(r);
  };
  if (m.truncated) {
    out.msgs = 1;
    out.what = verdict::action::refuse;
    drop(make(rule::frames, {}, 1, 1));
    return;
  }
  const auto* f = m.frames;
  if (m.n == 3 && wire::looks_like_header(f[1].data(), f[1].size())) {
    // A batch, held to the ack socket's rules of shape and size, not to its sequence rules (the
    // relay keeps no state for these publishers and acks nothing).
    auto& h = out.header;
    std::uint8_t version_seen = 0;
    out.what = verdict::action::refuse;
    const auto hs = wire::decode_header(f[1].data(), f[1].size(), h, &version_seen);
    if (hs != wire::status::ok) {
      out.msgs = 1;
      drop(unreadable_header(hs, h, version_seen));
      return;
    }
    bool too_large = false;
    refusal r;
    if (body_breaks(f[2], h, l, 1, too_large, r)) {
      out.msgs = 1;
      drop(r);
      return;
    }
    out.msgs = h.count;
    out.batch = true;
    out.end = h.seq + h.count;
    // The records' numbers must exist: the parts of a batch split around an oversized record, and
    // every subscriber, count from them.
    if (numbers_wrap(h, r)) {
      drop(r);
      return;
    }
    if (f[0].size() > l.max_topic) {
      r = make(rule::long_topic, h, h.count, h.count);
      r.size = f[0].size();
      drop(r);
      return;
    }
    out.what = verdict::action::forward;
    if (!too_large) return;
    out.whole = false;
    std::vector<record_run> over;
    split_runs(f[2], h.count, l.max_msg_size, out.kept, over);
    // As on the ack socket: past max_refused_runs, the whole batch is dropped (it would be hundreds
    // of thousands of tiny parts for the subscribers).
    if (over.size() > max_refused_runs) {
      out.kept.clear();
      out.what = verdict::action::refuse;
      drop(too_many_runs(h, over));
      return;
    }
    for (const auto& run : over) drop(oversized(h, run));
    return;
  }
  out.msgs = 1;
  if (plain_topic_too_long(m, l)) {
    out.what = verdict::action::refuse;
    auto r = make(rule::long_topic, {}, 1, 1);
    r.size = f[0].size();
    drop(r);
    return;
  }
  const auto payload = plain_payload(m);
  if (l.max_msg_size != 0 && payload > l.max_msg_size) {
    out.what = verdict::action::refuse;
    auto r = make(rule::too_large, {}, 1, 1);
    r.figure = 1;
    r.size = payload;
    drop(r);
  }
}

}  // namespace zrelay::ingress
