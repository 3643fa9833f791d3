#!/usr/bin/env python3
"""PyTorch reference trainer with the shapes of llmpi's presets, for the GPU benchmark.

Models (same shapes as configs/gpt2-124m.toml and configs/tinyllama-1.1b.toml):
  gpt2-124m       12 layers, width 768, 12 heads, FFN 3072 (tanh-GELU), LayerNorm, learned
                  positions, biases, LM head tied to the embedding, vocab 50257; B=32, T=1024
  tinyllama-1.1b  22 layers, width 2048, 32 query heads sharing 4 KV heads, FFN 5632 (SwiGLU),
                  RoPE (rotate-half), RMSNorm, no biases, untied LM head, vocab 32000; B=8, T=2048
Training step: torch.compile'd model, bf16 autocast, TF32 matmuls, scaled_dot_product_attention
(is_causal=True), fused AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), clip_grad_norm_
at 1.0; random token data (uniform ids, drawn on the GPU).

Output: one JSON line per run (one config per process, so that launch time and peak memory are
per config): median tokens/s over the timed steps (CUDA events around each step, after the
warm-up steps), MFU = tokens/s * flops_per_token / 989.4e12 with flops_per_token =
6 * (matmul parameters, LM head included, embedding lookups excluded) + 6 * layers * T * width,
peak memory (torch.cuda.max_memory_allocated), and time from process launch to the end of the
first training step (compilation included).

Usage: python3 bench/torch_reference.py --config gpt2-124m [--steps 20] [--warmup 5]
"""
import os
import time

# Seconds since this process was launched, read before the heavy imports (Linux /proc).
def _process_age_s():
    with open("/proc/self/stat") as f:
        start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")

_AGE_AT_IMPORT = _process_age_s()
_PERF_AT_IMPORT = time.perf_counter()

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

H100_BF16_DENSE_FLOPS = 989.4e12


@dataclass(frozen=True)
class Shape:
    arch: str          # "gpt2" | "llama"
    vocab: int
    layers: int
    heads: int
    kv_heads: int
    width: int
    ffn: int
    batch: int
    seq_len: int
    tied: bool
    lr: float
    norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self):
        return self.width // self.heads

    def matmul_params(self):
        """Weights of every matrix product per token: attention (qkv, out), MLP, LM head."""
        qkv = self.width * (self.heads + 2 * self.kv_heads) * self.head_dim
        out = self.width * self.width
        mlp = (3 if self.arch == "llama" else 2) * self.width * self.ffn
        return self.layers * (qkv + out + mlp) + self.width * self.vocab

    def flops_per_token(self):
        return 6 * self.matmul_params() + 6 * self.layers * self.seq_len * self.width


SHAPES = {
    "gpt2-124m": Shape(arch="gpt2", vocab=50257, layers=12, heads=12, kv_heads=12, width=768,
                       ffn=3072, batch=32, seq_len=1024, tied=True, lr=6e-4),
    "tinyllama-1.1b": Shape(arch="llama", vocab=32000, layers=22, heads=32, kv_heads=4,
                            width=2048, ffn=5632, batch=8, seq_len=2048, tied=False, lr=4e-4),
}


def rope_tables(s: Shape, device):
    """cos, sin [T, D/2] (fp32) for rotate-half RoPE: pairs (i, i + D/2), angle t·θ^(-2i/D)."""
    half = s.head_dim // 2
    inv_freq = s.rope_theta ** (-torch.arange(half, dtype=torch.float64, device=device) * 2 / s.head_dim)
    angles = torch.outer(torch.arange(s.seq_len, dtype=torch.float64, device=device), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x, cos, sin):
    """x [B, H, T, D]; rotate-half pairs."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Block(nn.Module):
    def __init__(self, s: Shape, native_gqa: bool):
        super().__init__()
        self.s, self.native_gqa = s, native_gqa
        llama = s.arch == "llama"
        norm = (lambda: nn.RMSNorm(s.width, eps=s.norm_eps)) if llama else (
            lambda: nn.LayerNorm(s.width, eps=s.norm_eps))
        self.norm1, self.norm2 = norm(), norm()
        self.qkv = nn.Linear(s.width, (s.heads + 2 * s.kv_heads) * s.head_dim, bias=not llama)
        self.out = nn.Linear(s.width, s.width, bias=not llama)
        if llama:
            self.gate_up = nn.Linear(s.width, 2 * s.ffn, bias=False)
            self.down = nn.Linear(s.ffn, s.width, bias=False)
        else:
            self.up = nn.Linear(s.width, s.ffn)
            self.down = nn.Linear(s.ffn, s.width)

    def forward(self, x, cos, sin):
        s = self.s
        B, T, C = x.shape
        D, H, Hkv = s.head_dim, s.heads, s.kv_heads
        q, k, v = self.qkv(self.norm1(x)).split([H * D, Hkv * D, Hkv * D], dim=-1)
        q = q.view(B, T, H, D).transpose(1, 2)
        k = k.view(B, T, Hkv, D).transpose(1, 2)
        v = v.view(B, T, Hkv, D).transpose(1, 2)
        if s.arch == "llama":
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if Hkv != H and not self.native_gqa:
            k = k.repeat_interleave(H // Hkv, dim=1)
            v = v.repeat_interleave(H // Hkv, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           enable_gqa=(Hkv != H and self.native_gqa))
        x = x + self.out(y.transpose(1, 2).reshape(B, T, C))
        h = self.norm2(x)
        if s.arch == "llama":
            gate, up = self.gate_up(h).chunk(2, dim=-1)
            h = F.silu(gate) * up
        else:
            h = F.gelu(self.up(h), approximate="tanh")
        return x + self.down(h)


class LM(nn.Module):
    def __init__(self, s: Shape, native_gqa: bool):
        super().__init__()
        self.s = s
        self.embed = nn.Embedding(s.vocab, s.width)
        self.pos = nn.Embedding(s.seq_len, s.width) if s.arch == "gpt2" else None
        self.blocks = nn.ModuleList(Block(s, native_gqa) for _ in range(s.layers))
        self.norm = nn.RMSNorm(s.width, eps=s.norm_eps) if s.arch == "llama" else nn.LayerNorm(s.width)
        self.head = nn.Linear(s.width, s.vocab, bias=False)
        if s.tied:
            self.head.weight = self.embed.weight
        cos, sin = rope_tables(s, "cpu")
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def forward(self, ids, targets):
        x = self.embed(ids)
        if self.pos is not None:
            x = x + self.pos.weight[: ids.shape[1]]
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        logits = self.head(self.norm(x))
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))


def flash_supports_gqa(device):
    """True when SDPA's flash backend runs enable_gqa=True here (probed on a small problem)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    try:
        q = torch.randn(1, 8, 128, 64, device=device, dtype=torch.bfloat16, requires_grad=True)
        k = torch.randn(1, 2, 128, 64, device=device, dtype=torch.bfloat16, requires_grad=True)
        v = torch.randn(1, 2, 128, 64, device=device, dtype=torch.bfloat16, requires_grad=True)
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True).sum().backward()
        torch.cuda.synchronize()
        return True
    except RuntimeError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, choices=sorted(SHAPES))
    ap.add_argument("--steps", type=int, default=20, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first (compile included)")
    ap.add_argument("--batch", type=int, default=0, help="override the batch size")
    ap.add_argument("--compile", default="default", help="torch.compile mode, or 'none'")
    args = ap.parse_args()
    if args.steps < 1 or args.warmup < 1:
        sys.exit("torch_reference: --steps and --warmup must be >= 1")

    s = SHAPES[args.config]
    if args.batch:
        s = Shape(**{**asdict(s), "batch": args.batch})
    if not torch.cuda.is_available():
        sys.exit("torch_reference: no CUDA device")
    dev = torch.device("cuda")
    torch.manual_seed(1234)
    torch.set_float32_matmul_precision("high")  # TF32 for any fp32 matmul
    native_gqa = s.kv_heads != s.heads and flash_supports_gqa(dev)

    model = LM(s, native_gqa).to(dev)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=s.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    fwd = model if args.compile == "none" else torch.compile(model, mode=None if args.compile == "default" else args.compile)

    # A few batches of uniform random tokens, cycled: (inputs, next-token targets), contiguous.
    data = []
    for _ in range(4):
        d = torch.randint(0, s.vocab, (s.batch, s.seq_len + 1), device=dev)
        data.append((d[:, :-1].contiguous(), d[:, 1:].contiguous()))

    def step(i):
        ids, targets = data[i % len(data)]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = fwd(ids, targets)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach(), norm.detach()

    losses, norms = [], []
    first_step_s = None
    for i in range(args.warmup):
        loss, norm = step(i)
        losses.append(loss)
        norms.append(norm)
        if i == 0:
            torch.cuda.synchronize()
            first_step_s = _AGE_AT_IMPORT + (time.perf_counter() - _PERF_AT_IMPORT)
    torch.cuda.synchronize()

    starts = [torch.cuda.Event(enable_timing=True) for _ in range(args.steps)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(args.steps)]
    for i in range(args.steps):
        starts[i].record()
        loss, norm = step(args.warmup + i)
        ends[i].record()
        losses.append(loss)
        norms.append(norm)
    torch.cuda.synchronize()

    step_ms = [a.elapsed_time(b) for a, b in zip(starts, ends)]
    median_ms = statistics.median(step_ms)
    tokens = s.batch * s.seq_len
    tok_s = tokens / (median_ms / 1e3)
    loss_values = [x.item() for x in losses]
    result = {
        "bench": "torch_reference",
        "config": args.config,
        "card": torch.cuda.get_device_name(dev),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "compile": args.compile,
        "attention": "sdpa flash, native GQA" if native_gqa else (
            "sdpa, kv heads repeated" if s.kv_heads != s.heads else "sdpa"),
        "batch": s.batch,
        "seq_len": s.seq_len,
        "params": sum(p.numel() for p in model.parameters()),
        "matmul_params": s.matmul_params(),
        "flops_per_token": s.flops_per_token(),
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "median_step_ms": round(median_ms, 3),
        "min_step_ms": round(min(step_ms), 3),
        "max_step_ms": round(max(step_ms), 3),
        "tokens_per_s": round(tok_s, 1),
        "mfu": round(tok_s * s.flops_per_token() / H100_BF16_DENSE_FLOPS, 4),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated(dev) / 2**30, 3),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved(dev) / 2**30, 3),
        "launch_to_first_step_s": round(first_step_s, 2),
        "loss_first": round(loss_values[0], 4),
        "loss_last": round(loss_values[-1], 4),
        "ln_vocab": round(math.log(s.vocab), 4),
        "grad_norm_last": round(norms[-1].item(), 4),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
