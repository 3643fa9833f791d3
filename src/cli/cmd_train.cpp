// `llmpi train CONFIG [--set section.key=value ...]`
#include <iostream>

#include "backend/backend.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "config/config.h"
#include "core/error.h"
#include "core/runtime.h"
#include "train/trainer.h"

namespace llmpi {

namespace {
constexpr const char* kHelp = R"(usage: llmpi train CONFIG [--set section.key=value ...]

Trains the model described by the TOML file CONFIG (see configs/ and docs/config.md).
Prints one line per logged step (step, loss, lr, gradient norm, tokens/s, elapsed, ETA),
validation losses, and writes <run.dir>/model.h5 and <run.dir>/config.toml.

options:
  --set section.key=value   override one config key (repeatable), e.g. --set train.steps=50
  -h, --help                this help
)";
}  // namespace

int cmd_train(const std::vector<std::string>& argv, Runtime& rt) {
  Args args(argv, "llmpi train");
  if (args.help_requested()) {
    std::cout << kHelp;
    return 0;
  }
  const auto overrides = args.get_all("--set");
  const auto pos = args.positionals();
  args.finish();
  if (pos.size() != 1) user_error("llmpi train: expected exactly one CONFIG file (see --help)");
  if (rt.world_size() != 1)
    user_error("llmpi train: this build trains on one rank; started with ", rt.world_size(),
               " ranks");
  const Config cfg = load_config(pos[0], overrides);
  auto be = make_host_backend();
  Trainer trainer(cfg, *be, MPI_COMM_WORLD, std::cout);
  trainer.run();
  return 0;
}

}  // namespace llmpi
