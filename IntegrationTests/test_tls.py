"""HTTPS: `berth admin tls-init`, then `berth serve` with its files, used by real clients that VERIFY
the chain against the CA tls-init made (never --tls-verify=false / --no-verify-ssl / verify=False):
skopeo (--cert-dir), the aws CLI (--ca-bundle), oras-py (tls_verify=<CA file>, its --ca-file), boto3
(verify=<CA file>), curl (--cacert, HTTP/2 by ALPN). Then certificate rotation: new files picked up on
SIGHUP and on change, under a loop of requests that must all succeed, with bad files refused.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

import berth_helpers as bh
from berth_helpers import HOST, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, sha256, unique

SKOPEO = os.environ.get("SKOPEO", "/usr/bin/skopeo")
AWS_CLI = os.environ.get("AWS_CLI", "aws")


def tls_init(berth_bin, out: Path, *hosts: str) -> subprocess.CompletedProcess:
    cmd = [str(berth_bin), "admin", "tls-init", "--out", str(out)]
    if hosts:
        cmd += ["--host", *hosts]
    p = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode(errors='replace')}"
    return p


class TLSServer(bh.BerthServer):
    """A `berth serve` on HTTPS with the files of `berth admin tls-init --out <tls_dir>`."""

    def __init__(self, binary, base: Path):
        self.tls_dir = base / "tls"
        tls_init(binary, self.tls_dir, "registry.berth.test")
        self.ca = str(self.tls_dir / "ca.crt")
        self.scheme = "https"
        self.verify = self.ca
        super().__init__(binary, data_dir=base / "data", log_dir=base / "logs", extra_args=[
            "--tls-certificate-file", str(self.tls_dir / "server.crt"),
            "--tls-key-file", str(self.tls_dir / "server.key")])

    def boto3(self, service="ecr", verify=None):
        import boto3
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
                            verify=self.ca if verify is None else verify)

    def token(self) -> str:
        if self._token is None:
            data = self.boto3().get_authorization_token()["authorizationData"][0]["authorizationToken"]
            self._token = base64.b64decode(data).decode().partition(":")[2]
        return self._token

    def peer_certificate(self) -> bytes:
        """The DER certificate a NEW verified connection is given."""
        ctx = ssl.create_default_context(cafile=self.ca)
        with socket.create_connection((HOST, self.port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                return s.getpeercert(binary_form=True)

    def file_certificate(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert((self.tls_dir / "server.crt").read_text())

    def rotate(self):
        """A new server certificate from the same CA (what `tls-init` does when the CA is there)."""
        tls_init(self.binary, self.tls_dir, "registry.berth.test")


@pytest.fixture(scope="module")
def tls_server(berth_bin, tmp_path_factory):
    srv = TLSServer(berth_bin, tmp_path_factory.mktemp("berth-tls"))
    srv.start()
    try:
        yield srv
    finally:
        srv.dispose()


@pytest.fixture
def tls_fresh(berth_bin, tmp_path):
    srv = TLSServer(berth_bin, tmp_path / "berth")
    srv.start()
    try:
        yield srv
    finally:
        srv.dispose()


def curl(*args, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    if check:
        assert p.returncode == 0, f"curl {' '.join(args)} exited {p.returncode}: {p.stderr.decode(errors='replace')}"
    return p


def client(srv: TLSServer) -> bh.Client:
    """The suite's registry client, on HTTPS, verifying against the CA."""
    c = bh.Client(srv)
    c.session.verify = srv.ca
    c.session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would win over session.verify
    return c


# =============================================================================================
# tls-init and the settings
# =============================================================================================
def test_tls_init_writes_safe_files_and_says_how_to_trust_them(berth_bin, tmp_path):
    out = tmp_path / "tls"
    p = tls_init(berth_bin, out, "registry.example.test", "192.0.2.7")
    text = p.stdout.decode()
    for needle in ["--cert-dir", "--ca-bundle", "/etc/docker/certs.d/registry.example.test:5000/ca.crt",
                   "/etc/containers/certs.d/", "--ca-file", "verify=", "BERTH_TLS_CERTIFICATE_FILE",
                   "--tls-key-file"]:
        assert needle in text, f"{needle!r} not in tls-init's instructions:\n{text}"
    assert (out / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (out / "server.key").stat().st_mode & 0o777 == 0o600
    assert sorted(os.listdir(out / "trust")) == ["ca.crt"]
    # openssl agrees: the chain verifies for the purpose sslserver, with the names asked for
    v = subprocess.run(["openssl", "verify", "-CAfile", str(out / "ca.crt"), "-purpose", "sslserver",
                        str(out / "server.crt")], capture_output=True, text=True)
    assert v.returncode == 0 and "OK" in v.stdout, v.stdout + v.stderr
    t = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(out / "server.crt")],
                       capture_output=True, text=True).stdout
    for name in ["DNS:registry.example.test", "DNS:localhost", "IP Address:192.0.2.7", "IP Address:127.0.0.1"]:
        assert name in t, t


def test_serve_refuses_bad_tls_settings_with_a_clear_error(berth_bin, tmp_path):
    tls_init(berth_bin, tmp_path / "tls")
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env["BERTH_DATA_DIR"] = str(tmp_path / "data")
    base = [str(berth_bin), "serve", "--port", str(bh.free_port())]
    p = subprocess.run(base + ["--tls-certificate-file", str(tmp_path / "tls" / "server.crt")],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 2 and "tlsCertificateFile and tlsKeyFile must be given together" in p.stderr, p.stderr
    p = subprocess.run(base + ["--tls-certificate-file", str(tmp_path / "tls" / "server.crt"),
                               "--tls-key-file", str(tmp_path / "tls" / "ca.key")],
                       capture_output=True, text=True, timeout=30, env=env)
    assert p.returncode == 2 and "does not belong to the first certificate" in p.stderr, p.stderr


# =============================================================================================
# clients verifying the chain
# =============================================================================================
def test_boto3_verifies_the_chain_and_urls_are_https(tls_server):
    ecr = tls_server.boto3()
    name = unique("tls")
    repo = ecr.create_repository(repositoryName=name)["repository"]
    assert repo["repositoryUri"] == f"{HOST}:{tls_server.port}/{name}"
    auth = ecr.get_authorization_token()["authorizationData"][0]
    assert auth["proxyEndpoint"] == f"https://{HOST}:{tls_server.port}"
    # Without the CA, boto3's default trust store refuses the server: verification is really on.
    import botocore.exceptions
    with pytest.raises(botocore.exceptions.SSLError):
        tls_server.boto3(verify=True).describe_repositories()

    # A presigned layer URL is https and works with the CA.
    c = client(tls_server)
    img = c.push_image(name, "v1", layer_size=4096)
    digest = json.loads(img.manifest)["layers"][0]["digest"]
    url = ecr.get_download_url_for_layer(repositoryName=name, layerDigest=digest)["downloadUrl"]
    assert url.startswith(f"https://{HOST}:{tls_server.port}/"), url
    r = requests.get(url, verify=tls_server.ca)
    assert r.status_code == 200 and sha256(r.content) == digest

    # The token challenge points at the https realm.
    r = requests.get(f"{tls_server.url}/v2/", verify=tls_server.ca)
    assert r.status_code == 401
    assert f'realm="https://{HOST}:{tls_server.port}/' in r.headers["WWW-Authenticate"], r.headers


def test_aws_cli_with_ca_bundle(tls_server, tmp_path):
    aws = shutil.which(AWS_CLI)
    if not aws:
        pytest.fail("the aws CLI is not installed (pip install awscli); client tests are never skipped", pytrace=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID, "AWS_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
                "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1", "AWS_PAGER": ""})
    name = unique("cli")

    def run(*args, ca=True):
        cmd = [aws, "ecr", *args, "--endpoint-url", tls_server.url, "--region", "us-east-1", "--output", "json"]
        if ca:
            cmd += ["--ca-bundle", tls_server.ca]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)

    p = run("create-repository", "--repository-name", name)
    assert p.returncode == 0, p.stderr
    p = run("describe-repositories", "--repository-names", name)
    assert p.returncode == 0 and json.loads(p.stdout)["repositories"][0]["repositoryName"] == name, p.stderr
    p = run("get-login-password")
    assert p.returncode == 0 and len(p.stdout.strip()) > 20, p.stderr
    p = run("describe-repositories", ca=False)
    assert p.returncode != 0 and "SSL" in p.stderr and "CERTIFICATE_VERIFY_FAILED" in p.stderr, p.stderr


def test_skopeo_push_and_pull_with_cert_dir(tls_server, fixtures_dir, tmp_path):
    skopeo = shutil.which(SKOPEO) or pytest.fail(f"skopeo not found at {SKOPEO}", pytrace=False)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"), "TMPDIR": str(tmp_path)}
    (tmp_path / "auth.json").write_text("{}")
    creds = f"AWS:{tls_server.token()}"
    trust = str(tls_server.tls_dir / "trust")
    layout = fixtures_dir / "images" / "debian-minbase"
    ref = f"docker://{HOST}:{tls_server.port}/{unique('sk')}/debian:bookworm"

    def run(*args):
        return subprocess.run([skopeo, "--policy", str(policy), *args], capture_output=True, text=True,
                              timeout=600, env=env, stdin=subprocess.DEVNULL)

    p = run("copy", "--retry-times", "0", "--dest-cert-dir", trust, "--dest-creds", creds, "--preserve-digests",
            f"oci:{layout}:bookworm", ref)
    assert p.returncode == 0, p.stderr
    p = run("inspect", "--raw", "--cert-dir", trust, "--creds", creds, ref)
    assert p.returncode == 0, p.stderr
    manifest = p.stdout.encode()
    out = tmp_path / "pulled"
    p = run("copy", "--retry-times", "0", "--src-cert-dir", trust, "--src-creds", creds, "--preserve-digests",
            ref, f"oci:{out}:bookworm")
    assert p.returncode == 0, p.stderr
    index = json.loads((out / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    assert sha256(manifest) == digest
    for layer in json.loads(manifest)["layers"]:
        alg, hexd = layer["digest"].split(":")
        data = (out / "blobs" / alg / hexd).read_bytes()
        assert (layout / "blobs" / alg / hexd).read_bytes() == data
    # Without the CA, skopeo refuses the server's certificate.
    p = run("inspect", "--raw", "--creds", creds, ref)
    assert p.returncode != 0 and "x509" in p.stderr, p.stderr


def test_oras_push_and_pull_verifying_the_ca(tls_server, tmp_path):
    try:
        import oras.provider
    except ImportError as e:
        pytest.fail(f"oras-py is not installed ({e}): pip install oras", pytrace=False)

    class NoRetryRegistry(oras.provider.Registry):
        def do_request(self, *args, **kwargs):
            return oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)

    reg = NoRetryRegistry(hostname=f"{HOST}:{tls_server.port}", insecure=False, tls_verify=tls_server.ca,
                          auth_backend="basic")
    reg.auth.set_basic_auth("AWS", tls_server.token())
    src = tmp_path / "src"
    src.mkdir()
    files = {"hello.txt": b"hello over https\n", "data.bin": os.urandom(200 * 1024 + 3)}
    for n, d in files.items():
        (src / n).write_bytes(d)
    target = f"{HOST}:{tls_server.port}/artifacts/{unique()}:v1"
    resp = reg.push(target=target, files=[str(src / "hello.txt"), str(src / "data.bin")],
                    disable_path_validation=True, quiet=True)
    assert resp.status_code == 201, resp.text
    paths = reg.pull(target=target, outdir=str(tmp_path / "out"))
    assert {Path(p).name: Path(p).read_bytes() for p in paths} == files


def test_http2_by_alpn_and_blob_downloads_over_both_versions(tls_server):
    name = unique("h2")
    data = os.urandom(5 * 1024 * 1024 + 17)
    c = client(tls_server)
    digest = c.push_blob(name, data)
    assert c.server_errors == []
    url = f"{tls_server.url}/v2/{name}/blobs/{digest}"
    auth = f"Authorization: {tls_server.basic_auth_header()}"
    for flag, version in [("--http2", "2"), ("--http1.1", "1.1")]:
        p = curl(flag, "--cacert", tls_server.ca, "-H", auth, "-o", "-", "-w", "\n%{http_version} %{http_code}", url)
        body, _, meta = p.stdout.rpartition(b"\n")
        assert meta.decode() == f"{version} 200", meta
        assert sha256(body) == digest, f"blob over HTTP/{version} differs"
        # A range, too.
        p = curl(flag, "--cacert", tls_server.ca, "-H", auth, "-r", "100-1099", "-o", "-", url)
        assert p.stdout == data[100:1100]
    # curl without the CA refuses.
    p = curl("--http2", "-o", "/dev/null", f"{tls_server.url}/healthz", check=False)
    assert p.returncode == 60, p.stderr


def test_plain_http_to_the_tls_port_does_not_hurt_the_server(tls_server):
    with pytest.raises(requests.RequestException):
        requests.get(f"http://{HOST}:{tls_server.port}/healthz", timeout=5)
    assert requests.get(f"{tls_server.url}/healthz", verify=tls_server.ca).status_code == 200


# =============================================================================================
# reload
# =============================================================================================
class Load:
    """Requests in a loop until stopped: half on one keep-alive connection, half on new ones.
    Every failure is kept."""

    def __init__(self, srv: TLSServer):
        self.srv = srv
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.keep_alive_peer = None
        self.threads = [threading.Thread(target=self.keep_alive), threading.Thread(target=self.new_connections)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _check(self, status):
        if status == 200:
            self.ok += 1
        else:
            self.failures.append(f"status {status}")

    def keep_alive(self):
        ctx = ssl.create_default_context(cafile=self.srv.ca)
        conn = http.client.HTTPSConnection(HOST, self.srv.port, context=ctx, timeout=10)
        while not self.stop.is_set():
            try:
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                self._check(r.status)
            except Exception as e:  # noqa: BLE001
                self.failures.append(f"keep-alive: {type(e).__name__}: {e}")
                conn = http.client.HTTPSConnection(HOST, self.srv.port, context=ctx, timeout=10)
        self.keep_alive_peer = conn.sock.getpeercert(binary_form=True) if conn.sock else None
        conn.close()

    def new_connections(self):
        while not self.stop.is_set():
            try:
                r = requests.get(f"{self.srv.url}/healthz", verify=self.srv.ca, timeout=10,
                                 headers={"Connection": "close"})
                self._check(r.status_code)
            except Exception as e:  # noqa: BLE001
                self.failures.append(f"new connection: {type(e).__name__}: {e}")


def test_sighup_rotates_the_certificate_without_failing_a_request(tls_fresh):
    srv = tls_fresh
    old = srv.peer_certificate()
    assert old == srv.file_certificate()
    with Load(srv) as load:
        time.sleep(0.5)
        srv.rotate()
        new = srv.file_certificate()
        assert new != old
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while srv.peer_certificate() != new and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.peer_certificate() == new, "a new connection still gets the old certificate after SIGHUP"
        time.sleep(0.5)
    assert load.failures == [], load.failures[:10]
    assert load.ok > 20, load.ok
    # The keep-alive connection made before the reload kept its certificate and kept working.
    assert load.keep_alive_peer == old
    assert srv.alive()
    assert "TLS certificate reloaded" in srv.log_tail(20000)


def test_changed_files_are_picked_up_without_a_signal(tls_fresh):
    srv = tls_fresh
    old = srv.peer_certificate()
    srv.rotate()
    new = srv.file_certificate()
    deadline = time.monotonic() + 15
    while srv.peer_certificate() != new and time.monotonic() < deadline:
        time.sleep(0.2)
    assert srv.peer_certificate() == new != old


def test_invalid_new_files_keep_the_old_certificate(tls_fresh):
    srv = tls_fresh
    old = srv.peer_certificate()
    cert = srv.tls_dir / "server.crt"
    with Load(srv) as load:
        cert.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert srv.peer_certificate() == old
        # A key that is not the certificate's is refused too (here: the CA's key, a valid key).
        srv.rotate()
        shutil.copyfile(srv.tls_dir / "ca.key", srv.tls_dir / "server.key")
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert srv.peer_certificate() == old
    assert load.failures == [], load.failures[:10]
    assert srv.alive()
    log = srv.log_tail(40000)
    assert "TLS certificate reload failed; still serving the previous certificate" in log
    assert "does not belong to the first certificate" in log


# =============================================================================================
# aws:SecureTransport follows the scheme
# =============================================================================================
def _secure_only_user(url: str, verify) -> "object":
    """A user whose only permission needs aws:SecureTransport; its ECR client."""
    import boto3
    root = dict(endpoint_url=url, region_name="us-east-1", verify=verify)
    iam = boto3.client("iam", aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY, **root)
    name = unique("secure")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="tls-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecr:DescribeRepositories", "Resource": "*",
                       "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.client("ecr", aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], **root)


def test_secure_transport_is_true_over_tls_and_false_over_plain_http(tls_server, fresh_server):
    import botocore.exceptions
    assert "repositories" in _secure_only_user(tls_server.url, tls_server.ca).describe_repositories()
    plain = _secure_only_user(fresh_server.url, None)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        plain.describe_repositories()
    assert e.value.response["Error"]["Code"] == "AccessDeniedException", e.value.response
