// llmpi: one binary, subcommands (cli/command_registry.cpp lists them). MPI and Kokkos start
// only when a command needs them. Errors: bad input → message + exit 2 (every rank gives up
// together where the input is shared); an internal error on any rank → MPI_Abort of the
// whole job with that rank's message, so no rank is left hanging.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "core/error.h"
#include "core/runtime.h"
#include "io/hdf5_open_files.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(llmpi::top_level_help().c_str(), stderr);
    return 2;
  }
  const std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<llmpi::Runtime> rt;  // started by the command, if it needs MPI
  llmpi::CommandEnv env([&]() -> llmpi::Runtime& {
    if (!rt) rt.emplace(argc, argv);
    return *rt;
  });
  try {
    return llmpi::run_command_line(args, env);
  } catch (const llmpi::UserError& e) {
    const std::string& cmd = env.command();  // "llmpi train"
    // Input checked by every rank alike (config, layout) is agreed on inside the command,
    // which then returns 2 on all ranks. One that reaches here may be one rank's alone:
    // with several ranks, end the whole job rather than leave the others waiting.
    if (rt && rt->world_size() > 1) llmpi::abort_job((cmd + ": " + e.what()).c_str(), 2);
    // Messages may already name the command ("llmpi train: ..."): print it once.
    std::string msg = e.what();
    const std::string prefix = cmd + ": ";
    if (msg.rfind(prefix, 0) == 0) msg.erase(0, prefix.size());
    std::fprintf(stderr, "%serror: %s\n", prefix.c_str(), msg.c_str());
    // A file HDF5 could not close (a failed save on a full disk) would crash HDF5's clean-up
    // inside MPI_Finalize: end here, with the error already reported.
    if (rt) llmpi::h5::exit_if_files_left_open(2);
    return 2;
  } catch (const std::exception& e) {
    if (rt && rt->world_size() > 1) llmpi::abort_job(e.what(), 1);
    std::fprintf(stderr, "%s: internal error: %s\n", env.command().c_str(), e.what());
    return 1;
  }
}
