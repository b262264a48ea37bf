"""A private docker daemon for the docker client tests (test_docker.py).

`DockerDaemon` starts Debian's `dockerd` (package docker.io) the way it runs on machines that cannot
run containers: no iptables, no bridge, the vfs storage driver, and every path of its own in
temporary directories (data root, exec root, pid file, socket, a config file so that
/etc/docker/daemon.json is never read, the trust key file so that /etc/docker/key.json is never
written). It needs root. The client gets a DOCKER_CONFIG directory of its own (credentials of
`docker login`) and always talks to this daemon's socket.

No `--insecure-registry` flag: dockerd trusts 127.0.0.0/8 over plain HTTP by default (`docker info`
lists it under "Insecure Registries"; `DockerDaemon.start` checks that it still does).

Stopping: SIGTERM, SIGKILL after 30 s; then every process still naming this daemon's directories on
its command line (containerd, which dockerd starts) is killed by pid, the bind mount dockerd puts
on its data root (left behind by a SIGKILL) is unmounted, and the data and exec roots are removed.
`leftovers()` says what, if anything, is still there; the test fixture fails when something is.
Every daemon is also stopped by atexit, and dies with pytest (PR_SET_PDEATHSIG; containerd dies with
dockerd the same way).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import pytest

import berth_helpers as bh



def _default(env: str, debian_path: str, name: str) -> str:
    """$ENV, else Debian docker.io's path, else the PATH's `name` (docker-ce installs elsewhere)."""
    if os.environ.get(env):
        return os.environ[env]
    if os.access(debian_path, os.X_OK):
        return debian_path
    return shutil.which(name) or debian_path


DOCKERD = _default("DOCKERD", "/usr/sbin/dockerd", "dockerd")
# The client of the daemon's package (docker.io: /usr/bin/docker), as in CI, even when another
# docker client comes first on the PATH.
DOCKER = _default("DOCKER", "/usr/bin/docker", "docker")

_ALL: "list[DockerDaemon]" = []
_LOCK = threading.Lock()


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition: bool, reason: str):
    """A missing docker fails the test in CI (CI=true) and skips it, with the reason, elsewhere."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason}; the docker tests are required in CI and never skipped there",
                    pytrace=False)
    pytest.skip(f"{reason} (this fails instead of skipping when CI=true)")


def find_executable(path: str) -> Optional[str]:
    found = shutil.which(path)
    if found:
        return found
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def _mounts_under(*roots: Path) -> list:
    """Mount points at or below any of `roots`, deepest first."""
    prefixes = [str(r) for r in roots]
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            out.append(point)
    return sorted(set(out), key=len, reverse=True)


def _processes_naming(*needles: str) -> list:
    """(pid, command line) of every process whose command line contains one of `needles`."""
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        if cmd and any(n in cmd for n in needles):
            out.append((int(entry), cmd))
    return out


def _umount(point: str):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.umount2(point.encode(), 2) != 0:  # MNT_DETACH
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)


class DockerDaemon:
    """One private dockerd and a docker client bound to it."""

    READY_TIMEOUT = 60.0
    STOP_TIMEOUT = 30.0

    def __init__(self, dockerd: str, docker: str, base: Path):
        self.dockerd = dockerd
        self.docker_bin = docker
        self.base = Path(base)  # logs, client config, data root (the pytest temporary directory)
        self.data_root = self.base / "data-root"
        self.client_config = self.base / "client-config"
        self.log_path = self.base / "dockerd.log"
        # Unix socket paths are limited to 107 bytes (containerd's sockets live under the exec
        # root), so the exec root and the API socket go to a short directory of their own.
        self.short = Path(tempfile.mkdtemp(prefix="berth-dockerd-", dir="/tmp"))
        self.exec_root = self.short / "exec"
        self.socket = self.short / "docker.sock"
        self.pidfile = self.short / "docker.pid"
        self.config_file = self.short / "daemon.json"
        self.proc: Optional[subprocess.Popen] = None
        self.start_seconds: Optional[float] = None
        self.info: dict = {}
        for d in (self.data_root, self.client_config, self.exec_root):
            d.mkdir(parents=True, exist_ok=True)
        (self.client_config / "config.json").write_text("{}")
        with _LOCK:
            _ALL.append(self)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def command(self) -> list:
        return [self.dockerd, "--iptables=false", "--ip6tables=false", "--bridge=none",
                "--storage-driver=vfs", "--data-root", str(self.data_root),
                "--exec-root", str(self.exec_root), "--pidfile", str(self.pidfile),
                "--config-file", str(self.config_file), "--host", self.host]

    def log_tail(self, n: int = 4000) -> str:
        try:
            return f"----- dockerd.log (last {n} chars) -----\n" + self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return "(no dockerd output)"

    # -- the client ------------------------------------------------------------------------------
    def env(self, config: Optional[Path] = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env.update({"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(config or self.client_config),
                    "DOCKER_CLI_EXPERIMENTAL": "enabled",  # `docker manifest` on older clients
                    "HOME": str(self.base)})
        return env

    def run(self, *args, input: Optional[bytes] = None, check: bool = True, timeout: float = 180,
            config: Optional[Path] = None) -> subprocess.CompletedProcess:
        """`docker ARGS` against this daemon; stdout and stderr are decoded to text."""
        cmd = [self.docker_bin, *args]
        p = subprocess.run(cmd, input=input, capture_output=True, env=self.env(config), timeout=timeout,
                           stdin=None if input is not None else subprocess.DEVNULL)
        p.stdout = p.stdout.decode(errors="replace")
        p.stderr = p.stderr.decode(errors="replace")
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout: {p.stdout[-3000:]}\n"
                                 f"stderr: {p.stderr[-3000:]}")
        return p

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> "DockerDaemon":
        # Only our own paths: no /etc/docker/daemon.json, no /etc/docker/key.json.
        self.config_file.write_text(json.dumps({"deprecated-key-path": str(self.short / "key.json")}))
        t0 = time.monotonic()
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         cwd=str(self.base), preexec_fn=bh._pdeathsig)
        finally:
            log.close()
        deadline = t0 + self.READY_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"dockerd exited with code {self.proc.returncode if self.proc else '?'} "
                            f"before answering\ncommand: {' '.join(self.command())}\n{self.log_tail()}",
                            pytrace=False)
            p = subprocess.run([self.docker_bin, "info", "--format", "{{json .}}"], capture_output=True,
                               env=self.env(), timeout=30, stdin=subprocess.DEVNULL)
            info = {}
            if p.returncode == 0:  # docker 20.10 exits 0 with ServerErrors when nothing answers
                try:
                    info = json.loads(p.stdout.decode())
                except ValueError:
                    pass
            if info.get("ServerVersion") and not info.get("ServerErrors"):
                self.info = info
                self.start_seconds = time.monotonic() - t0
                break
            last = (p.stderr.decode(errors="replace").strip() or str(info.get("ServerErrors")))[-300:]
            time.sleep(0.2)
        else:
            self.stop()
            pytest.fail(f"dockerd did not answer `docker info` within {self.READY_TIMEOUT:.0f}s ({last})\n"
                        f"{self.log_tail()}", pytrace=False)
        cidrs = (self.info.get("RegistryConfig") or {}).get("InsecureRegistryCIDRs") or []
        assert "127.0.0.0/8" in cidrs, f"dockerd does not trust 127.0.0.0/8 over HTTP: {cidrs}"
        return self

    def stop(self):
        """Stop dockerd and clean up everything it left; idempotent."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for pid, _ in _processes_naming(str(self.short), str(self.data_root)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _processes_naming(str(self.short), str(self.data_root)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for point in _mounts_under(self.data_root, self.short):
            _umount(point)
        if not _mounts_under(self.data_root, self.short):
            shutil.rmtree(self.data_root, ignore_errors=True)
            shutil.rmtree(self.short, ignore_errors=True)

    def leftovers(self) -> list:
        """Processes and mounts of this daemon still present (empty after a clean stop)."""
        out = [f"process {pid}: {cmd}" for pid, cmd in _processes_naming(str(self.short), str(self.data_root))]
        out += [f"mount {m}" for m in _mounts_under(self.data_root, self.short)]
        if self.short.exists():
            out.append(f"directory {self.short}")
        if self.data_root.exists():
            out.append(f"directory {self.data_root}")
        return out


def stop_all():
    with _LOCK:
        daemons = list(_ALL)
    for d in daemons:
        try:
            d.stop()
        except Exception:
            pass


atexit.register(stop_all)
