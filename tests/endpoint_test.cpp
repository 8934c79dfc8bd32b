#include <catch2/catch.hpp>

#include <string>

#include "zrelay/endpoint.hpp"

using zrelay::endpoint_error;
using zrelay::endpoint_use;
using zrelay::parse_endpoint;
using zrelay::transport;

TEST_CASE("parse_endpoint splits a tcp endpoint into host and port", "[endpoint]") {
  SECTION("IPv4 address") {
    const auto ep = parse_endpoint("tcp://127.0.0.1:5559", endpoint_use::connect);
    CHECK(ep.kind == transport::tcp);
    CHECK(ep.host == "127.0.0.1");
    CHECK(ep.port == "5559");
    CHECK(ep.address.empty());
    CHECK(ep.text == "tcp://127.0.0.1:5559");
    CHECK_FALSE(ep.ephemeral());
  }
  SECTION("host name") {
    const auto ep = parse_endpoint("tcp://relay-1.example.com:1", endpoint_use::connect);
    CHECK(ep.host == "relay-1.example.com");
    CHECK(ep.port == "1");
  }
  SECTION("highest port") {
    const auto ep = parse_endpoint("tcp://localhost:65535", endpoint_use::bind);
    CHECK(ep.port == "65535");
  }
  SECTION("IPv6 in brackets, stored without them") {
    const auto ep = parse_endpoint("tcp://[::1]:5560", endpoint_use::connect);
    CHECK(ep.host == "::1");
    CHECK(ep.port == "5560");
    CHECK(ep.text == "tcp://[::1]:5560");
  }
  SECTION("full IPv6 address with a zone") {
    const auto ep = parse_endpoint("tcp://[fe80::1%eth0]:5561", endpoint_use::connect);
    CHECK(ep.host == "fe80::1%eth0");
    CHECK(ep.port == "5561");
  }
  SECTION("IPv4-mapped IPv6") {
    const auto ep = parse_endpoint("tcp://[::ffff:192.0.2.1]:80", endpoint_use::connect);
    CHECK(ep.host == "::ffff:192.0.2.1");
  }
}

TEST_CASE("parse_endpoint allows '*' only for binding", "[endpoint]") {
  SECTION("wildcard host and ephemeral port bind") {
    const auto ep = parse_endpoint("tcp://*:*", endpoint_use::bind);
    CHECK(ep.host == "*");
    CHECK(ep.port == "*");
    CHECK(ep.ephemeral());
  }
  SECTION("ephemeral port on loopback binds") {
    const auto ep = parse_endpoint("tcp://127.0.0.1:*", endpoint_use::bind);
    CHECK(ep.host == "127.0.0.1");
    CHECK(ep.ephemeral());
  }
  SECTION("wildcard host with a fixed port binds") {
    const auto ep = parse_endpoint("tcp://*:5559", endpoint_use::bind);
    CHECK(ep.host == "*");
    CHECK_FALSE(ep.ephemeral());
  }
  SECTION("connect to a '*' host is refused") {
    CHECK_THROWS_MATCHES(parse_endpoint("tcp://*:5559", endpoint_use::connect), endpoint_error,
                         Catch::Message("malformed endpoint 'tcp://*:5559': '*' as host is only for binding"));
  }
  SECTION("connect to a '*' port is refused") {
    CHECK_THROWS_MATCHES(parse_endpoint("tcp://127.0.0.1:*", endpoint_use::connect), endpoint_error,
                         Catch::Message("malformed endpoint 'tcp://127.0.0.1:*': '*' as port is only for binding"));
  }
}

TEST_CASE("parse_endpoint accepts ipc paths and inproc names", "[endpoint]") {
  SECTION("ipc") {
    const auto ep = parse_endpoint("ipc:///tmp/zrelay.sock", endpoint_use::bind);
    CHECK(ep.kind == transport::ipc);
    CHECK(ep.address == "/tmp/zrelay.sock");
    CHECK(ep.host.empty());
    CHECK(ep.port.empty());
    CHECK_FALSE(ep.ephemeral());
  }
  SECTION("inproc") {
    const auto ep = parse_endpoint("inproc://relay-sub", endpoint_use::connect);
    CHECK(ep.kind == transport::inproc);
    CHECK(ep.address == "relay-sub");
    CHECK(ep.text == "inproc://relay-sub");
  }
  SECTION("ipc path of 107 bytes fits sockaddr_un") {
    const std::string path = "/" + std::string(106, 'p');
    const auto ep = parse_endpoint("ipc://" + path, endpoint_use::bind);
    CHECK(ep.address == path);
  }
}

TEST_CASE("parse_endpoint rejects a bad port", "[endpoint]") {
  const std::string why = "': the port must be 1-65535 or '*'";
  for (const char* text :
       {"tcp://localhost:0", "tcp://localhost:65536", "tcp://localhost:abc", "tcp://localhost:", "tcp://localhost:-1",
        "tcp://localhost:123456", "tcp://localhost:99999", "tcp://localhost:5 9"}) {
    INFO(text);
    CHECK_THROWS_MATCHES(parse_endpoint(text, endpoint_use::bind), endpoint_error,
                         Catch::Message("malformed endpoint '" + std::string(text) + why));
  }
}

TEST_CASE("parse_endpoint rejects a bad host", "[endpoint]") {
  SECTION("empty host") {
    CHECK_THROWS_MATCHES(parse_endpoint("tcp://:5559", endpoint_use::bind), endpoint_error,
                         Catch::Message("malformed endpoint 'tcp://:5559': the host is empty"));
  }
  SECTION("invalid characters") {
    CHECK_THROWS_MATCHES(
        parse_endpoint("tcp://bad host:5559", endpoint_use::connect), endpoint_error,
        Catch::Message("malformed endpoint 'tcp://bad host:5559': 'bad host' is not a valid host name"));
  }
  SECTION("leading dash") {
    CHECK_THROWS_WITH(parse_endpoint("tcp://-x:5559", endpoint_use::connect),
                      "malformed endpoint 'tcp://-x:5559': '-x' is not a valid host name");
  }
  SECTION("IPv6 without brackets") {
    CHECK_THROWS_WITH(parse_endpoint("tcp://::1:5559", endpoint_use::connect),
                      "malformed endpoint 'tcp://::1:5559': write an IPv6 host in brackets, as tcp://[::1]:5559");
  }
  SECTION("not an IPv6 address inside brackets") {
    CHECK_THROWS_WITH(parse_endpoint("tcp://[localhost]:5559", endpoint_use::connect),
                      "malformed endpoint 'tcp://[localhost]:5559': 'localhost' is not an IPv6 address");
    CHECK_THROWS_WITH(parse_endpoint("tcp://[]:5559", endpoint_use::connect),
                      "malformed endpoint 'tcp://[]:5559': '' is not an IPv6 address");
  }
  SECTION("no port at all") {
    CHECK_THROWS_WITH(parse_endpoint("tcp://localhost", endpoint_use::connect),
                      "malformed endpoint 'tcp://localhost': tcp needs HOST:PORT");
  }
  SECTION("bracketed IPv6 without a port") {
    CHECK_THROWS_AS(parse_endpoint("tcp://[::1]", endpoint_use::connect), endpoint_error);
  }
}

TEST_CASE("parse_endpoint rejects unknown schemes and missing '://'", "[endpoint]") {
  SECTION("unknown transport") {
    CHECK_THROWS_MATCHES(parse_endpoint("udp://localhost:5559", endpoint_use::bind), endpoint_error,
                         Catch::Message("malformed endpoint 'udp://localhost:5559': unknown transport 'udp' "
                                        "(use tcp, ipc or inproc)"));
  }
  SECTION("transport names are case-sensitive") {
    CHECK_THROWS_WITH(parse_endpoint("TCP://localhost:5559", endpoint_use::bind),
                      Catch::Contains("unknown transport 'TCP'"));
  }
  SECTION("missing '://'") {
    for (const char* text : {"localhost:5559", "tcp:/localhost:5559", "", "ipc:/tmp/x"}) {
      INFO(text);
      CHECK_THROWS_MATCHES(parse_endpoint(text, endpoint_use::connect), endpoint_error,
                           Catch::Message("malformed endpoint '" + std::string(text) +
                                          "': expected tcp://HOST:PORT, ipc://PATH or inproc://NAME"));
    }
  }
  SECTION("empty ipc path and inproc name") {
    CHECK_THROWS_WITH(parse_endpoint("ipc://", endpoint_use::bind), "malformed endpoint 'ipc://': ipc needs a path");
    CHECK_THROWS_WITH(parse_endpoint("inproc://", endpoint_use::bind),
                      "malformed endpoint 'inproc://': inproc needs a name");
  }
}

TEST_CASE("parse_endpoint rejects an ipc path too long for sockaddr_un", "[endpoint]") {
  const std::string text = "ipc:///" + std::string(107, 'p');  // 108 bytes of path
  CHECK_THROWS_MATCHES(parse_endpoint(text, endpoint_use::bind), endpoint_error,
                       Catch::Message("malformed endpoint '" + text + "': ipc path is longer than 107 bytes"));
}

TEST_CASE("tcp_endpoint brackets IPv6 hosts and validates", "[endpoint]") {
  CHECK(zrelay::tcp_endpoint("localhost", 5559) == "tcp://localhost:5559");
  CHECK(zrelay::tcp_endpoint("192.0.2.10", 5561) == "tcp://192.0.2.10:5561");
  CHECK(zrelay::tcp_endpoint("::1", 5560) == "tcp://[::1]:5560");
  CHECK(zrelay::tcp_endpoint("fe80::1%eth0", 1) == "tcp://[fe80::1%eth0]:1");
  CHECK(zrelay::tcp_endpoint("[::1]", 5560) == "tcp://[::1]:5560");
  SECTION("invalid host") {
    CHECK_THROWS_MATCHES(
        zrelay::tcp_endpoint("bad host", 5559), endpoint_error,
        Catch::Message("malformed endpoint 'tcp://bad host:5559': 'bad host' is not a valid host name"));
  }
  SECTION("empty host") {
    CHECK_THROWS_WITH(zrelay::tcp_endpoint("", 5559), "malformed endpoint 'tcp://:5559': the host is empty");
  }
  SECTION("port 0 and '*' host are not for connecting") {
    CHECK_THROWS_WITH(zrelay::tcp_endpoint("localhost", 0), Catch::Contains("the port must be 1-65535 or '*'"));
    CHECK_THROWS_WITH(zrelay::tcp_endpoint("*", 5559), Catch::Contains("'*' as host is only for binding"));
  }
}

TEST_CASE("check_resolvable fails early for a host name that does not resolve", "[endpoint]") {
  const auto ep = parse_endpoint("tcp://no-such-host.invalid:5559", endpoint_use::connect);
  CHECK_THROWS_AS(zrelay::check_resolvable(ep), endpoint_error);
  CHECK_THROWS_WITH(zrelay::check_resolvable(ep),
                    Catch::StartsWith("cannot resolve 'no-such-host.invalid': ") && !Catch::EndsWith(": "));
}

TEST_CASE("check_resolvable passes numeric hosts, wildcards and non-tcp transports", "[endpoint]") {
  CHECK_NOTHROW(zrelay::check_resolvable(parse_endpoint("tcp://127.0.0.1:5559", endpoint_use::connect)));
  CHECK_NOTHROW(zrelay::check_resolvable(parse_endpoint("tcp://[::1]:5559", endpoint_use::connect)));
  CHECK_NOTHROW(zrelay::check_resolvable(parse_endpoint("tcp://*:*", endpoint_use::bind)));
  CHECK_NOTHROW(zrelay::check_resolvable(parse_endpoint("ipc:///nonexistent/dir/sock", endpoint_use::connect)));
  CHECK_NOTHROW(zrelay::check_resolvable(parse_endpoint("inproc://no-such-host.invalid", endpoint_use::connect)));
}
