// A run directory's checkpoint files: names, listing, the `latest` pointer, temporaries of
// interrupted saves, and discovery of the newest valid checkpoint (see checkpoint_dir.h).
#include "jobs/checkpoint_dir.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/checkpoint.h"

namespace llmpi {
namespace fs = std::filesystem;

std::string checkpoints_dir(const std::string& run_dir) {
  return (fs::path(run_dir) / "checkpoints").string();
}

std::string checkpoint_filename(int64_t step) {
  LLMPI_CHECK(step >= 0, "negative step ", step);
  char buf[40];
  std::snprintf(buf, sizeof buf, "step_%08lld.h5", static_cast<long long>(step));
  return buf;
}

std::string checkpoint_path(const std::string& run_dir, int64_t step) {
  return (fs::path(checkpoints_dir(run_dir)) / checkpoint_filename(step)).string();
}

std::optional<int64_t> parse_checkpoint_step(const std::string& name) {
  const std::string pre = "step_", post = ".h5";
  if (name.size() <= pre.size() + post.size() || name.compare(0, pre.size(), pre) != 0 ||
      name.compare(name.size() - post.size(), post.size(), post) != 0)
    return std::nullopt;
  const std::string digits = name.substr(pre.size(), name.size() - pre.size() - post.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), ::isdigit))
    return std::nullopt;
  return std::stoll(digits);
}

std::vector<CheckpointFile> list_checkpoints(const std::string& run_dir) {
  std::vector<CheckpointFile> out;
  std::error_code ec;
  const fs::path dir = checkpoints_dir(run_dir);
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_symlink(ec) || !e.is_regular_file(ec)) continue;  // never through a link
    if (auto step = parse_checkpoint_step(e.path().filename().string()))
      out.push_back({*step, e.path().string()});
  }
  std::sort(out.begin(), out.end(),
            [](const CheckpointFile& a, const CheckpointFile& b) { return a.step < b.step; });
  return out;
}

void write_latest(const std::string& run_dir, int64_t step) {
  const fs::path dir = checkpoints_dir(run_dir);
  const fs::path tmp = dir / "latest.tmp", dst = dir / "latest";
  std::error_code ec;
  fs::remove(tmp, ec);  // a link left there is removed, never written through
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << checkpoint_filename(step) << "\n";
    f.flush();
    if (!f) user_error(tmp.string(), ": cannot write the latest-checkpoint pointer");
  }
  fs::rename(tmp, dst, ec);
  if (ec) user_error(dst.string(), ": cannot update the latest-checkpoint pointer: ", ec.message());
}

std::optional<std::string> read_latest(const std::string& run_dir) {
  std::ifstream f(fs::path(checkpoints_dir(run_dir)) / "latest");
  std::string name;
  if (!f || !std::getline(f, name) || !parse_checkpoint_step(name)) return std::nullopt;
  return name;
}

std::vector<std::string> clean_temporaries(const std::string& run_dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  const fs::path dir = checkpoints_dir(run_dir);
  if (!fs::is_directory(dir, ec)) return removed;
  std::vector<fs::path> tmps;
  // Only the temporaries of llmpi's own names: "step_<digits>.h5.tmp" and "latest.tmp".
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0 &&
        (name == "latest.tmp" || parse_checkpoint_step(name.substr(0, name.size() - 4))))
      tmps.push_back(e.path());
  }
  for (const fs::path& p : tmps)
    if (fs::remove(p, ec)) removed.push_back(p.string());
  return removed;
}

std::vector<CheckpointFile> shared_checkpoint_list(const std::string& run_dir, MPI_Comm comm) {
  int rank = 0;
  if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &rank);
  std::string listing;
  if (rank == 0)
    for (const CheckpointFile& f : list_checkpoints(run_dir))
      listing += std::to_string(f.step) + "\t" + f.path + "\n";
  if (comm != MPI_COMM_NULL) {
    int n = int(listing.size());
    MPI_Bcast(&n, 1, MPI_INT, 0, comm);
    listing.resize(size_t(n));
    MPI_Bcast(listing.data(), n, MPI_CHAR, 0, comm);
  }
  std::vector<CheckpointFile> files;
  std::istringstream in(listing);
  for (std::string line; std::getline(in, line);) {
    const size_t tab = line.find('\t');
    files.push_back({std::stoll(line.substr(0, tab)), line.substr(tab + 1)});
  }
  return files;
}

Discovery find_latest_valid(const std::string& run_dir, MPI_Comm comm, bool verify_tensors,
                            const std::function<void(const std::string&)>& log) {
  int rank = 0;
  if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &rank);
  // Rank 0 lists; everyone verifies the same candidates in the same order (collective).
  const std::vector<CheckpointFile> files = shared_checkpoint_list(run_dir, comm);
  Discovery d;
  for (auto it = files.rbegin(); it != files.rend(); ++it) {
    const std::string why = verify_checkpoint(it->path, comm, verify_tensors);
    if (why.empty()) {
      d.found = *it;
      break;
    }
    std::string msg = it->path + " rejected: " + why;
    msg += std::next(it) != files.rend() ? "; falling back to an older checkpoint"
                                         : "; no older checkpoint to fall back to";
    d.rejected.push_back(msg);
    d.rejected_files.push_back(*it);
    if (log && rank == 0) log(msg);
  }
  return d;
}

std::string resolve_model_source(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) user_error(path, ": no such model file or run directory");
  if (!fs::is_directory(path, ec)) return path;
  const fs::path model = fs::path(path) / "model.h5";
  if (fs::exists(model, ec)) return model.string();
  // Serial (MPI_COMM_NULL): export-hf and lora merge call this without initialising MPI.
  const Discovery d = find_latest_valid(path, MPI_COMM_NULL, /*verify_tensors=*/true);
  if (d.found) return d.found->path;
  std::string why;
  for (const std::string& r : d.rejected) why += "\n  " + r;
  user_error(path, ": a directory without model.h5 and without a valid checkpoint under ",
             checkpoints_dir(path), why);
}

}  // namespace llmpi
