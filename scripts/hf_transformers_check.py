#!/usr/bin/env python3
"""Checks that Hugging Face transformers loads directories written by `llmpi export-hf` and
computes llmpi's logits. Offline; needs only torch and transformers (a GPU machine's
preinstalled ones). Run by scripts/hf-transformers-check.sh, which exports the directories.

usage: hf_transformers_check.py CASE_DIR...
Each CASE_DIR (written by tests/hf/hf_check_fixture.cpp) holds hf/ (the export), ids.txt (token
ids), llmpi_logits.f32 (llmpi's [T, V] float32 logits of the exported weights), tok_ids.txt
(llmpi's ids of the sample text below) and tol.txt (the logit tolerance).
Prints one line per case; exits 1 if any case fails."""
import os
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

failed = 0
for case in sys.argv[1:]:
    hf = os.path.join(case, "hf")
    ids = [int(t) for t in open(os.path.join(case, "ids.txt")).read().split()]
    tol = float(open(os.path.join(case, "tol.txt")).read())
    want = np.fromfile(os.path.join(case, "llmpi_logits.f32"), dtype="<f4")
    model = AutoModelForCausalLM.from_pretrained(hf, local_files_only=True, torch_dtype="auto")
    model.eval()
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        out = model(torch.tensor([ids])).logits[0].float().numpy()
    want = want.reshape(out.shape)
    err = float(np.abs(out - want).max())
    scale = float(np.abs(want).max())
    tok = AutoTokenizer.from_pretrained(hf, local_files_only=True)
    text = "Hello world, it's 2024!"
    tok_ids = tok(text, add_special_tokens=False)["input_ids"]
    ok = err <= tol
    failed += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {case}: {type(model).__name__} {dtype}, max |logit diff| "
          f"{err:.3g} (tolerance {tol:g}, logit scale {scale:.3g}); tokenizer {type(tok).__name__} "
          f"encodes {text!r} to {tok_ids[:12]}")
    ref = open(os.path.join(case, "tok_ids.txt")).read().split() if os.path.exists(os.path.join(case, "tok_ids.txt")) else None
    if ref is not None and [int(t) for t in ref] != tok_ids:
        failed += 1
        print(f"FAIL {case}: transformers' tokenizer gives {tok_ids}, llmpi {ref}")
sys.exit(1 if failed else 0)
