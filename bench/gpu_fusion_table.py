#!/usr/bin/env python3
"""Table of bench/gpu_fusion.sh's runs, in the format of docs/performance.md.

Input: the JSON lines of gpu_fusion.jsonl (llmpi_gpu_bench's and torch_reference.py's keys,
plus "variant": torch | unfused | fused | the extra variants). Per config: tokens/s, the ratio
to PyTorch and to llmpi's unfused run, MFU, the median step with its range, peak memory,
launch → first step and the loss; then issue 16's targets (GPT-2 124M ≥ 1.2 × PyTorch,
TinyLlama shape ≥ 58 % MFU), met or missed by how much. Usage: gpu_fusion_table.py FILE.
Exit status 1 when FILE holds no result.
"""
import json
import sys

NAMES = {"gpt2-124m": "GPT-2 124M", "tinyllama-1.1b": "TinyLlama-1.1B shape", "tiny": "tiny.toml"}
TARGET_RATIO = {"gpt2-124m": 1.2}  # tokens/s over PyTorch's, same call, same card
TARGET_MFU = {"tinyllama-1.1b": 0.58}


def trainer(r):
    v = r["variant"]
    if v == "torch":
        return "PyTorch (torch.compile)"
    if v in ("fused", "unfused"):
        return f"llmpi, LLMPI_FUSED={1 if v == 'fused' else 0}"
    return f"llmpi, {v} (on: {r.get('fused', '?')})"


def ratio(r, base):
    if base is None or base is r:
        return "1" if base is r else ""
    return f"{r['tokens_per_s'] / base['tokens_per_s']:.3f} ×"


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    if not rows:
        print(f"gpu_fusion_table: no results in {path}")
        return 1
    by = {(r["config"], r["variant"]): r for r in rows}
    configs = list(dict.fromkeys(r["config"] for r in rows))
    order = {"fused": 0, "unfused": 1, "torch": 9}
    cards = sorted({r.get("card", "?") for r in rows})
    print(f"card(s): {', '.join(cards)}; median of {rows[0].get('timed_steps')} steps after "
          f"{rows[0].get('warmup_steps')} warm-up steps (CUDA events); MFU over 989.4 TFLOP/s")
    print()
    print("| config | trainer | tokens/s | vs PyTorch | vs unfused | MFU | step ms (median, min–max)"
          " | peak GiB (used / reserved) | launch → first step | loss first → last |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cfg in configs:
        torch, unfused = by.get((cfg, "torch")), by.get((cfg, "unfused"))
        first = True
        for r in sorted((r for r in rows if r["config"] == cfg),
                        key=lambda r: order.get(r["variant"], 5)):
            label = f"{NAMES.get(cfg, cfg)}, {r['batch']} × {r['seq_len']}" if first else ""
            first = False
            print(f"| {label} | {trainer(r)} | {r['tokens_per_s']:,.0f} | {ratio(r, torch)} | "
                  f"{ratio(r, unfused) if r['variant'] != 'torch' else ''} | {r['mfu']:.1%} | "
                  f"{r['median_step_ms']:.1f} ({r['min_step_ms']:.1f}–{r['max_step_ms']:.1f}) | "
                  f"{r['peak_mem_gib']:.2f} / {r['peak_reserved_gib']:.2f} | "
                  f"{r['launch_to_first_step_s']:.1f} s | "
                  f"{r['loss_first']:.2f} → {r['loss_last']:.2f} |")
    print()
    for cfg, want in TARGET_RATIO.items():
        ours, torch = by.get((cfg, "fused")), by.get((cfg, "torch"))
        if not (ours and torch):
            print(f"target {NAMES[cfg]} ≥ {want} × PyTorch: not measured (a run is missing)")
            continue
        got = ours["tokens_per_s"] / torch["tokens_per_s"]
        need_ms = torch["median_step_ms"] / want
        verdict = "met" if got >= want else (
            f"missed: needs {need_ms:.1f} ms per step, "
            f"{ours['median_step_ms'] - need_ms:.1f} ms less")
        print(f"target {NAMES[cfg]} ≥ {want} × PyTorch: {got:.3f} × — {verdict}")
    for cfg, want in TARGET_MFU.items():
        ours = by.get((cfg, "fused"))
        if not ours:
            print(f"target {NAMES[cfg]} ≥ {want:.0%} MFU: not measured (the run is missing)")
            continue
        need_ms = ours["median_step_ms"] * ours["mfu"] / want
        verdict = "met" if ours["mfu"] >= want else (
            f"missed: needs {need_ms:.1f} ms per step, "
            f"{ours['median_step_ms'] - need_ms:.1f} ms less")
        print(f"target {NAMES[cfg]} ≥ {want:.0%} MFU: {ours['mfu']:.1%} — {verdict}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: gpu_fusion_table.py gpu_fusion.jsonl")
    sys.exit(main(sys.argv[1]))
