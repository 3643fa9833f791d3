#pragma once
// Whole small files (JSON, TOML, tokenizer files): read into a string, write atomically
// ("<path>.tmp", then rename, so a crash never leaves half a file under `path`).
// Failures are UserErrors naming the path and the OS reason. A symbolic link at `path` is
// replaced by the new file, never written through.
#include <string>

namespace llmpi {

std::string read_text_file(const std::string& path);
// The same, but "" when the file cannot be opened (absent, gone, unreadable): for files whose
// absence is an answer (/proc/<pid>/stat, a job's output before it starts).
std::string read_text_file_if_exists(const std::string& path);
void write_text_atomically(const std::string& path, const std::string& text);

// The temporary every atomic writer creates for `file` and renames to it when complete
// (write_text_atomically, io/safetensors.h, io/model_file.h, data/token_shard.h,
// data/tokenizer.h, data/prepare_sft.cpp, io/checkpoint.h): the output rule
// (core/output_rule.h) checks this path before a command writes.
inline std::string temporary_of(const std::string& file) { return file + ".tmp"; }

}  // namespace llmpi
