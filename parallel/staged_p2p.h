#pragma once
// StagedP2p: a process group whose collectives run on the device (NCCL) and whose
// point-to-point messages travel through host memory over MPI, with MPI's tags.
//   isend(t): t (device) is copied into a host buffer (the call returns once the copy is
//     done), then MPI_Isend from it; the Request owns the buffer.
//   irecv(t): MPI_Irecv into a host buffer; Request::wait() completes it and copies the data
//     into t (device), so t is ready for compute enqueued after wait().
// Why: the pipeline schedule posts sends and receives asynchronously, in orders that differ
// between the two ends (and mixes activations and gradients between the same ranks under the
// interleaved schedule). NCCL point-to-point has no tags and matches in posting order; on 2 ×
// H100 (NCCL 2.28.3) the 1F1B schedule's grouped isend/irecv failed with "Message truncated:
// received 16384 bytes instead of 8192". MPI matches by (source, tag) and never mixes them.
// Cost: a device→host and a host→device copy of each activation or gradient message (one per
// micro-batch and stage boundary), small next to a stage's compute.
#include <memory>

#include "backend/backend.h"
#include "parallel/collectives.h"

namespace llmpi {

class StagedP2p final : public Collectives {
 public:
  // device: the group's device collectives; host: the same group over MPI (same ranks, same
  // order). Both and `be` must outlive this object.
  StagedP2p(Collectives& device, Collectives& host, Backend& be);

  int rank() const override { return device_.rank(); }
  int size() const override { return device_.size(); }
  Device device() const override { return device_.device(); }

  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum) override { device_.all_reduce(t, op); }
  void reduce_scatter(const Tensor& out, const Tensor& full) override {
    device_.reduce_scatter(out, full);
  }
  void all_gather(const Tensor& full, const Tensor& in) override { device_.all_gather(full, in); }
  [[nodiscard]] Request iall_gather(const Tensor& full, const Tensor& in) override {
    return device_.iall_gather(full, in);
  }
  void broadcast(const Tensor& t, int root) override { device_.broadcast(t, root); }
  void send(const Tensor& t, int dst, int tag = 0) override { isend(t, dst, tag).wait(); }
  void recv(const Tensor& t, int src, int tag = 0) override { irecv(t, src, tag).wait(); }
  [[nodiscard]] Request isend(const Tensor& t, int dst, int tag = 0) override;
  [[nodiscard]] Request irecv(const Tensor& t, int src, int tag = 0) override;
  void barrier() override { device_.barrier(); }

 private:
  Collectives& device_;
  Collectives& host_;
  Backend& be_;
};

}  // namespace llmpi
