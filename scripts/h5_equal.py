#!/usr/bin/python3
"""Bitwise comparison of two llmpi HDF5 files (model files or checkpoints).

    /usr/bin/python3 scripts/h5_equal.py A.h5 B.h5

Every dataset of either file must exist in both with the same dtype, shape and bytes (NaNs
compare by their bits, -0.0 differs from 0.0). Attributes are not compared: they hold times
and paths. Prints one line per difference and a summary; exits 0 when equal, 1 when not, 2 on
bad input. Used by the chaos test (scripts/chaos.py) and the Slurm tests (tests/slurm/).
Needs only h5py and numpy (Debian: python3-h5py).
"""
import sys

import h5py
import numpy as np


def datasets(f):
    names = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return set(names)


def main(a_path, b_path):
    try:
        a, b = h5py.File(a_path, "r"), h5py.File(b_path, "r")
    except OSError as e:
        print(f"h5_equal: cannot open: {e}", file=sys.stderr)
        return 2
    with a, b:
        na, nb = datasets(a), datasets(b)
        diffs = [f"only in {a_path}: {n}" for n in sorted(na - nb)]
        diffs += [f"only in {b_path}: {n}" for n in sorted(nb - na)]
        elements = 0
        for name in sorted(na & nb):
            x, y = a[name], b[name]
            if x.dtype != y.dtype or x.shape != y.shape:
                diffs.append(f"{name}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}")
                continue
            xv, yv = np.ascontiguousarray(x[...]), np.ascontiguousarray(y[...])
            elements += xv.size
            if xv.tobytes() != yv.tobytes():
                if xv.dtype.kind == "f":
                    xb = xv.reshape(-1).view(np.uint8).reshape(xv.size, -1)
                    yb = yv.reshape(-1).view(np.uint8).reshape(yv.size, -1)
                    differ = int(np.count_nonzero((xb != yb).any(axis=1)))
                    worst = float(np.max(np.abs(xv.astype(np.float64) - yv.astype(np.float64))))
                    diffs.append(f"{name}: {differ} of {xv.size} elements differ (max |diff| {worst:.3g})")
                else:
                    diffs.append(f"{name}: contents differ")
        for d in diffs:
            print(d)
        verdict = "bitwise equal" if not diffs else f"{len(diffs)} difference(s)"
        print(f"h5_equal: {len(na & nb)} datasets, {elements} elements compared: {verdict}")
        return 0 if not diffs else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
