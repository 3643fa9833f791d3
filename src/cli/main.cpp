// llmpi: one binary, subcommands (cli/command_registry.cpp lists them). MPI and Kokkos start
// only when a command needs them. Errors: bad input → message + exit 2 (every rank gives up
// together where the input is shared); an internal error on any rank → MPI_Abort of the
// whole job with that rank's message, so no rank is left hanging. A bad command line is found
// before MPI starts, alike on every rank of a launch: the launcher's rank 0 prints it.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/command_line.h"
#include "core/error.h"
#include "core/launcher_rank.h"
#include "core/runtime.h"
#include "io/hdf5_open_files.h"

namespace {

// "llmpi train: error: MESSAGE\n"; `what` may already name the command ("llmpi train: ...").
std::string error_line(const std::string& cmd, std::string what) {
  const std::string prefix = cmd + ": ";
  if (what.rfind(prefix, 0) == 0) what.erase(0, prefix.size());
  return prefix + "error: " + what + "\n";
}

// A bad command line (or none) is found before MPI starts, from the arguments alone, so every
// rank of a launch (mpiexec -n N, srun) finds the same: the launcher's rank 0 prints it
// (core/launcher_rank.h) and every rank exits 2. The others first wait kRankZeroFirst, silent:
// mpiexec, hydra and srun --kill-on-bad-exit end the whole job at the first rank that exits
// non-zero, which must not be before rank 0 has printed; rank 0's own exit then ends them
// early. (Errors an action finds — a file missing on one node — are printed where found.)
constexpr auto kRankZeroFirst = std::chrono::seconds(2);

int command_line_failure(const std::string& message) {
  if (llmpi::prints_for_all_ranks()) {
    std::fputs(message.c_str(), stderr);
  } else {
    std::this_thread::sleep_for(kRankZeroFirst);
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return command_line_failure(llmpi::top_level_help());
  const std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<llmpi::Runtime> rt;  // started by the command, if it needs MPI
  llmpi::CommandEnv env([&]() -> llmpi::Runtime& {
    if (!rt) rt.emplace(argc, argv);
    return *rt;
  });
  try {
    return llmpi::run_command_line(args, env);
  } catch (const llmpi::CommandLineError& e) {  // before any action, so before MPI
    return command_line_failure(error_line(env.command(), e.what()));
  } catch (const llmpi::UserError& e) {
    const std::string& cmd = env.command();  // "llmpi train"
    // Input checked by every rank alike (config, layout) is agreed on inside the command,
    // which then returns 2 on all ranks. One that reaches here may be one rank's alone:
    // with several ranks, end the whole job rather than leave the others waiting.
    if (rt && rt->world_size() > 1) llmpi::abort_job((cmd + ": " + e.what()).c_str(), 2);
    std::fputs(error_line(cmd, e.what()).c_str(), stderr);
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
