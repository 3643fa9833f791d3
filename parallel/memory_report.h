#pragma once
// The memory report: the bytes each rank holds persistently per kind — master parameters,
// gradients kept across the step, AdamW moments — and the peak of its transient buffers, as
// its ZeRO path computed them after sharding (parallel/zero_path.h), gathered into one
// table for the start of a run.
#include <cstdint>
#include <string>

#include "parallel/topology.h"

namespace llmpi {

// Bytes this rank holds persistently per kind, and the peak of its transient buffers.
struct EngineMemory {
  int64_t params = 0;     // master parameters (full, or the ZeRO-3 shard)
  int64_t grads = 0;      // gradients kept across the step (full, or the ZeRO-2/3 shard)
  int64_t optimizer = 0;  // AdamW moments m and v
  int64_t transient = 0;  // peak of just-in-time unit buffers (ZeRO 2/3), 0 otherwise
};

// Collective over the topology's world: one line per rank
// "rank | tp dp pp | params | grads | optimizer | transient" (MiB); complete on world rank 0.
std::string memory_table(const EngineMemory& mine, Topology& topo);

}  // namespace llmpi
