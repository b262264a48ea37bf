"""Shared helpers for Berth's integration tests.

Everything here talks to a real `berth serve` process over 127.0.0.1 only.

* `BerthServer` starts / stops / SIGKILLs / restarts one server process on one data directory.
* `Client` is a thin `requests` wrapper bound to a server: it resolves `Location` headers, records
  every 5xx it sees (the suite treats any 5xx as a bug) and has push helpers for blobs and manifests.
* `raw_request` sends bytes exactly as given (no URL normalisation), for `..` / `%2F` tests.
"""

from __future__ import annotations

import ctypes
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pytest
import requests

HOST = "127.0.0.1"

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BERTH_BIN = REPO_ROOT / ".build" / "debug" / "berth"
FIXTURES_DIR = Path(os.environ.get("BERTH_FIXTURES", str(REPO_ROOT.parent / "shared" / "fixtures")))

# ---------------------------------------------------------------------------------------------
# media types
# ---------------------------------------------------------------------------------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

ALL_MANIFEST_TYPES = ", ".join([OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST])

EMPTY_JSON = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

SPEC_ERROR_CODES = {
    "BLOB_UNKNOWN", "BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN", "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN", "MANIFEST_INVALID", "MANIFEST_UNKNOWN", "NAME_INVALID",
    "NAME_UNKNOWN", "SIZE_INVALID", "UNAUTHORIZED", "DENIED", "UNSUPPORTED",
    "TOO_MANY_REQUESTS",
}


# Every server these tests start has this account and root key; /v2/ needs a registry token from it.
ROOT_ACCOUNT_ID = "123456789012"
ROOT_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
ROOT_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ROOT_ENV = {
    "BERTH_ACCOUNT_ID": ROOT_ACCOUNT_ID,
    "BERTH_ROOT_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID,
    "BERTH_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
}


def fetch_registry_token(url: str, key_id: str = ROOT_ACCESS_KEY_ID, secret: str = ROOT_SECRET_ACCESS_KEY,
                         region: str = "us-east-1") -> str:
    """The password for user AWS, as `aws ecr get-login-password` gets it (GetAuthorizationToken)."""
    import base64
    import boto3
    ecr = boto3.client("ecr", endpoint_url=url, region_name=region, aws_access_key_id=key_id,
                       aws_secret_access_key=secret)
    data = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(data).decode().partition(":")
    assert user == "AWS", user
    return password


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unique(prefix: str = "t") -> str:
    """A fresh, valid repository-name component."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# server process management
# ---------------------------------------------------------------------------------------------
_ALL_SERVERS: "list[BerthServer]" = []
_ALL_LOCK = threading.Lock()


def _pdeathsig():  # runs in the child between fork and exec
    # If the pytest process dies (even by SIGKILL), take the server with it.
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def berth_binary() -> Path:
    return Path(os.environ.get("BERTH_BIN") or DEFAULT_BERTH_BIN).resolve()


def auth_file_entries() -> dict:
    """containers-auth.json entries for every server started so far (skopeo's REGISTRY_AUTH_FILE)."""
    import base64
    out = {}
    with _ALL_LOCK:
        servers = list(_ALL_SERVERS)
    for srv in servers:
        if srv.port is None or not srv.alive:
            continue
        try:
            out[srv.hostport] = {"auth": base64.b64encode(f"AWS:{srv.token()}".encode()).decode()}
        except Exception:
            continue
    return out


def stop_all_servers():
    """Kill every server process this test run started that is still running."""
    with _ALL_LOCK:
        servers = list(_ALL_SERVERS)
    for srv in servers:
        try:
            srv.stop(timeout=5)
        except Exception:
            try:
                srv.kill9()
            except Exception:
                pass


class BerthServer:
    """One `berth serve` process bound to 127.0.0.1 and one data directory."""
    scheme = "http"
    verify = True  # what requests checks https certificates against (a CA file for TLS servers)

    def __init__(self, binary: Path, data_dir: Path, log_dir: Path, port: Optional[int] = None,
                 ready_timeout: float = 20.0, extra_args: Iterable[str] = ()):
        self.binary = Path(binary)
        self.data_dir = Path(data_dir)
        self.log_dir = Path(log_dir)
        self.port = port
        self.ready_timeout = ready_timeout
        self.extra_args = list(extra_args)
        self.proc: Optional[subprocess.Popen] = None
        self._token: Optional[str] = None
        self.starts = 0
        self.last_returncode: Optional[int] = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with _ALL_LOCK:
            _ALL_SERVERS.append(self)

    # -- addresses ---------------------------------------------------------------------------
    @property
    def hostport(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{HOST}:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / "berth.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / "berth.stderr.log"

    def log_tail(self, n_chars: int = 6000) -> str:
        out = []
        for p in (self.stderr_path, self.stdout_path):
            try:
                text = p.read_text(errors="replace")
            except FileNotFoundError:
                continue
            out.append(f"----- {p.name} (last {n_chars} chars) -----\n{text[-n_chars:]}")
        return "\n".join(out) or "(no server output captured)"

    # -- lifecycle ---------------------------------------------------------------------------
    def token(self) -> str:
        """A registry token of the root key (valid across restarts: the data directory keeps the key)."""
        if self._token is None:
            self._token = fetch_registry_token(self.url)
        return self._token

    def basic_auth_header(self) -> str:
        import base64
        return "Basic " + base64.b64encode(f"AWS:{self.token()}".encode()).decode()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, port: int) -> subprocess.Popen:
        cmd = [str(self.binary), "serve", "--data-dir", str(self.data_dir), "--host", HOST,
               "--port", str(port), *self.extra_args]
        banner = f"\n===== start #{self.starts + 1} at {time.strftime('%H:%M:%S')}: {' '.join(cmd)}\n"
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        out.write(banner.encode())
        err.write(banner.encode())
        out.flush()
        err.flush()
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
            env.update(ROOT_ENV)
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    cwd=str(self.log_dir), preexec_fn=_pdeathsig, env=env)
        finally:
            out.close()
            err.close()

    def _wait_ready(self, proc: subprocess.Popen, port: int, timeout: float) -> Optional[str]:
        """None when ready, else a reason string."""
        deadline = time.monotonic() + timeout
        last_err = "no answer"
        while time.monotonic() < deadline:
            rc = proc.poll()
            if rc is not None:
                return f"berth exited with code {rc} before becoming ready"
            try:
                r = requests.get(f"{self.scheme}://{HOST}:{port}/healthz", timeout=1.0, verify=self.verify)
                if r.status_code == 200:
                    return None
                last_err = f"GET /healthz answered {r.status_code}"
            except requests.RequestException as e:
                last_err = f"GET /healthz failed: {type(e).__name__}"
            time.sleep(0.05)
        return f"berth did not answer 200 on /healthz within {timeout:.0f}s ({last_err})"

    def _output_since(self, offsets) -> str:
        out = []
        for p, off in offsets.items():
            try:
                with open(p, "rb") as f:
                    f.seek(off)
                    out.append(f.read().decode(errors="replace"))
            except FileNotFoundError:
                pass
        return "\n".join(out)

    def start(self, port: Optional[int] = None):
        """Start the server and wait for GET /healthz == 200. Keeps the previous port if it had
        one (a just-killed server's port can take a moment to be bindable again; after a few
        tries a fresh port is used). Fails the test loudly, with the server's output, otherwise."""
        if self.alive():
            return self
        if not self.binary.exists():
            pytest.fail(f"berth binary not found at {self.binary} (set BERTH_BIN or run "
                        f"`swift build` first)", pytrace=False)
        wanted = port or self.port
        plan = ([wanted] * 6 if wanted else []) + [None, None, None]
        reason = "not started"
        for p in plan:
            p_try = p or free_port()
            offsets = {path: (path.stat().st_size if path.exists() else 0)
                       for path in (self.stdout_path, self.stderr_path)}
            proc = self._spawn(p_try)
            self.starts += 1
            reason = self._wait_ready(proc, p_try, self.ready_timeout)
            if reason is None:
                self.proc = proc
                self.port = p_try
                return self
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            self.last_returncode = proc.returncode
            new_output = self._output_since(offsets).lower()
            if "address already in use" in new_output or "errno: 98" in new_output \
                    or "eaddrinuse" in new_output:
                time.sleep(0.5)
                continue  # port busy: try again / try another port
            break
        pytest.fail(f"{reason}\ncommand: {self.binary} serve --data-dir {self.data_dir} "
                    f"--host {HOST} --port <port>\n{self.log_tail()}", pytrace=False)

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """Graceful stop (SIGTERM), SIGKILL after `timeout`. Returns the exit code."""
        proc = self.proc
        if proc is None:
            return self.last_returncode
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.last_returncode = proc.returncode
        self.proc = None
        return self.last_returncode

    def kill9(self) -> Optional[int]:
        proc = self.proc
        if proc is None:
            return self.last_returncode
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        self.last_returncode = proc.returncode
        self.proc = None
        return self.last_returncode

    def restart(self, hard: bool = False):
        if hard:
            self.kill9()
        else:
            self.stop()
        return self.start()

    def dispose(self):
        try:
            self.stop(timeout=5)
        finally:
            with _ALL_LOCK:
                if self in _ALL_SERVERS:
                    _ALL_SERVERS.remove(self)


# ---------------------------------------------------------------------------------------------
# HTTP client helpers
# ---------------------------------------------------------------------------------------------
def add_query(url: str, **params) -> str:
    parts = urllib.parse.urlsplit(url)
    extra = urllib.parse.urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def path_of(url: str) -> str:
    """Path + query of an absolute or relative URL (to re-base it onto a restarted server)."""
    parts = urllib.parse.urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def parse_range(value: Optional[str]) -> tuple[int, int]:
    assert value is not None, "missing Range header"
    m = re.fullmatch(r"\s*(?:bytes=)?(\d+)-(\d+)\s*", value)
    assert m, f"Range header {value!r} is not of the form 0-<end>"
    return int(m.group(1)), int(m.group(2))


def error_codes(resp: requests.Response) -> list[str]:
    try:
        body = resp.json()
    except ValueError:
        return []
    if not isinstance(body, dict) or not isinstance(body.get("errors"), list):
        return []
    return [e.get("code") for e in body["errors"] if isinstance(e, dict)]


def describe(resp) -> str:
    try:
        req = resp.request
        what = f"{req.method} {req.url}"
    except Exception:
        what = "request"
    return f"{what} -> {resp.status_code} {resp.headers.get('Content-Type', '')} {resp.text[:600]!r}"


def assert_oci_error(resp: requests.Response, status, codes=None):
    """Status is exactly `status` (or one of them); body is the spec's error envelope with one of
    `codes` (HEAD responses carry no body, so only the status is checked there)."""
    statuses = (status,) if isinstance(status, int) else tuple(status)
    assert resp.status_code in statuses, f"expected {statuses}, got: {describe(resp)}"
    if resp.request is not None and resp.request.method == "HEAD":
        return
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {describe(resp)}")
    assert isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"], \
        f"error body is not {{'errors': [...]}}: {describe(resp)}"
    for e in body["errors"]:
        assert isinstance(e, dict) and isinstance(e.get("code"), str), f"bad error entry {e!r}"
        assert re.fullmatch(r"[A-Z_]+", e["code"]), f"error code {e['code']!r} is not upper snake case"
        if "message" in e:
            assert isinstance(e["message"], str)
    if codes is not None:
        codes = {codes} if isinstance(codes, str) else set(codes)
        got = {e["code"] for e in body["errors"]}
        assert got & codes, f"expected error code in {sorted(codes)}, got {sorted(got)}: {describe(resp)}"


def assert_not_5xx(resp):
    assert resp.status_code < 500, f"server error: {describe(resp)}"


@dataclass
class Image:
    repo: str
    manifest: bytes
    digest: str
    media_type: str
    blobs: dict = field(default_factory=dict)  # digest -> bytes
    tag: Optional[str] = None
    config_digest: str = ""

    @property
    def size(self) -> int:
        return len(self.manifest)

    def descriptor(self, **extra) -> dict:
        d = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        d.update(extra)
        return d


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    d = {"mediaType": media_type, "digest": sha256(data), "size": len(data)}
    d.update(extra)
    return d


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def make_manifest(config: dict, layers: list, media_type: Optional[str] = OCI_MANIFEST,
                  **extra) -> bytes:
    m = {"schemaVersion": 2}
    if media_type is not None:
        m["mediaType"] = media_type
    m.update(extra.pop("head", {}))
    m["config"] = config
    m["layers"] = layers
    m.update(extra)
    return dumps(m)


def make_index(manifests: list, media_type: Optional[str] = OCI_INDEX, **extra) -> bytes:
    m = {"schemaVersion": 2}
    if media_type is not None:
        m["mediaType"] = media_type
    m["manifests"] = manifests
    m.update(extra)
    return dumps(m)


def random_config(media_type=OCI_CONFIG) -> bytes:
    return dumps({"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": []},
                  "config": {}, "comment": f"berth-it {uuid.uuid4()}"})


class Client:
    """requests wrapper bound to a BerthServer (follows it across restarts/port changes)."""

    def __init__(self, server: BerthServer, timeout: float = 60.0):
        self.server = server
        self.session = requests.Session()
        # Requests carry the root key's registry token unless the session has its own auth or this is off.
        self.auto_auth = True
        self.timeout = timeout
        self.server_errors: list[str] = []

    # -- raw -----------------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return self.server.url

    def abs(self, path_or_url: str) -> str:
        if path_or_url.startswith("http://") or path_or_url.startswith("https://"):
            return path_or_url
        return urllib.parse.urljoin(self.base + "/", path_or_url)

    def request(self, method: str, path_or_url: str, **kw) -> requests.Response:
        kw.setdefault("timeout", self.timeout)
        anonymous = kw.pop("anonymous", False)
        headers = dict(kw.pop("headers", None) or {})
        if (self.auto_auth and not anonymous and self.session.auth is None
                and not any(k.lower() == "authorization" for k in headers)):
            headers["Authorization"] = self.server.basic_auth_header()
        kw["headers"] = headers
        kw.setdefault("allow_redirects", False)
        r = self.session.request(method, self.abs(path_or_url), **kw)
        if r.status_code >= 500:
            self.server_errors.append(describe(r))
        return r

    def get(self, p, **kw):
        return self.request("GET", p, **kw)

    def head(self, p, **kw):
        return self.request("HEAD", p, **kw)

    def put(self, p, **kw):
        return self.request("PUT", p, **kw)

    def post(self, p, **kw):
        return self.request("POST", p, **kw)

    def patch(self, p, **kw):
        return self.request("PATCH", p, **kw)

    def delete(self, p, **kw):
        return self.request("DELETE", p, **kw)

    def location(self, resp: requests.Response) -> str:
        loc = resp.headers.get("Location")
        assert loc, f"response has no Location header: {describe(resp)}"
        return self.abs(loc)

    # -- blobs -----------------------------------------------------------------------------------
    def start_upload(self, repo: str, **params) -> str:
        url = f"/v2/{repo}/blobs/uploads/"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        r = self.post(url, headers={"Content-Length": "0"})
        assert r.status_code == 202, f"POST upload: {describe(r)}"
        return self.location(r)

    def push_blob(self, repo: str, data: bytes, method: str = "post_put", chunk: int = 1 << 20) -> str:
        digest = sha256(data)
        octet = {"Content-Type": "application/octet-stream"}
        if method == "single":
            r = self.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data, headers=octet)
            assert r.status_code == 201, f"single POST upload: {describe(r)}"
        elif method == "post_put":
            loc = self.start_upload(repo)
            r = self.put(add_query(loc, digest=digest), data=data, headers=octet)
            assert r.status_code == 201, f"PUT upload: {describe(r)}"
        elif method == "chunked":
            loc = self.start_upload(repo)
            off = 0
            while off < len(data):
                part = data[off:off + chunk]
                r = self.patch(loc, data=part, headers={**octet, "Content-Range": f"{off}-{off + len(part) - 1}"})
                assert r.status_code == 202, f"PATCH chunk at {off}: {describe(r)}"
                loc = self.location(r)
                off += len(part)
            r = self.put(add_query(loc, digest=digest))
            assert r.status_code == 201, f"closing PUT: {describe(r)}"
        else:
            raise ValueError(method)
        assert r.headers.get("Location"), f"blob upload 201 without Location: {describe(r)}"
        return digest

    def blob_ok(self, repo: str, digest: str, data: bytes):
        r = self.get(f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 200, f"GET blob: {describe(r)}"
        assert sha256(r.content) == digest, "blob content does not match its digest"
        assert r.content == data
        return r

    # -- manifests ---------------------------------------------------------------------------------
    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: Optional[str] = OCI_MANIFEST,
                     **kw) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if media_type is not None:
            headers["Content-Type"] = media_type
        return self.put(f"/v2/{repo}/manifests/{ref}", data=body, headers=headers, **kw)

    def get_manifest(self, repo: str, ref: str, accept: str = ALL_MANIFEST_TYPES, method="GET"):
        return self.request(method, f"/v2/{repo}/manifests/{ref}", headers={"Accept": accept})

    def push_image(self, repo: str, tag: Optional[str] = None, n_layers: int = 1,
                   layer_size: int = 1024, media_type: str = OCI_MANIFEST,
                   config_media_type: Optional[str] = None, layer_media_type: Optional[str] = None,
                   by_digest: bool = False, **manifest_extra) -> Image:
        docker = media_type == DOCKER_MANIFEST
        cfg_mt = config_media_type or (DOCKER_CONFIG if docker else OCI_CONFIG)
        lay_mt = layer_media_type or (DOCKER_LAYER if docker else OCI_LAYER)
        blobs = {}
        config = random_config()
        blobs[self.push_blob(repo, config)] = config
        layers = []
        for _ in range(n_layers):
            data = os.urandom(layer_size)
            blobs[self.push_blob(repo, data)] = data
            layers.append(descriptor(lay_mt, data))
        body = make_manifest(descriptor(cfg_mt, config), layers, media_type=media_type, **manifest_extra)
        digest = sha256(body)
        ref = digest if by_digest or tag is None else tag
        r = self.put_manifest(repo, ref, body, media_type)
        assert r.status_code == 201, f"PUT manifest: {describe(r)}"
        assert r.headers.get("Location"), f"manifest 201 without Location: {describe(r)}"
        got = r.headers.get("Docker-Content-Digest")
        assert got in (None, digest), f"Docker-Content-Digest {got} != {digest}"
        return Image(repo=repo, manifest=body, digest=digest, media_type=media_type, blobs=blobs,
                     tag=tag, config_digest=sha256(config))

    def tags(self, repo: str) -> list:
        r = self.get(f"/v2/{repo}/tags/list")
        assert r.status_code == 200, describe(r)
        return r.json().get("tags") or []


# ---------------------------------------------------------------------------------------------
# raw HTTP (no URL normalisation, exact bytes)
# ---------------------------------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: dict
    body: bytes
    method: str
    path: str

    def json(self):
        return json.loads(self.body)

    def __str__(self):
        return f"{self.method} {self.path} -> {self.status} {self.body[:400]!r}"


def raw_request(server: BerthServer, method: str, path: str, headers: Optional[dict] = None,
                body: bytes = b"", timeout: float = 30.0) -> RawResponse:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=timeout)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        hdrs = {"Content-Length": str(len(body))} if (body or method in ("PUT", "POST", "PATCH")) else {}
        hdrs["Authorization"] = server.basic_auth_header()
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body or None)
        resp = conn.getresponse()
        data = resp.read() if method != "HEAD" else b""
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, method, path)
    finally:
        conn.close()


def raw_error_codes(resp: RawResponse) -> list:
    try:
        body = resp.json()
        return [e.get("code") for e in body.get("errors", [])]
    except Exception:
        return []


def open_partial_request(server: BerthServer, method: str, path: str, headers: dict,
                         first_bytes: bytes) -> socket.socket:
    """Send a request's head and only the first part of its body; return the open socket."""
    s = socket.create_connection((HOST, server.port), timeout=30)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {server.hostport}"]
    headers = {"Authorization": server.basic_auth_header(), **headers}
    lines += [f"{k}: {v}" for k, v in headers.items()]
    s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + first_bytes)
    return s
