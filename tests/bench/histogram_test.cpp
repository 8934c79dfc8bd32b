#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "histogram.hpp"

using zbench::histogram;

namespace {

// Values spread over every power of two: each power, its neighbours and a point in between.
std::vector<std::uint64_t> spread() {
  std::vector<std::uint64_t> v;
  for (int b = 0; b < 64; ++b) {
    const std::uint64_t p = std::uint64_t{1} << b;
    for (const auto x : {p - 1, p, p + 1, p + p / 3}) v.push_back(x);
  }
  v.push_back(std::numeric_limits<std::uint64_t>::max());
  return v;
}

}  // namespace

TEST_CASE("histogram buckets every value within 1/64 of it, in order", "[histogram]") {
  CHECK(histogram::index(0) == 0);
  CHECK(histogram::index(63) == 63);  // below 64: one bucket per value
  CHECK(histogram::upper(63) == 63);
  CHECK(histogram::index(std::numeric_limits<std::uint64_t>::max()) == histogram::buckets - 1);
  CHECK(histogram::upper(histogram::buckets - 1) == std::numeric_limits<std::uint64_t>::max());
  int last = -1;
  std::uint64_t last_v = 0;
  for (const auto v : spread()) {
    if (v < last_v) continue;
    last_v = v;
    const int i = histogram::index(v);
    INFO("value " << v << " in bucket " << i);
    REQUIRE(i >= 0);
    REQUIRE(i < histogram::buckets);
    CHECK(i >= last);
    last = i;
    const auto hi = histogram::upper(i);
    CHECK(hi >= v);
    CHECK(hi - v <= v / 64);
    if (i > 0) CHECK(histogram::upper(i - 1) < v);  // and not in the bucket below
  }
}

TEST_CASE("histogram quantiles: the value below which that fraction lies, never above the max", "[histogram]") {
  histogram h;
  CHECK(h.count() == 0);
  CHECK(h.quantile(0.5) == 0);
  CHECK(h.max() == 0);
  SECTION("small values are exact") {
    for (std::uint64_t v = 1; v <= 50; ++v) h.record(v);
    CHECK(h.count() == 50);
    CHECK(h.quantile(0) == 1);
    CHECK(h.quantile(0.5) == 25);
    CHECK(h.quantile(0.9) == 45);
    CHECK(h.quantile(1) == 50);
    CHECK(h.max() == 50);
  }
  SECTION("large values within 1/64") {
    for (std::uint64_t v = 1; v <= 10000; ++v) h.record(v * 1000);  // 1 µs to 10 ms
    // (Fractions a double holds exactly, so that the rank is not off by one.)
    const std::pair<double, std::uint64_t> expected[] = {
        {0.5, 5'000'000}, {0.75, 7'500'000}, {0.9375, 9'375'000}, {0.9921875, 9'922'000}};
    for (const auto& [q, exact] : expected) {
      const auto got = h.quantile(q);
      INFO("quantile " << q << ": " << got << ", exactly " << exact);
      CHECK(got >= exact);
      CHECK(got - exact <= exact / 64);
    }
    CHECK(h.quantile(1) == 10'000'000);  // the max itself, not its bucket's upper bound
    CHECK(h.max() == 10'000'000);
  }
  SECTION("one outlier shows in the max and the top quantile only") {
    for (int i = 0; i < 999; ++i) h.record(100);
    h.record(5'000'000);
    CHECK(h.quantile(0.5) == 100);
    CHECK(h.quantile(0.999) == 100);
    CHECK(h.quantile(1) == 5'000'000);
  }
}

TEST_CASE("histogram merge adds the counts and keeps the larger max", "[histogram]") {
  histogram a, b;
  for (int i = 0; i < 10; ++i) a.record(10);
  for (int i = 0; i < 30; ++i) b.record(1000);
  a.merge(b);
  CHECK(a.count() == 40);
  CHECK(a.max() == 1000);
  CHECK(a.quantile(0.25) == 10);
  CHECK(a.quantile(0.26) >= 1000);
  CHECK(b.count() == 30);  // the other is left alone
}

TEST_CASE("histogram serialize and parse carry the counts and the max across a pipe", "[histogram]") {
  histogram h;
  for (const auto v : spread()) h.record(v);
  h.record(12345);
  h.record(12345);
  const auto text = h.serialize();
  const auto back = histogram::parse(text);
  CHECK(back.count() == h.count());
  CHECK(back.max() == h.max());
  for (const double q : {0.0, 0.1, 0.5, 0.9, 0.99, 1.0}) CHECK(back.quantile(q) == h.quantile(q));
  CHECK(back.serialize() == text);
  SECTION("an empty one is its max alone") {
    CHECK(histogram().serialize() == "0");
    CHECK(histogram::parse("0").count() == 0);
  }
  SECTION("a bucket index out of range is ignored") {
    const auto odd = histogram::parse("5:2,-1:7," + std::to_string(histogram::buckets) + ":9,5");
    CHECK(odd.count() == 2);
    CHECK(odd.max() == 5);
    CHECK(odd.quantile(1) == 5);
  }
}
