#pragma once
// Runs the llmpi binary built with the tests (LLMPI_BINARY_PATH) as a fresh process, for
// tests of whole commands that start MPI themselves (train, sample, eval). This test process
// is an MPI singleton: its launcher variables (OMPI_, PMIX_, ...) are removed from the
// child's environment, so the child starts its own singleton.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

extern char** environ;

namespace llmpi::testing {

// Runs a shell command line (/bin/sh) in this test's environment minus the MPI launcher's
// variables. Returns {exit status (-1: killed by a signal), stdout and stderr
// together (append 2>&1 yourself where wanted)}.
inline std::pair<int, std::string> run_shell(const std::string& command) {
  std::string cmd;
  for (char** e = environ; *e; ++e) {
    const std::string kv = *e;
    for (const char* prefix : {"OMPI_", "PMIX_", "PRTE_", "OPAL_", "ORTE_"})
      if (kv.rfind(prefix, 0) == 0) cmd += "unset " + kv.substr(0, kv.find('=')) + "; ";
  }
  cmd += command;
  FILE* p = ::popen(cmd.c_str(), "r");  // /bin/sh -c cmd
  if (p == nullptr) return {-1, "popen failed: " + cmd};
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// `llmpi ARGS` (shell words), stderr with stdout.
inline std::pair<int, std::string> run_llmpi(const std::string& args) {
  return run_shell(std::string(LLMPI_BINARY_PATH) + " " + args + " 2>&1");
}

}  // namespace llmpi::testing
