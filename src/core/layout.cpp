// Layout (see layout.h): the named fields and the pure grid arithmetic.
#include "core/layout.h"

#include <climits>

#include "core/error.h"

namespace llmpi {

std::vector<std::vector<int>> rank_groups(std::span<const int> shape, std::span<const int> axes) {
  const int ndim = static_cast<int>(shape.size());
  std::vector<bool> in_group(ndim, false);
  for (int a : axes) {
    LLMPI_CHECK(a >= 0 && a < ndim, "axis ", a, " of a ", ndim, "-d grid");
    LLMPI_CHECK(!in_group[a], "axis ", a, " listed twice");
    in_group[a] = true;
  }
  int64_t n = 1, group_size = 1;
  for (int d = 0; d < ndim; ++d) {
    LLMPI_CHECK(shape[d] >= 1, "grid extent ", shape[d], " on axis ", d);
    n *= shape[d];
    if (in_group[d]) group_size *= shape[d];
  }
  LLMPI_CHECK(n <= INT_MAX, "grid of ", n, " ranks");
  // A rank's group is keyed by its coordinates on the other axes (mixed radix); ranks are
  // visited in increasing order, so groups come out ordered by their smallest rank and
  // members in increasing order.
  const int64_t n_groups = n / group_size;
  std::vector<int> slot(static_cast<size_t>(n_groups), -1);
  std::vector<std::vector<int>> groups;
  groups.reserve(static_cast<size_t>(n_groups));
  for (int r = 0; r < static_cast<int>(n); ++r) {
    int64_t key = 0, rest = r, stride = 1;
    for (int d = ndim - 1; d >= 0; --d) {
      const int64_t c = rest % shape[d];
      rest /= shape[d];
      if (!in_group[d]) {
        key += c * stride;
        stride *= shape[d];
      }
    }
    int& s = slot[static_cast<size_t>(key)];
    if (s < 0) {
      s = static_cast<int>(groups.size());
      groups.emplace_back();
      groups.back().reserve(static_cast<size_t>(group_size));
    }
    groups[static_cast<size_t>(s)].push_back(r);
  }
  return groups;
}

std::vector<std::vector<int>> rank_groups(std::span<const int> shape, int axis) {
  const int axes[1] = {axis};
  return rank_groups(shape, std::span<const int>(axes));
}

const char* axis_name(Axis a) {
  switch (a) {
    case Axis::pp: return "pp";
    case Axis::dp: return "dp";
    case Axis::tp: return "tp";
  }
  return "?";
}

std::vector<Layout::Field> Layout::fields() const {
  return {{"tp", tp},
          {"pp", pp},
          {"dp", dp},
          {"zero_stage", zero_stage},
          {"virtual_stages", virtual_stages},
          {"micro_batches", micro_batches},
          {"sequence_parallel", sequence_parallel ? 1 : 0},
          {"world_size", world_size()}};
}

bool Layout::set(std::string_view name, int64_t value) {
  if (name == "sequence_parallel") {
    if (value != 0 && value != 1) return false;
    sequence_parallel = value == 1;
    return true;
  }
  int* field = name == "tp"               ? &tp
               : name == "pp"             ? &pp
               : name == "dp"             ? &dp
               : name == "zero_stage"     ? &zero_stage
               : name == "virtual_stages" ? &virtual_stages
               : name == "micro_batches"  ? &micro_batches
                                          : nullptr;
  if (!field || value < INT_MIN || value > INT_MAX) return false;
  *field = static_cast<int>(value);
  return true;
}

std::vector<std::vector<int>> Layout::groups(Axis a) const {
  return rank_groups(shape(), static_cast<int>(a));
}

std::vector<std::vector<int>> Layout::embedding_groups() const {
  std::vector<std::vector<int>> groups = this->groups(Axis::pp);
  for (auto& g : groups)
    g = pp == 1 ? std::vector<int>{g.front()} : std::vector<int>{g.front(), g.back()};
  return groups;
}

std::string Layout::str() const {
  return detail::concat("tp=", tp, " × pp=", pp, " × dp=", dp);
}

}  // namespace llmpi
