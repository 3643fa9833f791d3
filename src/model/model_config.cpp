#include "model/model_config.h"

namespace llmpi {

const char* arch_name(Arch a) { return a == Arch::gpt2 ? "gpt2" : "llama"; }

}  // namespace llmpi
