#include <catch2/catch.hpp>

#include <algorithm>

#include <condition_variable>

#include <poll.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "relay/journal.hpp"
#include "relay/log.hpp"
#include "relay/replay.hpp"
#include "replay_protocol.hpp"
#include "testutil.hpp"
#include "zrelay/record.hpp"
#include "zrelay/subscriber.hpp"

using namespace zrelay;
using namespace zrelay::test;
namespace rp = zrelay::replay_protocol;

namespace {

// A journal in a fresh temporary directory, written without fsync; the test thread is its relay
// thread (it appends and polls).
struct temp_journal {
  temp_journal() {
    char tmpl[] = "/tmp/zrelay-replay-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    journal::config c;
    c.dir = dir + "/j";
    c.fsync = false;
    store = std::make_unique<journal::store>(c);
  }
  ~temp_journal() {
    store.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  // Appends a batch of `payloads` on `topic` (publisher 7, topic seqs from `topic_seq`); returns its jseq.
  std::uint64_t batch(const std::string& topic, const std::vector<std::string>& payloads, std::uint64_t topic_seq = 1,
                      std::uint64_t time_ns = 0) {
    const auto f = test::batch(topic, 7, topic_seq, payloads, topic_seq);
    const std::string_view frames[] = {f[0], f[1], f[2]};
    return store->append(record::kind::batch, static_cast<std::uint32_t>(payloads.size()), frames, 3,
                         time_ns ? time_ns : ++clock_ns);
  }
  std::uint64_t plain(const std::string& topic, const std::string& payload, std::uint64_t time_ns = 0) {
    const std::string_view frames[] = {topic, payload};
    return store->append(record::kind::plain, 1, frames, 2, time_ns ? time_ns : ++clock_ns);
  }
  // Hands what was appended to the writer and waits until it is written (readable by replay).
  void written() {
    store->flush();
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (store->poll().written < store->next_jseq()) {
      REQUIRE(std::chrono::steady_clock::now() < until);
      pollfd p{store->notify_fd(), POLLIN, 0};
      (void)::poll(&p, 1, 100);
    }
  }

  std::string dir;
  std::unique_ptr<journal::store> store;
  std::uint64_t clock_ns = 1000;
};

// A replay server on an ephemeral port, over `j`.
struct server {
  server(zmq::context_t& ctx, const journal::store& store, replay_limits limits = {}, bool verbose = false) {
    relay_config c;
    c.journal.replay_bind = "tcp://127.0.0.1:*";
    c.heartbeat = 0ms;
    log.set(
        [this](std::string_view line) {
          {
            std::lock_guard<std::mutex> lock(mutex);
            lines.emplace_back(line);
          }
          logged.notify_all();
        },
        verbose);
    replay = std::make_unique<replay_server>(ctx, store, c, log, stats, limits);
  }
  /// Waits (up to the deadline) for a logged line that contains `text`.
  bool wait_logged(const std::string& text) {
    std::unique_lock<std::mutex> lock(mutex);
    return logged.wait_for(lock, deadline, [&] {
      return std::any_of(lines.begin(), lines.end(),
                         [&](const std::string& l) { return l.find(text) != std::string::npos; });
    });
  }
  relay_log log;
  relay_stats stats;
  std::mutex mutex;
  std::condition_variable logged;
  std::vector<std::string> lines;
  std::unique_ptr<replay_server> replay;
};

// One message a replay delivered.
struct msg {
  std::uint64_t jseq = 0;
  std::string topic, payload;
  std::uint64_t topic_seq = 0;
};

struct client {
  client(zmq::context_t& ctx, const std::string& ep) : s(ctx, zmq::socket_type::dealer) {
    s.set(zmq::sockopt::linger, 0);
    s.connect(ep);
  }
  void replay(rp::mode m, std::uint64_t value, std::uint32_t credit, const std::vector<std::string>& prefixes = {}) {
    rp::request r;
    r.mode = m;
    r.value = value;
    r.credit = credit;
    std::vector<std::string> parts{rp::encode_replay(r)};
    parts.insert(parts.end(), prefixes.begin(), prefixes.end());
    send_parts(s, parts);
  }
  void credit(std::uint32_t n) { send_parts(s, {rp::encode_credit(n)}); }
  std::vector<std::string> next() { return recv_parts(s); }
  // The next message, which must be of kind `k`.
  std::vector<std::string> expect(rp::kind k) {
    auto parts = next();
    REQUIRE(!parts.empty());
    const auto got = rp::kind_of(parts[0].data(), parts[0].size());
    REQUIRE(got);
    INFO("kind " << static_cast<int>(*got));
    REQUIRE(*got == k);
    return parts;
  }
  rp::start_info start() {
    const auto parts = expect(rp::kind::start);
    rp::start_info st;
    REQUIRE(parts.size() == 1);
    REQUIRE(rp::decode_start(parts[0].data(), parts[0].size(), st));
    return st;
  }
  std::uint8_t error() {
    const auto parts = expect(rp::kind::error);
    std::uint8_t code = 0;
    std::string_view text;
    REQUIRE(rp::decode_error(parts[0].data(), parts[0].size(), code, text));
    CHECK_FALSE(text.empty());
    return code;
  }
  // The next DATA's messages (its skipped count in `skipped`).
  std::vector<msg> data(std::uint64_t* skipped = nullptr) {
    const auto parts = expect(rp::kind::data);
    REQUIRE(parts.size() == 2);
    std::uint32_t entries = 0;
    std::uint64_t sk = 0;
    REQUIRE(rp::decode_data(parts[0].data(), parts[0].size(), entries, sk));
    if (skipped) *skipped = sk;
    std::vector<msg> out;
    std::size_t off = 0, seen = 0;
    while (off < parts[1].size()) {
      record::entry e;
      REQUIRE(record::decode(parts[1].data() + off, parts[1].size() - off, e) == record::status::ok);
      off += e.size;
      ++seen;
      if (e.what == record::kind::plain) {
        out.push_back({e.jseq, std::string(e.frames[0]), std::string(e.frames[1]), 0});
        continue;
      }
      wire::record_reader r(e.frames[2].data(), e.frames[2].size(), e.count);
      std::uint64_t i = 0;
      while (auto p = r.next()) {
        out.push_back({e.jseq + i, std::string(e.frames[0]), std::string(*p), e.header.topic_seq + i});
        ++i;
      }
      REQUIRE(r.done());
    }
    CHECK(seen == entries);
    return out;
  }
  std::uint64_t live() {
    const auto parts = expect(rp::kind::live);
    std::uint64_t head = 0;
    REQUIRE(rp::decode_live(parts[0].data(), parts[0].size(), head));
    return head;
  }
  // Proves nothing else is on its way: two requests answered in turn by the server (a bad one each:
  // ERROR 1) with nothing before them. The second is read after the server's turn that followed the
  // first, so whatever that turn sent comes before it.
  void nothing_pending() {
    for (int i = 0; i < 2; ++i) {
      send_parts(s, {"ping"});
      CHECK(error() == 1);
    }
  }
  zmq::socket_t s;
};

std::vector<std::uint64_t> jseqs(const std::vector<msg>& v) {
  std::vector<std::uint64_t> out;
  for (const auto& m : v) out.push_back(m.jseq);
  return out;
}

std::vector<std::string> payloads(const std::vector<msg>& v) {
  std::vector<std::string> out;
  for (const auto& m : v) out.push_back(m.payload);
  return out;
}

}  // namespace

TEST_CASE("replay from a journal seq: START, the entries, LIVE", "[replay]") {
  zmq::context_t ctx;
  temp_journal j;
  CHECK(j.batch("a", {"a1", "a2", "a3"}) == 1);
  CHECK(j.plain("b", "b1") == 4);
  CHECK(j.batch("a", {"a4", "a5"}, 4) == 5);
  j.written();
  server srv(ctx, *j.store);
  client c(ctx, srv.replay->endpoint());

  SECTION("from 1: everything") {
    c.replay(rp::mode::from_seq, 1, 8);
    const auto st = c.start();
    CHECK(st.first == 1);
    CHECK(st.oldest == 1);
    CHECK(st.head == 7);
    CHECK(st.requested == 1);
    std::uint64_t skipped = 9;
    const auto m = c.data(&skipped);
    CHECK(skipped == 0);
    CHECK(jseqs(m) == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6});
    CHECK(payloads(m) == std::vector<std::string>{"a1", "a2", "a3", "b1", "a4", "a5"});
    CHECK(m[4].topic_seq == 4);
    CHECK(m[3].topic == "b");
    CHECK(c.live() == 7);
    CHECK(eventually([&] { return srv.stats.replays.load() == 1 && srv.stats.replayed.load() == 6; }));
  }
  SECTION("from the middle of a batch: the batch is trimmed to what was asked") {
    c.replay(rp::mode::from_seq, 2, 8);
    CHECK(c.start().first == 2);
    const auto m = c.data();
    CHECK(jseqs(m) == std::vector<std::uint64_t>{2, 3, 4, 5, 6});
    CHECK(payloads(m) == std::vector<std::string>{"a2", "a3", "b1", "a4", "a5"});
    CHECK(m[0].topic_seq == 2);  // the header's topic seq moved with the cut
    CHECK(c.live() == 7);
  }
  SECTION("from the head: nothing, then LIVE") {
    c.replay(rp::mode::from_seq, 7, 8);
    const auto st = c.start();
    CHECK(st.first == 7);
    CHECK(c.live() == 7);
  }
  SECTION("beyond the head: from the head") {
    c.replay(rp::mode::from_seq, 1000, 8);
    const auto st = c.start();
    CHECK(st.first == 7);
    CHECK(st.requested == 1000);
    CHECK(c.live() == 7);
  }
  SECTION("prefixes filter the entries") {
    c.replay(rp::mode::from_seq, 1, 8, {"b"});
    c.start();
    const auto m = c.data();
    CHECK(jseqs(m) == std::vector<std::uint64_t>{4});
    CHECK(c.live() == 7);
  }
  SECTION("an empty prefix among others is every topic") {
    c.replay(rp::mode::from_seq, 1, 8, {"zzz", ""});
    c.start();
    CHECK(c.data().size() == 6);
  }
}

TEST_CASE("replay since a time starts at the first entry accepted at or after it", "[replay]") {
  zmq::context_t ctx;
  temp_journal j;
  j.batch("a", {"1", "2"}, 1, 1000);
  j.plain("a", "3", 2000);
  j.batch("a", {"4"}, 3, 3000);
  j.written();
  server srv(ctx, *j.store);
  client c(ctx, srv.replay->endpoint());
  c.replay(rp::mode::since, 1500, 8);
  const auto st = c.start();
  CHECK(st.first == 3);
  CHECK(st.requested == 0);
  CHECK(payloads(c.data()) == std::vector<std::string>{"3", "4"});
  CHECK(c.live() == 5);
}

TEST_CASE("replay last-per-topic sends the newest message of each matching topic, then goes live", "[replay]") {
  zmq::context_t ctx;
  temp_journal j;
  j.batch("news", {"n1", "n2"});     // 1-2
  j.plain("sport", "s1");            // 3
  j.batch("news", {"n3", "n4"}, 3);  // 4-5
  j.plain("weather", "w1");          // 6
  j.written();
  server srv(ctx, *j.store);
  client c(ctx, srv.replay->endpoint());
  SECTION("every topic") {
    c.replay(rp::mode::last_per_topic, 0, 8);
    const auto st = c.start();
    CHECK(st.first == 3);
    CHECK(st.head == 7);
    const auto m = c.data();
    CHECK(jseqs(m) == std::vector<std::uint64_t>{3, 5, 6});
    CHECK(payloads(m) == std::vector<std::string>{"s1", "n4", "w1"});
    CHECK(m[1].topic_seq == 4);
    CHECK(c.live() == 7);
    // Then live: the next append, and nothing before it.
    j.plain("news", "n5");
    j.written();
    CHECK(jseqs(c.data()) == std::vector<std::uint64_t>{7});
  }
  SECTION("on a prefix") {
    c.replay(rp::mode::last_per_topic, 0, 8, {"new"});
    c.start();
    CHECK(payloads(c.data()) == std::vector<std::string>{"n4"});
    CHECK(c.live() == 7);
  }
}

TEST_CASE("replay credit limits the DATA in flight", "[replay]") {
  zmq::context_t ctx;
  temp_journal j;
  for (int i = 0; i < 5; ++i) j.plain("t", "m" + std::to_string(i));
  j.written();
  replay_limits lim;
  lim.data_bytes = 1;  // one entry per DATA
  server srv(ctx, *j.store, lim);
  client c(ctx, srv.replay->endpoint());
  c.replay(rp::mode::from_seq, 1, 1);
  c.start();
  CHECK(jseqs(c.data()) == std::vector<std::uint64_t>{1});
  c.nothing_pending();
  c.credit(2);
  CHECK(jseqs(c.data()) == std::vector<std::uint64_t>{2});
  CHECK(jseqs(c.data()) == std::vector<std::uint64_t>{3});
  c.nothing_pending();
  c.credit(0);  // a keepalive grants nothing
  c.nothing_pending();
  c.credit(10);
  CHECK(jseqs(c.data()) == std::vector<std::uint64_t>{4});
  CHECK(jseqs(c.data()) == std::vector<std::uint64_t>{5});
  CHECK(c.live() == 6);
}

TEST_CASE("replay runs on into the live tail with no gap and no duplicate", "[replay]") {
  zmq::context_t ctx;
  temp_journal j;
  std::uint64_t expect_next = 1;
  for (int i = 0; i < 50; ++i) j.batch("t", {"x", "y", "z"}, 1 + 3 * static_cast<std::uint64_t>(i));
  j.written();
  replay_limits lim;
  lim.data_bytes = 200;  // several DATA for the history
  server srv(ctx, *j.store, lim);
  client c(ctx, srv.replay->endpoint());
  c.replay(rp::mode::from_seq, 1, 4);
  c.start();
  std::vector<std::uint64_t> seen;
  // Appends go on while the history is replayed; every DATA read is one more credit.
  bool live = false;
  int appended = 0;
  while (!live || appended < 100 || seen.size() < 150 + 3 * static_cast<std::size_t>(appended)) {
    if (appended < 100) {
      j.batch("t", {"x", "y", "z"}, 151 + 3 * static_cast<std::uint64_t>(appended));
      ++appended;
      j.written();
    }
    auto parts = c.next();
    REQUIRE(!parts.empty());
    const auto k = rp::kind_of(parts[0].data(), parts[0].size());
    REQUIRE(k);
    if (*k == rp::kind::live) {
      CHECK_FALSE(live);
      live = true;
      continue;
    }
    REQUIRE(*k == rp::kind::data);
    std::size_t off = 0;
    while (off < parts[1].size()) {
      record::entry e;
      REQUIRE(record::decode(parts[1].data() + off, parts[1].size() - off, e) == record::status::ok);
      off += e.size;
      for (std::uint64_t s = e.jseq; s < e.end(); ++s) seen.push_back(s);
    }
    c.credit(1);
  }
  REQUIRE(seen.size() == 450);
  for (auto s : seen) {
    INFO("jseq " << s);
    REQUIRE(s == expect_next);
    ++expect_next;
  }
}

TEST_CASE("replay answers requests it cannot serve with an ERROR and goes on", "[replay]") {
  zmq::context_t ctx;
  temp_journal j;
  j.plain("t", "m");
  j.written();
  replay_limits lim;
  lim.max_sessions = 2;
  server srv(ctx, *j.store, lim);

  SECTION("CREDIT without a session: unknown session (2)") {
    client c(ctx, srv.replay->endpoint());
    c.credit(1);
    CHECK(c.error() == 2);
  }
  SECTION("more sessions than allowed: too many (3)") {
    client a(ctx, srv.replay->endpoint()), b(ctx, srv.replay->endpoint()), d(ctx, srv.replay->endpoint());
    a.replay(rp::mode::from_seq, 1, 1);
    a.start();
    CHECK(a.data().size() == 1);
    CHECK(a.live() == 2);
    b.replay(rp::mode::from_seq, 1, 1);
    b.start();
    d.replay(rp::mode::from_seq, 1, 1);
    CHECK(d.error() == 3);
    // A session's own new REPLAY replaces it, within the limit.
    a.replay(rp::mode::from_seq, 1, 1);
    CHECK(a.start().first == 1);
    CHECK(a.data().size() == 1);
  }
  SECTION("hostile frames: bad request (1), each; then a good request is served") {
    client c(ctx, srv.replay->endpoint());
    rp::request good;
    good.credit = 1;
    good.value = 1;  // valid as it is: each case below breaks one rule
    const auto good_frame = rp::encode_replay(good);
    std::vector<std::vector<std::string>> bad = {
        {""},
        {"Z"},
        {"ZR"},
        {std::string("ZR\x02\x10", 4) + std::string(20, '\0')},  // version 2
        {std::string("XY\x01\x10", 4) + std::string(20, '\0')},
        {good_frame.substr(0, 23)},
        {good_frame + "x"},
        {std::string("ZR\x01\x7f", 4)},                          // unknown kind
        {std::string("ZR\x01\x20", 4) + std::string(36, '\0')},  // a START, from a client
        {rp::encode_credit(1) + "x"},
        {rp::encode_credit(1), "extra"},
        {good_frame, std::string(1025, 'p')},  // a prefix longer than any topic
    };
    for (int m : {0, 4, 255}) {
      auto f = good_frame;
      f[4] = static_cast<char>(m);
      bad.push_back({f});
    }
    {
      auto f = good_frame;
      f[6] = 1;  // reserved
      bad.push_back({f});
      f = good_frame;
      f[23] = 1;
      bad.push_back({f});
      rp::request zero;  // from-seq 0
      bad.push_back({rp::encode_replay(zero)});
      rp::request lpt;
      lpt.mode = rp::mode::last_per_topic;
      lpt.value = 5;
      bad.push_back({rp::encode_replay(lpt)});
    }
    std::vector<std::string> many{rp::encode_replay([] {
      rp::request r;
      r.value = 1;
      return r;
    }())};
    for (int i = 0; i < 1025; ++i) many.push_back("p" + std::to_string(i));
    bad.push_back(many);
    for (int i = 0; i < 100000 - 1025; ++i) many.push_back("q");
    bad.push_back(many);
    for (std::size_t i = 0; i < bad.size(); ++i) {
      INFO("bad request " << i);
      send_parts(c.s, bad[i]);
      CHECK(c.error() == 1);
    }
    // Huge credit is capped, not refused.
    rp::request r;
    r.value = 1;
    r.credit = 0xFFFFFFFF;
    send_parts(c.s, {rp::encode_replay(r)});
    CHECK(c.start().first == 1);
    CHECK(c.data().size() == 1);
    CHECK(c.live() == 2);
    c.credit(0xFFFFFFFF);
    c.nothing_pending();
    std::lock_guard<std::mutex> lock(srv.mutex);
    CHECK_FALSE(srv.lines.empty());  // the first refusal is logged
  }
}

TEST_CASE("replay forgets a session that stays silent", "[replay]") {
  zmq::context_t ctx;
  temp_journal j;
  j.plain("t", "m");
  j.written();
  replay_limits lim;
  lim.idle = 50ms;
  server srv(ctx, *j.store, lim, true);
  client c(ctx, srv.replay->endpoint());
  c.replay(rp::mode::from_seq, 1, 1);
  c.start();
  c.data();
  c.live();
  // Silent: the server says when it forgets the session; a keepalive after that finds it gone.
  REQUIRE(srv.wait_logged("replay: forgot the silent session"));
  c.credit(0);
  const auto parts = recv_parts(c.s);
  REQUIRE(parts.size() == 1);
  std::uint8_t code = 0;
  std::string_view text;
  REQUIRE(rp::decode_error(parts[0].data(), parts[0].size(), code, text));
  CHECK(code == 2);
}

TEST_CASE("a subscriber replays from the journal and goes on live", "[replay][subscriber]") {
  zmq::context_t ctx;
  temp_journal j;
  j.batch("news", {"n1", "n2", "n3"});  // 1-3
  j.plain("news", "p4");                // 4
  j.plain("other", "o5");               // 5
  j.written();
  server srv(ctx, *j.store);
  subscriber_config cfg;
  cfg.topics = {"news"};
  cfg.replay.endpoint = srv.replay->endpoint();
  cfg.replay.mode = replay_mode::from_seq;
  cfg.replay.value = 2;
  subscriber sub(ctx, cfg);
  std::vector<std::string> warnings;
  sub.on_warning([&](std::string_view w) { warnings.emplace_back(w); });
  std::uint64_t live_at = 0;
  sub.on_live([&](std::uint64_t s) { live_at = s; });
  REQUIRE(sub.connect());
  CHECK_FALSE(sub.live());
  std::vector<message_view> got;
  std::vector<std::string> texts;
  const auto collect = [&](const message_view& m) {
    got.push_back(m);
    texts.push_back(std::string(m.topic) + " " + std::string(m.payload) + " " + std::to_string(m.journal_seq));
    return true;
  };
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!sub.live() && std::chrono::steady_clock::now() < until) sub.receive(100ms, collect);
  REQUIRE(sub.live());
  CHECK(live_at == 6);
  CHECK(texts == std::vector<std::string>{"news n2 2", "news n3 3", "news p4 4"});
  CHECK(got[0].publisher == 7);
  CHECK(got[0].topic_seq == 2);
  j.batch("news", {"n6", "n7"}, 4);  // 6-7
  j.plain("other", "o8");
  j.plain("news", "p9");
  j.written();
  while (texts.size() < 6 && std::chrono::steady_clock::now() < until) sub.receive(100ms, collect);
  CHECK(texts ==
        std::vector<std::string>{"news n2 2", "news n3 3", "news p4 4", "news n6 6", "news n7 7", "news p9 9"});
  CHECK(sub.stats().gaps == 0);
  CHECK(sub.stats().duplicates == 0);
  CHECK(warnings.empty());
}
