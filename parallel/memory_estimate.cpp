#include "parallel/memory_estimate.h"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "model/block.h"
#include "model/dtypes.h"
#include "model/param_layout.h"
#include "parallel/communicator.h"
#include "parallel/lora_base.h"
#include "parallel/topology.h"
#include "quant/nf4.h"

namespace llmpi {
namespace {

double numel_of(const std::vector<ParamInfo>& ps) {
  double n = 0;
  for (const ParamInfo& p : ps) {
    double k = 1;
    for (int d = 0; d < p.global_shape.ndim; ++d) k *= double(p.global_shape[d]);
    n += k;
  }
  return n;
}

// LoRA's frozen base per rank (parallel/lora_base.h), its dense elements at `a` bytes: every
// weight dense, or with base_dtype = "nf4" the blocks' linear maps in NF4 (½ byte, an int8
// scale per 64 and an f32 per 16,384: quant/nf4.h) beside one dense dequantisation scratch of
// the largest (packed) map; plus the gradients the frozen store keeps for its 1-D parameters
// (norm gains, biases: model/param_store.h), `g` bytes each, counted unsplit by tp (gains are
// replicated). The adapters, rank · (I + O) per target, are left out.
double lora_base_bytes(const Config& cfg, const Layout& lay, double total_params, double a,
                       double g) {
  const ModelConfig& m = cfg.model;
  const double split = double(lay.tp * lay.pp);
  const std::vector<ParamInfo> layer = transformer_params(m, {0, 1, false, false});
  double nf4_layer = 0, ones_layer = 0, ones_rest = 0;
  for (const ParamInfo& p : layer) {
    if (cfg.lora.nf4_base() && nf4_base_weight(p.name)) nf4_layer += double(p.global_shape.numel());
    if (p.global_shape.ndim == 1) ones_layer += double(p.global_shape.numel());
  }
  for (const ParamInfo& p : transformer_params(m, {0, 0, true, true}))
    if (p.global_shape.ndim == 1) ones_rest += double(p.global_shape.numel());
  const double grads = (ones_layer * double(m.n_layer) + ones_rest) / double(lay.pp) * g;
  if (!cfg.lora.nf4_base()) return total_params / split * a + grads;
  const double nf4 = nf4_layer * double(m.n_layer) / split;
  const double nf4_byte = 0.5 + 1.0 / double(kNf4Block) + 4.0 / double(kNf4Block * kNf4ScaleGroup);
  const double scratch = double(nf4_scratch_elems(layer)) / double(lay.tp) * a;
  return (total_params / split - nf4) * a + nf4 * nf4_byte + scratch + grads;
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (b >= 1024 && u < 6) b /= 1024, ++u;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3g %s", b, units[u]);
  return buf;
}

std::string human_count(double n) {
  char buf[48];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.3gB", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.3gM", n / 1e6);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

}  // namespace

MemoryEstimate estimate_memory(const Config& cfg, const Layout& lay) {
  const ModelConfig& m = cfg.model;
  MemoryEstimate e;
  e.layer_params = numel_of(transformer_params(m, {0, 1, false, false}));
  e.embedding_params = numel_of(transformer_params(m, {0, 0, true, true}));
  e.total_params = e.embedding_params + e.layer_params * double(m.n_layer);
  const double f = double(dtype_size(cfg.train.master_dtype));
  const double local = e.total_params / double(lay.tp * lay.pp);
  const double dp = double(lay.dp);
  e.params = local * f / (lay.zero_stage >= 3 ? dp : 1.0);
  e.grads = local * f / (lay.zero_stage >= 2 ? dp : 1.0);
  e.optimizer = 2.0 * local * f / (lay.zero_stage >= 1 ? dp : 1.0);
  if (cfg.lora.enabled()) {
    // LoRA: the frozen base in the compute dtype (the master dtype on the host), no gradient
    // or moment of it.
    e.params = lora_base_bytes(cfg, lay, e.total_params, f, f);
    e.grads = e.optimizer = 0;
  }
  const double BT = double(cfg.train.batch_size) * double(cfg.train.seq_len);
  e.activations = 4.0 * (2.0 * BT * double(m.vocab_size) / double(lay.tp) +
                         BT * double(m.d_model) * double(m.n_layer) / double(lay.pp));
  return e;
}

double activation_bytes_estimate(const ModelConfig& m, const Layout& lay, int64_t B, int64_t T,
                                 DType dtype, int64_t layers, bool head, bool embedding) {
  const double a = double(dtype_size(dtype)), st = double(dtype_size(stat_dtype(dtype)));
  const double N = double(B) * double(T), C = double(m.d_model), tp = double(lay.tp);
  const double n = lay.sequence_parallel ? N / tp : N;  // rows of the row region
  const double hd = C / double(m.n_head);
  const double qkv = (double(m.n_head) + 2.0 * double(m.kv_heads())) / tp * hd;
  const double F = double(m.d_ff) / tp, pre = (m.arch == Arch::llama ? 2.0 : 1.0) * F;
  const double mean = m.arch == Arch::gpt2 ? n * st : 0.0, rstd = n * st;  // LayerNorm has a mean
  auto block = [&](Recompute mode) {
    double b = 0;
    // In block_buffers order (model/block.h): attn_norm mean, rstd, h1, qkv, attn.out, lse,
    // mid, mlp_norm mean, rstd, h2, mlp.pre, mlp.act, out.
    const double heads = double(m.n_head) / tp;
    const double sizes[kBlockBuffers] = {mean,          rstd,          n * C * a, N * qkv * a,
                                         N * heads * hd * a, N * heads * st, n * C * a,
                                         mean,          rstd,          n * C * a, N * pre * a,
                                         N * F * a,     n * C * a};
    for (size_t i = 0; i < kBlockBuffers; ++i)
      if (block_keeps(mode, i)) b += sizes[i];
    return b;
  };
  double bytes = n * C * a;  // the stage's input
  if (embedding && m.learned_positions()) bytes += n * 4.0;
  bytes += double(layers) * block(m.recompute);
  if (head) bytes += mean + rstd + n * C * a + N * double(m.vocab_size) / tp * a + 2.0 * N * st;
  if (n != N) bytes += N * C * a;
  return bytes;
}

MemoryEstimate estimate_device_memory(const Config& cfg, const Layout& lay) {
  const ModelConfig& m = cfg.model;
  MemoryEstimate e = estimate_memory(cfg, lay);
  // The CUDA engine computes in bf16: activations, scratch, and a bf16 copy of the weights
  // (the units path of ZeRO 2/3 gathers that copy per unit instead).
  const DType d = DType::bf16;
  const bool units = lay.zero_stage >= 2 && lay.pp == 1;
  const bool lora = cfg.lora.enabled();  // the base alone, in bf16 (no master copy)
  if (lora)
    e.params = lora_base_bytes(cfg, lay, e.total_params, double(dtype_size(d)),
                               double(dtype_size(cfg.train.master_dtype)));
  else if (!units) e.params += 2.0 * e.total_params / double(lay.tp * lay.pp);
  const int64_t B = cfg.train.batch_size, T = cfg.train.seq_len;
  const int64_t layers = (m.n_layer + lay.pp - 1) / lay.pp;
  const double one = activation_bytes_estimate(m, lay, B, T, d, layers, true, lay.pp == 1);
  const double in_flight = lay.pp == 1 ? 1.0 : double(std::min(lay.micro_batches, lay.pp));
  // Recomputation: one block's buffers shared by every micro-batch, paid once.
  ModelConfig all = m;
  all.recompute = Recompute::none;
  const double shared =
      m.recompute == Recompute::none
          ? 0.0
          : activation_bytes_estimate(all, lay, B, T, d, 1, false, false) -
                activation_bytes_estimate(all, lay, B, T, d, 0, false, false);
  e.activations = one * in_flight + shared;
  // Backward scratch: dres, dhf, dh [n, C]; dqkv, dout; dpre, dact; row_scale [N].
  const double a = double(dtype_size(d)), N = double(B) * double(T), tp = double(lay.tp);
  const double n = lay.sequence_parallel ? N / tp : N, C = double(m.d_model);
  const double hd = C / double(m.n_head), F = double(m.d_ff) / tp;
  const double qkv = (double(m.n_head) + 2.0 * double(m.kv_heads())) / tp * hd;
  const bool gated = m.arch == Arch::llama;
  double scratch = 3.0 * n * C * a + N * qkv * a + N * double(m.n_head) / tp * hd * a +
                   N * F * (gated ? 2.0 : 1.0) * a + (gated ? N * F * a : 0.0) + N * 4.0;
  if (n != N) scratch += 2.0 * N * C * a;
  const double gathered = units && !lora ? 2.0 * e.layer_params / tp * (4.0 + a) : 0.0;
  e.workspace = scratch + gathered + kDeviceReserveBytes;
  return e;
}

double host_bytes_available(int ranks_on_node) {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kib = -1;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    if (words >> key && key == "MemAvailable:" && words >> kib) break;
    kib = -1;
  }
  return kib < 0 ? -1.0 : kib * 1024.0 / double(std::max(ranks_on_node, 1));
}

void check_memory_estimate(const Config& cfg, const Layout& lay, double available,
                           const std::string& where) {
  check_memory_estimate(cfg, lay, estimate_memory(cfg, lay), available, where);
}

void check_memory_estimate(const Config& cfg, const Layout& lay, const MemoryEstimate& e,
                           double available, const std::string& where) {
  if (available < 0 || e.total() <= available) return;
  const ModelConfig& m = cfg.model;
  user_error(
      cfg.source_path, ": the model does not fit: about ", human_bytes(e.total()),
      " per rank estimated (parameters ", human_bytes(e.params), ", gradients ",
      human_bytes(e.grads), ", optimizer ", human_bytes(e.optimizer),
      ", activations ", e.workspace > 0 ? "" : "at least ",
      human_bytes(e.activations), e.workspace > 0 ? ", workspace " + human_bytes(e.workspace) : "",
      "; ", human_count(e.total_params), " parameters) but ",
      human_bytes(available), " ", where, " is available. It grows with model.n_layer = ",
      m.n_layer, " (", human_count(e.layer_params), " parameters per layer), model.d_model = ",
      m.d_model, ", model.d_ff = ", m.d_ff, ", model.vocab_size = ", m.vocab_size, " (",
      human_count(e.embedding_params), " parameters in the embedding and head) and train.batch_size x "
      "train.seq_len = ", cfg.train.batch_size, " x ", cfg.train.seq_len,
      "; it shrinks with parallel.tp = ", lay.tp, ", parallel.pp = ", lay.pp,
      " and, over parallel.dp = ", lay.dp, ", parallel.zero_stage = ", lay.zero_stage);
}

MemoryEstimate check_memory_fits(const Config& cfg, const Topology& topo, const Backend& be) {
  MPI_Comm world = topo.world_communicator().get();
  if (be.device() != Device::host) {
    const MemoryEstimate e = estimate_device_memory(cfg, topo.layout());
    double least = be.free_bytes();
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, &least, 1, MPI_DOUBLE, MPI_MIN, world), "MPI_Allreduce");
    check_memory_estimate(cfg, topo.layout(), e, least,
                          std::string("of ") + be.name() +
                              " device memory free per rank (cudaMemGetInfo, the least of any "
                              "rank)");
    return e;
  }
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, topo.rank(), MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
  int on_node = 1;
  MPI_Comm_size(node, &on_node);
  MPI_Comm_free(&node);
  double mine = host_bytes_available(on_node), least = mine;
  check_mpi(MPI_Allreduce(&mine, &least, 1, MPI_DOUBLE, MPI_MIN, world), "MPI_Allreduce");
  const MemoryEstimate e = estimate_memory(cfg, topo.layout());
  check_memory_estimate(cfg, topo.layout(), e, least,
                        "of host memory per rank (MemAvailable shared by the node's " +
                            std::to_string(on_node) + " rank(s), the least of any node)");
  return e;
}

}  // namespace llmpi
