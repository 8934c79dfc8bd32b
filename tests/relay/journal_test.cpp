#include <catch2/catch.hpp>

#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "relay/journal.hpp"
#include "zrelay/record.hpp"
#include "zrelay/wire.hpp"

using namespace zrelay;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string t = (fs::temp_directory_path() / "zrelay-journal-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

journal::config config_for(const temp_dir& d) {
  journal::config c;
  c.dir = (d.path / "j").string();
  c.max_bytes = std::uint64_t{1} << 30;
  return c;
}

// A batch of `n` records from an acked publisher.
struct batch {
  std::string topic, header, body;
  std::string_view frames[3];
  std::uint32_t count;
};
batch make_batch(std::string topic, std::uint64_t publisher, std::uint64_t seq, std::uint32_t n,
                 std::size_t payload = 8) {
  batch b;
  b.topic = std::move(topic);
  b.count = n;
  wire::batch_header h;
  h.count = n;
  h.publisher = publisher;
  h.seq = seq;
  h.topic_seq = seq;
  h.ack_floor = 1;
  b.header.assign(wire::header_size, '\0');
  wire::encode_header(h, b.header.data());
  for (std::uint32_t i = 0; i < n; ++i) {
    std::string rec = std::to_string(seq + i);
    rec.resize(payload, '.');
    wire::append_record(b.body, rec);
  }
  b.frames[0] = b.topic;
  b.frames[1] = b.header;
  b.frames[2] = b.body;
  return b;
}

std::uint64_t append_batch(journal::store& s, const batch& b, std::uint64_t time_ns = 1) {
  return s.append(record::kind::batch, b.count, b.frames, 3, time_ns);
}

std::uint64_t append_plain(journal::store& s, std::string_view topic, std::string_view payload,
                           std::uint64_t time_ns = 1) {
  const std::string_view frames[2] = {topic, payload};
  return s.append(record::kind::plain, 1, frames, 2, time_ns);
}

// Polls the store until `done(progress)` holds; fails after 10 s. Failures seen on the way are kept.
template <typename Pred>
journal::progress wait_for(journal::store& s, Pred done, std::optional<journal::progress::failure>* failed = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    auto p = s.poll();
    if (p.failed && failed) *failed = p.failed;
    if (done(p)) return p;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    REQUIRE(left > 0);
    pollfd pfd{s.notify_fd(), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(left));
  }
}

journal::progress wait_durable(journal::store& s, std::uint64_t through) {
  return wait_for(s, [&](const journal::progress& p) { return p.durable >= through; });
}

struct read_back {
  std::vector<record::entry> entries;
  std::vector<std::string> bytes;  // the entries' storage
  std::uint64_t skipped = 0;
};

// Reads every entry from `p` on, in pieces of about `chunk` bytes.
read_back read_all(const journal::store& s, const journal::position& p, std::size_t chunk = 1000) {
  read_back r;
  auto c = s.open(p);
  for (;;) {
    std::string out;
    std::uint64_t skipped = 0;
    const auto n = s.read(c, out, chunk, skipped);
    r.skipped += skipped;
    if (n == 0) break;
    r.bytes.push_back(std::move(out));
    const std::string& b = r.bytes.back();
    std::size_t at = 0;
    for (std::size_t i = 0; i < n; ++i) {
      record::entry e;
      REQUIRE(record::decode(b.data() + at, b.size() - at, e) == record::status::ok);
      r.entries.push_back(e);
      at += e.size;
    }
    REQUIRE(at == b.size());
  }
  return r;
}

read_back read_everything(const journal::store& s) {
  auto p = s.seek_seq(1);
  if (!p) return {};
  return read_all(s, *p);
}

std::vector<fs::path> segments_of(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".seg") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

bool any_note(const journal::recovery_report& r, const std::string& part) {
  for (const auto& n : r.notes)
    if (n.find(part) != std::string::npos) return true;
  return false;
}

std::string all_notes(const journal::recovery_report& r) {
  std::string s;
  for (const auto& n : r.notes) s += n + "\n";
  return s;
}

// What the store says when it refuses `c` ("" when it does not).
std::string refusal(const journal::config& c) {
  try {
    journal::store s(c);
  } catch (const journal::unusable& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("journal: appended entries become written and durable, and read back in order", "[journal]") {
  temp_dir d;
  journal::store s(config_for(d));
  CHECK(s.recovered().next_jseq == 1);
  CHECK(s.next_jseq() == 1);
  const auto b = make_batch("t.a", 7, 1, 10);
  CHECK(append_batch(s, b) == 1);
  CHECK(append_plain(s, "t.b", "plain") == 11);
  CHECK(s.next_jseq() == 12);
  s.flush();
  const auto p = wait_durable(s, 12);
  CHECK(p.written == 12);
  CHECK(!p.failed);
  CHECK(s.counters().syncs >= 1);
  const auto r = s.range();
  CHECK(r.oldest == 1);
  CHECK(r.head == 12);
  const auto back = read_everything(s);
  REQUIRE(back.entries.size() == 2);
  CHECK(back.entries[0].jseq == 1);
  CHECK(back.entries[0].count == 10);
  CHECK(back.entries[0].topic() == "t.a");
  CHECK(back.entries[1].jseq == 11);
  CHECK(back.entries[1].frames[1] == "plain");
  CHECK(back.skipped == 0);
  // The segment is named by its first jseq.
  CHECK(fs::exists(fs::path(s.settings().dir) / "00000000000000000001.seg"));
  // seek_seq into the batch gives the entry that holds it; past the head nothing yet.
  const auto mid = s.seek_seq(5);
  REQUIRE(mid);
  CHECK(mid->jseq == 1);
  CHECK(!s.seek_seq(12));
}

TEST_CASE("journal: a reopened store resumes the journal sequence and the publishers' next", "[journal]") {
  temp_dir d;
  {
    journal::store s(config_for(d));
    append_batch(s, make_batch("a", 7, 1, 5));
    append_batch(s, make_batch("a", 9, 100, 3));
    append_batch(s, make_batch("b", 7, 6, 2));
    append_plain(s, "c", "x");
    s.flush();
    wait_durable(s, 12);
  }
  journal::store s(config_for(d));
  const auto& r = s.recovered();
  CHECK(r.next_jseq == 12);
  CHECK(r.oldest_jseq == 1);
  CHECK(r.messages == 11);
  CHECK(r.segments == 1);
  CHECK(r.notes.empty());
  REQUIRE(r.publishers.size() == 2);
  CHECK(r.publishers[0].publisher == 7);
  CHECK(r.publishers[0].next == 8);
  CHECK(r.publishers[1].publisher == 9);
  CHECK(r.publishers[1].next == 103);
  CHECK(s.next_jseq() == 12);
  CHECK(append_plain(s, "c", "y") == 12);
  s.flush();
  wait_durable(s, 13);
  CHECK(read_everything(s).entries.size() == 5);
}

TEST_CASE("journal: a torn tail is truncated and said with the bytes dropped", "[journal]") {
  temp_dir d;
  const auto cfg = config_for(d);
  std::uint64_t good_size = 0;
  {
    journal::store s(cfg);
    append_batch(s, make_batch("a", 7, 1, 4));
    append_plain(s, "b", "x");
    s.flush();
    wait_durable(s, 6);
  }
  const auto seg = segments_of(cfg.dir).at(0);
  good_size = fs::file_size(seg);
  std::string half;
  SECTION("half an entry") {
    std::string e;
    const std::string_view f[1] = {"a message that was being written"};
    record::append(e, record::kind::plain, 6, 1, 1, f, 1);
    half = e.substr(0, e.size() / 2);
  }
  SECTION("garbage") { half = std::string(37, '\x7f'); }
  {
    std::ofstream out(seg, std::ios::binary | std::ios::app);
    out << half;
  }
  journal::store s(cfg);
  INFO(all_notes(s.recovered()));
  CHECK(any_note(s.recovered(), "truncated " + std::to_string(half.size()) +
                                    " bytes of a torn entry at the end of 00000000000000000001.seg"));
  CHECK(fs::file_size(seg) == good_size);
  CHECK(s.recovered().next_jseq == 6);
  CHECK(append_plain(s, "c", "after") == 6);
  s.flush();
  wait_durable(s, 7);
  const auto back = read_everything(s);
  REQUIRE(back.entries.size() == 3);
  CHECK(back.entries[2].jseq == 6);
}

TEST_CASE("journal: a damaged entry in the middle is skipped and its journal seqs said lost", "[journal]") {
  temp_dir d;
  const auto cfg = config_for(d);
  std::uint64_t second_at = 0;
  {
    journal::store s(cfg);
    append_batch(s, make_batch("a", 7, 1, 4));  // 1-4
    append_batch(s, make_batch("a", 7, 5, 3));  // 5-7: damaged below
    append_batch(s, make_batch("a", 7, 8, 2));  // 8-9
    s.flush();
    wait_durable(s, 10);
    second_at = s.seek_seq(5)->offset;
  }
  const auto seg = segments_of(cfg.dir).at(0);
  {
    std::fstream f(seg, std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(static_cast<std::streamoff>(second_at + 40));
    char c;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(second_at + 40));
    f.put(static_cast<char>(c ^ 0x20));
  }
  journal::store s(cfg);
  INFO(all_notes(s.recovered()));
  CHECK(any_note(s.recovered(), "00000000000000000001.seg: a damaged entry at offset " + std::to_string(second_at) +
                                    ": journal seqs 5-7 lost"));
  CHECK(s.recovered().next_jseq == 10);
  const auto back = read_everything(s);
  REQUIRE(back.entries.size() == 2);
  CHECK(back.entries[0].jseq == 1);
  CHECK(back.entries[1].jseq == 8);
  CHECK(back.skipped == 3);
  // A reader asking for a lost one starts at the next that is there.
  const auto p = s.seek_seq(6);
  REQUIRE(p);
  CHECK(p->jseq == 8);
}

TEST_CASE("journal: an unusable directory is refused with one line", "[journal]") {
  temp_dir d;
  const std::string file = (d.path / "plain-file").string();
  { std::ofstream(file) << "x"; }
  journal::config c;

  SECTION("a regular file") {
    c.dir = file;
    CHECK(refusal(c) == "journal directory " + file + ": not a directory");
  }
  SECTION("a path under a regular file (cannot be created)") {
    c.dir = file + "/j";
    CHECK(refusal(c) == "journal directory " + file + "/j: Not a directory");
  }
  SECTION("locked by another store") {
    c = config_for(d);
    journal::store first(c);
    CHECK(refusal(c) == "journal directory " + c.dir + " is locked by another relay");
  }
  SECTION("no permission") {
    if (::geteuid() == 0) {
      WARN("running as root: permission bits do not stop root, the no-permission case is not checked");
      return;
    }
    c.dir = (d.path / "closed").string();
    REQUIRE(::mkdir(c.dir.c_str(), 0) == 0);
    CHECK(refusal(c) == "journal directory " + c.dir + ": Permission denied");
    ::chmod(c.dir.c_str(), 0755);
  }
}

TEST_CASE("journal: a failed sync is reported, nothing of it stays, and after rewind the next group is durable",
          "[journal]") {
  temp_dir d;
  auto cfg = config_for(d);
  std::atomic<bool> fail_next{false};
  cfg.faults.sync = [&](int fd) { return fail_next.exchange(false) ? EIO : (::fdatasync(fd) == 0 ? 0 : errno); };
  journal::store s(cfg);
  append_batch(s, make_batch("a", 7, 1, 4));  // 1-4
  s.flush();
  wait_durable(s, 5);

  fail_next = true;
  append_batch(s, make_batch("a", 7, 5, 3));  // 5-7: its sync fails
  s.flush();
  std::optional<journal::progress::failure> failed;
  wait_for(
      s, [&](const journal::progress&) { return failed.has_value(); }, &failed);
  CHECK(failed->from == 5);
  CHECK(failed->why == std::strerror(EIO));
  CHECK(s.counters().failures == 1);
  CHECK(s.range().head == 5);
  CHECK(read_everything(s).entries.size() == 1);

  s.rewind(5);
  CHECK(s.next_jseq() == 5);
  CHECK(append_batch(s, make_batch("a", 7, 5, 3)) == 5);
  s.flush();
  const auto p = wait_durable(s, 8);
  CHECK(p.written == 8);
  const auto back = read_everything(s);
  REQUIRE(back.entries.size() == 2);
  CHECK(back.entries[1].jseq == 5);
  CHECK(back.entries[1].count == 3);
  CHECK(back.skipped == 0);
}

TEST_CASE("journal: with fsync on, readers see nothing that no sync covers yet", "[journal]") {
  temp_dir d;
  auto cfg = config_for(d);
  // The second sync waits until the test lets it go, then fails: what it covered is cut back and
  // its journal seqs are used again, so no reader may have seen them.
  std::mutex m;
  std::condition_variable cv;
  bool hold = false, held = false;
  cfg.faults.sync = [&](int fd) {
    std::unique_lock<std::mutex> lock(m);
    if (!hold) return ::fdatasync(fd) == 0 ? 0 : errno;
    held = true;
    cv.notify_all();
    cv.wait(lock, [&] { return !hold; });
    return EIO;
  };
  journal::store s(cfg);
  // Lets the sync go before the store stops, whatever happens below.
  struct release {
    std::mutex& m;
    std::condition_variable& cv;
    bool& hold;
    void operator()() {
      std::lock_guard<std::mutex> lock(m);
      hold = false;
      cv.notify_all();
    }
    ~release() { (*this)(); }
  } let_go{m, cv, hold};
  append_plain(s, "a", "one", 1000);  // 1
  s.flush();
  wait_durable(s, 2);
  {
    std::lock_guard<std::mutex> lock(m);
    hold = true;
  }
  append_plain(s, "a", "two", 2000);                // 2: written, its sync held
  append_batch(s, make_batch("b", 7, 1, 3), 2000);  // 3-5
  s.flush();
  bool was_held;
  {
    std::unique_lock<std::mutex> lock(m);
    was_held = cv.wait_for(lock, std::chrono::seconds(10), [&] { return held; });
  }
  CHECK(was_held);
  CHECK(s.range().head == 2);
  const auto p = s.seek_seq(1);
  CHECK(p);
  if (p) {
    auto c = s.open(*p);
    std::string out;
    std::uint64_t skipped = 0;
    CHECK(s.read(c, out, 1 << 20, skipped) == 1);
    record::entry e;
    CHECK(record::decode(out.data(), out.size(), e) == record::status::ok);
    CHECK(e.size == out.size());
    CHECK(c.next == 2);
  }
  CHECK(!s.seek_time(1500));
  std::uint64_t head = 0;
  const auto latest = s.last_per_topic({}, head);
  CHECK(head == 2);
  // The newest of "a" (2) and of "b" (5) are not stored yet: they come after the head, live.
  CHECK(latest.empty());
  for (const auto& l : latest) CHECK(l.jseq < head);
  let_go();
  std::optional<journal::progress::failure> failed;
  wait_for(
      s, [&](const journal::progress&) { return failed.has_value(); }, &failed);
  CHECK(failed->from == 2);
}

TEST_CASE("journal: after a power loss every entry that was durable is there", "[journal]") {
  temp_dir d;
  auto cfg = config_for(d);
  cfg.segment_bytes = 4096;  // several segments
  std::mutex m;
  std::map<std::string, std::uint64_t> synced, at_cut;
  cfg.faults.synced = [&](const std::string& path, std::uint64_t size) {
    std::lock_guard<std::mutex> lock(m);
    synced[path] = size;
  };
  std::uint64_t durable_at_cut = 0;
  {
    journal::store s(cfg);
    for (std::uint64_t i = 0; i < 40; ++i) append_batch(s, make_batch("a", 7, 1 + 5 * i, 5, 40));
    s.flush();
    durable_at_cut = wait_durable(s, 201).durable;
    {
      std::lock_guard<std::mutex> lock(m);
      at_cut = synced;
    }
    // Written after the last sync the power loss takes away (the clean stop syncs them; the cut
    // below undoes that).
    for (std::uint64_t i = 0; i < 30; ++i) append_batch(s, make_batch("a", 7, 201 + 5 * i, 5, 40));
    s.flush();
    wait_for(s, [](const journal::progress& p) { return p.written >= 351; });
  }
  REQUIRE(at_cut.size() >= 2);
  for (const auto& seg : segments_of(cfg.dir)) {
    const auto it = at_cut.find(seg.string());
    // A segment begun after the sync point had nothing synced.
    fs::resize_file(seg, it == at_cut.end() ? 0 : std::min<std::uint64_t>(it->second, fs::file_size(seg)));
  }
  journal::store s(cfg);
  INFO(all_notes(s.recovered()));
  CHECK(s.recovered().next_jseq >= durable_at_cut);
  const auto back = read_everything(s);
  std::uint64_t expect = 1;
  for (const auto& e : back.entries) {
    CHECK(e.jseq == expect);
    expect = e.end();
  }
  CHECK(expect >= durable_at_cut);
  CHECK(back.skipped == 0);
}

TEST_CASE("journal: set_retention lowers the size bound while running and the writer applies it at once", "[journal]") {
  temp_dir d;
  auto cfg = config_for(d);
  cfg.segment_bytes = 2000;
  cfg.max_bytes = 100000;
  journal::store s(cfg);
  std::uint64_t seq = 1;
  for (int i = 0; i < 12; ++i) {
    append_batch(s, make_batch("a", 7, seq, 10, 100));  // ~1.1 KiB an entry: one a segment
    seq += 10;
    s.flush();
    wait_durable(s, seq);
  }
  CHECK(s.counters().segments_removed == 0);
  const auto before = segments_of(cfg.dir).size();
  REQUIRE(before >= 10);
  CHECK(s.retention_bytes() == 100000);
  (void)s.poll();  // what the writes told
  const auto segments = s.counters().segments;
  s.set_retention(5000, std::chrono::seconds(0));
  CHECK(s.retention_bytes() == 5000);
  // Nothing more is written: the writer wakes for the new bound by itself, and tells the relay on
  // notify_fd (its journal figures would go stale otherwise), with no progress to report.
  pollfd pfd{s.notify_fd(), POLLIN, 0};
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (s.counters().segments_removed == 0 || ::poll(&pfd, 1, 10) != 1) {
    REQUIRE(std::chrono::steady_clock::now() < until);
  }
  CHECK(s.counters().segments_removed > 0);
  CHECK(s.counters().segments < segments);
  const auto p = s.poll();
  CHECK(p.written == seq);
  CHECK_FALSE(p.failed);
  CHECK(segments_of(cfg.dir).size() <= 5);
  CHECK(s.range().oldest > 1);
  // 0 is the directory's default again, as at start.
  s.set_retention(0, std::chrono::seconds(0));
  CHECK(s.retention_bytes() == journal::default_max_bytes(cfg.dir));
}

TEST_CASE("journal: retention by bytes removes the oldest segments; a reader behind them skips", "[journal]") {
  temp_dir d;
  auto cfg = config_for(d);
  cfg.segment_bytes = 2000;
  cfg.max_bytes = 6000;
  journal::store s(cfg);
  append_batch(s, make_batch("a", 7, 1, 10, 100));  // ~1.1 KiB an entry: one a segment
  s.flush();
  wait_durable(s, 11);
  const auto first = s.seek_seq(1);
  REQUIRE(first);
  auto c = s.open(*first);
  std::uint64_t seq = 11;
  for (int i = 0; i < 12; ++i) {
    append_batch(s, make_batch("a", 7, seq, 10, 100));
    seq += 10;
    s.flush();
    wait_durable(s, seq);
  }
  CHECK(s.counters().segments_removed > 0);
  const auto r = s.range();
  CHECK(r.oldest > 1);
  CHECK(r.head == seq);
  CHECK(segments_of(cfg.dir).size() <= 6);
  CHECK(s.seek_seq(1)->jseq == r.oldest);
  // The cursor opened on the first segment, since removed: it goes on at the oldest retained entry
  // (retention may have run once more since range()) and says how many it passed over.
  std::uint64_t next = 1, total_skipped = 0, first_read = 0;
  for (;;) {
    std::string out;
    std::uint64_t skipped = 0;
    const auto n = s.read(c, out, 5000, skipped);
    total_skipped += skipped;
    if (n == 0) break;
    std::size_t at = 0;
    for (std::size_t i = 0; i < n; ++i) {
      record::entry e;
      REQUIRE(record::decode(out.data() + at, out.size() - at, e) == record::status::ok);
      if (first_read == 0) first_read = e.jseq;
      CHECK(e.jseq >= next);
      next = e.end();
      at += e.size;
    }
  }
  CHECK(next == seq);
  CHECK(first_read >= r.oldest);
  CHECK(total_skipped == first_read - 1);
  CHECK(total_skipped > 0);
}

TEST_CASE("journal: seek_time finds the first entry at or after a time", "[journal]") {
  temp_dir d;
  journal::store s(config_for(d));
  append_plain(s, "a", "1", 1000);
  append_plain(s, "a", "2", 2000);
  append_plain(s, "a", "3", 2000);
  append_plain(s, "a", "4", 3000);
  s.flush();
  wait_durable(s, 5);
  CHECK(s.seek_time(0)->jseq == 1);
  CHECK(s.seek_time(1000)->jseq == 1);
  CHECK(s.seek_time(1001)->jseq == 2);
  CHECK(s.seek_time(2000)->jseq == 2);
  CHECK(s.seek_time(2500)->jseq == 4);
  CHECK(!s.seek_time(3001));
}

TEST_CASE("journal: last_per_topic gives each matching topic's newest message", "[journal]") {
  temp_dir d;
  const auto cfg = config_for(d);
  {
    journal::store s(cfg);
    append_plain(s, "weather.paris", "1");                 // 1
    append_batch(s, make_batch("weather.rome", 7, 1, 3));  // 2-4
    append_plain(s, "news", "2");                          // 5
    append_plain(s, "weather.paris", "3");                 // 6
    s.flush();
    wait_durable(s, 7);
    std::uint64_t head = 0;
    const auto w = s.last_per_topic({"weather."}, head);
    CHECK(head == 7);
    REQUIRE(w.size() == 2);
    CHECK(w[0].jseq == 4);  // the batch's last message
    CHECK(w[1].jseq == 6);
    CHECK(s.last_per_topic({}, head).size() == 3);
    CHECK(s.last_per_topic({"news", "weather.r"}, head).size() == 2);
    CHECK(s.last_per_topic({"nothing"}, head).empty());
  }
  // Rebuilt by recovery.
  journal::store s(cfg);
  std::uint64_t head = 0;
  const auto all = s.last_per_topic({""}, head);
  CHECK(head == 7);
  REQUIRE(all.size() == 3);
  CHECK(all[0].jseq == 4);
  CHECK(all[1].jseq == 5);
  CHECK(all[2].jseq == 6);
  // Read the entry at a position and trim it to the message.
  auto c = s.open(all[0]);
  std::string out;
  std::uint64_t skipped = 0;
  REQUIRE(s.read(c, out, 1, skipped) == 1);
  record::entry e;
  REQUIRE(record::decode(out.data(), out.size(), e) == record::status::ok);
  std::string trimmed;
  record::append_from(trimmed, e, all[0].jseq);
  REQUIRE(record::decode(trimmed.data(), trimmed.size(), e) == record::status::ok);
  CHECK(e.jseq == 4);
  CHECK(e.count == 1);
}

TEST_CASE("journal: files that are not segments are left alone", "[journal]") {
  temp_dir d;
  const auto cfg = config_for(d);
  fs::create_directories(cfg.dir);
  { std::ofstream(cfg.dir + "/README") << "not a segment"; }
  { std::ofstream(cfg.dir + "/123.seg") << "short name"; }
  journal::store s(cfg);
  CHECK(s.recovered().notes.empty());
  CHECK(s.recovered().segments == 0);
  CHECK(fs::exists(cfg.dir + "/README"));
}
