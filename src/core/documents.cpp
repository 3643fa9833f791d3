// Packed documents: the doc_start checks and construction (documents.h).
#include "core/documents.h"

#include "core/error.h"

namespace llmpi {

std::string doc_start_problem(std::span<const int32_t> doc_start, int64_t T) {
  const int64_t n = static_cast<int64_t>(doc_start.size());
  if (T <= 0 || n % T != 0)
    return detail::concat(n, " document starts are not a whole number of rows of T = ", T);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t t = i % T, s = doc_start[static_cast<size_t>(i)];
    const int64_t prev = t == 0 ? 0 : doc_start[static_cast<size_t>(i - 1)];
    if (s == t || (t > 0 && s == prev)) continue;
    return t == 0 ? detail::concat("row ", i / T, ", t = 0: doc_start ", s, ", expected 0")
                  : detail::concat("row ", i / T, ", t = ", t, ": doc_start ", s, ", expected ",
                                   prev, " or ", t);
  }
  return "";
}

void check_doc_start(std::span<const int32_t> doc_start, int64_t T, const char* what) {
  const std::string problem = doc_start_problem(doc_start, T);
  LLMPI_CHECK(problem.empty(), what, ": ", problem);
}

std::vector<int32_t> doc_start_from_lengths(std::span<const int64_t> lengths, int64_t T) {
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(T));
  for (int64_t len : lengths) {
    LLMPI_CHECK(len >= 1, "document length ", len);
    const int32_t start = static_cast<int32_t>(out.size());
    out.insert(out.end(), static_cast<size_t>(len), start);
  }
  LLMPI_CHECK(static_cast<int64_t>(out.size()) == T, "documents of ", out.size(),
              " tokens in total for a row of T = ", T);
  return out;
}

}  // namespace llmpi
