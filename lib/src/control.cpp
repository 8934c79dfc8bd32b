#include "zrelay/control.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <vector>

#include "zrelay/endpoint.hpp"
#include "zrelay/relay.hpp"  // bind_error

namespace zrelay::control {
namespace {

// Requests answered per serve(): the loop's other sockets are read between bursts.
constexpr int burst = 64;

bool loopback_host(const std::string& h) {
  if (h == "::1") return true;
  // 127.x.y.z: four decimal parts, the first 127.
  if (h.rfind("127.", 0) != 0) return false;
  int parts = 2, digits = 0;  // "127" and the one being read
  for (std::size_t i = 4; i < h.size(); ++i) {
    if (h[i] == '.') {
      if (digits == 0) return false;
      ++parts;
      digits = 0;
    } else if (h[i] >= '0' && h[i] <= '9' && digits < 3) {
      ++digits;
    } else {
      return false;
    }
  }
  return parts == 4 && digits > 0;
}

std::string text_of(const zmq::message_t& m) { return std::string(static_cast<const char*>(m.data()), m.size()); }

}  // namespace

std::string_view command_name(command c) { return c == command::stats ? "stats" : "reload"; }

std::optional<command> parse_command(std::string_view name) {
  if (name == "stats") return command::stats;
  if (name == "reload") return command::reload;
  return std::nullopt;
}

request parse_request(const std::string_view* frames, std::size_t n, std::size_t frames_seen) {
  request r;
  if (frames_seen != 1 || n != 1) {
    r.error = "a request is one frame holding a command (stats, reload); this one had " + std::to_string(frames_seen) +
              " frames";
    return r;
  }
  const auto f = frames[0];
  if (f.empty()) {
    r.error = "empty request: send a command (stats, reload)";
    return r;
  }
  if (f.size() > max_request) {
    r.error = "a request of " + std::to_string(f.size()) + " bytes is no command (at most " +
              std::to_string(max_request) + ")";
    return r;
  }
  for (const char c : f) {
    if (c < 0x21 || c > 0x7e) {
      r.error = "the request is not a command name (stats, reload): it holds a byte that is not printable ASCII";
      return r;
    }
  }
  r.what = parse_command(f);
  if (!r.what) r.error = "unknown command '" + std::string(f) + "' (stats, reload)";
  return r;
}

void check_bind(std::string_view text) {
  const auto ep = parse_endpoint(text, endpoint_use::bind);
  if (ep.kind != transport::tcp || loopback_host(ep.host)) return;
  if (ep.host == "localhost")
    throw endpoint_error("cannot use '" + std::string(text) + "' for the control socket: ZeroMQ binds addresses, " +
                         "not host names (tcp://127.0.0.1:" + ep.port + ")");
  throw endpoint_error("cannot use '" + std::string(text) +
                       "' for the control socket: it is not authenticated, so it binds loopback only "
                       "(tcp://127.0.0.1:PORT, tcp://[::1]:PORT) or ipc://PATH");
}

namespace {}  // namespace

void server::check_free(const std::string& endpoint) {
  // ZeroMQ removes a socket file in its way before binding ipc://PATH: a second relay would take a
  // running relay's control socket away without a word. So a path something listens on is in use.
  if (ipc_in_use(endpoint))
    throw bind_error("cannot bind '" + endpoint +
                     "' (the control socket): Address already in use (another zrelay? give --control-bind another "
                     "endpoint, or off)");
}

server::server(zmq::context_t& ctx, const std::string& endpoint, handlers h)
    : sock_(ctx, zmq::socket_type::router), h_(std::move(h)) {
  check_bind(endpoint);
  sock_.set(zmq::sockopt::linger, 0);
  sock_.set(zmq::sockopt::maxmsgsize, static_cast<std::int64_t>(max_frame));
  if (endpoint.find('[') != std::string::npos) sock_.set(zmq::sockopt::ipv6, 1);  // tcp://[::1]:PORT
  check_free(endpoint);
  try {
    sock_.bind(endpoint);
  } catch (const zmq::error_t& e) {
    throw bind_error("cannot bind '" + endpoint + "' (the control socket): " + e.what() +
                     (e.num() == EADDRINUSE ? " (another zrelay? give --control-bind another endpoint, or off)" : ""));
  }
  bound_ = sock_.get(zmq::sockopt::last_endpoint);
}

void server::serve() {
  for (int i = 0; i < burst && serve_one(); ++i) {}
}

// [routing id]([empty delimiter, from REQ])[request]: the reply goes back with the same envelope.
bool server::serve_one() {
  zmq::message_t id;
  if (!sock_.recv(id, zmq::recv_flags::dontwait)) return false;
  bool more = id.more();
  bool delimiter = false;
  std::array<zmq::message_t, 1> kept;
  std::size_t n = 0, seen = 0;
  zmq::message_t f;
  while (more) {
    // The frames of a message arrive together: once the first is here, the others are.
    if (!sock_.recv(f, zmq::recv_flags::dontwait)) break;
    more = f.more();
    if (seen == 0 && !delimiter && f.size() == 0 && more) {
      delimiter = true;
      continue;
    }
    if (n < kept.size()) kept[n++].move(f);
    ++seen;
  }
  std::array<std::string_view, 1> views;
  for (std::size_t i = 0; i < n; ++i) views[i] = {static_cast<const char*>(kept[i].data()), kept[i].size()};
  const auto req = parse_request(views.data(), n, seen);
  answer a;
  if (!req.what) {
    a = {false, req.error};
  } else {
    try {
      if (*req.what == command::stats) a = {true, h_.stats ? h_.stats() : std::string("{}")};
      else a = h_.reload ? h_.reload() : answer{false, "reload: not supported here"};
    } catch (const std::exception& e) {
      a = {false, std::string(command_name(*req.what)) + " failed: " + e.what()};
    }
  }
  if (req.what) {
    ++answered_;
  } else {
    ++refused_;
    if (!warned_ && log_)
      log_("warning: control socket: refused a request: " + req.error + " (further ones are not logged)");
    warned_ = true;
  }
  // A client that is gone, or not reading, loses its answer; nothing else waits for it.
  const std::string status = a.ok ? "ok" : "error";
  if (!sock_.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return true;
  if (delimiter) (void)sock_.send(zmq::message_t(), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  (void)sock_.send(zmq::buffer(status), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  (void)sock_.send(zmq::buffer(a.body), zmq::send_flags::dontwait);
  return true;
}

std::optional<answer> call(zmq::context_t& ctx, const std::string& endpoint, command c,
                           std::chrono::milliseconds timeout) {
  zmq::socket_t s(ctx, zmq::socket_type::req);
  s.set(zmq::sockopt::linger, 0);
  if (endpoint.find('[') != std::string::npos) s.set(zmq::sockopt::ipv6, 1);  // tcp://[::1]:PORT
  s.connect(endpoint);
  const auto until = std::chrono::steady_clock::now() + timeout;
  const auto left = [&] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::ceil<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()));
  };
  // zmq_poll may wake a little early by this clock: each wait goes on until the deadline.
  const auto wait_for = [&](short events) {
    zmq::pollitem_t item{s.handle(), 0, events, 0};
    do {
      zmq::poll(&item, 1, left());
      if (item.revents & events) return true;
    } while (std::chrono::steady_clock::now() < until);
    return false;
  };
  const auto name = command_name(c);
  if (!wait_for(ZMQ_POLLOUT) || !s.send(zmq::buffer(name.data(), name.size()), zmq::send_flags::dontwait))
    return std::nullopt;
  if (!wait_for(ZMQ_POLLIN)) return std::nullopt;
  std::vector<zmq::message_t> frames;
  zmq::message_t m;
  bool more = true;
  while (more && s.recv(m, zmq::recv_flags::dontwait)) {
    more = m.more();
    frames.push_back(std::move(m));
  }
  const auto status = frames.empty() ? std::string() : text_of(frames[0]);
  if (frames.size() != 2 || (status != "ok" && status != "error"))
    throw std::runtime_error("'" + endpoint +
                             "' answered with something other than a control reply: is it zrelay's --control-bind "
                             "endpoint?");
  return answer{status == "ok", text_of(frames[1])};
}

}  // namespace zrelay::control
