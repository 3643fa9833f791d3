#pragma once
// Collectives: the communication operations of one process group, on Tensors. Two
// implementations sit behind this interface: MpiCollectives (host buffers; parallel/
// mpi_collectives.h) and NcclCollectives (device buffers, CUDA builds; parallel/
// nccl_collectives.h). It names no MPI type, so model and
// training code are written once against it.
//
// Contract, for every implementation:
//  - Every member of the group calls the same collectives in the same order with tensors
//    of the same dtype and element count (a collective is a rendezvous).
//  - Tensors are contiguous; dtypes f32, f64, i32 (bf16: data movement only, no reductions
//    on host yet). Element counts may exceed 2^31 (implementations split large messages).
//  - Equal chunks: reduce_scatter / all_gather split the flat `full` tensor into size()
//    consecutive chunks of equal element count; chunk r belongs to rank r.
//  - A failed operation ends the whole job (abort_job) with the rank and the cause; no rank
//    is ever left waiting and no error is returned to the caller.
#include <cstdint>
#include <memory>
#include <span>

#include "core/tensor.h"
#include "parallel/collective_observer.h"

namespace llmpi {

enum class ReduceOp : uint8_t { sum, max };
const char* reduce_op_name(ReduceOp op);

// A non-blocking operation in flight. Move-only; waits on destruction if nobody waited, so
// a buffer can never be released while the network still writes into it.
class Request {
 public:
  // What an implementation keeps for one operation (e.g. MPI_Request handles).
  struct Impl {
    virtual ~Impl() = default;
    virtual void wait() = 0;  // blocks until complete; aborts the job on error
    // Progresses the operation without blocking; true once it is complete (then wait()
    // returns at once). Default: completes it (implementations that cannot poll).
    virtual bool test() {
      wait();
      return true;
    }
  };

  Request() = default;
  explicit Request(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
  Request(Request&&) noexcept = default;
  Request& operator=(Request&& o) noexcept {
    if (this != &o) {
      wait();
      impl_ = std::move(o.impl_);
    }
    return *this;
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  ~Request() { wait(); }

  // Idempotent: the first call completes the operation, later calls return at once.
  void wait() {
    if (impl_) {
      impl_->wait();
      impl_.reset();
    }
  }
  bool pending() const { return impl_ != nullptr; }
  // Progresses the operation (MPI: MPI_Testall); true, and no longer pending, once complete.
  bool test() {
    if (impl_ && impl_->test()) impl_.reset();
    return !impl_;
  }

 private:
  std::unique_ptr<Impl> impl_;
};

// Completes every request (in order).
void wait_all(std::span<Request> requests);

class Collectives {
 public:
  virtual ~Collectives() = default;

  virtual int rank() const = 0;  // this process's rank in the group, 0 ≤ rank < size
  virtual int size() const = 0;
  virtual Device device() const = 0;  // where the tensors it accepts live

  // t ← op over ranks of t (in place; every rank gets the result).
  virtual void all_reduce(const Tensor& t, ReduceOp op = ReduceOp::sum) = 0;
  // out ← Σ_ranks chunk rank() of `full`; full.numel() == size() · out.numel().
  // out must not overlap full.
  virtual void reduce_scatter(const Tensor& out, const Tensor& full) = 0;
  // chunk r of `full` ← `in` of rank r; full.numel() == size() · in.numel().
  // `in` may be exactly chunk rank() of `full` (in place) or disjoint from it.
  virtual void all_gather(const Tensor& full, const Tensor& in) = 0;
  // t ← t of rank `root`.
  virtual void broadcast(const Tensor& t, int root) = 0;
  // Point-to-point, blocking. The receiver's tensor must match the sender's element count.
  virtual void send(const Tensor& t, int dst, int tag = 0) = 0;
  virtual void recv(const Tensor& t, int src, int tag = 0) = 0;
  // Point-to-point, non-blocking: the tensor must stay alive until the Request completes.
  [[nodiscard]] virtual Request isend(const Tensor& t, int dst, int tag = 0) = 0;
  [[nodiscard]] virtual Request irecv(const Tensor& t, int src, int tag = 0) = 0;
  virtual void barrier() = 0;
  // Non-blocking reductions (sum), for overlapping them with compute: `t` must stay alive
  // and untouched until the Request completes. Requests of one group complete in any order
  // but every rank starts them in the same order. ireduce: rank `root`'s t ← Σ over ranks;
  // the other ranks' t is unspecified afterwards. The defaults run the blocking all_reduce
  // and return a completed Request (device collectives: ordered on their stream already);
  // MpiCollectives overrides both with MPI_Iallreduce and MPI_Ireduce.
  [[nodiscard]] virtual Request iall_reduce(const Tensor& t) {
    all_reduce(t, ReduceOp::sum);
    return Request();
  }
  [[nodiscard]] virtual Request ireduce(const Tensor& t, int root) {
    (void)root;
    all_reduce(t, ReduceOp::sum);
    return Request();
  }
  // Non-blocking all_gather (same shapes and in-place rule as all_gather): `full` and `in`
  // must stay alive, `in` untouched and `full` unread, until the Request completes. The
  // default runs the blocking all_gather (device collectives: stream-ordered already);
  // MpiCollectives overrides it with MPI_Iallgather.
  [[nodiscard]] virtual Request iall_gather(const Tensor& full, const Tensor& in) {
    all_gather(full, in);
    return Request();
  }

  // Convenience for host scalars (loss, token counts, norms): the reduced value. A device
  // implementation must accept this one host tensor (staging it through the device).
  template <class T>
  T all_reduce_value(T value, ReduceOp op = ReduceOp::sum);

  // The device work enqueued by this group so far, as something that says when it has
  // finished (NcclCollectives: an event recorded on its stream); null when every operation
  // returns with its work done (MPI). ObservedCollectives reports it to the watchdog.
  virtual std::shared_ptr<Completion> completion() { return nullptr; }
};

template <class T>
T Collectives::all_reduce_value(T value, ReduceOp op) {
  Tensor t{&value, Shape{1}, dtype_of<T>::value, Device::host};
  all_reduce(t, op);
  return value;
}

}  // namespace llmpi
