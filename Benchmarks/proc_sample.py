"""A benchmarked process's CPU time and resident memory, from /proc (Linux)."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def settle(pid: int, timeout: float = 15.0):
    """Waits until Berth is idle (under 5 % of a core over 200 ms): work a previous pull started in the
    background (storing, a scan) is not charged to the next one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c0 = cpu_seconds(pid)
        time.sleep(0.2)
        if cpu_seconds(pid) - c0 < 0.01:
            return


class Sampler:
    """Peak VmRSS of a process while a block runs, and its CPU seconds over the block."""

    def __init__(self, pid: int):
        self.pid = pid

    def __enter__(self):
        self.peak = rss_mib(self.pid)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.cpu0 = cpu_seconds(self.pid)
        self.thread.start()
        return self

    def _run(self):
        while not self.stop.wait(0.01):
            self.peak = max(self.peak, rss_mib(self.pid))

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.cpu = cpu_seconds(self.pid) - self.cpu0
