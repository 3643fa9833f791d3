#pragma once
// Linear: y[N, O] = x[N, I] · Wᵀ + b, W: [O, I] (row o holds the weights of output o).
// Backward: dx = dy · W (overwritten), dW += dyᵀ · x, db += Σ_n dy[n] (accumulated).
// Saves nothing itself: its caller keeps x (the input) for backward.
// W may be a packed view of several adjacent parameters (q|k|v, gate|up).
// A row-parallel linear (input features split over ranks) sums partial outputs; its bias must
// enter that sum once, so all ranks but one set add_bias = false (db is still accumulated:
// every rank sees the whole dy and keeps an identical copy of the bias).
#include <initializer_list>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/param_store.h"

namespace llmpi {

struct Linear {
  int64_t in_features = 0;   // I
  int64_t out_features = 0;  // O
  Tensor w, dw;              // [O, I]
  Tensor b, db;              // [O]; empty without bias
  bool add_bias = true;      // forward adds b (see above)

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
