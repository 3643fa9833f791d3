"""PyTorch's scaled_dot_product_attention on one GPU for a causal shape, per backend (flash,
cuDNN, efficient): forward and forward+backward medians (CUDA events, after warm-up) and the
fraction of the bf16 FLOP floor, to set llmpi's attention kernels against the best the
PyTorch stack offers on the same card. Usage: python3 bench/torch_sdpa_floor.py B T Hq Hkv D"""
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

B, T, Hq, Hkv, D = (int(a) for a in sys.argv[1:6])
PEAK = 989.4e12  # H100 SXM dense bf16
dev = "cuda"
q = torch.randn(B, Hq, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
k = torch.randn(B, Hkv, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
v = torch.randn(B, Hkv, T, D, device=dev, dtype=torch.bfloat16, requires_grad=True)
do = torch.randn(B, Hq, T, D, device=dev, dtype=torch.bfloat16)
# Causal FLOPs: forward 2 matmuls of 2·T²·D per head, halved by the mask; backward 2.5×.
fwd_flops = 4 * B * Hq * T * T * D / 2
bwd_flops = 2.5 * fwd_flops


def median_ms(fn, reps=20, warm=5):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


for name, backend in [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                      ("efficient", SDPBackend.EFFICIENT_ATTENTION)]:
    try:
        with sdpa_kernel([backend]):
            def fwd():
                return torch.nn.functional.scaled_dot_product_attention(
                    q, k, v, is_causal=True, enable_gqa=Hq != Hkv)
            f_ms = median_ms(lambda: fwd())
            def fwd_bwd():
                o = fwd()
                o.backward(do)
            fb_ms = median_ms(fwd_bwd)
        b_ms = fb_ms - f_ms
        print(f"torch sdpa {name:9s} B={B} T={T} Hq={Hq} Hkv={Hkv} D={D}: forward {f_ms:.3f} ms "
              f"({fwd_flops / (f_ms * 1e-3) / PEAK:.0%} of floor), backward {b_ms:.3f} ms "
              f"({bwd_flops / (b_ms * 1e-3) / PEAK:.0%} of floor)")
    except Exception as ex:  # a backend refusing the shape is a result, not a failure
        print(f"torch sdpa {name}: refused ({str(ex).splitlines()[0][:120]})")
