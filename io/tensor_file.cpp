// Global tensors in an HDF5 group (see tensor_file.h): the agreed list of tensors over the
// ranks, collective hyperslab transfers box by box, and checksum verification.
#include "io/tensor_file.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>

#include "core/agreement.h"
#include "core/error.h"

namespace llmpi {

namespace {
constexpr int kMaxRank = 8;
constexpr int64_t kMaxDim = int64_t(1) << 40;
constexpr int64_t kChunkElems = int64_t(1) << 22;  // 16 MiB of f32 per read in verifiers

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t d = 0; d < s.size(); ++d) out += (d ? ", " : "") + std::to_string(s[d]);
  return out + "]";
}

void check_slab_bounds(const TensorSlab& s) {
  const size_t nd = s.global_shape.size();
  if (s.is_flat()) {
    int64_t box = 1;
    for (int64_t d : (s.local_shape.empty() ? s.global_shape : s.local_shape)) box *= d;
    LLMPI_CHECK(s.flat_count >= 0 && s.flat_offset + s.flat_count <= box, "flat slab of '",
                s.name, "' outside its box");
  }
  LLMPI_CHECK(s.offset.empty() || s.offset.size() == nd, "slab '", s.name, "': offset rank");
  LLMPI_CHECK(s.local_shape.empty() || s.local_shape.size() == nd, "slab '", s.name,
              "': local_shape rank");
  for (size_t d = 0; d < nd; ++d) {
    const int64_t o = s.offset.empty() ? 0 : s.offset[d];
    const int64_t n = s.local_shape.empty() ? s.global_shape[d] : s.local_shape[d];
    LLMPI_CHECK(o >= 0 && n >= 0 && o + n <= s.global_shape[d], "slab of '", s.name,
                "' outside its tensor in dim ", d);
  }
}

// The boxes a slab covers, in its storage order (a box slab is one box; a flat range up to
// 2·ndim − 1). Each box is transferred by its own H5Dread/H5Dwrite with a regular hyperslab:
// HDF5 1.10's collective MPI-IO mishandles unions of differently shaped hyperslabs.
std::vector<Box> boxes_of(const TensorSlab& s, bool participate) {
  check_slab_bounds(s);
  if (!participate || s.local_numel() == 0) return {};
  return slab_boxes(s);
}

struct Selection {
  h5::Id file_space, mem_space;
};

// Selection of box `b` (or nothing, when b is null) of dataset `dset`.
Selection select_box(hid_t dset, const Box* b, const std::string& name, const std::string& file) {
  Selection sel;
  sel.file_space = h5::Id(H5Dget_space(dset), H5Sclose);
  if (!b) {
    H5Sselect_none(sel.file_space);
    const hsize_t zero = 0;
    sel.mem_space = h5::Id(H5Screate_simple(1, &zero, nullptr), H5Sclose);
    return sel;
  }
  if (b->start.empty()) {  // a scalar
    sel.mem_space = h5::Id(H5Screate(H5S_SCALAR), H5Sclose);
    return sel;
  }
  std::vector<hsize_t> start(b->start.begin(), b->start.end());
  std::vector<hsize_t> count(b->count.begin(), b->count.end());
  h5::check(H5Sselect_hyperslab(sel.file_space, H5S_SELECT_SET, start.data(), nullptr,
                                count.data(), nullptr),
            file, "selecting a slab of '" + name + "'");
  hsize_t n = 1;
  for (hsize_t c : count) n *= c;
  sel.mem_space = h5::Id(H5Screate_simple(1, &n, nullptr), H5Sclose);
  return sel;
}

int64_t box_numel(const Box& b) {
  int64_t n = 1;
  for (int64_t c : b.count) n *= c;
  return n;
}

// The number of transfer calls each slab needs on the busiest rank (collective calls must
// match across ranks): one all-reduce for the whole list.
std::vector<int> rounds_of(const std::vector<std::vector<Box>>& boxes, MPI_Comm comm) {
  std::vector<int> local(boxes.size()), out(boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) local[i] = std::max<int>(1, int(boxes[i].size()));
  if (comm == MPI_COMM_NULL || boxes.empty()) return local;
  MPI_Allreduce(local.data(), out.data(), int(local.size()), MPI_INT, MPI_MAX, comm);
  return out;
}

// Transfers slab data (read or write) box by box, `rounds` calls in all. Every round is a
// collective call: after a failed one (a full disk) the remaining rounds are still made, so
// that no other rank waits in a round this one skipped; the first failure is thrown at the end.
void transfer(hid_t dset, const std::vector<Box>& boxes, int rounds, float* data, bool write,
              hid_t dxpl, const std::string& name, const std::string& file) {
  int64_t mem_offset = 0;
  bool failed = false;
  for (int r = 0; r < rounds; ++r) {
    const Box* b = r < int(boxes.size()) ? &boxes[size_t(r)] : nullptr;
    Selection sel = select_box(dset, b, name, file);
    float* ptr = b ? data + mem_offset : data;
    const herr_t st = write ? H5Dwrite(dset, H5T_NATIVE_FLOAT, sel.mem_space, sel.file_space, dxpl, ptr)
                            : H5Dread(dset, H5T_NATIVE_FLOAT, sel.mem_space, sel.file_space, dxpl, ptr);
    failed = failed || st < 0;
    if (b) mem_offset += box_numel(*b);
  }
  if (failed) h5::check(-1, file, (write ? "writing '" : "reading '") + name + "'");
}

void comm_rank_size(MPI_Comm comm, int& rank, int& size) {
  rank = 0;
  size = 1;
  if (comm == MPI_COMM_NULL) return;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
}

// Two counters summed over comm in one all-reduce (MPI_COMM_NULL: this process alone).
using Sums = std::array<uint64_t, 2>;
Sums sum_over(MPI_Comm comm, Sums local) {
  Sums out = local;
  if (comm != MPI_COMM_NULL) MPI_Allreduce(local.data(), out.data(), 2, MPI_UINT64_T, MPI_SUM, comm);
  return out;
}

// One decision on every rank after each tensor's transfer: sums [checksum term, failures]
// over comm; `failure` is this rank's message ("" when its part went through). Throws the
// same UserError on every rank when any failed — the lowest failing rank's message, which
// names the cause (the disk), so that whichever rank reports it says why — and all leave the
// write together.
uint64_t agree_after_transfer(uint64_t checksum, const std::string& failure, MPI_Comm comm,
                              const std::string& name, const std::string& file) {
  const Sums out = sum_over(comm, {checksum, failure.empty() ? 0u : 1u});
  if (out[1] == 0) return out[0];
  const AgreedFailure a = agree_on_failure(comm, failure);
  throw UserError(a ? a.text() : file + ": writing tensor '" + name + "' failed");
}

h5::Id transfer_list(MPI_Comm comm) {
  h5::Id dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (comm != MPI_COMM_NULL) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  return dxpl;
}

// The NaN and infinite values of a slab's local elements.
uint64_t count_nonfinite(const TensorSlab& s) {
  uint64_t n = 0;
  for (int64_t i = 0, e = s.local_numel(); i < e; ++i) n += !std::isfinite(s.data[i]);
  return n;
}




// Every rank must take part in every dataset's collective create and transfer, but ranks of
// different pipeline stages hold different tensors. The union of (name, global shape) over
// comm, in a canonical order (rank 0's list, then the names rank 1 adds, ...), with an empty
// non-owner slab for each tensor this rank does not hold, is the list every rank walks.
std::vector<TensorSlab> union_slabs(const std::vector<TensorSlab>& mine, MPI_Comm comm,
                                    const std::string& file) {
  int rank = 0, size = 1;
  comm_rank_size(comm, rank, size);
  if (size == 1) return mine;
  // Serialize: per slab, int64 count of name bytes, the bytes (padded to 8), rank, dims.
  std::vector<int64_t> buf;
  for (const TensorSlab& t : mine) {
    buf.push_back(int64_t(t.name.size()));
    std::vector<int64_t> packed((t.name.size() + 7) / 8, 0);
    std::memcpy(packed.data(), t.name.data(), t.name.size());
    buf.insert(buf.end(), packed.begin(), packed.end());
    buf.push_back(int64_t(t.global_shape.size()));
    buf.insert(buf.end(), t.global_shape.begin(), t.global_shape.end());
  }
  int n = int(buf.size());
  std::vector<int> counts(static_cast<size_t>(size)), displs(static_cast<size_t>(size), 0);
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm);
  for (int r = 1; r < size; ++r) displs[size_t(r)] = displs[size_t(r) - 1] + counts[size_t(r) - 1];
  std::vector<int64_t> all(size_t(displs.back() + counts.back()));
  MPI_Allgatherv(buf.data(), n, MPI_INT64_T, all.data(), counts.data(), displs.data(),
                 MPI_INT64_T, comm);
  std::map<std::string, size_t> index;  // name -> position in out
  std::vector<TensorSlab> out;
  std::map<std::string, const TensorSlab*> own;
  for (const TensorSlab& t : mine) own[t.name] = &t;
  for (int r = 0; r < size; ++r) {
    size_t p = size_t(displs[size_t(r)]);
    const size_t end = p + size_t(counts[size_t(r)]);
    while (p < end) {
      const size_t len = size_t(all[p++]);
      std::string name(len, '\0');
      std::memcpy(name.data(), all.data() + p, len);
      p += (len + 7) / 8;
      const size_t nd = size_t(all[p++]);
      std::vector<int64_t> shape(all.begin() + long(p), all.begin() + long(p + nd));
      p += nd;
      auto it = index.find(name);
      if (it != index.end()) {
        if (out[it->second].global_shape != shape)
          user_error(file, ": ranks disagree on the shape of tensor '", name, "' (",
                     shape_str(out[it->second].global_shape), " vs ", shape_str(shape), ")");
        continue;
      }
      index[name] = out.size();
      auto o = own.find(name);
      if (o != own.end()) {
        if (o->second->global_shape != shape)
          user_error(file, ": ranks disagree on the shape of tensor '", name, "'");
        out.push_back(*o->second);
      } else {
        TensorSlab empty;  // this rank holds none of it: an empty flat range, not an owner
        empty.name = name;
        empty.global_shape = shape;
        empty.flat_offset = 0;
        empty.flat_count = 0;
        empty.owner = false;
        out.push_back(std::move(empty));
      }
    }
  }
  return out;
}

}  // namespace

h5::Id open_f32_dataset(hid_t group, const std::string& name, const std::string& file,
                        std::vector<int64_t>& dims) {
  if (!h5::exists(group, name)) user_error(file, ": tensor '", name, "' is missing");
  H5O_info_t info;
  if (H5Oget_info_by_name(group, name.c_str(), &info, H5P_DEFAULT) < 0 ||
      info.type != H5O_TYPE_DATASET)
    user_error(file, ": '", name, "' is not a dataset");
  h5::Id dset(h5::check_id(H5Dopen2(group, name.c_str(), H5P_DEFAULT), file,
                           "opening '" + name + "'"),
              H5Dclose);
  h5::Id type(h5::check_id(H5Dget_type(dset), file, "reading the type of '" + name + "'"),
              H5Tclose);
  if (!h5::is_standard_number(type, H5T_FLOAT) || H5Tget_size(type) != 4)
    user_error(file, ": tensor '", name, "' is not float32");
  h5::Id space(h5::check_id(H5Dget_space(dset), file, "reading the shape of '" + name + "'"),
               H5Sclose);
  const H5S_class_t cls = H5Sget_simple_extent_type(space);
  if (cls != H5S_SIMPLE && cls != H5S_SCALAR)
    user_error(file, ": tensor '", name, "' has no valid dataspace");
  const int nd = H5Sget_simple_extent_ndims(space);
  if (nd < 0 || nd > kMaxRank)
    user_error(file, ": tensor '", name, "' has rank ", nd, " (at most ", kMaxRank, ")");
  std::vector<hsize_t> d(size_t(nd), 0);
  if (nd > 0 && H5Sget_simple_extent_dims(space, d.data(), nullptr) < 0)
    user_error(file, ": tensor '", name, "' has an unreadable shape");
  dims.assign(size_t(nd), 0);
  int64_t numel = 1;
  for (int i = 0; i < nd; ++i) {
    if (d[size_t(i)] > hsize_t(kMaxDim))
      user_error(file, ": tensor '", name, "' has an implausible dimension ", d[size_t(i)]);
    dims[size_t(i)] = int64_t(d[size_t(i)]);
    numel = dims[size_t(i)] == 0 ? 0 : (numel > kMaxDim / std::max<int64_t>(1, dims[size_t(i)])
                                            ? kMaxDim
                                            : numel * dims[size_t(i)]);
  }
  hsize_t file_size = 0;
  h5::Id fid(H5Iget_file_id(dset), H5Fclose);
  if (H5Fget_filesize(fid, &file_size) < 0 || hsize_t(numel) * 4 > file_size)
    user_error(file, ": tensor '", name, "' declares ", numel, " values, more than the file holds");
  return dset;
}

void write_tensors(hid_t group, MPI_Comm comm, const std::vector<TensorSlab>& my_slabs,
                   const std::string& file) {
  const std::vector<TensorSlab> slabs = union_slabs(my_slabs, comm, file);
  h5::Id dxpl = transfer_list(comm);
  std::vector<std::vector<Box>> boxes;
  for (const TensorSlab& s : slabs) boxes.push_back(boxes_of(s, s.owner));
  const std::vector<int> rounds = rounds_of(boxes, comm);
  for (size_t i = 0; i < slabs.size(); ++i) {
    const TensorSlab& s = slabs[i];
    std::vector<hsize_t> dims(s.global_shape.begin(), s.global_shape.end());
    h5::Id space(dims.empty() ? H5Screate(H5S_SCALAR)
                              : H5Screate_simple(int(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    h5::Id dset(h5::check_id(H5Dcreate2(group, s.name.c_str(), H5T_IEEE_F32LE, space,
                                        H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                             file, "creating dataset '" + s.name + "'"),
                H5Dclose);
    std::string failure;
    try {
      transfer(dset, boxes[i], rounds[i], s.data, /*write=*/true, dxpl, s.name, file);
    } catch (const UserError& e) {
      failure = std::string(e.what()) + " (disk full or a file-size limit?)";
    }
    const uint64_t sum = agree_after_transfer(s.owner ? slab_checksum(s) : 0, failure, comm,
                                              s.name, file);
    h5::write_attr(dset, "checksum", sum, file);
  }
}

void read_tensors(hid_t group, MPI_Comm comm, std::vector<TensorSlab>& my_slabs,
                  const std::string& file, bool verify) {
  // Copies of the caller's slabs (same data pointers) plus empty ones for the others'.
  std::vector<TensorSlab> slabs = union_slabs(my_slabs, comm, file);
  h5::Id dxpl = transfer_list(comm);
  std::vector<std::vector<Box>> boxes;
  for (const TensorSlab& s : slabs) boxes.push_back(boxes_of(s, true));
  const std::vector<int> rounds = rounds_of(boxes, comm);
  for (size_t i = 0; i < slabs.size(); ++i) {
    TensorSlab& s = slabs[i];
    std::vector<int64_t> dims;
    h5::Id dset = open_f32_dataset(group, s.name, file, dims);
    if (dims != s.global_shape)
      user_error(file, ": tensor '", s.name, "' has shape ", shape_str(dims), ", expected ",
                 shape_str(s.global_shape));
    transfer(dset, boxes[i], rounds[i], s.data, /*write=*/false, dxpl, s.name, file);
    if (verify) {
      if (!h5::has_attr(dset, "checksum"))
        user_error(file, ": tensor '", s.name, "' has no checksum attribute");
      const uint64_t stored = h5::read_attr_uint(dset, "checksum", file);
      // [checksum, non-finite values] over the owners (each element has one), one all-reduce.
      const Sums sums = sum_over(comm, {s.owner ? slab_checksum(s) : 0, s.owner ? count_nonfinite(s) : 0});
      if (sums[0] != stored)
        user_error(file, ": tensor '", s.name, "' fails its checksum (stored ", stored,
                   ", computed ", sums[0], "): the file is corrupt");
      if (sums[1] > 0)
        user_error(file, ": tensor '", s.name, "' holds ", sums[1], " non-finite value(s) (NaN or "
                   "infinity) under a matching checksum: written so (edited, or saved from a "
                   "diverged run); a model with them computes NaN, so it is not loaded");
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
    h5::Id space(h5::check_id(H5Dget_space(dset), file, "reading the shape of " + name),
                 H5Sclose);
    const int nd = H5Sget_simple_extent_ndims(space);
    if (nd < 0 || nd > kMaxRank) user_error(file, ": tensor '", name, "' has rank ", nd);
    std::vector<hsize_t> dims(static_cast<size_t>(nd));
    if (nd > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    e.shape.assign(dims.begin(), dims.end());
    h5::Id type(h5::check_id(H5Dget_type(dset), file, "reading the type of " + name), H5Tclose);
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

namespace {

// Checksum and non-finite count of the whole tensor `name`: this rank reads its 1/P flat share
// in chunks (the same number of collective reads on every rank), then one all-reduce.
struct TensorSum {
  uint64_t checksum = 0, nonfinite = 0;
};
TensorSum tensor_checksum(hid_t group, MPI_Comm comm, const std::string& name,
                          const std::string& file) {
  std::vector<int64_t> dims;
  h5::Id dset = open_f32_dataset(group, name, file, dims);
  int rank = 0, size = 1;
  comm_rank_size(comm, rank, size);
  TensorSlab s;
  s.name = name;
  s.global_shape = dims;
  const int64_t n = s.global_numel();
  const int64_t share = (n + size - 1) / size;
  const int64_t begin = std::min(n, share * rank), end = std::min(n, begin + share);
  const int64_t rounds = (share + kChunkElems - 1) / kChunkElems;
  std::vector<float> buf(size_t(std::min(share, kChunkElems)));
  h5::Id dxpl = transfer_list(comm);
  Sums sums = {0, 0};
  for (int64_t r = 0; r < rounds; ++r) {
    s.flat_offset = std::min(end, begin + r * kChunkElems);
    s.flat_count = std::min(end, s.flat_offset + kChunkElems) - s.flat_offset;
    s.data = buf.data();
    const std::vector<std::vector<Box>> boxes = {boxes_of(s, true)};
    const std::vector<int> rounds = rounds_of(boxes, comm);
    transfer(dset, boxes[0], rounds[0], s.data, /*write=*/false, dxpl, name, file);
    sums[0] += slab_checksum(s);
    sums[1] += count_nonfinite(s);
  }
  const Sums all = sum_over(comm, sums);
  return {all[0], all[1]};
}

}  // namespace

std::vector<std::string> verify_tensor_checksums(hid_t group, MPI_Comm comm,
                                                 const std::string& file, bool finite) {
  std::vector<std::string> bad;
  for (const TensorEntry& e : list_tensors(group, file)) {
    const TensorSum sum = tensor_checksum(group, comm, e.name, file);
    if (!e.has_checksum || sum.checksum != e.stored_checksum)
      bad.push_back(e.name + " fails its checksum");
    else if (finite && sum.nonfinite > 0)
      bad.push_back(e.name + " holds " + std::to_string(sum.nonfinite) +
                    " non-finite value(s) (NaN or infinity)");
  }
  return bad;
}

uint64_t compute_checksum(hid_t group, const std::string& name, const std::string& file,
                          uint64_t* nonfinite) {
  const TensorSum sum = tensor_checksum(group, MPI_COMM_NULL, name, file);
  if (nonfinite) *nonfinite = sum.nonfinite;
  return sum.checksum;
}

}  // namespace llmpi
