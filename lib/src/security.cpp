#include "zrelay/security.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace zrelay {
namespace {

constexpr std::string_view z85_alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
constexpr std::size_t z85_key_size = 40;
// A draft option in libzmq 4.3 (absent from zmq.h without ZMQ_BUILD_DRAFT_API): with it, a
// missing ZAP handler refuses handshakes instead of letting every client in.
constexpr int zap_enforce_domain_option = 93;
// Key files and allowlists are small; anything larger is not one.
constexpr std::size_t max_file_size = 16u << 20;

std::string os_error(int err) { return std::strerror(err); }

std::string read_text(const std::string& path, const std::string& what) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw key_error("cannot read " + what + " '" + path + "': " + os_error(errno));
  std::string text;
  std::array<char, 4096> buf;
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
    text.append(buf.data(), n);
    if (text.size() > max_file_size) {
      std::fclose(f);
      throw key_error("cannot read " + what + " '" + path + "': larger than 16 MiB, not a key file");
    }
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) throw key_error("cannot read " + what + " '" + path + "': " + os_error(err));
  return text;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

// Calls fn(line number, trimmed line) for every line that is neither blank nor a comment. A
// line whose first word is a Z85 key is never a comment, although '#' is a Z85 character.
template <class Fn>
void for_each_line(const std::string& text, Fn fn) {
  std::size_t start = 0;
  for (int number = 1; start <= text.size(); ++number) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const auto line = trim(std::string_view(text).substr(start, end - start));
    start = end + 1;
    if (line.empty()) continue;
    if (line[0] == '#' && !is_z85_key(line.substr(0, line.find_first_of(" \t")))) continue;
    fn(number, line);
  }
}

// "KEY" or "KEY  # comment" -> KEY; anything else -> empty.
std::string key_of_line(const std::string& line) {
  const auto space = line.find_first_of(" \t");
  std::string key = line.substr(0, space);
  if (!is_z85_key(key)) return {};
  if (space != std::string::npos && trim(line.substr(space))[0] != '#') return {};
  return key;
}

std::string shown(const std::string& line) { return line.size() > 60 ? line.substr(0, 57) + "..." : line; }

void write_file(const std::string& path, const std::string& text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) throw key_error("'" + path + "' already exists; not overwriting it (remove it first)");
    throw key_error("cannot write '" + path + "': " + os_error(errno));
  }
  // The umask may only take permissions away; make the mode exactly what was asked.
  bool ok = ::fchmod(fd, mode) == 0;
  std::size_t done = 0;
  while (ok && done < text.size()) {
    const auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  int err = ok ? 0 : errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    ::unlink(path.c_str());
    throw key_error("cannot write '" + path + "': " + os_error(err));
  }
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string z85_of(const std::uint8_t* key) {
  std::array<char, z85_key_size + 1> text{};
  zmq_z85_encode(text.data(), key, 32);
  return text.data();
}

zmq::message_t frame(std::string_view s) { return zmq::message_t(s.data(), s.size()); }

}  // namespace

bool is_z85_key(std::string_view text) {
  return text.size() == z85_key_size &&
         std::all_of(text.begin(), text.end(), [](char c) { return z85_alphabet.find(c) != std::string_view::npos; });
}

key_pair generate_key_pair() {
  std::array<char, z85_key_size + 1> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0)
    throw key_error(std::string("cannot make a CURVE key pair: ") + zmq_strerror(zmq_errno()) +
                    " (this libzmq was built without CURVE)");
  return {pub.data(), sec.data()};
}

key_files write_key_files(const std::string& name, const key_pair& keys) {
  std::string base = name;
  // "zrelay keygen relay.key" means relay, not relay.key.key.
  for (const char* ext : {".key", ".pub"})
    if (base.size() > 4 && base.compare(base.size() - 4, 4, ext) == 0) base.resize(base.size() - 4);
  key_files out{base + ".key", base + ".pub"};
  for (const auto& path : {out.key_path, out.pub_path})
    if (exists(path)) throw key_error("'" + path + "' already exists; not overwriting it (remove it first)");
  const auto slash = out.pub_path.find_last_of('/');
  const auto pub_name = slash == std::string::npos ? out.pub_path : out.pub_path.substr(slash + 1);
  write_file(out.key_path,
             "# zrelay CURVE key pair, written by 'zrelay keygen'. Keep this file secret (mode 0600):\n"
             "# whoever holds it can act as its owner. Give " +
                 pub_name +
                 " to the other side instead.\n"
                 "public-key = " +
                 keys.public_key +
                 "\n"
                 "secret-key = " +
                 keys.secret_key + "\n",
             0600);
  try {
    write_file(out.pub_path, keys.public_key + "\n", 0644);
  } catch (...) {
    ::unlink(out.key_path.c_str());
    throw;
  }
  return out;
}

key_pair read_key_file(const std::string& path) {
  const auto text = read_text(path, "key file");
  key_pair keys;
  for_each_line(text, [&](int number, const std::string& line) {
    const auto eq = line.find('=');
    const auto field = trim(line.substr(0, eq == std::string::npos ? 0 : eq));
    const auto value = eq == std::string::npos ? std::string() : trim(line.substr(eq + 1));
    const auto where = "key file '" + path + "' line " + std::to_string(number) + ": ";
    if (field != "public-key" && field != "secret-key")
      throw key_error(where + "expected 'public-key = KEY' or 'secret-key = KEY', not '" + shown(line) + "'");
    if (!is_z85_key(value)) throw key_error(where + "the " + field + " is not a Z85 key (40 characters)");
    (field == "public-key" ? keys.public_key : keys.secret_key) = value;
  });
  if (keys.secret_key.empty())
    throw key_error("key file '" + path +
                    "' has no 'secret-key = ' line (a .pub file is not a key pair; see 'zrelay keygen')");
  std::array<char, z85_key_size + 1> derived{};
  if (zmq_curve_public(derived.data(), keys.secret_key.c_str()) != 0)
    throw key_error("key file '" + path + "': cannot derive the public key: " + zmq_strerror(zmq_errno()));
  if (keys.public_key.empty()) keys.public_key = derived.data();
  if (keys.public_key != derived.data())
    throw key_error("key file '" + path + "': the public key does not belong to the secret key");
  return keys;
}

std::string parse_server_key(const std::string& text_or_path) {
  if (is_z85_key(text_or_path)) return text_or_path;
  std::string text;
  try {
    text = read_text(text_or_path, "server key");
  } catch (const key_error& e) {
    throw key_error(std::string(e.what()) + " (give the relay's public key as 40 Z85 characters or its .pub file)");
  }
  std::string key;
  for_each_line(text, [&](int number, const std::string& line) {
    const auto where = "server key file '" + text_or_path + "' line " + std::to_string(number) + ": ";
    if (line.rfind("secret-key", 0) == 0)
      throw key_error("server key file '" + text_or_path +
                      "' holds a secret key: give clients the relay's .pub file, never its .key");
    if (line.rfind("public-key", 0) == 0) return;  // the matching secret-key line decides
    const auto k = key_of_line(line);
    if (k.empty()) throw key_error(where + "'" + shown(line) + "' is not a Z85 public key (40 characters)");
    if (!key.empty()) throw key_error(where + "more than one key (a .pub file holds one)");
    key = k;
  });
  if (key.empty()) throw key_error("server key file '" + text_or_path + "' holds no key");
  return key;
}

std::vector<std::string> read_allowlist(const std::string& path) {
  const auto text = read_text(path, "allowlist");
  std::vector<std::string> keys;
  for_each_line(text, [&](int number, const std::string& line) {
    const auto k = key_of_line(line);
    if (k.empty())
      throw key_error("allowlist '" + path + "' line " + std::to_string(number) + ": '" + shown(line) +
                      "' is not a Z85 public key (40 characters, optionally followed by '# comment')");
    keys.push_back(k);
  });
  if (keys.empty()) throw key_error("allowlist '" + path + "' lists no keys: no client could connect");
  return keys;
}

void apply_curve_server(zmq::socket_t& sock, const curve_config& curve) {
  if (!curve.enabled()) {
    if (!curve.allowed_keys.empty())
      throw key_error("an allowlist (--allow-keys) needs the relay's own key pair (--curve-key)");
    return;
  }
  if (curve.allowed_keys.empty())
    throw key_error("CURVE without --allow-keys would encrypt but authenticate nobody: give the clients' public keys");
  sock.set(zmq::sockopt::curve_server, true);
  sock.set(zmq::sockopt::curve_secretkey, curve.keys.secret_key);
  sock.set(zmq::sockopt::zap_domain, zap_domain);
  const int on = 1;
  (void)zmq_setsockopt(sock.handle(), zap_enforce_domain_option, &on, sizeof on);  // EINVAL without drafts
}

void apply_curve_client(zmq::socket_t& sock, const curve_config& curve) {
  if (curve.enabled() != !curve.server_key.empty())
    throw key_error(curve.enabled()
                        ? "a CURVE client needs the relay's public key (--curve-server-key)"
                        : "the relay's public key (--curve-server-key) needs our own key pair (--curve-key)");
  if (!curve.enabled()) return;
  sock.set(zmq::sockopt::curve_serverkey, curve.server_key);
  sock.set(zmq::sockopt::curve_publickey, curve.keys.public_key);
  sock.set(zmq::sockopt::curve_secretkey, curve.keys.secret_key);
}

zap_handler::zap_handler(zmq::context_t& ctx, std::vector<std::string> allowed_keys, refusal_fn on_refusal)
    : sock_(ctx, zmq::socket_type::rep), allowed_(std::move(allowed_keys)), on_refusal_(std::move(on_refusal)) {
  if (allowed_.empty())
    throw key_error("CURVE without --allow-keys would encrypt but authenticate nobody: give the clients' public keys");
  std::sort(allowed_.begin(), allowed_.end());
  sock_.set(zmq::sockopt::linger, 0);
  try {
    sock_.bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    throw key_error(std::string("cannot start the ZAP handler on inproc://zeromq.zap.01: ") + e.what() +
                    (e.num() == EADDRINUSE ? " (this context already has one)" : ""));
  }
  thread_ = std::thread([this] { run(); });
}

void zap_handler::set_allowed(std::vector<std::string> allowed_keys) {
  if (allowed_keys.empty())
    throw key_error("CURVE without --allow-keys would encrypt but authenticate nobody: give the clients' public keys");
  std::sort(allowed_keys.begin(), allowed_keys.end());
  std::lock_guard<std::mutex> lock(allowed_mutex_);
  allowed_ = std::move(allowed_keys);
}

std::size_t zap_handler::allowed_count() const {
  std::lock_guard<std::mutex> lock(allowed_mutex_);
  return allowed_.size();
}

zap_handler::~zap_handler() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
}

void zap_handler::run() {
  std::vector<zmq::message_t> req;
  zmq::message_t m;
  try {
    while (!stop_.load(std::memory_order_relaxed)) {
      zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
      // Bounded so that the destructor's stop flag is seen.
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      req.clear();
      do {
        (void)sock_.recv(m);
        req.emplace_back(std::move(m));
      } while (req.back().more());
      auto text = [&](std::size_t i) {
        return i < req.size() ? std::string(static_cast<const char*>(req[i].data()), req[i].size()) : std::string();
      };
      // [version][request id][domain][address][routing id][mechanism][credentials...]
      std::string status = "200", reason = "OK", user;
      zap_refusal refusal;
      refusal.address = text(3);
      refusal.mechanism = text(5);
      if (req.size() < 6 || text(0) != "1.0") {
        status = "500";
        reason = "malformed ZAP request";
      } else if (refusal.mechanism != "CURVE" || req.size() != 7 || req[6].size() != 32) {
        status = "400";
        reason = "this relay accepts only CURVE clients with a listed key";
      } else {
        refusal.client_key = z85_of(static_cast<const std::uint8_t*>(req[6].data()));
        bool allowed = false;
        {
          std::lock_guard<std::mutex> lock(allowed_mutex_);
          allowed = std::binary_search(allowed_.begin(), allowed_.end(), refusal.client_key);
        }
        if (allowed) {
          user = refusal.client_key;
        } else {
          status = "400";
          reason = "client key not in the allowlist";
        }
      }
      // Counted and reported before the reply goes: whoever sees the client's handshake end sees
      // the counters already moved.
      if (status == "200") {
        accepted_.fetch_add(1, std::memory_order_relaxed);
      } else {
        refused_.fetch_add(1, std::memory_order_relaxed);
        refusal.reason = reason;
        // A throwing callback must not end the thread: without its handler a CURVE socket
        // whose libzmq lacks ZAP_ENFORCE_DOMAIN would let every client in.
        try {
          if (on_refusal_) on_refusal_(refusal);
        } catch (const std::exception&) {}
      }
      std::array<zmq::message_t, 6> reply = {frame("1.0"),  frame(text(1)), frame(status),
                                             frame(reason), frame(user),    zmq::message_t()};
      for (std::size_t i = 0; i < reply.size(); ++i)
        (void)sock_.send(reply[i], i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  } catch (const zmq::error_t&) {
    // ETERM: the context is shutting down, and the relay's sockets with it.
  }
  sock_.close();
}

}  // namespace zrelay
