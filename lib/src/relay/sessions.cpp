#include "relay/sessions.hpp"

namespace zrelay {

sessions::state& sessions::touch(const wire::batch_header& h, std::string_view route, clock::time_point now,
                                 bool& fresh) {
  auto [it, created] = states_.try_emplace(h.publisher);
  auto& st = it->second;
  fresh = created;
  if (h.ack_floor > st.next) st.next = h.ack_floor;
  if (h.ack_floor > st.acked) st.acked = h.ack_floor;
  st.last_seen = now;
  if (st.route != route) st.route.assign(route.data(), route.size());
  return st;
}

void sessions::restore(std::uint64_t id, std::uint64_t next, clock::time_point now) {
  auto& st = states_[id];
  if (next > st.next) st.next = next;
  if (next > st.acked) st.acked = next;
  st.last_seen = now;
}

bool sessions::expect_due(state& st, clock::time_point now, std::chrono::milliseconds repeat) {
  if (st.expected == st.next && now - st.expected_at < repeat) return false;
  st.expected = st.next;
  st.expected_at = now;
  return true;
}

sessions::token sessions::accept(std::uint64_t id, state& st, std::uint64_t end) {
  tokens_.push_back({id, st.next, end});
  st.next = end;
  ++st.pending;
  return first_token_ + tokens_.size() - 1;
}

void sessions::commit(token t) {
  if (t < first_token_ || t - first_token_ >= tokens_.size()) return;
  tokens_[t - first_token_].fate = pending_batch::committed;
  settle();
}

void sessions::abandon(token t) {
  if (t < first_token_ || t - first_token_ >= tokens_.size()) return;
  tokens_[t - first_token_].fate = pending_batch::abandoned;
  settle();
}

void sessions::settle() {
  while (!tokens_.empty() && tokens_.front().fate != pending_batch::waiting) {
    const auto b = tokens_.front();
    tokens_.pop_front();
    ++first_token_;
    auto it = states_.find(b.publisher);
    if (it == states_.end()) continue;
    auto& st = it->second;
    --st.pending;
    if (b.fate == pending_batch::abandoned) {
      // Accepted again when resent; a batch accepted after it no longer follows what is acked, so
      // the contiguity check below keeps it out of every ACK.
      if (b.begin < st.next) st.next = b.begin;
      continue;
    }
    // Only a batch that follows what is acked moves the ACK on: one after an abandoned batch does
    // not (an ACK is cumulative, it would cover the abandoned one).
    if (b.begin <= st.acked && b.end > st.acked) {
      st.acked = b.end;
      mark_ack(b.publisher, st);
    }
  }
}

void sessions::ack_again(std::uint64_t id, state& st) { mark_ack(id, st); }

void sessions::mark_ack(std::uint64_t id, state& st) {
  if (!st.ack_due) {
    st.ack_due = true;
    ack_due_.push_back(id);
  }
}

void sessions::sweep(clock::time_point now, std::chrono::milliseconds idle) {
  for (auto it = states_.begin(); it != states_.end();) {
    const auto& st = it->second;
    if (!st.ack_due && st.pending == 0 && now - st.last_seen > idle) it = states_.erase(it);
    else ++it;
  }
}

const sessions::state* sessions::find(std::uint64_t id) const {
  auto it = states_.find(id);
  return it == states_.end() ? nullptr : &it->second;
}

}  // namespace zrelay
