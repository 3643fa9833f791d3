#!/usr/bin/env bash
# Builds and runs bench/host_ops.cpp (single-core timing of attention and GELU, f32) against
# an existing CMake build dir, with that build's compile flags and link line, so no CMake
# target is needed. The library must be built first (e.g. `cmake --build BUILD --target llmpi`).
#   usage: bench/host_ops.sh [BUILD_DIR]        (default build/cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build/cpu}"
for f in compile_commands.json build.ninja libllmpi_core.a; do
  [ -f "$build/$f" ] || { echo "bench: no $build/$f (need a built Ninja build dir)" >&2; exit 1; }
done

# Compile flags of a library source (includes, defines, -O level, -std), minus -o/-c.
flags=$(python3 - "$build" <<'EOF'
import json, shlex, sys
cmds = json.load(open(sys.argv[1] + "/compile_commands.json"))
cmd = next(e["command"] for e in cmds if e["file"].endswith("src/backend/host/attention.cpp"))
args = shlex.split(cmd)[1:]
out, skip = [], False
for a in args:
    if skip: skip = False; continue
    if a in ("-o", "-c"): skip = True; continue
    out.append(a)
print(shlex.join(out))
EOF
)
# Link libraries of the llmpi executable (paths are relative to the build dir).
libs=$(awk '/^build llmpi:/ {f=1} f && /LINK_LIBRARIES/ {sub(/^ *LINK_LIBRARIES = /, "");
                                                       print; exit}' "$build/build.ninja")
libs=${libs//libllmpi_core.a/$build/libllmpi_core.a}
exe="$build/bench_host_ops"
eval "c++ $flags -o $exe.o -c bench/host_ops.cpp"
eval "c++ $exe.o -o $exe $libs"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
echo "host ops on $(nproc) cores (load $(cut -d' ' -f1-3 /proc/loadavg))," \
  "OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS, $(date -u +%F), commit $(git rev-parse --short HEAD)"
"$exe"
