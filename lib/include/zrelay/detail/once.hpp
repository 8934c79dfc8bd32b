#pragma once
// Warnings logged once per kind (every time when verbose): one bad input does not hide another
// kind, and a flood of one kind logs one line. Not part of the API: a public header holds it only
// because the subscriber class has one as a member.

#include <array>
#include <cstddef>

namespace zrelay::detail {

/// One "logged already" flag per value of Kind, an enum class whose last value is count_.
template <typename Kind>
class once_per_kind {
public:
  /// True the first time for `k` (and every time when `always`); marks `k` as seen.
  bool first(Kind k, bool always = false) noexcept {
    auto& seen = seen_[static_cast<std::size_t>(k)];
    const bool log = always || !seen;
    seen = true;
    return log;
  }
  /// Whether `k` was seen.
  bool seen(Kind k) const noexcept { return seen_[static_cast<std::size_t>(k)]; }

private:
  std::array<bool, static_cast<std::size_t>(Kind::count_)> seen_{};
};

}  // namespace zrelay::detail
