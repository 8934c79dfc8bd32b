#include <catch2/catch.hpp>

#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "relay/ingress.hpp"
#include "zrelay/wire.hpp"

// The relay's ingress rules (lib/src/relay/ingress.cpp) on bytes, without sockets. The texts are
// the ones docs/PROTOCOL.md gives and tests/relay_test.cpp sees end to end.

using namespace zrelay;
using namespace zrelay::ingress;
using action = verdict::action;

namespace {

constexpr std::uint64_t last = UINT64_MAX;

// A header an acked publisher would send: publisher 7, its floor at seq, topic seq 1.
wire::batch_header acked_header(std::uint32_t count, std::uint64_t seq = 1) {
  wire::batch_header h;
  h.count = count;
  h.publisher = 7;
  h.seq = seq;
  h.topic_seq = 1;
  h.ack_floor = seq;
  return h;
}

std::string header_frame(const wire::batch_header& h) {
  std::string out(wire::header_size, '\0');
  wire::encode_header(h, out.data());
  return out;
}

// A header frame whose version byte is `version`.
std::string header_frame_version(const wire::batch_header& h, char version) {
  auto out = header_frame(h);
  out[2] = version;
  return out;
}

std::string body_of(const std::vector<std::string>& records) {
  std::string body;
  for (const auto& r : records) wire::append_record(body, r);
  return body;
}

// Records of these sizes, each of its own letter ('a', 'b', ...).
std::vector<std::string> records_of(std::initializer_list<std::size_t> sizes) {
  std::vector<std::string> out;
  char c = 'a';
  for (auto s : sizes) out.emplace_back(s, c++);
  return out;
}

// Where record i starts in the body of `records`.
std::size_t offset_of(const std::vector<std::string>& records, std::size_t i) {
  std::size_t at = 0;
  for (std::size_t k = 0; k < i; ++k) at += wire::record_prefix_size + records[k].size();
  return at;
}

// `runs` runs of one record over a limit of 1, each after one within it (as relay_test does).
std::vector<std::string> alternating(std::size_t runs) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < runs; ++i) out.insert(out.end(), {"o", "xx"});
  return out;
}

std::vector<std::string> batch(const std::string& topic, const wire::batch_header& h,
                               const std::vector<std::string>& records) {
  return {topic, header_frame(h), body_of(records)};
}

std::vector<std::string_view> views_of(const std::vector<std::string>& frames) {
  return {frames.begin(), frames.end()};
}

const limits lim{1000, 512};

// The ack socket's first step on `frames`, all of them seen.
verdict acked(const std::vector<std::string>& frames, const limits& l = lim) {
  const auto f = views_of(frames);
  verdict v;
  judge_acked(f.data(), f.size(), l, v);
  return v;
}

// Both steps on the ack socket, for a batch the first step lets through, against `next`.
verdict in_session(const std::vector<std::string>& frames, std::uint64_t next, const limits& l = lim) {
  REQUIRE(frames.size() == 3);
  auto v = acked(frames, l);
  REQUIRE(v.what == action::forward);
  REQUIRE(v.refusals.empty());
  REQUIRE(v.malformed == 0);
  judge_in_session(frames[0], frames[2], next, l, v);
  return v;
}

// The verdict on a publisher-socket message; on every message judged here, the plain path's quick
// test agrees with it: it passes exactly what would be forwarded whole as one plain message.
verdict fire_and_forget(const std::vector<std::string>& frames, const limits& l = lim, bool truncated = false) {
  const auto f = views_of(frames);
  verdict v;
  const frames_view m{f.data(), f.size(), truncated};
  judge_fire_and_forget(m, l, v);
  const bool plain_forward = v.what == action::forward && v.whole && !v.batch && v.msgs == 1 && v.refusals.empty();
  CHECK(plain_within_limits(m, l) == plain_forward);
  return v;
}

// The one refusal of a verdict, checked to be one.
const refusal& only_refusal(const verdict& v) {
  REQUIRE(v.refusals.size() == 1);
  return v.refusals.front();
}

}  // namespace

// ---- the ack socket, step 1: shape (judge_acked) ----

TEST_CASE("ingress: an ack-socket message of other than 3 frames is one malformed message", "[ingress]") {
  const auto good = batch("t", acked_header(5, 10), records_of({1, 1, 1, 1, 1}));
  SECTION("0 to 5 frames after the routing id") {
    for (std::size_t n : {0u, 1u, 2u, 4u, 5u}) {
      CAPTURE(n);
      auto frames = good;
      frames.resize(n);
      const auto v = acked(frames);
      CHECK(v.what == action::refuse);
      CHECK(!v.batch);
      CHECK((v.msgs == 1 && v.malformed == 1 && v.refused == 0));
      const auto& r = only_refusal(v);
      CHECK(r.broken == rule::frames);
      CHECK(r.ack_socket);
      CHECK(r.figure == n);
      CHECK(r.counted == 1);
      // The NACK covers what a decodable header claims (frame 2 is there from 2 frames on).
      CHECK(r.count == (n >= 2 ? 5u : 1u));
      CHECK(r.seq == (n >= 2 ? 10u : 0u));
      CHECK(reason_of(r.broken) == wire::reason::malformed);
      CHECK(describe(r, lim) == "expected 3 frames [topic][header][body], got " + std::to_string(n));
    }
  }
  SECTION("exactly 3 frames is a batch") {
    const auto v = acked(good);
    CHECK(v.what == action::forward);
    CHECK(v.batch);
    CHECK(v.refusals.empty());
  }
  SECTION("more frames seen than given: the count seen is what it names") {
    const auto f = views_of(good);
    verdict v;
    judge_acked(f.data(), 70, lim, v);
    const auto& r = only_refusal(v);
    CHECK(r.figure == 70);
    CHECK(describe(r, lim) == "expected 3 frames [topic][header][body], got 70");
  }
  SECTION("a claimed count of 2^32 - 1 counts one message, whatever the header says") {
    auto h = acked_header(UINT32_MAX, 10);
    for (std::size_t n : {2u, 4u}) {
      CAPTURE(n);
      std::vector<std::string> frames{"t", header_frame(h), "", "extra"};
      frames.resize(n);
      const auto v = acked(frames);
      CHECK(v.msgs == 1);
      CHECK(v.malformed == 1);
      const auto& r = only_refusal(v);
      CHECK(r.counted == 1);
      CHECK(r.count == UINT32_MAX);  // the NACK still tells a wrongly framing client the batch's fate
    }
  }
  SECTION("an undecodable or other-version header in a wrong frame count: a NACK of one") {
    for (const auto& head : {std::string("ZR"), header_frame_version(acked_header(9), 2)}) {
      const auto v = acked({"t", head});
      const auto& r = only_refusal(v);
      CHECK(r.broken == rule::frames);
      CHECK((r.count == 1 && r.counted == 1 && v.msgs == 1 && v.malformed == 1));
    }
  }
}

TEST_CASE("ingress: an ack-socket header of another version is refused as unsupported, not malformed", "[ingress]") {
  SECTION("a whole header: the NACK covers its count") {
    const auto v = acked({"t", header_frame_version(acked_header(5, 10), 2), body_of({"a"})});
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 1 && v.malformed == 0));
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::version);
    CHECK(reason_of(r.broken) == wire::reason::unsupported_version);
    CHECK((r.seq == 10 && r.count == 5 && r.counted == 1 && r.figure == 2));
    CHECK(v.header.publisher == 7);  // the NACK names the publisher the header gave
    CHECK(describe(r, lim) == "this relay speaks protocol version 1, got 2");
  }
  SECTION("a header too short to hold a count: a NACK of one") {
    const auto v = acked({"t", std::string("ZR\x07", 3), ""});
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::version);
    CHECK((r.count == 1 && r.counted == 1 && r.seq == 0 && v.msgs == 1 && v.malformed == 0));
    CHECK(describe(r, lim) == "this relay speaks protocol version 1, got 7");
  }
  SECTION("a count of 0: a NACK of one") {
    const auto v = acked({"t", header_frame_version(acked_header(0, 3), 9), ""});
    const auto& r = only_refusal(v);
    CHECK((r.count == 1 && r.counted == 1 && r.seq == 3));
  }
}

TEST_CASE("ingress: an ack-socket header that does not decode is one malformed message", "[ingress]") {
  const auto good = header_frame(acked_header(3, 10));
  auto bad_kind = good;
  bad_kind[3] = 2;
  struct variant {
    std::string frame;
    wire::status status;
    const char* text;
  };
  const variant variants[] = {
      {"", wire::status::bad_magic, "header: not a zrelay frame (bad magic)"},
      {"XR" + good.substr(2), wire::status::bad_magic, "header: not a zrelay frame (bad magic)"},
      {good.substr(0, 39), wire::status::truncated, "header: truncated"},
      {good + "x", wire::status::trailing, "header: bytes left over after the last record"},
      {bad_kind, wire::status::bad_kind, "header: unexpected frame kind"},
      {header_frame(acked_header(0, 10)), wire::status::bad_count, "header: record count is zero"},
  };
  for (const auto& var : variants) {
    CAPTURE(var.text);
    const auto v = acked({"t", var.frame, body_of({"a", "b", "c"})});
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 1 && v.malformed == 1));
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::header);
    CHECK(r.status == var.status);
    CHECK((r.count == 1 && r.counted == 1));
    CHECK(reason_of(r.broken) == wire::reason::malformed);
    CHECK(describe(r, lim) == var.text);
  }
}

TEST_CASE("ingress: an ack-socket body that does not hold its count is one malformed message", "[ingress]") {
  struct variant {
    std::string body;
    wire::status status;
    const char* text;
  };
  const variant variants[] = {
      {body_of({"a", "b"}), wire::status::truncated, "body: truncated"},
      {body_of({"a", "b"}) + std::string("\0\0\0\x09xy", 6), wire::status::bad_length,
       "body: record length runs past the end of the body"},
      {body_of({"a", "b", "c", "d"}), wire::status::trailing, "body: bytes left over after the last record"},
  };
  for (const auto& var : variants) {
    CAPTURE(var.text);
    const auto v = acked({"t", header_frame(acked_header(3, 10)), var.body});
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 1 && v.malformed == 1));
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::body);
    CHECK(r.status == var.status);
    CHECK((r.seq == 10 && r.count == 3 && r.counted == 1));  // the NACK covers the count, the counters take one
    CHECK(describe(r, lim) == var.text);
  }
}

// ---- the ack socket, step 2: sequence fields (judge_acked) ----

TEST_CASE("ingress: an ack-socket header that breaks a sequence rule changes nothing", "[ingress]") {
  const auto records = records_of({1, 1, 1});
  const auto refused = [&](const wire::batch_header& h) {
    const auto v = acked(batch("t", h, records));
    CHECK(v.what == action::refuse);
    CHECK(!v.batch);
    CHECK((v.msgs == 3 && v.malformed == 1));
    const auto& r = only_refusal(v);
    CHECK((r.seq == h.seq && r.count == 3 && r.counted == 3));
    CHECK(reason_of(r.broken) == wire::reason::malformed);
    return r;
  };
  SECTION("publisher id 0 or seq 0") {
    auto h = acked_header(3, 5);
    h.publisher = 0;
    auto r = refused(h);
    CHECK(r.broken == rule::zero_id);
    CHECK(describe(r, lim) == "publisher id and sequence must not be zero on the ack socket");
    h = acked_header(3, 5);
    h.seq = 0;
    r = refused(h);
    CHECK(r.broken == rule::zero_id);
  }
  SECTION("ack floor 0") {
    auto h = acked_header(3, 5);
    h.ack_floor = 0;
    const auto r = refused(h);
    CHECK(r.broken == rule::floor_zero);
    CHECK(describe(r, lim) ==
          "the ack floor must be set on the ack socket (the oldest sequence not yet acknowledged, 1 or more)");
  }
  SECTION("ack floor above the batch's seq; at it is fine") {
    auto h = acked_header(3, 5);
    h.ack_floor = 6;
    const auto r = refused(h);
    CHECK(r.broken == rule::floor_above_seq);
    CHECK(r.figure == 6);
    CHECK(describe(r, lim) ==
          "ack floor 6 is above the batch's sequence 5 (a batch is unacknowledged until the relay acks it)");
    h.ack_floor = 5;
    CHECK(acked(batch("t", h, records)).what == action::forward);
    h.ack_floor = 1;
    CHECK(acked(batch("t", h, records)).what == action::forward);
  }
  SECTION("seq + count past the last sequence number; up to it is fine") {
    auto h = acked_header(3, last - 2);
    auto r = refused(h);
    CHECK(r.broken == rule::seq_wraps);
    CHECK(describe(r, lim) == "sequence 18446744073709551613 + count 3 runs past the last sequence number");
    h = acked_header(3, last - 3);
    const auto v = acked(batch("t", h, records));
    CHECK(v.what == action::forward);
    CHECK(v.end == last);
  }
  SECTION("topic seq + count past the last sequence number; up to it is fine") {
    auto h = acked_header(3, 5);
    h.topic_seq = last - 2;
    auto r = refused(h);
    CHECK(r.broken == rule::topic_seq_wraps);
    CHECK(r.figure == last - 2);
    CHECK(describe(r, lim) == "topic sequence 18446744073709551613 + count 3 runs past the last sequence number");
    h.topic_seq = last - 3;
    CHECK(acked(batch("t", h, records)).what == action::forward);
  }
  SECTION("the first rule broken is the one named") {
    auto h = acked_header(3, last);
    h.publisher = 0;
    h.ack_floor = 0;
    CHECK(refused(h).broken == rule::zero_id);
    h.publisher = 7;
    CHECK(refused(h).broken == rule::floor_zero);
    h.ack_floor = last;
    CHECK(refused(h).broken == rule::seq_wraps);
  }
}

TEST_CASE("ingress: an ack-socket batch that keeps the first rules goes on to the session", "[ingress]") {
  const auto v = acked(batch("t", acked_header(4, 10), records_of({1, 2, 3, 4})));
  CHECK(v.what == action::forward);
  CHECK(v.batch);
  CHECK(v.whole);
  CHECK((v.header.seq == 10 && v.header.count == 4 && v.header.publisher == 7));
  CHECK(v.end == 14);
  CHECK((v.msgs == 4 && v.malformed == 0 && v.refused == 0));
  CHECK(v.refusals.empty());
  CHECK(v.kept.empty());
  SECTION("one record over the size limit: not whole, for the session to split") {
    const auto big = acked(batch("t", acked_header(2, 10), records_of({1, 1001})));
    CHECK(big.what == action::forward);
    CHECK(!big.whole);
    CHECK(big.refusals.empty());
  }
}

// ---- the ack socket, steps 3 and 4: where the batch falls, content (judge_in_session) ----

TEST_CASE("ingress: where an ack-socket batch falls against the publisher's next sequence", "[ingress]") {
  const auto frames = batch("t", acked_header(3, 10), records_of({1, 1, 1}));  // 10, 11, 12
  SECTION("all below next: a duplicate") {
    for (std::uint64_t next : {13u, 14u, 1000u}) {
      CAPTURE(next);
      const auto v = in_session(frames, next);
      CHECK(v.what == action::duplicate);
      CHECK(v.refusals.empty());
      CHECK(v.malformed == 0);
    }
  }
  SECTION("starting after next: expect") {
    for (std::uint64_t next : {1u, 9u}) {
      CAPTURE(next);
      const auto v = in_session(frames, next);
      CHECK(v.what == action::expect);
      CHECK(v.refusals.empty());
      CHECK(v.malformed == 0);
    }
  }
  SECTION("starting before next and ending after it: refused whole for overlapping") {
    for (std::uint64_t next : {11u, 12u}) {
      CAPTURE(next);
      const auto v = in_session(frames, next);
      CHECK(v.what == action::refuse_batch);
      CHECK(v.malformed == 1);
      const auto& r = only_refusal(v);
      CHECK(r.broken == rule::overlap);
      CHECK((r.seq == 10 && r.count == 3 && r.counted == 3 && r.figure == next));
      CHECK(reason_of(r.broken) == wire::reason::malformed);
      CHECK(describe(r, lim) ==
            "batch overlaps messages already accepted (sequence 10, expected " + std::to_string(next) + ")");
    }
  }
  SECTION("starting at next: forwarded whole") {
    const auto v = in_session(frames, 10);
    CHECK(v.what == action::forward);
    CHECK(v.whole);
    CHECK(v.refusals.empty());
    CHECK(v.kept.empty());
    CHECK((v.msgs == 3 && v.malformed == 0 && v.end == 13));
  }
  SECTION("a duplicate or an overlap is judged before the content") {
    const auto empty_topic = batch("", acked_header(3, 10), records_of({1, 1, 1}));
    CHECK(in_session(empty_topic, 13).what == action::duplicate);
    CHECK(in_session(empty_topic, 9).what == action::expect);
    CHECK(only_refusal(in_session(empty_topic, 11)).broken == rule::overlap);
  }
}

TEST_CASE("ingress: an ack-socket batch at next is refused for good for its topic", "[ingress]") {
  SECTION("an empty topic") {
    const auto v = in_session(batch("", acked_header(3, 10), records_of({1, 1, 1})), 10);
    CHECK(v.what == action::refuse_batch);
    CHECK(v.malformed == 1);
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::empty_topic);
    CHECK((r.seq == 10 && r.count == 3 && r.counted == 3));
    CHECK(reason_of(r.broken) == wire::reason::malformed);
    CHECK(describe(r, lim) == "the topic must not be empty on the ack socket");
  }
  SECTION("a topic over the limit; at it is fine") {
    const auto v = in_session(batch(std::string(513, 't'), acked_header(3, 10), records_of({1, 1, 1})), 10);
    CHECK(v.what == action::refuse_batch);
    CHECK(v.malformed == 0);
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::long_topic);
    CHECK((r.seq == 10 && r.count == 3 && r.counted == 3 && r.size == 513));
    CHECK(reason_of(r.broken) == wire::reason::too_large);
    CHECK(describe(r, lim) == "a topic of 513 bytes exceeds the limit of 512");
    CHECK(in_session(batch(std::string(512, 't'), acked_header(3, 10), records_of({1, 1, 1})), 10).what ==
          action::forward);
  }
  SECTION("topic seq 0") {
    auto h = acked_header(3, 10);
    h.topic_seq = 0;
    const auto v = in_session(batch("t", h, records_of({1, 1, 1})), 10);
    CHECK(v.what == action::refuse_batch);
    CHECK(v.malformed == 1);
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::topic_seq_zero);
    CHECK((r.seq == 10 && r.count == 3 && r.counted == 3));
    CHECK(reason_of(r.broken) == wire::reason::malformed);
    CHECK(describe(r, lim) == "the topic sequence must not be zero on the ack socket (it starts at 1 for each topic)");
  }
  SECTION("the topic's rules before the records' sizes") {
    const auto v = in_session(batch("", acked_header(2, 10), records_of({1, 2000})), 10);
    CHECK(only_refusal(v).broken == rule::empty_topic);
    CHECK(v.kept.empty());
  }
}

TEST_CASE("ingress: oversized records of an ack-socket batch are refused in runs, the others kept", "[ingress]") {
  const limits small{10, 512};
  SECTION("runs inside the batch") {
    // 10: 1, 11-12: over, 13: 2, 14: over, 15: 3
    const auto records = records_of({1, 20, 15, 2, 30, 3});
    const auto v = in_session(batch("t", acked_header(6, 10), records), 10, small);
    CHECK(v.what == action::forward);
    CHECK(!v.whole);
    CHECK((v.msgs == 6 && v.malformed == 0 && v.end == 16));
    REQUIRE(v.kept.size() == 3);
    const std::uint32_t first[] = {0, 3, 5};
    for (std::size_t k = 0; k < 3; ++k) {
      CAPTURE(k);
      const auto& run = v.kept[k];
      CHECK((run.first == first[k] && run.count == 1));
      CHECK(run.from == offset_of(records, first[k]));
      CHECK(run.to == offset_of(records, first[k] + 1));
      CHECK(run.largest == records[first[k]].size());
    }
    REQUIRE(v.refusals.size() == 2);
    const auto& a = v.refusals[0];
    CHECK(a.broken == rule::too_large);
    CHECK((a.seq == 11 && a.count == 2 && a.counted == 2 && a.figure == 2 && a.size == 20));
    CHECK(reason_of(a.broken) == wire::reason::too_large);
    CHECK(describe(a, small) == "2 messages of up to 20 bytes exceed the limit of 10");
    const auto& b = v.refusals[1];
    CHECK((b.seq == 14 && b.count == 1 && b.counted == 1 && b.figure == 1 && b.size == 30));
    CHECK(describe(b, small) == "a message of 30 bytes exceeds the limit of 10");
  }
  SECTION("runs at both ends: one kept run in the middle, its bytes length prefixes included") {
    const auto records = records_of({11, 4, 5, 6, 12, 13});
    const auto body = body_of(records);
    const auto v = in_session({"t", header_frame(acked_header(6, 10)), body}, 10, small);
    REQUIRE(v.kept.size() == 1);
    const auto& run = v.kept[0];
    CHECK((run.first == 1 && run.count == 3 && run.largest == 6));
    CHECK(run.from == 4 + 11);
    CHECK(run.to == run.from + 3 * 4 + 4 + 5 + 6);
    CHECK(body.substr(run.from, run.to - run.from) == body_of({records[1], records[2], records[3]}));
    REQUIRE(v.refusals.size() == 2);
    CHECK((v.refusals[0].seq == 10 && v.refusals[0].count == 1 && v.refusals[0].size == 11));
    CHECK((v.refusals[1].seq == 14 && v.refusals[1].count == 2 && v.refusals[1].size == 13));
  }
  SECTION("every record over the limit: nothing kept, one NACK for the run") {
    const auto v = in_session(batch("t", acked_header(3, 10), records_of({11, 12, 11})), 10, small);
    CHECK(v.what == action::forward);
    CHECK(!v.whole);
    CHECK(v.kept.empty());
    const auto& r = only_refusal(v);
    CHECK((r.broken == rule::too_large && r.seq == 10 && r.count == 3 && r.counted == 3 && r.size == 12));
    CHECK(describe(r, small) == "3 messages of up to 12 bytes exceed the limit of 10");
  }
  SECTION("64 runs: a NACK each, seqs 2, 4, ... (as relay_test sees them)") {
    const limits one{1, 512};
    const auto v = in_session(batch("t", acked_header(128, 1), alternating(64)), 1, one);
    CHECK(v.what == action::forward);
    REQUIRE(v.refusals.size() == 64);
    REQUIRE(v.kept.size() == 64);
    for (std::size_t i = 0; i < 64; ++i) {
      CAPTURE(i);
      CHECK((v.refusals[i].seq == 2 + 2 * i && v.refusals[i].count == 1));
      CHECK(describe(v.refusals[i], one) == "a message of 2 bytes exceeds the limit of 1");
      CHECK((v.kept[i].first == 2 * i && v.kept[i].count == 1));
    }
  }
  SECTION("more than 64 runs: the whole batch refused with one NACK") {
    const limits one{1, 512};
    const auto v = in_session(batch("t", acked_header(130, 1), alternating(65)), 1, one);
    CHECK(v.what == action::refuse_batch);
    CHECK(v.kept.empty());
    CHECK(v.malformed == 0);
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::too_many_runs);
    CHECK((r.seq == 1 && r.count == 130 && r.counted == 130 && r.figure == 65 && r.other == 65 && r.size == 2));
    CHECK(reason_of(r.broken) == wire::reason::too_large);
    CHECK(describe(r, one) == "65 messages of up to 2 bytes exceed the limit of 1 in 65 runs (more than 64 runs in "
                              "one batch: the whole batch of 130 messages is refused)");
  }
  SECTION("no size limit: nothing is over it") {
    const auto v = in_session(batch("t", acked_header(2, 10), records_of({1, 100000})), 10, {0, 512});
    CHECK(v.what == action::forward);
    CHECK(v.whole);
    CHECK(v.refusals.empty());
  }
}

TEST_CASE("ingress: split_runs cuts a body into runs within and over the limit", "[ingress]") {
  const auto records = records_of({0, 3, 9, 9, 2, 0, 12});
  const auto body = body_of(records);
  std::vector<record_run> kept, over;
  SECTION("with a limit") {
    split_runs(body, 7, 8, kept, over);
    REQUIRE(kept.size() == 2);
    REQUIRE(over.size() == 2);
    CHECK((kept[0].first == 0 && kept[0].count == 2 && kept[0].from == 0 && kept[0].to == offset_of(records, 2) &&
           kept[0].largest == 3));
    CHECK((over[0].first == 2 && over[0].count == 2 && over[0].from == offset_of(records, 2) &&
           over[0].to == offset_of(records, 4) && over[0].largest == 9));
    CHECK((kept[1].first == 4 && kept[1].count == 2 && kept[1].from == offset_of(records, 4) &&
           kept[1].to == offset_of(records, 6) && kept[1].largest == 2));
    CHECK((over[1].first == 6 && over[1].count == 1 && over[1].from == offset_of(records, 6) &&
           over[1].to == body.size() && over[1].largest == 12));
  }
  SECTION("without one: a single kept run, the whole body") {
    split_runs(body, 7, 0, kept, over);
    REQUIRE(kept.size() == 1);
    CHECK(over.empty());
    CHECK((kept[0].first == 0 && kept[0].count == 7 && kept[0].from == 0 && kept[0].to == body.size() &&
           kept[0].largest == 12));
  }
}

TEST_CASE("ingress: a verdict reused for the next message starts clean", "[ingress]") {
  verdict v;
  const limits small{10, 512};
  const auto split = batch("t", acked_header(3, 10), records_of({1, 20, 1}));
  auto f = views_of(split);
  judge_acked(f.data(), f.size(), small, v);
  judge_in_session(f[0], f[2], 10, small, v);
  REQUIRE((v.refusals.size() == 1 && v.kept.size() == 2 && !v.whole));
  const auto good = batch("t", acked_header(2, 13), records_of({1, 1}));
  f = views_of(good);
  judge_acked(f.data(), f.size(), small, v);
  judge_in_session(f[0], f[2], 13, small, v);
  CHECK(v.what == action::forward);
  CHECK(v.whole);
  CHECK(v.refusals.empty());
  CHECK(v.kept.empty());
  CHECK((v.msgs == 2 && v.end == 15));
  const std::vector<std::string> plain{"t", "x"};
  f = views_of(plain);
  judge_fire_and_forget({f.data(), f.size(), false}, small, v);
  CHECK(!v.batch);
  CHECK((v.header.seq == 0 && v.end == 0 && v.msgs == 1));
}

// ---- the publisher socket (judge_fire_and_forget) ----

TEST_CASE("ingress: plain fire-and-forget messages are held to the topic and size limits", "[ingress]") {
  const limits l{16, 512};
  const auto forwarded = [](const std::vector<std::string>& frames, const limits& with) {
    const auto v = fire_and_forget(frames, with);
    CHECK(v.what == action::forward);
    CHECK(v.whole);
    CHECK(!v.batch);
    CHECK((v.msgs == 1 && v.malformed == 0 && v.refused == 0));
    CHECK(v.refusals.empty());
  };
  const auto too_large = [&](const std::vector<std::string>& frames, std::size_t payload) {
    const auto v = fire_and_forget(frames, l);
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 1 && v.malformed == 0 && v.refused == 1));
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::too_large);
    CHECK((r.counted == 1 && r.figure == 1 && r.size == payload));
    CHECK(describe(r, l) == "a message of " + std::to_string(payload) + " bytes exceeds the limit of 16");
  };
  const auto long_topic = [&](const std::vector<std::string>& frames) {
    const auto v = fire_and_forget(frames, l);
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 1 && v.malformed == 0 && v.refused == 1));
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::long_topic);
    CHECK((r.counted == 1 && r.size == frames[0].size()));
    CHECK(describe(r, l) == "a topic of " + std::to_string(frames[0].size()) + " bytes exceeds the limit of 512");
  };
  SECTION("one frame: all topic, not held to the topic limit; its payload is the frame") {
    forwarded({std::string(16, 'x')}, l);
    forwarded({""}, l);
    forwarded({std::string(600, 'x')}, {1000, 512});
    forwarded({std::string(600, 'x')}, {0, 512});
    too_large({std::string(17, 'x')}, 17);
  }
  SECTION("two frames: a topic frame held to the topic limit, a payload to the size limit") {
    forwarded({std::string(512, 't'), std::string(16, 'x')}, l);
    long_topic({std::string(513, 't'), "x"});
    long_topic({std::string(513, 't'), std::string(17, 'x')});  // the topic first
    too_large({"t", std::string(17, 'x')}, 17);
    forwarded({"t", std::string(100000, 'x')}, {0, 512});
  }
  SECTION("many frames: the payload is every frame after the topic") {
    forwarded({std::string(100, 't'), "12345", "123456", "12345"}, l);
    too_large({"t", "12345", "123456", "123456"}, 17);
    long_topic({std::string(513, 't'), "a", "b"});
    std::vector<std::string> frames(max_frames, "");
    frames[0] = "t";
    frames[max_frames - 1] = std::string(16, 'x');
    forwarded(frames, l);
    frames[1] = "x";
    too_large(frames, 17);
  }
  SECTION("more than 64 frames: dropped as one malformed message") {
    const std::vector<std::string> frames(max_frames, "t");
    const auto v = fire_and_forget(frames, l, true);
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 1 && v.malformed == 1 && v.refused == 0));
    const auto& r = only_refusal(v);
    CHECK(r.broken == rule::frames);
    CHECK(!r.ack_socket);
    CHECK(reason_of(r.broken) == wire::reason::malformed);
    CHECK(describe(r, l) == "more than 64 frames");
    // Whatever its frames look like: a batch's three and more.
    const auto b = fire_and_forget({"t", header_frame(acked_header(1)), body_of({"a"})}, l, true);
    CHECK((b.what == action::refuse && !b.batch && only_refusal(b).broken == rule::frames));
  }
  SECTION("three frames whose second does not look like a batch header are a plain message") {
    auto ack_kind = header_frame(acked_header(1));
    ack_kind[3] = 2;
    for (const auto& second : {std::string("ZR\x01", 3), ack_kind, std::string("hello")}) {
      const auto v = fire_and_forget({"t", second, "x"}, {0, 512});
      CHECK(v.what == action::forward);
      CHECK(!v.batch);
      CHECK(v.msgs == 1);
    }
  }
  SECTION("a batch header in two or four frames is a plain message") {
    const auto head = header_frame(acked_header(1000));
    const auto two = fire_and_forget({"t", head}, {0, 512});
    CHECK((two.what == action::forward && !two.batch && two.msgs == 1));
    const auto four = fire_and_forget({"t", head, body_of({"a"}), "x"}, {0, 512});
    CHECK((four.what == action::forward && !four.batch && four.msgs == 1));
    // ... and held to the size limit as one.
    CHECK(only_refusal(fire_and_forget({"t", head}, {39, 512})).broken == rule::too_large);
  }
}

namespace {

// A fire-and-forget publisher's header: no ack floor.
wire::batch_header ff_header(std::uint32_t count, std::uint64_t seq = 1) {
  auto h = acked_header(count, seq);
  h.publisher = 5;
  h.topic_seq = seq;
  h.ack_floor = 0;
  return h;
}

}  // namespace

TEST_CASE("ingress: a fire-and-forget batch is held to the ack socket's shape and size rules", "[ingress]") {
  const auto records = records_of({1, 2, 3});
  SECTION("one that keeps them is forwarded as it came") {
    const auto v = fire_and_forget(batch("t", ff_header(3, 20), records));
    CHECK(v.what == action::forward);
    CHECK(v.whole);
    CHECK(v.batch);
    CHECK((v.msgs == 3 && v.malformed == 0 && v.refused == 0 && v.end == 23));
    CHECK(v.refusals.empty());
  }
  SECTION("not to the sequence rules: ids, floor, topic seq, the empty topic") {
    auto h = ff_header(3, 20);
    h.publisher = 0;
    h.seq = 0;
    h.topic_seq = 0;
    h.ack_floor = 0;
    CHECK(fire_and_forget(batch("", h, records)).what == action::forward);
    h.ack_floor = 1000;
    CHECK(fire_and_forget(batch("t", h, records)).what == action::forward);
  }
  SECTION("another version: dropped as one malformed message") {
    const auto v = fire_and_forget({"t", header_frame_version(ff_header(3), 2), body_of(records)});
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 1 && v.malformed == 1 && v.refused == 0));
    const auto& r = only_refusal(v);
    CHECK((r.broken == rule::version && r.counted == 1));
    CHECK(describe(r, lim) == "this relay speaks protocol version 1, got 2");
  }
  SECTION("a header that does not decode: dropped as one malformed message") {
    const std::string heads[] = {std::string("ZR\x01\x01", 4), header_frame(ff_header(0)),
                                 header_frame(ff_header(3)) + "x"};
    for (const auto& head : heads) {
      const auto v = fire_and_forget({"t", head, body_of(records)});
      CHECK(v.what == action::refuse);
      CHECK(!v.batch);
      CHECK((v.msgs == 1 && v.malformed == 1 && v.refused == 0));
      const auto& r = only_refusal(v);
      CHECK((r.broken == rule::header && r.counted == 1));
    }
    CHECK(describe(only_refusal(fire_and_forget({"t", std::string("ZR\x01\x01", 4), ""})), lim) == "header: truncated");
  }
  SECTION("a body that does not hold its count: dropped as one malformed message") {
    const auto v = fire_and_forget({"t", header_frame(ff_header(4)), body_of(records) + "x"});
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 1 && v.malformed == 1 && v.refused == 0));
    const auto& r = only_refusal(v);
    CHECK((r.broken == rule::body && r.count == 1 && r.counted == 1 && r.status == wire::status::truncated));
    CHECK(describe(r, lim) == "body: truncated");
  }
  SECTION("seq or topic seq + count past the last sequence number: dropped as one malformed batch") {
    auto h = ff_header(3, last - 1);
    auto v = fire_and_forget(batch("t", h, records));
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 3 && v.malformed == 1 && v.refused == 0));
    CHECK(only_refusal(v).broken == rule::seq_wraps);
    CHECK(describe(only_refusal(v), lim) ==
          "sequence 18446744073709551614 + count 3 runs past the last sequence number");
    h = ff_header(3, 1);
    h.topic_seq = last;
    v = fire_and_forget(batch(std::string(600, 't'), h, records));  // the wrap before the topic
    CHECK((v.what == action::refuse && v.malformed == 1 && v.refused == 0));
    CHECK(only_refusal(v).broken == rule::topic_seq_wraps);
    CHECK(describe(only_refusal(v), lim) ==
          "topic sequence 18446744073709551615 + count 3 runs past the last sequence number");
    h.topic_seq = last - 3;
    CHECK(fire_and_forget(batch("t", h, records)).what == action::forward);
  }
  SECTION("a topic over the limit: every record dropped as refused") {
    const auto v = fire_and_forget(batch(std::string(513, 't'), ff_header(3), records));
    CHECK(v.what == action::refuse);
    CHECK((v.msgs == 3 && v.malformed == 0 && v.refused == 3));
    const auto& r = only_refusal(v);
    CHECK((r.broken == rule::long_topic && r.counted == 3 && r.size == 513));
    CHECK(describe(r, lim) == "a topic of 513 bytes exceeds the limit of 512");
    CHECK(fire_and_forget(batch(std::string(512, 't'), ff_header(3), records)).what == action::forward);
  }
  SECTION("oversized records: dropped as refused in runs, the others forwarded") {
    const limits small{10, 512};
    const auto big = records_of({1, 20, 15, 2, 30});
    const auto v = fire_and_forget(batch("t", ff_header(5, 100), big), small);
    CHECK(v.what == action::forward);
    CHECK(!v.whole);
    CHECK((v.msgs == 5 && v.malformed == 0 && v.refused == 3));
    REQUIRE(v.kept.size() == 2);
    CHECK((v.kept[0].first == 0 && v.kept[0].count == 1 && v.kept[0].from == 0 && v.kept[0].to == 5));
    CHECK((v.kept[1].first == 3 && v.kept[1].count == 1 && v.kept[1].from == offset_of(big, 3) &&
           v.kept[1].to == offset_of(big, 4)));
    REQUIRE(v.refusals.size() == 2);
    CHECK((v.refusals[0].seq == 101 && v.refusals[0].counted == 2 && v.refusals[0].size == 20));
    CHECK(describe(v.refusals[0], small) == "2 messages of up to 20 bytes exceed the limit of 10");
    CHECK((v.refusals[1].seq == 104 && v.refusals[1].counted == 1 && v.refusals[1].size == 30));
    CHECK(describe(v.refusals[1], small) == "a message of 30 bytes exceeds the limit of 10");
  }
  SECTION("every record oversized: nothing forwarded") {
    const auto v = fire_and_forget(batch("t", ff_header(2), records_of({11, 12})), {10, 512});
    CHECK(v.what == action::forward);
    CHECK(!v.whole);
    CHECK(v.kept.empty());
    CHECK((v.msgs == 2 && v.refused == 2 && v.malformed == 0));
  }
  SECTION("64 runs: each dropped, the rest forwarded") {
    const auto v = fire_and_forget(batch("t", ff_header(128), alternating(64)), {1, 512});
    CHECK(v.what == action::forward);
    CHECK((v.kept.size() == 64 && v.refusals.size() == 64 && v.refused == 64));
  }
  SECTION("more than 64 runs: the whole batch dropped as refused") {
    const limits one{1, 512};
    const auto v = fire_and_forget(batch("t", ff_header(130), alternating(65)), one);
    CHECK(v.what == action::refuse);
    CHECK(v.kept.empty());
    CHECK((v.msgs == 130 && v.refused == 130 && v.malformed == 0));
    const auto& r = only_refusal(v);
    CHECK((r.broken == rule::too_many_runs && r.counted == 130 && r.figure == 65 && r.other == 65));
    CHECK(describe(r, one) == "65 messages of up to 2 bytes exceed the limit of 1 in 65 runs (more than 64 runs in "
                              "one batch: the whole batch of 130 messages is refused)");
  }
}

// ---- texts and reasons ----

TEST_CASE("ingress: each rule's NACK reason", "[ingress]") {
  const std::pair<rule, wire::reason> table[] = {
      {rule::frames, wire::reason::malformed},          {rule::version, wire::reason::unsupported_version},
      {rule::header, wire::reason::malformed},          {rule::body, wire::reason::malformed},
      {rule::zero_id, wire::reason::malformed},         {rule::floor_zero, wire::reason::malformed},
      {rule::floor_above_seq, wire::reason::malformed}, {rule::seq_wraps, wire::reason::malformed},
      {rule::topic_seq_wraps, wire::reason::malformed}, {rule::overlap, wire::reason::malformed},
      {rule::empty_topic, wire::reason::malformed},     {rule::long_topic, wire::reason::too_large},
      {rule::topic_seq_zero, wire::reason::malformed},  {rule::too_large, wire::reason::too_large},
      {rule::too_many_runs, wire::reason::too_large},
  };
  STATIC_REQUIRE(std::size(table) == static_cast<std::size_t>(rule::count_));
  for (const auto& [r, why] : table) {
    CAPTURE(static_cast<std::size_t>(r));
    CHECK(reason_of(r) == why);
  }
}

TEST_CASE("ingress: describe gives each rule's text with its figures", "[ingress]") {
  // The texts docs/PROTOCOL.md quotes; tests/relay_test.cpp sees them in NACKs and the log.
  const limits l{1048576, 1024};
  const auto text = [&](rule broken, auto&& set) {
    refusal r;
    r.broken = broken;
    set(r);
    return describe(r, l);
  };
  const auto none = [](refusal&) {};
  CHECK(text(rule::frames, [](refusal& r) { r.ack_socket = true, r.figure = 2; }) ==
        "expected 3 frames [topic][header][body], got 2");
  CHECK(text(rule::frames, none) == "more than 64 frames");
  CHECK(text(rule::version, [](refusal& r) { r.figure = 255; }) == "this relay speaks protocol version 1, got 255");
  CHECK(text(rule::header, [](refusal& r) { r.status = wire::status::bad_magic; }) ==
        "header: not a zrelay frame (bad magic)");
  CHECK(text(rule::body, [](refusal& r) { r.status = wire::status::trailing; }) ==
        "body: bytes left over after the last record");
  CHECK(text(rule::zero_id, none) == "publisher id and sequence must not be zero on the ack socket");
  CHECK(text(rule::floor_zero, none) ==
        "the ack floor must be set on the ack socket (the oldest sequence not yet acknowledged, 1 or more)");
  CHECK(text(rule::floor_above_seq, [](refusal& r) { r.figure = 100, r.seq = 12; }) ==
        "ack floor 100 is above the batch's sequence 12 (a batch is unacknowledged until the relay acks it)");
  CHECK(text(rule::seq_wraps, [](refusal& r) { r.seq = last - 1, r.count = 2; }) ==
        "sequence 18446744073709551614 + count 2 runs past the last sequence number");
  CHECK(text(rule::topic_seq_wraps, [](refusal& r) { r.figure = last, r.count = 1; }) ==
        "topic sequence 18446744073709551615 + count 1 runs past the last sequence number");
  CHECK(text(rule::overlap, [](refusal& r) { r.seq = 3, r.figure = 5; }) ==
        "batch overlaps messages already accepted (sequence 3, expected 5)");
  CHECK(text(rule::empty_topic, none) == "the topic must not be empty on the ack socket");
  CHECK(text(rule::long_topic, [](refusal& r) { r.size = 2000; }) == "a topic of 2000 bytes exceeds the limit of 1024");
  CHECK(text(rule::topic_seq_zero, none) ==
        "the topic sequence must not be zero on the ack socket (it starts at 1 for each topic)");
  CHECK(text(rule::too_large, [](refusal& r) { r.figure = 1, r.size = 2000000; }) ==
        "a message of 2000000 bytes exceeds the limit of 1048576");
  CHECK(text(rule::too_large, [](refusal& r) { r.figure = 3, r.size = 2000000; }) ==
        "3 messages of up to 2000000 bytes exceed the limit of 1048576");
  CHECK(text(rule::too_many_runs, [](refusal& r) { r.figure = 70, r.size = 9, r.other = 65, r.count = 140; }) ==
        "70 messages of up to 9 bytes exceed the limit of 1048576 in 65 runs (more than 64 runs in one batch: the "
        "whole batch of 140 messages is refused)");
}
