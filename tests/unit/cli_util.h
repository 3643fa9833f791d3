#pragma once
// Shared by the tests that run a subcommand in-process: `llmpi ARGS...` through the
// command-line front end (no MPI runtime: for commands that need none), optionally with the
// process's stdout (fd 1, where printf writes) captured into a file.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "cli/command_line.h"

namespace llmpi::testing {

inline int run_cli(const std::vector<std::string>& args) {
  CommandEnv env;
  return run_command_line(args, env);
}

// {exit code, what it printed on stdout}; an exception propagates after stdout is restored.
inline std::pair<int, std::string> run_cli_captured(const std::vector<std::string>& args,
                                                    const std::filesystem::path& out) {
  std::fflush(stdout);
  const int saved = ::dup(1);
  FILE* f = std::fopen(out.c_str(), "w");
  ::dup2(::fileno(f), 1);
  auto restore = [&] {
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    std::fclose(f);
  };
  int rc = -1;
  try {
    rc = run_cli(args);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  return {rc, ss.str()};
}

}  // namespace llmpi::testing
