// NcclCollectives (see the header for streams, ordering and errors). Every NCCL operation of
// one communicator is totally ordered through stream dependencies: a point-to-point group
// launched on the comm stream first waits for the compute stream (event `ready_`), and the
// next operation enqueued on the compute stream first waits for the last group (`joined_`),
// so all ranks execute the operations in their (identical) call order.
#if defined(LLMPI_HAVE_CUDA)

#include "parallel/nccl_collectives.h"

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <thread>

#include "core/error.h"
#include "core/runtime.h"

namespace llmpi {

namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::i32: return ncclInt32;
    case DType::u8: return ncclUint8;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) { return op == ReduceOp::sum ? ncclSum : ncclMax; }

const char* bytes(const Tensor& t) { return static_cast<const char*>(t.data); }

bool overlap(const Tensor& a, const Tensor& b) {
  return bytes(a) < bytes(b) + b.bytes() && bytes(b) < bytes(a) + a.bytes();
}

void check_device_tensor(const Tensor& t, const char* op) {
  LLMPI_CHECK(t.device == Device::cuda, op, ": NcclCollectives takes device tensors, got a ",
              "host tensor of shape ", t.shape.str());
  LLMPI_CHECK(t.data != nullptr || t.numel() == 0, op, ": null tensor of shape ", t.shape.str());
}

// "ncclAllReduce on group 'dp' (rank 1 of 2, device 1)"
std::string where(const char* call, const std::string& group, int rank, int size, int device) {
  return detail::concat(call, " on group '", group, "' (rank ", rank, " of ", size, ", device ",
                        device, ")");
}

}  // namespace

// One group of point-to-point operations: pending until launched, then `done` is recorded
// on the comm stream after it. Shared by the Requests of the group and by the owner.
struct NcclCollectives::Batch {
  NcclCollectives* owner = nullptr;
  cudaEvent_t done = nullptr;
  bool launched = false;

  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  explicit Batch(NcclCollectives* o) : owner(o) {
    const cudaError_t e = cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
    if (e != cudaSuccess)
      abort_job(detail::concat(where("cudaEventCreate", o->name(), o->rank(), o->size(), -1),
                               ": ", cudaGetErrorString(e))
                    .c_str());
  }
  ~Batch() {
    if (done) cudaEventDestroy(done);
  }
};

namespace {

struct NcclRequest final : Request::Impl {
  std::shared_ptr<NcclCollectives::Batch> batch;

  explicit NcclRequest(std::shared_ptr<NcclCollectives::Batch> b) : batch(std::move(b)) {}
  void wait() override {
    NcclCollectives& c = *batch->owner;
    if (!batch->launched) c.start();
    const cudaError_t e = cudaStreamWaitEvent(c.compute_stream(), batch->done, 0);
    if (e != cudaSuccess)
      abort_job(detail::concat(where("cudaStreamWaitEvent (Request::wait)", c.name(), c.rank(),
                                     c.size(), -1),
                               ": ", cudaGetErrorString(e))
                    .c_str());
  }
};

// An event on the compute stream; queried from any thread (the watchdog's).
struct StreamCompletion final : Completion {
  cudaEvent_t event = nullptr;
  ~StreamCompletion() override {
    if (event) cudaEventDestroy(event);
  }
  bool done() override { return cudaEventQuery(event) != cudaErrorNotReady; }
};

}  // namespace

#define LLMPI_NCCL_CHECK(call)                                                           \
  do {                                                                                   \
    const ncclResult_t llmpi_r_ = (call);                                                \
    if (llmpi_r_ != ncclSuccess) {                                                       \
      const char* llmpi_last_ = ncclGetLastError(comm_);                                \
      abort_job(detail::concat(where(#call, name_, rank_, size_, device_), ": ",         \
                               ncclGetErrorString(llmpi_r_),                             \
                               (llmpi_last_ && *llmpi_last_) ? " — " : "",               \
                               llmpi_last_ ? llmpi_last_ : "")                           \
                    .c_str());                                                           \
    }                                                                                    \
  } while (0)

#define LLMPI_NCCL_CUDA(call)                                                            \
  do {                                                                                   \
    const cudaError_t llmpi_e_ = (call);                                                 \
    if (llmpi_e_ != cudaSuccess)                                                         \
      abort_job(detail::concat(where(#call, name_, rank_, size_, device_), ": ",         \
                               cudaGetErrorName(llmpi_e_), ": ",                         \
                               cudaGetErrorString(llmpi_e_))                             \
                    .c_str());                                                           \
  } while (0)

NcclCollectives::NcclCollectives(const Communicator& comm, cudaStream_t compute_stream,
                                 NcclOptions options)
    : options_(options), compute_(compute_stream),
      uncaught_at_start_(std::uncaught_exceptions()) {
  LLMPI_CHECK(comm.valid(), "NcclCollectives over a null communicator");
  name_ = comm.name();
  rank_ = comm.rank();
  size_ = comm.size();
  LLMPI_NCCL_CUDA(cudaGetDevice(&device_));

  ncclUniqueId id{};
  if (rank_ == 0) LLMPI_NCCL_CHECK(ncclGetUniqueId(&id));
  check_mpi(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, comm.get()), "MPI_Bcast(ncclUniqueId)",
            &comm);
  ncclComm_t c = nullptr;
  LLMPI_NCCL_CHECK(ncclCommInitRank(&c, size_, id, rank_));
  comm_ = c;

  LLMPI_NCCL_CUDA(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
  LLMPI_NCCL_CUDA(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
}

NcclCollectives::~NcclCollectives() {
  const bool unwinding = std::uncaught_exceptions() > uncaught_at_start_;
  if (!pending_.empty())
    std::fprintf(stderr, "llmpi: rank %d: NcclCollectives '%s' destroyed with %zu point-to-point "
                 "operations never started (a Request outlived its collectives)\n",
                 rank_, name_.c_str(), pending_.size());
  if (unwinding || !pending_.empty()) {
    // An exception is in flight (or a protocol bug): peers may never match our operations,
    // so tear down without waiting for them.
    ncclCommAbort(comm_);
  } else {
    wait_stream(comm_stream_, "draining the comm stream before ncclCommDestroy");
    wait_stream(compute_, "draining the compute stream before ncclCommDestroy");
    const ncclResult_t r = ncclCommDestroy(comm_);
    if (r != ncclSuccess)
      std::fprintf(stderr, "llmpi: rank %d: ncclCommDestroy on group '%s': %s\n", rank_,
                   name_.c_str(), ncclGetErrorString(r));
  }
  comm_ = nullptr;
  joined_.reset();
  pending_batch_.reset();
  // Owned CUDA resources: failures here can only be reported, never thrown.
  if (staging_) cudaFreeAsync(staging_, compute_);
  if (ready_) cudaEventDestroy(ready_);
  if (comm_stream_) cudaStreamDestroy(comm_stream_);
}

std::string NcclCollectives::nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "unknown";
  return detail::concat(v / 10000, ".", (v / 100) % 100, ".", v % 100);
}

void NcclCollectives::check_async(const char* during) {
  ncclResult_t async = ncclSuccess;
  LLMPI_NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
  if (async != ncclSuccess && async != ncclInProgress) {
    const char* last = ncclGetLastError(comm_);
    abort_job(detail::concat(where("NCCL asynchronous error", name_, rank_, size_, device_),
                             " (seen ", during, "): ", ncclGetErrorString(async),
                             (last && *last) ? " — " : "", last ? last : "")
                  .c_str());
  }
}

void NcclCollectives::wait_stream(cudaStream_t s, const char* what) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  for (;;) {
    const cudaError_t e = cudaStreamQuery(s);
    if (e == cudaSuccess) return;
    if (e != cudaErrorNotReady) LLMPI_NCCL_CUDA(e);
    check_async(what);
    const double waited = std::chrono::duration<double>(clock::now() - t0).count();
    if (options_.hang_timeout_s > 0 && waited > options_.hang_timeout_s)
      abort_job(detail::concat(where("NCCL wait", name_, rank_, size_, device_), ": ", what,
                               " did not finish within ", options_.hang_timeout_s,
                               " s (hang_timeout_s): a peer died or called other operations")
                    .c_str());
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void NcclCollectives::synchronize() {
  launch_pending();
  wait_stream(comm_stream_, "synchronize (comm stream)");
  wait_stream(compute_, "synchronize (compute stream)");
}

void* NcclCollectives::staging(size_t nbytes) {
  if (nbytes > staging_bytes_) {
    const size_t grow = std::max<size_t>(nbytes, 256);
    if (staging_) LLMPI_NCCL_CUDA(cudaFreeAsync(staging_, compute_));  // stream-ordered
    staging_ = nullptr;
    LLMPI_NCCL_CUDA(cudaMallocAsync(&staging_, grow, compute_));
    staging_bytes_ = grow;
  }
  return staging_;
}

// Before an operation on the compute stream: every earlier point-to-point group is launched
// and the compute stream waits for it (total order of this communicator's operations).
void NcclCollectives::join_p2p(const char* op) {
  check_async(op);
  launch_pending();
  if (joined_) {
    LLMPI_NCCL_CUDA(cudaStreamWaitEvent(compute_, joined_->done, 0));
    joined_.reset();
  }
}

void NcclCollectives::all_reduce(const Tensor& t, ReduceOp op) {
  LLMPI_CHECK(t.data != nullptr || t.numel() == 0, "all_reduce: null tensor");
  join_p2p("all_reduce");
  const size_t n = static_cast<size_t>(t.numel());
  if (t.device == Device::host) {
    void* d = staging(t.bytes());
    LLMPI_NCCL_CUDA(cudaMemcpyAsync(d, t.data, t.bytes(), cudaMemcpyHostToDevice, compute_));
    LLMPI_NCCL_CHECK(ncclAllReduce(d, d, n, nccl_type(t.dtype), nccl_op(op), comm_, compute_));
    LLMPI_NCCL_CUDA(cudaMemcpyAsync(t.data, d, t.bytes(), cudaMemcpyDeviceToHost, compute_));
    wait_stream(compute_, "all_reduce of a host tensor");
    return;
  }
  LLMPI_NCCL_CHECK(
      ncclAllReduce(t.data, t.data, n, nccl_type(t.dtype), nccl_op(op), comm_, compute_));
}

Request NcclCollectives::ireduce(const Tensor& t, int root) {
  check_device_tensor(t, "ireduce");
  LLMPI_CHECK(root >= 0 && root < size_, "ireduce: root ", root, " of ", size_);
  join_p2p("ireduce");
  LLMPI_NCCL_CHECK(ncclReduce(t.data, t.data, static_cast<size_t>(t.numel()), nccl_type(t.dtype),
                              ncclSum, root, comm_, compute_));
  return Request();
}

void NcclCollectives::reduce_scatter(const Tensor& out, const Tensor& full) {
  check_device_tensor(out, "reduce_scatter");
  check_device_tensor(full, "reduce_scatter");
  LLMPI_CHECK(out.dtype == full.dtype, "reduce_scatter: dtypes ", dtype_name(out.dtype), " and ",
              dtype_name(full.dtype));
  LLMPI_CHECK(full.numel() == size_ * out.numel(), "reduce_scatter: full ", full.shape.str(),
              " must hold ", size_, " chunks of out ", out.shape.str());
  LLMPI_CHECK(!overlap(out, full), "reduce_scatter: out overlaps full");
  join_p2p("reduce_scatter");
  LLMPI_NCCL_CHECK(ncclReduceScatter(full.data, out.data, static_cast<size_t>(out.numel()),
                                     nccl_type(out.dtype), ncclSum, comm_, compute_));
}

void NcclCollectives::all_gather(const Tensor& full, const Tensor& in) {
  check_device_tensor(full, "all_gather");
  check_device_tensor(in, "all_gather");
  LLMPI_CHECK(in.dtype == full.dtype, "all_gather: dtypes ", dtype_name(in.dtype), " and ",
              dtype_name(full.dtype));
  LLMPI_CHECK(full.numel() == size_ * in.numel(), "all_gather: full ", full.shape.str(),
              " must hold ", size_, " chunks of in ", in.shape.str());
  const char* mine = bytes(full) + rank_ * in.bytes();
  LLMPI_CHECK(bytes(in) == mine || !overlap(in, full),
              "all_gather: in must be chunk rank() of full or disjoint from it");
  join_p2p("all_gather");
  LLMPI_NCCL_CHECK(ncclAllGather(in.data, full.data, static_cast<size_t>(in.numel()),
                                 nccl_type(in.dtype), comm_, compute_));
}

void NcclCollectives::broadcast(const Tensor& t, int root) {
  check_device_tensor(t, "broadcast");
  LLMPI_CHECK(root >= 0 && root < size_, "broadcast: root ", root, " of ", size_, " ranks");
  join_p2p("broadcast");
  LLMPI_NCCL_CHECK(ncclBroadcast(t.data, t.data, static_cast<size_t>(t.numel()),
                                 nccl_type(t.dtype), root, comm_, compute_));
}

void NcclCollectives::send(const Tensor& t, int dst, int /*tag*/) {
  check_device_tensor(t, "send");
  LLMPI_CHECK(dst >= 0 && dst < size_ && dst != rank_, "send: destination ", dst, " of ", size_,
              " ranks from rank ", rank_);
  join_p2p("send");
  LLMPI_NCCL_CHECK(ncclSend(t.data, static_cast<size_t>(t.numel()), nccl_type(t.dtype), dst,
                            comm_, compute_));
}

void NcclCollectives::recv(const Tensor& t, int src, int /*tag*/) {
  check_device_tensor(t, "recv");
  LLMPI_CHECK(src >= 0 && src < size_ && src != rank_, "recv: source ", src, " of ", size_,
              " ranks at rank ", rank_);
  join_p2p("recv");
  LLMPI_NCCL_CHECK(ncclRecv(t.data, static_cast<size_t>(t.numel()), nccl_type(t.dtype), src,
                            comm_, compute_));
}

Request NcclCollectives::post(bool is_send, const Tensor& t, int peer) {
  const char* op = is_send ? "isend" : "irecv";
  check_device_tensor(t, op);
  LLMPI_CHECK(peer >= 0 && peer < size_, op, ": peer ", peer, " of ", size_, " ranks");
  check_async(op);
  if (!pending_batch_) pending_batch_ = std::make_shared<Batch>(this);
  pending_.push_back(P2p{is_send, t, peer});
  return Request(std::make_unique<NcclRequest>(pending_batch_));
}

Request NcclCollectives::isend(const Tensor& t, int dst, int /*tag*/) {
  return post(true, t, dst);
}

Request NcclCollectives::irecv(const Tensor& t, int src, int /*tag*/) {
  return post(false, t, src);
}

void NcclCollectives::start() { launch_pending(); }

void NcclCollectives::launch_pending() {
  if (pending_.empty()) return;
  // The group starts after everything enqueued on the compute stream so far: the data sent
  // is ready and no earlier op still reads a receive buffer.
  LLMPI_NCCL_CUDA(cudaEventRecord(ready_, compute_));
  LLMPI_NCCL_CUDA(cudaStreamWaitEvent(comm_stream_, ready_, 0));
  LLMPI_NCCL_CHECK(ncclGroupStart());
  for (const P2p& p : pending_) {
    const size_t n = static_cast<size_t>(p.t.numel());
    if (p.send)
      LLMPI_NCCL_CHECK(ncclSend(p.t.data, n, nccl_type(p.t.dtype), p.peer, comm_, comm_stream_));
    else
      LLMPI_NCCL_CHECK(ncclRecv(p.t.data, n, nccl_type(p.t.dtype), p.peer, comm_, comm_stream_));
  }
  LLMPI_NCCL_CHECK(ncclGroupEnd());
  LLMPI_NCCL_CUDA(cudaEventRecord(pending_batch_->done, comm_stream_));
  pending_batch_->launched = true;
  joined_ = std::move(pending_batch_);
  pending_.clear();
}

std::shared_ptr<Completion> NcclCollectives::completion() {
  auto c = std::make_shared<StreamCompletion>();
  LLMPI_NCCL_CUDA(cudaEventCreateWithFlags(&c->event, cudaEventDisableTiming));
  LLMPI_NCCL_CUDA(cudaEventRecord(c->event, compute_));
  return c;
}

void NcclCollectives::barrier() {
  join_p2p("barrier");
  void* word = staging(sizeof(int32_t));
  LLMPI_NCCL_CUDA(cudaMemsetAsync(word, 0, sizeof(int32_t), compute_));
  LLMPI_NCCL_CHECK(ncclAllReduce(word, word, 1, ncclInt32, ncclSum, comm_, compute_));
  wait_stream(compute_, "barrier");
  wait_stream(comm_stream_, "barrier (comm stream)");
}

}  // namespace llmpi

#endif  // LLMPI_HAVE_CUDA
