#include "jobs/run_claim.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <set>

#include "io/checkpoint_integrity.h"
#include "jobs/checkpoint_dir.h"

namespace llmpi {
namespace fs = std::filesystem;
namespace {

// Creates `path` exclusively (never through a symbolic link) with `text`; "" or the reason.
std::string create_exclusive(const fs::path& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return std::strerror(errno);
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = n == ssize_t(text.size()) ? 0 : (n < 0 ? errno : ENOSPC);
  if (::close(fd) != 0 && err == 0) return std::strerror(errno);
  if (err != 0) {
    ::unlink(path.c_str());
    return std::strerror(err);
  }
  return "";
}

// Only names a run of llmpi writes, and at least one checkpoint with its header.
bool is_legacy_run(const fs::path& dir) {
  static const std::set<std::string> own = {"config.toml", "model.h5", "checkpoints", "lock",
                                             "hangs", "slurm"};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (!own.count(e.path().filename().string()) || e.is_symlink()) return false;
  bool checkpoint = false;
  for (const auto& e : fs::directory_iterator(dir / "checkpoints", ec)) {
    const std::string name = e.path().filename().string();
    const bool ours = name == "latest" || parse_checkpoint_step(name) ||
                      (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0);
    if (!ours || e.is_symlink()) return false;
    IntegrityHeader h;
    checkpoint = checkpoint || (parse_checkpoint_step(name) && check_integrity_header(e.path(), h).empty());
  }
  return checkpoint;
}

// Creates and removes a file in `dir`: "" or the reason it cannot be written.
std::string probe_writable(const fs::path& dir) {
  const fs::path probe = dir / (".llmpi-write-probe-" + std::to_string(::getpid()));
  const std::string why = create_exclusive(probe, "probe");
  if (why.empty()) ::unlink(probe.c_str());
  return why;
}

}  // namespace

std::string claim_run_directory(const std::string& dir_name, bool checkpoints) {
  const fs::path dir(dir_name);
  const std::string what = "run.dir = \"" + dir_name + "\"";
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(dir / kRunMarker, ec)))
    return what + ": " + kRunMarker + " is a symbolic link; a run directory's files are its own";
  const bool exists = fs::exists(dir, ec);
  if (exists && !fs::is_directory(dir, ec)) return what + " exists and is not a directory";
  const bool marked = exists && fs::is_regular_file(fs::symlink_status(dir / kRunMarker, ec));
  const bool empty = !exists || fs::is_empty(dir, ec);
  if (!marked && !empty && !is_legacy_run(dir))
    return what + " is a non-empty directory that is not an llmpi run directory (it has no " +
           kRunMarker + " marker); llmpi does not write into it, so nothing there is overwritten "
           "or deleted. Choose a new or empty directory for run.dir";
  fs::create_directories(dir, ec);
  if (ec) return what + ": cannot create the directory: " + ec.message();
  if (!marked) {
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    const std::string why = create_exclusive(
        dir / kRunMarker, "llmpi run directory\ncreated_unix = " +
                              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now).count()) + "\n");
    if (!why.empty()) return what + ": cannot write there (" + why + "); training would fail at its first save";
  }
  if (std::string why = probe_writable(dir); !why.empty())
    return what + ": cannot write there (" + why + "); training would fail at its first save";
  if (checkpoints) {
    const fs::path ck = checkpoints_dir(dir_name);
    if (fs::is_symlink(fs::symlink_status(ck, ec)))
      return what + ": checkpoints/ is a symbolic link; a run directory's files are its own";
    fs::create_directories(ck, ec);
    if (ec) return what + ": cannot create checkpoints/: " + ec.message();
    if (std::string why = probe_writable(ck); !why.empty())
      return what + ": cannot write into checkpoints/ (" + why + "); checkpoints could not be saved";
  }
  return "";
}

}  // namespace llmpi
