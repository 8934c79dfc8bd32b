#include <catch2/catch.hpp>

#include <string>

#include "nats_min.hpp"

using nats_min::frame;

namespace {

long parse(const std::string& s, frame& f) { return nats_min::parse(s.data(), s.size(), f); }

}  // namespace

TEST_CASE("nats-min parses a MSG in place, with or without a reply subject", "[nats_min]") {
  frame f;
  const std::string msg = "MSG bench.0000007 1 5\r\nhello\r\nPING\r\n";
  REQUIRE(parse(msg, f) == 23 + 7);  // the header and hello\r\n, not the PING
  CHECK(f.what == frame::kind::msg);
  CHECK(f.subject == "bench.0000007");
  CHECK(f.payload == "hello");
  CHECK(f.payload.data() == msg.data() + 23);  // points into the buffer: nothing copied

  const std::string reply = "MSG a.b 12 _INBOX.x 3\r\nabc\r\n";
  REQUIRE(parse(reply, f) == static_cast<long>(reply.size()));
  CHECK(f.subject == "a.b");
  CHECK(f.payload == "abc");

  const std::string empty = "MSG s 1 0\r\n\r\n";
  REQUIRE(parse(empty, f) == static_cast<long>(empty.size()));
  CHECK(f.payload.empty());
}

TEST_CASE("nats-min asks for more bytes until a frame is complete", "[nats_min]") {
  const std::string msg = "MSG s 1 10\r\n0123456789\r\n";
  frame f;
  for (std::size_t n = 0; n < msg.size(); ++n) {
    INFO("first " << n << " bytes");
    CHECK(nats_min::parse(msg.data(), n, f) == nats_min::need_more);
  }
  CHECK(parse(msg, f) == static_cast<long>(msg.size()));
}

TEST_CASE("nats-min tells the control frames apart", "[nats_min]") {
  frame f;
  REQUIRE(parse("PING\r\n", f) == 6);
  CHECK(f.what == frame::kind::ping);
  REQUIRE(parse("PONG\r\n", f) == 6);
  CHECK(f.what == frame::kind::pong);
  REQUIRE(parse("+OK\r\n", f) == 5);
  CHECK(f.what == frame::kind::ok);
  const std::string err = "-ERR 'Slow Consumer'\r\n";
  REQUIRE(parse(err, f) == 22);
  CHECK(f.what == frame::kind::err);
  CHECK(f.line == "-ERR 'Slow Consumer'");
  REQUIRE(parse("INFO {\"max_payload\":1048576}\r\n", f) == 30);
  CHECK(f.what == frame::kind::info);
}

TEST_CASE("nats-min rejects what is not the NATS protocol", "[nats_min]") {
  frame f;
  CHECK(parse("HELLO\r\n", f) == nats_min::bad);
  CHECK(parse("PING\n", f) == nats_min::bad);                 // no CR
  CHECK(parse("MSG s 1 x\r\n", f) == nats_min::bad);          // size not a number
  CHECK(parse("MSG s 5\r\nhello\r\n", f) == nats_min::bad);   // no sid
  CHECK(parse("MSG s 1 5\r\nhelloXY", f) == nats_min::bad);   // payload not followed by CRLF
  CHECK(parse(std::string(70000, 'a'), f) == nats_min::bad);  // no line end in 64 KiB
  CHECK(parse(std::string(1000, 'a'), f) == nats_min::need_more);
}
