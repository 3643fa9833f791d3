// Origins of config values and the error collector (see diagnostics.h for the format).
#include "config/diagnostics.h"

#include <algorithm>

#include "core/error.h"

namespace llmpi::config {

std::string Origins::of(const std::string& path, const std::string& fallback) const {
  if (auto it = where_.find(path); it != where_.end()) return it->second;
  if (!fallback.empty())
    if (auto it = where_.find(fallback); it != where_.end()) return it->second;
  return file_;
}

void Diagnostics::error(const std::string& where, const std::string& key, const std::string& what,
                        const std::string& expected) {
  error(where, "key '" + key + "': " + what + "; expected " + expected);
}

void Diagnostics::error(const std::string& where, const std::string& message) {
  Entry e{2, 0, where + ": " + message};
  if (where.rfind("--set ", 0) == 0) {
    e.group = 1;
  } else if (const size_t colon = where.rfind(':'); colon != std::string::npos &&
             colon + 1 < where.size() &&
             where.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
    e.group = 0;
    e.line = std::stol(where.substr(colon + 1));
  }
  errors_.push_back(std::move(e));
}

void Diagnostics::throw_if_any() const {
  if (errors_.empty()) return;
  std::vector<Entry> sorted = errors_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Entry& a, const Entry& b) {
    return a.group != b.group ? a.group < b.group : a.line < b.line;
  });
  std::string msg;
  for (const Entry& e : sorted) {
    if (!msg.empty()) msg += '\n';
    msg += e.text;
  }
  throw UserError(msg);
}

}  // namespace llmpi::config
