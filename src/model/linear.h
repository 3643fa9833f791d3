#pragma once
// Linear: y[N, O] = x[N, I] · Wᵀ + b, W: [O, I] (row o holds the weights of output o).
// Backward: dx = dy · W (overwritten), dW += dyᵀ · x, db += Σ_n dy[n] (accumulated).
// Saves nothing itself: its caller keeps x (the input) for backward.
// W may be a packed view of several adjacent parameters (q|k|v, gate|up).
// A row-parallel linear (input features split over ranks) sums partial outputs; its bias must
// enter that sum once, so all ranks but one set add_bias = false (db is still accumulated:
// every rank sees the whole dy and keeps an identical copy of the bias).
// QLoRA: when the weights are NF4 (a frozen store's external parameters, model/nf4_weights.h)
// W is the store's shared dequantisation scratch, which materialize() fills right before each
// product (forward, backward, and the fused ops that read W).
#include <initializer_list>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/nf4_weights.h"
#include "model/param_store.h"

namespace llmpi {

struct Linear {
  int64_t in_features = 0;   // I
  int64_t out_features = 0;  // O
  Tensor w, dw;              // [O, I]
  Tensor b, db;              // [O]; empty without bias
  bool add_bias = true;      // forward adds b (see above)
  struct Nf4Part {
    const Nf4Weight* q = nullptr;
    int64_t row0 = 0;  // first row of W it fills
  };
  std::vector<Nf4Part> nf4;  // QLoRA: the packed weights in NF4 (empty: W is stored dense)

  // W ← the dequantised NF4 weights (nothing for a dense W).
  void materialize(Backend& be) const;

  // Binds the adjacent parameters `weights` (each [o_k, I], Σ o_k = O) and, when non-empty,
  // the adjacent `biases` as one linear map.
  static Linear bind(const ParamStore& store, const std::vector<std::string>& weights,
                     const std::vector<std::string>& biases, int64_t out_features,
                     int64_t in_features);

  void forward(Backend& be, const Tensor& y, const Tensor& x) const;
  // dx may be empty (skipped), e.g. for the first layer of a chain.
  void backward(Backend& be, const Tensor& dx, const Tensor& dy, const Tensor& x) const;
};

}  // namespace llmpi
