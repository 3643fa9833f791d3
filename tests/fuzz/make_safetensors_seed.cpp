// Writes the seed corpus of the safetensors fuzz target: a small valid file with F32, BF16,
// F16 tensors, an empty tensor and metadata (argv[1]).
#include <vector>

#include "io/safetensors.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  using namespace llmpi;
  const std::vector<StSpec> specs = {{"transformer.wte.weight", StDtype::f32, {4, 2}},
                                     {"h.0.attn.c_attn.weight", StDtype::bf16, {2, 6}},
                                     {"ln_f.bias", StDtype::f16, {2}},
                                     {"empty", StDtype::f32, {0}}};
  SafetensorsWriter w(argv[1], specs, {{"format", "pt"}});
  for (const StSpec& s : specs) {
    std::vector<float> v(size_t(StEntry{s.name, s.dtype, s.shape}.numel()), 0.25f);
    w.write(s.name, encode_f32(v, s.dtype));
  }
  w.commit();
  return 0;
}
