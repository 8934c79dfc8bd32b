#include "histogram.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace zbench {

void histogram::merge(const histogram& o) {
  for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  total_ += o.total_;
  max_ = std::max(max_, o.max_);
}

std::uint64_t histogram::quantile(double q) const {
  if (total_ == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
  std::uint64_t seen = 0;
  for (int i = 0; i < buckets; ++i) {
    seen += counts_[static_cast<std::size_t>(i)];
    if (seen >= std::max<std::uint64_t>(rank, 1)) return std::min(upper(i), max_);
  }
  return max_;
}

std::string histogram::serialize() const {
  std::ostringstream out;
  for (int i = 0; i < buckets; ++i) {
    if (counts_[static_cast<std::size_t>(i)] != 0) out << i << ':' << counts_[static_cast<std::size_t>(i)] << ',';
  }
  out << max_;
  return out.str();
}

histogram histogram::parse(const std::string& text) {
  histogram h;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const auto colon = item.find(':');
    if (colon == std::string::npos) {
      h.max_ = std::stoull(item);
      continue;
    }
    const auto i = std::stoi(item.substr(0, colon));
    if (i < 0 || i >= buckets) continue;
    const auto n = std::stoull(item.substr(colon + 1));
    h.counts_[static_cast<std::size_t>(i)] += n;
    h.total_ += n;
  }
  return h;
}

}  // namespace zbench
