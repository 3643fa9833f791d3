#pragma once
// The command-line front end: builds the tree of commands from CommandSpecs (CLI11 apps; a
// nested path "slurm submit" makes its group "slurm" when the group is not listed itself),
// parses the arguments, and runs the chosen command's action.
//   - "-h"/"--help" anywhere prints the help of the deepest command named (stdout) → 0;
//     "llmpi help [COMMAND...]" does the same, "llmpi --version" runs `version`.
//   - Every bad command line is a UserError "llmpi <path>: <what> (see llmpi <path> --help)"
//     naming the argument and what was expected: an unknown command or option (with the
//     closest name, config/did_you_mean.h), an unexpected argument, a missing or malformed
//     value, a group without its subcommand. It is a CommandLineError: found before any
//     action runs, from the arguments alone.
// Nothing starts MPI here; an action does, through CommandEnv::runtime(). So under a launcher
// (mpiexec -n N, srun), where every rank parses the same arguments, a help or a bad command
// line is the same on every rank: the help is printed by the launcher's rank 0 alone
// (core/launcher_rank.h), and main prints a CommandLineError the same way.
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"

namespace llmpi {

// A bad command line, found before the command's action ran: it depends on the arguments
// alone, never on a file or the node. (What an action finds is a plain UserError.)
struct CommandLineError : UserError {
  using UserError::UserError;
};

// args: without the program name. env.command() names the command once it is known.
int run_command_line(const std::vector<std::string>& args, CommandEnv& env,
                     const std::vector<CommandSpec>& commands = all_commands());

// The top-level help ("llmpi --help").
std::string top_level_help(const std::vector<CommandSpec>& commands = all_commands());

}  // namespace llmpi
