#pragma once
// The two client roles and the line protocol they speak with the parent over pipes, the same
// whether a client runs as a thread or as a forked process.
//
// parent -> client:  "go"  (publishers: start measuring)
//                    "end N0 N1 …"  (subscribers: publisher i sent Ni; finish when all are in)
// client -> parent:  "endpoint EP" (a direct-mode subscriber's bound endpoint)
//                    "ready" (subscriber: probes from every publisher arrived)
//                    "progress N" (publisher: sent so far)
//                    "result …" / "error TEXT"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench.hpp"

namespace zbench {

/// The pipes between the parent and one client.
struct channel {
  int to_client = -1;    ///< parent writes
  int from_parent = -1;  ///< client reads
  int to_parent = -1;    ///< client writes
  int from_client = -1;  ///< parent reads
};

/// Reads whole lines from a descriptor.
class line_reader {
public:
  explicit line_reader(int fd) : fd_(fd) {}
  /// A complete line if one is buffered or can be read without blocking; else empty and
  /// `eof` tells whether the writer is gone.
  bool next(std::string& line, bool& eof);

private:
  int fd_;
  std::string buf_;
};

/// Writes one line (adds the newline).
void write_line(int fd, const std::string& line);

/// Ends a child process and reaps it: SIGTERM, then SIGKILL if it is still there after `grace`.
void stop_child(pid_t pid, std::chrono::milliseconds grace);

/// A fresh directory (mkdtemp) under `parent` (empty: $TMPDIR, else /tmp), removed with all it
/// holds when this object goes: a journal or a JetStream store for one run.
class temp_dir {
public:
  temp_dir(const std::string& parent, const std::string& prefix);
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  /// The sizes of the regular files under it added up; -1 if it could not be walked.
  std::int64_t bytes() const;

private:
  std::string path_;
};

/// Topic k of a run: all of one width, so that no topic is a prefix of another (a probe on the
/// last one matches only its own subscription).
std::string topic_name(std::uint64_t k);
/// Topics 0 to n - 1 of a run.
std::vector<std::string> topic_names(int n);
/// The one subscription a NATS subscriber makes to hear topics 0 to n - 1, as a NATS user would
/// write it: the subject itself for one, else the wildcard "bench.*" (a topic is one token).
std::string nats_subscription(int n);

/// Publisher i of a run.
void run_publisher(const options& opt, const wiring& w, int index, const channel& ch);
/// Subscriber i of a run.
void run_subscriber(const options& opt, const wiring& w, int index, const channel& ch);

/// Serialises a client's result for the "result" line, and reads it back.
std::string encode_result(const client_result& r);
client_result decode_result(const std::string& text);

}  // namespace zbench
