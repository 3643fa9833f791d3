#pragma once
// The `--backend host|cuda` option shared by the commands that run the model (sample, eval;
// train once its optimizer keeps f32 moments beside a bf16 compute copy, see docs/cuda.md).
// `host` (the default) is always built. `cuda` needs an llmpi built with LLMPI_ENABLE_CUDA=ON
// and a usable GPU; otherwise a UserError names the option and the reason (exit status 2).
// With several ranks on a node, the node-local rank l (MPI_COMM_TYPE_SHARED) uses GPU
// l % (GPUs visible to the process): one GPU per rank when a node runs as many ranks as GPUs.
#include <memory>
#include <string>

#include "backend/backend.h"
#include "cli/options.h"

namespace llmpi {

// Declares `--backend NAME` on a command, bound to `name` (default "host").
Opt add_backend_option(CLI::App& app, std::string& name);

// Creates the backend named by --backend. `command` prefixes error messages ("llmpi eval").
// Needs MPI initialized (it finds the node-local rank).
std::unique_ptr<Backend> make_backend_option(const std::string& name, const std::string& command);

}  // namespace llmpi
