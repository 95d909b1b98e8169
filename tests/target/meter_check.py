#!/usr/bin/env python3
"""What the free-core meter (``runtime/cpu.py``) reads beside a ``nice -n 19`` CPU hog: the same /proc
samples judged with the niced load counted (the meter before session 12) and left out (now, for a thread
that is not niced). Run at nice 0 — the reading only sleeps and reads /proc — with the hog niced, so it
takes nothing from anyone: ``python tests/target/meter_check.py`` → ``bench-results/cpu-meter-niced.json``.
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

from edge_voice.runtime.cpu import free_cores, niced_yields_to_me, others_busy, read_sample, usable_cores

OUT = Path(__file__).resolve().parents[2] / "bench-results/cpu-meter-niced.json"
WINDOW_S = 3.0
HOG = "while True: pass"


def window() -> dict[str, float | int]:
    a = read_sample()
    time.sleep(WINDOW_S)
    b = read_sample()
    assert a is not None and b is not None
    counted, left_out = others_busy(a, b), others_busy(a, b, niced_yields=True)
    usable = usable_cores()
    return {
        "others_busy_cores_niced_counted": round(counted, 2),
        "others_busy_cores_niced_left_out": round(left_out, 2),
        "niced_cores": round((b.niced - a.niced) / ((b.total - a.total) / b.ncpu), 2),
        "free_cores_before": free_cores(counted, usable),
        "free_cores_now": free_cores(left_out, usable),
    }


def main() -> int:
    if not niced_yields_to_me():
        sys.exit("meter_check: run it at nice 0 (the point is a niced neighbour beside a nice-0 reader)")
    res: dict[str, object] = {"when": f"{datetime.now(UTC):%FT%TZ}", "usable_cores": usable_cores()}
    res["load_average"] = os.getloadavg()
    res["without_hog"] = window()
    hog = subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", HOG])
    try:
        time.sleep(0.5)
        res["with_nice19_hog"] = window()
    finally:
        hog.kill()
        hog.wait()
    res["note"] = (
        "one window of 3 s each, in one run on a shared 2-core box (other engineers' niced jobs and, "
        "before 12:40, a CI run at normal priority): the niced column also holds their niced work"
    )
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
