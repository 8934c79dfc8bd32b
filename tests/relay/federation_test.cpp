// Federation: links between relays, without sockets. Relays here are federation objects whose io
// hands each frame to the other side's federation (a DATA gets its ACK from the test, as the relay's
// sessions would give it).
#include <catch2/catch.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "relay/federation.hpp"
#include "relay/link_wire.hpp"
#include "zrelay/record.hpp"
#include "zrelay/wire.hpp"

using namespace std::chrono_literals;
using zrelay::federation;
namespace link_wire = zrelay::link_wire;

namespace {

using clock_type = federation::clock;

// A small tree of relays in memory. Relay i's upstream (if any) is parent[i]; the route relay j
// has at its upstream's ack socket is "r<j>".
struct tree {
  struct node {
    zrelay::relay_stats stats;
    zrelay::relay_log log;
    std::vector<std::string> lines;
    std::unique_ptr<federation> fed;
    int parent = -1;
    std::map<std::string, int> xsub;     // what its publishers were told: prefix -> subscribed
    std::vector<std::string> delivered;  // topics of DATA entries it received
    bool ack = true;                     // answer DATA with an ACK
    bool dead = false;                   // gone without a word: neither turns nor hears
  };
  struct frame {
    int to;
    std::string route;  // at the receiver: empty when from its upstream
    std::string f1, f2;
  };
  std::deque<node> nodes;
  std::deque<frame> wire;
  clock_type::time_point now = clock_type::now();

  int add(int parent, std::size_t window_msgs = 1000000) {
    const int me = static_cast<int>(nodes.size());
    nodes.emplace_back();
    auto& n = nodes.back();
    n.parent = parent;
    n.log.set([&n](std::string_view l) { n.lines.emplace_back(l); }, false);
    federation::settings s;
    s.id = 1000 + static_cast<std::uint64_t>(me);
    s.name = "relay" + std::to_string(me);
    if (parent >= 0) s.upstream = "tcp://relay" + std::to_string(parent);
    s.window_msgs = window_msgs;
    federation::io io;
    io.send = [this, me](std::string_view route, std::string_view f1, std::string_view f2) {
      if (route.empty()) wire.push_back({nodes[me].parent, "r" + std::to_string(me), std::string(f1), std::string(f2)});
      else wire.push_back({std::stoi(std::string(route.substr(1))), "", std::string(f1), std::string(f2)});
    };
    io.xsub = [this, me](bool sub, std::string_view p) { nodes[me].xsub[std::string(p)] = sub ? 1 : 0; };
    n.fed = std::make_unique<federation>(s, io, n.stats, n.log);
    return me;
  }
  // Which link of `at` a frame from route `route` is.
  void receive(const frame& f) {
    auto& n = nodes[f.to];
    if (n.dead) return;
    const auto k = link_wire::kind_of(f.f1.data(), f.f1.size());
    if (k == link_wire::kind::data) {
      link_wire::data_header h;
      std::string why;
      REQUIRE(link_wire::decode_data(f.f1.data(), f.f1.size(), h, why));
      const auto li = n.fed->data_link(f.route, h.id, now);
      if (li == federation::none) return;
      const char* p = f.f2.data();
      std::size_t left = f.f2.size();
      std::uint64_t msgs = 0;
      for (std::uint32_t i = 0; i < h.count; ++i) {
        zrelay::record::entry e;
        REQUIRE(zrelay::record::decode_framing(p, left, e) == zrelay::record::status::ok);
        p += e.size;
        left -= e.size;
        n.delivered.emplace_back(e.frames[0]);
        msgs += e.count;
        // On to its other links, as the relay forwards what it takes.
        n.fed->forward(e.frames, e.nframes, e.what == zrelay::record::kind::batch, e.count, li, 1);
      }
      n.fed->received(li, msgs);
      if (n.ack) {
        zrelay::wire::reply r;
        r.type = zrelay::wire::kind::ack;
        r.publisher = h.id;
        r.seq = h.seq + h.count - 1;
        const auto bytes = zrelay::wire::encode_reply(r);
        back(f, bytes);
      }
      return;
    }
    if (k) {
      n.fed->control(f.route, f.f1.data(), f.f1.size(), now);
      return;
    }
    zrelay::wire::reply r;
    REQUIRE(zrelay::wire::decode_reply(f.f1.data(), f.f1.size(), r) == zrelay::wire::status::ok);
    n.fed->reply(f.route, r, now);
  }
  // An answer to frame f, from its receiver to its sender.
  void back(const frame& f, const std::string& bytes) {
    const int from = f.to;
    if (f.route.empty()) wire.push_back({nodes[from].parent, "r" + std::to_string(from), bytes, {}});
    else wire.push_back({std::stoi(f.route.substr(1)), "", bytes, {}});
  }
  // Turns every relay and delivers frames until nothing moves (or `rounds` turns).
  void settle(int rounds = 50) {
    for (int i = 0; i < rounds; ++i) {
      for (auto& n : nodes)
        if (!n.dead) n.fed->turn(now);
      if (wire.empty()) return;
      while (!wire.empty()) {
        const auto f = wire.front();
        wire.pop_front();
        receive(f);
      }
    }
  }
  void later(std::chrono::milliseconds d) {
    now += d;
    settle();
  }
  // A batch of one record on `topic`, published at relay `at`.
  void publish(int at, const std::string& topic, std::uint64_t seq = 1) {
    zrelay::wire::batch_header h;
    h.count = 1;
    h.publisher = 77;
    h.seq = h.topic_seq = seq;
    std::string header(zrelay::wire::header_size, '\0');
    zrelay::wire::encode_header(h, &header[0]);
    std::string body;
    zrelay::wire::append_record(body, "x");
    const std::string_view frames[3] = {topic, header, body};
    nodes[at].fed->forward(frames, 3, true, 1, federation::none, 1);
  }
  bool logged(int at, const std::string& what) const {
    for (const auto& l : nodes[at].lines)
      if (l.find(what) != std::string::npos) return true;
    return false;
  }
  std::uint64_t count(int at, const std::string& topic) const {
    std::uint64_t c = 0;
    for (const auto& t : nodes[at].delivered) c += t == topic ? 1 : 0;
    return c;
  }
};

}  // namespace

TEST_CASE("federation: an edge's subscription reaches the core, and messages follow it edge to edge", "[federation]") {
  tree t;
  const int core = t.add(-1), e1 = t.add(0), e2 = t.add(0);
  t.settle();
  CHECK(t.nodes[e1].stats.upstream_up.load() == 1);
  CHECK(t.nodes[core].stats.links_active.load() == 2);
  CHECK(t.logged(e1, "link to upstream tcp://relay0: active"));

  t.nodes[e2].fed->local(true, "news");
  t.settle();
  CHECK(t.nodes[core].xsub["news"] == 1);  // the core's own publishers are asked for it
  CHECK(t.nodes[e1].xsub["news"] == 1);    // and so are the other edge's

  t.publish(e1, "news.eu");
  t.publish(e1, "sport");  // nobody beyond e1 wants it: it never leaves
  t.settle();
  CHECK(t.count(core, "news.eu") == 1);
  CHECK(t.count(e2, "news.eu") == 1);
  CHECK(t.count(core, "sport") == 0);
  CHECK(t.nodes[e1].stats.link_msgs_out.load() == 1);
  // Never back where it came from: e1 got nothing of its own.
  CHECK(t.count(e1, "news.eu") == 0);
}

TEST_CASE("federation: one downstream leaving never cuts off another (interest is counted per link)", "[federation]") {
  tree t;
  const int core = t.add(-1), e1 = t.add(0), e2 = t.add(0), e3 = t.add(0);
  t.settle();
  t.nodes[e2].fed->local(true, "t");
  t.nodes[e3].fed->local(true, "t");
  t.settle();
  t.nodes[e2].fed->local(false, "t");
  t.settle();
  CHECK(t.nodes[core].xsub["t"] == 1);  // e3 still wants it
  CHECK(t.nodes[e1].xsub["t"] == 1);
  t.publish(e1, "t");
  t.settle();
  CHECK(t.count(e3, "t") == 1);
  CHECK(t.count(e2, "t") == 0);
  t.nodes[e3].fed->local(false, "t");
  t.settle();
  CHECK(t.nodes[core].xsub["t"] == 0);
  CHECK(t.nodes[e1].xsub["t"] == 0);
}

TEST_CASE("federation: a prefix wanted on both sides of a link is not echoed back", "[federation]") {
  tree t;
  const int core = t.add(-1), e1 = t.add(0);
  t.settle();
  t.nodes[core].fed->local(true, "a");
  t.nodes[e1].fed->local(true, "a");
  t.settle();
  t.publish(e1, "a1");
  t.settle();
  CHECK(t.count(core, "a1") == 1);
  CHECK(t.count(e1, "a1") == 0);
  t.publish(core, "a2");
  t.settle();
  CHECK(t.count(e1, "a2") == 1);
  CHECK(t.count(core, "a2") == 0);
}

TEST_CASE("federation: a loop of two relays or three is refused, names the relays, carries nothing", "[federation]") {
  for (const int size : {2, 3}) {
    tree t;
    for (int i = 0; i < size; ++i) t.add((i + 1) % size);
    t.settle();
    bool named = false;
    for (int i = 0; i < size; ++i) {
      CHECK(t.nodes[i].stats.links_active.load() == 0);
      named = named || t.logged(i, "would close a loop: relay");
      t.nodes[i].fed->local(true, "");
    }
    CHECK(named);
    t.settle();
    t.publish(0, "x");
    t.settle();
    for (int i = 0; i < size; ++i) CHECK(t.nodes[i].delivered.empty());
  }
}

TEST_CASE("federation: 10 000 subscriptions cross in a handshake, and come back after the upstream restarts",
          "[federation]") {
  tree t;
  const int core = t.add(-1), e1 = t.add(0);
  for (int i = 0; i < 10000; ++i) t.nodes[e1].fed->local(true, "topic." + std::to_string(i) + ".");
  t.settle();
  CHECK(t.nodes[core].xsub.size() == 10000);
  CHECK(t.nodes[core].stats.link_subs_in.load() == 10000);
  // The core restarts: a new process (a new id) on the same address.
  t.nodes[core].fed = nullptr;
  {
    tree::node& n = t.nodes[core];
    n.xsub.clear();
    zrelay::federation::settings s;
    s.id = 5000;
    s.name = "relay0 again";
    federation::io io;
    io.send = [&t](std::string_view route, std::string_view f1, std::string_view f2) {
      t.wire.push_back({std::stoi(std::string(route.substr(1))), "", std::string(f1), std::string(f2)});
    };
    io.xsub = [&n](bool sub, std::string_view p) { n.xsub[std::string(p)] = sub ? 1 : 0; };
    n.fed = std::make_unique<federation>(s, io, n.stats, n.log);
  }
  t.later(3500ms);  // the edge hears nothing for 3 s, says HELLO to whoever is there now
  t.later(1000ms);
  CHECK(t.nodes[e1].stats.upstream_up.load() == 1);
  std::size_t subscribed = 0;
  for (const auto& [p, on] : t.nodes[core].xsub) subscribed += on;
  CHECK(subscribed == 10000);
}

TEST_CASE("federation: what a link has not acked waits in its window and goes again; past the window it is counted",
          "[federation]") {
  tree t;
  const int core = t.add(-1), e1 = t.add(0, 3);
  t.settle();
  t.nodes[core].fed->local(true, "q");
  t.settle();
  t.nodes[core].ack = false;
  for (int i = 1; i <= 5; ++i) t.publish(e1, "q", static_cast<std::uint64_t>(i));
  t.settle();
  CHECK(t.nodes[e1].stats.link_dropped.load() == 2);  // a window of 3 messages
  CHECK(t.count(core, "q") == 3);
  t.nodes[core].ack = true;
  t.later(3100ms);  // the ack timeout: sent again, and acked now
  CHECK(t.nodes[e1].stats.link_resent.load() == 3);
  CHECK(t.count(core, "q") == 6);
  CHECK(t.nodes[e1].fed->json().find("\"unacked\":0") != std::string::npos);
}

TEST_CASE("federation: a downstream silent for 10 s is forgotten, and its interest with it", "[federation]") {
  tree t;
  const int core = t.add(-1), e1 = t.add(0), e2 = t.add(0);
  t.settle();
  t.nodes[e2].fed->local(true, "k");
  t.settle();
  REQUIRE(t.nodes[e1].xsub["k"] == 1);
  // e2 goes away without a word; the core forgets it after 10 s of silence and tells e1.
  t.nodes[e2].dead = true;
  t.later(5000ms);
  CHECK(t.nodes[e1].xsub["k"] == 1);
  t.later(5500ms);
  CHECK(t.logged(core, "ended (silent for 10 s)"));
  CHECK(t.nodes[e1].xsub["k"] == 0);
}

TEST_CASE("link frames: every kind decodes as encoded; bad frames are refused with a reason", "[federation]") {
  std::string why;
  link_wire::message m;
  const auto hello = link_wire::encode_hello(7, "edge");
  REQUIRE(link_wire::decode(hello.data(), hello.size(), 1024, m, why));
  CHECK(m.what == link_wire::kind::hello);
  CHECK(m.id == 7);
  CHECK(m.name == "edge");
  const std::vector<link_wire::relay_ref> chain{{1, "a"}, {2, "b"}};
  const auto w = link_wire::encode_chain(link_wire::kind::welcome, 1, true, chain);
  REQUIRE(link_wire::decode(w.data(), w.size(), 1024, m, why));
  CHECK(m.rooted);
  CHECK(m.chain == chain);
  const std::vector<std::string> prefixes{"", "x", std::string(1024, 'p')};
  const auto sub = link_wire::encode_prefixes(link_wire::kind::sub, 3, prefixes, 0, 3);
  REQUIRE(link_wire::decode(sub.data(), sub.size(), 1024, m, why));
  CHECK(m.prefixes == prefixes);
  // One prefix over the limit is left out; the others in the frame still count.
  REQUIRE(link_wire::decode(sub.data(), sub.size(), 1023, m, why));
  CHECK(m.prefixes == std::vector<std::string>{"", "x"});
  CHECK(m.too_long == 1);
  CHECK(m.longest == 1024);
  CHECK_FALSE(link_wire::decode(sub.data(), sub.size() - 1, 1024, m, why));
  const auto trailing = hello + "z";
  CHECK_FALSE(link_wire::decode(trailing.data(), trailing.size(), 1024, m, why));
  CHECK(why.find("after the end") != std::string::npos);

  link_wire::data_header h{9, 5, 2, 4}, d;
  const auto f = link_wire::encode_data(h);
  REQUIRE(link_wire::decode_data(f.data(), f.size(), d, why));
  CHECK((d.id == 9 && d.seq == 5 && d.count == 2 && d.floor == 4));
  link_wire::data_header bad{9, 5, 2, 6};  // a floor above its sequence
  const auto b = link_wire::encode_data(bad);
  CHECK_FALSE(link_wire::decode_data(b.data(), b.size(), d, why));
}
