# Shared by the tests in tests/slurm/: they run against the one-node cluster that the ctest
# fixture slurm_cluster_up starts (scripts/slurm-local.sh) and slurm_cluster_down stops.
#   usage (in a test): source "$(dirname "$0")/common.bash" "$@"   → $llmpi, $src, $work
# Where the cluster cannot exist (not root, Slurm's packages missing) the test FAILS: CI runs
# as root after scripts/install-deps.sh, and a Slurm test that did not run must not pass.
# Elsewhere leave them out with `ctest -LE slurm`.
set -euo pipefail
llmpi=$1
src=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "the Slurm tests run as root (slurmd starts the job steps); leave them out with ctest -LE slurm"
for p in munge slurmctld slurmd slurm-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    fail "package $p is missing (scripts/install-deps.sh installs it)"
done
eval "$(bash "$src/scripts/slurm-local.sh" env)"
scontrol ping >/dev/null 2>&1 || fail "no Slurm controller answers (SLURM_CONF=$SLURM_CONF): did slurm_cluster_up run?"
export OPENBLAS_NUM_THREADS=1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
work=$(mktemp -d /tmp/llmpi-slurm-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
t_start=$SECONDS
note() { echo "[$(date +%T) +$((SECONDS - t_start))s] $*"; }

# A corpus every Debian machine with the demo's packages has, prepared once per test.
prepare_data() {
  "$llmpi" prepare /usr/share/games/fortunes/fortunes --delimiter % --out data --vocab-size 300 --quiet
}

# A tiny 2-rank run (dp = 2); more --set arguments after it.
tiny_config=("$src/configs/tiny.toml"
  --set model.vocab_size=300 --set model.n_layer=2 --set model.d_model=64 --set model.n_head=2
  --set model.max_seq_len=64 --set train.seq_len=64 --set train.batch_size=4
  --set train.warmup_steps=2 --set train.log_every=1 --set train.eval_every=0
  --set train.eval_batches=2 --set data.train=data/train.bin --set data.val=data/val.bin
  --set data.tokenizer=data/tokenizer.bpe --set parallel.dp=2)

# The same run trained under mpiexec without Slurm or interruption: the reference.
reference_run() {  # reference_run RUN_DIR [--set ...]
  local dir=$1; shift
  local root=()
  [ "$(id -u)" -eq 0 ] && root=(--allow-run-as-root)
  mpiexec -n 2 --oversubscribe --bind-to none "${root[@]}" \
    "$llmpi" train "${tiny_config[@]}" "$@" --set run.dir="$dir" > "$dir.log" 2>&1 ||
    { cat "$dir.log"; fail "the reference run failed"; }
}

# The id of the job `llmpi slurm submit` printed (its first "submitted job N" line).
submitted_id() { sed -n 's/^submitted job \([0-9]*\).*/\1/p' "$1" | head -1; }

job_state() { scontrol show job -o "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
job_field() { scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# Waits until job $1 is in one of the states $2 (a regex), at most $3 seconds.
wait_state() {
  local id=$1 want=$2 limit=$3 s=""
  for _ in $(seq $((limit * 5))); do
    s=$(job_state "$id")
    [[ "$s" =~ ^($want)$ ]] && return 0
    sleep 0.2
  done
  fail "job $id is '$s' after ${limit}s, expected $want; its output:
$(cat "$(ls run*/slurm/"$id".out 2>/dev/null | head -1)" 2>/dev/null)"
}

# Waits until file $1 has a line matching $2, at most $3 seconds.
wait_line() {
  for _ in $(seq $(($3 * 5))); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  fail "no line matching '$2' in $1 after $3 s:
$(cat "$1" 2>/dev/null)"
}

# Bitwise equality of two HDF5 files' datasets.
same_h5() { /usr/bin/python3 "$src/scripts/h5_equal.py" "$1" "$2" || fail "$2 differs from $1"; }
