// Generation from a whole model on one rank (generate.h).
#include "train/generate.h"

#include <algorithm>

namespace llmpi {

Generator::Generator(Backend& be, const Transformer& model, int64_t T)
    : be_(be), model_(model), T_(T), acts_(model.alloc_activations(be, 1, T)),
      ids_(be.alloc(Shape{T}, DType::i32)) {}

Generation Generator::run(const Tokenizer& tok, std::vector<uint32_t> ctx, const GenerateOptions& o) {
  Generation g;
  for (int64_t i = 0; i < o.max_new; ++i) {
    if (o.stop && o.stop()) {  // between two tokens: a forward pass is never cut
      g.interrupted = true;
      break;
    }
    // The last T tokens of the context, padded after the end (causal: padding is unseen).
    const size_t start = ctx.size() > size_t(T_) ? ctx.size() - size_t(T_) : 0;
    const int64_t len = int64_t(ctx.size() - start);
    std::vector<int32_t> window(size_t(T_), 0);
    for (int64_t t = 0; t < len; ++t) window[size_t(t)] = int32_t(ctx[start + size_t(t)]);
    be_.copy(ids_, Tensor{window.data(), Shape{T_}, DType::i32, Device::host});
    model_.forward(be_, acts_, ids_);
    const std::vector<float> logits = model_.logits_at(be_, acts_, len - 1);
    const int64_t V = std::min<int64_t>(int64_t(logits.size()), tok.vocab_size());
    const int64_t next = sample_token(std::span<const float>(logits.data(), size_t(V)), o.sampling,
                                      o.key, o.stream * 1000003ull + uint64_t(i));
    if (uint32_t(next) == tok.eot_id() && o.stop_at_eot) break;
    ctx.push_back(uint32_t(next));
    g.ids.push_back(uint32_t(next));
    if (!o.stop_text.empty()) {
      const std::string text = tok.decode(g.ids);
      if (const size_t at = text.find(o.stop_text); at != std::string::npos) {
        g.ids.pop_back();
        g.text = text.substr(0, at);
        return g;
      }
    }
  }
  g.text = tok.decode(g.ids);
  return g;
}

}  // namespace llmpi
