// libFuzzer target for the relay's ingress rules (lib/src/relay/ingress.cpp): the frames of one
// message from a stranger go to the ack socket's rules (judge_acked, then judge_in_session
// against a `next` taken from the input) and to the publisher socket's (judge_fire_and_forget),
// and every verdict must keep the invariants the relay relies on when it carries it out.
// tests/fuzz/run.sh builds and runs it; docs/TESTING.md has the longer run.
//
// An input is a few bytes of settings, then frames (see make_corpus.sh, which writes the seeds):
//   0  1  the size limit (its index in size_limits, mod 8)    1  1  the topic limit (in topic_limits)
//   2  1  how `next` is made (mod 3): 0 the u64 at 3, 1 the batch's seq + the i8 at 3, 2 its end + the i8 at 3
//   3  8  the value for `next`
//  11  …  frames, each a u16 big-endian length then that many bytes (fewer at the end of the input;
//           a last byte alone is an empty frame)

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "relay/ingress.hpp"
#include "zrelay/wire.hpp"

using namespace zrelay;
using namespace zrelay::ingress;
using action = verdict::action;

namespace {

// Property failures abort, so libFuzzer reports them as crashes and saves the input.
#define INGRESS_CHECK(cond)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "ingress_fuzz: check failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

constexpr std::size_t settings_size = 11;
// Small limits, so that inputs of a few bytes break them; 0 is no size limit.
constexpr std::size_t size_limits[] = {0, 1, 2, 8, 64, 1000, 65536, SIZE_MAX};
constexpr std::size_t topic_limits[] = {0, 1, 4, 16, 512, 1024, 65536, SIZE_MAX};
// More than the publisher socket reads, so that the truncated case comes up.
constexpr std::size_t most_frames = max_frames + 2;

std::uint64_t big_endian(const std::uint8_t* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

bool header_decodes(std::string_view frame, wire::batch_header& h) {
  return wire::decode_header(frame.data(), frame.size(), h) == wire::status::ok;
}

// Every refusal can be described and answered.
void check_refusal(const refusal& r, const limits& l) {
  INGRESS_CHECK(r.broken < rule::count_);
  INGRESS_CHECK(r.count >= 1);  // a NACK refuses something
  const auto why = reason_of(r.broken);
  INGRESS_CHECK(why == wire::reason::malformed || why == wire::reason::too_large ||
                why == wire::reason::unsupported_version);
  const auto text = describe(r, l);
  INGRESS_CHECK(!text.empty() && text != "?");
}

// A batch the verdict forwards in parts: its kept runs and refused ones, each in order, alternate
// and cover every record once; each run's bytes and largest record are its records'.
void check_split(const verdict& v, std::string_view body, const limits& l) {
  const auto& h = v.header;
  INGRESS_CHECK(v.batch && v.end == h.seq + h.count);
  INGRESS_CHECK(!v.refusals.empty() && v.refusals.size() <= max_refused_runs);
  INGRESS_CHECK(l.max_msg_size != 0);
  // Where each record starts in the body, and where the last ends.
  std::vector<std::size_t> at;
  wire::record_reader rd(body.data(), body.size(), h.count);
  while (auto rec = rd.next())
    at.push_back(static_cast<std::size_t>(rec->data() - body.data()) - wire::record_prefix_size);
  INGRESS_CHECK(rd.done() && at.size() == h.count);
  at.push_back(body.size());
  const auto largest = [&](std::uint64_t first, std::uint64_t count) {
    std::size_t most = 0;
    for (auto i = first; i < first + count; ++i) most = std::max(most, at[i + 1] - at[i] - wire::record_prefix_size);
    return most;
  };

  struct span {
    std::uint64_t first, count;  // records, by index in the batch
    bool kept;
  };
  std::vector<span> spans;
  for (const auto& run : v.kept) {
    INGRESS_CHECK(run.count >= 1 && run.count <= h.count && run.first <= h.count - run.count);
    INGRESS_CHECK(run.from == at[run.first] && run.to == at[run.first + run.count]);
    INGRESS_CHECK(run.largest == largest(run.first, run.count) && run.largest <= l.max_msg_size);
    if (!spans.empty()) INGRESS_CHECK(spans.back().first < run.first);
    spans.push_back({run.first, run.count, true});
  }
  const auto kept = spans.size();
  for (const auto& r : v.refusals) {
    INGRESS_CHECK(r.broken == rule::too_large);
    INGRESS_CHECK(r.seq >= h.seq && r.seq < v.end && r.count <= v.end - r.seq);  // inside the batch
    INGRESS_CHECK(r.counted == r.count && r.figure == r.count);
    const auto first = r.seq - h.seq;
    INGRESS_CHECK(r.size == largest(first, r.count) && r.size > l.max_msg_size);
    if (spans.size() > kept) INGRESS_CHECK(spans.back().first < first);
    spans.push_back({first, r.count, false});
  }
  std::sort(spans.begin(), spans.end(), [](const span& a, const span& b) { return a.first < b.first; });
  std::uint64_t next = 0;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    INGRESS_CHECK(spans[i].first == next);
    if (i > 0) INGRESS_CHECK(spans[i].kept != spans[i - 1].kept);
    next += spans[i].count;
  }
  INGRESS_CHECK(next == h.count);
}

// What every verdict keeps, on either socket.
void check_common(const verdict& v, const limits& l) {
  INGRESS_CHECK(v.msgs >= 1);
  for (const auto& r : v.refusals) {
    check_refusal(r, l);
    INGRESS_CHECK(r.counted <= v.msgs);
  }
  if (v.what == action::forward && v.whole) INGRESS_CHECK(v.refusals.empty() && v.kept.empty());
  if (v.what != action::forward) INGRESS_CHECK(v.kept.empty());
  if (v.what == action::refuse || v.what == action::refuse_batch) INGRESS_CHECK(v.refusals.size() == 1);
  if (v.batch) INGRESS_CHECK(v.msgs == v.header.count && v.end == v.header.seq + v.header.count);
}

// The ack socket: `frames` as the relay hands them over (three, empty past what came) and the
// number it saw. Returns the first step's verdict in `v`, the second's in `in`.
void fuzz_acked(const std::array<std::string_view, 3>& frames, std::size_t seen, const limits& l,
                const std::uint8_t* settings, verdict& v, verdict& in) {
  judge_acked(frames.data(), seen, l, v);
  check_common(v, l);
  INGRESS_CHECK(v.what == action::refuse || v.what == action::forward);
  INGRESS_CHECK(v.kept.empty());
  wire::batch_header h;
  const bool decodes = seen >= 2 && header_decodes(frames[1], h);
  // A header not believed counts as one message.
  if (seen != 3 || !decodes) INGRESS_CHECK(v.msgs == 1 && !v.batch);
  if (seen != 3) {
    INGRESS_CHECK(v.what == action::refuse && v.malformed == 1);
    const auto& r = v.refusals.front();
    INGRESS_CHECK(r.broken == rule::frames && r.ack_socket && r.figure == seen && r.counted == 1);
    INGRESS_CHECK(r.count == (decodes ? h.count : 1u));
    return;
  }
  if (v.what == action::refuse) {
    const auto& r = v.refusals.front();
    INGRESS_CHECK(!v.batch);
    INGRESS_CHECK(r.seq == v.header.seq);
    INGRESS_CHECK(v.malformed == (r.broken == rule::version ? 0u : 1u));
    if (r.broken == rule::version || r.broken == rule::header || r.broken == rule::body)
      INGRESS_CHECK(r.counted == 1 && v.msgs == 1);
    else INGRESS_CHECK(decodes && r.count == h.count && r.counted == h.count);
    return;
  }
  // Through the first step: a batch whose numbers all exist.
  INGRESS_CHECK(decodes && v.batch && v.refusals.empty() && v.malformed == 0 && v.msgs == h.count);
  INGRESS_CHECK(h.count == v.header.count && h.seq == v.header.seq && h.publisher == v.header.publisher &&
                h.topic_seq == v.header.topic_seq && h.ack_floor == v.header.ack_floor);
  INGRESS_CHECK(h.publisher != 0 && h.seq != 0 && h.ack_floor != 0 && h.ack_floor <= h.seq);
  INGRESS_CHECK(h.count <= UINT64_MAX - h.seq && h.count <= UINT64_MAX - h.topic_seq);
  INGRESS_CHECK(v.end == h.seq + h.count);

  std::uint64_t next = big_endian(settings + 3, 8);
  const auto delta = static_cast<std::uint64_t>(static_cast<std::int64_t>(static_cast<std::int8_t>(settings[3])));
  if (settings[2] % 3 == 1) next = h.seq + delta;
  if (settings[2] % 3 == 2) next = v.end + delta;

  in = v;
  judge_in_session(frames[0], frames[2], next, l, in);
  check_common(in, l);
  INGRESS_CHECK(in.msgs == v.msgs && in.end == v.end && in.batch);
  const auto& topic = frames[0];
  switch (in.what) {
    case action::duplicate: INGRESS_CHECK(in.end <= next && in.refusals.empty() && in.malformed == 0); break;
    case action::expect:
      INGRESS_CHECK(in.end > next && h.seq > next && in.refusals.empty() && in.malformed == 0);
      break;
    case action::refuse_batch: {
      const auto& r = in.refusals.front();
      INGRESS_CHECK(h.seq <= next && next < in.end);
      INGRESS_CHECK(r.seq == h.seq && r.count == h.count && r.counted == h.count);
      INGRESS_CHECK(in.malformed == (reason_of(r.broken) == wire::reason::malformed ? 1u : 0u));
      INGRESS_CHECK((r.broken == rule::overlap) == (h.seq < next));
      if (r.broken == rule::too_many_runs) INGRESS_CHECK(r.other > max_refused_runs && r.figure <= h.count);
      break;
    }
    case action::forward:
      INGRESS_CHECK(h.seq == next && in.malformed == 0);
      INGRESS_CHECK(!topic.empty() && topic.size() <= l.max_topic && h.topic_seq != 0);
      if (!in.whole) check_split(in, frames[2], l);
      break;
    case action::refuse: INGRESS_CHECK(false);
  }
}

// The publisher socket: `n` frames read (all of them, or max_frames of more).
void fuzz_fire_and_forget(const std::string_view* frames, std::size_t n, bool truncated, const limits& l, verdict& v) {
  judge_fire_and_forget({frames, n, truncated}, l, v);
  check_common(v, l);
  // The relay's quick test for plain messages takes exactly what the full rules forward whole as
  // one plain message (of at least one frame: the relay never judges none).
  const bool plain_forward = v.what == action::forward && v.whole && !v.batch && v.msgs == 1 && v.refusals.empty();
  INGRESS_CHECK(n == 0 || plain_within_limits({frames, n, truncated}, l) == plain_forward);
  INGRESS_CHECK(v.what == action::refuse || v.what == action::forward);
  INGRESS_CHECK(v.malformed <= 1 && v.malformed + v.refused <= v.msgs);
  // Each refusal counts as one malformed message, or as the messages it drops for their size.
  std::uint64_t dropped = 0, unreadable = 0;
  for (const auto& r : v.refusals) {
    INGRESS_CHECK(!r.ack_socket);
    if (reason_of(r.broken) == wire::reason::too_large) dropped += r.counted;
    else unreadable += 1;
  }
  INGRESS_CHECK(dropped == v.refused && unreadable == v.malformed);
  if (truncated) {
    INGRESS_CHECK(v.what == action::refuse && v.malformed == 1 && v.refusals.front().broken == rule::frames);
    return;
  }
  wire::batch_header h;
  if (v.batch) {
    INGRESS_CHECK(n == 3 && header_decodes(frames[1], h) && h.count == v.header.count && h.seq == v.header.seq);
  } else {
    INGRESS_CHECK(v.msgs == 1);
  }
  if (v.what == action::forward && v.batch) {
    INGRESS_CHECK(h.count <= UINT64_MAX - h.seq && h.count <= UINT64_MAX - h.topic_seq);
    INGRESS_CHECK(frames[0].size() <= l.max_topic);
    bool too_large = false;
    std::size_t largest = 0;
    INGRESS_CHECK(wire::validate_body(frames[2].data(), frames[2].size(), h.count, l.max_msg_size, too_large,
                                      largest) == wire::status::ok);
    INGRESS_CHECK(too_large == !v.whole);
  }
  if (v.what == action::forward && !v.whole) check_split(v, frames[2], l);
  if (v.what == action::forward && !v.batch) {
    std::size_t payload = 0;
    for (std::size_t i = n == 1 ? 0 : 1; i < n; ++i) payload += frames[i].size();
    INGRESS_CHECK(l.max_msg_size == 0 || payload <= l.max_msg_size);
    INGRESS_CHECK(n < 2 || frames[0].size() <= l.max_topic);
  }
}

bool same_runs(const std::vector<record_run>& a, const std::vector<record_run>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const record_run& x, const record_run& y) {
    return x.first == y.first && x.count == y.count && x.from == y.from && x.to == y.to && x.largest == y.largest;
  });
}

bool same_refusals(const std::vector<refusal>& a, const std::vector<refusal>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const refusal& x, const refusal& y) {
    return x.broken == y.broken && x.seq == y.seq && x.count == y.count && x.counted == y.counted &&
           x.figure == y.figure && x.other == y.other && x.size == y.size && x.status == y.status &&
           x.ack_socket == y.ack_socket;
  });
}

bool same(const verdict& a, const verdict& b) {
  return a.what == b.what && a.batch == b.batch && a.end == b.end && a.msgs == b.msgs && a.malformed == b.malformed &&
         a.refused == b.refused && a.whole == b.whole && a.header.count == b.header.count &&
         a.header.seq == b.header.seq && a.header.publisher == b.header.publisher && same_runs(a.kept, b.kept) &&
         same_refusals(a.refusals, b.refusals);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::uint8_t settings[settings_size] = {};
  std::copy_n(data, std::min(size, settings_size), settings);
  const limits l{size_limits[settings[0] % std::size(size_limits)],
                 topic_limits[settings[1] % std::size(topic_limits)]};

  // The frames, up to most_frames of them (the rest of the input is not read).
  std::vector<std::string_view> frames;
  const std::uint8_t* p = data + std::min(size, settings_size);
  std::size_t left = size - std::min(size, settings_size);
  while (left > 0 && frames.size() < most_frames) {
    const std::size_t prefix = std::min<std::size_t>(left, 2);
    const std::size_t len = prefix == 2 ? std::min<std::size_t>(big_endian(p, 2), left - 2) : 0;
    frames.emplace_back(reinterpret_cast<const char*>(p) + prefix, len);
    p += prefix + len;
    left -= prefix + len;
  }

  // The ack socket: the relay keeps the first three frames and counts the rest.
  std::array<std::string_view, 3> acked{};
  std::copy_n(frames.begin(), std::min<std::size_t>(frames.size(), 3), acked.begin());
  verdict v_acked, v_session;
  fuzz_acked(acked, frames.size(), l, settings, v_acked, v_session);

  // The publisher socket reads up to max_frames and drains the rest.
  const bool truncated = frames.size() > max_frames;
  const std::size_t n = std::min(frames.size(), max_frames);
  verdict v_ff;
  fuzz_fire_and_forget(frames.data(), n, truncated, l, v_ff);

  // A verdict reused, as the relay reuses its one, comes to the same.
  judge_fire_and_forget({frames.data(), n, truncated}, l, v_session);
  INGRESS_CHECK(same(v_session, v_ff));

  // The same three frames on both sockets: where the ack socket forwards a batch starting at
  // `next`, the publisher socket, which has fewer rules, forwards it the same way.
  if (frames.size() == 3 && v_acked.what == action::forward) {
    verdict at_next = v_acked;
    judge_in_session(acked[0], acked[2], v_acked.header.seq, l, at_next);
    if (at_next.what == action::forward) {
      INGRESS_CHECK(v_ff.what == action::forward && v_ff.batch && v_ff.whole == at_next.whole);
      INGRESS_CHECK(same_runs(v_ff.kept, at_next.kept));
      INGRESS_CHECK(v_ff.refusals.size() == at_next.refusals.size());
      for (std::size_t i = 0; i < v_ff.refusals.size(); ++i)
        INGRESS_CHECK(v_ff.refusals[i].seq == at_next.refusals[i].seq &&
                      v_ff.refusals[i].count == at_next.refusals[i].count);
    }
  }
  return 0;
}
