// The output rule; see output_rule.h.
#include "core/output_rule.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/file_kind.h"

namespace llmpi {

namespace fs = std::filesystem;

void claim_outputs(const OutputClaim& c, bool force) {
  std::error_code ec;
  if (!c.dir.empty()) {
    const fs::file_status s = fs::status(c.dir, ec);
    if (fs::exists(s) && !fs::is_directory(s))
      user_error(c.dir, ": exists and is not a directory; expected the output directory (",
                 c.what, ")");
  }
  for (const std::string& f : c.files) {
    if (!fs::exists(f, ec)) continue;
    if (const std::string no = not_regular_file(f); !no.empty())
      user_error(f, ": ", no, "; expected a file this command writes (", c.what,
                 "); nothing was written");
    if (force || (c.ours && c.ours(f))) continue;
    user_error(f, ": exists and is not ", c.what,
               " (llmpi replaces only its own earlier output); nothing was written. "
               "Pass --force to replace it, or choose another output path");
  }
}

std::string first_line_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace llmpi
