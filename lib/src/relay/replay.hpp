#pragma once
// Replay: the relay's ROUTER at --replay-bind, serving the journal to late joiners
// (docs/PROTOCOL.md, "Replay"). Its own thread reads the requests and the journal; the relay
// thread only constructs and destroys it. Each session (one per client routing id) has its
// prefixes, a cursor in the journal and credit: the journal is read only for sessions with credit,
// at most one DATA (~256 KiB) is built per session per round, sessions take turns, and nothing is
// held for a session beyond the one DATA its peer's queue could not take yet. A replay runs into
// the live tail of the journal (woken by store::head_fd), so its hand-over to live has no gap and
// no duplicate.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "relay/journal.hpp"
#include "relay/log.hpp"
#include "zrelay/relay.hpp"
#include "zrelay/stats.hpp"

namespace zrelay {

/// The limits of a replay server (tests lower them).
struct replay_limits {
  std::size_t max_sessions = 64;          ///< a REPLAY beyond this many sessions gets ERROR 3
  std::chrono::milliseconds idle{10000};  ///< a session silent this long is forgotten
  std::size_t data_bytes = 256 << 10;     ///< about the most entry bytes in one DATA
  std::uint32_t max_credit = 32;          ///< credit a session may hold (more granted is not kept)
  std::size_t scan_bytes = 4 << 20;       ///< journal bytes one session may read per round
};

class replay_server {
public:
  /// Binds cfg.journal.replay_bind with the relay's CURVE and heartbeat settings (throws
  /// endpoint_error, bind_error, key_error) and starts serving `store`, which must outlive this.
  /// Counts `replays` and `replayed` in `stats` (their one writer); logs to `log`.
  replay_server(zmq::context_t& ctx, const journal::store& store, const relay_config& cfg, relay_log& log,
                relay_stats& stats, replay_limits limits = {});
  /// Stops the thread and closes the socket (sessions are dropped, nothing is flushed).
  ~replay_server();
  replay_server(const replay_server&) = delete;
  replay_server& operator=(const replay_server&) = delete;

  /// The endpoint bound (an ephemeral port resolved).
  const std::string& endpoint() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace zrelay
