#include "io/tensor_file.h"

#include <cstring>

#include "core/error.h"
#include "core/rng.h"

namespace llmpi {

int64_t TensorSlab::local_numel() const {
  const auto& s = local_shape.empty() ? global_shape : local_shape;
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

uint64_t checksum_term(uint64_t global_index, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return splitmix64(splitmix64(global_index) ^ (uint64_t(bits) * 0x9E3779B97F4A7C15ull));
}

uint64_t slab_checksum(const TensorSlab& s) {
  const size_t nd = s.global_shape.size();
  const auto& ls = s.local_shape.empty() ? s.global_shape : s.local_shape;
  std::vector<int64_t> off = s.offset.empty() ? std::vector<int64_t>(nd, 0) : s.offset;
  // Global strides.
  std::vector<int64_t> gstride(nd, 1);
  for (int i = int(nd) - 2; i >= 0; --i) gstride[i] = gstride[i + 1] * s.global_shape[i + 1];
  const int64_t n = s.local_numel();
  const int64_t inner = nd ? ls[nd - 1] : 1;
  uint64_t sum = 0;
  std::vector<int64_t> idx(nd, 0);  // local coordinates of the current row start
  for (int64_t start = 0; start < n; start += inner) {
    int64_t g = 0;
    for (size_t d = 0; d < nd; ++d) g += (idx[d] + off[d]) * gstride[d];
    for (int64_t j = 0; j < inner; ++j) sum += checksum_term(uint64_t(g + j), s.data[start + j]);
    for (int d = int(nd) - 2; d >= 0; --d) {  // advance the outer coordinates
      if (++idx[d] < ls[d]) break;
      idx[d] = 0;
    }
  }
  return sum;
}

namespace {

struct Selection {
  h5::Id file_space, mem_space;
};

Selection select(hid_t dset, const TensorSlab& s, bool participate, const std::string& file) {
  Selection sel;
  sel.file_space = h5::Id(H5Dget_space(dset), H5Sclose);
  const size_t nd = s.global_shape.size();
  if (!participate || s.local_numel() == 0) {
    H5Sselect_none(sel.file_space);
    sel.mem_space = h5::Id(H5Screate(H5S_NULL), H5Sclose);
    return sel;
  }
  if (nd == 0) {
    sel.mem_space = h5::Id(H5Screate(H5S_SCALAR), H5Sclose);
    return sel;
  }
  std::vector<hsize_t> start(nd), count(nd);
  const auto& ls = s.local_shape.empty() ? s.global_shape : s.local_shape;
  for (size_t d = 0; d < nd; ++d) {
    start[d] = s.offset.empty() ? 0 : hsize_t(s.offset[d]);
    count[d] = hsize_t(ls[d]);
  }
  h5::check(H5Sselect_hyperslab(sel.file_space, H5S_SELECT_SET, start.data(), nullptr,
                                count.data(), nullptr),
            file, "selecting the slab of '" + s.name + "'");
  sel.mem_space = h5::Id(H5Screate_simple(int(nd), count.data(), nullptr), H5Sclose);
  return sel;
}

h5::Id transfer_list(MPI_Comm comm) {
  h5::Id dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (comm != MPI_COMM_NULL) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  return dxpl;
}

uint64_t allreduce_sum(uint64_t v, MPI_Comm comm) {
  if (comm == MPI_COMM_NULL) return v;
  uint64_t out = 0;
  MPI_Allreduce(&v, &out, 1, MPI_UINT64_T, MPI_SUM, comm);
  return out;
}

}  // namespace

void write_tensors(hid_t group, MPI_Comm comm, const std::vector<TensorSlab>& slabs,
                   const std::string& file) {
  h5::Id dxpl = transfer_list(comm);
  for (const TensorSlab& s : slabs) {
    std::vector<hsize_t> dims(s.global_shape.begin(), s.global_shape.end());
    h5::Id space(dims.empty() ? H5Screate(H5S_SCALAR)
                              : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    h5::Id dset(h5::check_id(H5Dcreate2(group, s.name.c_str(), H5T_IEEE_F32LE, space,
                                        H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                             file, "creating dataset '" + s.name + "'"),
                H5Dclose);
    Selection sel = select(dset, s, s.owner, file);
    h5::check(H5Dwrite(dset, H5T_NATIVE_FLOAT, sel.mem_space, sel.file_space, dxpl,
                       s.owner ? s.data : nullptr),
              file, "writing '" + s.name + "'");
    const uint64_t sum = allreduce_sum(s.owner ? slab_checksum(s) : 0, comm);
    h5::write_attr(dset, "checksum", sum, file);
  }
}

void read_tensors(hid_t group, MPI_Comm comm, std::vector<TensorSlab>& slabs,
                  const std::string& file, bool verify) {
  h5::Id dxpl = transfer_list(comm);
  for (TensorSlab& s : slabs) {
    if (!h5::exists(group, s.name)) user_error(file, ": tensor '", s.name, "' is missing");
    h5::Id dset(h5::check_id(H5Dopen2(group, s.name.c_str(), H5P_DEFAULT), file,
                             "opening '" + s.name + "'"),
                H5Dclose);
    h5::Id type(H5Dget_type(dset), H5Tclose);
    if (H5Tget_class(type) != H5T_FLOAT)
      user_error(file, ": tensor '", s.name, "' is not floating point");
    h5::Id space(H5Dget_space(dset), H5Sclose);
    const int nd = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(nd > 0 ? nd : 0);
    if (nd > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    bool same = nd >= 0 && size_t(nd) == s.global_shape.size();
    for (size_t d = 0; same && d < dims.size(); ++d) same = int64_t(dims[d]) == s.global_shape[d];
    if (!same) {
      std::string got = "[", want = "[";
      for (size_t d = 0; d < dims.size(); ++d) got += (d ? ", " : "") + std::to_string(dims[d]);
      for (size_t d = 0; d < s.global_shape.size(); ++d)
        want += (d ? ", " : "") + std::to_string(s.global_shape[d]);
      user_error(file, ": tensor '", s.name, "' has shape ", got, "], expected ", want, "]");
    }
    Selection sel = select(dset, s, true, file);
    h5::check(H5Dread(dset, H5T_NATIVE_FLOAT, sel.mem_space, sel.file_space, dxpl, s.data),
              file, "reading '" + s.name + "'");
    if (verify) {
      if (!h5::has_attr(dset, "checksum"))
        user_error(file, ": tensor '", s.name, "' has no checksum attribute");
      const uint64_t stored = h5::read_attr_uint(dset, "checksum", file);
      const uint64_t sum = allreduce_sum(s.owner ? slab_checksum(s) : 0, comm);
      if (sum != stored)
        user_error(file, ": tensor '", s.name, "' fails its checksum (stored ", stored,
                   ", computed ", sum, "): the file is corrupt");
    }
  }
}

std::vector<TensorEntry> list_tensors(hid_t group, const std::string& file) {
  std::vector<TensorEntry> out;
  for (const std::string& name : h5::list_names(group, file)) {
    H5O_info_t info;
    if (H5Oget_info_by_name(group, name.c_str(), &info, H5P_DEFAULT) < 0 ||
        info.type != H5O_TYPE_DATASET)
      continue;
    h5::Id dset(h5::check_id(H5Dopen2(group, name.c_str(), H5P_DEFAULT), file, "opening " + name),
                H5Dclose);
    TensorEntry e;
    e.name = name;
    h5::Id space(H5Dget_space(dset), H5Sclose);
    const int nd = H5Sget_simple_extent_ndims(space);
    std::vector<hsize_t> dims(nd > 0 ? nd : 0);
    if (nd > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    e.shape.assign(dims.begin(), dims.end());
    h5::Id type(H5Dget_type(dset), H5Tclose);
    const size_t sz = H5Tget_size(type);
    switch (H5Tget_class(type)) {
      case H5T_FLOAT: e.dtype = "f" + std::to_string(8 * sz); break;
      case H5T_INTEGER: e.dtype = "i" + std::to_string(8 * sz); break;
      default: e.dtype = "other";
    }
    e.has_checksum = h5::has_attr(dset, "checksum");
    if (e.has_checksum) e.stored_checksum = h5::read_attr_uint(dset, "checksum", file);
    out.push_back(std::move(e));
  }
  return out;
}

uint64_t compute_checksum(hid_t group, const std::string& name, const std::string& file) {
  auto entries = list_tensors(group, file);
  for (const auto& e : entries) {
    if (e.name != name) continue;
    TensorSlab s;
    s.name = name;
    s.global_shape = e.shape;
    std::vector<float> buf(size_t(s.local_numel()));
    s.data = buf.data();
    std::vector<TensorSlab> one{s};
    read_tensors(group, MPI_COMM_NULL, one, file, false);
    return slab_checksum(one[0]);
  }
  user_error(file, ": no tensor '", name, "'");
}

}  // namespace llmpi
