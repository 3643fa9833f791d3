#pragma once
// A subcommand of the llmpi binary, as the registry (cli/command_registry.cpp) lists it and
// the front end (cli/command_line.h) runs it:
//   path         "train", or nested "slurm submit" (words separated by one space)
//   synopsis     what follows the path on the usage line: "MODEL [options]"
//   summary      its line in the parent's list of commands
//   description  the paragraphs of its --help between the usage line and the options
//   declare      declares its options and positionals on its CLI::App (cli/options.h), bound
//                to state that the returned action owns, and returns that action; empty for
//                a group, which only holds subcommands
// An action returns the exit code and throws UserError on bad input (exit 2). It starts MPI
// and Kokkos only when it needs them, through CommandEnv::runtime().
#include <functional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace llmpi {

class Runtime;

// What a running command may ask of its surroundings.
class CommandEnv {
 public:
  // `start_runtime` starts MPI + Kokkos (main: a Runtime over argc/argv). Left empty (unit
  // tests of commands that need no MPI), runtime() throws InternalError.
  explicit CommandEnv(std::function<Runtime&()> start_runtime = {});
  // The process runtime, started on the first call.
  Runtime& runtime();
  // "llmpi sample": the command being run, for messages ("llmpi" until it is known).
  const std::string& command() const { return command_; }
  void set_command(std::string c) { command_ = std::move(c); }

 private:
  std::function<Runtime&()> start_runtime_;
  std::string command_ = "llmpi";
};

using CommandAction = std::function<int(CommandEnv&)>;

struct CommandSpec {
  std::string path;
  std::string synopsis;
  std::string summary;
  std::string description;
  std::function<CommandAction(CLI::App&)> declare;
};

// Every command of the binary, in the order of the top-level help.
std::vector<CommandSpec> all_commands();

}  // namespace llmpi
