#pragma once
// Federation: this relay's links to other relays (zrelay --upstream), docs/ARCHITECTURE.md "Links".
// A relay has at most one upstream (it dialed it) and any number of downstream relays (they dialed
// its ack socket). For each link it keeps what the relay on the other side wants (its interest,
// prefixes), what it was told this side wants, and the messages sent and not yet acknowledged (the
// window). No sockets: the relay sends what `send` is handed and tells it what arrived.
//
// Interest: a prefix crosses link L when someone beyond L wants it, which is this relay's own
// subscribers or any other link's interest, never L's own (so nothing goes back where it came from).
// Each prefix has a count of the sources that want it (local subscribers: one source; each link:
// one); the set told to L changes when that count without L's share crosses zero.
//
// Loops: each relay has a random id. An upstream answers a HELLO with its chain (itself, its
// upstream, …) and whether that chain ends at a relay without an upstream (rooted). A link goes
// active only with a rooted chain that does not hold this relay; a chain that holds it is a loop,
// refused with a log line naming the relays. So a ring of relays never carries a message.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "relay/link_wire.hpp"
#include "relay/log.hpp"
#include "zrelay/stats.hpp"
#include "zrelay/wire.hpp"

namespace zrelay {

class federation {
public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t none = static_cast<std::size_t>(-1);

  struct settings {
    std::uint64_t id = 0;                                 ///< this relay's id (random, not 0)
    std::string name;                                     ///< how logs name it: host and ack endpoint
    std::string upstream;                                 ///< the upstream's ack endpoint, empty for none
    std::size_t max_prefix = 1024;                        ///< the longest prefix taken (--max-topic)
    std::size_t window_msgs = 1000000;                    ///< messages sent to one link and not acked, at most
    std::size_t window_bytes = std::size_t{256} << 20;    ///< the same in bytes
    std::chrono::milliseconds ack_timeout{3000};          ///< resend what a link has not acked for this long
    std::chrono::milliseconds ping_every{1000};           ///< downstream: a PING this often
    std::chrono::milliseconds upstream_silence{3000};     ///< downstream: the upstream is gone after this
    std::chrono::milliseconds downstream_silence{10000};  ///< upstream: a downstream is forgotten after this
    /// After a handshake, a prefix the other side did not send again is dropped only this much later:
    /// a relay that has just restarted learns its other links' interest again meanwhile.
    std::chrono::milliseconds stale_grace{10000};
  };

  /// How federation speaks: `send(route, frame1, frame2)` to a downstream relay's routing id at the
  /// ack socket, or to the upstream when `route` is empty; frame2 empty for a one-frame message.
  /// `xsub(subscribe, prefix)` when the relay's publishers should (not) send a prefix: the union of
  /// every source's interest.
  struct io {
    std::function<void(std::string_view route, std::string_view frame1, std::string_view frame2)> send;
    std::function<void(bool subscribe, std::string_view prefix)> xsub;
    /// A downstream link that this relay had no window for (new, or forgotten) is back and says
    /// it took everything below journal seq `from` from it: with a journal, the relay forwards to it
    /// (forward(…, only = link)) what it stored from there on. May be empty.
    std::function<void(std::size_t link, std::uint64_t from)> catch_up;
    /// With a journal: the journal seq from which messages go to a link live (what came before is in
    /// the journal); 0 without one. Told to a downstream in READY, so that it can ask for what it
    /// misses after this relay restarts even if nothing had reached it yet. May be empty.
    std::function<std::uint64_t()> live_from;
  };

  federation(settings s, io out, relay_stats& stats, relay_log& log);

  /// The relay's own subscribers: a prefix's first subscription or its last unsubscription.
  void local(bool subscribe, std::string_view prefix);
  /// A control frame (link_wire kind other than data) from `route` (empty: the upstream).
  void control(std::string_view route, const void* data, std::size_t size, clock::time_point now);
  /// An ACK or EXPECT from `route` for DATA this relay sent.
  void reply(std::string_view route, const wire::reply& r, clock::time_point now);
  /// DATA from `route` with sender `id`: the link it belongs to, or none (not an active link:
  /// ignored, the sender is asked to say HELLO again).
  std::size_t data_link(std::string_view route, std::uint64_t id, clock::time_point now);
  /// A message on its way to subscribers (frames as accepted: a batch with its version-1 header,
  /// or a plain message): sent to every active link whose interest matches its first frame but
  /// `from` (none: from a publisher of this relay). $SYS. topics never cross a link.
  /// `jseq_end`: this relay's journal seq after the message (0: not from its journal); `only`: to
  /// that link alone (a catch-up).
  void forward(const std::string_view* frames, std::size_t n, bool batch, std::uint32_t count, std::size_t from,
               std::uint64_t time_ns, std::uint64_t jseq_end = 0, std::size_t only = none);
  /// Whether a message from the upstream, of the upstream's journal seqs up to `jseq_end`, is one
  /// this relay sent up itself: a catch-up (what the upstream's journal held before live forwarding
  /// to this relay began) holds them too. Only a batch, of a publisher whose batches it forwarded
  /// to the upstream; never a live message (a publisher that moved from this relay to another one
  /// still gets through).
  bool echo(const std::string_view* frames, std::size_t n, std::uint64_t jseq_end) const;
  /// Whether link `li` takes messages and wants `topic`.
  bool wants(std::size_t li, std::string_view topic) {
    return links_[li].used && links_[li].forwarding && matches(links_[li], topic);
  }
  /// How logs name link `li`.
  std::string link_name(std::size_t li) const { return label(links_[li]); }
  /// Whether someone other than link `from` wants `topic`: this relay's subscribers or another link.
  bool wanted(std::string_view topic, std::size_t from);
  /// Messages of link `from` were accepted (counted on that link); `jseq_end` the DATA's.
  void received(std::size_t from, std::uint64_t msgs, std::uint64_t jseq_end = 0);
  /// Once per loop turn, and at least every 100 ms: sends what was queued (DATA, SUB/UNSUB), pings,
  /// HELLOs, resends, forgets silent links.
  /// `reading`: false while the relay does not read its links (a message is held for a full
  /// subscriber): silence from the upstream is then not the upstream's.
  void turn(clock::time_point now, bool reading = true);
  /// Says BYE on every link (stopping).
  void stop();

  /// The stats line's part: " link[up tcp://…]=active,in=…,out=…" per link.
  std::string describe() const;
  /// The same as a JSON array.
  std::string json() const;
  /// When turn() wants to run next.
  clock::time_point next_due() const { return next_due_; }
  bool has_upstream() const { return !cfg_.upstream.empty(); }
  /// Whether the window to the upstream is three quarters full while the link is active: the relay
  /// stops reading its publishers until acks make room (back-pressure, as a full window stops zpub).
  /// While the link is down it is never full: messages wait in the window, and past it are dropped
  /// and counted, and the relay goes on serving its own clients.
  bool upstream_full() const {
    if (!has_upstream() || links_[0].st != state::active) return false;
    const auto& l = links_[0];
    return (l.window_msgs + l.body_msgs) * 4 >= cfg_.window_msgs * 3 ||
           (l.window_bytes + l.body.size()) * 4 >= cfg_.window_bytes * 3;
  }
  /// Whether any link takes messages now (forward() has something to do).
  bool linked() const { return linked_; }

private:
  enum class state { connecting, waiting, active, refused };
  struct sent_data {
    std::uint64_t seq = 0;
    std::uint32_t entries = 0;
    std::uint64_t msgs = 0;
    std::uint64_t jseq_end = 0;
    std::string body;
    clock::time_point sent_at;
  };
  struct link {
    bool used = false;
    bool up = false;  // the upstream: this relay dialed it
    state st = state::connecting;
    bool forwarding = false;  // takes messages (active, or was and is away: they wait in the window)
    std::string route;        // downstream: its routing id at the ack socket
    std::uint64_t id = 0;     // the relay on the other side
    std::string name;
    // Its interest: prefixes, and the lengths they have (a topic is looked up at those lengths).
    std::unordered_set<std::string> remote;
    std::unordered_map<std::size_t, std::size_t> lengths;
    bool resync = false;  // a handshake: prefixes not sent again before its READY are dropped
    std::unordered_set<std::string> fresh;
    std::unordered_set<std::string> stale;  // not sent again in the last handshake: dropped at stale_at
    clock::time_point stale_at{};
    std::vector<std::pair<bool, std::string>> changes;  // to tell it, in order: subscribe or not, prefix
    // What goes to it.
    std::deque<sent_data> window;
    std::uint64_t next_seq = 1;
    std::size_t window_msgs = 0, window_bytes = 0;
    std::string body;  // DATA being built this turn
    std::uint32_t body_entries = 0;
    std::uint64_t body_msgs = 0;
    std::uint64_t body_jseq_end = 0;
    std::size_t resend_from = static_cast<std::size_t>(-1);  // index in window to send again from
    // The handshake and liveness.
    std::vector<link_wire::relay_ref> chain;  // the upstream's, as it last said
    bool chain_rooted = false;
    clock::time_point last_heard{}, last_ping{}, next_hello{};
    clock::time_point hello_at{};  // downstream: its HELLO; one that says no READY within 10 s is forgotten
    std::chrono::milliseconds backoff{100};
    clock::time_point last_progress{};  // when an ACK last took something off the window
    bool said_down = false;
    clock::time_point connecting_since{};  // the upstream: when it last stopped answering (or never did)
    bool said_silent = false;
    bool said_too_long = false;
    // Counters (messages).
    std::uint64_t in = 0, out = 0, resent = 0, dropped = 0, subs_in = 0, subs_out = 0;
    // The last topic looked up, and whether it matched.
    std::string cached_topic;
    bool cached_match = false, cached = false;
  };

  std::size_t add_link();
  link* find_route(std::string_view route);
  std::size_t find_id(std::uint64_t id) const;
  void send(link& l, std::string_view frame1, std::string_view frame2 = {});
  // Interest.
  void change(std::size_t source, bool subscribe, const std::string& prefix);  // source none: local
  void take_prefixes(std::size_t li, const link_wire::message& m);
  void add_remote(std::size_t li, const std::string& prefix);
  void remove_remote(std::size_t li, const std::string& prefix);
  void remove_all(std::size_t li, const std::unordered_set<std::string>& prefixes);
  bool matches(link& l, std::string_view topic);
  void send_all_interest(std::size_t li);
  void end_resync(std::size_t li, clock::time_point now);
  std::uint32_t count_without(const std::string& prefix, std::size_t li) const;
  // Handshakes.
  void on_upstream(const link_wire::message& m, clock::time_point now);
  void on_downstream(std::string_view route, const link_wire::message& m, clock::time_point now);
  void activate(std::size_t li, clock::time_point now);
  void refuse_upstream(const std::string& why);
  void forget(std::size_t li, const std::string& why);
  void chain_changed();
  std::vector<link_wire::relay_ref> own_chain() const;
  bool own_rooted() const;
  bool holds_self(const std::vector<link_wire::relay_ref>& chain) const;
  std::string loop_text(const std::vector<link_wire::relay_ref>& chain) const;
  void upstream_lost(const std::string& why, clock::time_point now);
  // Messages.
  void flush(link& l, clock::time_point now);
  void transmit(link& l, sent_data& d, clock::time_point now);
  void drop_window(link& l);
  std::string label(const link& l) const;
  void update_gauges();
  static const char* state_name(state s);

  settings cfg_;
  io io_;
  relay_stats& stats_;
  relay_log& log_;
  std::vector<link> links_;                               // links_[0] is the upstream when there is one
  std::unordered_map<std::string, std::uint32_t> count_;  // sources that want each prefix
  std::unordered_set<std::string> local_;
  clock::time_point next_due_{};
  std::vector<link_wire::relay_ref> told_chain_;  // what downstream links were last told
  bool told_rooted_ = false;
  bool linked_ = false;
  // Link sequences never start again: a link made anew for a relay this one linked before (it was
  // forgotten, or came back) goes on above every sequence sent, so its session there takes it.
  std::uint64_t seq_base_ = 1;
  std::uint64_t up_jseq_ = 0;
  std::uint64_t live_from_up_ = 0;  // the upstream's READY: below this, what it sends is a catch-up                  //
                                    // the upstream's journal seq after the last message taken from it
  // Publishers whose batches went to the upstream, the most recent 65 536 (least recently sent
  // forgotten first): what a catch-up brings back of theirs is this relay's own.
  std::list<std::uint64_t> sent_up_order_;
  std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> sent_up_;
  void note_sent_up(std::uint64_t publisher);
  std::size_t remote_total_ = 0;  // prefixes all links hold
  std::uint64_t jitter_state_;
};

}  // namespace zrelay
