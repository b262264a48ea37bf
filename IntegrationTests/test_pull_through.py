"""The pull through cache (issue 15, section 3) on a real `berth serve`, with a real upstream: CNCF
Distribution (`docker-registry`, Debian's package) behind htpasswd (bcrypt) authentication, which
answers with the Bearer-less Basic challenge; Berth reaches it over loopback `http://` (the setting
`pullThroughAllowInsecureUpstreams`).

* Secrets Manager (aws CLI `secretsmanager`): the upstream credentials as `ecr-pullthroughcache/…`.
* Every rule operation with the aws CLI: create (and its errors), describe, validate, update, delete.
* skopeo pulls `<prefix>/library/debian:bookworm` through the cache: the repository is created, the
  image equals the upstream's, and a second pull is served by Berth.
* A tag moved upstream is seen once the tag's time to live has passed.
* Concurrent pulls of a missing blob make one upstream fetch (counted in the upstream's access log).
* With the upstream stopped, cached content is still served.
* An upstream with the Bearer token flow (a small token-auth front before Distribution): skopeo pulls
  through it; when it throttles (429), cached content is served, the upstream is backed off, and content
  never cached gets 429 TOOMANYREQUESTS.

Figures (first pull through the cache vs a direct pull from the upstream, cached pull vs a normal
pull) are printed, never asserted.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

import berth_helpers as bh
from ecr_helpers import ECRSession, running_server

DOCKER_REGISTRY = os.environ.get("DOCKER_REGISTRY", "/usr/bin/docker-registry")
SKOPEO = os.environ.get("SKOPEO", "/usr/bin/skopeo")
USER, PASSWORD = "alice", "s3cret-upstream"
TTL = 2  # seconds: a cached tag is re-checked upstream after this long


class Upstream:
    """A `docker-registry` (Distribution 2.8) with htpasswd auth on a loopback port."""

    def __init__(self, base: Path):
        import bcrypt
        self.base = base
        self.port = bh.free_port()
        (base / "data").mkdir(parents=True, exist_ok=True)
        hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=5)).decode()
        (base / "htpasswd").write_text(f"{USER}:{hashed}\n")
        (base / "config.yml").write_text(f"""version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {base / 'data'}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{self.port}
auth:
  htpasswd:
    realm: upstream
    path: {base / 'htpasswd'}
""")
        self.log = base / "registry.log"
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        out = open(self.log, "ab")
        self.proc = subprocess.Popen([DOCKER_REGISTRY, "serve", str(self.base / "config.yml")], stdout=out, stderr=out,
                                     stdin=subprocess.DEVNULL, preexec_fn=bh._pdeathsig)
        out.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/v2/", timeout=2).status_code == 401:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise AssertionError(f"docker-registry did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def blob_gets(self, repository: str, digest: str) -> int:
        """GETs of a blob the upstream answered (its access log, combined format)."""
        pattern = re.compile(rf'"GET /v2/{re.escape(repository)}/blobs/{re.escape(digest)} HTTP/[0-9.]+" (200|307)')
        return len(pattern.findall(self.log.read_text(errors="replace")))

    def manifest_gets(self, repository: str, reference: str) -> int:
        pattern = re.compile(rf'"GET /v2/{re.escape(repository)}/manifests/{re.escape(reference)} HTTP/[0-9.]+" 200')
        return len(pattern.findall(self.log.read_text(errors="replace")))

    def session(self) -> requests.Session:
        s = requests.Session()
        s.auth = (USER, PASSWORD)
        return s


def skopeo(workdir: Path, *args, check=True) -> subprocess.CompletedProcess:
    policy = workdir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(workdir / "auth.json"), "TMPDIR": str(workdir)}
    (workdir / "auth.json").write_text("{}")
    cmd = [SKOPEO, "--policy", str(policy), *args]
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\n{p.stderr.decode(errors='replace')[-3000:]}")
    return p


def layout_digest(layout: Path) -> str:
    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


@pytest.fixture(scope="module")
def tools():
    for path in (DOCKER_REGISTRY, SKOPEO):
        if not (shutil.which(path) or os.access(path, os.X_OK)):
            pytest.fail(f"{path} not found: apt-get install -y docker-registry skopeo (never skipped)", pytrace=False)
    try:
        import bcrypt  # noqa: F401
    except ImportError:
        pytest.fail("python bcrypt is missing: pip install bcrypt", pytrace=False)


@pytest.fixture(scope="module")
def upstream(tools, tmp_path_factory, fixtures_dir):
    up = Upstream(tmp_path_factory.mktemp("upstream"))
    up.start()
    work = tmp_path_factory.mktemp("seed")
    src = fixtures_dir / "images" / "debian-minbase"
    skopeo(work, "copy", "--retry-times", "0", "--dest-tls-verify=false", "--dest-creds", f"{USER}:{PASSWORD}",
           f"oci:{src}:bookworm", f"docker://127.0.0.1:{up.port}/library/debian:bookworm")
    yield up
    up.stop()


@pytest.fixture(scope="module")
def berth(berth_bin, tmp_path_factory, upstream):
    with running_server(berth_bin, tmp_path_factory.mktemp("berth-ptc"),
                        BERTH_PULL_THROUGH_ALLOW_INSECURE_UPSTREAMS="true",
                        BERTH_PULL_THROUGH_TAG_TTL_SECONDS=str(TTL)) as srv:
        yield srv


class CLISession(ECRSession):
    """The aws CLI with `cli_follow_urlparam = false`: otherwise aws CLI v1 downloads a parameter that
    starts with `http://` (the upstream URL) and sends what it got instead."""

    def cli_env(self) -> dict:
        env = super().cli_env()
        config = self.tmp / "aws-config"
        config.write_text("[default]\ncli_follow_urlparam = false\n")
        env["AWS_CONFIG_FILE"] = str(config)
        return env


@pytest.fixture(scope="module")
def session(berth, tmp_path_factory):
    return CLISession(berth, *berth.root_credentials, tmp=tmp_path_factory.mktemp("aws"))


def secrets_cli(session: ECRSession, *args, check=True) -> subprocess.CompletedProcess:
    cmd = ["aws", "secretsmanager", *args, "--endpoint-url", session.server.url, "--region", session.region,
           "--output", "json"]
    p = subprocess.run(cmd, capture_output=True, env=session.cli_env(), timeout=120, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\n{p.stderr.decode(errors='replace')[-3000:]}")
    return p


def error_of(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0, p.stdout.decode()
    m = re.search(r"\(([A-Za-z]+)\) when calling", p.stderr.decode())
    assert m, p.stderr.decode()
    return m.group(1)


@pytest.fixture(scope="module")
def credential_arn(session, upstream):
    value = json.dumps({"username": USER, "accessToken": PASSWORD})
    out = json.loads(secrets_cli(session, "create-secret", "--name", "ecr-pullthroughcache/upstream",
                                 "--secret-string", value).stdout)
    assert out["Name"] == "ecr-pullthroughcache/upstream"
    got = json.loads(secrets_cli(session, "get-secret-value", "--secret-id", out["ARN"]).stdout)
    assert got["SecretString"] == value and got["VersionStages"] == ["AWSCURRENT"]
    described = json.loads(secrets_cli(session, "describe-secret", "--secret-id", "ecr-pullthroughcache/upstream").stdout)
    assert described["ARN"] == out["ARN"]
    listed = json.loads(secrets_cli(session, "list-secrets").stdout)
    assert out["ARN"] in [s["ARN"] for s in listed["SecretList"]]
    return out["ARN"]


@pytest.fixture(scope="module")
def rule(session, upstream, credential_arn):
    out = session.cli_json("create-pull-through-cache-rule", "--ecr-repository-prefix", "up",
                           "--upstream-registry-url", upstream.url, "--credential-arn", credential_arn)
    assert out["ecrRepositoryPrefix"] == "up" and out["upstreamRegistryUrl"] == upstream.url
    assert out["credentialArn"] == credential_arn and out["upstreamRepositoryPrefix"] == "ROOT"
    return out


def token(berth) -> str:
    return bh.fetch_registry_token(berth.url, *berth.root_credentials)


def test_secrets_manager_errors(session, credential_arn):
    assert error_of(secrets_cli(session, "create-secret", "--name", "ecr-pullthroughcache/upstream", "--secret-string", "x",
                                check=False)) == "ResourceExistsException"
    assert error_of(secrets_cli(session, "get-secret-value", "--secret-id", "nope", check=False)) == "ResourceNotFoundException"
    put = json.loads(secrets_cli(session, "put-secret-value", "--secret-id", credential_arn, "--secret-string",
                                 json.dumps({"username": USER, "accessToken": PASSWORD})).stdout)
    assert put["VersionStages"] == ["AWSCURRENT"]
    # A scratch secret deleted at once is gone.
    secrets_cli(session, "create-secret", "--name", "scratch", "--secret-string", "v")
    secrets_cli(session, "delete-secret", "--secret-id", "scratch", "--force-delete-without-recovery")
    assert error_of(secrets_cli(session, "describe-secret", "--secret-id", "scratch", check=False)) == "ResourceNotFoundException"


def test_rule_operations_with_the_aws_cli(session, rule, upstream, credential_arn):
    rules = session.cli_json("describe-pull-through-cache-rules")["pullThroughCacheRules"]
    assert [r["ecrRepositoryPrefix"] for r in rules] == ["up"]
    one = session.cli_json("describe-pull-through-cache-rules", "--ecr-repository-prefixes", "up")["pullThroughCacheRules"]
    assert one[0]["credentialArn"] == credential_arn and "createdAt" in one[0] and "updatedAt" in one[0]
    valid = session.cli_json("validate-pull-through-cache-rule", "--ecr-repository-prefix", "up")
    assert valid["isValid"] is True, valid
    updated = session.cli_json("update-pull-through-cache-rule", "--ecr-repository-prefix", "up", "--credential-arn", credential_arn)
    assert updated["credentialArn"] == credential_arn and "updatedAt" in updated

    def err(*args):
        return error_of(session.cli(*args, check=False))
    assert err("create-pull-through-cache-rule", "--ecr-repository-prefix", "up", "--upstream-registry-url", upstream.url,
               "--credential-arn", credential_arn) == "PullThroughCacheRuleAlreadyExistsException"
    assert err("create-pull-through-cache-rule", "--ecr-repository-prefix", "Bad_Prefix", "--upstream-registry-url",
               upstream.url) == "InvalidParameterException"
    assert err("create-pull-through-cache-rule", "--ecr-repository-prefix", "hub", "--upstream-registry-url", "quay.io",
               "--upstream-registry", "docker-hub", "--credential-arn", credential_arn) == "UnsupportedUpstreamRegistryException"
    missing = credential_arn.replace("upstream", "missing")
    assert err("create-pull-through-cache-rule", "--ecr-repository-prefix", "other", "--upstream-registry-url", upstream.url,
               "--credential-arn", missing) == "SecretNotFoundException"
    assert err("describe-pull-through-cache-rules", "--ecr-repository-prefixes", "nope") == "PullThroughCacheRuleNotFoundException"
    assert err("validate-pull-through-cache-rule", "--ecr-repository-prefix", "nope") == "PullThroughCacheRuleNotFoundException"
    assert err("delete-pull-through-cache-rule", "--ecr-repository-prefix", "nope") == "PullThroughCacheRuleNotFoundException"
    # A rule with wrong credentials is not valid, and says why.
    wrong = json.loads(secrets_cli(session, "create-secret", "--name", "ecr-pullthroughcache/wrong", "--secret-string",
                                   json.dumps({"username": USER, "accessToken": "wrong"})).stdout)["ARN"]
    session.cli_json("create-pull-through-cache-rule", "--ecr-repository-prefix", "wrong", "--upstream-registry-url",
                     upstream.url, "--credential-arn", wrong)
    invalid = session.cli_json("validate-pull-through-cache-rule", "--ecr-repository-prefix", "wrong")
    assert invalid["isValid"] is False and invalid["failure"]
    deleted = session.cli_json("delete-pull-through-cache-rule", "--ecr-repository-prefix", "wrong")
    assert deleted["ecrRepositoryPrefix"] == "wrong" and deleted["credentialArn"] == wrong


def test_skopeo_pulls_through_the_cache(berth, session, rule, upstream, tmp_path, fixtures_dir):
    tok = token(berth)
    src = fixtures_dir / "images" / "debian-minbase"
    direct = tmp_path / "direct"
    t0 = time.monotonic()
    skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"{USER}:{PASSWORD}",
           f"docker://127.0.0.1:{upstream.port}/library/debian:bookworm", f"oci:{direct}:x")
    t_direct = time.monotonic() - t0

    first = tmp_path / "first"
    t0 = time.monotonic()
    skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{tok}",
           f"docker://{berth.hostport}/up/library/debian:bookworm", f"oci:{first}:x")
    t_first = time.monotonic() - t0
    assert layout_digest(first) == layout_digest(direct)
    repos = session.cli_json("describe-repositories", "--repository-names", "up/library/debian")["repositories"]
    assert repos[0]["repositoryName"] == "up/library/debian"

    cached = tmp_path / "cached"
    t0 = time.monotonic()
    skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{tok}",
           f"docker://{berth.hostport}/up/library/debian:bookworm", f"oci:{cached}:x")
    t_cached = time.monotonic() - t0
    assert layout_digest(cached) == layout_digest(direct)
    images = session.cli_json("describe-images", "--repository-name", "up/library/debian")["imageDetails"]
    assert "bookworm" in [t for i in images for t in i.get("imageTags", [])]

    # A normal repository holding the same image, for comparison.
    skopeo(tmp_path, "copy", "--retry-times", "0", "--dest-tls-verify=false", "--dest-creds", f"AWS:{tok}",
           f"oci:{src}:bookworm", f"docker://{berth.hostport}/plain/debian:bookworm")
    normal = tmp_path / "normal"
    t0 = time.monotonic()
    skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{tok}",
           f"docker://{berth.hostport}/plain/debian:bookworm", f"oci:{normal}:x")
    t_normal = time.monotonic() - t0
    print(f"\nfigures (skopeo copy to an OCI layout, seconds): direct from upstream {t_direct:.3f}, "
          f"first through the cache {t_first:.3f}, cached {t_cached:.3f}, normal Berth pull {t_normal:.3f}")


def push_random_image(upstream: Upstream, repository: str, tag: str, size: int) -> tuple[str, str]:
    """A one-layer image pushed to the upstream with its API; returns (manifest digest, layer digest)."""
    s = upstream.session()
    layer = os.urandom(size)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    for data in (layer, config):
        r = s.post(f"{upstream.url}/v2/{repository}/blobs/uploads/?digest={bh.sha256(data)}", data=data,
                   headers={"Content-Type": "application/octet-stream"})
        if r.status_code == 202:  # no monolithic upload: finish with a PUT
            loc = r.headers["Location"]
            loc = loc if loc.startswith("http") else upstream.url + loc
            r = s.put(bh.add_query(loc, digest=bh.sha256(data)), data=data)
        assert r.status_code == 201, r.text
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": bh.OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": bh.sha256(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": bh.sha256(layer), "size": len(layer)}],
    }).encode()
    r = s.put(f"{upstream.url}/v2/{repository}/manifests/{tag}", data=manifest, headers={"Content-Type": bh.OCI_MANIFEST})
    assert r.status_code == 201, r.text
    return bh.sha256(manifest), bh.sha256(layer)


def test_concurrent_pulls_of_a_missing_blob_make_one_upstream_fetch(berth, rule, upstream):
    _, layer = push_random_image(upstream, "team/concurrent", "v1", 8 << 20)
    headers = {"Authorization": f"Basic {base64.b64encode(f'AWS:{token(berth)}'.encode()).decode()}"}
    url = f"{berth.url}/v2/up/team/concurrent/blobs/{layer}"

    def pull(_):
        r = requests.get(url, headers=headers, timeout=120)
        return r.status_code, bh.sha256(r.content)
    with cf.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(pull, range(8)))
    assert results == [(200, layer)] * 8
    assert upstream.blob_gets("team/concurrent", layer) == 1
    # Stored now: more pulls do not reach the upstream.
    assert pull(0) == (200, layer)
    assert upstream.blob_gets("team/concurrent", layer) == 1


def test_tag_moved_upstream_is_seen_after_the_ttl(berth, rule, upstream):
    headers = {"Authorization": f"Basic {base64.b64encode(f'AWS:{token(berth)}'.encode()).decode()}",
               "Accept": bh.OCI_MANIFEST}
    first, _ = push_random_image(upstream, "team/moving", "latest", 1024)
    url = f"{berth.url}/v2/up/team/moving/manifests/latest"
    r = requests.get(url, headers=headers, timeout=60)
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == first
    second, _ = push_random_image(upstream, "team/moving", "latest", 1024)
    time.sleep(TTL + 0.5)
    r = requests.get(url, headers=headers, timeout=60)
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == second


def test_cached_content_is_served_while_the_upstream_is_down(berth, rule, upstream, tmp_path):
    tok = token(berth)
    warm = tmp_path / "warm"
    skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{tok}",
           f"docker://{berth.hostport}/up/library/debian:bookworm", f"oci:{warm}:x")
    upstream.stop()
    try:
        time.sleep(TTL + 0.5)  # the tag is due for a check, and the upstream cannot answer it
        again = tmp_path / "again"
        skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{tok}",
               f"docker://{berth.hostport}/up/library/debian:bookworm", f"oci:{again}:x")
        assert layout_digest(again) == layout_digest(warm)
        # Content never cached cannot be served: a clear 404, not a 5xx or a hang.
        headers = {"Authorization": f"Basic {base64.b64encode(f'AWS:{tok}'.encode()).decode()}"}
        r = requests.get(f"{berth.url}/v2/up/library/never/manifests/latest", headers=headers, timeout=60)
        assert r.status_code == 404, r.text
    finally:
        upstream.start()


def test_importing_needs_batch_import_upstream_image(berth, rule, upstream):
    """Pulling what the cache does not have needs ecr:BatchImportUpstreamImage (and ecr:CreateRepository
    for a new repository); what is cached is served with the pull permissions alone."""
    import boto3
    root_key, root_secret = berth.root_credentials
    iam = boto3.client("iam", endpoint_url=berth.url, region_name="us-east-1", aws_access_key_id=root_key,
                       aws_secret_access_key=root_secret)
    name = bh.unique("puller")
    iam.create_user(UserName=name)
    pull = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}]}
    iam.put_user_policy(UserName=name, PolicyName="pull", PolicyDocument=json.dumps(pull))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    tok = bh.fetch_registry_token(berth.url, key["AccessKeyId"], key["SecretAccessKey"])
    headers = {"Authorization": f"Basic {base64.b64encode(f'AWS:{tok}'.encode()).decode()}", "Accept": bh.OCI_MANIFEST}
    digest, _ = push_random_image(upstream, "team/guarded", "v1", 512)
    url = f"{berth.url}/v2/up/team/guarded/manifests/v1"
    r = requests.get(url, headers=headers, timeout=60)
    assert r.status_code == 403 and "DENIED" in r.text, r.text
    imp = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
        "ecr:BatchImportUpstreamImage", "ecr:CreateRepository"]}]}
    iam.put_user_policy(UserName=name, PolicyName="import", PolicyDocument=json.dumps(imp))
    deadline = time.monotonic() + 30  # identity policies take effect within the authorization cache's lifetime
    while True:
        r = requests.get(url, headers=headers, timeout=60)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 200 and r.headers["Docker-Content-Digest"] == digest, r.text


class TokenFront:
    """A small token-auth front for the upstream, as Docker Hub, GHCR and Quay are: `/v2/` answers 401 with a
    `Bearer realm=…/token` challenge; `/token` hands out a bearer token for Basic credentials; requests with
    a valid token are relayed to the Distribution upstream. `throttle` makes it answer 429 (Retry-After) to
    every registry request, as Docker Hub's rate limit does; `requests` counts what reached it."""

    def __init__(self, upstream: Upstream):
        import http.server
        import secrets as pysecrets
        import threading
        self.upstream = upstream
        self.throttle = False
        self.counts = {"token": 0, "unauthorized": 0, "relayed": 0, "throttled": 0}
        self.tokens = set()
        self.lock = threading.Lock()
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, headers=(), body=b""):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def handle_one(self):
                if self.path.startswith("/token"):
                    auth = self.headers.get("Authorization", "")
                    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                    if auth != expected:
                        return self.reply(401, [("Content-Type", "application/json")], b'{"details":"bad credentials"}')
                    token = pysecrets.token_hex(16)
                    with front.lock:
                        front.tokens.add(token)
                        front.counts["token"] += 1
                    return self.reply(200, [("Content-Type", "application/json")],
                                      json.dumps({"token": token, "access_token": token, "expires_in": 300}).encode())
                bearer = self.headers.get("Authorization", "")
                with front.lock:
                    valid = bearer.startswith("Bearer ") and bearer[7:] in front.tokens
                if not valid:
                    with front.lock:
                        front.counts["unauthorized"] += 1
                    challenge = f'Bearer realm="http://127.0.0.1:{front.port}/token",service="front"'
                    if self.path.startswith("/v2/") and "/manifests/" in self.path or "/blobs/" in self.path:
                        name = self.path[4:].split("/manifests/")[0].split("/blobs/")[0]
                        challenge += f',scope="repository:{name}:pull"'
                    return self.reply(401, [("WWW-Authenticate", challenge), ("Content-Type", "application/json")],
                                      b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
                if front.throttle:
                    with front.lock:
                        front.counts["throttled"] += 1
                    return self.reply(429, [("Retry-After", "60"), ("Content-Type", "application/json")],
                                      b'{"errors":[{"code":"TOOMANYREQUESTS","message":"rate limited"}]}')
                with front.lock:
                    front.counts["relayed"] += 1
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
                r = requests.request(self.command, front.upstream.url + self.path, headers=headers,
                                     auth=(USER, PASSWORD), timeout=120, allow_redirects=True)
                keep = [(k, v) for k, v in r.headers.items()
                        if k.lower() in ("content-type", "docker-content-digest", "content-range", "accept-ranges")]
                if self.command == "HEAD":
                    self.send_response(r.status_code)
                    for k, v in keep:
                        self.send_header(k, v)
                    self.send_header("Content-Length", r.headers.get("Content-Length", "0"))
                    self.end_headers()
                    return
                self.reply(r.status_code, keep, r.content)

            def do_GET(self):
                self.handle_one()

            def do_HEAD(self):
                self.handle_one()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def token_front(upstream):
    front = TokenFront(upstream)
    yield front
    front.stop()


def test_token_auth_upstream_and_throttling(berth, session, credential_arn, token_front, upstream, tmp_path):
    """An upstream with the Bearer token flow (a challenge naming a realm, Basic credentials for a token, the
    token on every request): skopeo pulls through it. Then the upstream throttles (429 + Retry-After): cached
    content is still served, the upstream is backed off instead of asked on every pull, and content never
    cached gets 429 TOOMANYREQUESTS from Berth (not a 5xx, not a hang)."""
    out = session.cli_json("create-pull-through-cache-rule", "--ecr-repository-prefix", "tok",
                           "--upstream-registry-url", token_front.url, "--credential-arn", credential_arn)
    assert out["upstreamRegistryUrl"] == token_front.url
    tok = token(berth)
    first = tmp_path / "first"
    skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{tok}",
           f"docker://{berth.hostport}/tok/library/debian:bookworm", f"oci:{first}:x")
    direct = tmp_path / "direct"
    skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"{USER}:{PASSWORD}",
           f"docker://127.0.0.1:{upstream.port}/library/debian:bookworm", f"oci:{direct}:x")
    assert layout_digest(first) == layout_digest(direct)
    assert token_front.counts["token"] >= 1 and token_front.counts["relayed"] >= 3, token_front.counts

    token_front.throttle = True
    try:
        time.sleep(TTL + 0.5)  # the tag is due for a check upstream, which now answers 429
        again = tmp_path / "again"
        skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{tok}",
               f"docker://{berth.hostport}/tok/library/debian:bookworm", f"oci:{again}:x")
        assert layout_digest(again) == layout_digest(first)
        asked = token_front.counts["throttled"]
        assert asked >= 1, token_front.counts
        # Backed off: more pulls of cached content do not ask the throttling upstream again.
        time.sleep(TTL + 0.5)
        third = tmp_path / "third"
        skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{tok}",
               f"docker://{berth.hostport}/tok/library/debian:bookworm", f"oci:{third}:x")
        assert layout_digest(third) == layout_digest(first)
        assert token_front.counts["throttled"] == asked, token_front.counts
        headers = {"Authorization": f"Basic {base64.b64encode(f'AWS:{tok}'.encode()).decode()}", "Accept": bh.OCI_MANIFEST}
        r = requests.get(f"{berth.url}/v2/tok/library/never/manifests/latest", headers=headers, timeout=60)
        assert r.status_code == 429 and "TOOMANYREQUESTS" in r.text, r.text
    finally:
        token_front.throttle = False


def test_another_berth_as_the_upstream(berth, session, berth_bin, tmp_path):
    """A second Berth is the upstream: its Basic challenge is answered with `AWS:<registry token>` from the
    rule's secret; manifest and blobs come through byte for byte, into a repository the pull created."""
    with running_server(berth_bin, tmp_path / "upstream-berth") as up:
        up._token = token(up)
        img = bh.Client(up).push_image("team/app", tag="v1", layer_size=3000)
        value = json.dumps({"username": "AWS", "accessToken": up._token})
        arn = json.loads(secrets_cli(session, "create-secret", "--name", "ecr-pullthroughcache/berth-upstream",
                                     "--secret-string", value).stdout)["ARN"]
        out = session.cli_json("create-pull-through-cache-rule", "--ecr-repository-prefix", "berthup",
                               "--upstream-registry-url", up.url, "--credential-arn", arn)
        assert out["upstreamRegistryUrl"] == up.url
        headers = {"Authorization": f"Basic {base64.b64encode(f'AWS:{token(berth)}'.encode()).decode()}",
                   "Accept": bh.OCI_MANIFEST}
        r = requests.get(f"{berth.url}/v2/berthup/team/app/manifests/v1", headers=headers, timeout=60)
        assert r.status_code == 200 and r.content == img.manifest, r.text
        assert r.headers["Docker-Content-Digest"] == img.digest
        for digest, data in img.blobs.items():
            b = requests.get(f"{berth.url}/v2/berthup/team/app/blobs/{digest}", headers=headers, timeout=60)
            assert b.status_code == 200 and b.content == data, (digest, b.status_code)
        repos = session.cli_json("describe-repositories", "--repository-names", "berthup/team/app")["repositories"]
        assert repos[0]["repositoryName"] == "berthup/team/app"
        session.cli_json("delete-pull-through-cache-rule", "--ecr-repository-prefix", "berthup")
