#!/usr/bin/env bash
# Do Hugging Face transformers and llmpi agree on exported models? Two steps:
#   scripts/hf-transformers-check.sh make [DIR=hfcheck]   on a build machine (this repo, CPU):
#       trains llmpi's BPE tokenizer (2048 ids) on the fortunes corpus, makes a GPT-2 of
#       configs/tiny.toml's shape and a Llama of configs/tiny-llama.toml's (GQA, untied) with
#       random weights, exports each in f32 and bf16 (`export_hf`, as `llmpi export-hf`), and
#       writes llmpi's logits of the exported weights and llmpi's token ids of a sample text.
#   scripts/hf-transformers-check.sh check [DIR=hfcheck]  on a machine with torch and
#       transformers (offline; a GPU machine's preinstalled ones): loads each export with
#       AutoModelForCausalLM/AutoTokenizer.from_pretrained(local_files_only=True) and compares
#       logits (f32: 1e-4; bf16: 6e-2, transformers computing in bf16) and token ids.
# Exit status nonzero when a case fails. DIR is relative to the repository root.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
mode="${1:-}"
dir="${2:-hfcheck}"
case "$mode" in
  make)
    cmake --preset cpu >/dev/null
    cmake --build --preset cpu -j "$(nproc)" --target llmpi hf_check_fixture >/dev/null
    rm -rf "$dir" && mkdir -p "$dir"
    build/cpu/llmpi prepare /usr/share/games/fortunes/fortunes --delimiter % --out "$dir/data" \
      --vocab-size 2048 --quiet >/dev/null
    for cfg in tiny tiny-llama; do
      for dt in f32 bf16; do
        build/cpu/tests/hf_check_fixture "configs/$cfg.toml" "$dir/data/tokenizer.bpe" "$dir/$cfg-$dt" "$dt"
      done
    done
    rm -rf "$dir/data"
    echo "made $dir; now run on the torch machine: bash scripts/hf-transformers-check.sh check $dir"
    ;;
  check)
    [ -d "$dir" ] || { echo "no $dir: run '$0 make $dir' first" >&2; exit 2; }
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
    python3 scripts/hf_transformers_check.py "$dir"/*/
    ;;
  *)
    echo "usage: $0 make|check [DIR]" >&2
    exit 2
    ;;
esac
