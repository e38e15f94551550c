"""Run a benchmark's child process under time and memory limits and read its peak memory.

One home for what several benchmark scripts do: the parent polls the child with ``os.wait4`` (not
``Popen.wait``) because wait4 returns the child's own resource usage, whose ``ru_maxrss`` is its peak
resident set size, measured even when the child crashed or was killed; it kills a child that passes
``timeout_s`` or ``max_rss_kib`` and says which. Standard library only (scripts import it before TensorFlow).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Dict, Optional, Sequence


def rss_kib(pid="self") -> int:
    """Current resident set size of process ``pid`` (``"self"``: this one) in KiB; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class WatchedRun:
    """What :func:`run_watched` saw: exit code (negative: signal), output, peak RSS (KiB), wall seconds, and
    ``killed`` (None, or ``"over N GiB RSS, killed"`` / ``"over N s, killed"``)."""

    returncode: int
    stdout: str
    stderr: str
    peak_kib: int
    wall_s: float
    killed: Optional[str]


def run_watched(
    command: Sequence[str], env: Dict[str, str], cwd: str, timeout_s: float, max_rss_kib: float, poll_s: float = 0.2
) -> WatchedRun:
    """Run ``command`` until it exits, killing it past ``timeout_s`` seconds or ``max_rss_kib`` KiB of RSS."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        began = time.monotonic()
        proc = subprocess.Popen(list(command), stdout=out, stderr=err, text=True, env=env, cwd=str(cwd))
        killed = None
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if killed is None and rss_kib(proc.pid) > max_rss_kib:
                killed = f"over {max_rss_kib / 2**20:g} GiB RSS, killed"
                proc.kill()
            elif killed is None and time.monotonic() - began > timeout_s:
                killed = f"over {timeout_s:g} s, killed"
                proc.kill()
            time.sleep(poll_s)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return WatchedRun(proc.returncode, out.read(), err.read(), usage.ru_maxrss, time.monotonic() - began, killed)


__all__ = ["rss_kib", "WatchedRun", "run_watched"]
