#pragma once
// The output rule: llmpi never damages or deletes what it did not write. Before a command
// writes anything it names every file it may write (OutputClaim) and claim_outputs() checks
// each, the same way for every command (import-hf, export-hf, prepare, logbook --csv/--jsonl):
//   absent                                            written;
//   a regular file that is this command's own earlier  replaced (re-running a command into
//     output (OutputClaim::ours, decided by the writer   the same path keeps working);
//     of that format: see the list in docs/user-guide.md "Outputs")
//   any other regular file                            refused, unless force (--force);
//   not a regular file (a directory, a FIFO, ...)     refused even with force: --force
//                                                     replaces files, never deletes anything.
// An output directory (OutputClaim::dir) that exists as anything but a directory is refused.
// Files in an output directory that the command does not write are never looked at or touched.
// A refusal is a UserError naming the path and what was expected, thrown before any write.
#include <functional>
#include <string>
#include <vector>

namespace llmpi {

struct OutputClaim {
  std::string dir;                 // the output directory the command creates; "" if none
  std::vector<std::string> files;  // every file the command may write (also paths not named
                                   // by the user, e.g. import-hf's MODEL.tokenizer.json)
  std::string what;                // what an earlier output is: "an llmpi model file", ...
  std::function<bool(const std::string& file)> ours;  // is `file` (existing, regular) one?
};

// Throws UserError "<path>: exists and is not <what> ...; pass --force to replace it" (or
// "<path>: is a directory; expected <what>") for the first file the rule refuses.
void claim_outputs(const OutputClaim& claim, bool force);

// The first line of a file, without its '\n' ("" when it cannot be read): for recognisers.
std::string first_line_of(const std::string& path);

}  // namespace llmpi
