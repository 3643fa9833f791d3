#!/usr/bin/python3
"""Chaos test of restarts: kill -9 a random rank at random moments, relaunch, and prove that the
run always resumes from the newest valid checkpoint and ends bitwise equal to an uninterrupted
run.

    /usr/bin/python3 scripts/chaos.py --llmpi build/cpu/llmpi [--kills 10] [--ranks 2]
        [--steps 48] [--seed 1] [--work DIR] [--report FILE] [--keep]

1. prepares a small corpus (the fortunes file every Debian machine with the demo's packages has)
   and trains a tiny model under `mpiexec -n RANKS` without interruption: the reference;
2. trains the same run again, and KILLS times: launches `llmpi train` (the same command, which
   resumes by itself), waits for a moment — alternately while a checkpoint is being written
   (its .tmp file exists) and at a random time — then kill -9s one rank chosen at random, and
   checks that the whole job ends (no rank left hanging) and that the next launch resumes from
   the newest checkpoint file present (none rejected, interrupted saves removed);
3. lets the last launch finish and compares model.h5 and the last checkpoint (parameters, AdamW
   moments, data mapping) with the reference, bit for bit (scripts/h5_equal.py).
Prints a table of every kill and a verdict; --report writes it as Markdown. Exit 0 on success,
1 on any failure. Outside Slurm; CI runs it with --kills 3 (tests/e2e/chaos_restarts.sh),
bench/chaos.sh the full version whose last result is in docs/slurm.md.
"""
import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
CORPUS = "/usr/share/games/fortunes/fortunes"


def fail(msg):
    print(f"chaos: FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def say(msg):
    print(f"chaos: {msg}", flush=True)


def mpiexec_prefix(ranks):
    cmd = ["mpiexec", "-n", str(ranks), "--oversubscribe", "--bind-to", "none"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    return cmd


def train_command(args, run_dir):
    sets = {
        "model.vocab_size": 300, "model.n_layer": 2, "model.d_model": 64, "model.n_head": 2,
        "model.max_seq_len": 64, "train.seq_len": 64, "train.batch_size": 4,
        "train.steps": args.steps, "train.warmup_steps": 4, "train.log_every": 1,
        "train.eval_every": 0, "train.eval_batches": 2, "parallel.dp": args.ranks,
        "checkpoint.every": 2, "checkpoint.keep_last": 2,
        "data.train": "data/train.bin", "data.val": "data/val.bin",
        "data.tokenizer": "data/tokenizer.bpe", "run.dir": run_dir,
    }
    cmd = mpiexec_prefix(args.ranks) + [args.llmpi, "train", os.path.join(SOURCE, "configs/tiny.toml")]
    for k, v in sets.items():
        cmd += ["--set", f"{k}={v}"]
    return cmd


def rank_pids(launcher_pid):
    """The llmpi processes started by mpiexec (its children named llmpi)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        if ppid == launcher_pid and comm == "llmpi":
            pids.append(int(entry))
    return sorted(pids)


def checkpoint_steps(run_dir):
    d = os.path.join(run_dir, "checkpoints")
    steps = []
    if os.path.isdir(d):
        for name in os.listdir(d):
            m = re.fullmatch(r"step_(\d+)\.h5", name)
            if m:
                steps.append(int(m.group(1)))
    return sorted(steps)


def temporaries(run_dir):
    """The .tmp files of saves in progress, as (name, inode, mtime) so that a new one differs
    from a stale one of the same name left by an earlier kill."""
    d = os.path.join(run_dir, "checkpoints")
    found = set()
    try:
        for n in os.listdir(d):
            if n.endswith(".tmp"):
                st = os.stat(os.path.join(d, n))
                found.add((n, st.st_ino, st.st_mtime_ns))
    except OSError:
        pass
    return found


def saving(run_dir, stale):
    return bool(temporaries(run_dir) - stale)


def last_step(log_text):
    steps = re.findall(r"^step +(\d+)/", log_text, re.M)
    return int(steps[-1]) if steps else None


def launch(cmd, log_path, env):
    log = open(log_path, "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    return p, log


def run_reference(args, env):
    say("reference run (uninterrupted) ...")
    t0 = time.time()
    p = subprocess.run(train_command(args, "ref"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=env, text=True)
    if p.returncode != 0:
        print(p.stdout)
        fail(f"the reference run exited {p.returncode}")
    seconds = time.time() - t0
    say(f"reference: {args.steps} steps in {seconds:.1f} s")
    return seconds


def one_kill(args, env, k, mode, ref_seconds, rng):
    """Launch, kill one rank at a moment chosen by `mode`, check that the job ends."""
    before = checkpoint_steps("chaos")
    stale = temporaries("chaos")  # left by the previous kill; the launch removes them
    log_path = f"chaos-launch-{k}.log"
    p, log = launch(train_command(args, "chaos"), log_path, env)
    t0 = time.time()
    ranks = []
    for _ in range(600):  # the ranks appear within seconds
        ranks = rank_pids(p.pid)
        if len(ranks) == args.ranks or p.poll() is not None:
            break
        time.sleep(0.01)
    if len(ranks) != args.ranks:
        fail(f"launch {k}: found {len(ranks)} of {args.ranks} ranks ({log_path})")
    # When to kill. "start-up": within the first second (loading, verifying, resuming).
    # "checkpoint write": once the launch has saved a checkpoint of its own (progress), while
    # the next one is being written (a new .tmp file), a few ms in. "random": once the launch
    # has saved a checkpoint of its own, at a random moment early in the rest of the run.
    done = before[-1] if before else 0
    remaining = ref_seconds * max(1, args.steps - done) / args.steps
    moment = mode
    limit = time.time() + 3 * remaining + 30
    if mode == "start-up":
        time.sleep(rng.uniform(0.05, 1.0))
    else:
        while time.time() < limit and p.poll() is None and \
                not [s for s in checkpoint_steps("chaos") if s > done]:
            time.sleep(0.005)
        if mode == "checkpoint write":
            stale |= temporaries("chaos")  # the save that just completed
            while time.time() < limit and p.poll() is None and not saving("chaos", stale):
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.02))
        else:
            # Within the first quarter of what is left after the checkpoint just saved, at the
            # reference's pace: a launch may run several times faster than the reference did
            # (measured while other tests loaded the machine) and must still be running.
            saved = max([done] + checkpoint_steps("chaos"))
            time.sleep(rng.uniform(0, 0.25 * ref_seconds * max(1, args.steps - saved) / args.steps))
    if p.poll() is not None:
        log.close()
        return None  # finished (or failed) before the kill: the caller decides
    during_save = saving("chaos", stale)
    victim_index = rng.randrange(args.ranks)
    victim = ranks[victim_index]
    try:
        os.kill(victim, signal.SIGKILL)
    except ProcessLookupError:
        pass
    killed_at = time.time() - t0
    try:
        rc = p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        for pid in rank_pids(p.pid):
            os.kill(pid, signal.SIGKILL)
        p.kill()
        fail(f"launch {k}: the job did not end within 120 s after rank {victim_index} was killed (a hang)")
    log.close()
    time.sleep(0.2)
    left = [pid for pid in ranks if os.path.exists(f"/proc/{pid}") and
            open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0] != "Z"]
    if left:
        fail(f"launch {k}: ranks {left} still running after mpiexec exited")
    with open(log_path) as f:
        text = f.read()
    if during_save and moment == "random":
        moment = "random, during a checkpoint write"
    return {"launch": k, "moment": moment, "rank": victim_index,
            "at_s": killed_at, "step": last_step(text), "mpiexec_rc": rc}


def check_resume(log_path, expected_step):
    """The launch logged in log_path resumed from checkpoint `expected_step` (None: fresh)."""
    with open(log_path) as f:
        text = f.read()
    if "rejected" in text:
        fail(f"{log_path}: a checkpoint was rejected, yet saves are atomic:\n{text}")
    m = re.search(r"^resuming from (\S+) at step (\d+)", text, re.M)
    got = int(m.group(2)) if m else None
    decided = m is not None or re.search(r"^model: ", text, re.M) is not None
    if not decided:
        return "killed before resuming", 0
    if got != expected_step:
        fail(f"{log_path}: resumed from step {got}, but the newest checkpoint present was {expected_step}")
    removed = len(re.findall(r"^removed .* \(an interrupted save\)", text, re.M))
    return got, removed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llmpi", required=True, help="the llmpi binary")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", help="working directory (default: a new temporary one)")
    ap.add_argument("--report", help="write the result as Markdown to this file")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    args = ap.parse_args()
    args.llmpi = os.path.abspath(args.llmpi)
    if args.report:
        args.report = os.path.abspath(args.report)
    if not os.access(args.llmpi, os.X_OK):
        fail(f"--llmpi {args.llmpi}: not an executable")
    if not os.path.exists(CORPUS):
        fail(f"missing {CORPUS} (apt-get install fortunes-min)")
    rng = random.Random(args.seed)
    work = args.work or tempfile.mkdtemp(prefix="llmpi-chaos-")
    os.makedirs(work, exist_ok=True)
    os.chdir(work)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMPI_MCA_btl="self,vader",
               OMPI_MCA_btl_vader_single_copy_mechanism="none", OMPI_MCA_rmaps_base_oversubscribe="1")
    t_start = time.time()
    try:
        subprocess.run([args.llmpi, "prepare", CORPUS, "--delimiter", "%", "--out", "data",
                        "--vocab-size", "300", "--quiet"], check=True, env=env)
        for d in ("ref", "chaos"):
            shutil.rmtree(d, ignore_errors=True)
        ref_seconds = run_reference(args, env)

        rows = []
        k = 0
        while len(rows) < args.kills:
            k += 1
            if k > 4 * args.kills:
                fail(f"only {len(rows)} of {args.kills} kills landed in {k - 1} launches")
            expected = (checkpoint_steps("chaos") or [None])[-1]
            mode = ("checkpoint write", "random", "checkpoint write", "random", "start-up")[len(rows) % 5]
            row = one_kill(args, env, k, mode, ref_seconds, rng)
            got, removed = check_resume(f"chaos-launch-{k}.log", expected)
            if row is None:
                with open(f"chaos-launch-{k}.log") as f:
                    text = f.read()
                if f"saved chaos/model.h5" in text:
                    fail(f"the run finished before kill {len(rows) + 1} of {args.kills}; use more --steps")
                fail(f"launch {k} ended on its own before the kill:\n{text}")
            row["resumed_from"] = got
            row["removed_tmp"] = removed
            rows.append(row)
            start = "started fresh" if got is None else got if isinstance(got, str) else f"resumed from step {got}"
            say(f"kill {len(rows)}/{args.kills}: launch {k} {start}"
                f", rank {row['rank']} killed {row['at_s']:.2f} s in at step {row['step']}"
                f" ({row['moment']})")
        # The last launch runs to the end.
        expected = (checkpoint_steps("chaos") or [None])[-1]
        final_log = f"chaos-launch-{k + 1}.log"
        with open(final_log, "w") as log:
            rc = subprocess.run(train_command(args, "chaos"), stdout=log, stderr=subprocess.STDOUT,
                                env=env).returncode
        got, removed = check_resume(final_log, expected)
        if rc != 0:
            fail(f"the final launch exited {rc} ({final_log})")
        say(f"final launch resumed from step {got} and finished")

        results = []
        for name in ("model.h5", f"checkpoints/step_{args.steps:08d}.h5"):
            p = subprocess.run(["/usr/bin/python3", os.path.join(HERE, "h5_equal.py"),
                                os.path.join("ref", name), os.path.join("chaos", name)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            results.append((name, p.returncode, p.stdout.strip().splitlines()[-1]))
            if p.returncode != 0:
                print(p.stdout)
        equal = all(rc == 0 for _, rc, _ in results)

        lines = [
            f"Chaos test: {args.kills} kills of a random rank (kill -9) over one {args.steps}-step run "
            f"on {args.ranks} ranks (tiny GPT-2, a checkpoint every 2 steps), seed {args.seed}, "
            f"{subprocess.run([args.llmpi, 'version'], stdout=subprocess.PIPE, text=True).stdout.strip()}, "
            f"{time.strftime('%Y-%m-%d')}; {time.time() - t_start:.0f} s in all.",
            "",
            "| kill | moment | rank killed | seconds after launch | last step logged | resumed from step | interrupted saves removed |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, r in enumerate(rows):
            resumed = r["resumed_from"] if r["resumed_from"] is not None else "— (fresh start)"
            if isinstance(resumed, str) and resumed.startswith("killed"):
                resumed = "— (killed before it resumed)"
            lines.append(f"| {i + 1} | {r['moment']} | {r['rank']} | {r['at_s']:.2f} | "
                         f"{r['step'] if r['step'] is not None else '—'} | {resumed} | {r['removed_tmp']} |")
        lines.append(f"| end | — | — | — | {args.steps} | {got} | {removed} |")
        lines.append("")
        during = sum(1 for r in rows if "checkpoint write" in r["moment"])
        lines.append(f"{during} of the kills landed while a checkpoint was being written. Every relaunch "
                     "resumed from the newest checkpoint file present; none was rejected.")
        for name, rc, summary in results:
            lines.append(f"- `{name}` against the uninterrupted run: {summary.replace('h5_equal: ', '')}")
        report = "\n".join(lines)
        print(report)
        if args.report:
            with open(args.report, "w") as f:
                f.write(report + "\n")
        if not equal:
            fail("the interrupted run does not end bitwise equal to the uninterrupted one")
        say("PASS")
    finally:
        if not args.keep and not args.work:
            os.chdir("/")
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
