#pragma once
// The claim of a run directory: llmpi writes into a directory only when it is its own.
//   <dir>/.llmpi-run   the marker, written when llmpi creates the directory (or adopts an
//                      empty one): "llmpi run directory" and the creation time.
// A directory is usable when it does not exist yet or is empty (it is created and marked),
// when it carries the marker, or when it is a run of an llmpi older than the marker (only
// llmpi's own names in it — config.toml, model.h5, checkpoints/ — and at least one
// checkpoint with llmpi's integrity header; it is marked then). Any other non-empty
// directory is refused: nothing in it is overwritten or deleted. Writing is then probed
// (a file created and removed in the directory and in checkpoints/), so a read-only file
// system or a directory without write permission is reported at start-up, before any
// training, not at the first save. Symbolic links are never followed for writing: the
// marker and the probe are created exclusively (O_EXCL | O_NOFOLLOW).
#include <string>

namespace llmpi {

inline constexpr const char* kRunMarker = ".llmpi-run";

// Serial (one rank): claims `dir` for a run that writes (checkpoints = it also needs
// checkpoints/). Returns "" when usable, else the reason, a sentence naming the directory.
std::string claim_run_directory(const std::string& dir, bool checkpoints);

}  // namespace llmpi
