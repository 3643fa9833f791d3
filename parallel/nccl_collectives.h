#pragma once
// NcclCollectives: the Collectives interface over NCCL, for tensors in device memory (f32,
// bf16, f64, i32; sum and max reductions for every one of them, bf16 included). One object
// per process group, built collectively from the group's MPI communicator: its rank 0 makes
// the ncclUniqueId, MPI_Bcast hands it to the group, every member calls ncclCommInitRank.
//
// Streams and ordering (the device analogue of "blocking"):
//  - Collectives and blocking send/recv are enqueued on the COMPUTE stream given at
//    construction (the backend's stream): they return to the host at once, and every op
//    enqueued after them on that stream sees their result. Host reads go through the
//    backend (which synchronizes) or synchronize().
//  - isend/irecv are posted into one pending NCCL group (no tags: messages between a pair
//    match in posting order). The group launches on the COMM stream, after everything
//    enqueued on the compute stream so far, when a Request of it is waited on, when start()
//    is called, or before any other operation — so a batch of exchanges forms one group and
//    never deadlocks. Request::wait() makes the compute stream wait for the group (no host
//    block); buffers freed stream-ordered on the compute stream afterwards are safe.
//  - A host tensor is accepted by all_reduce only (e.g. all_reduce_value): staged through
//    device memory, and the call blocks the host until the value is back.
//  - barrier() and synchronize() block the host, polling NCCL's asynchronous error state.
// Every NCCL/CUDA failure, asynchronous ones included, ends the job (abort_job) naming the
// rank, the call, the group and NCCL's error string. Requests must not outlive this object.
// Compiled in CUDA builds only (LLMPI_HAVE_CUDA); in a host-only build this header is empty.
#if defined(LLMPI_HAVE_CUDA)

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "parallel/collectives.h"
#include "parallel/communicator.h"

struct ncclComm;  // nccl.h: typedef struct ncclComm* ncclComm_t

namespace llmpi {

struct NcclOptions {
  // Host waits (barrier, synchronize, host staging) that exceed this many seconds end the
  // job naming the wait: a peer that died or diverged cannot hang it forever. 0 = no limit.
  double hang_timeout_s = 0;
};

class NcclCollectives final : public Collectives {
 public:
  // Collective over `comm` (every member calls it). The current CUDA device is the one this
  // communicator uses; `compute_stream` (not owned) must outlive this object.
  NcclCollectives(const Communicator& comm, cudaStream_t compute_stream,
                  NcclOptions options = {});
  ~NcclCollectives() override;
  NcclCollectives(const NcclCollectives&) = delete;
  NcclCollectives& operator=(const NcclCollectives&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  Device device() const override { return Device::cuda; }
  const std::string& name() const { return name_; }
  cudaStream_t compute_stream() const { return compute_; }
  cudaStream_t comm_stream() const { return comm_stream_; }

  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum) override;
  void reduce_scatter(const Tensor& out, const Tensor& full) override;
  // ncclReduce in place on the compute stream (ordered with the kernels around it, so it
  // does not overlap them yet); the returned Request is complete.
  [[nodiscard]] Request ireduce(const Tensor& t, int root) override;
  void all_gather(const Tensor& full, const Tensor& in) override;
  void broadcast(const Tensor& t, int root) override;
  // `tag` is ignored (NCCL has none): point-to-point messages between two ranks match in the
  // order they were posted, so both sides must post them in the same order.
  void send(const Tensor& t, int dst, int tag = 0) override;
  void recv(const Tensor& t, int src, int tag = 0) override;
  [[nodiscard]] Request isend(const Tensor& t, int dst, int tag = 0) override;
  [[nodiscard]] Request irecv(const Tensor& t, int src, int tag = 0) override;
  void barrier() override;
  // An event recorded now on the compute stream: done once every operation enqueued so far
  // (collectives, and point-to-point groups the compute stream already waits for) finished.
  std::shared_ptr<Completion> completion() override;

  // Launches the pending isend/irecv group now (to overlap it with compute queued next).
  void start();
  // Blocks the host until both streams have drained; aborts on any NCCL/CUDA error.
  void synchronize();
  // NCCL's version as "2.28.3".
  static std::string nccl_version();

  struct Batch;  // one launched-or-pending group of point-to-point operations

 private:
  struct P2p {
    bool send = false;
    Tensor t;
    int peer = 0;
  };

  Request post(bool send, const Tensor& t, int peer);
  void launch_pending();
  void join_p2p(const char* op);
  void check_async(const char* during);
  void wait_stream(cudaStream_t s, const char* what);
  void* staging(size_t bytes);

  std::string name_;
  int rank_ = 0, size_ = 0, device_ = 0;
  NcclOptions options_;
  ncclComm* comm_ = nullptr;
  cudaStream_t compute_ = nullptr;
  cudaStream_t comm_stream_ = nullptr;  // owned
  cudaEvent_t ready_ = nullptr;         // owned: compute → comm stream hand-over
  std::vector<P2p> pending_;
  std::shared_ptr<Batch> pending_batch_;  // the group pending_ belongs to
  std::shared_ptr<Batch> joined_;         // last launched group, not yet joined by compute
  void* staging_ = nullptr;             // owned device scratch for host tensors
  size_t staging_bytes_ = 0;
  int uncaught_at_start_ = 0;
};

}  // namespace llmpi

#endif  // LLMPI_HAVE_CUDA
