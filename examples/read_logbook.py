#!/usr/bin/python3
"""Read an llmpi run's logbook with h5py: the per-step metrics and the event journal.

    /usr/bin/python3 examples/read_logbook.py runs/tiny/logbook.h5

The logbook is written in HDF5's single-writer/multiple-reader mode, so it can be read while
the run is training: open it with swmr=True (a file left by a killed run opens the same way).
Prints a summary of the step table, the lineage of segments, and the journal, one event a line.
Format: docs/logbook-format.md. Needs only h5py and numpy (Debian: python3-h5py).
"""
import json
import sys
from datetime import datetime, timezone

import h5py
import numpy as np


def journal(f):
    """The events as dicts: time, step, segment, rank, host, type and details (a dict)."""
    j = f["journal"]
    text = j["details"][...].tobytes()           # every event's details, as JSON texts back to back
    n = min(len(j[name]) for name in ("time_unix", "step", "segment", "rank", "type", "host",
                                      "details_offset", "details_length"))
    events = []
    for i in range(n):
        off, length = int(j["details_offset"][i]), int(j["details_length"][i])
        events.append({
            "time": datetime.fromtimestamp(float(j["time_unix"][i]), timezone.utc),
            "step": int(j["step"][i]),
            "segment": int(j["segment"][i]),
            "rank": int(j["rank"][i]),
            "host": j["host"][i].decode(),
            "type": j["type"][i].decode(),
            "details": json.loads(text[off:off + length]),
        })
    return events


def main(path):
    with h5py.File(path, "r", swmr=True) as f:
        print(f"{path}: {f.attrs['format'].decode()} version {f.attrs['format_version']}, "
              f"written by llmpi {f.attrs['llmpi_version'].decode()}")
        steps = f["steps"]
        n = min(len(d) for d in steps.values())  # columns may differ by a row after a kill
        step, segment, loss = steps["step"][:n], steps["segment"][:n], steps["loss"][:n]
        print(f"steps: {n} rows, steps {step.min() if n else 0}..{step.max() if n else 0}, "
              f"segments {sorted(set(segment.tolist()))}")
        if n:
            last = np.flatnonzero(segment == segment.max())[-1]
            print(f"last row: step {step[last]}, loss {loss[last]:.4f}, "
                  f"lr {steps['lr'][last]:.3e}, grad norm {steps['grad_norm'][last]:.4f}, "
                  f"skipped {int(steps['skipped'][:n].sum())} update(s)")
        layers = f["layers"]
        print(f"per-layer statistics: {len(layers['step'])} rows over "
              f"{len(layers['params'])} parameter tensors and {layers.attrs['blocks']} blocks")
        events = journal(f)
        print(f"journal: {len(events)} events")
        for e in events:
            where = f"step {e['step']}" if e["step"] >= 0 else "-"
            print(f"  {e['time']:%Y-%m-%d %H:%M:%S} segment {e['segment']} {where}: {e['type']} "
                  f"{json.dumps(e['details'], sort_keys=True)}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: read_logbook.py RUN_DIR/logbook.h5")
    main(sys.argv[1])
