#include "io/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "core/agreement.h"
#include "core/error.h"
#include "core/text_file.h"
#include "io/checkpoint_integrity.h"
#include "io/checkpoint_space.h"
#include "io/hdf5.h"
#include "io/model_file.h"

namespace llmpi {
namespace {

namespace fs = std::filesystem;

int rank_of(MPI_Comm comm) {
  int r = 0;
  if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &r);
  return r;
}

void barrier(MPI_Comm comm) {
  if (comm != MPI_COMM_NULL) MPI_Barrier(comm);
}

// true on every rank iff `local` is true on every rank.
bool all_true(bool local, MPI_Comm comm) {
  int v = local ? 1 : 0, all = v;
  if (comm != MPI_COMM_NULL) MPI_Allreduce(&v, &all, 1, MPI_INT, MPI_MIN, comm);
  return all == 1;
}

h5::Id collective_xfer(MPI_Comm comm) {
  h5::Id dxpl(H5Pcreate(H5P_DATASET_XFER), H5Pclose);
  if (comm != MPI_COMM_NULL) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  return dxpl;
}

template <class T>
struct H5Of;
template <>
struct H5Of<int64_t> {
  static hid_t mem() { return H5T_NATIVE_INT64; }
  static hid_t file() { return H5T_STD_I64LE; }
  static constexpr H5T_class_t kClass = H5T_INTEGER;
  static constexpr const char* kName = "int64";
};
template <>
struct H5Of<double> {
  static hid_t mem() { return H5T_NATIVE_DOUBLE; }
  static hid_t file() { return H5T_IEEE_F64LE; }
  static constexpr H5T_class_t kClass = H5T_FLOAT;
  static constexpr const char* kName = "float64";
};

// Creates an int64/float64 dataset of `dims` (collective); rank 0 writes `data`.
template <class T>
void write_array(hid_t group, const std::string& name, const std::vector<hsize_t>& dims,
                 const std::vector<T>& data, MPI_Comm comm, const std::string& file) {
  h5::Id space(H5Screate_simple(int(dims.size()), dims.data(), nullptr), H5Sclose);
  h5::Id dset(h5::check_id(H5Dcreate2(group, name.c_str(), H5Of<T>::file(), space, H5P_DEFAULT,
                                      H5P_DEFAULT, H5P_DEFAULT),
                           file, "creating dataset '" + name + "'"),
              H5Dclose);
  if (data.empty()) return;
  h5::Id fspace(H5Dget_space(dset), H5Sclose);
  const bool me = rank_of(comm) == 0;
  const hsize_t n = me ? hsize_t(data.size()) : 0;
  h5::Id mspace(H5Screate_simple(1, &n, nullptr), H5Sclose);
  if (!me) H5Sselect_none(fspace);
  h5::Id dxpl = collective_xfer(comm);
  h5::check(H5Dwrite(dset, H5Of<T>::mem(), mspace, fspace, dxpl, me ? data.data() : nullptr),
            file, "writing '" + name + "'");
}

// Reads an int64/float64 dataset `where`/`name` of rank `nd`; validates type, rank and that it
// fits in the file.
template <class T>
std::vector<T> read_array(hid_t group, const std::string& where, const std::string& name, int nd,
                          std::vector<int64_t>& dims, const std::string& file) {
  const std::string full = where + "/" + name;
  if (!h5::exists(group, name)) user_error(file, ": dataset '", full, "' is missing");
  h5::Id dset(h5::check_id(H5Dopen2(group, name.c_str(), H5P_DEFAULT), file, "opening " + full),
              H5Dclose);
  h5::Id type(h5::check_id(H5Dget_type(dset), file, "reading the type of " + full), H5Tclose);
  if (!h5::is_standard_number(type, H5Of<T>::kClass) || H5Tget_size(type) != 8)
    user_error(file, ": dataset '", full, "' is not ", H5Of<T>::kName);
  h5::Id space(h5::check_id(H5Dget_space(dset), file, "reading the shape of " + full), H5Sclose);
  if (H5Sget_simple_extent_ndims(space) != nd)
    user_error(file, ": dataset '", full, "' should have ", nd, " dimension(s)");
  std::vector<hsize_t> d(size_t(nd), 0);
  H5Sget_simple_extent_dims(space, d.data(), nullptr);
  hsize_t file_size = 0;
  h5::Id fid(H5Iget_file_id(dset), H5Fclose);
  H5Fget_filesize(fid, &file_size);
  hsize_t n = 1;
  dims.clear();
  for (hsize_t x : d) {
    if (x > file_size) user_error(file, ": dataset '", full, "' is larger than the file");
    n *= x;
    if (n > file_size) user_error(file, ": dataset '", full, "' is larger than the file");
    dims.push_back(int64_t(x));
  }
  std::vector<T> out(static_cast<size_t>(n));
  if (n > 0)
    h5::check(H5Dread(dset, H5Of<T>::mem(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), file,
              "reading '" + full + "'");
  return out;
}

void write_run_state(hid_t file, const RunState& r, MPI_Comm comm, const std::string& path) {
  LLMPI_CHECK(r.spike_loss_history.size() == r.spike_grad_history.size(), "spike history: ",
              r.spike_loss_history.size(), " losses, ", r.spike_grad_history.size(), " gradient norms");
  h5::Id g = h5::create_group(file, "run_state", path);
  h5::write_attr(g, "segment", r.segment, path);
  h5::write_attr(g, "consecutive_actions", r.consecutive_actions, path);
  h5::write_attr(g, "furthest_step", r.furthest_step, path);
  write_array(g, "skipped_steps", {hsize_t(r.skipped_steps.size())}, r.skipped_steps, comm, path);
  std::vector<double> hist;
  for (size_t i = 0; i < r.spike_loss_history.size(); ++i) {
    hist.push_back(r.spike_loss_history[i]);
    hist.push_back(r.spike_grad_history[i]);
  }
  write_array(g, "spike_history", {hsize_t(r.spike_loss_history.size()), 2}, hist, comm, path);
}

// Absent in files written before it existed: the defaults (an empty state).
RunState read_run_state(hid_t file, const std::string& path) {
  RunState r;
  if (!h5::exists(file, "run_state")) return r;
  h5::Id g = h5::open_group(file, "run_state", path);
  r.segment = h5::read_attr_int(g, "segment", path);
  r.consecutive_actions = h5::read_attr_int(g, "consecutive_actions", path);
  r.furthest_step = h5::read_attr_int(g, "furthest_step", path);
  std::vector<int64_t> dims;
  r.skipped_steps = read_array<int64_t>(g, "run_state", "skipped_steps", 1, dims, path);
  const std::vector<double> hist = read_array<double>(g, "run_state", "spike_history", 2, dims, path);
  if (dims[1] != 2) user_error(path, ": run_state/spike_history should have 2 columns");
  for (size_t i = 0; i + 1 < hist.size(); i += 2) {
    if (!std::isfinite(hist[i]) || !std::isfinite(hist[i + 1]))
      user_error(path, ": run_state/spike_history holds a non-finite value");
    r.spike_loss_history.push_back(hist[i]);
    r.spike_grad_history.push_back(hist[i + 1]);
  }
  if (r.segment < 0 || r.consecutive_actions < 0 || r.furthest_step < 0)
    user_error(path, ": run_state holds a negative count");
  return r;
}

// The AdamW state a resume continues with: its update count is at most the steps taken (a
// skipped step applies none), its hyper-parameters those AdamW accepts. A negative count
// reached the update as an internal error ("step -6 is not 1-based"); a NaN beta trained on
// NaN.
void check_optimizer(const OptimizerMeta& o, int64_t step, const std::string& path) {
  if (o.step_count < 0 || o.step_count > step)
    user_error(path, ": /optimizer attribute 'step_count' = ", o.step_count, " is outside 0..",
               step, " (the file's step)");
  const struct {
    const char* name;
    double v;
    bool ok;  // NaN fails every comparison
    const char* expected;
  } values[] = {{"beta1", o.beta1, o.beta1 >= 0 && o.beta1 < 1, "0 <= beta < 1"},
                {"beta2", o.beta2, o.beta2 >= 0 && o.beta2 < 1, "0 <= beta < 1"},
                {"eps", o.eps, o.eps > 0 && std::isfinite(o.eps), "a finite eps > 0"},
                {"weight_decay", o.weight_decay, o.weight_decay >= 0 && std::isfinite(o.weight_decay),
                 "a finite value >= 0"}};
  for (const auto& x : values)
    if (!x.ok)
      user_error(path, ": /optimizer attribute '", x.name, "' = ", x.v, " is out of range (expected ",
                 x.expected, ")");
}

void write_meta(hid_t file, hid_t opt_group, hid_t data_group, const CheckpointMeta& m,
                double created, MPI_Comm comm, const std::string& path) {
  LLMPI_CHECK(m.kind == "checkpoint", "a checkpoint's kind is \"", m.kind, "\"");
  write_file_meta(file, m, created, path);
  h5::write_attr(opt_group, "step_count", m.optimizer.step_count, path);
  h5::write_attr(opt_group, "beta1", m.optimizer.beta1, path);
  h5::write_attr(opt_group, "beta2", m.optimizer.beta2, path);
  h5::write_attr(opt_group, "eps", m.optimizer.eps, path);
  h5::write_attr(opt_group, "weight_decay", m.optimizer.weight_decay, path);
  const DataMeta& d = m.data;
  LLMPI_CHECK(d.global_batch >= 0 && d.step_samples.size() == d.steps.size() * size_t(d.global_batch),
              "data mapping: ", d.step_samples.size(), " sample indices for ", d.steps.size(),
              " steps of ", d.global_batch);
  h5::write_attr(data_group, "seed", uint64_t(d.seed), path);
  h5::write_attr(data_group, "samples_consumed", d.samples_consumed, path);
  h5::write_attr(data_group, "global_batch", d.global_batch, path);
  write_array(data_group, "steps", {hsize_t(d.steps.size())}, d.steps, comm, path);
  write_array(data_group, "step_samples", {hsize_t(d.steps.size()), hsize_t(d.global_batch)},
              d.step_samples, comm, path);
  write_run_state(file, m.run, comm, path);
}

CheckpointMeta read_meta(hid_t file, const std::string& path, bool mapping) {
  CheckpointMeta m;
  static_cast<ModelFileMeta&>(m) = read_file_meta(file, path);
  if (m.kind != "checkpoint")
    user_error(path, ": kind is \"", m.kind, "\", expected \"checkpoint\" (a model file has no "
               "optimizer state or data position to resume from)");
  h5::Id opt = h5::open_group(file, "optimizer", path);
  m.optimizer.step_count = h5::read_attr_int(opt, "step_count", path);
  m.optimizer.beta1 = h5::read_attr_double(opt, "beta1", path);
  m.optimizer.beta2 = h5::read_attr_double(opt, "beta2", path);
  m.optimizer.eps = h5::read_attr_double(opt, "eps", path);
  m.optimizer.weight_decay = h5::read_attr_double(opt, "weight_decay", path);
  check_optimizer(m.optimizer, m.step, path);
  h5::Id data = h5::open_group(file, "data", path);
  DataMeta& d = m.data;
  d.seed = h5::read_attr_uint(data, "seed", path);
  d.samples_consumed = h5::read_attr_int(data, "samples_consumed", path);
  d.global_batch = h5::read_attr_int(data, "global_batch", path);
  if (d.samples_consumed < 0 || d.global_batch < 0)
    user_error(path, ": negative data position or global batch");
  if (mapping) {
    std::vector<int64_t> sd, ssd;
    d.steps = read_array<int64_t>(data, "data", "steps", 1, sd, path);
    d.step_samples = read_array<int64_t>(data, "data", "step_samples", 2, ssd, path);
    if (ssd[0] != sd[0] || ssd[1] != d.global_batch)
      user_error(path, ": data/step_samples has shape [", ssd[0], ", ", ssd[1], "], expected [",
                 sd[0], ", ", d.global_batch, "]");
    for (int64_t s : d.steps)
      if (s < 1 || s > m.step)
        user_error(path, ": data/steps holds step ", s, ", outside 1..", m.step, " (the file's step)");
    for (int64_t x : d.step_samples)
      if (x < 0) user_error(path, ": data/step_samples holds a negative sample index ", x);
  }
  m.run = read_run_state(file, path);
  return m;
}

// Structure: metadata, every tensor f32 and within the file, m/v named after parameters with
// their shapes, the data mapping consistent. Throws UserError.
void check_structure(hid_t file, const std::string& path) {
  read_meta(file, path, /*mapping=*/true);
  h5::Id params = h5::open_group(file, "params", path);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const TensorEntry& e : list_tensors(params, path)) {
    std::vector<int64_t> dims;
    open_f32_dataset(params, e.name, path, dims);
    shapes[e.name] = dims;
  }
  if (shapes.empty()) user_error(path, ": /params holds no tensors");
  std::set<std::string> names[2];
  const char* moments[2] = {"optimizer/m", "optimizer/v"};
  for (int k = 0; k < 2; ++k) {
    h5::Id g = h5::open_group(file, moments[k], path);
    for (const TensorEntry& e : list_tensors(g, path)) {
      std::vector<int64_t> dims;
      open_f32_dataset(g, e.name, path, dims);
      auto it = shapes.find(e.name);
      if (it == shapes.end())
        user_error(path, ": ", moments[k], "/", e.name, " has no parameter of that name");
      if (it->second != dims)
        user_error(path, ": ", moments[k], "/", e.name, " does not have its parameter's shape");
      names[k].insert(e.name);
    }
  }
  if (names[0] != names[1]) user_error(path, ": optimizer/m and optimizer/v name different tensors");
}


}  // namespace

void save_checkpoint(const std::string& path, MPI_Comm comm, const CheckpointSlabs& slabs,
                     const CheckpointMeta& meta, const SaveOptions& opt) {
  const std::string tmp = temporary_of(path);
  const int rank = rank_of(comm);
  double created = double(std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count()) /
                   1e3;
  if (comm != MPI_COMM_NULL) MPI_Bcast(&created, 1, MPI_DOUBLE, 0, comm);
  // A full disk is found here, before HDF5 is entered: inside HDF5's collective calls one
  // rank's failed write can leave the others waiting. The verdict is the same on every rank.
  const std::string no_room =
      reserve_checkpoint_space(tmp, estimated_checkpoint_bytes(slabs, meta, comm), comm);
  if (!no_room.empty()) user_error("saving checkpoint ", path, " failed: ", no_room);
  const InjectedDiskFull fills_up(rank);  // test hook: off unless LLMPI_TEST_DISK_FULL is set
  std::string failure;
  try {
    {
      h5::Id file = h5::create_file(tmp, comm, kIntegrityBlock);
      h5::Id params = h5::create_group(file, "params", tmp);
      h5::Id opt_group = h5::create_group(file, "optimizer", tmp);
      h5::Id m = h5::create_group(opt_group, "m", tmp);
      h5::Id v = h5::create_group(opt_group, "v", tmp);
      h5::Id data = h5::create_group(file, "data", tmp);
      write_meta(file, opt_group, data, meta, created, comm, tmp);
      write_tensors(params, comm, slabs.params, tmp);
      write_tensors(m, comm, slabs.m, tmp);
      write_tensors(v, comm, slabs.v, tmp);
    }  // every handle closed: the file is complete on disk
    barrier(comm);
    stamp_integrity(tmp, comm);
    std::string why;
    {
      h5::Id file = h5::open_file(tmp, comm);
      try {
        check_structure(file, tmp);
      } catch (const UserError& e) {
        why = e.what();
      }
      const bool structure_ok = all_true(why.empty(), comm);
      if (!structure_ok && why.empty()) why = "verification failed on another rank";
      if (structure_ok && opt.verify_tensors) {
        const char* groups[3] = {"params", "optimizer/m", "optimizer/v"};
        for (const char* g : groups) {
          h5::Id grp = h5::open_group(file, g, tmp);
          for (const std::string& bad : verify_tensor_checksums(grp, comm, tmp))
            why += std::string(why.empty() ? "" : "; ") + g + "/" + bad;
        }
      }
    }
    if (!why.empty()) failure = tmp + ": the written checkpoint does not verify: " + why;
  } catch (const UserError& e) {
    failure = e.what();
  }
  if (!all_true(failure.empty(), comm)) {
    if (rank == 0) fs::remove(tmp);
    barrier(comm);
    user_error("saving checkpoint ", path, " failed: ",
               failure.empty() ? "an error on another rank" : failure);
  }
  int ok = 1;
  std::string err;
  if (rank == 0) {
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) {
      ok = 0;
      err = ec.message();
    } else {  // make the rename durable
      const int dfd = ::open(fs::path(path).parent_path().empty()
                                 ? "."
                                 : fs::path(path).parent_path().c_str(),
                             O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
      }
    }
  }
  if (comm != MPI_COMM_NULL) MPI_Bcast(&ok, 1, MPI_INT, 0, comm);
  if (!ok) user_error(path, ": cannot rename the finished checkpoint from ", tmp, ": ", err);
}

CheckpointMeta load_checkpoint(const std::string& path, MPI_Comm comm, CheckpointSlabs& slabs) {
  const std::string why = check_integrity(path, comm);
  if (!why.empty()) user_error(path, ": ", why);
  h5::Id file = h5::open_file(path, comm);
  CheckpointMeta meta = read_meta(file, path, /*mapping=*/true);
  h5::Id params = h5::open_group(file, "params", path);
  read_tensors(params, comm, slabs.params, path, /*verify=*/true);
  if (!slabs.m.empty() || !slabs.v.empty()) {
    h5::Id m = h5::open_group(file, "optimizer/m", path);
    h5::Id v = h5::open_group(file, "optimizer/v", path);
    read_tensors(m, comm, slabs.m, path, true);
    read_tensors(v, comm, slabs.v, path, true);
    // AdamW's second moment is a running mean of squares: a negative one (an h5py edit) made
    // sqrt(v) NaN, and the resumed run stopped on "spike skips/rollbacks without progress".
    agreed(comm, [&] {
      for (const TensorSlab& s : slabs.v) {
        int64_t negative = 0;
        for (int64_t i = 0, n = s.local_numel(); i < n; ++i) negative += s.data[i] < 0;
        if (negative > 0)
          user_error(path, ": tensor 'optimizer/v/", s.name, "' holds ", negative,
                     " negative value(s); AdamW's second moment is a mean of squares (>= 0)");
      }
    });
  }
  return meta;
}

CheckpointMeta read_checkpoint_meta(const std::string& path) {
  IntegrityHeader h;
  const std::string why = check_integrity_header(path, h);
  if (!why.empty()) user_error(path, ": ", why);
  h5::Id file = h5::open_file(path, MPI_COMM_NULL);
  return read_meta(file, path, /*mapping=*/true);
}

std::string verify_checkpoint(const std::string& path, MPI_Comm comm, bool tensors) {
  std::string why = check_integrity(path, comm);
  if (!why.empty()) return why;
  try {
    h5::Id file = h5::open_file(path, comm);
    try {
      check_structure(file, path);
    } catch (const UserError& e) {
      why = e.what();
    }
    if (!all_true(why.empty(), comm)) return why.empty() ? "is malformed (another rank)" : why;
    if (!tensors) return "";
    const char* groups[3] = {"params", "optimizer/m", "optimizer/v"};
    for (const char* g : groups) {
      h5::Id grp = h5::open_group(file, g, path);
      // Non-finite values too: load_checkpoint refuses them, so discovery falls back past them.
      for (const std::string& bad : verify_tensor_checksums(grp, comm, path, /*finite=*/true))
        why += std::string(why.empty() ? "" : "; ") + g + "/" + bad;
    }
  } catch (const UserError& e) {
    why = e.what();
  }
  return why;
}

}  // namespace llmpi
