#!/usr/bin/env python3
"""``make target-check``: a clean clone's ``make demo`` and unit tests in emulated arm64 Debian roots.

For each release (bookworm = Python 3.11, trixie = Python 3.13): a ``debootstrap --arch=arm64`` root from
Debian's arm64 packages (cached under ~/.cache/edge-voice/target/), copied fresh for every run, run under
qemu-user-static as a Pi 4 (``QEMU_CPU=cortex-a72`` and a Pi 4 ``/proc/cpuinfo`` bind-mounted over the
x86 one: qemu 7.2 passes the host's through and onnxruntime's cpuinfo parser segfaults on it). A clean
clone of this repository's HEAD goes in; inside, as a new user would: ``make apt``, the Python install,
``make models``, ``make demo CONFIG=tests/target/emulation.toml`` (only the time limits are widened),
``make unit`` (beside the demo). Each step's status and duration, the demo's transcripts and replies
and every wheel pip built from source go to ``bench-results/aarch64.json`` (one entry per release, merged).

Needs root (debootstrap, chroot, mounts). Stdlib only: it runs on the host's python3, outside any venv.
Not part of CI: ~20 min to install and ~5 min per demo per release on a 2-core x86_64 box; the releases
run side by side (one thread each; every output line names its release and step). ``--collect RELEASE
LOG`` makes a release's entry from that output when a run was stopped before it wrote one.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("EDGE_VOICE_TARGET_CACHE", Path.home() / ".cache/edge-voice/target"))
REPORT = REPO / "bench-results/aarch64.json"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
PYTHONS = {"bookworm": "3.11", "trixie": "3.13"}
# what a new user has before `make`: the Makefile installs everything else (APT_PACKAGES). Not
# ca-certificates: pip carries its own CA bundle, and its postinst (a rehash per certificate) alone took
# over 15 min under emulation.
BASE_PACKAGES = "make"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CLONE = "/root/edge-voice"
PI4_MODEL = "Raspberry Pi 4 Model B Rev 1.2"
HOST_CA = os.environ.get("PIP_CERT", "")
GUEST_CA = "/etc/host-pip-ca.crt"  # /etc/ssl does not exist in a minbase root
# apt was 1800 s: session 13's run beside four other engineers' nice-19 jobs (load ~14) timed out in it on
# both releases (bookworm configuring its last package; trixie in ca-certificates' per-certificate rehash)
_STEP_S = {"apt": 3600, "install": 5400, "dev-tools": 1800, "models": 1800, "demo": 2700, "unit": 5400}
# a slower or busier host: every step's limit times this (EDGE_VOICE_TARGET_TIMEOUT_SCALE=2)
TIMEOUT_SCALE = float(os.environ.get("EDGE_VOICE_TARGET_TIMEOUT_SCALE", "1"))
STEP_TIMEOUT_S = {step: secs * TIMEOUT_SCALE for step, secs in _STEP_S.items()}
# one line per test, so a run stopped by a deadline still says which tests passed
UNIT_ENV = "PYTEST_ADDOPTS='-vv -p no:cacheprovider --durations=20'"


def pi4_cpuinfo(ncpu: int) -> str:
    """/proc/cpuinfo as a Raspberry Pi 4 (BCM2711, Cortex-A72 r0p3) shows it, one block per host CPU
    (qemu-user threads run on the host's cores, so that is how many the guest can use)."""
    block = (
        "processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
        "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n"
        "CPU revision\t: 3\n\n"
    )
    tail = f"Hardware\t: BCM2835\nRevision\t: c03112\nModel\t\t: {PI4_MODEL}\n"
    return "".join(block.format(i=i) for i in range(ncpu)) + tail


def sh(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=True, text=True, **kw)  # type: ignore[call-overload, no-any-return]


def ensure_host() -> dict[str, str]:
    """qemu-user-static, binfmt_misc and debootstrap on the host."""
    if os.geteuid() != 0:
        sys.exit("target-check: needs root (debootstrap, chroot and bind mounts)")
    if not (shutil.which("debootstrap") and shutil.which("qemu-aarch64-static")):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        sh(["apt-get", "update", "-qq"], env=env)
        pkgs = ["qemu-user-static", "binfmt-support", "debootstrap"]
        sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs], env=env)
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "register").exists():
        sh(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)])
    if not (binfmt / "qemu-aarch64").exists():
        sh(["update-binfmts", "--enable", "qemu-aarch64"])
    qemu = sh(["qemu-aarch64-static", "--version"], capture_output=True).stdout.splitlines()[0]
    return {"qemu": qemu, "kernel": platform.release(), "host_cpus": str(os.cpu_count())}


class Steps:
    """Each step timed, logged to a file, and recorded (status, seconds, exit code, tail on failure)."""

    def __init__(self, logs: Path, release: str = "") -> None:
        self.logs = logs
        # every harness line names its release and step: steps (unit beside demo) and releases run side
        # by side, and `--collect` must credit each result line to the step it ends
        self.tag = f"{release}/" if release else ""
        self.record: list[dict[str, object]] = []
        self.after: list[object] = []  # called after each step (the report is written as it goes)
        logs.mkdir(parents=True, exist_ok=True)

    def run(
        self, name: str, cmd: list[str], timeout_s: float, env: dict[str, str] | None = None
    ) -> str | None:
        log = self.logs / f"{name}.log"
        print(f"[{datetime.now(UTC):%H:%M:%S}] {self.tag}{name}: {' '.join(cmd)[-160:]}", flush=True)
        t0 = time.monotonic()
        status, code = "ok", 0
        with log.open("w") as f:
            # its own process group: a step out of time is ended with everything it started. Killing
            # only the chroot'd shell (what subprocess.run does) left session 13's make → apt-get → dpkg
            # running in the root, and the next run's rmtree of that root failed under it
            proc = subprocess.Popen(
                cmd, stdout=f, stderr=subprocess.STDOUT, env=env, text=True, start_new_session=True
            )
            try:
                code = proc.wait(timeout=timeout_s)
                status = "ok" if code == 0 else "failed"
            except subprocess.TimeoutExpired:
                status, code = "timeout", -1
                kill_group(proc)
        secs = round(time.monotonic() - t0, 1)
        text = log.read_text(errors="replace")
        entry: dict[str, object] = {"step": name, "status": status, "seconds": secs, "exit_code": code}
        if status != "ok":
            entry["log_tail"] = text.splitlines()[-40:]
        self.record.append(entry)
        print(f"  -> {self.tag}{name}: {status} in {secs:.0f} s (log {log})", flush=True)
        for fn in self.after:
            fn()  # type: ignore[operator]
        return text if status == "ok" else None

    def note(self, name: str, status: str, secs: float = 0.0, **extra: object) -> None:
        self.record.append({"step": name, "status": status, "seconds": round(secs, 1), **extra})


def kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL a step's whole process group (it leads its own session) and reap its leader."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def processes_in(root: Path) -> list[int]:
    """Pids whose root directory is ``root`` (chroot'd there): left by a run killed without its clean-up."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "root")) == root:
                    pids.append(int(entry.name))
            except OSError:
                continue  # ended meanwhile, or not ours to read
    return pids


class Mounts:
    """proc (with the Pi 4 cpuinfo over it), sys, dev, and the download caches, undone in reverse."""

    def __init__(self, root: Path, cache: Path) -> None:
        self.root, self.cache = root, cache
        self.done: list[Path] = []

    def _mount(self, args: list[str], target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            target.mkdir()
        sh(["mount", *args, str(target)])
        self.done.append(target)

    def __enter__(self) -> Mounts:
        r = self.root
        try:
            self._mount(["-t", "proc", "proc"], r / "proc")
            cpuinfo = self.cache / "cpuinfo-pi4"
            cpuinfo.write_text(pi4_cpuinfo(os.cpu_count() or 1))
            sh(["mount", "--bind", str(cpuinfo), str(r / "proc/cpuinfo")])
            self.done.append(r / "proc/cpuinfo")
            self._mount(["--rbind", "/sys"], r / "sys")
            self._mount(["--bind", "/dev"], r / "dev")
            self._mount(["-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts"], r / "dev/pts")
            self._mount(["-t", "tmpfs", "tmpfs"], r / "dev/shm")
            for host, inside in (("pip", "root/.cache/pip"), ("apt-archives", "var/cache/apt/archives")):
                (self.cache / host).mkdir(parents=True, exist_ok=True)
                self._mount(["--bind", str(self.cache / host)], r / inside)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for target in reversed(self.done):
            subprocess.run(["umount", "-l", str(target)], check=False)
        self.done.clear()


def chroot_cmd(root: Path, script: str) -> list[str]:
    env = [f"PATH={CHROOT_PATH}", "HOME=/root", "LANG=C.UTF-8", "QEMU_CPU=cortex-a72", "TERM=dumb"]
    env.append(f"BOARD_MODEL={PI4_MODEL}")  # no device tree in a chroot: the Makefile's board, as a Pi 4
    if HOST_CA:  # a host behind a TLS-inspecting proxy: pip inside must trust the same CA (a Pi would not)
        env.append(f"PIP_CERT={GUEST_CA}")
    return ["chroot", str(root), "/usr/bin/env", "-i", *env, "bash", "-c", f"cd {CLONE} && {script}"]


def base_root(release: str, steps: Steps) -> Path:
    """The pristine debootstrapped root, made once per release and cached."""
    cache = CACHE / release
    base = cache / "base"
    if (base / ".complete").exists():
        steps.note("debootstrap", "cached")
        return base
    if base.exists():
        shutil.rmtree(base)
    cmd = ["debootstrap", "--arch=arm64", "--variant=minbase", f"--include={BASE_PACKAGES}", release]
    if steps.run("debootstrap", [*cmd, str(base), MIRROR], timeout_s=3600) is None:
        raise RuntimeError("debootstrap failed")
    (base / ".complete").touch()
    return base


def fresh_root(release: str, base: Path, steps: Steps) -> Path:
    root = CACHE / release / "root"
    t0 = time.monotonic()
    # a run killed without its clean-up leaves binds of /dev and /sys inside: never rmtree through them
    for target in sorted(
        (ln.split()[1] for ln in Path("/proc/mounts").read_text().splitlines()), reverse=True
    ):
        if target.startswith(f"{root}/"):
            subprocess.run(["umount", "-l", target], check=False)
    if any(ln.split()[1].startswith(f"{root}/") for ln in Path("/proc/mounts").read_text().splitlines()):
        raise RuntimeError(f"{root}: still has mounts inside; not removing it")
    if root.exists():
        for pid in processes_in(root):  # an earlier run's step still at work in it (dpkg, a postinst)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while processes_in(root) and time.monotonic() < deadline:
            time.sleep(0.5)
        shutil.rmtree(root)
    sh(["cp", "-a", str(base), str(root)])
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    if HOST_CA and Path(HOST_CA).is_file():  # this network's TLS proxy CA (PIP_CERT), not the project's
        shutil.copy(HOST_CA, root / GUEST_CA.lstrip("/"))
    # the commit, not the working tree: what a user cloning the repository gets
    sh(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(root / CLONE.lstrip("/"))])
    head = sh(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True).stdout.strip()
    sh(["git", "-C", str(root / CLONE.lstrip("/")), "checkout", "--quiet", head])
    steps.note("fresh-root-and-clone", "ok", time.monotonic() - t0, commit=head)
    return root


def demo_results(root: Path, stdout: str) -> dict[str, object]:
    events = root / CLONE.lstrip("/") / "out/events.jsonl"
    turns = []
    if events.exists():
        for line in events.read_text().splitlines():
            ev = json.loads(line)
            if ev.get("type") == "response.done":
                keep = ("status", "route", "transcript", "reply", "latency")
                turns.append({k: ev.get(k, ev.get("data", {}).get(k)) for k in keep})
    back = re.findall(r"^\s+at\s+([\d.]+) s: (.*)$", stdout, re.M)
    return {"turns": turns, "replies_transcribed_back": [{"at_s": float(a), "text": t} for a, t in back]}


def unit_results(text: str) -> dict[str, object]:
    summary = [ln for ln in text.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    last = summary[-1] if summary else ""
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?)", last)}
    per_test = re.findall(r"^(tests/\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)", text, re.M)
    if not counts:  # stopped before its summary: what the per-test lines say so far
        for _, outcome in per_test:
            key = outcome.lower()
            counts[key] = counts.get(key, 0) + 1
    return {
        "summary": last.strip("= ") or f"stopped after {len(per_test)} tests",
        "counts": counts,
        "failed": sorted(
            {t for t, o in per_test if o in ("FAILED", "ERROR")}
            | set(re.findall(r"^FAILED (\S+)", text, re.M))
        ),
    }


def built_wheels(release: str) -> list[str]:
    """Wheels pip built from source (pip keeps them in its cache's wheels/ tree; downloads are not)."""
    return sorted({p.name for p in (CACHE / release / "pip/wheels").rglob("*.whl")})


def resumable(release: str) -> tuple[dict[str, object], set[str]]:
    """The report's entry for a release whose run was stopped, and the steps it finished: ``--resume``
    runs only the others, in the same root (same clone, same commit) — a run longer than a session."""
    entry = json.loads(REPORT.read_text())["releases"][release] if REPORT.exists() else None
    root = CACHE / release / "root"
    if not isinstance(entry, dict) or not (root / CLONE.lstrip("/")).is_dir():
        raise SystemExit(f"{release}: nothing to resume (no report entry or no root)")
    head = sh(["git", "-C", str(root / CLONE.lstrip("/")), "rev-parse", "HEAD"], capture_output=True)
    if head.stdout.strip() != entry.get("commit"):
        raise SystemExit(f"{release}: the root's clone is not the entry's commit {entry.get('commit')}")
    done = {str(s["step"]) for s in entry.get("steps", []) if s.get("status") in ("ok", "cached")}
    return entry, done


def check_release(release: str, resume: bool = False) -> dict[str, object]:
    steps = Steps(CACHE / release / "logs", release)
    result: dict[str, object] = {"python": PYTHONS.get(release), "started": f"{datetime.now(UTC):%FT%TZ}"}
    done: set[str] = set()
    if resume:
        prev, done = resumable(release)
        steps.record = [s for s in prev.get("steps", []) if s.get("step") in done]
        kept = ("python", "started", "commit", "guest", "venv_python")
        result.update({k: prev[k] for k in kept if k in prev}, resumed=f"{datetime.now(UTC):%FT%TZ}")
    t0 = time.monotonic()
    steps.after.append(lambda: write_release(release, {**result, "steps": steps.record, "finished": False}))
    try:
        if resume:
            root = CACHE / release / "root"
        else:
            root = fresh_root(release, base_root(release, steps), steps)
            result["commit"] = steps.record[-1].get("commit")  # what was tested: the clone's HEAD
        with Mounts(root, CACHE / release):
            ver = subprocess.run(
                chroot_cmd(root, "uname -m; cat /etc/debian_version"),
                capture_output=True,
                text=True,
                check=False,
            )
            result["guest"] = ver.stdout.split()
            ok = True
            for name, script in (
                ("apt", "make apt"),
                ("install", "make .venv/.edge-voice-installed"),
                ("dev-tools", "make dev"),  # the unit tests' tools, before the demo runs from the venv
                ("models", "make models"),
            ):
                if name in done:
                    continue
                if steps.run(name, chroot_cmd(root, script), STEP_TIMEOUT_S[name]) is None:
                    ok = False
                    break
            if ok:
                pyver = subprocess.run(
                    chroot_cmd(root, ".venv/bin/python -VV"), capture_output=True, text=True, check=False
                )
                result["venv_python"] = pyver.stdout.strip()
                lg = ".venv/bin/python -c 'import lgpio, gpiozero; print(lgpio.__file__)'"
                if "gpio-library" not in done:
                    steps.run("gpio-library", chroot_cmd(root, lg), 600)
                # the unit tests run beside the demo: each is one emulated process (mostly one core), and
                # one after the other they take longer than a session has (durations are emulated anyway)
                unit = threading.Thread(
                    target=steps.run,
                    args=("unit", chroot_cmd(root, f"{UNIT_ENV} make unit"), STEP_TIMEOUT_S["unit"]),
                )
                if "unit" not in done:
                    unit.start()
                out = steps.run(
                    "demo",
                    chroot_cmd(root, "make demo CONFIG=tests/target/emulation.toml"),
                    STEP_TIMEOUT_S["demo"],
                )
                log = (CACHE / release / "logs/demo.log").read_text(errors="replace")
                result["demo"] = demo_results(root, out or log)
                if unit.is_alive() or "unit" not in done:
                    unit.join()
                result["unit"] = unit_results((CACHE / release / "logs/unit.log").read_text(errors="replace"))
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        steps.note("harness", "failed", error=str(exc))
    result["steps"] = steps.record
    result["wheels_built_from_source"] = built_wheels(release)
    result["total_s"] = round(time.monotonic() - t0, 1)
    result["passed"] = all(s["status"] in ("ok", "cached") for s in steps.record) and any(
        s["step"] == "unit" for s in steps.record
    )
    return result


HEADER = {
    "what": "make demo + make unit from a clean clone in arm64 Debian roots under qemu-user-static "
    "(QEMU_CPU=cortex-a72, Pi 4 cpuinfo); durations are emulated on a shared 2-core x86_64 box "
    "(30-150x slower than a Pi) and only the demo's time limits are widened (tests/target/emulation.toml)",
}


def write_release(release: str, res: dict[str, object], host: dict[str, str] | None = None) -> None:
    """Merge one release's entry into the report (re-read first: releases may be checked side by side,
    by two processes: the file lock keeps one's read-merge-write from losing the other's)."""
    REPORT.parent.mkdir(exist_ok=True)
    with _REPORT_LOCK, (REPORT.parent / ".aarch64.json.lock").open("w") as lock:  # the unit thread too
        fcntl.flock(lock, fcntl.LOCK_EX)
        _write_release(release, res, host)


_REPORT_LOCK = threading.Lock()


def _write_release(release: str, res: dict[str, object], host: dict[str, str] | None) -> None:
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    report.update(HEADER)
    if host is not None:
        report["host"] = host
    report.setdefault("releases", {})[release] = res
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")


_STARTED = re.compile(r"^\[(\d\d:\d\d:\d\d)\] (?:([\w-]+)/)?([\w-]+): ")
_ENDED = re.compile(r"^  -> (?:(?:([\w-]+)/)?([\w-]+): )?(\w+) in (\d+) s")


def collect_steps(release: str, lines: list[str], now: datetime) -> list[dict[str, object]]:
    """Each step's result from the harness's output lines, in the order the steps started. A result line
    names its step (and release), so steps that ran side by side (the unit tests beside the demo; releases
    side by side) each get their own. The old output named neither: an unnamed result is credited only
    when exactly one step was running; otherwise nothing is guessed, and the steps it could have ended are
    marked "unknown". A step with no result line was still running: "stopped", with its time so far."""
    record: list[dict[str, object]] = []
    running: dict[str, tuple[int, datetime]] = {}  # step -> (its place in record, started)
    ambiguous: set[str] = set()
    for line in lines:
        if m := _STARTED.match(line):
            if m[2] not in (None, release):
                continue
            hms = datetime.strptime(m[1], "%H:%M:%S").time()
            t = datetime.combine(now.date(), hms, UTC)
            if t > now:  # started before midnight
                t -= timedelta(days=1)
            running[m[3]] = (len(record), t)
            record.append({"step": m[3], "status": None, "seconds": None})
        elif m := _ENDED.match(line):
            if m[1] not in (None, release):
                continue
            name = m[2]
            if name is None:
                if len(running) != 1:
                    ambiguous.update(running)
                    continue
                name = next(iter(running))
            if name in running:
                i, _ = running.pop(name)
                record[i].update(status=m[3], seconds=float(m[4]))
                ambiguous.discard(name)
    for name, (i, t) in running.items():
        status = "unknown" if name in ambiguous else "stopped"
        record[i].update(status=status, seconds=round((now - t).total_seconds(), 1))
    return record


def merge_steps(
    recorded: list[dict[str, object]], collected: list[dict[str, object]]
) -> list[dict[str, object]]:
    """The harness's own record (written after every step it finished: exact, commit included) first,
    then what only the output knows: the steps still running when the run was stopped."""
    done = {r["step"] for r in recorded}
    return [*recorded, *(c for c in collected if c["step"] not in done)]


def collect(release: str, harness_log: Path, report: Path = REPORT) -> dict[str, object]:
    """A release's entry from a run that was stopped (a deadline) before it wrote one: the steps the
    harness recorded in the report as it went (an entry with ``finished: false``), the steps its output
    shows still running (collect_steps), and the demo/unit results as far as their logs and the root got."""
    lines = harness_log.read_text(errors="replace").splitlines()
    record = collect_steps(release, lines, datetime.now(UTC))
    partial = json.loads(report.read_text()).get("releases", {}).get(release, {}) if report.exists() else {}
    res: dict[str, object] = {"python": PYTHONS.get(release)}
    if partial.get("finished") is False:  # this run's own entry, not an earlier run's
        res.update({k: v for k, v in partial.items() if k != "finished"})
        record = merge_steps(list(partial.get("steps", [])), record)
    res.update(steps=record, passed=False)
    root, logs = CACHE / release / "root", CACHE / release / "logs"
    if (logs / "demo.log").exists():
        res["demo"] = demo_results(root, (logs / "demo.log").read_text(errors="replace"))
    if (logs / "unit.log").exists():
        res["unit"] = unit_results((logs / "unit.log").read_text(errors="replace"))
    res["wheels_built_from_source"] = built_wheels(release)
    res["note"] = "collected from the harness output: the run was stopped before it finished"
    return res


def main(argv: list[str]) -> int:
    if argv[:1] == ["--collect"]:  # --collect RELEASE HARNESS_LOG
        write_release(argv[1], collect(argv[1], Path(argv[2])))
        return 0
    resume = argv[:1] == ["--resume"]  # --resume RELEASE...: finish stopped runs in their roots
    releases = argv[1:] if resume else argv
    releases = releases or ["bookworm", "trixie"]
    host = ensure_host()
    passed: dict[str, bool] = {}

    def one(release: str) -> None:
        res = check_release(release, resume)
        write_release(release, res, host)
        print(f"{release}: {'passed' if res['passed'] else 'FAILED'} in {res['total_s']:.0f} s", flush=True)
        passed[release] = bool(res["passed"])

    # the releases side by side: each step is mostly one emulated process (one core), so two releases
    # take little longer than one; one after the other they take longer than a session has
    threads = [threading.Thread(target=one, args=(r,), name=f"target-{r}") for r in dict.fromkeys(releases)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return 0 if passed and all(passed.get(r, False) for r in releases) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
