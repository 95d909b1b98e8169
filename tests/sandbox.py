"""Run a command under the shipped unit's seccomp settings, without systemd as PID 1 (CI and the dev box
have none, so ``systemd-run`` cannot start the unit).

The filters are built the way systemd builds them, with libseccomp, from the unit's own lines:

- ``SystemCallFilter=``: an allow-list (the first line, ``@system-service``), then the ``~`` lines remove
  syscalls and later plain lines add them back; everything else fails with ``SystemCallErrorNumber=``.
  Groups are expanded by ``systemd-analyze syscall-filter``, so they are this systemd's groups.
- ``MemoryDenyWriteExecute=true``: ``mmap`` asking for write+execute and ``mprotect``/``pkey_mprotect``
  asking for execute fail with EPERM (systemd's exact rules: a JIT, or a libffi closure without static
  trampolines, breaks here as it would under the unit).
- ``RestrictAddressFamilies=``: ``socket()`` of any other family fails with EAFNOSUPPORT.

Usage: ``python tests/sandbox.py UNIT -- COMMAND ...`` (the filters are loaded, then COMMAND is exec'd;
they are inherited and cannot be removed). Not the unit's namespaces or device policy: those need root
and mounts, and the daemon's tests do not touch devices.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
PROT_WRITE, PROT_EXEC = 0x2, 0x4


def scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


def unit_settings(unit: Path) -> dict[str, list[str]]:
    """[Service] key → every value, in order (SystemCallFilter= repeats)."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and line and not line.startswith(("#", ";")) and "=" in line:
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def expand(names: list[str], cache: dict[str, set[str]] | None = None) -> set[str]:
    """Syscall names and @groups → syscall names (groups expanded recursively by systemd-analyze)."""
    cache = {} if cache is None else cache
    out: set[str] = set()
    for name in names:
        if not name.startswith("@"):
            out.add(name)
            continue
        if name not in cache:
            text = subprocess.run(
                ["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True
            ).stdout
            members = [
                line.strip()
                for line in text.splitlines()[1:]
                if line.strip() and not line.strip().startswith("#")
            ]
            cache[name] = set()  # a group that names itself cannot loop
            cache[name] = expand(members, cache)
        out |= cache[name]
    return out


def allowed_syscalls(settings: dict[str, list[str]]) -> set[str]:
    lines = settings.get("SystemCallFilter", [])
    if not lines or lines[0].startswith("~"):
        raise SystemExit("sandbox: the unit's first SystemCallFilter= must be an allow-list")
    allowed: set[str] = set()
    for line in lines:
        deny = line.startswith("~")
        names = expand(line.lstrip("~").split())
        allowed = allowed - names if deny else allowed | names
    return allowed


def load(unit: Path) -> None:
    settings = unit_settings(unit)
    lib = ctypes.CDLL(ctypes.util.find_library("seccomp") or "libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]

    def rule(ctx: int, action: int, name: str, *cmps: tuple[int, int, int, int]) -> None:
        nr = lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # not a syscall on this architecture (a 32-bit variant, say)
            return
        array = (ArgCmp * max(1, len(cmps)))(*[ArgCmp(*c) for c in cmps])
        rc = lib.seccomp_rule_add_array(ctx, action, nr, len(cmps), array)
        if rc < 0:
            raise OSError(-rc, f"seccomp rule for {name}")

    def commit(ctx: int) -> None:
        rc = lib.seccomp_load(ctx)
        lib.seccomp_release(ctx)
        if rc < 0:
            raise OSError(-rc, "seccomp_load")

    error = getattr(errno, (settings.get("SystemCallErrorNumber") or ["EPERM"])[-1])
    # 1. argument rules, as systemd adds them in filters of their own (the kernel applies the strictest)
    args = lib.seccomp_init(SCMP_ACT_ALLOW)
    if (settings.get("MemoryDenyWriteExecute") or ["false"])[-1] in ("true", "yes", "1"):
        both = PROT_WRITE | PROT_EXEC
        rule(args, scmp_act_errno(errno.EPERM), "mmap", (2, SCMP_CMP_MASKED_EQ, both, both))
        for name in ("mprotect", "pkey_mprotect"):
            rule(args, scmp_act_errno(errno.EPERM), name, (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
    families = " ".join(settings.get("RestrictAddressFamilies", [])).split()
    if families and not families[0].startswith("~"):
        keep = {int(getattr(socket, f)) for f in families}
        for family in range(1, 46):  # AF_MAX on Linux 6.x
            if family not in keep:
                rule(args, scmp_act_errno(errno.EAFNOSUPPORT), "socket", (0, SCMP_CMP_EQ, family, 0))
    commit(args)
    # 2. the allow-list, last: it has no seccomp() in it; everything else fails with SystemCallErrorNumber=
    allow_list = lib.seccomp_init(scmp_act_errno(error))
    for name in sorted(allowed_syscalls(settings)):
        rule(allow_list, SCMP_ACT_ALLOW, name)
    commit(allow_list)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    if not re.search(r"\.service$", argv[0]):
        raise SystemExit(f"sandbox: {argv[0]} is not a unit file")
    load(Path(argv[0]))
    os.execvp(argv[2], argv[2:])
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
