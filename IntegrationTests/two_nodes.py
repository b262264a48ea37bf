"""The two-node topology of the integration tests (issue #14 §6): `BERTH_TEST_TOPOLOGY=two-nodes`.

With the switch on, the standard server fixtures (`shared_server`, `fresh_server`, `ecr_server`,
`ecr_fresh`, `running_server`) start, instead of one embedded `berth serve`, a scale-out deployment that
looks like one server to the tests:

* a PostgreSQL database of its own on the cluster `BERTH_TEST_POSTGRES_URL` names (scripts/test starts one),
* a bucket of its own on one SeaweedFS started for the whole run (s3_helpers.SeaweedFS),
* two `berth serve` processes on them, each with its own data directory; they share the master key
  (node 1's `secretKeyFile` is node 0's `master.key`) and the vulnerability database files (node 1's
  `vulndb` is a link to node 0's, as a shared mount would be), nothing else,
* `RoundRobinProxy` in front: a threaded HTTP/1.1 reverse proxy that sends request n to node n mod 2,
  whatever client connection it came on, and streams request and response bodies (Content-Length or
  chunked) without buffering them. A node that refuses the connection (stopped) is skipped, as a load
  balancer's health check would.

`server.url`/`port`/`hostport` are the proxy's, `data_dir` is node 0's (admin commands run there, with
the deployment's backends in their environment). Tests that need one process's data directory are
marked `@pytest.mark.one_node(reason)` and skipped in this topology (conftest.py).
"""

from __future__ import annotations

import atexit
import http.client
import itertools
import functools
import os
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Optional

import pytest

import berth_helpers as bh

TOPOLOGY = os.environ.get("BERTH_TEST_TOPOLOGY", "one-node")
if TOPOLOGY not in ("one-node", "two-nodes"):
    raise SystemExit(f"BERTH_TEST_TOPOLOGY must be one-node or two-nodes, got {TOPOLOGY!r}")
TWO_NODES = TOPOLOGY == "two-nodes"

# Hop-by-hop headers (RFC 9110 §7.6.1) and the framing this proxy sets itself.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade", "transfer-encoding",
              "expect"}
PIECE = 256 * 1024


class ClientGone(Exception):
    """The client closed its connection before the end of its request body."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_ProxyHTTPServer"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    # -- request body -------------------------------------------------------------------------
    def _body_pieces(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    raise ClientGone()
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: dropped
                    return
                left = size
                while left:
                    data = self.rfile.read(min(left, PIECE))
                    if not data:
                        raise ClientGone()
                    left -= len(data)
                    yield data
                self.rfile.readline(16)
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left:
                data = self.rfile.read1(min(left, PIECE))
                if not data:
                    raise ClientGone()
                left -= len(data)
                yield data

    def _connect(self) -> http.client.HTTPConnection:
        turn = next(self.server.turns)
        backends = self.server.backends
        last = None
        for i in range(len(backends)):
            address = backends[(turn + i) % len(backends)]()
            if address is None:
                continue
            conn = http.client.HTTPConnection(*address, timeout=600)
            try:
                conn.connect()
                self.node = (turn + i) % len(backends)
                return conn
            except OSError as e:  # stopped node: the next one
                last = e
                conn.close()
        raise ConnectionRefusedError(f"no node accepts connections ({last})")

    def _forward(self):
        started = time.monotonic()
        self.node, self.status = None, None
        try:
            self._forward_to_a_node()
        finally:
            self.server.log(f"{time.strftime('%H:%M:%S')} node {self.node} {self.command} {self.path} -> "
                            f"{self.status} {time.monotonic() - started:.3f}s")

    def _forward_to_a_node(self):
        try:
            conn = self._connect()
        except OSError as e:
            self.send_error(502, f"no backend: {e}")
            return
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        has_body = chunked or self.headers.get("Content-Length") not in (None, "0")
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    conn.putheader(k, v)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            sent_all = True
            try:
                if has_body:
                    for piece in self._body_pieces():
                        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    if chunked:
                        conn.send(b"0\r\n\r\n")
            except ClientGone:
                self.close_connection = True
                return  # the backend sees its request end early, as it would without the proxy
            except OSError:
                sent_all = False  # the backend answered (and closed) before reading the whole body
            try:
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as e:
                self.send_error(502, f"backend failed: {e}")
                self.close_connection = True
                return
            self._relay(resp)
            if not sent_all:
                self.close_connection = True
        finally:
            conn.close()

    def _relay(self, resp: http.client.HTTPResponse):
        self.status = resp.status
        self.send_response_only(resp.status, resp.reason)
        no_body = self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200
        length = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        reencode = not no_body and length is None and resp.chunked
        if reencode:
            self.send_header("Transfer-Encoding", "chunked")
        elif not no_body and length is None:
            self.send_header("Connection", "close")  # a close-delimited body
            self.close_connection = True
        if (resp.getheader("Connection") or "").lower() == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if no_body:
            return
        while True:
            piece = resp.read1(PIECE)
            if not piece:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if reencode else piece)
        if reencode:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _forward


class _ProxyHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    backends: list
    turns: "itertools.count"
    log_file = None
    log_lock = threading.Lock()

    def log(self, line: str):
        if self.log_file is not None:
            with self.log_lock:
                self.log_file.write(line + "\n")
                self.log_file.flush()


class RoundRobinProxy:
    """Listens on 127.0.0.1:`port` (a free one when 0); request n goes to `backends[n % len]()`, a
    callable answering the node's current (host, port) or None when it is down. With `log_path`, one
    line per request: time, node, method, path, status, seconds."""

    def __init__(self, backends: "list[Callable[[], Optional[tuple]]]", port: int = 0,
                 log_path: Optional[Path] = None):
        self.httpd = _ProxyHTTPServer((bh.HOST, port), _Handler)
        self.httpd.backends = backends
        if log_path is not None:
            self.httpd.log_file = open(log_path, "a")
        self.httpd.turns = itertools.count()
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="round-robin-proxy", daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        if self.httpd.log_file is not None:
            self.httpd.log_file.close()


# ---------------------------------------------------------------------------------------------
# the shared SeaweedFS and the deployment
# ---------------------------------------------------------------------------------------------
_SEAWEED = None
_SEAWEED_LOCK = threading.Lock()


def shared_seaweed():
    global _SEAWEED
    with _SEAWEED_LOCK:
        if _SEAWEED is None:
            import tempfile

            from s3_helpers import SeaweedFS
            _SEAWEED = SeaweedFS(Path(tempfile.mkdtemp(prefix="berth-it-seaweedfs-")))
        return _SEAWEED


def stop_shared():
    global _SEAWEED
    with _SEAWEED_LOCK:
        if _SEAWEED is not None:
            _SEAWEED.stop()
            _SEAWEED = None


atexit.register(stop_shared)


def _psql(url: str, sql: str):
    p = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        pytest.fail(f"psql {sql!r}: {p.stderr.decode(errors='replace')}", pytrace=False)


def new_backends() -> dict:
    """A new database and a new bucket; the environment that points `berth` at them."""
    import urllib.parse

    from s3_helpers import ACCESS_KEY, SECRET_KEY
    pg_url = os.environ.get("BERTH_TEST_POSTGRES_URL", "")
    if not pg_url:
        pytest.fail("BERTH_TEST_TOPOLOGY=two-nodes needs BERTH_TEST_POSTGRES_URL (scripts/test starts a cluster)",
                    pytrace=False)
    name = "two_nodes_" + uuid.uuid4().hex[:12]
    _psql(pg_url, f"CREATE DATABASE {name}")
    parts = urllib.parse.urlsplit(pg_url)
    url = f"{parts.scheme}://{parts.netloc}/{name}" + (f"?{parts.query}" if parts.query else "")
    seaweed = shared_seaweed()
    bucket = name.replace("_", "-")
    seaweed.s3.create_bucket(Bucket=bucket)
    return {"BERTH_METADATA_BACKEND": "postgres", "BERTH_POSTGRES_URL": url, "BERTH_BLOB_BACKEND": "s3",
            "BERTH_S3_ENDPOINT": seaweed.endpoint, "BERTH_S3_BUCKET": bucket, "BERTH_S3_REGION": "us-east-1",
            "BERTH_S3_PATH_STYLE": "true", "BERTH_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "BERTH_S3_SECRET_ACCESS_KEY": SECRET_KEY}


@functools.cache
def two_node_server_class():
    from ecr_helpers import ECRServer

    class TwoNodeServer(ECRServer):
        """Two `berth serve` on one PostgreSQL database and one bucket behind a RoundRobinProxy, shaped like
        one ECRServer (see the module's docstring)."""

        def __init__(self, binary: Path, base: Path, env: Optional[dict] = None, **kw):
            super().__init__(binary, base, env=env, **kw)
            self.nodes: list = []
            self.proxy: Optional[RoundRobinProxy] = None
            self._kw = kw

        # One process per node; `proc` answers a dead node's (the fixtures report its exit code) or node 0's.
        @property
        def proc(self):
            nodes = self.__dict__.get("nodes") or []
            for n in nodes:
                if n.proc is not None and n.proc.poll() is not None:
                    return n.proc
            return nodes[0].proc if nodes else None

        @proc.setter
        def proc(self, value):
            pass

        def _make_nodes(self):
            self.env.update(new_backends())
            # Behind a load balancer every node names the balancer's address in the URLs it builds (repository
            # URIs, proxyEndpoint, presigned layer URLs, whose signature covers the host): `publicEndpoint`.
            self.env["BERTH_PUBLIC_ENDPOINT"] = f"http://{bh.HOST}:{self.proxy.port}"
            key = self.data_dir / "master.key"
            self.env["BERTH_SECRET_KEY_FILE"] = str(key)
            base = self.data_dir.parent
            node0 = ECRServer(self.binary, base, env=self.env, **self._kw)
            node1 = ECRServer(self.binary, base / "node1", env=self.env, **self._kw)
            node1.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / "vulndb").mkdir(parents=True, exist_ok=True)
            link = node1.data_dir / "vulndb"
            if not link.exists():
                link.symlink_to(self.data_dir / "vulndb", target_is_directory=True)
            self.nodes = [node0, node1]

        def _address(self, i: int):
            node = self.nodes[i] if len(self.nodes) > i else None
            return (bh.HOST, node.port) if node is not None and node.alive() else None

        def start(self, port: Optional[int] = None):
            if self.proxy is None:  # first: the nodes are told its address (publicEndpoint)
                self.log_dir.mkdir(parents=True, exist_ok=True)
                self.proxy = RoundRobinProxy([lambda i=i: self._address(i) for i in range(2)], port=port or 0,
                                             log_path=self.log_dir / "proxy.log")
                self.port = self.proxy.port
            if not self.nodes:
                self._make_nodes()
            for n in self.nodes:  # node 0 first: it writes the master key node 1 reads
                n.start()
            return self

        def alive(self) -> bool:
            return bool(self.nodes) and all(n.alive() for n in self.nodes)

        def stop(self, timeout: float = 15.0):
            codes = [n.stop(timeout) for n in self.nodes]
            self.last_returncode = next((c for c in codes if c not in (0, None)), codes[0] if codes else None)
            return self.last_returncode

        def kill9(self):
            codes = [n.kill9() for n in self.nodes]
            self.last_returncode = codes[0] if codes else None
            return self.last_returncode

        def log_tail(self, n_chars: int = 6000) -> str:
            out = [f"===== node {i} =====\n{n.log_tail(n_chars)}" for i, n in enumerate(self.nodes)]
            try:
                out.append(f"===== proxy.log (last 40 requests) =====\n"
                           + "\n".join((self.log_dir / "proxy.log").read_text().splitlines()[-40:]))
            except FileNotFoundError:
                pass
            return "\n".join(out)

        def dispose(self):
            try:
                for n in self.nodes:
                    n.dispose()
                if self.proxy is not None:
                    self.proxy.close()
                    self.proxy = None
            finally:
                with bh._ALL_LOCK:
                    if self in bh._ALL_SERVERS:
                        bh._ALL_SERVERS.remove(self)

    return TwoNodeServer


def make_server(binary: Path, base: Path, env: Optional[dict] = None, **kw):
    """The fixtures' server: one embedded `berth serve` (ECRServer), or the two-node deployment."""
    from ecr_helpers import ECRServer
    cls = two_node_server_class() if TWO_NODES else ECRServer
    return cls(binary, base, env=env, **kw)
