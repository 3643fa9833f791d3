// The command registry: every subcommand of llmpi, in the order of the top-level help.
// Adding one: a file cmd_<name>.cpp defining `CommandSpec <name>_command()` (see command.h),
// and its line in LLMPI_COMMANDS below. Nested commands use the path in the spec
// ("slurm submit", factory slurm_submit_command); a group gets a line of its own only to give
// it a summary (a spec without `declare`).
#include "cli/command.h"

// X(name) lists name_command(); the list both declares the factories and calls them.
#define LLMPI_COMMANDS(X) \
  X(train)                \
  X(prepare)              \
  X(sample)               \
  X(eval)                 \
  X(inspect)              \
  X(analyze)              \
  X(logbook)              \
  X(export_hf)            \
  X(import_hf)            \
  X(slurm)                \
  X(slurm_submit)         \
  X(slurm_status)         \
  X(version)

namespace llmpi {

#define LLMPI_DECLARE_COMMAND(name) CommandSpec name##_command();
LLMPI_COMMANDS(LLMPI_DECLARE_COMMAND)
#undef LLMPI_DECLARE_COMMAND

std::vector<CommandSpec> all_commands() {
#define LLMPI_LIST_COMMAND(name) name##_command(),
  return {LLMPI_COMMANDS(LLMPI_LIST_COMMAND)};
#undef LLMPI_LIST_COMMAND
}

}  // namespace llmpi
