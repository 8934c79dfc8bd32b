#pragma once
// CURVE encryption and the client-key allowlist: key pairs and their files, the ZAP handler
// that lets listed clients in, and the socket options of a CURVE server or client.
//
// Files (all text, '#' starts a comment line, blank lines are ignored):
//   NAME.key   the key pair, mode 0600:   public-key = <40 Z85 characters>
//                                         secret-key = <40 Z85 characters>
//   NAME.pub   the public key alone, on one line (give it to the other side)
//   allowlist  one client public key per line; "KEY  # who" may name the key's owner
// A Z85 key may itself begin with '#': a line that is a key is read as a key.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <zmq.hpp>

namespace zrelay {

/// Thrown when a key, key file or allowlist cannot be used; what() names the file and the reason.
class key_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A CURVE key pair as Z85 text (40 characters each).
struct key_pair {
  std::string public_key;  ///< give this to the other side
  std::string secret_key;  ///< never leaves the .key file
};

/// CURVE settings of a relay, publisher or subscriber. No key pair: no CURVE (plain ZeroMQ).
struct curve_config {
  key_pair keys;                          ///< this side's key pair (--curve-key)
  std::string server_key;                 ///< clients: the relay's public key (--curve-server-key)
  std::vector<std::string> allowed_keys;  ///< relay: the client public keys it lets in (--allow-keys)
  /// True when this side encrypts.
  bool enabled() const { return !keys.secret_key.empty(); }
};

/// The paths write_key_files() wrote.
struct key_files {
  std::string key_path;  ///< NAME.key: the key pair, mode 0600
  std::string pub_path;  ///< NAME.pub: the public key
};

/// True if `text` is a CURVE key in Z85: 40 characters of the Z85 alphabet.
bool is_z85_key(std::string_view text);

/// A fresh key pair from zmq_curve_keypair; throws key_error if libzmq has no CURVE.
key_pair generate_key_pair();

/// Writes NAME.key (mode 0600) and NAME.pub; refuses to overwrite either. Throws key_error.
key_files write_key_files(const std::string& name, const key_pair& keys);

/// Reads a NAME.key file and checks that its public key belongs to its secret key. Throws key_error.
key_pair read_key_file(const std::string& path);

/// The relay's public key from Z85 text or from a NAME.pub (or NAME.key) file. Throws key_error.
std::string parse_server_key(const std::string& text_or_path);

/// Reads an allowlist (one Z85 public key per line); throws key_error naming the bad line.
std::vector<std::string> read_allowlist(const std::string& path);

/// Makes `sock` a CURVE server if `curve` has a key pair (call before bind). Throws key_error
/// for an allowlist without a key pair.
void apply_curve_server(zmq::socket_t& sock, const curve_config& curve);

/// Makes `sock` a CURVE client if `curve` has a key pair (call before connect). Throws
/// key_error unless the key pair and the server key come together.
void apply_curve_client(zmq::socket_t& sock, const curve_config& curve);

/// One handshake the ZAP handler turned away.
struct zap_refusal {
  std::string address;     ///< the peer's IP address, as ZeroMQ reports it
  std::string mechanism;   ///< "CURVE", "NULL", "PLAIN"
  std::string client_key;  ///< Z85; empty unless CURVE
  std::string reason;      ///< the status text sent back (a sentence)
};

/// The ZAP handler (RFC 27, ZAP 1.0): a thread answering on inproc://zeromq.zap.01 in one
/// context. Lets in CURVE clients whose public key is listed; refuses (400) unknown keys and
/// every other mechanism. Stops on destruction or when the context shuts down.
class zap_handler {
public:
  /// Called on the handler's thread for every refusal.
  using refusal_fn = std::function<void(const zap_refusal&)>;

  /// Binds the ZAP endpoint and starts the thread. Throws key_error for an empty allowlist or
  /// when the context already has a ZAP handler.
  zap_handler(zmq::context_t& ctx, std::vector<std::string> allowed_keys, refusal_fn on_refusal = {});
  ~zap_handler();
  zap_handler(const zap_handler&) = delete;
  zap_handler& operator=(const zap_handler&) = delete;

  /// Replaces the allowlist (thread-safe; zrelay's reload): handshakes from now on are judged by it,
  /// connections already let in stay. Throws key_error for an empty list, keeping the old one.
  void set_allowed(std::vector<std::string> allowed_keys);
  /// How many keys the allowlist has (thread-safe).
  std::size_t allowed_count() const;
  /// Handshakes refused so far (thread-safe).
  std::uint64_t refused() const { return refused_.load(std::memory_order_relaxed); }
  /// Handshakes let in so far (thread-safe).
  std::uint64_t accepted() const { return accepted_.load(std::memory_order_relaxed); }

private:
  void run();

  zmq::socket_t sock_;
  mutable std::mutex allowed_mutex_;  // allowed_ is replaced by set_allowed while the thread reads it
  std::vector<std::string> allowed_;  // sorted
  refusal_fn on_refusal_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> accepted_{0};
  std::thread thread_;
};

/// The ZAP domain the relay's sockets ask the handler about.
inline constexpr const char* zap_domain = "zrelay";

}  // namespace zrelay
