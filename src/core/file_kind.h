#pragma once
// The kind of file at a path, checked BEFORE open(): open() on a FIFO blocks until a writer
// appears (deaf to SIGTERM, so `llmpi eval --data FIFO` hung for good), a character device
// streams forever, and a directory opens and reads as a short or empty "file". Every reader of
// an input file (token shard, tokenizer, config, model/checkpoint) asks here first, so the
// refusal reads the same everywhere: "<path>: is a directory; expected <what>".
// A path that cannot be stat'ed (absent, unreadable folder) passes: open() then says why.
#include <string>

namespace llmpi {

// "" for a regular file (links followed) or a path stat() cannot see; otherwise what it is
// instead: "is a directory", "is not a regular file but a FIFO (named pipe)", ...
std::string not_regular_file(const std::string& path);

// Throws UserError "<path>: <not_regular_file(path)>; expected <expected>" unless "" .
void require_regular_file(const std::string& path, const std::string& expected);

// A run directory named by the user (llmpi logbook, analyze, slurm status): UserError
// "<path>: no such run directory" when nothing is there, "<path>: is a regular file, not a run
// directory" (a FIFO (named pipe), ...) when something else is.
void require_run_directory(const std::string& path);

}  // namespace llmpi
