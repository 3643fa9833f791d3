#pragma once
// The output rule: llmpi never damages or deletes what it did not write. Before a command
// writes anything it names every file it may write or remove (OutputClaim) and claim_outputs()
// checks each, the same way for every command (import-hf, export-hf, prepare, logbook --csv/--jsonl).
// A file it writes (OutputClaim::files):
//   absent                                            written;
//   a regular file that is this command's own earlier  replaced (re-running a command into
//     output (OutputClaim::ours, decided by the writer   the same path keeps working);
//     of that format: see the list in docs/user-guide.md "Outputs")
//   any other regular file                            refused, unless force (--force);
//   not a regular file (a directory, a FIFO, ...)     refused even with force: --force
//                                                     replaces files, never deletes anything.
// Its temporary temporary_of(file), which writers create, fill, then rename to the file:
//   absent                                            fine;
//   a regular file of one link (an interrupted run    refused, unless force: never taken for
//     leaves one; so may another program)               the command's own (nothing tells);
//   a symbolic link, a file with other hard links,    refused even with force: a writer opens
//     a directory, a FIFO, ...                          it truncating, following links.
// A file it removes (OutputClaim::removes: its own earlier output that this run does not
// rewrite and that would be left stale, e.g. export-hf's other weight layout):
//   absent                                            nothing to do;
//   a regular file that is the command's own (ours)   removed by the command;
//   anything else                                     refused even with force.
// An output directory (OutputClaim::dir) that exists as anything but a directory is refused.
// Files in an output directory that the command does not name are never looked at or touched.
// A refusal is a UserError naming the path and what was expected, thrown before any write.
#include <functional>
#include <string>
#include <vector>

#include "core/text_file.h"  // temporary_of

namespace llmpi {

struct OutputClaim {
  std::string dir;                 // the output directory the command creates; "" if none
  std::vector<std::string> files;  // every file the command may write (also paths not named
                                   // by the user, e.g. import-hf's MODEL.tokenizer.json)
  std::string what;                // what an earlier output is: "an llmpi model file", ...
  std::function<bool(const std::string& file)> ours;  // is `file` (existing, regular) one?
  std::vector<std::string> removes = {};  // files the command deletes when they are ours
  std::string removes_why = {};           // why it would (in the refusal): "this export writes
                                          // its weights as one model.safetensors, so ..."
};

// Throws UserError "<path>: exists and is not <what> ...; pass --force to replace it" (or
// "<path>: is a directory; expected <what>", ...) for the first path the rule refuses.
void claim_outputs(const OutputClaim& claim, bool force);

// For a command that writes one file the user names and creates no directory (import-hf
// --out, lora merge --out): UserError "<file>: the directory <parent> does not exist
// (<command> creates none)" unless the file's directory exists; "" or "." passes.
void require_parent_directory(const std::string& file, const std::string& command);

// The first line of a file, without its '\n' ("" when it cannot be read): for recognisers.
std::string first_line_of(const std::string& path);

}  // namespace llmpi
