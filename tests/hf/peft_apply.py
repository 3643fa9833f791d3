#!/usr/bin/env python3
"""An independent check of an exported PEFT adapter: applies adapter/ to the base model's
Hugging Face export the way PEFT's LoRA layers merge (peft.tuners.lora: W' = W + s * B @ A,
transposed for fan_in_fan_out (GPT-2's Conv1D, whose weight is [in, out]); s = lora_alpha / r,
or lora_alpha / sqrt(r) with use_rslora; per-module r and alpha from rank_pattern /
alpha_pattern, whose keys match a module name's dotted suffix), with nothing but numpy, and
compares the result with the merged export of the same run: every adapted tensor within
1e-5 (relative to its largest entry), every other tensor equal.

PEFT names a module as the model object does (GPT2LMHeadModel: transformer.h.N.attn.c_attn);
a checkpoint may hold it without the base model's prefix (transformer.), which
from_pretrained accepts, so both spellings are looked up.

usage: peft_apply.py BASE_HF_DIR MERGED_HF_DIR  (the adapter in MERGED_HF_DIR/adapter)"""
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_forward import read_safetensors, read_weights  # noqa: E402


def pattern_value(patterns, module, default):
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return default


def weight_key(weights, module):
    for name in (module + ".weight", re.sub(r"^(transformer|model)\.", "", module) + ".weight"):
        if name in weights:
            return name
    raise SystemExit(f"no base weight for adapted module {module}")


def main(base_dir, merged_dir):
    adapter = os.path.join(merged_dir, "adapter")
    cfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
    assert cfg["peft_type"] == "LORA" and cfg["task_type"] == "CAUSAL_LM", cfg
    assert cfg["lora_dropout"] == 0 and cfg["bias"] == "none", cfg
    lora = read_safetensors(os.path.join(adapter, "adapter_model.safetensors"))
    base, merged = read_weights(base_dir), read_weights(merged_dir)
    expect = dict(base)
    # A head adapter on tied embeddings unties them: lm_head starts as the embedding.
    modules = sorted({k[len("base_model.model."):-len(".lora_A.weight")]
                      for k in lora if k.endswith(".lora_A.weight")})
    assert modules and all(k.startswith("base_model.model.") for k in lora), sorted(lora)[:4]
    targets = set(cfg["target_modules"])
    adapted = set()
    for m in modules:
        assert m.split(".")[-1] in targets or any(m.endswith("." + t) or m == t for t in targets), (m, targets)
        A = lora[f"base_model.model.{m}.lora_A.weight"]
        B = lora[f"base_model.model.{m}.lora_B.weight"]
        r = pattern_value(cfg.get("rank_pattern", {}), m, cfg["r"])
        alpha = pattern_value(cfg.get("alpha_pattern", {}), m, cfg["lora_alpha"])
        assert A.shape[0] == r and B.shape[1] == r, (m, A.shape, B.shape, r)
        s = alpha / (np.sqrt(r) if cfg["use_rslora"] else r)
        delta = s * (B @ A)
        if cfg["fan_in_fan_out"] and m.split(".")[-1] != "lm_head":
            delta = delta.T
        if m.endswith("lm_head") and "lm_head.weight" not in base:
            key = "lm_head.weight"
            expect[key] = base[weight_key(base, "model.embed_tokens" if "model.embed_tokens.weight" in base
                                          else "transformer.wte")]
        else:
            key = weight_key(base, m)
        assert expect[key].shape == delta.shape, (m, expect[key].shape, delta.shape)
        expect[key] = expect[key] + delta
        adapted.add(key)
    assert set(expect) == set(merged), (sorted(set(expect) ^ set(merged)))
    worst = 0.0
    for k, want in expect.items():
        got = merged[k]
        if k in adapted:
            err = np.abs(got - want).max() / max(np.abs(want).max(), 1e-30)
            worst = max(worst, err)
            assert err < 1e-5, f"{k}: merged export differs from base + PEFT delta by {err:.2e}"
        else:
            assert np.array_equal(got, want), f"{k}: not adapted, yet differs from the base"
    moved = max(np.abs(merged[k] - base[k]).max() for k in adapted if k in base)
    assert moved > 0, "the adapters are zero: nothing to check"
    print(f"peft_apply: {len(modules)} adapted modules ({', '.join(sorted(targets))}), "
          f"{len(expect) - len(adapted)} tensors unchanged, worst relative difference {worst:.1e}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
