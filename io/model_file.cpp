#include "io/model_file.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "backend/backend.h"
#include "core/agreement.h"
#include "core/error.h"
#include "core/text_file.h"
#include "io/hdf5.h"
#include "io/tensor_file.h"

namespace llmpi {
namespace {

// Host f32 staging of the store's master parameters (the store may live on a device or be
// f64 in tests). Returns a view into `staging` when a copy was needed.
const float* host_f32(Backend& be, const Tensor& flat, std::vector<float>& staging) {
  if (flat.device == Device::host && flat.dtype == DType::f32) return flat.ptr<float>();
  staging.resize(size_t(flat.numel()));
  Tensor dst{staging.data(), Shape{flat.numel()}, DType::f32, Device::host};
  be.copy(dst, flat);
  be.synchronize();
  return staging.data();
}

std::vector<TensorSlab> slabs_of(const ParamStore& store, float* base, bool owner) {
  std::vector<TensorSlab> slabs;
  for (const ParamInfo& p : store.params())  // a replica's twin on another rank writes it
    slabs.push_back(param_slab(p, base + p.offset, owner && !p.replica));
  return slabs;
}

int comm_rank(MPI_Comm comm) {
  int r = 0;
  if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &r);
  return r;
}

}  // namespace

TensorSlab param_slab(const ParamInfo& p, float* data, bool owner) {
  TensorSlab s;
  s.name = p.name;
  for (int d = 0; d < p.global_shape.ndim; ++d) {
    s.global_shape.push_back(p.global_shape[d]);
    s.local_shape.push_back(p.local_shape[d]);
    s.offset.push_back(p.local_start[d]);
  }
  s.data = data;
  s.owner = owner;
  return s;
}

TensorSlab param_range_slab(const ParamInfo& p, int64_t b, int64_t e, float* data, bool owner) {
  TensorSlab s = param_slab(p, data, owner);
  s.flat_offset = b;
  s.flat_count = e - b;
  return s;
}

void save_model_file(const std::string& path, MPI_Comm comm, Backend& be,
                     const ParamStore& store, const ModelFileMeta& meta, bool owner) {
  std::vector<float> staging;
  float* base = const_cast<float*>(host_f32(be, store.master(), staging));
  const std::string tmp = temporary_of(path);
  {
    h5::Id file = h5::create_file(tmp, comm);
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    write_file_meta(file, meta,
                    double(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()) / 1e3,
                    tmp);
    h5::Id params = h5::create_group(file, "params", tmp);
    write_tensors(params, comm, slabs_of(store, base, owner), tmp);
  }
  if (comm != MPI_COMM_NULL) MPI_Barrier(comm);
  // Rank 0 renames; its verdict is agreed (core/agreement.h), so a failure ends every rank here.
  agreed(comm, [&] {
    if (comm_rank(comm) != 0) return;
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
      std::error_code ignored;
      std::filesystem::remove(tmp, ignored);  // ours: nothing half-finished stays behind
      user_error(path, ": cannot rename the finished file from ", tmp, ": ", ec.message());
    }
  });
}

ModelFileMeta read_model_meta(const std::string& path) {
  h5::Id file = h5::open_file(path, MPI_COMM_NULL);
  return read_file_meta(file, path);
}

void load_model_params(const std::string& path, MPI_Comm comm, Backend& be, ParamStore& store,
                       bool verify) {
  const Tensor& flat = store.master();
  const bool direct = flat.device == Device::host && flat.dtype == DType::f32;
  std::vector<float> staging(direct ? 0 : size_t(flat.numel()));
  float* base = direct ? flat.ptr<float>() : staging.data();
  {
    h5::Id file = h5::open_file(path, comm);
    h5::Id params = h5::open_group(file, "params", path);
    std::vector<TensorSlab> slabs = slabs_of(store, base, true);
    read_tensors(params, comm, slabs, path, verify);
  }
  if (!direct) {
    Tensor src{staging.data(), Shape{flat.numel()}, DType::f32, Device::host};
    be.copy(flat, src);
    be.synchronize();
  }
}

}  // namespace llmpi
