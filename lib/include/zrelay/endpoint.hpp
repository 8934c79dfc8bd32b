#pragma once
// Endpoints: parse and validate ZeroMQ endpoint strings before any socket sees them.

#include <stdexcept>
#include <string>
#include <string_view>

#include "zrelay/defaults.hpp"  // the default ports (default_pub_port, ...)

namespace zrelay {

/// Thrown for an endpoint string that cannot be used; what() is a sentence for a person.
class endpoint_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// The transports zrelay accepts.
enum class transport { tcp, ipc, inproc };

/// A validated endpoint, split into parts.
struct endpoint {
  transport kind = transport::tcp;
  std::string host;     ///< tcp only: host name, IPv4, IPv6 (without brackets) or "*"
  std::string port;     ///< tcp only: decimal port or "*" (ephemeral, bind only)
  std::string address;  ///< ipc path or inproc name
  std::string text;     ///< the endpoint as ZeroMQ wants it

  /// True for a tcp endpoint whose port is "*".
  bool ephemeral() const { return kind == transport::tcp && port == "*"; }
};

/// What the endpoint will be used for: binding allows "*" hosts and ports.
enum class endpoint_use { bind, connect };

/// Parses and validates; throws endpoint_error("malformed endpoint 'x': why").
endpoint parse_endpoint(std::string_view text, endpoint_use use);

/// tcp://HOST:PORT with IPv6 hosts bracketed; validates HOST.
std::string tcp_endpoint(std::string_view host, unsigned port);

/// Resolves a tcp host name so a typo fails now, not in a silent reconnect loop; throws
/// endpoint_error("cannot resolve 'host': reason"). Other transports pass unchecked.
void check_resolvable(const endpoint& ep);

/// Whether a process accepts connections on the unix socket of an ipc://PATH endpoint (other
/// transports, abstract names: false). ZeroMQ removes a socket file in its way before binding
/// ipc://PATH, so a bind over a running relay's path would take its socket away without a word; a
/// file left by a process that is gone refuses connections, and may be bound over.
bool ipc_in_use(std::string_view endpoint);

}  // namespace zrelay
