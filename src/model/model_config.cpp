#include "model/model_config.h"

namespace llmpi {

const char* arch_name(Arch a) { return a == Arch::gpt2 ? "gpt2" : "llama"; }

const char* recompute_name(Recompute r) {
  switch (r) {
    case Recompute::none: return "none";
    case Recompute::selective: return "selective";
    case Recompute::full: return "full";
  }
  return "?";
}

}  // namespace llmpi
