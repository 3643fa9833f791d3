// Origins of config values and the error collector (see diagnostics.h for the format).
#include "config/diagnostics.h"

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
  errors_.push_back(where + ": key '" + key + "': " + what + "; expected " + expected);
}

void Diagnostics::throw_if_any() const {
  if (errors_.empty()) return;
  std::string msg;
  for (const std::string& e : errors_) {
    if (!msg.empty()) msg += '\n';
    msg += e;
  }
  throw UserError(msg);
}

}  // namespace llmpi::config
