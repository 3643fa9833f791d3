#pragma once
// OpProfile: the measured compute of ONE rank running one micro-batch (forward, loss,
// backward) plus one optimizer step of a model, op by op — the performance model's compute
// input (docs/scaling.md). Made from TimingBackend records (bench/op_profile.cpp, host or
// CUDA) by `classify`, saved and read as JSON.
// Each row is one (phase, op, shape) with its summed time over the profiled calls; its class
// and role say how its work scales with the layout:
//   matmul     2·N·(weight elements)/tp        roles qkv, attn_out, mlp_up, mlp_down, head
//   attention  B·Hq·T²·D/tp
//   feature    N·(width)/tp                     roles act (MLP activation), rope
//   row        n·C, n = N/tp with sequence parallelism, else N (norms, residual adds, copies)
//   loss       N·V/tp (vocab-parallel logits)
//   embedding  N·C
//   params     parameters this rank holds (zero_grads, norms of gradients, AdamW)
// Phases come from the op order of a step (see classify): embed_fwd, block_fwd (all layers),
// head_fwd (final norm, head, loss), head_bwd, block_bwd, embed_bwd, step (before the first
// embedding op and after the last one: input copies, zero_grads, clip, optimizer).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backend/timing_backend.h"
#include "model/model_config.h"

namespace llmpi::perf {

enum class Phase : uint8_t { step, embed_fwd, block_fwd, head_fwd, head_bwd, block_bwd, embed_bwd };
enum class OpClass : uint8_t { matmul, attention, feature, row, loss, embedding, params };
enum class Role : uint8_t { none, qkv, attn_out, mlp_up, mlp_down, head, act, rope };

const char* phase_name(Phase p);
const char* class_name(OpClass c);
const char* role_name(Role r);
Phase phase_from(const std::string& s);  // throws UserError for an unknown name
OpClass class_from(const std::string& s);
Role role_from(const std::string& s);

// The shape a work measure is taken at: model, micro-batch B × T, tensor-parallel degree and
// sequence parallelism.
struct WorkShape {
  ModelConfig model;
  int64_t B = 1, T = 1;
  int64_t tp = 1;
  bool sp = false;
};

// The work of one call of an op of class c / role r at shape s, in the class's unit (FLOPs
// for matmul and attention, elements for the others; params: 1). Ratios of work between two
// shapes scale measured times. Pure.
double work(OpClass c, Role r, const WorkShape& s);

struct ProfileRow {
  Phase phase = Phase::step;
  std::string op;     // backend op name
  std::string shape;  // linear weight "rows x cols", else empty
  OpClass cls = OpClass::row;
  Role role = Role::none;
  int64_t calls = 0;  // per profiled step
  double ms = 0;      // summed over the calls (median over profiled steps)
  double flops = 0, bytes = 0;  // summed over the calls
};

struct OpProfile {
  std::string source;     // "llmpi_op_profile host", "docs/performance.md H100 ...", ...
  std::string device;     // "host" or "cuda"
  ModelConfig model;      // recompute none, tp = 1 (the profile's shape)
  int64_t B = 1, T = 1;   // one micro-batch
  int64_t params = 0;     // parameters of the profiled (one-rank) model
  double step_ms = 0;     // measured wall time of the profiled steps (median)
  double copy_gbs = 0;    // device copy bandwidth into warm buffers, GB/s
  double fresh_gbs = 0;   // fill bandwidth of freshly allocated buffers (allocation included)
  std::vector<ProfileRow> rows;

  WorkShape shape() const { return {model, B, T, 1, false}; }
  double total_ms() const;
  double phase_ms(Phase p) const;
};

// Class and role of a backend op (a linear's role by its weight shape at the profile's
// model, tp = 1). Unknown elementwise op names are `row` (a per-token-row pass), so that
// new fused kernels still scale; an unknown linear weight shape throws InternalError.
OpClass class_of(const std::string& op, Phase phase);
Role role_of(const std::string& op, const std::string& shape, const ModelConfig& m);

// Rows of ONE training step of a one-rank model, from its records in issue order. Anchors:
// the embedding ops, the head linear (weight [V, C]) and the final norm next to it. Throws
// InternalError when the records are not one whole step (no embedding, no head).
std::vector<ProfileRow> classify(std::span<const OpRecord> records, const ModelConfig& m);
// Per-row medians of the same rows over several steps (ms, flops, bytes; calls of the
// first). Throws InternalError when the steps' rows differ.
std::vector<ProfileRow> median_rows(const std::vector<std::vector<ProfileRow>>& steps);

std::string to_json(const OpProfile& p);
// Throws UserError naming `name` and the missing or bad key.
OpProfile profile_from_json(const std::string& text, const std::string& name);
OpProfile load_profile(const std::string& path);

}  // namespace llmpi::perf
