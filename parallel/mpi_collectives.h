#pragma once
// MpiCollectives: the Collectives interface over one MPI communicator, for host tensors.
// In-place forms (MPI_IN_PLACE) are used for all_reduce and for an all_gather whose input
// is already this rank's chunk of the output. MPI counts are `int`, so a message longer
// than `max_message_elems` elements (default 2^30) is sent as several calls of at most that
// many elements each — every rank splits alike, since counts match across ranks.
// Every MPI call is checked: a failure aborts the job with the rank, the call, the group's
// name and MPI's error string (parallel/communicator.h). A receive of fewer elements than
// the tensor holds also aborts: a short message is a protocol error, never silently used.
#include <cstdint>

#include "parallel/collectives.h"
#include "parallel/communicator.h"

namespace llmpi {

class MpiCollectives final : public Collectives {
 public:
  static constexpr int64_t kDefaultMaxMessageElems = int64_t{1} << 30;

  // `comm` must be valid and outlive this object (a Topology owns both).
  explicit MpiCollectives(const Communicator& comm,
                          int64_t max_message_elems = kDefaultMaxMessageElems);

  int rank() const override { return comm_.rank(); }
  int size() const override { return comm_.size(); }
  Device device() const override { return Device::host; }
  const Communicator& communicator() const { return comm_; }

  void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum) override;
  void reduce_scatter(const Tensor& out, const Tensor& full) override;
  void all_gather(const Tensor& full, const Tensor& in) override;
  void broadcast(const Tensor& t, int root) override;
  void send(const Tensor& t, int dst, int tag = 0) override;
  void recv(const Tensor& t, int src, int tag = 0) override;
  [[nodiscard]] Request isend(const Tensor& t, int dst, int tag = 0) override;
  [[nodiscard]] Request irecv(const Tensor& t, int src, int tag = 0) override;
  void barrier() override;
  [[nodiscard]] Request iall_reduce(const Tensor& t) override;
  [[nodiscard]] Request ireduce(const Tensor& t, int root) override;
  [[nodiscard]] Request iall_gather(const Tensor& full, const Tensor& in) override;

 private:
  const Communicator& comm_;
  int64_t max_count_;
};

}  // namespace llmpi
