#!/usr/bin/env bash
# A single-node Slurm cluster on localhost for the tests: munged, slurmctld and slurmd from
# Debian's packages (scripts/install-deps.sh installs them), no systemd, no cgroups, nothing
# written outside $LLMPI_SLURM_BASE but /run/munge-free state: every daemon gets its own
# socket, key, pid, log and spool files under the base directory, and clients find the
# cluster through SLURM_CONF (never /etc/slurm). Must run as root (slurmd starts job steps).
#   scripts/slurm-local.sh up      start what is not running (idempotent); waits until the
#                                  node takes jobs; prints the SLURM_CONF line to use
#   scripts/slurm-local.sh down    cancel the jobs, stop the daemons this script started,
#                                  by the PIDs in its pid files (never by name)
#   scripts/slurm-local.sh env     print `export SLURM_CONF=...` for the clients
# Exit codes: 0 done, 1 a failure (logs shown; also where it cannot run: not root, or Slurm's
# packages missing — the test suite's Slurm tests then fail, they are never skipped).
# Environment: LLMPI_SLURM_BASE (default /tmp/llmpi-slurm), LLMPI_SLURM_CPUS (CPUs the node
# advertises, default max(nproc, 4): tests oversubscribe like mpiexec --oversubscribe).
# The node is named `llmpi-ci` and reached at 127.0.0.1: nothing needs the machine's
# hostname to resolve.
set -euo pipefail

base=${LLMPI_SLURM_BASE:-/tmp/llmpi-slurm}
node=llmpi-ci
cpus=${LLMPI_SLURM_CPUS:-$(( $(nproc) > 4 ? $(nproc) : 4 ))}
conf=$base/etc/slurm.conf
export SLURM_CONF=$conf

say() { echo "[slurm-local $(date +%T)] $*"; }
die() { echo "slurm-local: error: $*" >&2; exit 1; }
# The pid file $1 names a live process whose command name is $2.
alive() {
  local p
  p=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] &&
    [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]
}

cannot() { echo "slurm-local: cannot run here: $*" >&2; exit 1; }
need_root() { [ "$(id -u)" -eq 0 ] || cannot "must run as root (slurmd launches job steps as their user)"; }

check_packages() {
  local p missing=()
  for p in munge slurmctld slurmd slurm-client; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] || cannot "missing packages: ${missing[*]} (run scripts/install-deps.sh as root)"
}

start_munge() {
  local m=$base/munge
  install -d -o munge -g munge -m 0755 "$m"
  if [ ! -s "$m/munge.key" ]; then
    mungekey --create --keyfile="$m/munge.key"
    chown munge:munge "$m/munge.key"
    chmod 0400 "$m/munge.key"
  fi
  if alive "$m/munged.pid" munged; then
    say "munged already running (pid $(cat "$m/munged.pid"))"
    return
  fi
  rm -f "$m/munged.pid"
  runuser -u munge -- /usr/sbin/munged --socket="$m/munge.socket" --key-file="$m/munge.key" \
    --pid-file="$m/munged.pid" --log-file="$m/munged.log" --seed-file="$m/munged.seed"
  for _ in $(seq 100); do [ -s "$m/munged.pid" ] && break; sleep 0.05; done
  alive "$m/munged.pid" munged || die "munged did not start; see $m/munged.log"
  munge --socket="$m/munge.socket" -n | unmunge --socket="$m/munge.socket" >/dev/null ||
    die "munge round trip failed; see $m/munged.log"
  say "munged started (pid $(cat "$m/munged.pid"))"
}

write_conf() {
  mkdir -p "$base"/{etc,state,spool,log,run}
  local mem
  mem=$(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo)
  : > "$base/etc/plugstack.conf"
  cat > "$conf.new" <<CONF
# Written by scripts/slurm-local.sh: one node on localhost, for llmpi's tests.
ClusterName=llmpi-ci
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job is held before it may start again (default
# 120 s): short, so that the requeue tests take seconds.
AuthInfo=socket=$base/munge/munge.socket,cred_expire=10
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$base/log/jobcomp.txt
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
PlugStackConfig=$base/etc/plugstack.conf
ReturnToService=2
JobRequeue=1
MinJobAge=300
KillWait=5
InactiveLimit=0
MessageTimeout=20
MailProg=/bin/true
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$base/state
SlurmdSpoolDir=$base/spool
SlurmctldPidFile=$base/run/slurmctld.pid
SlurmdPidFile=$base/run/slurmd.pid
SlurmctldLogFile=$base/log/slurmctld.log
SlurmdLogFile=$base/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$node NodeAddr=127.0.0.1 NodeHostname=$node CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
  if [ -f "$conf" ] && cmp -s "$conf" "$conf.new"; then
    rm "$conf.new"
    return 1  # unchanged
  fi
  mv "$conf.new" "$conf"
  return 0
}

stop_pid() {  # stop_pid <pidfile> <command name>
  local pf=$1 name=$2 p
  p=$(cat "$pf" 2>/dev/null) || return 0
  if alive "$pf" "$name"; then
    kill -TERM "$p"
    for _ in $(seq 150); do alive "$pf" "$name" || break; sleep 0.1; done
    if alive "$pf" "$name"; then
      say "$name (pid $p) ignored TERM for 15 s; sending KILL"
      kill -KILL "$p"
    fi
    say "stopped $name (pid $p)"
  fi
  rm -f "$pf"
}

up() {
  need_root
  check_packages
  local t0=$SECONDS
  start_munge
  if write_conf && { alive "$base/run/slurmctld.pid" slurmctld || alive "$base/run/slurmd.pid" slurmd; }; then
    say "slurm.conf changed: restarting slurmctld and slurmd"
    stop_daemons
  fi
  if alive "$base/run/slurmctld.pid" slurmctld; then
    say "slurmctld already running (pid $(cat "$base/run/slurmctld.pid"))"
  else
    rm -f "$base/run/slurmctld.pid"
    slurmctld -f "$conf" -i
  fi
  if alive "$base/run/slurmd.pid" slurmd; then
    say "slurmd already running (pid $(cat "$base/run/slurmd.pid"))"
  else
    rm -f "$base/run/slurmd.pid"
    slurmd -f "$conf" -N "$node"
  fi
  local state=""
  for _ in $(seq 300); do
    if scontrol ping >/dev/null 2>&1; then
      state=$(sinfo -h -n "$node" -o %T 2>/dev/null || true)
      case $state in
        idle*|mixed*|allocated*|completing*) break ;;
        down*|drain*) scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
      esac
    fi
    sleep 0.1
  done
  case $state in
    idle*|mixed*|allocated*|completing*) ;;
    *)
      tail -n 20 "$base/log/slurmctld.log" "$base/log/slurmd.log" >&2 || true
      die "the node did not come up (state '$state'); logs above"
      ;;
  esac
  say "cluster up in $((SECONDS - t0)) s: slurmctld $(cat "$base/run/slurmctld.pid"), slurmd $(cat "$base/run/slurmd.pid"), munged $(cat "$base/munge/munged.pid"); node $node, $cpus CPUs"
  echo "export SLURM_CONF=$conf"
}

stop_daemons() {
  stop_pid "$base/run/slurmd.pid" slurmd
  stop_pid "$base/run/slurmctld.pid" slurmctld
}

down() {
  need_root
  check_packages
  # Jobs first: slurmd exits on TERM but leaves slurmstepd and the job's processes behind.
  if alive "$base/run/slurmctld.pid" slurmctld && scontrol ping >/dev/null 2>&1; then
    local jobs
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      say "cancelling jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 150); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.1; done
    fi
  fi
  stop_daemons
  stop_pid "$base/munge/munged.pid" munged
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
