// libFuzzer target for the safetensors reader (io/safetensors.h). Each input is a whole file,
// parsed by parse_safetensors — the one reader of header bytes — and, when accepted, every
// tensor converted to f32 the way import reads weights. The contract: a UserError or a clean
// parse whose tensors tile the data, never a crash, a hang or an out-of-bounds access (built
// with AddressSanitizer and UBSan). Built and run by tests/fuzz/run.sh safetensors.
#include <cstdint>
#include <cstdlib>
#include <span>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const std::span<const uint8_t> bytes(data, size);
    const llmpi::StHeader h = llmpi::parse_safetensors(bytes, "fuzz.safetensors");
    uint64_t at = 0;
    for (const llmpi::StEntry& e : h.tensors) {
      if (e.begin != at) std::abort();  // the reader promised a tiling
      at = e.end;
      try {
        (void)llmpi::decode_f32(bytes.subspan(size_t(h.data_start + e.begin), size_t(e.end - e.begin)),
                                e.dtype, e.name);
      } catch (const llmpi::UserError&) {
      }
    }
    if (h.data_start + at != size) std::abort();
  } catch (const llmpi::UserError&) {
    // Rejected with a message: the expected outcome for a malformed file.
  }
  return 0;
}
