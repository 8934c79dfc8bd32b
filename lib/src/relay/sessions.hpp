#pragma once
// Sessions: what the relay knows of each acked publisher, keyed by the publisher's own id (not its
// routing id, which changes when it reconnects). A batch the relay takes is accepted: the
// publisher's next sequence moves past it and a commit token stands for it. The ACK comes when that
// token is committed — today when the fanout has handed the batch to the subscriber socket; with a
// journal, when the fsync that covers it has returned. No sockets: the relay sends what
// flush_acks() hands it.

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "zrelay/wire.hpp"

namespace zrelay {

class sessions {
public:
  using clock = std::chrono::steady_clock;
  /// Stands for one accepted batch until it is committed or abandoned; 0 is no token.
  using token = std::uint64_t;

  /// One publisher.
  struct state {
    std::uint64_t next = 0;   ///< the next sequence it will accept
    std::uint64_t acked = 0;  ///< every sequence below this is committed (the ACK says acked - 1)
    std::string route;        ///< the routing id its latest message came from
    clock::time_point last_seen;
    bool ack_due = false;
    std::uint64_t expected = 0;  ///< the sequence its latest EXPECT asked for (0: none yet)
    clock::time_point expected_at;
    std::size_t pending = 0;  ///< its tokens neither committed nor abandoned
  };

  /// The publisher of a batch whose header kept ingress's rules: created when new, its route and
  /// time updated. A publisher the relay has not seen (or forgot, or met before a restart) starts
  /// where its ack floor says it still needs acks, so that what it resends first is not taken for a
  /// duplicate; one it knows may have had acks from a relay that ran before this one, so the floor
  /// moves it on too. `fresh` says it was created.
  state& touch(const wire::batch_header& h, std::string_view route, clock::time_point now, bool& fresh);

  /// A publisher the journal holds batches of, after a restart: everything below `next` is stored
  /// (and so acked when resent). Its route comes with its first message.
  void restore(std::uint64_t id, std::uint64_t next, clock::time_point now);

  /// Whether an EXPECT for st.next goes now: once for each sequence asked for (a burst of batches
  /// behind a loss would bring a burst of identical requests), again after `repeat`.
  bool expect_due(state& st, clock::time_point now, std::chrono::milliseconds repeat);

  /// Takes the batch [st.next, end): the next one accepted starts at `end`. Its ACK waits for
  /// commit(token).
  token accept(std::uint64_t id, state& st, std::uint64_t end);
  /// The batch of `t` is safe: acks move on. Tokens are committed in the order they were issued
  /// (the fanout's and a journal's order); an ACK never covers a batch whose token is not committed.
  void commit(token t);
  /// The batch of `t` will not be committed (it was given up): the publisher's next sequence goes
  /// back to it, so its resend is accepted again, and nothing accepted after it is acked.
  void abandon(token t);
  /// Acks what is committed again (a duplicate came).
  void ack_again(std::uint64_t id, state& st);

  /// Calls send(route, reply) for each publisher whose ACK is due, then forgets that it was.
  template <typename Send>
  void flush_acks(Send&& send) {
    for (const auto id : ack_due_) {
      auto it = states_.find(id);
      if (it == states_.end()) continue;
      auto& st = it->second;
      st.ack_due = false;
      wire::reply r;
      r.type = wire::kind::ack;
      r.publisher = id;
      r.seq = st.acked - 1;
      send(std::string_view(st.route), r);
    }
    ack_due_.clear();
  }

  /// Forgets publishers idle longer than `idle` with nothing pending or due.
  void sweep(clock::time_point now, std::chrono::milliseconds idle);

  /// Publishers known.
  std::size_t size() const { return states_.size(); }
  /// Tokens neither committed nor abandoned.
  std::size_t pending() const { return tokens_.size(); }
  /// The state of publisher `id`, or nullptr.
  const state* find(std::uint64_t id) const;

private:
  struct pending_batch {
    std::uint64_t publisher = 0;
    std::uint64_t begin = 0, end = 0;
    enum { waiting, committed, abandoned } fate = waiting;
  };

  void mark_ack(std::uint64_t id, state& st);
  void settle();  // applies what is decided at the front of tokens_, in order

  std::unordered_map<std::uint64_t, state> states_;
  std::vector<std::uint64_t> ack_due_;
  std::deque<pending_batch> tokens_;  // tokens_[i] is token first_token_ + i
  token first_token_ = 1;
};

}  // namespace zrelay
