#include "zrelay/endpoint.hpp"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <cctype>

namespace zrelay {
namespace {

[[noreturn]] void fail(std::string_view text, std::string_view why) {
  throw endpoint_error("malformed endpoint '" + std::string(text) + "': " + std::string(why));
}

bool valid_hostname(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  for (char c : h) {
    const auto u = static_cast<unsigned char>(c);
    if (!std::isalnum(u) && c != '-' && c != '.' && c != '_') return false;
  }
  return h.front() != '-' && h.front() != '.';
}

bool valid_ipv6(std::string_view h) {
  if (h.empty()) return false;
  const auto zone = h.find('%');
  const auto addr = h.substr(0, zone);
  if (addr.find(':') == std::string_view::npos) return false;
  for (char c : addr) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != ':' && c != '.') return false;
  }
  return zone == std::string_view::npos || zone + 1 < h.size();
}

}  // namespace

endpoint parse_endpoint(std::string_view text, endpoint_use use) {
  endpoint ep;
  ep.text = std::string(text);
  const auto sep = text.find("://");
  if (sep == std::string_view::npos) fail(text, "expected tcp://HOST:PORT, ipc://PATH or inproc://NAME");
  const auto scheme = text.substr(0, sep);
  const auto rest = text.substr(sep + 3);
  if (scheme == "ipc" || scheme == "inproc") {
    ep.kind = scheme == "ipc" ? transport::ipc : transport::inproc;
    if (rest.empty()) fail(text, std::string(scheme) + " needs a " + (scheme == "ipc" ? "path" : "name"));
    if (ep.kind == transport::ipc && rest.size() >= sizeof(sockaddr_un{}.sun_path))
      fail(text, "ipc path is longer than " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " bytes");
    ep.address = std::string(rest);
    return ep;
  }
  if (scheme != "tcp") fail(text, "unknown transport '" + std::string(scheme) + "' (use tcp, ipc or inproc)");
  ep.kind = transport::tcp;
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || rest.back() == ']') fail(text, "tcp needs HOST:PORT");
  auto host = rest.substr(0, colon);
  const auto port = rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (!valid_ipv6(host)) fail(text, "'" + std::string(host) + "' is not an IPv6 address");
  } else if (host.find(':') != std::string_view::npos) {
    fail(text, "write an IPv6 host in brackets, as tcp://[::1]:5559");
  } else if (host == "*") {
    if (use == endpoint_use::connect) fail(text, "'*' as host is only for binding");
  } else if (!valid_hostname(host)) {
    fail(text,
         host.empty() ? std::string("the host is empty") : "'" + std::string(host) + "' is not a valid host name");
  }
  if (port == "*") {
    if (use == endpoint_use::connect) fail(text, "'*' as port is only for binding");
  } else {
    if (port.empty() || port.size() > 5) fail(text, "the port must be 1-65535 or '*'");
    unsigned long value = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) fail(text, "the port must be 1-65535 or '*'");
      value = value * 10 + static_cast<unsigned long>(c - '0');
    }
    if (value == 0 || value > 65535) fail(text, "the port must be 1-65535 or '*'");
  }
  ep.host = std::string(host);
  ep.port = std::string(port);
  return ep;
}

std::string tcp_endpoint(std::string_view host, unsigned port) {
  std::string h(host);
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  auto text = "tcp://" + h + ":" + std::to_string(port);
  parse_endpoint(text, endpoint_use::connect);
  return text;
}

void check_resolvable(const endpoint& ep) {
  if (ep.kind != transport::tcp || ep.host == "*") return;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = ::getaddrinfo(ep.host.c_str(), nullptr, &hints, &res);
  if (rc != 0) throw endpoint_error("cannot resolve '" + ep.host + "': " + ::gai_strerror(rc));
  ::freeaddrinfo(res);
}

bool ipc_in_use(std::string_view endpoint) {
  constexpr std::string_view scheme = "ipc://";
  if (endpoint.substr(0, scheme.size()) != scheme) return false;
  const auto path = endpoint.substr(scheme.size());
  sockaddr_un addr{};
  if (path.empty() || path[0] == '@' || path.size() >= sizeof addr.sun_path) return false;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  // Non-blocking: a listener whose backlog is full (a stuck relay) answers EAGAIN at once.
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool listening = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN ||
                         errno == EINPROGRESS;
  ::close(fd);
  return listening;
}

}  // namespace zrelay
