#include "relay/federation.hpp"

#include <algorithm>
#include <random>

#include "big_endian.hpp"
#include "zrelay/record.hpp"
#include "zrelay/text.hpp"

namespace zrelay {
namespace {

constexpr std::size_t max_downstream = 256;
constexpr std::size_t max_body = 256 * 1024;          // a DATA is sent once its entries reach this
constexpr std::size_t max_remote_prefixes = 1000000;  // what one link may make this relay hold
constexpr std::size_t max_all_prefixes = 4000000;     // and all links together
constexpr std::size_t max_sent_up = 65536;
constexpr std::chrono::milliseconds max_backoff{5000};  // between HELLOs to an upstream that does not answer
constexpr std::chrono::milliseconds refused_retry{10000};
constexpr std::chrono::milliseconds turn_every{100};

bool is_sys(std::string_view topic) { return topic.compare(0, 5, "$SYS.") == 0; }

// The publisher id of a batch header (offset 8).
std::uint64_t publisher_of(std::string_view header) {
  return big_endian::get64(reinterpret_cast<const unsigned char*>(header.data()) + 8);
}

std::string names(const std::vector<link_wire::relay_ref>& chain) {
  std::string s;
  for (const auto& r : chain) s += (s.empty() ? "" : " → ") + r.name;
  return s;
}

}  // namespace

federation::federation(settings s, io out, relay_stats& stats, relay_log& log)
    : cfg_(std::move(s)), io_(std::move(out)), stats_(stats), log_(log), jitter_state_(cfg_.id | 1) {
  if (has_upstream()) {
    links_.emplace_back();
    auto& l = links_.back();
    l.used = true;
    l.up = true;
    l.name = cfg_.upstream;
  }
  told_chain_ = own_chain();
  told_rooted_ = own_rooted();
}

std::size_t federation::add_link() {
  std::size_t i = has_upstream() ? 1 : 0;
  while (i < links_.size() && links_[i].used) ++i;
  if (i == links_.size()) links_.emplace_back();
  links_[i] = link{};
  links_[i].used = true;
  links_[i].next_seq = seq_base_;
  return i;
}

federation::link* federation::find_route(std::string_view route) {
  if (route.empty()) return has_upstream() ? &links_[0] : nullptr;
  for (auto& l : links_)
    if (l.used && !l.up && l.route == route) return &l;
  return nullptr;
}

std::size_t federation::find_id(std::uint64_t id) const {
  for (std::size_t i = 0; i < links_.size(); ++i)
    if (links_[i].used && !links_[i].up && links_[i].id == id) return i;
  return none;
}

void federation::send(link& l, std::string_view frame1, std::string_view frame2) {
  io_.send(l.up ? std::string_view() : std::string_view(l.route), frame1, frame2);
}

void federation::update_gauges() {
  std::size_t active = 0;
  linked_ = false;
  for (const auto& k : links_) {
    active += k.used && k.st == state::active ? 1 : 0;
    linked_ = linked_ || (k.used && k.forwarding);
  }
  stats_.links_active.store(active, std::memory_order_relaxed);
  stats_.upstream_up.store(has_upstream() && links_[0].st == state::active ? 1 : 0, std::memory_order_relaxed);
}

// --- interest ---

void federation::local(bool subscribe, std::string_view prefix) {
  std::string p(prefix);
  if (subscribe ? !local_.insert(p).second : local_.erase(p) == 0) return;
  change(none, subscribe, p);
}

std::uint32_t federation::count_without(const std::string& prefix, std::size_t li) const {
  const auto it = count_.find(prefix);
  const std::uint32_t c = it == count_.end() ? 0 : it->second;
  const std::uint32_t mine = links_[li].remote.count(prefix) != 0 ? 1 : 0;
  return c > mine ? c - mine : 0;
}

void federation::change(std::size_t source, bool subscribe, const std::string& prefix) {
  std::uint32_t before = 0, after = 0;
  if (subscribe) {
    auto& c = count_[prefix];
    before = c++;
    after = c;
    if (before == 0) io_.xsub(true, prefix);
  } else {
    const auto it = count_.find(prefix);
    if (it == count_.end()) return;
    before = it->second--;
    after = it->second;
    if (after == 0) {
      count_.erase(it);
      io_.xsub(false, prefix);
    }
  }
  if (is_sys(prefix)) return;  // nothing of $SYS. crosses a link
  for (std::size_t li = 0; li < links_.size(); ++li) {
    auto& l = links_[li];
    if (!l.used || li == source || l.st != state::active) continue;
    const std::int64_t mine = l.remote.count(prefix) != 0 ? 1 : 0;
    const bool was = std::int64_t{before} - mine > 0, is = std::int64_t{after} - mine > 0;
    if (was != is) l.changes.emplace_back(is, prefix);
  }
}

void federation::take_prefixes(std::size_t li, const link_wire::message& m) {
  auto& l = links_[li];
  l.subs_in += m.prefixes.size();
  relay_stats::add(stats_.link_subs_in, m.prefixes.size());
  for (const auto& p : m.prefixes) m.what == link_wire::kind::sub ? add_remote(li, p) : remove_remote(li, p);
  if (m.too_long == 0) return;
  relay_stats::add(stats_.malformed, m.too_long);
  if (!l.said_too_long)
    log_.line("warning: " + label(l) + " sent " + std::to_string(m.too_long) + " subscription(s) of up to " +
              std::to_string(m.longest) + " bytes, over this relay's --max-topic (" + std::to_string(cfg_.max_prefix) +
              "): left out, so their subscribers get nothing across this link (give every relay of a tree the "
              "same limits)");
  l.said_too_long = true;
}

void federation::add_remote(std::size_t li, const std::string& prefix) {
  auto& l = links_[li];
  l.stale.erase(prefix);
  if (l.remote.count(prefix) == 0 && (l.remote.size() >= max_remote_prefixes || remote_total_ >= max_all_prefixes)) {
    log_.note([&] { return label(l) + ": more prefixes than a link may hold; '" + prefix + "' is not taken"; });
    return;
  }
  if (l.resync) l.fresh.insert(prefix);
  if (!l.remote.insert(prefix).second) return;
  ++remote_total_;
  ++l.lengths[prefix.size()];
  l.cached = false;
  change(li, true, prefix);
}

// Withdraws every prefix of `prefixes` (the link's interest, or its stale part) from link li.
void federation::remove_all(std::size_t li, const std::unordered_set<std::string>& prefixes) {
  const std::vector<std::string> gone(prefixes.begin(), prefixes.end());  // remove_remote changes the sets
  for (const auto& p : gone) remove_remote(li, p);
}

void federation::remove_remote(std::size_t li, const std::string& prefix) {
  auto& l = links_[li];
  l.stale.erase(prefix);
  if (l.remote.erase(prefix) == 0) return;
  --remote_total_;
  if (--l.lengths[prefix.size()] == 0) l.lengths.erase(prefix.size());
  l.cached = false;
  change(li, false, prefix);
}

bool federation::matches(link& l, std::string_view topic) {
  if (l.remote.empty()) return false;
  if (l.cached && topic == l.cached_topic) return l.cached_match;
  bool found = false;
  std::string key;
  for (const auto& [len, n] : l.lengths) {
    if (len > topic.size()) continue;
    key.assign(topic.data(), len);
    if (l.remote.count(key) != 0) {
      found = true;
      break;
    }
  }
  l.cached_topic.assign(topic.data(), topic.size());
  l.cached_match = found;
  l.cached = true;
  return found;
}

void federation::send_all_interest(std::size_t li) {
  auto& l = links_[li];
  l.changes.clear();
  std::vector<std::string> all;
  for (const auto& [p, c] : count_)
    if (!is_sys(p) && count_without(p, li) > 0) all.push_back(p);
  std::sort(all.begin(), all.end());
  std::size_t from = 0, bytes = 0;
  for (std::size_t i = 0; i <= all.size(); ++i) {
    if (i == all.size() || bytes + all[i].size() + 2 > link_wire::max_prefix_frame) {
      if (i > from) send(l, link_wire::encode_prefixes(link_wire::kind::sub, cfg_.id, all, from, i));
      from = i;
      bytes = 0;
    }
    if (i < all.size()) bytes += all[i].size() + 2;
  }
  l.subs_out += all.size();
  relay_stats::add(stats_.link_subs_out, all.size());
  send(l, link_wire::encode_ready(cfg_.id, l.up ? up_jseq_ : io_.live_from ? io_.live_from() : 0));
}

// The other side has sent its whole interest again (its READY after a handshake). What it had
// before and did not send again goes, but only after stale_grace: a relay that restarted sends the
// interest it has, and its other links' comes back as they link again.
void federation::end_resync(std::size_t li, clock::time_point now) {
  auto& l = links_[li];
  if (!l.resync) return;
  for (const auto& p : l.remote)
    if (l.fresh.count(p) == 0) l.stale.insert(p);
  l.stale_at = now + cfg_.stale_grace;
  l.resync = false;
  l.fresh.clear();
}

bool federation::wanted(std::string_view topic, std::size_t from) {
  for (const auto& p : local_)
    if (topic.compare(0, p.size(), p) == 0) return true;
  for (std::size_t li = 0; li < links_.size(); ++li)
    if (li != from && links_[li].used && links_[li].forwarding && matches(links_[li], topic)) return true;
  return false;
}

// --- handshakes ---

std::vector<link_wire::relay_ref> federation::own_chain() const {
  std::vector<link_wire::relay_ref> c{{cfg_.id, cfg_.name}};
  // The upstream's chain as it last said, once it said one (active, or waiting for a root: a loop
  // shows as this relay coming back in a chain).
  if (has_upstream() && (links_[0].forwarding || links_[0].st == state::waiting))
    for (const auto& r : links_[0].chain) {
      if (c.size() >= link_wire::max_chain) break;
      c.push_back(r);
    }
  return c;
}

bool federation::own_rooted() const {
  if (!has_upstream()) return true;
  return links_[0].forwarding && links_[0].chain_rooted && links_[0].chain.size() < link_wire::max_chain;
}

bool federation::holds_self(const std::vector<link_wire::relay_ref>& chain) const {
  return std::any_of(chain.begin(), chain.end(), [&](const link_wire::relay_ref& r) { return r.id == cfg_.id; });
}

std::string federation::loop_text(const std::vector<link_wire::relay_ref>& chain) const {
  std::vector<link_wire::relay_ref> ring{{cfg_.id, cfg_.name}};
  for (const auto& r : chain) {
    ring.push_back(r);
    if (r.id == cfg_.id) break;
  }
  if (ring.back().id != cfg_.id) ring.push_back({cfg_.id, cfg_.name});
  return "it would close a loop: " + names(ring);
}

void federation::chain_changed() {
  const auto c = own_chain();
  const bool rooted = own_rooted();
  if (c == told_chain_ && rooted == told_rooted_) return;
  told_chain_ = c;
  told_rooted_ = rooted;
  for (auto& l : links_)
    if (l.used && !l.up) send(l, link_wire::encode_chain(link_wire::kind::chain, cfg_.id, rooted, c));
}

void federation::activate(std::size_t li, clock::time_point now) {
  auto& l = links_[li];
  const bool again = l.forwarding;
  l.st = state::active;
  l.forwarding = true;
  l.backoff = std::chrono::milliseconds(100);
  l.said_down = false;
  l.last_heard = l.last_progress = now;
  send_all_interest(li);
  l.resend_from = l.window.empty() ? none : 0;  // what it had not acked goes again
  update_gauges();
  if (l.up) {
    log_.line("link to upstream " + cfg_.upstream + ": active (" + names(l.chain) + (l.chain_rooted ? "" : " …") + ")" +
              (l.window.empty() ? std::string()
                                : "; sending again " + std::to_string(l.window_msgs) + " message(s) not acked"));
    chain_changed();
  } else {
    log_.line("link from downstream " + l.name + ": " + (again ? "active again" : "active"));
  }
}

void federation::drop_window(link& l) {
  const auto lost = l.window_msgs + l.body_msgs;
  if (lost != 0) {
    l.dropped += lost;
    relay_stats::add(stats_.link_dropped, lost);
  }
  l.window.clear();
  l.window_msgs = l.window_bytes = 0;
  l.body.clear();
  l.body_entries = 0;
  l.body_msgs = 0;
  l.resend_from = none;
}

void federation::forget(std::size_t li, const std::string& why) {
  auto& l = links_[li];
  const auto lost = l.window_msgs + l.body_msgs;
  log_.line("link from downstream " + l.name + " ended (" + why + ")" +
            (lost != 0 ? ": " + std::to_string(lost) + " message(s) it had not acked are dropped" : std::string()));
  remove_all(li, l.remote);
  drop_window(l);
  l = link{};
  update_gauges();
}

void federation::refuse_upstream(const std::string& why) {
  auto& l = links_[0];
  relay_stats::add(stats_.links_refused);
  if (l.st != state::refused)
    log_.line("warning: refusing the link to upstream " + cfg_.upstream + ": " + why + " (trying again every " +
              std::to_string(refused_retry.count() / 1000) + " s)");
  if (l.st == state::active || l.st == state::waiting)
    send(l, link_wire::encode_signal(link_wire::kind::bye, cfg_.id));  // the upstream frees its slot
  l.st = state::refused;
  l.forwarding = false;
  remove_all(0, l.remote);
  drop_window(l);
  l.next_hello = clock::now() + refused_retry;
  update_gauges();
  chain_changed();
}

void federation::upstream_lost(const std::string& why, clock::time_point now) {
  auto& l = links_[0];
  if (l.st == state::active || l.st == state::waiting) {
    log_.line("link to upstream " + cfg_.upstream + ": down (" + why + ")" +
              (l.forwarding ? "; messages for it wait, up to " + std::to_string(cfg_.window_msgs) + " (" +
                                  std::to_string(l.window_msgs) + " now)"
                            : std::string()));
  }
  if (l.st != state::refused) l.st = state::connecting;
  l.connecting_since = now;
  l.said_silent = false;
  l.backoff = std::chrono::milliseconds(100);
  l.next_hello = now;
  update_gauges();
}

void federation::control(std::string_view route, const void* data, std::size_t size, clock::time_point now) {
  link_wire::message m;
  std::string why;
  if (!link_wire::decode(data, size, cfg_.max_prefix, m, why)) {
    relay_stats::add(stats_.malformed);
    log_.note([&] { return "ignored a link frame: " + why; });
    return;
  }
  if (route.empty()) {
    if (has_upstream()) on_upstream(m, now);
    return;
  }
  on_downstream(route, m, now);
}

void federation::on_upstream(const link_wire::message& m, clock::time_point now) {
  auto& l = links_[0];
  using k = link_wire::kind;
  if (m.what == k::welcome || m.what == k::chain) {
    if (m.chain.empty() || m.chain[0].id != m.id) {
      relay_stats::add(stats_.malformed);
      return;
    }
    if (m.what == k::chain && (l.id != m.id || l.st == state::refused || l.st == state::connecting)) return;
    l.last_heard = now;
    if (m.what == k::welcome) {
      if (l.st == state::active) return;  // an answer to a HELLO sent again: it is active already
      l.id = m.id;
      l.resync = true;
      l.fresh.clear();
    }
    l.chain = m.chain;
    l.chain_rooted = m.rooted;
    if (m.id == cfg_.id || holds_self(m.chain)) {
      refuse_upstream(m.id == cfg_.id ? "it is this relay itself" : loop_text(m.chain));
      return;
    }
    if (l.st != state::active) {
      if (m.rooted) {
        activate(0, now);
      } else if (l.st != state::waiting) {
        l.st = state::waiting;
        log_.line("link to upstream " + cfg_.upstream + ": waiting (" + names(m.chain) +
                  " …): the upstream has not reached the root of its tree, so a loop cannot be ruled out yet");
      }
    }
    chain_changed();
    return;
  }
  if (l.id == 0 || m.id != l.id) {
    if (m.what == k::refuse) {
      if (l.st != state::refused)
        log_.line("warning: the upstream " + cfg_.upstream + " refused the link: " + m.text + " (trying again every " +
                  std::to_string(refused_retry.count() / 1000) + " s)");
      l.st = state::refused;
      l.next_hello = now + refused_retry;
    } else if ((m.what == k::pong || m.what == k::bye) && l.id != 0 && l.st == state::active) {
      upstream_lost("another relay answers at its address: it restarted", now);
    }
    return;
  }
  l.last_heard = now;
  switch (m.what) {
    case k::refuse: refuse_upstream("the upstream refused it: " + m.text); break;
    case k::bye: upstream_lost("the upstream ended the link", now); break;
    case k::sub:
    case k::unsub: take_prefixes(0, m); break;
    case k::ready:
      end_resync(0, now);
      up_jseq_ = std::max(up_jseq_, m.resume);  // it goes on live from there: what is before is its journal's
      live_from_up_ = m.resume;
      break;
    default: break;
  }
}

void federation::on_downstream(std::string_view route, const link_wire::message& m, clock::time_point now) {
  using k = link_wire::kind;
  if (m.what == k::hello) {
    const auto mine = own_chain();
    std::string refusal;
    if (m.id == cfg_.id) refusal = "it has this relay's own id";
    else if (std::any_of(mine.begin(), mine.end(), [&](const link_wire::relay_ref& r) { return r.id == m.id; })) {
      std::vector<link_wire::relay_ref> ring(mine.begin(), mine.end());
      while (!ring.empty() && ring.back().id != m.id) ring.pop_back();
      ring.insert(ring.begin(), {m.id, m.name});
      refusal = "a link from " + m.name + " would close a loop: " + names(ring);
    }
    // One link a connection: another id on it ends the link it had.
    for (std::size_t i = 0; i < links_.size() && refusal.empty(); ++i)
      if (links_[i].used && !links_[i].up && links_[i].route == route && links_[i].id != m.id)
        forget(i, "its connection says HELLO as another relay");
    auto li = refusal.empty() ? find_id(m.id) : none;
    if (refusal.empty() && li == none) {
      std::size_t downstream = 0;
      for (const auto& l : links_) downstream += l.used && !l.up ? 1 : 0;
      if (downstream >= max_downstream) refusal = "too many links (" + std::to_string(max_downstream) + ")";
      else li = add_link();
    }
    if (!refusal.empty()) {
      relay_stats::add(stats_.links_refused);
      log_.line("warning: refused a link from " + m.name + ": " + refusal);
      io_.send(route, link_wire::encode_refuse(cfg_.id, refusal), {});
      return;
    }
    auto& l = links_[li];
    l.id = m.id;
    l.name = m.name.empty() ? to_hex(m.id) : m.name;
    l.route.assign(route.data(), route.size());
    l.last_heard = l.hello_at = now;
    if (l.st == state::active) l.st = state::waiting;  // it came back: its READY activates it again
    if (l.st != state::waiting) l.st = state::connecting;
    l.resync = true;
    l.fresh.clear();
    send(l, link_wire::encode_chain(link_wire::kind::welcome, cfg_.id, own_rooted(), own_chain()));
    return;
  }
  const auto li = find_id(m.id);
  // A link is its HELLO's connection: the same id on another one (a reconnect that has not said
  // HELLO yet, or someone else) is told BYE, so it says HELLO.
  if (li == none || links_[li].route != route) {
    if (m.what != k::bye && m.what != k::refuse) io_.send(route, link_wire::encode_signal(k::bye, cfg_.id), {});
    return;
  }
  auto& l = links_[li];
  l.last_heard = now;
  switch (m.what) {
    case k::ping: send(l, link_wire::encode_signal(k::pong, cfg_.id)); break;
    case k::bye:
    case k::refuse: forget(li, m.what == k::bye ? "it ended the link" : "it refused the link: " + m.text); break;
    case k::sub:
    case k::unsub: take_prefixes(li, m); break;
    case k::ready: {
      end_resync(li, now);
      if (l.st != state::active) {
        const bool known = l.forwarding;  // it has a window here: what it lacks is resent from it
        activate(li, now);
        if (!known && m.resume != 0 && io_.catch_up) io_.catch_up(li, m.resume);
      }
      break;
    }
    default: break;
  }
}

// --- messages ---

std::size_t federation::data_link(std::string_view route, std::uint64_t id, clock::time_point now) {
  if (route.empty()) {
    if (!has_upstream() || links_[0].st != state::active || links_[0].id != id) return none;
    links_[0].last_heard = now;
    return 0;
  }
  const auto li = find_id(id);
  if (li == none || links_[li].route != route) {  // not its HELLO's connection: it says HELLO again
    io_.send(route, link_wire::encode_signal(link_wire::kind::bye, cfg_.id), {});
    return none;
  }
  auto& l = links_[li];
  l.last_heard = now;
  return l.st == state::active ? li : none;
}

void federation::received(std::size_t from, std::uint64_t msgs, std::uint64_t jseq_end) {
  if (links_[from].up) up_jseq_ = std::max(up_jseq_, jseq_end);
  links_[from].in += msgs;
  relay_stats::add(stats_.link_msgs_in, msgs);
}

bool federation::echo(const std::string_view* frames, std::size_t n, std::uint64_t jseq_end) const {
  if (jseq_end == 0 || jseq_end > live_from_up_) return false;
  if (n != 3 || frames[1].size() < 16 || sent_up_.empty()) return false;
  return sent_up_.count(publisher_of(frames[1])) != 0;
}

void federation::note_sent_up(std::uint64_t publisher) {
  const auto it = sent_up_.find(publisher);
  if (it != sent_up_.end()) {
    sent_up_order_.splice(sent_up_order_.end(), sent_up_order_, it->second);
    return;
  }
  if (sent_up_.size() >= max_sent_up) {
    sent_up_.erase(sent_up_order_.front());
    sent_up_order_.pop_front();
  }
  sent_up_order_.push_back(publisher);
  sent_up_[publisher] = std::prev(sent_up_order_.end());
}

void federation::forward(const std::string_view* frames, std::size_t n, bool batch, std::uint32_t count,
                         std::size_t from, std::uint64_t time_ns, std::uint64_t jseq_end, std::size_t only) {
  if (n == 0 || links_.empty() || is_sys(frames[0])) return;
  std::size_t size = 0;
  for (std::size_t li = 0; li < links_.size(); ++li) {
    auto& l = links_[li];
    if (!l.used || li == from || (only != none && li != only) || !l.forwarding || !matches(l, frames[0])) continue;
    if (l.up && batch && n == 3 && frames[1].size() >= 16) note_sent_up(publisher_of(frames[1]));
    if (size == 0) size = record::encoded_size(frames, n);
    if (l.window_msgs + l.body_msgs + count > cfg_.window_msgs ||
        l.window_bytes + l.body.size() + size > cfg_.window_bytes) {
      l.dropped += count;
      relay_stats::add(stats_.link_dropped, count);
      log_.note(
          [&] { return "dropped " + std::to_string(count) + " message(s) for " + label(l) + ": its window is full"; });
      continue;
    }
    if (l.body_entries != 0 && l.body.size() + size > max_body) flush(l, clock::now());
    // An entry's jseq: this relay's journal seq when it has one (so the receiver tells a catch-up
    // from live), else the link sequence. The receiver counts link sequences by DATA, not by these.
    record::append(l.body, batch ? record::kind::batch : record::kind::plain,
                   jseq_end != 0 ? jseq_end - count : l.next_seq + l.body_entries, time_ns, count, frames, n, false);
    ++l.body_entries;
    l.body_msgs += count;
    l.body_jseq_end = std::max(l.body_jseq_end, jseq_end);
  }
}

void federation::flush(link& l, clock::time_point now) {
  if (l.body_entries == 0) return;
  sent_data d;
  d.seq = l.next_seq;
  d.entries = l.body_entries;
  d.msgs = l.body_msgs;
  d.jseq_end = l.body_jseq_end;
  d.body.swap(l.body);
  l.next_seq += l.body_entries;
  seq_base_ = std::max(seq_base_, l.next_seq);
  l.window_msgs += d.msgs;
  l.window_bytes += d.body.size();
  l.out += d.msgs;
  relay_stats::add(stats_.link_msgs_out, d.msgs);
  l.body_entries = 0;
  l.body_msgs = 0;
  l.body_jseq_end = 0;
  l.body.reserve(d.body.size());
  l.window.push_back(std::move(d));
  if (l.window.size() == 1) l.last_progress = now;
  if (l.st == state::active) transmit(l, l.window.back(), now);
}

void federation::transmit(link& l, sent_data& d, clock::time_point now) {
  link_wire::data_header h;
  h.id = cfg_.id;
  h.seq = d.seq;
  h.count = d.entries;
  h.floor = l.window.front().seq;
  h.jseq_end = d.jseq_end;
  send(l, link_wire::encode_data(h), d.body);
  d.sent_at = now;
}

void federation::reply(std::string_view route, const wire::reply& r, clock::time_point now) {
  auto* l = find_route(route);
  if (l == nullptr || r.publisher != cfg_.id) return;
  l->last_heard = now;
  if (r.type == wire::kind::ack) {
    std::size_t popped = 0;
    while (!l->window.empty() && l->window.front().seq + l->window.front().entries - 1 <= r.seq) {
      l->window_msgs -= l->window.front().msgs;
      l->window_bytes -= l->window.front().body.size();
      l->window.pop_front();
      ++popped;
    }
    if (popped != 0) {
      l->last_progress = now;
      if (l->resend_from != none) l->resend_from = l->resend_from > popped ? l->resend_from - popped : 0;
      if (l->window.empty()) l->resend_from = none;
    }
  } else if (r.type == wire::kind::expect) {
    for (std::size_t i = 0; i < l->window.size(); ++i) {
      const auto& d = l->window[i];
      if (r.seq >= d.seq && r.seq < d.seq + d.entries) {
        l->resend_from = std::min(l->resend_from, i);
        break;
      }
    }
  }
}

std::string federation::label(const link& l) const {
  return l.up ? "upstream " + cfg_.upstream : "downstream " + l.name;
}

void federation::turn(clock::time_point now, bool reading) {
  for (std::size_t li = 0; li < links_.size(); ++li) {
    auto& l = links_[li];
    if (!l.used) continue;
    // Not reading: the silence is this relay's own, not the other side's.
    if (!reading)
      l.last_heard = std::max(l.last_heard, now - (l.up ? cfg_.upstream_silence : cfg_.downstream_silence) / 2);
    if (l.up) {
      if (l.connecting_since == clock::time_point{}) l.connecting_since = now;
      if (l.st == state::connecting && !l.said_silent && now - l.connecting_since >= std::chrono::seconds(10)) {
        l.said_silent = true;
        log_.line("link to upstream " + cfg_.upstream +
                  ": no answer for 10 s (is a zrelay running there? with CURVE: the right --upstream-server-key, "
                  "and this relay's public key in the upstream's --allow-keys?); still trying");
      }
      if (l.st != state::active && now >= l.next_hello) {
        send(l, link_wire::encode_hello(cfg_.id, cfg_.name));
        // Backoff with jitter: each wait is 75 to 125 % of the last doubled, up to max_backoff.
        jitter_state_ = jitter_state_ * 6364136223846793005ULL + 1442695040888963407ULL;
        const auto spread = static_cast<std::int64_t>(jitter_state_ >> 33) % 51 - 25;  // -25 .. 25
        const auto wait = l.backoff + l.backoff * spread / 100;
        l.next_hello = now + (l.st == state::refused ? refused_retry : wait);
        l.backoff = std::min(l.backoff * 2, max_backoff);
      }
      if (l.st == state::active) {
        if (now - l.last_ping >= cfg_.ping_every) {
          send(l, link_wire::encode_signal(link_wire::kind::ping, cfg_.id));
          l.last_ping = now;
        }
        if (now - l.last_heard > cfg_.upstream_silence) {
          upstream_lost("no answer for " + std::to_string(cfg_.upstream_silence.count()) + " ms", now);
        }
      }
    } else if (now - l.last_heard > cfg_.downstream_silence) {
      forget(li, "silent for " + std::to_string(cfg_.downstream_silence.count() / 1000) + " s");
      continue;
    } else if (l.st != state::active && now - l.hello_at > cfg_.downstream_silence) {
      forget(li, "no READY within " + std::to_string(cfg_.downstream_silence.count() / 1000) + " s of its HELLO");
      continue;
    }
    if (!l.stale.empty() && now >= l.stale_at) {
      remove_all(li, l.stale);
    }
    if (l.st != state::active) continue;
    // Subscription changes, runs of one kind in one frame each.
    std::size_t i = 0;
    while (i < l.changes.size()) {
      const bool sub = l.changes[i].first;
      std::vector<std::string> run;
      std::size_t bytes = 0;
      while (i < l.changes.size() && l.changes[i].first == sub && bytes < link_wire::max_prefix_frame - 1100) {
        bytes += l.changes[i].second.size() + 2;
        run.push_back(std::move(l.changes[i].second));
        ++i;
      }
      send(l, link_wire::encode_prefixes(sub ? link_wire::kind::sub : link_wire::kind::unsub, cfg_.id, run, 0,
                                         run.size()));
      l.subs_out += run.size();
      relay_stats::add(stats_.link_subs_out, run.size());
    }
    l.changes.clear();
    flush(l, now);
    // Nothing acked for ack_timeout: everything not acked goes again (the receiver takes what it
    // lacks and acks the rest again).
    if (!l.window.empty() && l.resend_from == none && now - l.last_progress >= cfg_.ack_timeout &&
        now - l.window.front().sent_at >= cfg_.ack_timeout)
      l.resend_from = 0;
    if (l.resend_from != none) {
      for (std::size_t k = l.resend_from; k < l.window.size(); ++k) {
        if (l.window[k].sent_at != clock::time_point{}) {
          l.resent += l.window[k].msgs;
          relay_stats::add(stats_.link_resent, l.window[k].msgs);
        }
        transmit(l, l.window[k], now);
      }
      l.resend_from = none;
      l.last_progress = now;
    }
  }
  next_due_ = now + turn_every;
}

void federation::stop() {
  for (auto& l : links_)
    if (l.used && l.st == state::active) send(l, link_wire::encode_signal(link_wire::kind::bye, cfg_.id));
}

const char* federation::state_name(state s) {
  switch (s) {
    case state::connecting: return "connecting";
    case state::waiting: return "waiting";
    case state::active: return "active";
    case state::refused: return "refused";
  }
  return "?";
}

std::string federation::describe() const {
  std::string s;
  for (const auto& l : links_) {
    if (!l.used) continue;
    s += " link[" + std::string(l.up ? "up " + cfg_.upstream : "down " + l.name) + "]=" + state_name(l.st) +
         ",in=" + std::to_string(l.in) + ",out=" + std::to_string(l.out) + ",resent=" + std::to_string(l.resent) +
         ",dropped=" + std::to_string(l.dropped) + ",unacked=" + std::to_string(l.window_msgs + l.body_msgs) +
         ",interest=" + std::to_string(l.remote.size());
  }
  return s;
}

std::string federation::json() const {
  std::string s = "[";
  for (const auto& l : links_) {
    if (!l.used) continue;
    if (s.size() > 1) s += ",";
    s += "{\"peer\":";
    append_json_string(s, l.up ? cfg_.upstream : l.name);
    s += std::string(",\"dir\":\"") + (l.up ? "up" : "down") + "\",\"state\":\"" + state_name(l.st) +
         "\",\"in\":" + std::to_string(l.in) + ",\"out\":" + std::to_string(l.out) +
         ",\"resent\":" + std::to_string(l.resent) + ",\"dropped\":" + std::to_string(l.dropped) +
         ",\"unacked\":" + std::to_string(l.window_msgs + l.body_msgs) +
         ",\"interest\":" + std::to_string(l.remote.size()) + ",\"subs_in\":" + std::to_string(l.subs_in) +
         ",\"subs_out\":" + std::to_string(l.subs_out) + "}";
  }
  return s + "]";
}

}  // namespace zrelay
