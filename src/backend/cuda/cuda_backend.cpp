// CudaBackend life cycle and memory: device selection, stream, default memory pool
// (stream-ordered, cached), pinned read-back word, option parsing, error reporting for CUDA,
// cuBLASLt and cuDNN calls, the shared argument checks, and make_cuda_backend().
#include "backend/cuda/cuda_backend.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "backend/cuda/captured_graph.h"
#include "backend/cuda/attention_cudnn.h"
#include "backend/cuda/chunk_table.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/matmul.h"
#include "backend/peak_flops.h"
#include "core/error.h"
#include "core/runtime.h"

namespace llmpi {
namespace cuda {

bool is_sticky(cudaError_t e) {
  switch (e) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorECCUncorrectable:
    case cudaErrorAssert:
    case cudaErrorLaunchTimeout:
    case cudaErrorContextIsDestroyed:
      return true;
    default:
      return false;
  }
}

void fail_cuda(cudaError_t e, const char* call, const char* file, int line) {
  const std::string msg = detail::concat(file, ":", line, ": ", call, " failed: ",
                                         cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
  if (is_sticky(e)) abort_job(("sticky CUDA error, the device is unusable: " + msg).c_str());
  cudaGetLastError();  // clear a non-sticky error so that later checks see only their own
  throw InternalError(msg);
}

void fail_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  // cuBLASLt reports a device fault as EXECUTION_FAILED; the CUDA error tells if it is sticky.
  const cudaError_t e = cudaPeekAtLastError();
  const std::string msg = detail::concat(file, ":", line, ": ", call, " failed: ",
                                         cublasLtGetStatusName(s), " (", cublasLtGetStatusString(s),
                                         ")");
  if (is_sticky(e)) abort_job(("sticky CUDA error in cuBLASLt: " + msg).c_str());
  throw InternalError(msg);
}

void fail_cudnn(cudnnStatus_t s, const char* call, const char* file, int line) {
  const cudaError_t e = cudaPeekAtLastError();
  char detail_msg[512] = {0};
  cudnnGetLastErrorString(detail_msg, sizeof detail_msg);
  const std::string msg = detail::concat(file, ":", line, ": ", call, " failed: ",
                                         cudnnGetErrorString(s), detail_msg[0] ? ": " : "",
                                         detail_msg);
  if (is_sticky(e)) abort_job(("sticky CUDA error in cuDNN: " + msg).c_str());
  throw InternalError(msg);
}

void check_device(const char* op, const char* what, const Tensor& t) {
  LLMPI_CHECK(t.device == Device::cuda, op, ": ", what, " is not in CUDA device memory");
  LLMPI_CHECK(t.numel() == 0 || t.data != nullptr, op, ": ", what, " ", t.shape.str(),
              " has no data");
}

void check_device(const char* op, std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  for (const auto& [what, t] : ts) check_device(op, what, *t);
}

void check_dtype(const char* op, const char* what, const Tensor& t, DType want) {
  LLMPI_CHECK(t.dtype == want, op, ": ", what, " is ", dtype_name(t.dtype), ", expected ",
              dtype_name(want), " on the cuda backend");
}

const int32_t* checked_doc_start(const char* op, const Tensor& doc_start, int64_t n) {
  if (doc_start.empty()) return nullptr;
  check_device(op, "doc_start", doc_start);
  check_dtype(op, "doc_start", doc_start, DType::i32);
  check_numel(op, "doc_start", doc_start, n);
  return doc_start.ptr<const int32_t>();
}

Scratch::Scratch(cudaStream_t s, size_t bytes) : s_(s) {
  if (bytes) LLMPI_CUDA(cudaMallocAsync(&p_, bytes, s_));
}

Scratch::~Scratch() {
  if (p_) cudaFreeAsync(p_, s_);
}

}  // namespace cuda

using namespace cuda;

namespace {

// LLMPI_FUSED: "all" (or "1"), "none" (or "0"), or the fusions that are on, comma-separated.
CudaFusions parse_fusions(const std::string& v) {
  if (v == "all" || v == "1") return CudaFusions{};
  CudaFusions f{false, false, false};
  if (v == "none" || v == "0") return f;
  size_t start = 0;
  while (start <= v.size()) {
    const size_t end = std::min(v.find(',', start), v.size());
    const std::string name = v.substr(start, end - start);
    if (name == "norm") f.norm = true;
    else if (name == "gelu") f.gelu = true;
    else if (name == "swiglu") f.swiglu = true;
    else user_error("environment variable LLMPI_FUSED='", v, "': '", name,
                    "' is not one of all (1), none (0), norm, gelu, swiglu (comma-separated)");
    start = end + 1;
  }
  return f;
}

// A 0/1 environment variable; `fallback` when unset or empty.
bool env_flag(const char* name, bool fallback) {
  const char* d = std::getenv(name);
  if (!d || !*d) return fallback;
  const std::string v = d;
  if (v == "1") return true;
  if (v == "0") return false;
  user_error("environment variable ", name, "='", v, "': expected 0 or 1");
}

}  // namespace

CudaBackendOptions CudaBackendOptions::from_env() {
  CudaBackendOptions o;
  if (const char* a = std::getenv("LLMPI_ATTENTION"); a && *a) {
    const std::string v = a;
    if (v == "auto") o.attention = CudaAttention::automatic;
    else if (v == "cudnn") o.attention = CudaAttention::cudnn;
    else if (v == "own") o.attention = CudaAttention::own;
    else user_error("environment variable LLMPI_ATTENTION='", v,
                    "': expected one of auto, cudnn, own");
  }
  if (const char* a = std::getenv("LLMPI_ATTENTION_BACKWARD"); a && *a) {
    const std::string v = a;
    if (v == "auto") o.attention_backward = CudaAttentionBackward::automatic;
    else if (v == "tc") o.attention_backward = CudaAttentionBackward::tc;
    else if (v == "simt") o.attention_backward = CudaAttentionBackward::simt;
    else user_error("environment variable LLMPI_ATTENTION_BACKWARD='", v,
                    "': expected one of auto, tc, simt");
  }
  if (const char* f = std::getenv("LLMPI_FUSED"); f && *f) o.fused = parse_fusions(f);
  o.deterministic = env_flag("LLMPI_DETERMINISTIC", o.deterministic);
  o.cudnn_tune = env_flag("LLMPI_CUDNN_TUNE", o.cudnn_tune);
  o.gemm_tune = env_flag("LLMPI_GEMM_TUNE", o.gemm_tune);
  return o;
}

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

CudaBackend::CudaBackend(const CudaBackendOptions& options) : options_(options) {
  const int n = cuda_device_count();
  LLMPI_CHECK(n > 0, "cuda backend: no CUDA device is visible to this process");
  if (options_.device >= 0) {
    LLMPI_CHECK(options_.device < n, "cuda backend: device ", options_.device, " requested, ",
                n, " visible");
    LLMPI_CUDA(cudaSetDevice(options_.device));
  }
  LLMPI_CUDA(cudaGetDevice(&device_));
  LLMPI_CUDA(cudaDeviceGetAttribute(&sm_count_, cudaDevAttrMultiProcessorCount, device_));
  cudaDeviceProp prop{};
  LLMPI_CUDA(cudaGetDeviceProperties(&prop, device_));
  peak_flops_ = gpu_peak_bf16_flops(prop.name);
  // Cache freed blocks in the default pool instead of returning them to the driver at every
  // synchronization: the pool then acts as a caching allocator.
  cudaMemPool_t pool = nullptr;
  LLMPI_CUDA(cudaDeviceGetDefaultMemPool(&pool, device_));
  uint64_t threshold = UINT64_MAX;
  LLMPI_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  LLMPI_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  LLMPI_CUDA(cudaMallocHost(&pinned_, sizeof(double)));
  matmul_ = std::make_unique<MatmulRunner>(stream_, options_.matmul_workspace_bytes,
                                           options_.gemm_tune && !options_.deterministic);
}

CudaBackend::~CudaBackend() {
  // Destructors must not throw: report nothing, release in reverse order of creation.
  cudaStreamSynchronize(stream_);
  adamw_table_.reset();
  squares_table_.reset();
  cudnn_.reset();
  matmul_.reset();
  if (pinned_) cudaFreeHost(pinned_);
  if (stream_) cudaStreamDestroy(stream_);
}

cuda::CudnnAttention* CudaBackend::cudnn_attention() {
  if (!cudnn_)
    cudnn_ = std::make_unique<CudnnAttention>(stream_,
                                              options_.cudnn_tune && !options_.deterministic);
  return cudnn_.get();
}

void* CudaBackend::raw_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  LLMPI_CUDA(cudaMallocAsync(&p, bytes, stream_));
  return p;
}

// Called from Buffer's destructor, so it must not throw: a failed free is reported (and a
// sticky error aborts the job) but not raised.
void CudaBackend::raw_free(void* p) {
  if (!p) return;
  const cudaError_t e = cudaFreeAsync(p, stream_);
  if (e == cudaSuccess) return;
  if (is_sticky(e)) abort_job(detail::concat("cudaFreeAsync: ", cudaGetErrorString(e)).c_str());
  std::fprintf(stderr, "llmpi cuda backend: cudaFreeAsync failed: %s\n", cudaGetErrorString(e));
  cudaGetLastError();
}

void CudaBackend::synchronize() { LLMPI_CUDA(cudaStreamSynchronize(stream_)); }

std::unique_ptr<RecordedWork> CudaBackend::record(const std::function<void()>& work) {
  return std::make_unique<CapturedGraph>(stream_, work);
}

int64_t CudaBackend::peak_bytes() const {
  cudaMemPool_t pool = nullptr;
  LLMPI_CUDA(cudaDeviceGetDefaultMemPool(&pool, device_));
  uint64_t high = 0;
  LLMPI_CUDA(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &high));
  return static_cast<int64_t>(high);
}

double CudaBackend::free_bytes() const {
  size_t free = 0, total = 0;
  LLMPI_CUDA(cudaMemGetInfo(&free, &total));
  return double(free);
}

std::unique_ptr<Backend> make_cuda_backend(const CudaBackendOptions& options) {
  return std::make_unique<CudaBackend>(options);
}

}  // namespace llmpi
