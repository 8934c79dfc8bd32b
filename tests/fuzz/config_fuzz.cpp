// libFuzzer target for zrelay's config file reader (lib/tool/src/config.cpp, over toml++ built
// header-only here so that its parser is instrumented too): any bytes either parse into keys and
// values or throw usage_error, never anything else; and every value read writes back (toml_line,
// what --print-config prints) to TOML that reads to the same text. tests/fuzz/run.sh builds and
// runs it.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "zrelay/cli.hpp"
#include "zrelay/config.hpp"

using namespace zrelay::cli;

#define CONFIG_CHECK(cond)                                                                 \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "config_fuzz: check failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  config_file f;
  try {
    f = parse_config(text, "fuzz.toml");
  } catch (const usage_error& e) {
    // The message names the file and a line.
    CONFIG_CHECK(std::string_view(e.what()).rfind("fuzz.toml:", 0) == 0);
    return 0;
  }
  for (const auto& [key, value] : f.values) {
    const auto kind = relay_keys().at(key);
    CONFIG_CHECK(value.line >= 1);
    const auto line = toml_line(key, value.text, kind);
    config_file back;
    try {
      back = parse_config(line, "back.toml");
    } catch (const usage_error& e) {
      std::fprintf(stderr, "config_fuzz: '%s' did not read back: %s\n", line.c_str(), e.what());
      std::abort();
    }
    CONFIG_CHECK(back.values.size() == 1);
    CONFIG_CHECK(back.values.at(key).text == value.text);
  }
  return 0;
}
