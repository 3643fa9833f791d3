#!/usr/bin/python3
"""Read an llmpi model or checkpoint file with h5py as the plain global model.

    /usr/bin/python3 examples/read_model.py runs/tiny/model.h5
    /usr/bin/python3 examples/read_model.py runs/tiny/checkpoints/step_00002000.h5

Prints the metadata (with the parallel layout the file was saved under, read by name from
/layout) and a table of parameters, recomputes every tensor's layout-independent
checksum (docs/checkpoint-format.md) with numpy, and checks it against the stored one. For a
checkpoint it also checks the AdamW moments (/optimizer/m, /optimizer/v) and prints the
data-to-checkpoint mapping (/data: which global samples each step consumed).
Exits 1 if any checksum differs. Needs only h5py and numpy (Debian: python3-h5py).
"""
import sys

import h5py
import numpy as np

MASK = (1 << 64) - 1
# The fields of /layout (docs/checkpoint-format.md), read by name; a later format may add more.
LAYOUT_FIELDS = ("tp", "pp", "dp", "zero_stage", "virtual_stages", "micro_batches",
                 "sequence_parallel", "world_size")


def splitmix64(x):
    """The SplitMix64 finalizer on a uint64 numpy array (wrapping arithmetic)."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(MASK)
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(MASK)
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(MASK)
    return x ^ (x >> np.uint64(31))


def checksum(values):
    """Σ_g splitmix64(splitmix64(g) ^ bits(x_g) · φ) mod 2^64 over the row-major tensor."""
    bits = np.ascontiguousarray(values, dtype="<f4").reshape(-1).view(np.uint32).astype(np.uint64)
    index = np.arange(bits.size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        terms = splitmix64(splitmix64(index) ^ (bits * np.uint64(0x9E3779B97F4A7C15)))
    return int(terms.sum(dtype=np.uint64))  # numpy's uint64 sum wraps mod 2^64


def main(path):
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        print(f"{path}: {attrs['kind'].decode() if isinstance(attrs['kind'], bytes) else attrs['kind']}"
              f", format {attrs['format_version']}, step {attrs['step']}, tokens {attrs['tokens_seen']}")
        if "layout" in f:  # format_version >= 2: the parallel layout at save, one attribute a field
            lay = f["layout"].attrs
            print("layout: " + " ".join(f"{name}={int(lay[name])}" for name in LAYOUT_FIELDS))
        else:  # format_version 1: the root attribute layout = [tp, pp, dp, zero_stage, world_size]
            print("layout: " + " ".join(f"{name}={int(v)}" for name, v in
                                        zip(("tp", "pp", "dp", "zero_stage", "world_size"), attrs["layout"])))
        params = f["params"]
        bad = 0
        total = 0
        for name, dset in params.items():
            x = dset[...]                     # the full global tensor, whatever layout wrote it
            total += x.size
            ok = checksum(x) == int(dset.attrs["checksum"])
            bad += not ok
            print(f"  {name:40s} {str(x.shape):16s} {x.dtype}  {'ok' if ok else 'CHECKSUM MISMATCH'}")
        if "optimizer" in f:  # a checkpoint: the AdamW moments are global tensors too
            opt = f["optimizer"]
            for moment in ("m", "v"):
                for name, dset in opt[moment].items():
                    bad += checksum(dset[...]) != int(dset.attrs["checksum"])
            print(f"optimizer: step_count {opt.attrs['step_count']}, "
                  f"{len(opt['m'])} + {len(opt['v'])} moment tensors checked")
        if "data" in f:
            steps, samples = f["data/steps"][...], f["data/step_samples"][...]
            if len(steps):
                print(f"data: steps {steps[0]}..{steps[-1]}, {samples.shape[1]} samples each; "
                      f"step {steps[-1]} consumed samples {samples[-1][:8].tolist()}")
        print(f"{len(params)} tensors, {total} parameters, {bad} checksum mismatches")
        return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
