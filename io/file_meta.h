#pragma once
// The root metadata of every llmpi HDF5 file — model files and checkpoints alike — written
// by one writer and read by one reader (spec: docs/checkpoint-format.md):
//   /        attrs  format = "llmpi", format_version, kind ("model" | "checkpoint"),
//                   llmpi_version, git_revision, step, tokens_seen, config, created_unix,
//                   tokenizer (optional: the identity of the training data's tokenizer,
//                   data/tokenizer_id.h; absent when the data records none, and in files of
//                   older llmpi); lora_base, lora_base_checksum (only in files of LoRA runs,
//                   whose /params hold the adapters: the frozen base they sit beside — its
//                   source and the checksum of its tensors, parallel/lora_base.h); writer
//                   (optional: the command that wrote a model file outside training —
//                   "llmpi import-hf", "llmpi lora merge" —, which recognises its own earlier output by it)
//   /layout  attrs  the Layout record by name (core/layout.h): tp, pp, dp, zero_stage,
//                   virtual_stages, micro_batches, sequence_parallel (0/1), world_size; int64
// format_version 2 introduced /layout. A format_version 1 file holds the layout as the root
// attribute `layout` = int64[5] {tp, pp, dp, zero_stage, world_size}; the reader turns it
// into the same record, with virtual_stages = micro_batches = 0 (not recorded).
#include <hdf5.h>

#include <cstdint>
#include <string>

#include "core/layout.h"

namespace llmpi {

inline constexpr int64_t kFormatVersion = 2;

struct ModelFileMeta {
  std::string kind = "model";   // "model" | "checkpoint"
  int64_t step = 0;
  int64_t tokens_seen = 0;
  std::string config_toml;      // the run's full config after overrides
  Layout layout;                // the parallel layout at save
  std::string tokenizer;        // TokenizerId::str() of the training data; "" = not recorded
  std::string lora_base;        // LoRA: the base's source (train.init_from or "seed <n>"); "" = none
  uint64_t lora_base_checksum = 0;
  std::string writer;           // the command that wrote the file, when not training; "" = none
  // Filled on read:
  int64_t format_version = 0;
  std::string llmpi_version, git_revision;
  double created_unix = 0;
};

// Writes the root attributes and the /layout group (collective when the file is; every rank
// passes the same values). Stamps format, kFormatVersion and this build's version.
void write_file_meta(hid_t file, const ModelFileMeta& m, double created_unix,
                     const std::string& path);

// Reads and checks them: format "llmpi", a version this build reads (1..kFormatVersion), the
// layout by name (or, version 1, by position). UserError naming the file and the attribute
// otherwise. Unknown attributes of /layout (an axis of a later version) are ignored.
ModelFileMeta read_file_meta(hid_t file, const std::string& path);

// "tp=2 pp=1 dp=2 zero_stage=1 world=4", then the fields a version-1 file did not record
// when known: " virtual_stages=1 micro_batches=2 sequence_parallel=false".
std::string describe_layout(const Layout& l);

}  // namespace llmpi
