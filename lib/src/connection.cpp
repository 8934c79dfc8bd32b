#include "zrelay/connection.hpp"

#include <cstdint>
#include <cstring>

#include "zrelay/endpoint.hpp"

namespace zrelay {
namespace {

std::string monitor_name(const zmq::socket_t& sock) {
  return "inproc://zrelay-monitor-" + std::to_string(reinterpret_cast<std::uintptr_t>(sock.handle()));
}

// One socket monitor event: its id (0 for a short, unreadable one) and value.
struct monitor_event {
  std::uint16_t id = 0;
  std::uint32_t value = 0;
};

// Takes the next event off a monitor's PAIR socket without waiting; false when there is none.
bool next_event(zmq::socket_t& pair, monitor_event& ev) {
  zmq::message_t event, addr;
  if (!pair.recv(event, zmq::recv_flags::dontwait)) return false;
  if (event.more()) (void)pair.recv(addr);
  ev = monitor_event{};
  if (event.size() >= 6) {
    std::memcpy(&ev.id, event.data(), sizeof ev.id);
    std::memcpy(&ev.value, static_cast<const char*>(event.data()) + 2, sizeof ev.value);
  }
  return true;
}

// Stops the monitor whatever way the wait ends.
struct monitor_guard {
  zmq::socket_t& sock;
  ~monitor_guard() { zmq_socket_monitor(sock.handle(), nullptr, 0); }
};

}  // namespace

bool connect_and_wait(zmq::context_t& ctx, zmq::socket_t& sock, const std::string& text,
                      std::chrono::milliseconds timeout, int stop_fd, const std::string& unreachable_hint) {
  endpoint ep;
  try {
    ep = parse_endpoint(text, endpoint_use::connect);
    check_resolvable(ep);
  } catch (const endpoint_error& e) {
    throw connect_error("cannot connect to '" + text + "': " + e.what());
  }
  if (timeout.count() <= 0 || ep.kind == transport::inproc) {
    sock.connect(text);
    return true;
  }
  const auto name = monitor_name(sock);
  // Declared before the guard, so closed after it: libzmq sends each event with a blocking send
  // while holding the socket's monitor lock, and a PAIR with no peer never takes it. Stopping
  // the monitor after its reader had gone could wait on that lock forever.
  zmq::socket_t mon(ctx, zmq::socket_type::pair);
  if (zmq_socket_monitor(sock.handle(), name.c_str(),
                         ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                             ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                             ZMQ_EVENT_CONNECT_RETRIED) != 0)
    throw connect_error("cannot connect to '" + text + "': cannot monitor socket: " + zmq_strerror(zmq_errno()));
  monitor_guard guard{sock};
  mon.connect(name);
  sock.connect(text);

  int retries = 0;
  int vague = 0;  // handshakes that failed without a reason
  const auto handshake_failed = [&] {
    if (sock.get(zmq::sockopt::mechanism) == ZMQ_CURVE)
      return "cannot connect to '" + text +
             "': the CURVE handshake failed (does the relay use CURVE, and is --curve-server-key its public key?)";
    return "cannot connect to '" + text +
           "': the ZeroMQ handshake failed (is that a zrelay port? if it uses CURVE, give --curve-key and "
           "--curve-server-key)";
  };
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    zmq::pollitem_t items[] = {{mon.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, stop_fd, ZMQ_POLLIN, 0}};
    zmq::poll(items, stop_fd >= 0 ? 2 : 1, left);
    if (stop_fd >= 0 && (items[1].revents & ZMQ_POLLIN)) return false;
    monitor_event ev;
    if (!(items[0].revents & ZMQ_POLLIN) || !next_event(mon, ev)) continue;
    const auto id = ev.id;
    if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) return true;
    if (id == ZMQ_EVENT_CONNECT_RETRIED) ++retries;
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
      if (id == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL && ev.value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        throw connect_error("cannot connect to '" + text +
                            "': the relay and this client disagree on CURVE encryption (one side has a key, the "
                            "other not: check --curve-key and --curve-server-key)");
      // The peer closing first is all some attempts learn (a relay that dropped us for using
      // the wrong mechanism, say); the next attempts, 100 ms apart, usually say more.
      if (id == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && ++vague < 5) continue;
      throw connect_error(handshake_failed());
    }
    if (id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
      throw connect_error("cannot connect to '" + text + "': the relay refused our credentials");
  }
  if (vague > 0) throw connect_error(handshake_failed());
  throw connect_error("cannot connect to '" + text +
                      "': " + (retries > 0 ? "connection refused or unreachable" : "no answer") + " after " +
                      std::to_string(timeout.count()) + " ms (" + unreachable_hint + ")");
}

void set_heartbeat(zmq::socket_t& sock, std::chrono::milliseconds interval) {
  if (interval.count() <= 0) return;  // ZeroMQ's default: none
  const auto ivl = static_cast<int>(interval.count());
  sock.set(zmq::sockopt::heartbeat_ivl, ivl);
  sock.set(zmq::sockopt::heartbeat_timeout, 3 * ivl);
  sock.set(zmq::sockopt::heartbeat_ttl, 3 * ivl);
}

void set_keepalive(zmq::socket_t& sock, std::chrono::milliseconds interval) {
  if (interval.count() <= 0) return;
  const auto secs = static_cast<int>((interval.count() + 999) / 1000);
  sock.set(zmq::sockopt::tcp_keepalive, 1);
  sock.set(zmq::sockopt::tcp_keepalive_idle, secs);
  sock.set(zmq::sockopt::tcp_keepalive_intvl, secs);
  sock.set(zmq::sockopt::tcp_keepalive_cnt, 3);
}

link_monitor::link_monitor(zmq::context_t& ctx, zmq::socket_t& sock) : sock_(sock), pair_(ctx, zmq::socket_type::pair) {
  const auto name = monitor_name(sock) + "-link";
  if (zmq_socket_monitor(sock.handle(), name.c_str(), ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0)
    throw std::runtime_error(std::string("cannot monitor socket: ") + zmq_strerror(zmq_errno()));
  pair_.set(zmq::sockopt::linger, 0);
  pair_.connect(name);
}

link_monitor::~link_monitor() { zmq_socket_monitor(sock_.handle(), nullptr, 0); }

zmq::pollitem_t link_monitor::poll_item() { return {pair_.handle(), 0, ZMQ_POLLIN, 0}; }

void link_monitor::drain(const change_fn& fn) {
  monitor_event ev;
  while (next_event(pair_, ev)) {
    const auto id = ev.id;
    if (id == ZMQ_EVENT_DISCONNECTED && !lost_) {
      lost_ = true;
      if (fn) fn(change::lost);
    } else if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && lost_) {
      lost_ = false;
      if (fn) fn(change::restored);
    }
  }
}

}  // namespace zrelay
