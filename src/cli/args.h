#pragma once
// Args: a small command-line parser shared by the subcommands.
//   Args a(argv_after_subcommand, "llmpi sample", "usage text");
//   auto n = a.get_int("--tokens", 64);     // "--tokens 64" or "--tokens=64"
//   bool v = a.flag("--verbose");
//   a.finish();                             // unknown options / leftovers → UserError
// Every lookup consumes its option; finish() rejects anything left, naming it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace llmpi {

class Args {
 public:
  Args(std::vector<std::string> args, std::string command);

  bool help_requested() const;  // "-h" or "--help" present
  bool flag(const std::string& name);
  std::optional<std::string> get(const std::string& name);
  std::string get(const std::string& name, const std::string& fallback);
  std::string require(const std::string& name);
  int64_t get_int(const std::string& name, int64_t fallback);
  double get_double(const std::string& name, double fallback);
  std::vector<std::string> get_all(const std::string& name);  // repeated option
  // Positional arguments (those not starting with "--"), in order, consumed.
  std::vector<std::string> positionals();
  // Throws UserError if anything was not consumed.
  void finish();

 private:
  std::vector<std::string> args_;
  std::vector<bool> used_;
  std::string command_;
};

}  // namespace llmpi
