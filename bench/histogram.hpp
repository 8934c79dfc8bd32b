#pragma once
// A log-linear latency histogram: 64 linear steps in every power of two, so any value is
// recorded within 1.6 % (HdrHistogram_c is not packaged in Debian).

#include <array>
#include <cstdint>
#include <string>

namespace zbench {

class histogram {
public:
  static constexpr int sub_bits = 6;
  static constexpr int sub_count = 1 << sub_bits;
  static constexpr int buckets = (64 - sub_bits + 1) * sub_count;

  /// Records one value (nanoseconds).
  void record(std::uint64_t v) {
    ++counts_[static_cast<std::size_t>(index(v))];
    ++total_;
    if (v > max_) max_ = v;
  }
  /// Adds another histogram's counts.
  void merge(const histogram& o);
  /// The value below which fraction q (0..1) of the recorded values lie (upper bound of its bucket).
  std::uint64_t quantile(double q) const;
  std::uint64_t max() const { return max_; }
  std::uint64_t count() const { return total_; }
  /// "index:count,index:count,…,max" for the non-empty buckets; parse() reads it back.
  std::string serialize() const;
  static histogram parse(const std::string& text);

  static int index(std::uint64_t v) {
    if (v < sub_count) return static_cast<int>(v);
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - sub_bits;
    return (shift + 1) * sub_count + static_cast<int>((v >> shift) - sub_count);
  }
  static std::uint64_t upper(int i) {
    if (i < sub_count) return static_cast<std::uint64_t>(i);
    const int shift = i / sub_count - 1;
    const auto sub = static_cast<std::uint64_t>(i % sub_count + sub_count);
    return ((sub + 1) << shift) - 1;
  }

private:
  std::array<std::uint64_t, buckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace zbench
