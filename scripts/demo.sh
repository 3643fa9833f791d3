#!/usr/bin/env bash
# The main job: a real training demo on a real English corpus, on the CPU.
#   1. prepare: the Debian `fortunes` quotations → cleaned, deduplicated documents → a
#      byte-level BPE tokenizer (2048 ids) → data/fortunes/{train,val}.bin
#   2. train configs/tiny.toml (a 1M-parameter GPT-2) for a few minutes on 2 MPI ranks:
#      data parallel with ZeRO-1 (dp=2, each rank 4 of the step's 8 sequences, AdamW state
#      sharded 1/2 per rank) — the same global batch and trajectory as one rank, printed
#      with each rank's memory. LLMPI_DEMO_RANKS=1 runs it on one rank instead.
#   3. compare the validation loss with the unigram baseline; sample; evaluate
# Everything it makes stays on disk: data/fortunes/ and runs/tiny/ (model.h5, config.toml,
# checkpoints/). A rerun trains afresh (--no-resume); `llmpi train` alone would resume.
set -euo pipefail
cd "$(dirname "$0")/.."
llmpi=build/cpu/llmpi
[ -x "$llmpi" ] || { echo "demo: build first (bash scripts/build.sh)" >&2; exit 1; }
ranks="${LLMPI_DEMO_RANKS:-2}"
# One BLAS thread per rank when the ranks share the cores.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$(( $(nproc) / ranks > 0 ? $(nproc) / ranks : 1 ))}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$OPENBLAS_NUM_THREADS}"
launch=()
if [ "$ranks" -gt 1 ]; then
  command -v mpiexec >/dev/null || { echo "demo: mpiexec not found (LLMPI_DEMO_RANKS=1 for one rank)" >&2; exit 1; }
  launch=(mpiexec -n "$ranks" --oversubscribe --bind-to none)
  [ "$(id -u)" = 0 ] && launch+=(--allow-run-as-root)   # Open MPI refuses root otherwise
  layout=(--set parallel.dp="$ranks" --set parallel.zero_stage=1 --set train.batch_size=$(( 8 / ranks )))
else
  layout=()
fi

corpus=()
for f in /usr/share/games/fortunes/*; do
  case "$(basename "$f")" in
    *.dat|*.u8|art|ascii-art) continue ;;   # index files, and pictures rather than prose
  esac
  [ -f "$f" ] && corpus+=("$f")
done
[ ${#corpus[@]} -gt 0 ] || { echo "demo: no fortune files (apt-get install fortunes)" >&2; exit 1; }

echo "== 1/3 prepare: ${#corpus[@]} fortune files -> data/fortunes"
"$llmpi" prepare "${corpus[@]}" --delimiter % --out data/fortunes --vocab-size 2048

echo
echo "== 2/3 train: configs/tiny.toml -> runs/tiny on $ranks rank(s) ${layout[*]}"
"${launch[@]}" "$llmpi" train configs/tiny.toml --no-resume "${layout[@]}" "$@" | tee runs-tiny-train.log.tmp
baseline=$(sed -n 's/^unigram baseline.*: \([0-9.]*\)$/\1/p' runs-tiny-train.log.tmp)
final=$(grep '^val ' runs-tiny-train.log.tmp | tail -1 | sed 's/.*loss \([0-9.]*\).*/\1/')
mkdir -p runs/tiny && mv runs-tiny-train.log.tmp runs/tiny/train.log
echo
echo "validation loss: ${final} nats/token   (unigram baseline: ${baseline})"
awk -v f="$final" -v b="$baseline" 'BEGIN { if (f + 0.5 > b) { print "demo: the model did not beat the unigram baseline" > "/dev/stderr"; exit 1 } }'

echo
echo "== 3/3 sample and evaluate runs/tiny"
"$llmpi" sample runs/tiny --prompt "The secret of life is" --prompt "A computer" \
  --prompt "Q: What do you call" --tokens 60 --temperature 0.8 --top-p 0.95 --seed 7
"$llmpi" eval runs/tiny
echo
echo "demo: done. Try:  $llmpi sample runs/tiny --prompt \"Your text\"   (see --help)"
