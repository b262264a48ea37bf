"""Blob downloads, buffered and with sendfile (zeroCopyDownloads): exact bytes whole and by range,
under concurrency, after the blob is deleted mid-download, and no file descriptors left behind by
clients that hang up — against the real `berth serve`, once in each mode."""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import os
import socket
import subprocess
import time

import pytest

import berth_helpers as bh
from berth_helpers import sha256, unique
from ecr_helpers import running_server

SIZE = (12 << 20) + 4321


@pytest.fixture(scope="module", params=["true", "false"], ids=["sendfile", "buffered"])
def dl_server(request, berth_bin, tmp_path_factory):
    with running_server(berth_bin, tmp_path_factory.mktemp(f"berth-dl-{request.param}"),
                        BERTH_ZERO_COPY_DOWNLOADS=request.param) as srv:
        yield srv


@pytest.fixture
def reg(dl_server):
    c = bh.Client(dl_server)
    yield c
    assert dl_server.alive(), "the server died"
    assert not c.server_errors, c.server_errors


@pytest.fixture
def shared_server(dl_server):
    return dl_server


def open_fds(server) -> int:
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def test_whole_and_ranged_downloads_are_exact(reg):
    repo = unique("dl")
    data = os.urandom(SIZE)
    digest = reg.push_blob(repo, data)
    r = reg.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200 and r.headers["Content-Length"] == str(SIZE)
    assert sha256(r.content) == digest
    for start, end in [(0, 0), (1, 4096), (4095, (4 << 20) + 7), (SIZE - 10, SIZE - 1), (SIZE - 1, SIZE + 50)]:
        r = reg.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": f"bytes={start}-{end}"})
        last = min(end, SIZE - 1)
        assert r.status_code == 206, (start, end, r.status_code)
        assert r.headers["Content-Range"] == f"bytes {start}-{last}/{SIZE}"
        assert r.content == data[start:last + 1], (start, end)


def test_concurrent_downloads_and_keepalive_reuse(reg):
    repo = unique("dl")
    blobs = [os.urandom((1 << 20) + i * 777) for i in range(4)]
    digests = [reg.push_blob(repo, b) for b in blobs]

    def fetch(i):
        d = digests[i % len(digests)]
        r = reg.get(f"/v2/{repo}/blobs/{d}")
        return r.status_code, hashlib.sha256(r.content).hexdigest() == d.split(":")[1]

    with cf.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, range(32)))
    assert all(code == 200 and ok for code, ok in results), results
    # Several downloads on one keep-alive connection, then a small JSON answer on the same one.
    for d, b in zip(digests, blobs):
        assert reg.get(f"/v2/{repo}/blobs/{d}").content == b
    assert reg.get(f"/v2/{repo}/tags/list").status_code in (200, 404)


def test_a_blob_deleted_during_download_still_arrives_whole(reg):
    repo = unique("dl")
    data = os.urandom(SIZE)
    digest = reg.push_blob(repo, data)
    with reg.get(f"/v2/{repo}/blobs/{digest}", stream=True) as r:
        first = r.raw.read(1 << 16)
        assert reg.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
        rest = r.raw.read()
    assert first + rest == data


def test_clients_that_hang_up_leave_no_open_files(reg, shared_server):
    repo = unique("dl")
    digest = reg.push_blob(repo, os.urandom(SIZE))
    token = reg.session.headers.get("Authorization") or shared_server.basic_auth_header()
    before = open_fds(shared_server)
    host, port = shared_server.hostport.split(":")
    for _ in range(40):
        s = socket.create_connection((host, int(port)))
        s.sendall(f"GET /v2/{repo}/blobs/{digest} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n\r\n".encode())
        s.recv(1000)
        s.close()
    deadline = time.time() + 10
    while open_fds(shared_server) > before + 5 and time.time() < deadline:
        time.sleep(0.2)
    assert open_fds(shared_server) <= before + 5, f"{open_fds(shared_server)} fds open, {before} before"
    r = reg.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 200 and sha256(r.content) == digest


def server_side_congestion_control(port: int, client: socket.socket) -> str:
    """The congestion-control algorithm `ss` reports for the server's end of `client`'s connection."""
    local_port = client.getsockname()[1]
    out = subprocess.run(["ss", "-tinH", "state", "established", f"( sport = :{port} and dport = :{local_port} )"],
                         capture_output=True, text=True, check=True).stdout
    for word in out.split():
        if word in ("cubic", "reno", "bbr", "bbr2", "htcp", "vegas", "westwood", "dctcp"):
            return word
    raise AssertionError(f"no congestion control in ss output: {out!r}")


def system_congestion_control() -> str:
    with open("/proc/sys/net/ipv4/tcp_congestion_control") as f:
        return f.read().strip()


def test_loopback_connections_get_cubic_or_reno(dl_server):
    """BBR paces loopback transfers at about half of what cubic/reno reach; Berth switches connections
    from this host to the first of loopbackCongestionControl the kernel accepts (default cubic, reno)."""
    host, port = dl_server.hostport.split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert b"200" in s.recv(1000).split(b"\r\n")[0]
        assert server_side_congestion_control(int(port), s) in ("cubic", "reno")


def test_loopback_congestion_control_can_be_left_to_the_system(berth_bin, tmp_path):
    with running_server(berth_bin, tmp_path / "cc", BERTH_LOOPBACK_CONGESTION_CONTROL="system") as srv:
        host, port = srv.hostport.split(":")
        with socket.create_connection((host, int(port))) as s:
            s.sendall(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            assert b"200" in s.recv(1000).split(b"\r\n")[0]
            assert server_side_congestion_control(int(port), s) == system_congestion_control()


def test_invalid_congestion_control_names_are_refused(berth_bin, tmp_path):
    env = {**os.environ, "BERTH_LOOPBACK_CONGESTION_CONTROL": "cubic,../etc"}
    r = subprocess.run([str(berth_bin), "verify-config", "--data-dir", str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "loopbackCongestionControl" in (r.stdout + r.stderr)
