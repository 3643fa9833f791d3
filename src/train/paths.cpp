#include "train/paths.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/excerpt.h"

namespace llmpi {

std::vector<std::string> expand_data_paths(const std::string& pattern, const std::string& key) {
  if (pattern.find_first_of("*?[") == std::string::npos) {
    if (!std::filesystem::exists(pattern))
      user_error(key, " = \"", excerpt(pattern), "\": no such file (run `llmpi prepare` first?)");
    return {pattern};
  }
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  if (out.empty()) user_error(key, " = \"", excerpt(pattern), "\": the pattern matches no file");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace llmpi
