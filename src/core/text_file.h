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

}  // namespace llmpi
