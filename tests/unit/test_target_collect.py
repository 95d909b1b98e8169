"""`target_check.py --collect`: each result line credited to the step it ends, when steps (the unit tests
beside the demo) and releases run side by side."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "target/target_check.py"
NOW = datetime(2026, 12, 7, 16, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def tc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("target_check", HARNESS)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["target_check"] = mod
    spec.loader.exec_module(mod)
    return mod


def by_step(record: list[dict[str, object]]) -> dict[object, tuple[object, object]]:
    return {r["step"]: (r["status"], r["seconds"]) for r in record}


def test_the_unit_result_is_not_credited_to_the_demo_beside_it(tc: ModuleType) -> None:
    lines = [
        "[14:00:00] trixie/models: bash -c make models",
        "  -> trixie/models: ok in 268 s (log m.log)",
        "[14:10:00] trixie/unit: bash -c make unit",
        "[14:10:01] trixie/demo: bash -c make demo",
        "  -> trixie/unit: ok in 868 s (log u.log)",
    ]
    got = by_step(tc.collect_steps("trixie", lines, NOW))
    assert got["models"] == ("ok", 268.0)
    assert got["unit"] == ("ok", 868.0)
    assert got["demo"] == ("stopped", 6599.0)  # still running: its time so far


def test_a_demo_that_ends_first_is_credited_to_the_demo(tc: ModuleType) -> None:
    lines = [
        "[15:00:00] unit: bash -c make unit",
        "[15:00:00] demo: bash -c make demo",
        "  -> demo: failed in 300 s (log d.log)",
        "  -> unit: ok in 900 s (log u.log)",
    ]
    got = by_step(tc.collect_steps("bookworm", lines, NOW))
    assert got == {"unit": ("ok", 900.0), "demo": ("failed", 300.0)}


def test_releases_in_one_log_are_told_apart(tc: ModuleType) -> None:
    lines = [
        "[15:00:00] bookworm/apt: make apt",
        "[15:00:02] trixie/apt: make apt",
        "  -> trixie/apt: ok in 1500 s (log a.log)",
        "  -> bookworm/apt: failed in 1600 s (log a.log)",
        "[15:25:02] trixie/install: make install",
    ]
    assert by_step(tc.collect_steps("bookworm", lines, NOW)) == {"apt": ("failed", 1600.0)}
    trixie = tc.collect_steps("trixie", lines, NOW)
    assert [r["step"] for r in trixie] == ["apt", "install"]
    assert by_step(trixie) == {"apt": ("ok", 1500.0), "install": ("stopped", 2098.0)}


def test_the_old_unnamed_result_is_credited_only_when_one_step_was_running(tc: ModuleType) -> None:
    # session 12's trixie log: the unit tests' result came while the demo was running too
    lines = [
        "[14:00:00] models: make models",
        "  -> ok in 268 s (log m.log)",
        "[14:10:00] unit: make unit",
        "[14:10:01] demo: make demo",
        "  -> ok in 868 s (log u.log)",
    ]
    got = by_step(tc.collect_steps("trixie", lines, NOW))
    assert got["models"] == ("ok", 268.0)
    assert got["unit"][0] == got["demo"][0] == "unknown"  # not "ok" for the demo


def test_a_step_started_before_midnight(tc: ModuleType) -> None:
    now = datetime(2026, 12, 8, 0, 10, 0, tzinfo=UTC)
    got = by_step(tc.collect_steps("trixie", ["[23:50:00] trixie/demo: make demo"], now))
    assert got == {"demo": ("stopped", 1200.0)}


def test_what_the_harness_prints_for_steps_side_by_side_collects_back(
    tc: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = tc.Steps(tmp_path / "logs", "trixie")
    unit = threading.Thread(target=steps.run, args=("unit", ["sh", "-c", "sleep 0.5; echo passed"], 30))
    unit.start()
    assert steps.run("demo", ["sh", "-c", "exit 2"], 30) is None
    unit.join()
    lines = capsys.readouterr().out.splitlines()
    assert {r["step"]: r["status"] for r in steps.record} == {"unit": "ok", "demo": "failed"}
    got = tc.collect_steps("trixie", lines, datetime.now(UTC))
    assert {r["step"]: r["status"] for r in got} == {"unit": "ok", "demo": "failed"}


def test_the_steps_the_harness_recorded_come_first_and_exact(tc: ModuleType, tmp_path: Path) -> None:
    # the old output cannot say which of unit and demo ended; the entry the harness wrote after the unit
    # step can, so only the demo is taken from the output
    report = tmp_path / "aarch64.json"
    steps = [
        {"step": "fresh-root-and-clone", "status": "ok", "seconds": 20.0, "commit": "2fd0b66"},
        {"step": "unit", "status": "ok", "seconds": 868.0, "exit_code": 0},
    ]
    entry = {"python": "3.13", "commit": "2fd0b66", "steps": steps, "finished": False}
    report.write_text(json.dumps({"releases": {"trixie": entry}}))
    log = tmp_path / "harness.log"
    log.write_text(
        "[00:00:01] fresh-root-and-clone: x\n[00:00:02] unit: make unit\n[00:00:03] demo: make demo\n"
        "  -> ok in 868 s (log u.log)\n"
    )
    res = tc.collect("trixie", log, report)
    assert res["commit"] == "2fd0b66" and res["passed"] is False and "finished" not in res
    got = {r["step"]: r["status"] for r in res["steps"]}
    assert got == {"fresh-root-and-clone": "ok", "unit": "ok", "demo": "unknown"}
    # an earlier run's finished entry is not this run's
    report.write_text(json.dumps({"releases": {"trixie": {**entry, "finished": True}}}))
    assert "commit" not in tc.collect("trixie", log, report)


def test_a_step_out_of_time_ends_with_everything_it_started(tc: ModuleType, tmp_path: Path) -> None:
    # session 13: the timed-out apt step's dpkg kept running in the root after its shell was killed
    marker = tmp_path / "grandchild.pid"
    steps = tc.Steps(tmp_path / "logs", "trixie")
    cmd = ["sh", "-c", f"sh -c 'echo $$ > {marker}; exec sleep 30' & wait"]
    assert steps.run("apt", cmd, 1.0) is None
    assert steps.record[-1]["status"] == "timeout"
    pid = int(marker.read_text())

    def gone() -> bool:  # ended (a zombie until init reaps it)
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except FileNotFoundError:
            return True

    deadline = time.monotonic() + 5  # SIGKILL is delivered asynchronously
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone()
