// `llmpi version` (also `llmpi --version`): the version and the git revision it was built from.
#include <cstdio>

#include "cli/command.h"
#include "core/version.h"

namespace llmpi {

CommandSpec version_command() {
  return {"version", "", "print version and git revision", "", [](CLI::App&) -> CommandAction {
            return [](CommandEnv&) {
              std::printf("llmpi %s (git %s)\n", kVersion, kGitRevision);
              return 0;
            };
          }};
}

}  // namespace llmpi
