#include "analysis/weight_dynamics.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/hdf5.h"
#include "io/tensor_file.h"
#include "analysis/rank_gather.h"
#include "parallel/communicator.h"

namespace llmpi {

namespace {

constexpr int64_t kWindow = 16;  // files open at once per rank
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// One checkpoint file open for tensor reads.
struct OpenCheckpoint {
  h5::Id file, params;
};

// Reads tensor `name` whole and checks it against its stored checksum. nullopt (with the
// reason in `why`) when it is missing, malformed or fails the checksum.
std::optional<std::vector<float>> read_tensor(const OpenCheckpoint& f, const std::string& path,
                                              const std::string& name, std::string& why) {
  try {
    std::vector<int64_t> dims;
    h5::Id d = open_f32_dataset(f.params, name, path, dims);
    int64_t n = 1;
    for (int64_t x : dims) n *= x;
    std::vector<float> v(static_cast<size_t>(n));
    if (n) h5::check(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), path, "reading " + name);
    TensorSlab s;
    s.name = name;
    s.global_shape = dims;
    s.data = v.data();
    if (!h5::has_attr(d, "checksum") || slab_checksum(s) != h5::read_attr_uint(d, "checksum", path)) {
      why = "tensor " + name + " fails its checksum";
      return std::nullopt;
    }
    return v;
  } catch (const UserError& e) {
    why = e.what();
    return std::nullopt;
  }
}

}  // namespace

WeightDynamics weight_dynamics(const CheckpointSeries& series, MPI_Comm comm, const Progress& progress) {
  const auto t0 = std::chrono::steady_clock::now();
  const int rank = comm_rank(comm), size = comm_size(comm);
  WeightDynamics w;
  const int64_t C = int64_t(series.checkpoints.size());
  if (C == 0) return w;
  for (const SeriesCheckpoint& c : series.checkpoints) w.steps.push_back(c.step);
  const std::string& final_path = series.checkpoints.back().path;
  {
    h5::Id f = h5::open_file(final_path, MPI_COMM_NULL);
    h5::Id p = h5::open_group(f, "params", final_path);
    for (const TensorEntry& e : list_tensors(p, final_path)) {
      w.tensors.push_back(e.name);
      int64_t n = 1;
      for (int64_t d : e.shape) n *= d;
      w.numel.push_back(n);
    }
  }
  const int64_t P = int64_t(w.tensors.size());
  int64_t a = 0, b = 0;
  block_of(C, rank, size, a, b);
  w.sq_norm.assign(size_t((b - a) * P), kNaN);
  w.sq_delta = w.sq_norm;
  w.dot_final = w.sq_norm;
  nlohmann::json problems = nlohmann::json::array();
  std::map<std::string, bool> reported;
  auto problem = [&](const std::string& path, const std::string& why) {
    if (!reported[path + why]) problems.push_back({{"path", path}, {"reason", why}});
    reported[path + why] = true;
  };

  for (int64_t wa = a; wa < b; wa += kWindow) {
    const int64_t wb = std::min(b, wa + kWindow);
    std::map<int64_t, OpenCheckpoint> open;  // checkpoint index → handles
    for (int64_t i : {wa - 1, C - 1})
      if (i >= 0) open[i];
    for (int64_t i = wa; i < wb; ++i) open[i];
    for (auto& [i, f] : open) {
      const std::string& path = series.checkpoints[size_t(i)].path;
      try {
        f.file = h5::open_file(path, MPI_COMM_NULL);
        f.params = h5::open_group(f.file, "params", path);
      } catch (const UserError& e) {
        problem(path, e.what());
      }
    }
    auto read = [&](int64_t i, const std::string& name) -> std::optional<std::vector<float>> {
      const OpenCheckpoint& f = open[i];
      const std::string& path = series.checkpoints[size_t(i)].path;
      if (!f.params.valid()) return std::nullopt;
      std::string why;
      auto v = read_tensor(f, path, name, why);
      if (!v) problem(path, why);
      else w.bytes_read += int64_t(v->size()) * 4;
      return v;
    };
    for (int64_t t = 0; t < P; ++t) {
      const std::string& name = w.tensors[size_t(t)];
      if (progress)
        progress("weights: checkpoints " + std::to_string(wa + 1) + "-" + std::to_string(wb) + " of " +
                 std::to_string(C) + ", tensor " + std::to_string(t + 1) + "/" + std::to_string(P) + " (" + name + ")");
      const auto fin = read(C - 1, name);
      std::optional<std::vector<float>> prev = wa > 0 ? read(wa - 1, name) : std::nullopt;
      for (int64_t i = wa; i < wb; ++i) {
        auto cur = i == C - 1 ? fin : read(i, name);
        const size_t at = size_t((i - a) * P + t);
        if (cur) {
          double sq = 0.0, dot = 0.0, dl = 0.0;
          const std::vector<float>& x = *cur;
          const bool with_prev = prev && prev->size() == x.size();
          const bool with_final = fin && fin->size() == x.size();
          for (size_t k = 0; k < x.size(); ++k) {
            const double v = x[k];
            sq += v * v;
            if (with_final) dot += v * double((*fin)[k]);
            if (with_prev) {
              const double d = v - double((*prev)[k]);
              dl += d * d;
            }
          }
          w.sq_norm[at] = sq;
          w.dot_final[at] = with_final ? dot : kNaN;
          w.sq_delta[at] = with_prev ? dl : kNaN;
        }
        prev = std::move(cur);
      }
    }
  }
  // Everything to rank 0.
  gather_rows(w.sq_norm, comm);
  gather_rows(w.sq_delta, comm);
  gather_rows(w.dot_final, comm);
  int64_t bytes = w.bytes_read;
  check_mpi(MPI_Reduce(&bytes, &w.bytes_read, 1, MPI_INT64_T, MPI_SUM, 0, comm), "MPI_Reduce");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  check_mpi(MPI_Reduce(&secs, &w.seconds, 1, MPI_DOUBLE, MPI_MAX, 0, comm), "MPI_Reduce");
  std::vector<std::string> mine;
  for (const auto& p : problems) mine.push_back(p.dump());
  const std::vector<std::string> all = gather_strings(mine, comm);
  if (rank == 0)
    for (const std::string& text : all) {
      const auto p = nlohmann::json::parse(text);
      w.problems.push_back({p["path"], p["reason"]});
    }
  return w;
}

}  // namespace llmpi
