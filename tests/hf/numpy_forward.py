#!/usr/bin/env python3
"""An independent reference for exported models: reads a Hugging Face model directory
(config.json + model.safetensors or shards with model.safetensors.index.json; F32/BF16/F16)
with nothing but numpy, and computes the logits of GPT2LMHeadModel or LlamaForCausalLM as
transformers defines them (GPT-2: Conv1D y = x @ W + b, tanh GELU, LayerNorm; Llama: RMSNorm,
rotate_half RoPE, grouped kv heads, SwiGLU). float64 throughout.

usage: numpy_forward.py DIR OUT.f32 ID [ID ...]
writes the [T, V] logits as little-endian float32 to OUT.f32."""
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        raw = data[base + b:base + end]
        if e["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        elif e["dtype"] == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float64)
        elif e["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            a = u.view(np.float32).astype(np.float64)
        else:
            raise SystemExit(f"{path}: {name}: unsupported dtype {e['dtype']}")
        out[name] = a.reshape(e["shape"])
    return out


def read_weights(d):
    single = os.path.join(d, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    with open(os.path.join(d, "model.safetensors.index.json")) as f:
        index = json.load(f)
    w = {}
    for shard in sorted(set(index["weight_map"].values())):
        w.update(read_safetensors(os.path.join(d, shard)))
    return w


def softmax_causal(scores):
    t = scores.shape[-1]
    mask = np.triu(np.ones((t, t), dtype=bool), 1)
    scores = np.where(mask, -np.inf, scores)
    scores = scores - scores.max(axis=-1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=-1, keepdims=True)


def gpt2(cfg, w, ids):
    p = "transformer." if "transformer.wte.weight" in w else ""
    C, H = cfg["n_embd"], cfg["n_head"]
    D = C // H
    eps = cfg.get("layer_norm_epsilon", 1e-5)

    def ln(x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))

    T = len(ids)
    x = w[p + "wte.weight"][ids] + w[p + "wpe.weight"][:T]
    for i in range(cfg["n_layer"]):
        h = f"{p}h.{i}."
        a = ln(x, h + "ln_1") @ w[h + "attn.c_attn.weight"] + w[h + "attn.c_attn.bias"]
        q, k, v = np.split(a, 3, axis=-1)
        q = q.reshape(T, H, D).transpose(1, 0, 2)
        k = k.reshape(T, H, D).transpose(1, 0, 2)
        v = v.reshape(T, H, D).transpose(1, 0, 2)
        att = softmax_causal(q @ k.transpose(0, 2, 1) / np.sqrt(D)) @ v
        att = att.transpose(1, 0, 2).reshape(T, C)
        x = x + att @ w[h + "attn.c_proj.weight"] + w[h + "attn.c_proj.bias"]
        m = gelu(ln(x, h + "ln_2") @ w[h + "mlp.c_fc.weight"] + w[h + "mlp.c_fc.bias"])
        x = x + m @ w[h + "mlp.c_proj.weight"] + w[h + "mlp.c_proj.bias"]
    x = ln(x, p + "ln_f")
    head = w["lm_head.weight"] if "lm_head.weight" in w else w[p + "wte.weight"]
    return x @ head.T


def llama(cfg, w, ids):
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    KV = cfg.get("num_key_value_heads", H)
    D = cfg.get("head_dim", C // H)
    eps, theta = cfg.get("rms_norm_eps", 1e-6), cfg.get("rope_theta", 10000.0)

    def rms(x, name):
        return x / np.sqrt((x ** 2).mean(-1, keepdims=True) + eps) * w[name]

    T = len(ids)
    inv_freq = 1.0 / theta ** (np.arange(0, D, 2, dtype=np.float64) / D)
    freqs = np.outer(np.arange(T, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    cos, sin = np.cos(emb), np.sin(emb)

    def rotate_half(x):
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return np.concatenate([-x2, x1], axis=-1)

    def rope(x):
        return x * cos + rotate_half(x) * sin

    x = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        h = f"model.layers.{i}."
        y = rms(x, h + "input_layernorm.weight")
        q = (y @ w[h + "self_attn.q_proj.weight"].T).reshape(T, H, D).transpose(1, 0, 2)
        k = (y @ w[h + "self_attn.k_proj.weight"].T).reshape(T, KV, D).transpose(1, 0, 2)
        v = (y @ w[h + "self_attn.v_proj.weight"].T).reshape(T, KV, D).transpose(1, 0, 2)
        q, k = rope(q), rope(k)
        k = np.repeat(k, H // KV, axis=0)  # repeat_kv: query head j reads kv head j // (H/KV)
        v = np.repeat(v, H // KV, axis=0)
        att = softmax_causal(q @ k.transpose(0, 2, 1) / np.sqrt(D)) @ v
        x = x + att.transpose(1, 0, 2).reshape(T, H * D) @ w[h + "self_attn.o_proj.weight"].T
        y = rms(x, h + "post_attention_layernorm.weight")
        g = y @ w[h + "mlp.gate_proj.weight"].T
        u = y @ w[h + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[h + "mlp.down_proj.weight"].T
    x = rms(x, "model.norm.weight")
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["model.embed_tokens.weight"]
    return x @ head.T


def main():
    d, out, ids = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3:]]
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    w = read_weights(d)
    arch = cfg["architectures"][0]
    logits = gpt2(cfg, w, ids) if arch == "GPT2LMHeadModel" else llama(cfg, w, ids)
    logits.astype("<f4").tofile(out)


if __name__ == "__main__":
    main()
