#include "relay/journal.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "big_endian.hpp"

namespace zrelay::journal {
namespace {

using big_endian::get32;
using big_endian::get64;

// A sparse index point every this many bytes of a segment: a seek reads at most this much.
constexpr std::uint64_t index_every = 256 * 1024;
// What a reader or a seek reads at once.
constexpr std::size_t read_chunk = 256 * 1024;
// Group buffers kept for reuse, so that the relay thread's appends rarely allocate.
constexpr std::size_t spare_groups = 4;

std::string error_text(int e) {
  char buf[256];
  // GNU strerror_r: returns the text, in buf or a static string.
  return ::strerror_r(e, buf, sizeof buf);
}

std::string segment_file(std::uint64_t first) {
  char b[32];
  std::snprintf(b, sizeof b, "%020llu.seg", static_cast<unsigned long long>(first));
  return b;
}

// "<20 digits>.seg" and nothing else; the number fits 64 bits.
bool parse_segment_file(const char* name, std::uint64_t& first) {
  if (std::strlen(name) != 24 || std::strcmp(name + 20, ".seg") != 0) return false;
  std::uint64_t v = 0;
  for (int i = 0; i < 20; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    const std::uint64_t d = static_cast<std::uint64_t>(name[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  first = v;
  return true;
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void signal_fd(int fd) {
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof one);
}

void drain_fd(int fd) {
  std::uint64_t v;
  [[maybe_unused]] auto n = ::read(fd, &v, sizeof v);
}

std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// pread until n bytes or the end of the file; the bytes read, or -1.
ssize_t pread_full(int fd, char* p, std::size_t n, std::uint64_t off) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, p + got, n - got, static_cast<off_t>(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return got > 0 ? static_cast<ssize_t>(got) : -1;
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

// What the index needs of an entry the relay thread encoded (trusted bytes: no checks).
struct peeked {
  std::uint64_t jseq, time;
  std::uint32_t size, count;
  std::string_view topic;
};
peeked peek(const char* entry) {
  const auto* p = reinterpret_cast<const unsigned char*>(entry);
  peeked e;
  e.size = static_cast<std::uint32_t>(12 + get32(p + 8));
  e.jseq = get64(p + 12);
  e.time = get64(p + 20);
  const auto nframes = static_cast<std::uint16_t>((p[30] << 8) | p[31]);
  const std::uint32_t topic_len = get32(p + record::prefix_size);
  e.topic = nframes >= 2 ? std::string_view(entry + record::prefix_size + 4, topic_len) : std::string_view();
  if (p[28] == static_cast<unsigned char>(record::kind::batch)) {
    const auto* header = p + record::prefix_size + 4 + topic_len + 4;
    e.count = get32(header + 4);
  } else {
    e.count = 1;
  }
  return e;
}

struct point {
  std::uint64_t offset, jseq, time;
};
struct hole {
  std::uint64_t from, to;
};

struct segment {
  std::uint64_t name = 0;
  std::string path;
  std::uint64_t first = 0, end = 0;  // jseqs: its first entry's, the one after its last (equal: no entry)
  std::uint64_t size = 0;            // bytes readers may read: whole entries (and damage they skip)
  std::uint64_t messages = 0;
  std::uint64_t first_time = 0, last_time = 0;
  std::vector<point> points;
  std::vector<hole> holes;  // damage recovery found: readers jump over it
  bool has_entries() const { return end > first; }
};

// Readers read what recovery indexed and nothing else: `off` in a hole moves past it; returns where
// the bytes readable from `off` end (the next hole or `limit`). Holes are sorted and apart.
std::uint64_t window(const std::vector<hole>& holes, std::uint64_t& off, std::uint64_t limit) {
  for (const auto& h : holes) {
    if (off >= h.to) continue;
    if (off >= h.from) {
      off = h.to;
      continue;
    }
    return std::min(limit, h.from);
  }
  return limit;
}

struct group {
  std::string bytes;
  std::uint64_t epoch;
};

bool topic_matches(std::string_view topic, const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return true;
  for (const auto& p : prefixes)
    if (topic.compare(0, p.size(), p) == 0) return true;
  return false;
}

}  // namespace

std::uint64_t default_max_bytes(const std::string& dir) {
  constexpr std::uint64_t cap = std::uint64_t{4} << 30;
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return cap;
  const std::uint64_t quarter = static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize / 4;
  return quarter == 0 ? cap : std::min(cap, quarter);
}

struct store::impl {
  config cfg;
  recovery_report report;
  int lock_fd = -1, notify_fd = -1, head_fd = -1;

  // --- the relay thread ---
  std::string building;
  std::uint64_t next = 1;

  // --- handed over to the writer (qm) ---
  std::mutex qm;
  std::condition_variable qcv;
  std::deque<group> queue;
  std::vector<std::string> spare;
  std::uint64_t epoch = 1;
  bool stop = false;
  std::atomic<std::uint64_t> backlog{0};

  // --- progress for poll() (pm) ---
  std::mutex pm;
  progress prog;

  // --- the index, shared with readers (im) ---
  mutable std::mutex im;
  std::deque<segment> segs;  // by name; the last one is the one being written
  std::uint64_t head = 1;    // every jseq below is written
  std::uint64_t total_bytes = 0;
  std::unordered_map<std::string, position> topics;

  // --- the writer thread only ---
  int active_fd = -1;
  std::uint64_t active_size = 0;  // bytes of whole entries in the active segment
  std::uint64_t synced_size = 0;  // of those, synced
  std::uint64_t written = 1, durable = 1;
  std::uint64_t failed_epoch = 0;  // groups of this epoch and older are dropped (a failure covered them)
  bool cut_pending = false;
  std::uint64_t cut_to = 0;
  std::optional<progress::failure> failure;  // of the current round of writing

  std::atomic<std::uint64_t> n_syncs{0}, n_bytes{0}, n_failures{0}, n_removed{0};
  // Retention in force (set_retention changes it from any thread; the writer reads it).
  std::atomic<std::uint64_t> keep_bytes{0};
  std::atomic<std::int64_t> keep_age_s{0};
  bool retain_due = false;  // (qm) set_retention asked the writer to apply retention now
  std::thread writer;

  explicit impl(config c) : cfg(std::move(c)) {}

  std::string path_of(std::uint64_t name) const { return cfg.dir + "/" + segment_file(name); }

  void open_dir();
  void recover();
  void run();
  void write_round(std::vector<group>& work);
  bool write_group(const std::string& g);
  bool roll(std::uint64_t jseq);
  bool sync_active();
  void fail(std::uint64_t from, int err, bool after_sync);
  void cut_index(std::uint64_t size, std::uint64_t jseq);
  void retain();
  void publish(bool head_moved, bool with_failure);

  // Index updates: `s` is in segs; the caller holds im.
  void index_entry(segment& s, std::uint64_t offset, std::uint64_t jseq, std::uint32_t count, std::uint32_t size,
                   std::uint64_t time, std::string_view topic) {
    if (!s.has_entries()) {
      s.first = jseq;
      s.first_time = time;
    }
    if (s.points.empty() || offset - s.points.back().offset >= index_every) s.points.push_back({offset, jseq, time});
    s.end = jseq + count;
    s.last_time = time;
    s.size = offset + size;
    s.messages += count;
    auto it = topics.find(std::string(topic));
    const position p{s.name, offset, jseq + count - 1};
    if (it == topics.end()) topics.emplace(std::string(topic), p);
    else it->second = p;
  }

  const segment* find_segment(std::uint64_t name) const {
    auto it = std::lower_bound(segs.begin(), segs.end(), name,
                               [](const segment& s, std::uint64_t n) { return s.name < n; });
    return it != segs.end() && it->name == name ? &*it : nullptr;
  }

  // What find_entry's `match` says of an entry.
  enum class seek { on, here, none };

  // Finds an entry for a reader: `pick(off)`, under the index lock, gives the segment to search
  // (nullptr: none) and sets the offset to walk from; `match(entry)` says go on, here, or nothing.
  // A segment that retention removed before it could be opened is looked up again.
  template <typename Pick, typename Match>
  std::optional<position> find_entry(Pick&& pick, Match&& match) const {
    for (int attempt = 0; attempt < 8; ++attempt) {
      std::string path;
      std::uint64_t name, off = 0, limit;
      std::vector<hole> holes;
      {
        std::lock_guard<std::mutex> lock(im);
        const segment* s = pick(off);
        if (s == nullptr) return std::nullopt;
        path = s->path;
        name = s->name;
        limit = s->size;
        holes = s->holes;
      }
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;  // removed by retention meanwhile: look again
      std::optional<position> found;
      bool none = false;
      walk(fd, off, limit, holes, [&](std::uint64_t at, const record::entry& e) {
        const auto m = match(e);
        if (m == seek::on) return true;
        if (m == seek::here) found = position{name, at, e.jseq};
        else none = true;
        return false;
      });
      ::close(fd);
      if (found || none) return found;
    }
    return std::nullopt;
  }

  // Walks the whole entries of a segment file from `off` below `limit`, jumping over `holes`;
  // f(offset, entry) returns false to stop. False if the file cannot be read.
  template <typename F>
  static bool walk(int fd, std::uint64_t off, std::uint64_t limit, const std::vector<hole>& holes, F&& f) {
    std::string buf;
    record::entry e;
    while (off < limit) {
      const std::uint64_t stop = window(holes, off, limit);
      if (off >= stop) continue;
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(stop - off, read_chunk));
      buf.resize(want);
      ssize_t got = pread_full(fd, buf.data(), want, off);
      if (got <= 0) return got == 0;
      std::size_t pos = 0;
      while (pos < static_cast<std::size_t>(got)) {
        const auto st = record::decode(buf.data() + pos, static_cast<std::size_t>(got) - pos, e);
        if (st == record::status::ok) {
          if (!f(off + pos, e)) return true;
          pos += e.size;
          continue;
        }
        if (st == record::status::short_data && pos == 0 && got >= 12) {
          // An entry larger than the chunk: read it whole.
          const std::uint64_t need = 12 + get32(reinterpret_cast<const unsigned char*>(buf.data()) + 8);
          if (off + need > stop) return true;
          buf.resize(static_cast<std::size_t>(need));
          got = pread_full(fd, buf.data(), buf.size(), off);
          if (got < static_cast<ssize_t>(need)) return true;
          continue;
        }
        if (st == record::status::short_data && off + pos + 12 <= stop) break;
        // Not what recovery indexed (the file changed under the reader): on at the next hole.
        off = stop;
        pos = 0;
        got = -1;
        break;
      }
      if (got >= 0) off += pos;
    }
    return true;
  }
};

// --- opening and recovery ---

void store::impl::open_dir() {
  const std::string& d = cfg.dir;
  if (d.empty()) throw unusable("journal directory: no path given");
  struct stat st {};
  if (::stat(d.c_str(), &st) != 0) {
    if (errno != ENOENT) throw unusable("journal directory " + d + ": " + error_text(errno));
    if (::mkdir(d.c_str(), 0755) != 0)
      throw unusable("journal directory " + d + ": cannot create it: " + error_text(errno));
  } else if (!S_ISDIR(st.st_mode)) {
    throw unusable("journal directory " + d + ": not a directory");
  }
  if (::access(d.c_str(), R_OK | W_OK | X_OK) != 0) throw unusable("journal directory " + d + ": " + error_text(errno));
  const std::string lock = d + "/LOCK";
  lock_fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) throw unusable("journal directory " + d + ": cannot open " + lock + ": " + error_text(errno));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    const int e = errno;
    ::close(lock_fd);
    lock_fd = -1;
    if (e == EWOULDBLOCK) throw unusable("journal directory " + d + " is locked by another relay");
    throw unusable("journal directory " + d + ": cannot lock " + lock + ": " + error_text(e));
  }
}

void store::impl::recover() {
  std::vector<std::uint64_t> names;
  if (DIR* dir = ::opendir(cfg.dir.c_str())) {
    while (const dirent* de = ::readdir(dir)) {
      std::uint64_t n;
      if (!parse_segment_file(de->d_name, n)) continue;
      struct stat st {};
      if (::fstatat(::dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
      names.push_back(n);
    }
    ::closedir(dir);
  }
  std::sort(names.begin(), names.end());

  bool have_expected = false;
  std::uint64_t expected = 1;
  // Damage not yet followed by an entry that decodes (it may run on into the next segment).
  struct {
    bool open = false;
    std::string file;
    std::uint64_t offset = 0, bytes = 0, from = 0;
  } damage;
  std::unordered_map<std::uint64_t, std::uint64_t> publishers;
  auto& notes = report.notes;

  auto close_damage = [&](std::uint64_t upto) {
    if (!damage.open) return;
    std::string lost;
    if (!have_expected || upto <= damage.from) lost = "no journal seq lost";
    else if (upto - 1 == damage.from) lost = "journal seq " + std::to_string(damage.from) + " lost";
    else lost = "journal seqs " + std::to_string(damage.from) + "-" + std::to_string(upto - 1) + " lost";
    notes.push_back("journal: " + damage.file + ": a damaged entry at offset " + std::to_string(damage.offset) + ": " +
                    lost + " (" + std::to_string(damage.bytes) + " bytes skipped)");
    damage.open = false;
  };

  for (std::size_t i = 0; i < names.size(); ++i) {
    const bool last = i + 1 == names.size();
    segment s;
    s.name = names[i];
    s.path = path_of(s.name);
    const std::string file = segment_file(s.name);
    const int fd = ::open(s.path.c_str(), (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    struct stat st {};
    if (fd < 0 || ::fstat(fd, &st) != 0) {
      notes.push_back("journal: " + file + ": cannot read it (" + error_text(errno) + "): ignored");
      if (fd >= 0) ::close(fd);
      continue;
    }
    const auto size = static_cast<std::uint64_t>(st.st_size);
    const unsigned char* p = nullptr;
    void* map = MAP_FAILED;
    if (size > 0) {
      map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (map == MAP_FAILED) {
        notes.push_back("journal: " + file + ": cannot read it (" + error_text(errno) + "): ignored");
        ::close(fd);
        continue;
      }
      ::madvise(map, size, MADV_SEQUENTIAL);
      ::madvise(map, size, MADV_WILLNEED);  // read ahead while the scan checks what is in
      p = static_cast<const unsigned char*>(map);
    }
    s.first = s.end = have_expected ? expected : s.name;
    bool local_damage = false;
    std::uint64_t local_from = 0;
    std::uint64_t off = 0;
    record::entry e;
    while (off < size) {
      const auto st2 = record::decode(p + off, static_cast<std::size_t>(size - off), e);
      if (st2 == record::status::ok && (!have_expected || e.jseq >= expected)) {
        if (local_damage) s.holes.push_back({local_from, off});
        local_damage = false;
        if (damage.open) {
          close_damage(e.jseq);
        } else if (have_expected && e.jseq > expected) {
          notes.push_back("journal: " + file + ": journal seqs " + std::to_string(expected) + "-" +
                          std::to_string(e.jseq - 1) + " missing before offset " + std::to_string(off));
        }
        if (!s.has_entries() && off == 0 && e.jseq != s.name)
          notes.push_back("journal: " + file + ": its first entry has journal seq " + std::to_string(e.jseq) +
                          ", not the one its name says");
        if (!s.has_entries()) s.first = s.end = e.jseq;
        index_entry(s, off, e.jseq, e.count, static_cast<std::uint32_t>(e.size), e.time_ns, e.topic());
        if (e.what == record::kind::batch && e.header.ack_floor != 0) {
          auto& nx = publishers[e.header.publisher];
          nx = std::max(nx, e.header.seq + e.header.count);
        }
        have_expected = true;
        expected = e.end();
        off += e.size;
        continue;
      }
      if (!local_damage) {
        local_damage = true;
        local_from = off;
      }
      if (!damage.open) {
        damage.open = true;
        damage.file = file;
        damage.offset = off;
        damage.bytes = 0;
        damage.from = expected;
      }
      const std::uint64_t skip = std::max<std::uint64_t>(1,
                                                         record::resync(p + off, static_cast<std::size_t>(size - off)));
      damage.bytes += skip;
      off += skip;
    }
    if (map != MAP_FAILED) ::munmap(map, size);
    s.size = size;
    if (local_damage) {
      if (last) {
        // A torn tail: what a crash in the middle of a write leaves. Cut it off.
        const std::uint64_t dropped = size - local_from;
        damage.bytes -= dropped;
        if (damage.file != file || damage.offset != local_from) close_damage(expected);
        damage.open = false;
        if (::ftruncate(fd, static_cast<off_t>(local_from)) == 0) {
          notes.push_back("journal: truncated " + std::to_string(dropped) + " bytes of a torn entry at the end of " +
                          file);
          s.size = local_from;
        } else {
          notes.push_back("journal: " + file + ": cannot truncate its torn tail (" + error_text(errno) + "): the " +
                          std::to_string(dropped) + " bytes are skipped");
          s.holes.push_back({local_from, size});
        }
      } else {
        s.holes.push_back({local_from, size});
      }
    }
    total_bytes += s.size;
    if (last) {
      ::fdatasync(fd);  // what a crashed relay left in the page cache is on disk from now on
      active_fd = fd;
      active_size = synced_size = s.size;
    } else {
      ::close(fd);
    }
    segs.push_back(std::move(s));
  }
  close_damage(expected);

  if (!have_expected) expected = names.empty() ? 1 : std::max<std::uint64_t>(names.back(), 1);
  // Empty segments at the end whose name says another place (a power loss took what they held):
  // gone, so that the next segment is named where the journal goes on.
  bool dropped_tail = false;
  while (!segs.empty() && !segs.back().has_entries() && segs.back().size == 0 && segs.back().name != expected) {
    ::unlink(segs.back().path.c_str());
    segs.pop_back();
    dropped_tail = true;
  }
  if (dropped_tail) {
    if (active_fd >= 0) ::close(active_fd);
    active_fd = -1;  // the writer begins a new segment
    fsync_dir(cfg.dir);
  }
  if (!segs.empty() && !segs.back().has_entries()) segs.back().first = segs.back().end = expected;
  head = written = durable = next = expected;
  prog.written = prog.durable = expected;

  report.publishers.reserve(publishers.size());
  for (const auto& [pub, nx] : publishers) report.publishers.push_back({pub, nx});
  std::sort(report.publishers.begin(), report.publishers.end(),
            [](const auto& a, const auto& b) { return a.publisher < b.publisher; });
}

// --- the writer thread ---

void store::impl::publish(bool head_moved, bool with_failure) {
  {
    std::lock_guard<std::mutex> lock(pm);
    prog.written = written;
    prog.durable = cfg.fsync ? durable : written;
    if (with_failure && failure) {
      if (!prog.failed || failure->from < prog.failed->from) prog.failed = failure;
      failure.reset();
    }
  }
  signal_fd(notify_fd);
  if (head_moved) signal_fd(head_fd);
}

void store::impl::cut_index(std::uint64_t size, std::uint64_t jseq) {
  std::lock_guard<std::mutex> lock(im);
  if (segs.empty()) return;
  segment& s = segs.back();
  if (s.size > size) total_bytes -= s.size - size;
  s.size = std::min(s.size, size);
  while (!s.points.empty() && s.points.back().offset >= s.size) s.points.pop_back();
  if (s.end > jseq) {
    s.messages -= std::min(s.messages, s.end - std::max(jseq, s.first));
    s.end = std::max(jseq, s.first);
  }
  if (!s.has_entries()) s.points.clear();
  head = std::min(head, jseq);
  // The last message of a topic may have been cut: such topics are found again in this segment
  // (topics whose previous message is in an older segment are forgotten until they get a new one).
  for (auto it = topics.begin(); it != topics.end();) {
    if (it->second.jseq >= jseq) it = topics.erase(it);
    else ++it;
  }
  walk(active_fd, 0, s.size, s.holes, [&](std::uint64_t off, const record::entry& e) {
    if (e.end() <= jseq) {
      auto& p = topics[std::string(e.topic())];
      p = position{s.name, off, e.end() - 1};
    }
    return true;
  });
}

void store::impl::fail(std::uint64_t from, int err, bool after_sync) {
  n_failures.fetch_add(1, std::memory_order_relaxed);
  // After a failed sync what it covered is not trusted: cut back to what was synced before.
  const std::uint64_t size = after_sync ? synced_size : active_size;
  if (after_sync) from = durable;
  if (!failure || from < failure->from) failure = progress::failure{from, error_text(err)};
  cut_pending = true;
  cut_to = size;
  active_size = size;
  written = std::min(written, from);
  cut_index(size, from);
  if (active_fd >= 0 && ::ftruncate(active_fd, static_cast<off_t>(size)) == 0) cut_pending = false;
}

bool store::impl::sync_active() {
  if (!cfg.fsync || active_fd < 0 || active_size == synced_size) {
    durable = written;
    return true;
  }
  const std::uint64_t size = active_size;
  const int err = cfg.faults.sync ? cfg.faults.sync(active_fd) : (::fdatasync(active_fd) == 0 ? 0 : errno);
  if (err != 0) {
    fail(durable, err, true);
    return false;
  }
  n_syncs.fetch_add(1, std::memory_order_relaxed);
  synced_size = size;
  durable = written;
  // Before the relay hears of it (publish), so a test's record of synced sizes covers every ack.
  if (cfg.faults.synced) cfg.faults.synced(segs.back().path, size);
  std::lock_guard<std::mutex> lock(im);
  head = durable;
  return true;
}

bool store::impl::roll(std::uint64_t jseq) {
  if (active_fd >= 0) {
    if (!sync_active()) return false;
    ::close(active_fd);
    active_fd = -1;
  }
  const std::string path = path_of(jseq);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail(jseq, errno, false);
    return false;
  }
  fsync_dir(cfg.dir);
  active_fd = fd;
  active_size = synced_size = 0;
  segment s;
  s.name = jseq;
  s.path = path;
  s.first = s.end = jseq;
  std::lock_guard<std::mutex> lock(im);
  segs.push_back(std::move(s));
  return true;
}

bool store::impl::write_group(const std::string& g) {
  const char* base = g.data();
  auto entry_size = [&](std::size_t at) {
    return std::uint64_t{12} + get32(reinterpret_cast<const unsigned char*>(base + at + 8));
  };
  auto entry_jseq = [&](std::size_t at) { return get64(reinterpret_cast<const unsigned char*>(base + at + 12)); };
  std::size_t at = 0;
  while (at < g.size()) {
    if (active_fd < 0 || (active_size > 0 && active_size + entry_size(at) > cfg.segment_bytes)) {
      if (!roll(entry_jseq(at))) return false;
    }
    // The entries that fit in this segment (at least one).
    std::size_t end = at + entry_size(at);
    while (end < g.size() && active_size + (end - at) + entry_size(end) <= cfg.segment_bytes) end += entry_size(end);
    std::size_t done = 0;
    int err = 0;
    while (done < end - at) {
      const ssize_t w = ::pwrite(active_fd, base + at + done, end - at - done, static_cast<off_t>(active_size + done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        err = w < 0 ? errno : ENOSPC;
        break;
      }
      done += static_cast<std::size_t>(w);
    }
    // Index the entries written whole.
    std::size_t whole = at;
    {
      std::lock_guard<std::mutex> lock(im);
      segment& s = segs.back();
      while (whole < end && whole + entry_size(whole) <= at + done) {
        const peeked e = peek(base + whole);
        index_entry(s, active_size + (whole - at), e.jseq, e.count, e.size, e.time, e.topic);
        total_bytes += e.size;
        written = e.jseq + e.count;
        // Readers see what is stored: written with fsync off, synced with it on (a failed sync cuts
        // back and its numbers are used again, so nobody may have seen them).
        if (!cfg.fsync) head = written;
        whole += e.size;
      }
    }
    n_bytes.fetch_add(whole - at, std::memory_order_relaxed);
    active_size += whole - at;
    if (err != 0) {
      fail(entry_jseq(whole), err, false);
      return false;
    }
    at = end;
  }
  return true;
}

void store::impl::write_round(std::vector<group>& work) {
  const std::uint64_t head_before = written;
  std::uint64_t last_epoch = 0;
  for (auto& g : work) {
    last_epoch = std::max(last_epoch, g.epoch);
    const std::uint64_t n = g.bytes.size();
    if (g.epoch > failed_epoch && !g.bytes.empty()) {
      bool ok = true;
      if (cut_pending) {
        if (active_fd >= 0 && ::ftruncate(active_fd, static_cast<off_t>(cut_to)) != 0) {
          fail(get64(reinterpret_cast<const unsigned char*>(g.bytes.data()) + 12), errno, false);
          ok = false;
        } else {
          cut_pending = false;
        }
      }
      if (ok) ok = write_group(g.bytes);
      if (!ok) failed_epoch = g.epoch;
    }
    backlog.fetch_sub(n, std::memory_order_relaxed);
  }
  // Readers and live delivery may go on while the sync runs. A failure is said once the round is
  // over (a failed sync lowers its `from`).
  if (written != head_before) publish(!cfg.fsync, false);
  if (!sync_active()) failed_epoch = std::max(failed_epoch, last_epoch);
  // Retention before the news: whoever hears that a group is durable sees the journal trimmed.
  retain();
  publish(true, true);
}

void store::impl::retain() {
  const std::uint64_t max_bytes = keep_bytes.load(std::memory_order_relaxed);
  const std::uint64_t age_ns = static_cast<std::uint64_t>(keep_age_s.load(std::memory_order_relaxed)) * 1000000000ull;
  const std::uint64_t now = now_ns();
  std::vector<std::string> gone;
  {
    std::lock_guard<std::mutex> lock(im);
    while (segs.size() > 1) {
      const segment& s = segs.front();
      const bool too_big = total_bytes > max_bytes;
      const bool too_old = age_ns != 0 && (!s.has_entries() || (now > age_ns && s.last_time < now - age_ns));
      if (!too_big && !too_old) break;
      total_bytes -= std::min(total_bytes, s.size);
      for (auto it = topics.begin(); it != topics.end();) {
        if (it->second.segment == s.name) it = topics.erase(it);
        else ++it;
      }
      gone.push_back(s.path);
      segs.pop_front();
    }
  }
  if (gone.empty()) return;
  for (const auto& path : gone) ::unlink(path.c_str());
  fsync_dir(cfg.dir);
  n_removed.fetch_add(gone.size(), std::memory_order_relaxed);
  // Readers waiting at the head learn nothing new, but one that is behind may now skip. The relay
  // learns of it too (its journal figures), though no write is done to tell it.
  signal_fd(head_fd);
  signal_fd(notify_fd);
}

void store::impl::run() {
  std::vector<group> work;
  for (;;) {
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(qm);
      const auto ready = [&] { return stop || !queue.empty() || retain_due; };
      if (keep_age_s.load(std::memory_order_relaxed) > 0) qcv.wait_for(lock, std::chrono::seconds(1), ready);
      else qcv.wait(lock, ready);
      retain_due = false;
      while (!queue.empty()) {
        work.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      stopping = stop;
    }
    if (!work.empty()) write_round(work);
    else retain();  // by age, while nothing is written
    {
      std::lock_guard<std::mutex> lock(qm);
      for (auto& g : work) {
        if (spare.size() >= spare_groups) break;
        g.bytes.clear();
        spare.push_back(std::move(g.bytes));
      }
    }
    work.clear();
    if (stopping) break;
  }
}

// --- the store ---

store::store(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {
  impl& m = *impl_;
  m.open_dir();
  if (m.cfg.max_bytes == 0) m.cfg.max_bytes = default_max_bytes(m.cfg.dir);
  m.keep_bytes.store(m.cfg.max_bytes, std::memory_order_relaxed);
  m.keep_age_s.store(m.cfg.max_age.count(), std::memory_order_relaxed);
  if (m.cfg.segment_bytes == 0) m.cfg.segment_bytes = 1;
  m.recover();
  m.retain();
  m.n_removed.store(0, std::memory_order_relaxed);
  {
    auto& r = m.report;
    r.next_jseq = m.next;
    r.segments = m.segs.size();
    r.bytes = m.total_bytes;
    r.oldest_jseq = m.segs.empty() ? m.next : m.segs.front().first;
    r.messages = 0;
    for (const auto& s : m.segs) {
      r.messages += s.messages;
      if (s.has_entries()) r.last_time_ns = std::max(r.last_time_ns, s.last_time);
    }
  }
  m.notify_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  m.head_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (m.notify_fd < 0 || m.head_fd < 0)
    throw std::runtime_error("journal: cannot create an eventfd: " + error_text(errno));
  m.writer = std::thread([&m] { m.run(); });
}

store::~store() {
  impl& m = *impl_;
  if (m.writer.joinable()) {
    {
      std::lock_guard<std::mutex> lock(m.qm);
      m.stop = true;
    }
    m.qcv.notify_one();
    m.writer.join();
  }
  if (m.active_fd >= 0) ::close(m.active_fd);
  if (m.notify_fd >= 0) ::close(m.notify_fd);
  if (m.head_fd >= 0) ::close(m.head_fd);
  if (m.lock_fd >= 0) ::close(m.lock_fd);
}

const recovery_report& store::recovered() const { return impl_->report; }
const config& store::settings() const { return impl_->cfg; }

std::uint64_t store::append(record::kind k, std::uint32_t count, const std::string_view* frames, std::size_t n,
                            std::uint64_t time_ns) {
  impl& m = *impl_;
  const std::uint64_t jseq = m.next;
  record::append(m.building, k, jseq, time_ns, count, frames, n);
  m.next += k == record::kind::batch ? count : 1;
  return jseq;
}

void store::set_retention(std::uint64_t max_bytes, std::chrono::seconds max_age) {
  impl& m = *impl_;
  m.keep_bytes.store(max_bytes != 0 ? max_bytes : default_max_bytes(m.cfg.dir), std::memory_order_relaxed);
  m.keep_age_s.store(max_age.count(), std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(m.qm);
    m.retain_due = true;
  }
  m.qcv.notify_one();
}

std::uint64_t store::retention_bytes() const { return impl_->keep_bytes.load(std::memory_order_relaxed); }

void store::flush() {
  impl& m = *impl_;
  if (m.building.empty()) return;
  const std::uint64_t n = m.building.size();
  {
    std::lock_guard<std::mutex> lock(m.qm);
    m.queue.push_back(group{std::move(m.building), m.epoch});
    m.building.clear();
    if (!m.spare.empty()) {
      m.building = std::move(m.spare.back());
      m.spare.pop_back();
    }
  }
  m.backlog.fetch_add(n, std::memory_order_relaxed);
  m.qcv.notify_one();
}

bool store::full() const {
  return impl_->backlog.load(std::memory_order_relaxed) + impl_->building.size() > impl_->cfg.max_backlog_bytes;
}

std::uint64_t store::next_jseq() const { return impl_->next; }
int store::notify_fd() const { return impl_->notify_fd; }

progress store::poll() {
  impl& m = *impl_;
  drain_fd(m.notify_fd);
  std::lock_guard<std::mutex> lock(m.pm);
  progress p = m.prog;
  m.prog.failed.reset();  // said once
  return p;
}

void store::rewind(std::uint64_t from) {
  impl& m = *impl_;
  m.building.clear();
  m.next = from;
  std::lock_guard<std::mutex> lock(m.qm);
  ++m.epoch;
  // Groups of the old epoch are dropped by the writer (it counts their bytes off the backlog).
}

store::bounds store::range() const {
  std::lock_guard<std::mutex> lock(impl_->im);
  const auto& m = *impl_;
  return bounds{m.segs.empty() ? m.head : std::min(m.segs.front().first, m.head), m.head};
}

std::optional<position> store::seek_seq(std::uint64_t from) const {
  const impl& m = *impl_;
  return m.find_entry(
      [&](std::uint64_t& off) -> const segment* {
        if (m.segs.empty() || from >= m.head) return nullptr;
        if (from < m.segs.front().first) from = m.segs.front().first;
        auto it = std::partition_point(m.segs.begin(), m.segs.end(), [&](const segment& s) { return s.end <= from; });
        if (it == m.segs.end()) return nullptr;
        const auto& pts = it->points;
        auto pt = std::partition_point(pts.begin(), pts.end(), [&](const point& p) { return p.jseq <= from; });
        if (pt != pts.begin()) off = std::prev(pt)->offset;
        return &*it;
      },
      [&](const record::entry& e) { return e.end() <= from ? impl::seek::on : impl::seek::here; });
}

std::optional<position> store::seek_time(std::uint64_t time_ns) const {
  const impl& m = *impl_;
  std::uint64_t head = 0;
  return m.find_entry(
      [&](std::uint64_t& off) -> const segment* {
        head = m.head;
        auto it = std::find_if(m.segs.begin(), m.segs.end(),
                               [&](const segment& s) { return s.has_entries() && s.last_time >= time_ns; });
        if (it == m.segs.end()) return nullptr;
        const auto& pts = it->points;
        auto pt = std::partition_point(pts.begin(), pts.end(), [&](const point& p) { return p.time < time_ns; });
        if (pt != pts.begin()) off = std::prev(pt)->offset;
        return &*it;
      },
      [&](const record::entry& e) {
        if (e.jseq >= head) return impl::seek::none;  // not stored yet: read from the head later
        return e.time_ns < time_ns ? impl::seek::on : impl::seek::here;
      });
}

std::vector<position> store::last_per_topic(const std::vector<std::string>& prefixes, std::uint64_t& head) const {
  const impl& m = *impl_;
  std::vector<position> out;
  bool all = prefixes.empty();
  for (const auto& p : prefixes) all = all || p.empty();
  std::lock_guard<std::mutex> lock(m.im);
  head = m.head;
  // A topic whose newest message is not stored yet (past the head) gets it with what follows the head.
  for (const auto& [topic, pos] : m.topics)
    if (pos.jseq < head && (all || topic_matches(topic, prefixes))) out.push_back(pos);
  std::sort(out.begin(), out.end(), [](const position& a, const position& b) { return a.jseq < b.jseq; });
  return out;
}

store::cursor::~cursor() {
  if (fd_ >= 0) ::close(fd_);
}
store::cursor::cursor(cursor&& o) noexcept : next(o.next), fd_(o.fd_), segment_(o.segment_), offset_(o.offset_) {
  o.fd_ = -1;
}
store::cursor& store::cursor::operator=(cursor&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    next = o.next;
    fd_ = o.fd_;
    segment_ = o.segment_;
    offset_ = o.offset_;
    o.fd_ = -1;
  }
  return *this;
}

store::cursor store::open(const position& p) const {
  cursor c;
  c.next = p.jseq;
  c.segment_ = p.segment;
  c.offset_ = p.offset;
  c.fd_ = ::open(impl_->path_of(p.segment).c_str(), O_RDONLY | O_CLOEXEC);
  return c;
}

std::size_t store::read(cursor& c, std::string& out, std::size_t max_bytes, std::uint64_t& skipped) const {
  const impl& m = *impl_;
  skipped = 0;
  std::size_t n = 0, used = 0;
  std::string buf;
  record::entry e;
  int reopenings = 0;
  for (;;) {
    std::uint64_t limit = 0, head = 0;
    std::optional<std::uint64_t> next_segment;
    std::vector<hole> holes;
    bool known;
    {
      std::lock_guard<std::mutex> lock(m.im);
      // Segments hold what is written; with fsync on, what no sync covers yet lies past the head.
      head = m.head;
      const segment* s = m.find_segment(c.segment_);
      known = s != nullptr && c.offset_ <= s->size;
      if (!known) {
        // Removed by retention under the reader, cut back under it, or never opened: on from the
        // segment that holds c.next (entries before it are passed over below).
        auto it = std::partition_point(m.segs.begin(), m.segs.end(), [&](const segment& x) { return x.end <= c.next; });
        if (it == m.segs.end()) return n;
        next_segment = it->name;
      } else {
        limit = s->size;
        holes = s->holes;
        auto it = std::upper_bound(m.segs.begin(), m.segs.end(), c.segment_,
                                   [](std::uint64_t v, const segment& x) { return v < x.name; });
        if (it != m.segs.end()) next_segment = it->name;
      }
    }
    if (!known || c.fd_ < 0 || c.offset_ >= limit) {
      const bool at_head = known && c.offset_ >= limit && !next_segment;
      if (at_head && c.fd_ >= 0) return n;
      if (!known || (c.offset_ >= limit && next_segment)) {
        if (c.fd_ >= 0) ::close(c.fd_);
        c.fd_ = -1;
        c.segment_ = *next_segment;
        c.offset_ = 0;
      }
      if (c.fd_ < 0) c.fd_ = ::open(m.path_of(c.segment_).c_str(), O_RDONLY | O_CLOEXEC);
      if (c.fd_ < 0) {
        // Removed meanwhile: found again above. One that cannot be opened: try again on the next call.
        if (++reopenings > 8) return n;
        c.segment_ = 0;
      }
      continue;
    }
    if (n > 0 && used >= max_bytes) return n;
    const std::uint64_t stop = window(holes, c.offset_, limit);
    if (c.offset_ >= stop) continue;  // past damage: on from its end
    const std::size_t room = max_bytes > used ? max_bytes - used : 0;
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(stop - c.offset_, std::max<std::size_t>(room, 4096)));
    buf.resize(want);
    ssize_t got = pread_full(c.fd_, buf.data(), want, c.offset_);
    if (got <= 0) return n;
    std::size_t pos = 0;
    bool damaged = false, at_head = false;
    while (pos < static_cast<std::size_t>(got)) {
      const auto st = record::decode(buf.data() + pos, static_cast<std::size_t>(got) - pos, e);
      if (st == record::status::ok) {
        if (e.jseq >= head) {
          at_head = true;
          break;
        }
        if (e.end() > c.next) {
          if (e.jseq > c.next) skipped += e.jseq - c.next;
          c.next = e.end();
          out.append(buf.data() + pos, e.size);
          used += e.size;
          ++n;
        }
        pos += e.size;
        if (used >= max_bytes) break;
        continue;
      }
      if (st == record::status::short_data && pos == 0 && got >= 12) {
        // An entry larger than what was read: read it whole.
        const std::uint64_t need = 12 + get32(reinterpret_cast<const unsigned char*>(buf.data()) + 8);
        if (c.offset_ + need > stop) return n;
        buf.resize(static_cast<std::size_t>(need));
        got = pread_full(c.fd_, buf.data(), buf.size(), c.offset_);
        if (got < static_cast<ssize_t>(need)) return n;
        continue;
      }
      // Not what recovery indexed (the file changed under the reader): on at the next hole.
      if (st != record::status::short_data || c.offset_ + pos + 12 > stop) damaged = true;
      break;
    }
    c.offset_ += pos;
    if (at_head) return n;
    if (damaged) c.offset_ = stop;
    if (pos == 0 && !damaged) return n;  // nothing whole to read (the file is shorter than the index said)
  }
}

int store::head_fd() const { return impl_->head_fd; }
void store::clear_head_fd() const { drain_fd(impl_->head_fd); }

writer_counters store::counters() const {
  const impl& m = *impl_;
  writer_counters c;
  c.syncs = m.n_syncs.load(std::memory_order_relaxed);
  c.bytes_written = m.n_bytes.load(std::memory_order_relaxed);
  c.failures = m.n_failures.load(std::memory_order_relaxed);
  c.segments_removed = m.n_removed.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(m.im);
  c.bytes = m.total_bytes;
  c.segments = m.segs.size();
  const auto oldest = m.segs.empty() ? m.head : std::min(m.segs.front().first, m.head);
  c.messages = m.head - oldest;
  return c;
}

}  // namespace zrelay::journal
