#!/usr/bin/env python3
"""What the free-core meter (``runtime/cpu.py``) reads beside a ``nice -n 19`` CPU hog: the same /proc
samples judged with the niced processes' time counted whole and weighed by the share of a core their
nice would keep against ours (per process, design note 270). Run at nice 0 — the reading only sleeps and
reads /proc — with the hog niced, so it takes nothing from anyone:
``python tests/target/meter_check.py`` → ``bench-results/cpu-meter-niced.json``.
Not a speed benchmark: a check of what the meter sees, on whatever else this box runs meanwhile.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from edge_voice.runtime.cpu import free_cores, my_nice, others_busy, read_sample, usable_cores

OUT = Path(__file__).resolve().parents[2] / "bench-results/cpu-meter-niced.json"
WINDOW_S = 3.0
N_WINDOWS = 10
HOG = "while True: pass"


def nice_column() -> int:
    return int(Path("/proc/stat").read_text().split()[2])  # cpu user NICE …: niced user time only


def window() -> dict[str, float | int]:
    a, nice_a = read_sample(), nice_column()
    time.sleep(WINDOW_S)
    b, nice_b = read_sample(), nice_column()
    assert a is not None and b is not None
    counted, weighed = others_busy([a, b]), others_busy([a, b], my_nice())
    per_cpu = (b.total - a.total) / b.ncpu
    # the meter of sessions 12-13: everything but our time and /proc/stat's nice column (steal counted)
    old = max(0.0, ((b.total - a.total) - (b.idle - a.idle) - (b.own - a.own) - (nice_b - nice_a)) / per_cpu)
    usable = usable_cores()
    return {
        "others_busy_cores_session13_meter": round(old, 2),
        "steal_cores": round((b.steal - a.steal) / per_cpu, 2),
        "free_cores_session13_meter": free_cores(old, usable),
        "others_busy_cores_niced_counted": round(counted, 2),
        "others_busy_cores_niced_weighed": round(weighed, 2),
        "free_cores_niced_counted": free_cores(counted, usable),
        "free_cores_now": free_cores(weighed, usable),
    }


def windows(n: int) -> dict[str, object]:
    """``n`` windows in a row: each one's figures, and how often each meter read 1 free core."""
    got = [window() for _ in range(n)]
    return {
        "windows": got,
        "one_free_session13_meter": sum(1 for w in got if w["free_cores_session13_meter"] == 1),
        "one_free_now": sum(1 for w in got if w["free_cores_now"] == 1),
    }


def main() -> int:
    if my_nice() != 0:
        sys.exit("meter_check: run it at nice 0 (the point is a niced neighbour beside a nice-0 reader)")
    res: dict[str, object] = {"when": f"{datetime.now(UTC):%FT%TZ}", "usable_cores": usable_cores()}
    res["load_average"] = os.getloadavg()
    res["without_hog"] = windows(N_WINDOWS)
    hog = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", HOG])
    try:
        time.sleep(0.5)
        res["with_nice19_hog"] = windows(N_WINDOWS)
    finally:
        hog.kill()
        hog.wait()
    res["note"] = (
        f"{N_WINDOWS} windows of {WINDOW_S:.0f} s each, in one run on a shared 2-core box beside other "
        "engineers' nice-19 jobs (an emulated aarch64 target check among them): every core is free for a "
        "nice-0 reader in every window, so each 1 is a meter's error"
    )
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps({k: v for k, v in res.items()}, indent=2)[:3000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
