#pragma once
// [train] init_from: a fresh run starts from a model's weights instead of the seeded init.
// `source` is an llmpi model file, a checkpoint, a run directory (io/model_file.h), or a
// Hugging Face model directory (io/hf_import.h). Its model must have the config's shape
// (UserError naming train.init_from and the differing model key; a Hugging Face model may have
// fewer vocabulary rows than model.vocab_size, the padding rows then start at 0). Each rank
// fills its own slabs — tensor/pipeline shards, ZeRO pieces — from the global tensors, so
// any layout works. Collective over `world` (the llmpi-file path reads collectively and
// verifies checksums; the Hugging Face path has each rank map the safetensors it needs).
// Optimizer state and the step count stay those of a fresh run.
#include <mpi.h>

#include <string>

#include "config/config.h"

namespace llmpi {

class ParallelEngine;

// Returns a one-line description of what was loaded ("<path>: llmpi model, step 1200").
std::string init_params_from(const std::string& source, const Config& cfg, ParallelEngine& engine,
                             MPI_Comm world);

}  // namespace llmpi
