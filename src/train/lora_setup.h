#pragma once
// LoRA in a run ([lora] rank > 0): where the frozen base comes from, and how the run's files
// name it. A fresh run's base is the seeded init (parallel/lora_base.h) or [train] init_from
// (train/init_from.h loads it into the base, not into what trains). Checkpoints and the model
// file hold only the adapters (and their moments) plus the base's reference: its source
// (train.init_from, or "seed <n>") and checksum (file_meta.h: lora_base, lora_base_checksum).
// A resume loads the base again as the fresh run did and refuses a base whose checksum differs
// from the checkpoint's, naming both — the adapters would sit beside other weights.
#include <mpi.h>

#include <string>

#include "config/config.h"
#include "io/file_meta.h"

namespace llmpi {

class ParallelEngine;

// train.init_from, or "seed <train.seed>" for the seeded base.
std::string lora_base_source(const Config& cfg);
// Sets m.lora_base and m.lora_base_checksum from the engine's base (nothing without LoRA).
void stamp_lora_base(ModelFileMeta& m, const Config& cfg, const ParallelEngine& engine);
// Collective, before the checkpoint `path` (metadata `meta`) is loaded: its kind of run must
// be this config's (adapters or a full model), and with LoRA the base is loaded as a fresh
// run loads it and must have the checkpoint's checksum. UserError otherwise.
void prepare_lora_resume(const std::string& path, const ModelFileMeta& meta, const Config& cfg,
                         ParallelEngine& engine, MPI_Comm world);
// One line for the start of a run: "LoRA rank r (alpha a, scale s) on q, v: N trainable of M
// parameters; base <source>"; "" without LoRA.
std::string lora_summary(const Config& cfg, const ParallelEngine& engine);

}  // namespace llmpi
