#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "testutil.hpp"
#include "zrelay/cli.hpp"
#include "zrelay/connection.hpp"
#include "zrelay/publisher.hpp"
#include "zrelay/security.hpp"
#include "zrelay/subscriber.hpp"

using namespace zrelay;
using namespace zrelay::test;
using Catch::Contains;

namespace {

// A directory of its own for each test, removed with everything in it.
class temp_dir {
public:
  temp_dir() {
    auto tmpl = (std::filesystem::temp_directory_path() / "zrelay-security-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string slurp(const std::string& path) {
  std::ostringstream s;
  s << std::ifstream(path).rdbuf();
  return s.str();
}

// The relay's log lines, written from the relay and ZAP threads.
struct log_lines {
  std::mutex m;
  std::vector<std::string> lines;
  relay::log_fn fn() {
    return [this](std::string_view l) {
      std::lock_guard<std::mutex> lock(m);
      lines.emplace_back(l);
    };
  }
  bool contains(const std::string& text) {
    std::lock_guard<std::mutex> lock(m);
    for (const auto& l : lines)
      if (l.find(text) != std::string::npos) return true;
    return false;
  }
};

// A relay on ephemeral loopback ports with CURVE, letting in `allowed`.
relay_config curve_relay(const key_pair& server, std::vector<std::string> allowed) {
  auto c = tcp_config();
  c.curve.keys = server;
  c.curve.allowed_keys = std::move(allowed);
  return c;
}

curve_config client_curve(const key_pair& own, const key_pair& server) {
  curve_config c;
  c.keys = own;
  c.server_key = server.public_key;
  return c;
}

// An acked publisher with these CURVE settings, waiting for its handshake (connect() reports
// a refusal).
publisher_config curve_publisher(const bound_endpoints& ep, const curve_config& curve) {
  auto c = acked_publisher(ep.ack);
  c.connect_timeout = deadline;
  c.curve = curve;
  return c;
}

subscriber_config subscriber_to(const bound_endpoints& ep, const std::string& topic, const curve_config& curve) {
  subscriber_config c;
  c.endpoint = ep.sub;
  c.topics = {topic};
  c.connect_timeout = deadline;
  c.curve = curve;
  return c;
}

// One ZAP 1.0 request straight to the handler; returns [status code, status text].
std::vector<std::string> ask_zap(zmq::context_t& ctx, const std::string& mechanism,
                                 const std::vector<std::string>& credentials) {
  zmq::socket_t req(ctx, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.connect("inproc://zeromq.zap.01");
  std::vector<std::string> parts = {"1.0", "req-1", zap_domain, "192.0.2.1", "", mechanism};
  parts.insert(parts.end(), credentials.begin(), credentials.end());
  send_parts(req, parts);
  const auto reply = recv_parts(req);
  REQUIRE(reply.size() == 6);
  CHECK(reply[0] == "1.0");
  CHECK(reply[1] == "req-1");
  return {reply[2], reply[3]};
}

std::string binary_key(const std::string& z85) {
  std::string bin(32, '\0');
  REQUIRE(zmq_z85_decode(reinterpret_cast<std::uint8_t*>(bin.data()), z85.c_str()) != nullptr);
  return bin;
}

}  // namespace

TEST_CASE("security: generated key pairs are Z85 and differ", "[security]") {
  const auto a = generate_key_pair();
  const auto b = generate_key_pair();
  CHECK(is_z85_key(a.public_key));
  CHECK(is_z85_key(a.secret_key));
  CHECK(a.public_key != b.public_key);
  CHECK(a.secret_key != a.public_key);
  CHECK_FALSE(is_z85_key(a.public_key.substr(1)));
  CHECK_FALSE(is_z85_key(a.public_key.substr(1) + " "));
}

TEST_CASE("security: key files round-trip, NAME.key is mode 0600 and never overwritten", "[security]") {
  temp_dir dir;
  const auto keys = generate_key_pair();
  const auto files = write_key_files(dir / "relay", keys);
  CHECK(files.key_path == dir / "relay.key");
  CHECK(files.pub_path == dir / "relay.pub");

  struct stat st {};
  REQUIRE(::stat(files.key_path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(slurp(files.pub_path) == keys.public_key + "\n");
  CHECK_THAT(slurp(files.key_path), Contains("# zrelay CURVE key pair"));

  const auto back = read_key_file(files.key_path);
  CHECK(back.public_key == keys.public_key);
  CHECK(back.secret_key == keys.secret_key);
  CHECK(parse_server_key(files.pub_path) == keys.public_key);

  SECTION("a name ending in .key means the same files") {
    CHECK_THROWS_WITH(write_key_files(dir / "relay.key", generate_key_pair()),
                      "'" + files.key_path + "' already exists; not overwriting it (remove it first)");
  }
  SECTION("an existing .pub alone also stops it, and nothing is written") {
    write(dir / "other.pub", "x\n");
    CHECK_THROWS_WITH(write_key_files(dir / "other", generate_key_pair()),
                      "'" + (dir / "other.pub") + "' already exists; not overwriting it (remove it first)");
    CHECK_FALSE(std::filesystem::exists(dir / "other.key"));
  }
  SECTION("an unwritable place is an error naming the file") {
    CHECK_THROWS_WITH(write_key_files(dir / "no/such/dir/k", keys),
                      "cannot write '" + (dir / "no/such/dir/k.key") + "': No such file or directory");
  }
}

TEST_CASE("security: bad key files are refused with the file and the reason", "[security]") {
  temp_dir dir;
  const auto keys = generate_key_pair();
  const auto path = dir / "k.key";
  SECTION("missing") {
    CHECK_THROWS_WITH(read_key_file(path), "cannot read key file '" + path + "': No such file or directory");
  }
  SECTION("a line that is not a field") {
    write(path, "# comment\n\npublic-key = " + keys.public_key + "\nhello\n");
    CHECK_THROWS_WITH(read_key_file(path),
                      "key file '" + path + "' line 4: expected 'public-key = KEY' or 'secret-key = KEY', not 'hello'");
  }
  SECTION("a key of the wrong length") {
    write(path, "secret-key = abc\n");
    CHECK_THROWS_WITH(read_key_file(path),
                      "key file '" + path + "' line 1: the secret-key is not a Z85 key (40 characters)");
  }
  SECTION("a .pub file given as the key pair") {
    write(path, keys.public_key + "\n");
    CHECK_THROWS_WITH(read_key_file(path), Contains("line 1: expected 'public-key = KEY'"));
    write(path, "public-key = " + keys.public_key + "\n");
    CHECK_THROWS_WITH(
        read_key_file(path),
        "key file '" + path + "' has no 'secret-key = ' line (a .pub file is not a key pair; see 'zrelay keygen')");
  }
  SECTION("a public key of another pair") {
    write(path, "public-key = " + generate_key_pair().public_key + "\nsecret-key = " + keys.secret_key + "\n");
    CHECK_THROWS_WITH(read_key_file(path), "key file '" + path + "': the public key does not belong to the secret key");
  }
  SECTION("the public key may be left out: it is derived") {
    write(path, "secret-key = " + keys.secret_key + "\n");
    CHECK(read_key_file(path).public_key == keys.public_key);
  }
}

TEST_CASE("security: a server key is Z85 text or a .pub file, never a .key", "[security]") {
  temp_dir dir;
  const auto keys = generate_key_pair();
  CHECK(parse_server_key(keys.public_key) == keys.public_key);
  write(dir / "s.pub", "# the relay\n" + keys.public_key + "  # relay on host a\n");
  CHECK(parse_server_key(dir / "s.pub") == keys.public_key);
  const auto files = write_key_files(dir / "relay", keys);
  CHECK_THROWS_WITH(parse_server_key(files.key_path),
                    "server key file '" + files.key_path +
                        "' holds a secret key: give clients the relay's .pub file, never its .key");
  CHECK_THROWS_WITH(parse_server_key("nonsense"),
                    "cannot read server key 'nonsense': No such file or directory (give the relay's public key as 40 "
                    "Z85 characters or its .pub file)");
  write(dir / "two.pub", keys.public_key + "\n" + keys.public_key + "\n");
  CHECK_THROWS_WITH(parse_server_key(dir / "two.pub"),
                    "server key file '" + (dir / "two.pub") + "' line 2: more than one key (a .pub file holds one)");
}

TEST_CASE("security: allowlists take comments and blank lines; a bad line is named by number", "[security]") {
  temp_dir dir;
  const auto a = generate_key_pair().public_key;
  const auto b = generate_key_pair().public_key;
  // '#' is a Z85 character: a key may begin with it and is still a key.
  const std::string hash_key = "#" + a.substr(1);
  const auto path = dir / "allow";
  write(path, "# clients allowed in\n\n" + a + "\n   " + b + "   # bob's laptop\n" + hash_key + "\n#" + "\n");
  CHECK(read_allowlist(path) == std::vector<std::string>{a, b, hash_key});

  SECTION("a line that is not a key") {
    write(path, a + "\n\nnot-a-key\n");
    CHECK_THROWS_WITH(read_allowlist(path), "allowlist '" + path +
                                                "' line 3: 'not-a-key' is not a Z85 public key (40 characters, "
                                                "optionally followed by '# comment')");
  }
  SECTION("text after a key that is not a comment") {
    write(path, a + " trailing\n");
    CHECK_THROWS_WITH(read_allowlist(path), Contains("line 1: '" + a + " trailing' is not a Z85 public key"));
  }
  SECTION("no keys at all") {
    write(path, "# nobody yet\n");
    CHECK_THROWS_WITH(read_allowlist(path), "allowlist '" + path + "' lists no keys: no client could connect");
  }
  SECTION("missing") {
    CHECK_THROWS_WITH(read_allowlist(dir / "none"),
                      "cannot read allowlist '" + (dir / "none") + "': No such file or directory");
  }
}

TEST_CASE("security: the ZAP handler lets in listed CURVE keys and refuses the rest with 400", "[security]") {
  zmq::context_t ctx;
  const auto listed = generate_key_pair().public_key;
  std::mutex m;
  std::vector<zap_refusal> refusals;
  zap_handler zap(ctx, {listed}, [&](const zap_refusal& r) {
    std::lock_guard<std::mutex> lock(m);
    refusals.push_back(r);
  });
  CHECK(ask_zap(ctx, "CURVE", {binary_key(listed)}) == std::vector<std::string>{"200", "OK"});
  CHECK(ask_zap(ctx, "CURVE", {binary_key(generate_key_pair().public_key)}) ==
        std::vector<std::string>{"400", "client key not in the allowlist"});
  CHECK(ask_zap(ctx, "NULL", {}) ==
        std::vector<std::string>{"400", "this relay accepts only CURVE clients with a listed key"});
  CHECK(ask_zap(ctx, "PLAIN", {"user", "password"})[0] == "400");
  CHECK(zap.accepted() == 1);
  CHECK(zap.refused() == 3);
  std::lock_guard<std::mutex> lock(m);
  REQUIRE(refusals.size() == 3);
  CHECK(refusals[0].mechanism == "CURVE");
  CHECK(refusals[0].address == "192.0.2.1");
  CHECK(is_z85_key(refusals[0].client_key));
  CHECK(refusals[1].mechanism == "NULL");
  CHECK(refusals[1].client_key.empty());

  SECTION("one handler per context") {
    CHECK_THROWS_WITH(zap_handler(ctx, {listed}), Contains("this context already has one"));
  }
}

TEST_CASE("security: a CURVE relay serves a listed client and refuses the others", "[security]") {
  zmq::context_t ctx;
  const auto server = generate_key_pair();
  const auto alice = generate_key_pair();
  const auto mallory = generate_key_pair();
  log_lines log;
  running_relay r(ctx, curve_relay(server, {alice.public_key}));
  r.get().set_logger(log.fn());
  CHECK(r.ep().ack.rfind("tcp://127.0.0.1:", 0) == 0);

  SECTION("a listed key subscribes, publishes acked, and receives") {
    subscriber sub(ctx, subscriber_to(r.ep(), "t", client_curve(alice, server)));
    REQUIRE(sub.connect());
    REQUIRE(eventually([&] { return r.get().counters().subscriptions >= 1; }));
    publisher pub(ctx, curve_publisher(r.ep(), client_curve(alice, server)));
    pub.connect();
    pub.publish("t", "secret hello");
    REQUIRE(pub.drain(deadline));
    CHECK(pub.stats().acked == 1);
    std::string got;
    const auto res = sub.receive(deadline, [&](const message_view& m) {
      got = std::string(m.payload);
      return false;
    });
    CHECK(res == subscriber::result::stopped);
    CHECK(got == "secret hello");
  }
  SECTION("an unlisted key is refused, and the relay says so") {
    publisher pub(ctx, curve_publisher(r.ep(), client_curve(mallory, server)));
    CHECK_THROWS_WITH(pub.connect(), "cannot connect to '" + r.ep().ack + "': the relay refused our credentials");
    subscriber sub(ctx, subscriber_to(r.ep(), "t", client_curve(mallory, server)));
    CHECK_THROWS_WITH(sub.connect(), "cannot connect to '" + r.ep().sub + "': the relay refused our credentials");
    CHECK(eventually(
        [&] { return log.contains("refused a CURVE client from 127.0.0.1 with key " + mallory.public_key); }));
    CHECK(eventually([&] { return r.get().counters().clients_refused >= 2; }));  // and counts it
  }
  SECTION("a client without CURVE is refused, and told about the keys") {
    // Depending on who closes first, ZeroMQ reports the mechanism mismatch or only a failure.
    publisher pub(ctx, curve_publisher(r.ep(), curve_config{}));
    CHECK_THROWS_WITH(pub.connect(), Contains("cannot connect to '" + r.ep().ack + "': ") && Contains("CURVE") &&
                                         Contains("--curve-key and --curve-server-key"));
    subscriber sub(ctx, subscriber_to(r.ep(), "t", curve_config{}));
    CHECK_THROWS_WITH(sub.connect(), Contains("cannot connect to '" + r.ep().sub + "': ") &&
                                         Contains("--curve-key and --curve-server-key"));
  }
  SECTION("a client that trusts another server key cannot connect") {
    publisher pub(ctx, curve_publisher(r.ep(), client_curve(alice, mallory)));
    CHECK_THROWS_WITH(pub.connect(), "cannot connect to '" + r.ep().ack +
                                         "': the CURVE handshake failed (does the relay use CURVE, and is "
                                         "--curve-server-key its public key?)");
  }
}

TEST_CASE("security: a relay refuses to start CURVE without an allowlist, or an allowlist without CURVE",
          "[security]") {
  zmq::context_t ctx;
  const auto server = generate_key_pair();
  CHECK_THROWS_WITH(relay(ctx, curve_relay(server, {})),
                    Contains("CURVE without --allow-keys would encrypt but authenticate nobody"));
  auto c = tcp_config();
  c.curve.allowed_keys = {generate_key_pair().public_key};
  CHECK_THROWS_WITH(relay(ctx, c), "an allowlist (--allow-keys) needs the relay's own key pair (--curve-key)");
  // Nothing was left bound: a proper CURVE relay starts in the same context.
  CHECK_NOTHROW(relay(ctx, curve_relay(server, c.curve.allowed_keys)));
}

TEST_CASE("security: clients need their key pair and the server key together", "[security]") {
  zmq::context_t ctx;
  curve_config c;
  c.keys = generate_key_pair();
  publisher_config pc;
  pc.curve = c;
  CHECK_THROWS_WITH(publisher(ctx, pc), "a CURVE client needs the relay's public key (--curve-server-key)");
  curve_config s;
  s.server_key = c.keys.public_key;
  subscriber_config sc;
  sc.curve = s;
  CHECK_THROWS_WITH(subscriber(ctx, sc),
                    "the relay's public key (--curve-server-key) needs our own key pair (--curve-key)");
}

TEST_CASE("security: command lines take --curve-key, --curve-server-key and --allow-keys", "[security]") {
  temp_dir dir;
  const auto relay_files = write_key_files(dir / "relay", generate_key_pair());
  const auto client_files = write_key_files(dir / "alice", generate_key_pair());
  const auto allow = dir / "allow";
  write(allow, slurp(client_files.pub_path));
  auto argv = [](std::vector<const char*> v) { return v; };

  SECTION("zrelay") {
    auto v = argv({"zrelay", "--curve-key", relay_files.key_path.c_str(), "--allow-keys", allow.c_str()});
    const auto p = cli::parse_relay(static_cast<int>(v.size()), v.data());
    CHECK(p.options.relay.curve.enabled());
    CHECK(p.options.relay.curve.allowed_keys.size() == 1);
    v = argv({"zrelay", "--curve-key", relay_files.key_path.c_str()});
    CHECK_THROWS_AS(cli::parse_relay(static_cast<int>(v.size()), v.data()), cli::usage_error);
    v = argv({"zrelay", "--allow-keys", allow.c_str()});
    CHECK_THROWS_WITH(cli::parse_relay(static_cast<int>(v.size()), v.data()),
                      "--allow-keys needs --curve-key (the relay's own key pair)");
    v = argv({"zrelay", "--help"});
    CHECK_THAT(cli::parse_relay(static_cast<int>(v.size()), v.data()).print,
               Contains("--allow-keys FILE") && Contains("zrelay keygen"));
  }
  SECTION("zpub and zsub") {
    auto v = argv({"zpub", "-t", "t", "--curve-key", client_files.key_path.c_str(), "--curve-server-key",
                   relay_files.pub_path.c_str()});
    const auto p = cli::parse_pub(static_cast<int>(v.size()), v.data(), false);
    CHECK(p.options.publisher.curve.server_key == read_key_file(relay_files.key_path).public_key);
    v = argv({"zsub", "-t", "t", "--curve-key", client_files.key_path.c_str()});
    CHECK_THROWS_WITH(cli::parse_sub(static_cast<int>(v.size()), v.data(), false),
                      "give --curve-key and --curve-server-key together (our key pair and the relay's public key)");
    const auto missing = dir / "missing.key";
    v = argv({"zsub", "-t", "t", "--curve-key", missing.c_str(), "--curve-server-key", relay_files.pub_path.c_str()});
    CHECK_THROWS_AS(cli::parse_sub(static_cast<int>(v.size()), v.data(), false), key_error);
  }
  SECTION("zrelay keygen NAME") {
    auto v = argv({"zrelay", "keygen", "relay"});
    CHECK(cli::parse_keygen(static_cast<int>(v.size()), v.data()) == "relay");
    v = argv({"zrelay", "keygen"});
    CHECK_THROWS_AS(cli::parse_keygen(static_cast<int>(v.size()), v.data()), cli::usage_error);
    v = argv({"zrelay", "keygen", "a", "b"});
    CHECK_THROWS_AS(cli::parse_keygen(static_cast<int>(v.size()), v.data()), cli::usage_error);
  }
}

TEST_CASE("security: under CURVE a subscription of exactly the topic limit is served", "[security]") {
  // CURVE wraps each frame in 33 bytes more, which ZeroMQ's frame limit must allow for.
  zmq::context_t ctx;
  const auto server = generate_key_pair();
  const auto alice = generate_key_pair();
  auto cfg = curve_relay(server, {alice.public_key});
  cfg.max_topic = min_max_topic;
  running_relay r(ctx, cfg);
  const std::string topic(min_max_topic, 't');
  subscriber sub(ctx, subscriber_to(r.ep(), topic, client_curve(alice, server)));
  REQUIRE(sub.connect());
  REQUIRE(eventually([&] { return r.get().counters().subscriptions == 1; }));
  publisher pub(ctx, curve_publisher(r.ep(), client_curve(alice, server)));
  pub.connect();
  pub.publish(topic, "at the limit");
  REQUIRE(pub.drain(deadline));
  CHECK(pub.stats().acked == 1);
  std::string got;
  CHECK(sub.receive(deadline, [&](const message_view& m) {
    got = std::string(m.payload);
    return false;
  }) == subscriber::result::stopped);
  CHECK(got == "at the limit");
}
