// The output rule; see output_rule.h. Every check only looks: nothing is written, removed or
// opened for writing here, so a refusal leaves every path as it was.
#include "core/output_rule.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/file_kind.h"

namespace llmpi {

namespace fs = std::filesystem;

namespace {

// Whether anything is at `path`, a dangling symbolic link included (exists() follows links).
bool something_at(const std::string& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

void check_dir(const OutputClaim& c) {
  std::error_code ec;
  const fs::file_status s = fs::status(c.dir, ec);
  if (fs::exists(s) && !fs::is_directory(s))
    user_error(c.dir, ": exists and is not a directory; expected the output directory (", c.what,
               ")");
}

void check_written(const OutputClaim& c, const std::string& f, bool force) {
  std::error_code ec;
  if (!fs::exists(f, ec)) return;
  if (const std::string no = not_regular_file(f); !no.empty())
    user_error(f, ": ", no, "; expected a file this command writes (", c.what,
               "); nothing was written");
  if (force || (c.ours && c.ours(f))) return;
  user_error(f, ": exists and is not ", c.what,
             " (llmpi replaces only its own earlier output); nothing was written. "
             "Pass --force to replace it, or choose another output path");
}

// Why the temporary `tmp` may not be replaced even with force ("" if it may): a writer opens
// it for writing, truncating and following links, so only a plain regular file of one link.
std::string unsafe_temporary(const std::string& tmp) {
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(tmp, ec))) return "is a symbolic link";
  if (std::string no = not_regular_file(tmp); !no.empty()) return no;
  if (fs::hard_link_count(tmp, ec) > 1) return "is a file with other hard links";
  return "";
}

void check_temporary(const std::string& file, bool force) {
  const std::string tmp = temporary_of(file);
  if (!something_at(tmp)) return;
  const std::string role = "it is the temporary llmpi writes " + file +
                           " through, then renames (an interrupted earlier run leaves one)";
  if (const std::string unsafe = unsafe_temporary(tmp); !unsafe.empty())
    user_error(tmp, ": ", unsafe, "; ", role, ", and only a regular file with no other link is "
               "replaced there; nothing was written, even with --force. Remove it, or choose "
               "another output path");
  if (force) return;
  user_error(tmp, ": exists; ", role, "; nothing was written. Pass --force to replace it, or "
             "choose another output path");
}

void check_removed(const OutputClaim& c, const std::string& f) {
  if (!something_at(f)) return;
  if (const std::string no = not_regular_file(f); !no.empty())
    user_error(f, ": ", no, "; ", c.removes_why, ", and llmpi removes only its own files; "
               "nothing was written. Move it away, or choose another output path");
  if (c.ours && c.ours(f)) return;
  user_error(f, ": exists and is not ", c.what, "; ", c.removes_why,
             ". llmpi deletes only its own earlier output (--force replaces files, never deletes "
             "one); nothing was written. Move it away, or choose another output path");
}

}  // namespace

void claim_outputs(const OutputClaim& c, bool force) {
  if (!c.dir.empty()) check_dir(c);
  for (const std::string& f : c.files) {
    check_written(c, f, force);
    check_temporary(f, force);
  }
  for (const std::string& f : c.removes) check_removed(c, f);
}

void require_parent_directory(const std::string& file, const std::string& command) {
  const fs::path parent = fs::path(file).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec))
    user_error(file, ": the directory ", parent.string(), " does not exist (", command,
               " creates none)");
}

std::string first_line_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace llmpi
