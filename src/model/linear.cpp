// Linear layer bound to (possibly packed) parameter views.
#include "model/linear.h"

namespace llmpi {

Linear Linear::bind(const ParamStore& store, const std::vector<std::string>& weights,
                    const std::vector<std::string>& biases, int64_t out_features,
                    int64_t in_features) {
  Linear l;
  l.in_features = in_features;
  l.out_features = out_features;
  if (store.info(weights[0]).external) {  // QLoRA: NF4 weights, dequantised on use
    LLMPI_CHECK(store.nf4(), weights[0], ": external weight without NF4 weights");
    int64_t row = 0;
    for (const std::string& n : weights) {
      const Nf4Weight* q = store.nf4()->find(n);
      LLMPI_CHECK(q && store.info(n).external && q->shape[1] == in_features, n,
                  ": not an NF4 weight of ", in_features, " inputs");
      l.nf4.push_back({q, row});
      row += q->shape[0];
    }
    LLMPI_CHECK(row == out_features, "NF4 weights of ", row, " rows for ", out_features);
    LLMPI_CHECK(store.nf4()->scratch().numel() >= out_features * in_features,
                "NF4 scratch too small for ", weights[0]);
    l.w = store.nf4()->scratch().slice(0, Shape{out_features, in_features});
  } else {
    l.w = store.weights(weights, Shape{out_features, in_features});
  }
  l.dw = store.grads(weights, Shape{out_features, in_features});
  if (!biases.empty()) {
    l.b = store.weights(biases, Shape{out_features});
    l.db = store.grads(biases, Shape{out_features});
  }
  return l;
}

void Linear::materialize(Backend& be) const {
  for (const Nf4Part& p : nf4)
    p.q->dequantize(be, w.slice(p.row0 * in_features, Shape{p.q->shape.numel()}));
}

void Linear::forward(Backend& be, const Tensor& y, const Tensor& x) const {
  materialize(be);
  be.linear_forward(y, x, w, add_bias ? b : Tensor{});
}

void Linear::backward(Backend& be, const Tensor& dx, const Tensor& dy, const Tensor& x) const {
  materialize(be);
  be.linear_backward(dx, dw, db, dy, x, w);
}

}  // namespace llmpi
