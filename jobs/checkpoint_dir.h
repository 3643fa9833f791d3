#pragma once
// A run directory's checkpoints: <run_dir>/checkpoints/step_<8+ digits>.h5, a `latest` text
// file naming the newest one saved (written atomically: tmp + rename), and discovery of the
// newest VALID checkpoint with fallback. A checkpoint is valid only when complete and
// verified (integrity digest, structure, dtypes, checksums); "<name>.tmp" files are
// interrupted saves, never candidates, and are removed by clean_temporaries.
// `latest` is a convenience for people and tools; discovery trusts verification, not it.
// resolve_model_source says which file a path names for sample, eval and export (a file, or a
// run directory's model.h5, else its newest valid checkpoint).
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace llmpi {

struct CheckpointFile {
  int64_t step = 0;
  std::string path;
};

std::string checkpoints_dir(const std::string& run_dir);
std::string checkpoint_filename(int64_t step);  // "step_00000123.h5"
std::string checkpoint_path(const std::string& run_dir, int64_t step);
// The step of a checkpoint file name ("step_<digits>.h5"), or nullopt.
std::optional<int64_t> parse_checkpoint_step(const std::string& filename);

// Serial: the checkpoint files of the run directory, ascending by step (no .tmp files, no
// symbolic links).
std::vector<CheckpointFile> list_checkpoints(const std::string& run_dir);

// Serial: `latest` pointer. write_latest is atomic (a reader sees the old or the new name).
void write_latest(const std::string& run_dir, int64_t step);
std::optional<std::string> read_latest(const std::string& run_dir);

// Serial: removes leftover temporaries of interrupted saves ("step_<digits>.h5.tmp",
// "latest.tmp": llmpi's own names only; a link is removed, never followed); returns their
// paths. Call it when no save of this run is in flight (at start-up/resume).
std::vector<std::string> clean_temporaries(const std::string& run_dir);

// Collective over comm: list_checkpoints of rank 0, the same on every rank.
std::vector<CheckpointFile> shared_checkpoint_list(const std::string& run_dir, MPI_Comm comm);

struct Discovery {
  std::optional<CheckpointFile> found;         // the newest valid checkpoint, if any
  std::vector<std::string> rejected;           // one message per newer file that was rejected
  std::vector<CheckpointFile> rejected_files;  // those files, in the same order
};

// Collective over comm (rank 0 lists the directory and shares the list): verifies the
// checkpoints from the newest down and returns the first valid one. Each rejection is
// reported through `log` ("<path> rejected: <reason>; falling back to <older>").
Discovery find_latest_valid(const std::string& run_dir, MPI_Comm comm, bool verify_tensors = true,
                            const std::function<void(const std::string&)>& log = {});

// The model file a user names: a model/checkpoint file itself, or in a run directory its
// model.h5 (the finished model) or else its newest valid checkpoint (verified, falling back
// to older ones as training resumes do). Serial. UserError naming the path when there is none.
std::string resolve_model_source(const std::string& path);

}  // namespace llmpi
