#include "parallel/memory_estimate.h"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "model/param_layout.h"
#include "parallel/communicator.h"
#include "parallel/topology.h"

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
  const double BT = double(cfg.train.batch_size) * double(cfg.train.seq_len);
  e.activations = 4.0 * (2.0 * BT * double(m.vocab_size) / double(lay.tp) +
                         BT * double(m.d_model) * double(m.n_layer) / double(lay.pp));
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
  if (available < 0) return;
  const MemoryEstimate e = estimate_memory(cfg, lay);
  if (e.total() <= available) return;
  const ModelConfig& m = cfg.model;
  user_error(
      cfg.source_path, ": the model does not fit: about ", human_bytes(e.total()),
      " per rank estimated (parameters ", human_bytes(e.params), ", gradients ",
      human_bytes(e.grads), ", optimizer ", human_bytes(e.optimizer), ", activations at least ",
      human_bytes(e.activations), "; ", human_count(e.total_params), " parameters) but ",
      human_bytes(available), " ", where, " is available. It grows with model.n_layer = ",
      m.n_layer, " (", human_count(e.layer_params), " parameters per layer), model.d_model = ",
      m.d_model, ", model.d_ff = ", m.d_ff, ", model.vocab_size = ", m.vocab_size, " (",
      human_count(e.embedding_params), " parameters in the embedding and head) and train.batch_size x "
      "train.seq_len = ", cfg.train.batch_size, " x ", cfg.train.seq_len,
      "; it shrinks with parallel.tp = ", lay.tp, ", parallel.pp = ", lay.pp,
      " and, over parallel.dp = ", lay.dp, ", parallel.zero_stage = ", lay.zero_stage);
}

void check_memory_fits(const Config& cfg, const Topology& topo, const Backend& be) {
  if (be.device() != Device::host) return;
  MPI_Comm world = topo.world_communicator().get();
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, topo.rank(), MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
  int on_node = 1;
  MPI_Comm_size(node, &on_node);
  MPI_Comm_free(&node);
  double mine = host_bytes_available(on_node), least = mine;
  check_mpi(MPI_Allreduce(&mine, &least, 1, MPI_DOUBLE, MPI_MIN, world), "MPI_Allreduce");
  check_memory_estimate(cfg, topo.layout(), least,
                        "of host memory per rank (MemAvailable shared by the node's " +
                            std::to_string(on_node) + " rank(s), the least of any node)");
}

}  // namespace llmpi
