#include "io/checkpoint_async.h"

#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace llmpi {
namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

AsyncCheckpointer::AsyncCheckpointer(MPI_Comm comm, int thread_level, bool async,
                                     std::function<void(const std::string&)> warn) {
  int rank = 0;
  if (comm != MPI_COMM_NULL) {
    MPI_Comm_dup(comm, &comm_);
    MPI_Comm_rank(comm_, &rank);
  }
  async_ = async && (comm == MPI_COMM_NULL || thread_level >= MPI_THREAD_MULTIPLE);
  if (async && !async_ && rank == 0) {
    const std::string msg =
        "checkpoint: MPI granted thread level " + std::to_string(thread_level) +
        ", below MPI_THREAD_MULTIPLE: checkpoints are saved synchronously (training waits)";
    if (warn) warn(msg);
    else std::fprintf(stderr, "llmpi: warning: %s\n", msg.c_str());
  }
}

AsyncCheckpointer::~AsyncCheckpointer() {
  try {
    wait();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llmpi: checkpoint save failed: %s\n", e.what());
  }
  if (comm_ != MPI_COMM_NULL) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
}

void AsyncCheckpointer::snapshot(const CheckpointSlabs& in) {
  std::vector<const std::vector<TensorSlab>*> src = {&in.params, &in.m, &in.v};
  std::vector<std::vector<TensorSlab>*> dst = {&slabs_.params, &slabs_.m, &slabs_.v};
  size_t k = 0;
  for (size_t g = 0; g < 3; ++g) {
    *dst[g] = *src[g];
    for (TensorSlab& s : *dst[g]) {
      if (k == buffers_.size()) buffers_.emplace_back();
      std::vector<float>& buf = buffers_[k++];
      const size_t n = s.owner ? size_t(s.local_numel()) : 0;  // replicas write nothing
      buf.resize(n);
      if (n) std::memcpy(buf.data(), s.data, n * sizeof(float));
      s.data = buf.data();
    }
  }
  buffers_.resize(k);
}

void AsyncCheckpointer::save(const std::string& path, const CheckpointSlabs& slabs,
                             const CheckpointMeta& meta, std::function<void()> on_done,
                             const SaveOptions& opt) {
  const double t0 = now_s();
  wait();
  if (!async_) {
    save_checkpoint(path, comm_, slabs, meta, opt);
    if (on_done) on_done();
    std::lock_guard<std::mutex> lock(mu_);
    stats_.saves++;
    stats_.last_stall_s = stats_.last_write_s = now_s() - t0;
    stats_.max_stall_s = std::max(stats_.max_stall_s, stats_.last_stall_s);
    stats_.total_stall_s += stats_.last_stall_s;
    return;
  }
  snapshot(slabs);
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ = true;
    stats_.saves++;
    stats_.last_stall_s = now_s() - t0;
    stats_.max_stall_s = std::max(stats_.max_stall_s, stats_.last_stall_s);
    stats_.total_stall_s += stats_.last_stall_s;
  }
  worker_ = std::thread([this, path, meta, opt, on_done = std::move(on_done)] {
    const double w0 = now_s();
    std::exception_ptr err;
    try {
      save_checkpoint(path, comm_, slabs_, meta, opt);
      if (on_done) on_done();
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu_);
    error_ = err;
    stats_.last_write_s = now_s() - w0;
    running_ = false;
  });
}

void AsyncCheckpointer::wait() {
  if (worker_.joinable()) worker_.join();
  std::exception_ptr err;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::swap(err, error_);
  }
  if (err) std::rethrow_exception(err);
}

bool AsyncCheckpointer::busy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

AsyncSaveStats AsyncCheckpointer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace llmpi
