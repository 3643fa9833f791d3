#pragma once
// Diagnostics of one configuration parse: where each key's value came from, and the errors
// found so far. Every error reads
//     WHERE: key 'section.key': <what is wrong>; expected <what is expected>
// where WHERE is "FILE:LINE" (the key's line in the TOML file), "--set section.key=value"
// (a command-line override), or "FILE" alone (a key that is absent). All errors of a stage
// are collected and thrown together as one UserError, one error per line: those located in
// the file first, by line, then those of overrides, then those with no line.
#include <map>
#include <string>
#include <vector>

namespace llmpi::config {

// Where the value of each "section.key" came from.
class Origins {
 public:
  explicit Origins(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }
  void set(const std::string& path, std::string where) { where_[path] = std::move(where); }
  bool given(const std::string& path) const { return where_.count(path) != 0; }
  // The origin of `path`; for an absent key that of `fallback` (a related key), else FILE.
  std::string of(const std::string& path, const std::string& fallback = "") const;

 private:
  std::string file_;
  std::map<std::string, std::string> where_;
};

class Diagnostics {
 public:
  void error(const std::string& where, const std::string& key, const std::string& what,
             const std::string& expected);
  // An error that names no key (an unknown section, a malformed --set); it starts with WHERE.
  void error(const std::string& where, const std::string& message);
  bool empty() const { return errors_.empty(); }
  // Throws UserError with every error, one per line; does nothing when there is none.
  void throw_if_any() const;

 private:
  struct Entry {
    int group;     // 0: FILE:LINE, 1: --set, 2: FILE alone
    long line;     // within group 0
    std::string text;
  };
  std::vector<Entry> errors_;
};

}  // namespace llmpi::config
