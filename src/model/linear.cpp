// Linear layer bound to (possibly packed) parameter views.
#include "model/linear.h"

namespace llmpi {

Linear Linear::bind(const ParamStore& store, const std::vector<std::string>& weights,
                    const std::vector<std::string>& biases, int64_t out_features,
                    int64_t in_features) {
  Linear l;
  l.in_features = in_features;
  l.out_features = out_features;
  l.w = store.weights(weights, Shape{out_features, in_features});
  l.dw = store.grads(weights, Shape{out_features, in_features});
  if (!biases.empty()) {
    l.b = store.weights(biases, Shape{out_features});
    l.db = store.grads(biases, Shape{out_features});
  }
  return l;
}

void Linear::forward(Backend& be, const Tensor& y, const Tensor& x) const {
  be.linear_forward(y, x, w, add_bias ? b : Tensor{});
}

void Linear::backward(Backend& be, const Tensor& dx, const Tensor& dy, const Tensor& x) const {
  be.linear_backward(dx, dw, db, dy, x, w);
}

}  // namespace llmpi
