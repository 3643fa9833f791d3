#!/usr/bin/env bash
# The folder layering of docs/architecture.md ("Folders and what they depend on"): every
# `#include "…"` of a product source names a folder that its own folder may depend on.
# A new dependency either fits the table or changes the table and this list together.
#   usage: layering.sh LLMPI_BINARY SOURCE_DIR   (the binary is not used)
set -euo pipefail
src=$2
cd "$src"

# folder → the folders it may include (besides itself).
declare -A allowed=(
  [src/cli]="src/analysis slurm src/train jobs parallel io src/optim src/config src/model src/data src/backend src/quant src/core"
  [src/analysis]="src/train jobs parallel io src/optim src/config src/model src/data src/backend src/quant src/core"
  [slurm]="jobs src/config src/core"
  [src/train]="jobs parallel io src/optim src/config src/model src/data src/backend src/quant src/core"
  [jobs]="parallel io src/config src/core"
  [parallel]="io src/optim src/config src/model src/backend src/quant src/core"
  [io]="src/config src/model src/data src/backend src/quant src/core"
  [src/optim]="src/config src/model src/backend src/core"
  [src/config]="src/model src/core"
  [src/model]="src/backend src/quant src/core"
  [src/data]="src/core"
  [src/backend]="src/quant src/core"
  [src/quant]="src/core"
  [src/core]=""
)
# Known exceptions, one "file folder" each, listed in docs/architecture.md with the way out.
exceptions=()

folders=(src parallel io jobs)
for d in slurm; do [ -d "$d" ] && folders+=("$d"); done
bad=0
checked=0
# One pass over every include: "file:path".
while IFS= read -r line; do
  f=${line%%:*}
  inc=${line#*:}
  inc=${inc#*\"}
  inc=${inc%%\"*}
  dir=${f%/*}                                        # the file's folder: src/model, io, ...
  case "$dir" in src/*/*) dir=${dir%/*} ;; esac      # src/backend/host → src/backend
  [ -n "${allowed[$dir]+x}" ] || continue
  top=${inc%%/*}                                     # the included file's folder
  case "$top" in
    parallel|io|jobs|slurm) to=$top ;;
    *) [ -e "src/$inc" ] && to="src/$top" || continue ;;
  esac
  [ "$to" = "$dir" ] && continue
  checked=$((checked + 1))
  [[ " ${exceptions[*]} " == *" $f $to "* ]] && continue
  if [[ " ${allowed[$dir]} " != *" $to "* ]]; then
    echo "layering: $f includes \"$inc\" ($to), which $dir may not depend on" >&2
    bad=$((bad + 1))
  fi
done < <(grep -rHE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' \
           --include='*.h' --include='*.cpp' --include='*.cu' --include='*.cuh' \
           "${folders[@]}")
# Every folder of the product must have its row (a new one needs one).
for d in src/*/ "${folders[@]:1}"; do
  d=${d%/}
  [ -n "${allowed[$d]+x}" ] || { echo "layering: $d has no row in the table" >&2; bad=$((bad + 1)); }
done
[ "$checked" -gt 100 ] || { echo "layering: only $checked includes checked; is SOURCE_DIR right?" >&2; exit 1; }
[ "$bad" -eq 0 ] || exit 1
echo "layering: $checked cross-folder includes, all allowed"
