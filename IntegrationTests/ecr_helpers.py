"""Helpers and fixtures for the ECR control-plane integration tests (test_ecr_api.py, test_ecr_auth.py).

The tests drive a real `berth serve` with the real AWS clients: boto3, the `aws` CLI (1.x) and
skopeo. Shapes, error names and limits come from botocore's ECR model
(`data/ecr/2015-09-21/service-2.json`), never from the server.

* `ECRServer`    a `berth_helpers.BerthServer` started with extra environment variables
                 (`BERTH_ACCOUNT_ID`, `BERTH_REGION`, `BERTH_ROOT_ACCESS_KEY_ID`,
                 `BERTH_ROOT_SECRET_ACCESS_KEY`); otherwise identical (free port, temp data dir,
                 /healthz readiness, stopped at the end of the run whatever happens).
* `ECRSession`   boto3 clients (`.client` validates parameters like any SDK user, `.raw` does not, to
                 let bad input reach the server), the CLI (`.cli(...)`), SigV4-signed raw requests
                 (`.signed(...)`) and `/v2/` clients carrying an `AWS:<token>` Basic credential.
                 Every ECR answer goes through one `Audit`: any 5xx, and any error that lacks
                 `__type` / `message`, has a non-JSON-1.1 content type or a status other than
                 400 for an error the operation models, fails the test that saw it.
* fixtures       `ecr_server` (one per test module), `ecr` (a root `ECRSession` on it, checked after
                 each test), `ecr_fresh` (a server of the test's own), `skopeo_ecr` (skopeo with
                 its own auth file, logged in through `aws ecr get-login-password | skopeo login`).
                 Test modules import them: `from ecr_helpers import ecr, ecr_server, ...`.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import boto3
import botocore.session
import pytest
import requests
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

import berth_helpers as bh
from berth_helpers import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER,
                           OCI_MANIFEST, sha256, unique)

# ---------------------------------------------------------------------------------------------
# the deployment the tests configure
# ---------------------------------------------------------------------------------------------
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ROOT_ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
ROOT_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 characters
assert len(ROOT_SECRET_ACCESS_KEY) == 40

TARGET_PREFIX = "AmazonEC2ContainerRegistry_V20150921"
JSON_11 = "application/x-amz-json-1.1"

AWS_CLI = os.environ.get("AWS_CLI") or shutil.which("aws") or "aws"
SKOPEO = os.environ.get("SKOPEO", "/usr/bin/skopeo")

# Every media type a modern client accepts (BatchGetImage acceptedMediaTypes).
ACCEPT_ALL = [bh.DOCKER_MANIFEST, bh.DOCKER_LIST, bh.OCI_MANIFEST, bh.OCI_INDEX]

UPLOAD_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
MIN_PART = 5 * 1024 * 1024  # LayerPartTooSmallException: "Layer parts must be at least 5 MiB in size."

_MODEL = botocore.session.get_session().get_service_model("ecr")


def modeled_errors(operation: str) -> set:
    """The error shapes botocore's model lists for `operation` (all of them are HTTP 400 on the
    wire except ServerException, which is 500 and must never be seen)."""
    try:
        return {s.name for s in _MODEL.operation_model(operation).error_shapes}
    except Exception:
        return set()


def all_exception_names() -> set:
    return {n for n in _MODEL.shape_names if _MODEL.shape_for(n).metadata.get("exception")}


def repo_arn(name: str, account: str = ACCOUNT_ID, region: str = REGION) -> str:
    return f"arn:aws:ecr:{region}:{account}:repository/{name}"


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def assert_recent(ts, what: str, slack: float = 120.0):
    assert isinstance(ts, dt.datetime), f"{what} is not a timestamp: {ts!r}"
    delta = abs((now_utc() - ts).total_seconds())
    assert delta < slack, f"{what} = {ts.isoformat()} is {delta:.0f}s away from now"


# ---------------------------------------------------------------------------------------------
# the server
# ---------------------------------------------------------------------------------------------
def default_env(account: str = ACCOUNT_ID, region: str = REGION, access_key: str = ROOT_ACCESS_KEY_ID,
                secret_key: str = ROOT_SECRET_ACCESS_KEY) -> dict:
    return {
        "BERTH_ACCOUNT_ID": account,
        "BERTH_REGION": region,
        "BERTH_ROOT_ACCESS_KEY_ID": access_key,
        "BERTH_ROOT_SECRET_ACCESS_KEY": secret_key,
    }


class ECRServer(bh.BerthServer):
    """A BerthServer whose process gets `env` on top of the test process's environment."""

    def __init__(self, binary: Path, base: Path, env: Optional[dict] = None, **kw):
        super().__init__(binary, data_dir=Path(base) / "data", log_dir=Path(base) / "logs", **kw)
        self.env = dict(default_env() if env is None else env)

    @property
    def account_id(self) -> str:
        return self.env.get("BERTH_ACCOUNT_ID", "000000000000")

    @property
    def region(self) -> str:
        return self.env.get("BERTH_REGION", "us-east-1")

    @property
    def root_credentials(self) -> tuple:
        return self.env["BERTH_ROOT_ACCESS_KEY_ID"], self.env["BERTH_ROOT_SECRET_ACCESS_KEY"]

    def process_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
        env.update(self.env)
        return env

    # Same as BerthServer._spawn, plus the environment.
    def _spawn(self, port: int) -> subprocess.Popen:
        cmd = [str(self.binary), "serve", "--data-dir", str(self.data_dir), "--host", bh.HOST,
               "--port", str(port), *self.extra_args]
        shown_env = " ".join(f"{k}={v}" for k, v in sorted(self.env.items()) if "SECRET" not in k)
        banner = (f"\n===== start #{self.starts + 1} at {dt.datetime.now():%H:%M:%S}: "
                  f"{shown_env} {' '.join(cmd)}\n")
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        out.write(banner.encode())
        err.write(banner.encode())
        out.flush()
        err.flush()
        try:
            return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    cwd=str(self.log_dir), env=self.process_env(),
                                    preexec_fn=bh._pdeathsig)
        finally:
            out.close()
            err.close()

    def admin_create_account(self, account_id: str) -> dict:
        """`berth admin create-account ACCOUNT_ID --data-dir DIR` -> its JSON
        {"AccountId", "AccessKeyId", "SecretAccessKey"} (works with the server running or stopped)."""
        cmd = [str(self.binary), "admin", "create-account", account_id, "--data-dir", str(self.data_dir)]
        p = subprocess.run(cmd, capture_output=True, timeout=60, stdin=subprocess.DEVNULL,
                           env=self.process_env(), cwd=str(self.log_dir))
        out = p.stdout.decode(errors="replace")
        assert p.returncode == 0, (f"{' '.join(cmd)} exited {p.returncode}\nstdout: {out[-2000:]}\n"
                                   f"stderr: {p.stderr.decode(errors='replace')[-2000:]}")
        doc = None
        for line in reversed(out.strip().splitlines()):  # the JSON object (tolerate log lines before it)
            line = line.strip()
            if line.startswith("{"):
                try:
                    doc = json.loads(line)
                    break
                except ValueError:
                    pass
        if doc is None:
            try:
                doc = json.loads(out)
            except ValueError:
                raise AssertionError(f"create-account printed no JSON object: {out!r}")
        for k in ("AccountId", "AccessKeyId", "SecretAccessKey"):
            assert isinstance(doc.get(k), str) and doc[k], f"create-account output lacks {k}: {doc}"
        assert doc["AccountId"] == account_id, f"create-account printed {doc['AccountId']!r}"
        return doc


# ---------------------------------------------------------------------------------------------
# checking every answer
# ---------------------------------------------------------------------------------------------
def envelope_problems(status: int, headers, content: bytes, operation: Optional[str], what: str) -> list:
    """What is wrong with one ECR answer (an empty list when nothing is)."""
    problems = []
    ctype = (headers.get("Content-Type") or headers.get("content-type") or "")
    if not ctype.lower().startswith(JSON_11):
        problems.append(f"{what}: Content-Type {ctype!r}, expected {JSON_11}")
    try:
        body = json.loads(content or b"null")
    except ValueError:
        problems.append(f"{what}: body is not JSON: {content[:300]!r}")
        return problems
    if status < 300:
        if not isinstance(body, dict):
            problems.append(f"{what}: success body is not a JSON object: {content[:300]!r}")
        return problems
    if not 400 <= status < 500:
        problems.append(f"{what}: error status {status} (ECR errors are 4xx)")
    if not isinstance(body, dict):
        problems.append(f"{what}: error body is not a JSON object: {content[:300]!r}")
        return problems
    typ = body.get("__type")
    if not isinstance(typ, str) or not typ:
        problems.append(f"{what}: error body has no __type: {content[:300]!r}")
        return problems
    if not isinstance(body.get("message"), str) or not body["message"]:
        problems.append(f"{what}: error body has no 'message': {content[:300]!r}")
    code = typ.rsplit("#", 1)[-1]
    if operation and code in modeled_errors(operation) and status != 400:
        problems.append(f"{what}: modeled error {code} answered with HTTP {status}, expected 400")
    return problems


class Audit:
    """Collects 5xx answers and malformed ECR answers seen during one test."""

    def __init__(self):
        self.server_errors: list = []
        self.problems: list = []

    def record(self, status: int, headers, content: bytes, operation: Optional[str], what: str):
        if status >= 500:
            self.server_errors.append(f"{what} -> {status} {content[:400]!r}")
            return
        self.problems.extend(envelope_problems(status, headers, content, operation, what))

    # botocore event handler: 'after-call.ecr.<Operation>' (emitted before a ClientError is raised)
    def after_call(self, http_response=None, model=None, **kwargs):
        if http_response is None:
            return
        op = getattr(model, "name", None)
        self.record(http_response.status_code, http_response.headers, http_response.content, op,
                    f"{op} (boto3)")

    def failures(self) -> list:
        out = []
        if self.server_errors:
            out.append("server answered 5xx (never allowed):\n  " + "\n  ".join(self.server_errors[:20]))
        if self.problems:
            out.append("malformed ECR answers:\n  " + "\n  ".join(self.problems[:30]))
        return out


def expect_error(fn, codes, **params) -> ClientError:
    """Call a boto3 operation that must fail with one of `codes` (its __type); returns the error."""
    codes = {codes} if isinstance(codes, str) else set(codes)
    with pytest.raises(ClientError) as ei:
        fn(**params)
    e = ei.value
    code = e.response.get("Error", {}).get("Code")
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    assert code in codes, (f"{e.operation_name}: expected {sorted(codes)}, got {code} (HTTP {status}): "
                           f"{e.response.get('Error', {}).get('Message')!r}")
    assert e.response["Error"].get("Message"), f"{code} without a message"
    return e


# ---------------------------------------------------------------------------------------------
# raw, SigV4-signed requests (to get past the SDK's own validation, or to sign wrongly on purpose)
# ---------------------------------------------------------------------------------------------
class ClockedSigV4Auth(SigV4Auth):
    """botocore's SigV4 signer with the signing time given instead of read from the clock."""

    def __init__(self, credentials, service_name, region_name, when: Optional[dt.datetime] = None):
        super().__init__(credentials, service_name, region_name)
        self.when = when

    def add_auth(self, request):
        if self.when is None:
            return super().add_auth(request)
        when = self.when.astimezone(dt.timezone.utc).replace(tzinfo=None)
        request.context["timestamp"] = when.strftime(SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)
        canonical_request = self.canonical_request(request)
        string_to_sign = self.string_to_sign(request, canonical_request)
        signature = self.signature(string_to_sign, request)
        self._inject_signature_to_request(request, signature)


@dataclass
class RawAnswer:
    status: int
    headers: dict
    content: bytes
    what: str

    def json(self):
        return json.loads(self.content)

    def __str__(self):
        return f"{self.what} -> {self.status} {self.headers.get('content-type')} {self.content[:500]!r}"


def assert_ecr_error(ans: RawAnswer, codes, statuses=(400,)) -> dict:
    """A raw answer is an ECR error of one of `codes`, with one of `statuses`."""
    codes = {codes} if isinstance(codes, str) else set(codes)
    statuses = (statuses,) if isinstance(statuses, int) else tuple(statuses)
    assert ans.status in statuses, f"expected HTTP {statuses}, got: {ans}"
    ctype = ans.headers.get("content-type", "")
    assert ctype.lower().startswith(JSON_11), f"error Content-Type {ctype!r}: {ans}"
    try:
        body = ans.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {ans}")
    assert isinstance(body, dict), f"error body is not an object: {ans}"
    typ = body.get("__type")
    assert isinstance(typ, str) and typ, f"no __type: {ans}"
    assert typ.rsplit("#", 1)[-1] in codes, f"expected __type in {sorted(codes)}: {ans}"
    assert isinstance(body.get("message"), str) and body["message"], f"no message: {ans}"
    return body


_BOTO_SESSION = None


def _boto_session():
    """One boto3 Session for the run (its loader caches the model); credentials are per client."""
    global _BOTO_SESSION
    if _BOTO_SESSION is None:
        _BOTO_SESSION = boto3.session.Session(region_name=REGION)
    return _BOTO_SESSION


# ---------------------------------------------------------------------------------------------
# one principal's view of one server
# ---------------------------------------------------------------------------------------------
class ECRSession:
    def __init__(self, server: ECRServer, access_key: str, secret_key: str, region: Optional[str] = None,
                 audit: Optional[Audit] = None, tmp: Optional[Path] = None):
        self.server = server
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region or server.region
        self.audit = audit or Audit()
        self.tmp = Path(tmp) if tmp else Path(server.log_dir)
        self.v2_clients: list = []
        self._client = None
        self._raw = None

    # -- boto3 ---------------------------------------------------------------------------------
    def boto_client(self, validate: bool = True, **config):
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10,
                     read_timeout=120, parameter_validation=validate, **config)
        c = _boto_session().client("ecr", endpoint_url=self.server.url, region_name=self.region,
                                   aws_access_key_id=self.access_key,
                                   aws_secret_access_key=self.secret_key,
                                   aws_session_token=None, config=cfg)
        c.meta.events.register("after-call.ecr", self.audit.after_call)
        return c

    @property
    def client(self):
        """boto3 with client-side parameter validation, like any SDK user."""
        if self._client is None:
            self._client = self.boto_client(validate=True)
        return self._client

    @property
    def raw(self):
        """boto3 without client-side validation: bad input reaches the server."""
        if self._raw is None:
            self._raw = self.boto_client(validate=False)
        return self._raw

    # -- aws CLI ---------------------------------------------------------------------------------
    def cli_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        none = str(self.tmp / "no-such-aws-config")
        env.update({
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": none,
            "AWS_SHARED_CREDENTIALS_FILE": none,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "AWS_PAGER": "",
        })
        return env

    def cli(self, *args, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [AWS_CLI, "ecr", *args, "--endpoint-url", self.server.url, "--region", self.region,
               "--output", "json"]
        p = subprocess.run(cmd, capture_output=True, env=self.cli_env(), timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout: "
                                 f"{p.stdout.decode(errors='replace')[-3000:]}\nstderr: "
                                 f"{p.stderr.decode(errors='replace')[-3000:]}")
        return p

    def cli_json(self, *args) -> dict:
        p = self.cli(*args)
        out = p.stdout.decode().strip()
        return json.loads(out) if out else {}

    # -- raw signed requests ----------------------------------------------------------------------
    def signed(self, operation: Optional[str], body, *, access_key: Optional[str] = None,
               secret_key: Optional[str] = None, region: Optional[str] = None, service: str = "ecr",
               when: Optional[dt.datetime] = None, sign: bool = True, target: Optional[str] = None,
               headers: Optional[dict] = None, send_body: Optional[bytes] = None,
               after_signing: Optional[dict] = None) -> RawAnswer:
        """POST / with X-Amz-Target `<prefix>.<operation>` (or `target` verbatim; None and no target:
        no X-Amz-Target at all), signed with SigV4 unless sign=False. `body` is a dict (JSON-encoded)
        or bytes. `send_body` replaces the body after signing and `after_signing` sets (value None:
        removes) headers after signing, to tamper with a signed request."""
        data = body if isinstance(body, (bytes, bytearray)) else json.dumps(body).encode()
        url = self.server.url + "/"
        hdrs = {"Content-Type": JSON_11}
        if target is not None:
            hdrs["X-Amz-Target"] = target
        elif operation is not None:
            hdrs["X-Amz-Target"] = f"{TARGET_PREFIX}.{operation}"
        hdrs.update(headers or {})
        req = AWSRequest(method="POST", url=url, data=data, headers=hdrs)
        if sign:
            creds = Credentials(access_key or self.access_key, secret_key or self.secret_key)
            ClockedSigV4Auth(creds, service, region or self.region, when).add_auth(req)
        out_headers = dict(req.headers.items())
        for k, v in (after_signing or {}).items():
            for existing in [h for h in out_headers if h.lower() == k.lower()]:
                del out_headers[existing]
            if v is not None:
                out_headers[k] = v
        r = requests.post(url, data=send_body if send_body is not None else data, headers=out_headers,
                          timeout=60, allow_redirects=False)
        what = f"raw {operation or target or '(no target)'}"
        ans = RawAnswer(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content, what)
        if r.status_code >= 500:
            self.audit.server_errors.append(str(ans))
        elif r.status_code >= 300:
            # The envelope is checked for every error, the status against the model when the
            # operation is a real one.
            self.audit.problems.extend(envelope_problems(r.status_code, ans.headers, r.content,
                                                         operation, what))
        return ans

    # -- registry tokens and /v2/ -----------------------------------------------------------------
    def authorization(self) -> dict:
        data = self.client.get_authorization_token()["authorizationData"]
        assert isinstance(data, list) and len(data) >= 1, f"authorizationData: {data!r}"
        return data[0]

    def registry_password(self) -> str:
        token = self.authorization()["authorizationToken"]
        user, _, password = base64.b64decode(token).decode().partition(":")
        assert user == "AWS" and password, f"token does not decode to AWS:<password>: {user!r}"
        return password

    def v2(self, password: Optional[str] = None, user: str = "AWS") -> bh.Client:
        """A berth_helpers.Client on /v2/ with Basic AWS:<token> (5xx are recorded and fail the test)."""
        c = bh.Client(self.server)
        c.session.auth = (user, password if password is not None else self.registry_password())
        self.v2_clients.append(c)
        return c

    def v2_anonymous(self) -> bh.Client:
        c = bh.Client(self.server)
        c.auto_auth = False
        self.v2_clients.append(c)
        return c

    def other(self, access_key: str, secret_key: str) -> "ECRSession":
        """Another principal on the same server, sharing this test's audit."""
        s = ECRSession(self.server, access_key, secret_key, self.region, audit=self.audit, tmp=self.tmp)
        s.v2_clients = self.v2_clients
        return s

    def failures(self) -> list:
        out = self.audit.failures()
        v2 = [e for c in self.v2_clients for e in c.server_errors]
        if v2:
            out.append("/v2/ answered 5xx (never allowed):\n  " + "\n  ".join(v2[:20]))
        return out


def aws_service(session: "ECRSession", service: str, *args) -> dict:
    """`aws SERVICE ARGS… --output json` against the session's server with its credentials -> the parsed output."""
    cmd = [AWS_CLI, service, *args, "--endpoint-url", session.server.url, "--region", session.region, "--output", "json"]
    p = subprocess.run(cmd, capture_output=True, env=session.cli_env(), timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}\n{p.stderr.decode(errors='replace')[-2000:]}"
    out = p.stdout.decode().strip()
    return json.loads(out) if out else {}


def check_after_test(server: ECRServer, sessions: Iterable[ECRSession], expect_alive: bool = True):
    problems = []
    if expect_alive and not server.alive():
        rc = server.proc.returncode if server.proc is not None else server.last_returncode
        problems.append(f"the berth process died during this test (exit code {rc})\n{server.log_tail(4000)}")
    for s in sessions:
        problems.extend(s.failures())
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


# ---------------------------------------------------------------------------------------------
# images through the ECR API (layer-upload operations + PutImage)
# ---------------------------------------------------------------------------------------------
@dataclass
class ApiImage:
    repo: str
    manifest: bytes
    digest: str
    media_type: str
    config: bytes
    config_media_type: str
    layers: list  # list[bytes]
    layer_media_type: str
    tag: Optional[str] = None
    put_response: dict = field(default_factory=dict)

    @property
    def manifest_text(self) -> str:
        return self.manifest.decode()

    @property
    def layer_digests(self) -> list:
        return [sha256(x) for x in self.layers]

    @property
    def config_digest(self) -> str:
        return sha256(self.config)

    @property
    def layers_size(self) -> int:
        return sum(len(x) for x in self.layers)

    def descriptor(self, **extra) -> dict:
        d = {"mediaType": self.media_type, "digest": self.digest, "size": len(self.manifest)}
        d.update(extra)
        return d


def upload_layer(client, repo: str, data: bytes, part_size: Optional[int] = None,
                 registry_id: Optional[str] = None) -> str:
    """InitiateLayerUpload / UploadLayerPart (in order) / CompleteLayerUpload; returns the digest."""
    extra = {"registryId": registry_id} if registry_id else {}
    r = client.initiate_layer_upload(repositoryName=repo, **extra)
    upload_id = r["uploadId"]
    assert UPLOAD_ID_RE.match(upload_id), f"uploadId {upload_id!r} is not a UUID"
    size = part_size or max(len(data), 1)
    off = 0
    while off < len(data):
        part = data[off:off + size]
        last = off + len(part) - 1
        rr = client.upload_layer_part(repositoryName=repo, uploadId=upload_id, partFirstByte=off,
                                      partLastByte=last, layerPartBlob=part, **extra)
        assert rr["lastByteReceived"] == last, f"lastByteReceived {rr.get('lastByteReceived')} != {last}"
        assert rr["uploadId"] == upload_id
        off += len(part)
    digest = sha256(data)
    rr = client.complete_layer_upload(repositoryName=repo, uploadId=upload_id, layerDigests=[digest], **extra)
    assert rr["layerDigest"] == digest, f"CompleteLayerUpload layerDigest {rr.get('layerDigest')} != {digest}"
    assert rr["repositoryName"] == repo
    return digest


def ensure_layer(client, repo: str, data: bytes) -> str:
    """Upload a blob unless BatchCheckLayerAvailability says it is already there."""
    digest = sha256(data)
    r = client.batch_check_layer_availability(repositoryName=repo, layerDigests=[digest])
    if any(l.get("layerDigest") == digest and l.get("layerAvailability") == "AVAILABLE"
           for l in r.get("layers", [])):
        return digest
    return upload_layer(client, repo, data)


def build_image(repo: str, n_layers: int = 1, layer_size: int = 700, media_type: str = OCI_MANIFEST,
                include_media_type: bool = True, **manifest_extra) -> ApiImage:
    docker = media_type == DOCKER_MANIFEST
    cfg_mt = DOCKER_CONFIG if docker else OCI_CONFIG
    lay_mt = DOCKER_LAYER if docker else OCI_LAYER
    config = bh.random_config()
    layers = [os.urandom(layer_size) for _ in range(n_layers)]
    body = bh.make_manifest(bh.descriptor(cfg_mt, config), [bh.descriptor(lay_mt, x) for x in layers],
                            media_type=media_type if include_media_type else None, **manifest_extra)
    return ApiImage(repo=repo, manifest=body, digest=sha256(body), media_type=media_type, config=config,
                    config_media_type=cfg_mt, layers=layers, layer_media_type=lay_mt)


def put_api_image(client, repo: str, tag: Optional[str] = None, n_layers: int = 1, layer_size: int = 700,
                  media_type: str = OCI_MANIFEST, image: Optional[ApiImage] = None, **manifest_extra) -> ApiImage:
    """Upload config + layers with the layer-upload operations, then PutImage (tagged or not)."""
    img = image or build_image(repo, n_layers=n_layers, layer_size=layer_size, media_type=media_type,
                               **manifest_extra)
    ensure_layer(client, repo, img.config)
    for layer in img.layers:
        ensure_layer(client, repo, layer)
    params = {"repositoryName": repo, "imageManifest": img.manifest_text}
    if tag is not None:
        params["imageTag"] = tag
    r = client.put_image(**params)
    got = r["image"]
    assert got["imageId"]["imageDigest"] == img.digest, f"PutImage digest {got['imageId']} != {img.digest}"
    if tag is not None:
        assert got["imageId"].get("imageTag") == tag
    assert got["repositoryName"] == repo
    img.tag = tag
    img.put_response = r
    return img


def create_repo(client, name: Optional[str] = None, **params) -> dict:
    name = name or unique("r")
    return client.create_repository(repositoryName=name, **params)["repository"]


def image_tags(client, repo: str, digest: str) -> set:
    d = client.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])["imageDetails"]
    assert len(d) == 1, d
    return set(d[0].get("imageTags") or [])


def list_all_image_ids(client, repo: str, **params) -> list:
    out = []
    for page in client.get_paginator("list_images").paginate(repositoryName=repo, **params):
        out.extend(page.get("imageIds", []))
    return out


# ---------------------------------------------------------------------------------------------
# OCI layouts on disk + skopeo
# ---------------------------------------------------------------------------------------------
@dataclass
class LayoutImage:
    root: Path
    tag: str
    manifest: bytes
    digest: str
    config: bytes
    layers: list

    @property
    def layers_size(self) -> int:
        return sum(len(x) for x in self.layers)


def write_oci_layout(root: Path, tag: str, n_layers: int = 2, layer_size: int = 3000) -> LayoutImage:
    """A one-image OCI image layout (image-spec image-layout.md) with random layers."""
    root = Path(root)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    config = bh.random_config()
    layers = [os.urandom(layer_size) for _ in range(n_layers)]
    manifest = bh.make_manifest(bh.descriptor(OCI_CONFIG, config),
                                [bh.descriptor(OCI_LAYER, x) for x in layers])
    for data in [config, manifest, *layers]:
        (blobs / hashlib.sha256(data).hexdigest()).write_bytes(data)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    (root / "index.json").write_text(json.dumps(index))
    return LayoutImage(root, tag, manifest, sha256(manifest), config, layers)


class SkopeoECR:
    """skopeo with its own policy and auth file; `login(session)` pipes
    `aws ecr get-login-password` into `skopeo login -u AWS --password-stdin`."""

    def __init__(self, path: str, workdir: Path):
        self.path = path
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.policy = self.workdir / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.auth = self.workdir / "auth.json"
        self.auth.write_text("{}")
        self.env = {**os.environ, "REGISTRY_AUTH_FILE": str(self.auth), "TMPDIR": str(self.workdir)}

    def run(self, *args, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        cmd = [self.path, "--policy", str(self.policy), *args]
        p = subprocess.run(cmd, capture_output=True, env=self.env, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout: "
                                 f"{p.stdout.decode(errors='replace')[-3000:]}\nstderr: "
                                 f"{p.stderr.decode(errors='replace')[-3000:]}")
        return p

    def copy(self, src: str, dst: str, *extra, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("copy", "--retry-times", "0", "--src-tls-verify=false", "--dest-tls-verify=false",
                        *extra, src, dst, check=check)

    def login(self, session: ECRSession):
        """aws ecr get-login-password --endpoint-url URL | skopeo login --tls-verify=false -u AWS
        --password-stdin 127.0.0.1:PORT"""
        aws_cmd = [AWS_CLI, "ecr", "get-login-password", "--endpoint-url", session.server.url,
                   "--region", session.region]
        sk_cmd = [self.path, "login", "--tls-verify=false", "-u", "AWS", "--password-stdin",
                  session.server.hostport]
        p1 = subprocess.Popen(aws_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=session.cli_env(),
                              stdin=subprocess.DEVNULL)
        p2 = subprocess.Popen(sk_cmd, stdin=p1.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=self.env)
        p1.stdout.close()
        out2, err2 = p2.communicate(timeout=120)
        err1 = p1.stderr.read()
        p1.stderr.close()
        rc1 = p1.wait(timeout=60)
        assert rc1 == 0, f"aws ecr get-login-password exited {rc1}: {err1.decode(errors='replace')[-2000:]}"
        assert p2.returncode == 0, (f"skopeo login exited {p2.returncode}\nstdout: {out2.decode(errors='replace')}"
                                    f"\nstderr: {err2.decode(errors='replace')[-2000:]}")

    def logout_all(self):
        self.auth.write_text("{}")


# ---------------------------------------------------------------------------------------------
# fixtures (import them into a test module: `from ecr_helpers import ecr, ecr_server, ...`)
# ---------------------------------------------------------------------------------------------
def make_server(binary: Path, base: Path, env: Optional[dict] = None, **kw) -> ECRServer:
    """An ECRServer, or with BERTH_TEST_TOPOLOGY=two-nodes a two-node deployment shaped like one (two_nodes.py)."""
    import two_nodes
    return two_nodes.make_server(binary, base, env=env, **kw)


@contextlib.contextmanager
def running_server(binary: Path, base: Path, **extra_env):
    """An ECRServer with the default test identity plus `extra_env`, started, and disposed afterwards."""
    srv = make_server(binary, base, env={**default_env(), **extra_env})
    srv.data_dir.mkdir(parents=True, exist_ok=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.dispose()


@pytest.fixture(scope="module")
def ecr_server(berth_bin, tmp_path_factory):
    """One berth per test module, started with BERTH_ACCOUNT_ID=123456789012, BERTH_REGION=us-east-1
    and the root key pair in the environment."""
    with running_server(berth_bin, tmp_path_factory.mktemp("berth-ecr")) as srv:
        yield srv


@pytest.fixture
def ecr(ecr_server, tmp_path):
    """The account root's ECRSession on the module's server; after the test: server alive, no 5xx,
    every ECR answer well-formed."""
    if not ecr_server.alive():
        ecr_server.start()
    s = ECRSession(ecr_server, *ecr_server.root_credentials, tmp=tmp_path)
    yield s
    check_after_test(ecr_server, [s])


@pytest.fixture
def ecr_fresh(berth_bin, tmp_path):
    """A root ECRSession on a berth of the test's own (empty data directory)."""
    srv = make_server(berth_bin, tmp_path / "berth-fresh")
    srv.start()
    s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
    try:
        yield s
        check_after_test(srv, [s])
    finally:
        srv.dispose()


@pytest.fixture(scope="session")
def skopeo_path() -> str:
    path = shutil.which(SKOPEO) or (SKOPEO if os.access(SKOPEO, os.X_OK) else None)
    if not path:
        pytest.fail(f"skopeo not found at {SKOPEO}: install it (apt-get install -y skopeo); "
                    f"client tests are required and never skipped", pytrace=False)
    return path


@pytest.fixture(scope="session")
def aws_cli() -> str:
    path = shutil.which(AWS_CLI) or (AWS_CLI if os.access(AWS_CLI, os.X_OK) else None)
    if not path:
        pytest.fail(f"the aws CLI was not found ({AWS_CLI}): pip install awscli; "
                    f"client tests are required and never skipped", pytrace=False)
    return path


@pytest.fixture
def skopeo_ecr(skopeo_path, aws_cli, tmp_path) -> SkopeoECR:
    return SkopeoECR(skopeo_path, tmp_path / "skopeo")

