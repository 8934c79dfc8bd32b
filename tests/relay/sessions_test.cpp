// The relay's sessions: what it knows of each acked publisher, and when an ACK may go. No sockets.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "relay/sessions.hpp"

using namespace std::chrono_literals;
using zrelay::sessions;

namespace {

zrelay::wire::batch_header header(std::uint64_t publisher, std::uint64_t seq, std::uint32_t count,
                                  std::uint64_t floor) {
  zrelay::wire::batch_header h;
  h.publisher = publisher;
  h.seq = seq;
  h.count = count;
  h.topic_seq = seq;
  h.ack_floor = floor;
  return h;
}

struct sent_ack {
  std::string route;
  std::uint64_t publisher, seq;
};

std::vector<sent_ack> flush(sessions& s) {
  std::vector<sent_ack> out;
  s.flush_acks([&](std::string_view route, const zrelay::wire::reply& r) {
    CHECK(r.type == zrelay::wire::kind::ack);
    out.push_back({std::string(route), r.publisher, r.seq});
  });
  return out;
}

const auto t0 = sessions::clock::time_point{} + 1h;

}  // namespace

TEST_CASE("sessions start a new publisher at its ack floor and move a known one on by its floor", "[sessions]") {
  sessions s;
  bool fresh = false;
  auto& st = s.touch(header(7, 100, 5, 100), "route-a", t0, fresh);
  CHECK(fresh);
  CHECK(st.next == 100);
  CHECK(st.acked == 100);
  CHECK(st.route == "route-a");
  CHECK(s.size() == 1);
  // The same publisher from a new connection, its floor moved on by a relay before this one.
  auto& again = s.touch(header(7, 300, 1, 250), "route-b", t0 + 1s, fresh);
  CHECK_FALSE(fresh);
  CHECK(&again == &st);
  CHECK(st.next == 250);
  CHECK(st.acked == 250);
  CHECK(st.route == "route-b");
  // A lower floor moves nothing back.
  s.touch(header(7, 300, 1, 10), "route-b", t0 + 2s, fresh);
  CHECK(st.next == 250);
  CHECK(flush(s).empty());
}

TEST_CASE("sessions ack a batch only once its token is committed, once per flush", "[sessions]") {
  sessions s;
  bool fresh = false;
  auto& st = s.touch(header(1, 1, 10, 1), "r", t0, fresh);
  const auto t1 = s.accept(1, st, 11);
  CHECK(t1 != 0);
  CHECK(st.next == 11);  // the next batch may come
  CHECK(st.acked == 1);
  CHECK(s.pending() == 1);
  CHECK(flush(s).empty());  // accepted is not acked
  const auto t2 = s.accept(1, st, 21);
  CHECK(t2 != t1);
  s.commit(t1);
  s.commit(t2);
  const auto acks = flush(s);
  REQUIRE(acks.size() == 1);  // two commits, one cumulative ACK
  CHECK(acks[0].route == "r");
  CHECK(acks[0].publisher == 1);
  CHECK(acks[0].seq == 20);
  CHECK(s.pending() == 0);
  CHECK(st.pending == 0);
  CHECK(flush(s).empty());
}

TEST_CASE("sessions never ack past a token that is not committed yet", "[sessions]") {
  sessions s;
  bool fresh = false;
  auto& a = s.touch(header(1, 1, 10, 1), "a", t0, fresh);
  auto& b = s.touch(header(2, 1, 10, 1), "b", t0, fresh);
  const auto ta1 = s.accept(1, a, 11);
  const auto tb1 = s.accept(2, b, 11);
  const auto ta2 = s.accept(1, a, 21);
  // Committed out of order: nothing is acked until the oldest is.
  s.commit(ta2);
  s.commit(tb1);
  CHECK(flush(s).empty());
  s.commit(ta1);
  auto acks = flush(s);
  REQUIRE(acks.size() == 2);
  CHECK(acks[0].publisher == 1);
  CHECK(acks[0].seq == 20);
  CHECK(acks[1].publisher == 2);
  CHECK(acks[1].seq == 10);
  // A token committed twice, or one never issued, changes nothing.
  s.commit(ta1);
  s.commit(9999);
  s.abandon(9999);
  CHECK(flush(s).empty());
}

TEST_CASE("sessions take a batch back when its token is abandoned, and ack nothing accepted after it", "[sessions]") {
  sessions s;
  bool fresh = false;
  auto& st = s.touch(header(1, 1, 10, 1), "r", t0, fresh);
  const auto t1 = s.accept(1, st, 11);
  const auto t2 = s.accept(1, st, 21);
  const auto t3 = s.accept(1, st, 31);
  s.commit(t1);
  s.abandon(t2);
  s.commit(t3);  // follows the abandoned batch: an ACK for it would cover [11, 21)
  auto acks = flush(s);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].seq == 10);
  CHECK(st.next == 11);  // the resend of [11, 21) is accepted again, not taken for a duplicate
  CHECK(st.acked == 11);
  CHECK(st.pending == 0);
  const auto again = s.accept(1, st, 21);
  s.commit(again);
  acks = flush(s);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].seq == 20);
}

TEST_CASE("sessions ack a refused batch at once when nothing is pending", "[sessions]") {
  sessions s;
  bool fresh = false;
  auto& st = s.touch(header(3, 5, 2, 5), "r", t0, fresh);
  s.commit(s.accept(3, st, 7));
  const auto acks = flush(s);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].seq == 6);
}

TEST_CASE("sessions re-ack a duplicate with what is committed", "[sessions]") {
  sessions s;
  bool fresh = false;
  auto& st = s.touch(header(4, 1, 5, 1), "r", t0, fresh);
  s.commit(s.accept(4, st, 6));
  CHECK(flush(s).size() == 1);
  s.ack_again(4, st);
  s.ack_again(4, st);  // due once
  const auto acks = flush(s);
  REQUIRE(acks.size() == 1);
  CHECK(acks[0].seq == 5);
}

TEST_CASE("sessions send one EXPECT per sequence asked for, again after a while or after progress", "[sessions]") {
  sessions s;
  bool fresh = false;
  auto& st = s.touch(header(5, 1, 1, 1), "r", t0, fresh);
  CHECK(s.expect_due(st, t0, 1000ms));
  CHECK_FALSE(s.expect_due(st, t0 + 10ms, 1000ms));
  CHECK_FALSE(s.expect_due(st, t0 + 999ms, 1000ms));
  CHECK(s.expect_due(st, t0 + 1000ms, 1000ms));
  s.commit(s.accept(5, st, 2));  // progress: a new sequence is asked for at once
  CHECK(s.expect_due(st, t0 + 1001ms, 1000ms));
  CHECK(st.expected == 2);
}

TEST_CASE("sessions forget idle publishers, but not one with an ACK due or a batch pending", "[sessions]") {
  sessions s;
  bool fresh = false;
  auto& idle = s.touch(header(1, 1, 1, 1), "a", t0, fresh);
  auto& due = s.touch(header(2, 1, 1, 1), "b", t0, fresh);
  auto& pending = s.touch(header(3, 1, 1, 1), "c", t0, fresh);
  (void)idle;
  s.commit(s.accept(2, due, 2));
  const auto t = s.accept(3, pending, 2);
  s.touch(header(4, 1, 1, 1), "d", t0 + 9min, fresh);  // recent
  s.sweep(t0 + 10min + 1s, 10min);
  CHECK(s.find(1) == nullptr);
  CHECK(s.find(2) != nullptr);
  CHECK(s.find(3) != nullptr);
  CHECK(s.find(4) != nullptr);
  CHECK(flush(s).size() == 1);
  s.commit(t);
  CHECK(flush(s).size() == 1);
  s.sweep(t0 + 10min + 2s, 10min);
  CHECK(s.find(2) == nullptr);
  CHECK(s.find(3) == nullptr);
  CHECK(s.size() == 1);
}
