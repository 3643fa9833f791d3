// MatmulRunner: cuBLASLt descriptors, layouts and heuristic algorithm per (shape, transposes,
// output dtype, epilogue, alignment), built on first use and reused (matmul.h).
#include "backend/cuda/matmul.h"

#include <cstdio>
#include <string>
#include <vector>

#include "backend/cuda/candidate_timer.h"
#include "backend/cuda/cuda_backend_impl.h"
#include "backend/cuda/cuda_check.h"
#include "core/error.h"

namespace llmpi::cuda {

namespace {

template <class T, cublasStatus_t (*Destroy)(T)>
struct LtDeleter {
  void operator()(T p) const { if (p) Destroy(p); }
};
using DescPtr = std::unique_ptr<cublasLtMatmulDescOpaque_t,
                                LtDeleter<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>>;
using LayoutPtr = std::unique_ptr<cublasLtMatrixLayoutOpaque_t,
                                  LtDeleter<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>>;
using PrefPtr = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t,
                                LtDeleter<cublasLtMatmulPreference_t,
                                          cublasLtMatmulPreferenceDestroy>>;

LayoutPtr make_layout(cudaDataType_t t, int64_t rows, int64_t cols, int64_t ld) {
  cublasLtMatrixLayout_t l = nullptr;
  LLMPI_CUBLAS(cublasLtMatrixLayoutCreate(&l, t, static_cast<uint64_t>(rows),
                                          static_cast<uint64_t>(cols), ld));
  return LayoutPtr(l);
}

// Largest power of two (<= 256) dividing the address; 256 for null.
int alignment_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  int align = 256;
  while (align > 1 && (a % static_cast<uintptr_t>(align)) != 0) align >>= 1;
  return align;
}

}  // namespace

struct MatmulRunner::Plan {
  DescPtr desc;
  LayoutPtr a, b, d;
  cublasLtMatmulAlgo_t algo{};
  std::vector<cublasLtMatmulAlgo_t> candidates;  // the heuristic's, in its order (tuning)
  bool tuned = false;
};

MatmulRunner::MatmulRunner(cudaStream_t stream, size_t workspace_bytes, bool tune)
    : stream_(stream), workspace_bytes_(workspace_bytes), tune_(tune) {
  LLMPI_CUBLAS(cublasLtCreate(&handle_));
  if (workspace_bytes_) LLMPI_CUDA(cudaMalloc(&workspace_, workspace_bytes_));
}

MatmulRunner::~MatmulRunner() {
  plans_.clear();
  if (workspace_) cudaFree(workspace_);
  if (handle_) cublasLtDestroy(handle_);
}

MatmulRunner::Plan* MatmulRunner::plan_for(const MatmulSpec& s, const Key& key,
                                           const void* bias, const void* aux, int align_a,
                                           int align_b, int align_d) {
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second.get();

  auto plan = std::make_unique<Plan>();
  cublasLtMatmulDesc_t desc = nullptr;
  LLMPI_CUBLAS(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  plan->desc.reset(desc);
  const cublasOperation_t ta = s.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t tb = s.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  LLMPI_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  LLMPI_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  cublasLtEpilogue_t epi = s.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  if (s.gelu == MatmulGelu::gelu_aux)
    epi = s.bias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS : CUBLASLT_EPILOGUE_GELU_AUX;
  else if (s.gelu == MatmulGelu::dgelu)
    epi = CUBLASLT_EPILOGUE_DGELU;
  LLMPI_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                              sizeof epi));
  if (s.bias) {
    const cudaDataType_t bt = CUDA_R_16BF;
    LLMPI_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt,
                                                sizeof bt));
  }
  (void)bias;  // its alignment is part of the key; cuBLASLt reads the bias with scalar loads
  if (s.gelu != MatmulGelu::none) {
    // The heuristic reads the aux pointer's alignment from the descriptor.
    const int64_t ld = s.ldd;
    LLMPI_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld,
                                                sizeof ld));
    LLMPI_CUBLAS(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER,
                                                &aux, sizeof aux));
  }
  // Stored (column-major) shapes of A and B before op().
  plan->a = s.trans_a ? make_layout(CUDA_R_16BF, s.k, s.m, s.lda)
                      : make_layout(CUDA_R_16BF, s.m, s.k, s.lda);
  plan->b = s.trans_b ? make_layout(CUDA_R_16BF, s.n, s.k, s.ldb)
                      : make_layout(CUDA_R_16BF, s.k, s.n, s.ldb);
  plan->d = make_layout(s.d_f32 ? CUDA_R_32F : CUDA_R_16BF, s.m, s.n, s.ldd);

  cublasLtMatmulPreference_t pref_raw = nullptr;
  LLMPI_CUBLAS(cublasLtMatmulPreferenceCreate(&pref_raw));
  PrefPtr pref(pref_raw);
  const uint64_t ws = workspace_bytes_;
  LLMPI_CUBLAS(cublasLtMatmulPreferenceSetAttribute(
      pref_raw, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  const uint32_t al_a = align_a, al_b = align_b, al_d = align_d;
  LLMPI_CUBLAS(cublasLtMatmulPreferenceSetAttribute(
      pref_raw, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a, sizeof al_a));
  LLMPI_CUBLAS(cublasLtMatmulPreferenceSetAttribute(
      pref_raw, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b, sizeof al_b));
  LLMPI_CUBLAS(cublasLtMatmulPreferenceSetAttribute(
      pref_raw, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_d, sizeof al_d));
  LLMPI_CUBLAS(cublasLtMatmulPreferenceSetAttribute(
      pref_raw, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_d, sizeof al_d));

  cublasLtMatmulHeuristicResult_t results[kTuneCandidates]{};
  int found = 0;
  const cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
      handle_, desc, plan->a.get(), plan->b.get(), plan->d.get(), plan->d.get(), pref_raw,
      tune_ ? kTuneCandidates : 1, results, &found);
  if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED)
    fail_cublas(st, "cublasLtMatmulAlgoGetHeuristic", __FILE__, __LINE__);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED || found == 0) {
    plans_.emplace(key, nullptr);  // refused, and remembered as such
    return nullptr;
  }
  plan->algo = results[0].algo;
  for (int i = 0; i < found; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS) plan->candidates.push_back(results[i].algo);
  plan->tuned = !tune_ || plan->candidates.size() < 2;
  return plans_.emplace(key, std::move(plan)).first->second.get();
}

void MatmulRunner::run(const MatmulSpec& s, const void* a, const void* b, void* d,
                       const void* bias, const void* aux) {
  if (!try_run(s, a, b, d, bias, aux))
    throw InternalError(detail::concat("cuBLASLt has no algorithm for m=", s.m, " n=", s.n,
                                       " k=", s.k, " transa=", s.trans_a, " transb=", s.trans_b,
                                       " f32 out=", s.d_f32, " bias=", s.bias,
                                       " gelu epilogue=", static_cast<int>(s.gelu)));
}

bool MatmulRunner::try_run(const MatmulSpec& s, const void* a, const void* b, void* d,
                           const void* bias, const void* aux) {
  LLMPI_CHECK(s.gelu == MatmulGelu::none || (!s.d_f32 && !s.accumulate && aux != nullptr),
              "matmul: a GELU epilogue needs a bf16 D, no accumulation and an aux matrix");
  if (s.m == 0 || s.n == 0) return true;
  if (s.gelu != MatmulGelu::none && s.ldd % 8 != 0) return false;  // cuBLASLt's aux rule
  if (s.k == 0) {
    // An empty sum: cuBLASLt may reject k = 0, so write the result (0 + bias, or D) directly.
    if (s.gelu != MatmulGelu::none) return false;
    LLMPI_CHECK(!s.bias, "matmul with k = 0 and a bias epilogue");
    if (!s.accumulate)
      LLMPI_CUDA(cudaMemsetAsync(d, 0, static_cast<size_t>(s.ldd * s.n) * (s.d_f32 ? 4 : 2),
                                 stream_));
    return true;
  }
  const int al_a = alignment_of(a), al_b = alignment_of(b), al_d = alignment_of(d);
  const int al_bias = s.bias ? alignment_of(bias) : 0;
  const int al_aux = s.gelu != MatmulGelu::none ? alignment_of(aux) : 0;
  const Key key{s.trans_a, s.trans_b, s.m,     s.n,     s.k,      s.lda,
                s.ldb,     s.ldd,     s.d_f32, s.bias,  s.accumulate, al_a * 1000 + al_b,
                al_d,      al_bias,   static_cast<int64_t>(s.gelu), al_aux};
  Plan* p = plan_for(s, key, bias, aux, al_a, al_b, al_d);
  if (!p) return false;
  if (s.bias)
    LLMPI_CUBLAS(cublasLtMatmulDescSetAttribute(p->desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                &bias, sizeof bias));
  if (s.gelu != MatmulGelu::none)
    LLMPI_CUBLAS(cublasLtMatmulDescSetAttribute(
        p->desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof aux));
  if (!p->tuned) tune(*p, s, a, b);
  LLMPI_CUBLAS(launch(*p, p->algo, s, a, b, d));
  return true;
}

cublasStatus_t MatmulRunner::launch(const Plan& p, const cublasLtMatmulAlgo_t& algo,
                                    const MatmulSpec& s, const void* a, const void* b, void* d) {
  const float alpha = 1.f, beta = s.accumulate ? 1.f : 0.f;
  return cublasLtMatmul(handle_, p.desc.get(), &alpha, a, p.a.get(), b, p.b.get(), &beta, d,
                        p.d.get(), d, p.d.get(), &algo, workspace_, workspace_bytes_, stream_);
}

void MatmulRunner::tune(Plan& p, const MatmulSpec& s, const void* a, const void* b) {
  p.tuned = true;
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  LLMPI_CUDA(cudaStreamIsCapturing(stream_, &capture));
  if (capture != cudaStreamCaptureStatusNone) return;  // timing needs synchronization
  // The candidates write a scratch D (read as C too when accumulating: zeros).
  const size_t d_bytes = static_cast<size_t>(s.ldd * s.n) * (s.d_f32 ? 4 : 2);
  Scratch out(stream_, d_bytes);
  LLMPI_CUDA(cudaMemsetAsync(out.as<void>(), 0, d_bytes, stream_));
  CandidateTimer timer(stream_);
  ++timed_plans_;
  std::vector<float> ms(p.candidates.size());
  for (size_t i = 0; i < p.candidates.size(); ++i)
    ms[i] = timer.best_ms(
        3,
        [&] { return launch(p, p.candidates[i], s, a, b, out.as<void>()) == CUBLAS_STATUS_SUCCESS; },
        [] {});
  const size_t chosen = fastest(ms);
  if (chosen == ms.size()) return;  // none ran: keep the heuristic's first
  p.algo = p.candidates[chosen];
  const std::string report =
      timing_report(ms, chosen, [](size_t i) { return detail::concat("algo ", i); });
  std::fprintf(stderr, "llmpi: cuBLASLt m=%lld n=%lld k=%lld trans=%d%d %s out%s%s: %s\n",
               static_cast<long long>(s.m), static_cast<long long>(s.n),
               static_cast<long long>(s.k), int(s.trans_a), int(s.trans_b),
               s.d_f32 ? "f32" : "bf16", s.accumulate ? " accumulated" : "",
               s.gelu == MatmulGelu::none ? "" : " gelu epilogue", report.c_str());
}

}  // namespace llmpi::cuda
