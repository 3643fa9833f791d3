#pragma once
// The command-line front end: builds the tree of commands from CommandSpecs (CLI11 apps; a
// nested path "slurm submit" makes its group "slurm" when the group is not listed itself),
// parses the arguments, and runs the chosen command's action.
//   - "-h"/"--help" anywhere prints the help of the deepest command named (stdout) → 0;
//     "llmpi help [COMMAND...]" does the same, "llmpi --version" runs `version`.
//   - Every bad command line is a UserError "llmpi <path>: <what> (see llmpi <path> --help)"
//     naming the argument and what was expected: an unknown command or option (with the
//     closest name, config/did_you_mean.h), an unexpected argument, a missing or malformed
//     value, a group without its subcommand.
// Nothing starts MPI here; an action does, through CommandEnv::runtime().
#include <string>
#include <vector>

#include "cli/command.h"

namespace llmpi {

// args: without the program name. env.command() names the command once it is known.
int run_command_line(const std::vector<std::string>& args, CommandEnv& env,
                     const std::vector<CommandSpec>& commands = all_commands());

// The top-level help ("llmpi --help").
std::string top_level_help(const std::vector<CommandSpec>& commands = all_commands());

}  // namespace llmpi
