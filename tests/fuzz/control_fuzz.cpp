// libFuzzer target for the control socket's request parser (lib/src/control.cpp): the frames of one
// request from a stranger, and the bind rule on any endpoint text. A request is either a command or
// an error reply whose text a person can read; a bind the rule lets through is loopback, ipc or
// inproc. tests/fuzz/run.sh builds and runs it.
//
// An input: byte 0 is how many frames the relay saw beyond those given (0-255, as when it keeps
// fewer than it drains), then frames, each a u8 length then that many bytes (fewer at the end).
// The whole input after byte 0 is also tried as a --control-bind endpoint.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "zrelay/control.hpp"
#include "zrelay/endpoint.hpp"

using namespace zrelay;

namespace {

#define CONTROL_CHECK(cond)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "control_fuzz: check failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

bool printable(std::string_view s) {
  for (const char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t extra = data[0];
  std::vector<std::string_view> frames;
  for (std::size_t at = 1; at < size;) {
    const std::size_t len = std::min<std::size_t>(data[at], size - at - 1);
    frames.emplace_back(reinterpret_cast<const char*>(data + at + 1), len);
    at += 1 + len;
  }
  const auto r = control::parse_request(frames.data(), frames.size(), frames.size() + extra);
  // A command, or an error to send back: never both, never neither.
  CONTROL_CHECK(r.what.has_value() != !r.error.empty());
  if (r.what) {
    CONTROL_CHECK(frames.size() == 1 && extra == 0);
    CONTROL_CHECK(frames[0] == control::command_name(*r.what));
    CONTROL_CHECK(control::parse_command(control::command_name(*r.what)) == r.what);
  } else {
    // The reply quotes at most a short, printable command name of the input.
    CONTROL_CHECK(printable(r.error));
    CONTROL_CHECK(r.error.size() <= 200);
  }

  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    control::check_bind(text);
    const auto ep = parse_endpoint(text, endpoint_use::bind);
    if (ep.kind == transport::tcp) CONTROL_CHECK(ep.host == "::1" || ep.host.rfind("127.", 0) == 0);
  } catch (const endpoint_error&) {}
  return 0;
}
