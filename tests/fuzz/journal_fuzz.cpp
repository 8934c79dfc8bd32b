// libFuzzer target for the journal's recovery (lib/src/relay/journal.cpp): the input becomes one or
// two segment files in a fresh directory, a store opens it (recovery: torn tails, damage, names
// that disagree with their entries), everything is read back through a cursor, and one more entry
// is appended and read. Checks: no crash, the entries read decode and their jseqs increase, they
// add up to what recovery counted, the head is where appends go on.
// tests/fuzz/run.sh builds and runs it; docs/TESTING.md has the longer run.
//
// An input (see make_corpus.sh, which writes the seeds):
//   0  1  flags: 1 two segments, 2 fix the CRC of every entry found at its magic (so that the
//         fuzzer gets past the checksum to the content rules), 4 a segment size of 1 KiB
//   1  2  u16 big-endian: where the second segment's bytes begin (mod the data's size + 1)
//   3  8  u64 big-endian: the second segment's name (the first is always 1)
//  11  …  the bytes of the segments

#include <dirent.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <isa-l/crc.h>

#include "relay/journal.hpp"
#include "zrelay/record.hpp"

using namespace zrelay;

namespace {

#define JOURNAL_CHECK(cond)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "journal_fuzz: check failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

constexpr std::size_t settings_size = 11;

std::uint64_t big_endian(const std::uint8_t* p, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

void fix_crcs(std::string& s) {
  std::size_t off = 0;
  while (off + 12 <= s.size()) {
    auto* p = reinterpret_cast<unsigned char*>(&s[off]);
    const std::uint64_t length = big_endian(p + 8, 4);
    if (big_endian(p, 4) != record::magic || 12 + length > s.size() - off) {
      ++off;
      continue;
    }
    const std::uint32_t crc = ~crc32_iscsi(p + 8, static_cast<int>(4 + length), 0xFFFFFFFF);
    for (int i = 0; i < 4; ++i) p[4 + i] = static_cast<unsigned char>(crc >> (24 - 8 * i));
    off += 12 + length;
  }
}

void write_file(const std::string& path, const std::string& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  JOURNAL_CHECK(f != nullptr);
  JOURNAL_CHECK(std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  std::fclose(f);
}

std::string segment_path(const std::string& dir, std::uint64_t name) {
  char b[64];
  std::snprintf(b, sizeof b, "/%020llu.seg", static_cast<unsigned long long>(name));
  return dir + b;
}

void empty_dir(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d))
      if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
        ::unlink((dir + "/" + e->d_name).c_str());
    ::closedir(d);
  }
}

// One directory for the whole run, emptied for each input and removed at exit.
char work_dir_name[] = "/tmp/zrelay-journal-fuzz-XXXXXX";
const std::string& work_dir() {
  static const std::string dir = [] {
    JOURNAL_CHECK(::mkdtemp(work_dir_name) != nullptr);
    std::atexit([] {
      empty_dir(work_dir_name);
      ::rmdir(work_dir_name);
    });
    return std::string(work_dir_name);
  }();
  return dir;
}

// Reads everything from jseq 1 on; checks order; returns the messages read and the end of the last.
std::uint64_t read_all(const journal::store& s, std::uint64_t& end, std::uint64_t head) {
  std::uint64_t messages = 0;
  end = 0;
  const auto p = s.seek_seq(1);
  if (!p) return 0;
  auto c = s.open(*p);
  for (int rounds = 0; rounds < 100000; ++rounds) {
    std::string out;
    std::uint64_t skipped = 0;
    const auto n = s.read(c, out, 4096, skipped);
    if (n == 0) break;
    std::size_t at = 0;
    for (std::size_t i = 0; i < n; ++i) {
      record::entry e;
      JOURNAL_CHECK(record::decode(out.data() + at, out.size() - at, e) == record::status::ok);
      JOURNAL_CHECK(e.jseq >= end);  // increasing
      JOURNAL_CHECK(e.end() <= head);
      end = e.end();
      messages += e.count;
      at += e.size;
    }
    JOURNAL_CHECK(at == out.size());
  }
  return messages;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < settings_size) return 0;
  const std::uint8_t flags = data[0];
  std::string bytes(reinterpret_cast<const char*>(data + settings_size), size - settings_size);
  if (flags & 2) fix_crcs(bytes);
  const std::string& dir = work_dir();
  empty_dir(dir);
  if (flags & 1) {
    const std::size_t split = big_endian(data + 1, 2) % (bytes.size() + 1);
    const std::uint64_t second = big_endian(data + 3, 8);
    write_file(segment_path(dir, 1), bytes.substr(0, split));
    if (second != 1) write_file(segment_path(dir, second), bytes.substr(split));
  } else {
    write_file(segment_path(dir, 1), bytes);
  }

  journal::config cfg;
  cfg.dir = dir;
  cfg.fsync = false;
  cfg.max_bytes = std::uint64_t{1} << 40;
  if (flags & 4) cfg.segment_bytes = 1024;
  journal::store s(cfg);
  const auto& r = s.recovered();
  const auto range = s.range();
  JOURNAL_CHECK(range.head == r.next_jseq);
  JOURNAL_CHECK(range.oldest <= range.head);
  std::uint64_t end = 0;
  const std::uint64_t messages = read_all(s, end, range.head);
  JOURNAL_CHECK(messages == r.messages);
  JOURNAL_CHECK(end <= r.next_jseq);

  // Appending goes on where recovery said, and reads back. (A head near the top of the jseqs'
  // range has no room for it.)
  if (r.next_jseq < UINT64_MAX - 1) {
    const std::string_view frames[2] = {"fuzz", "after recovery"};
    JOURNAL_CHECK(s.append(record::kind::plain, 1, frames, 2, 1) == r.next_jseq);
    s.flush();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
    for (;;) {
      const auto p = s.poll();
      if (p.failed || p.written > r.next_jseq) break;
      JOURNAL_CHECK(std::chrono::steady_clock::now() < deadline);
      pollfd pfd{s.notify_fd(), POLLIN, 0};
      ::poll(&pfd, 1, 1000);
    }
    const auto after = s.range();
    if (after.head > r.next_jseq) {
      const auto p = s.seek_seq(r.next_jseq);
      JOURNAL_CHECK(p && p->jseq == r.next_jseq);
    }
  }
  return 0;
}
