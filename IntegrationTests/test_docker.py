"""docker itself against a real `berth serve`: `aws ecr get-login-password | docker login`, `docker push`,
`docker pull`, `docker manifest inspect`, and docker's error text for refused pushes next to the text
Amazon ECR gives docker for the same refusal.

The daemon is Debian's `docker.io` (dockerd 20.10), started per module by `docker_helpers.DockerDaemon`
with temporary directories only, no containers (no iptables, no bridge, vfs), and stopped afterwards:
the module fails when a process, mount or directory of it is left. Images come from local data:
`debian-tiny-vuln:1` of ../shared/fixtures (two layers, one whiteout) through `skopeo copy
oci:... docker-archive:...` + `docker load`, and small single-layer images made by `docker import`.

A missing dockerd/docker (or not being root) FAILS these tests when CI=true and skips them, saying
why, elsewhere; skopeo and the aws CLI are required as in the other client tests.

ECR's texts (the `ECR_*` functions) are quoted from docker output of real ECR pushes in public issues
(sources next to each). Where Berth differs from ECR today, the case is listed in `ECR_PENDING`: the
test then asserts docker's prefix and the facts in the message (or Berth's present behaviour), and emits
an `EcrPending` warning with both texts (shown in pytest's warnings summary). Remove a case from the set
to assert ECR's exact text and behaviour.

Not covered: a multi-arch index push. docker 20.10 cannot push an index it did not pull (`docker
manifest create/push` needs the per-platform manifests in a registry first, and `buildx` is not part
of docker.io); skopeo `--all` covers index pushes in test_clients.py.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import tarfile
import time
import warnings
from pathlib import Path

import pytest

from berth_helpers import unique
from docker_helpers import DOCKER, DOCKERD, DockerDaemon, find_executable, require
from ecr_helpers import (ACCOUNT_ID, AWS_CLI, REGION, ECRSession, _boto_session, check_after_test,
                         running_server)
from ecr_helpers import aws_cli, ecr, ecr_server, skopeo_path  # noqa: F401 (fixtures)

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"


# =============================================================================================
# what Amazon ECR makes docker print
# =============================================================================================
def ECR_TAG_IMMUTABLE(tag: str, repo: str) -> str:
    # aws/containers-roadmap#862 (2020) and GoogleContainerTools/jib logs end the sentence with
    # "because the repository is immutable."; since ECR's per-tag exclusions (2025) it reads "because the
    # tag is immutable." (osscontainertools/kaniko#204, 2025-08). Berth's ECR API (ECRError.swift) already
    # says "the tag is immutable", so that is the text to match.
    return (f"tag invalid: The image tag '{tag}' already exists in the '{repo}' repository and cannot be "
            f"overwritten because the tag is immutable.")


def ECR_DENIED(user_arn: str, action: str, repo_arn: str) -> str:
    # ministryofjustice/cloud-platform#7245 (2025-06), docker push to ECR with an identity lacking
    # ecr:InitiateLayerUpload: "denied: User: arn:aws:sts::…:assumed-role/… is not authorized to perform:
    # ecr:InitiateLayerUpload on resource: arn:aws:ecr:eu-west-2:…:repository/… because no identity-based
    # policy allows the ecr:InitiateLayerUpload action"
    return (f"denied: User: {user_arn} is not authorized to perform: {action} on resource: {repo_arn} "
            f"because no identity-based policy allows the {action} action")


def ECR_NAME_UNKNOWN(repo: str, registry_id: str) -> str:
    # aws-actions/amazon-ecr-login#166, justinram11/serverless-aws-batch#7 (docker push to a repository
    # that was never created): "name unknown: The repository with name 'service-t' does not exist in the
    # registry with id '***'"
    return f"name unknown: The repository with name '{repo}' does not exist in the registry with id '{registry_id}'"


# aws/aws-cli#3042, aws-actions/amazon-ecr-login#431: docker's own message (distribution's
# ErrNoBasicAuthCredentials) when the registry challenges with Basic and docker has no credentials.
ECR_NO_CREDENTIALS = "no basic auth credentials"

# Hack4Eugene/SpeedUpAmerica#294: "Error response from daemon: login attempt to
# https://238241637211.dkr.ecr.us-west-2.amazonaws.com/v2/ failed with status: 401 Unauthorized"
ECR_LOGIN_REFUSED = re.compile(r"^Error response from daemon: login attempt to https?://(?P<host>[^/]+)/v2/ "
                               r"failed with status: 401 Unauthorized$")

# Cases where Berth's text differs from ECR's: the test then asserts docker's prefix and the facts and
# warns; remove a case here to assert ECR's exact text. Empty: tag-immutable, denied and name-unknown
# match ECR's texts and are asserted. (Berth accepts the same image pushed again to an immutable tag,
# where ECR refuses it: a deliberate difference, asserted in test_immutable_tag_refuses_other_content.)
ECR_PENDING: set[str] = set()


class EcrPending(UserWarning):
    pass


def check_ecr_wording(case: str, berth: str, ecr_text: str):
    if case not in ECR_PENDING:
        assert berth == ecr_text, f"docker prints for Berth:\n  {berth}\nfor ECR:\n  {ecr_text}"
        return
    if berth == ecr_text:
        warnings.warn(EcrPending(f"{case}: Berth's text now matches ECR's; remove '{case}' from "
                                 f"ECR_PENDING in test_docker.py"))
    else:
        warnings.warn(EcrPending(f"{case}: docker prints for Berth: {berth!r}; for ECR: {ecr_text!r}"))


# =============================================================================================
# fixtures
# =============================================================================================
@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    dockerd = find_executable(DOCKERD)
    require(dockerd is not None, f"dockerd not found at {DOCKERD} (apt-get install -y docker.io)")
    docker = find_executable(DOCKER)
    require(docker is not None, f"the docker client was not found at {DOCKER} (apt-get install -y docker.io)")
    require(os.geteuid() == 0, "dockerd needs root")
    d = DockerDaemon(dockerd, docker, tmp_path_factory.mktemp("dockerd"))
    try:
        d.start()
        print(f"\ndockerd {d.info.get('ServerVersion')} answered after {d.start_seconds:.2f}s")
        yield d
    finally:
        d.stop()
    left = d.leftovers()
    assert not left, "dockerd left behind:\n  " + "\n  ".join(left)


def log_offsets(server) -> dict:
    return {p: (p.stat().st_size if p.exists() else 0) for p in (server.stdout_path, server.stderr_path)}


def failed_requests(offsets: dict) -> list:
    """Berth's "request failed" log lines (every 5xx answer) written since `offsets`: the requests
    dockerd sends are not seen by the test's own clients, so the server's log is the record."""
    out = []
    for path, off in offsets.items():
        try:
            with open(path, "rb") as f:
                f.seek(off)
                text = f.read().decode(errors="replace")
        except FileNotFoundError:
            continue
        out += [line for line in text.splitlines() if "request failed" in line]
    return out


@pytest.fixture
def docker(daemon, ecr):
    """The module's daemon, logged out, its image store emptied of this test's images afterwards;
    fails the test when Berth answered dockerd with a 5xx."""
    (daemon.client_config / "config.json").write_text("{}")
    before = set(daemon.run("images", "-q", "--no-trunc").stdout.split())
    offsets = log_offsets(ecr.server)
    yield daemon
    if daemon.proc is None or daemon.proc.poll() is not None:
        pytest.fail(f"dockerd died during this test\n{daemon.log_tail()}", pytrace=False)
    after = set(daemon.run("images", "-q", "--no-trunc").stdout.split())
    if after - before:
        daemon.run("rmi", "-f", *sorted(after - before), check=False)
    errors = failed_requests(offsets)
    if errors:
        pytest.fail("berth answered 5xx (never allowed):\n  " + "\n  ".join(errors[:20]), pytrace=False)


def docker_login(d: DockerDaemon, session: ECRSession, config: Path = None) -> subprocess.CompletedProcess:
    """aws ecr get-login-password --endpoint-url URL | docker login --username AWS --password-stdin HOST"""
    aws_cmd = [AWS_CLI, "ecr", "get-login-password", "--endpoint-url", session.server.url,
               "--region", session.region]
    docker_cmd = [d.docker_bin, "login", "--username", "AWS", "--password-stdin", session.server.hostport]
    p1 = subprocess.Popen(aws_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=session.cli_env(),
                          stdin=subprocess.DEVNULL)
    p2 = subprocess.Popen(docker_cmd, stdin=p1.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=d.env(config))
    p1.stdout.close()
    try:
        out, err = p2.communicate(timeout=120)
        err1 = p1.stderr.read()
        rc1 = p1.wait(timeout=60)
    finally:
        for p in (p1, p2):
            if p.poll() is None:
                p.kill()
                p.wait()
        p1.stderr.close()
    assert rc1 == 0, f"aws ecr get-login-password exited {rc1}: {err1.decode(errors='replace')[-2000:]}"
    return subprocess.CompletedProcess(docker_cmd, p2.returncode, out.decode(errors="replace"),
                                       err.decode(errors="replace"))


def login_ok(d: DockerDaemon, session: ECRSession, config: Path = None):
    p = docker_login(d, session, config)
    assert p.returncode == 0 and "Login Succeeded" in p.stdout, \
        f"docker login exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"


def error_line(p: subprocess.CompletedProcess) -> str:
    """The error docker printed last (stderr, else stdout); also printed (pytest -s shows it)."""
    for text in (p.stderr, p.stdout):
        lines = [x.strip() for x in text.splitlines() if x.strip()]
        if lines:
            print(f"`{' '.join(map(str, p.args[1:]))}` -> {lines[-1]}")
            return lines[-1]
    return ""


def push(d: DockerDaemon, ref: str, check: bool = True) -> subprocess.CompletedProcess:
    return d.run("push", ref, check=check, timeout=300)


def pushed_digest(p: subprocess.CompletedProcess, tag: str) -> tuple:
    """(digest, size) from docker push's last line `TAG: digest: sha256:… size: N`."""
    m = re.search(rf"^{re.escape(tag)}: digest: (sha256:[0-9a-f]{{64}}) size: (\d+)$", p.stdout, re.M)
    assert m, f"no digest line for {tag} in docker push output:\n{p.stdout}"
    return m.group(1), int(m.group(2))


def image_id(d: DockerDaemon, ref: str) -> str:
    return d.run("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()


# The ECR calls around docker go through boto3 (an aws CLI start costs a second or more on a busy machine);
# the aws CLI itself is used where docker users type it: get-login-password.
def create_repo(session: ECRSession, name: str, **params) -> dict:
    return session.client.create_repository(repositoryName=name, **params)["repository"]


def describe_images(session: ECRSession, repo: str) -> list:
    return session.client.describe_images(repositoryName=repo)["imageDetails"]


_IMPORTS = 0


def imported_image(d: DockerDaemon, ref: str) -> str:
    """`docker import` of a one-file tarball with unique content (a new single-layer image); its ID."""
    global _IMPORTS
    _IMPORTS += 1
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = f"berth docker test {unique()} {_IMPORTS} {time.time()}\n".encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    d.run("import", "--change", 'CMD ["/hello.txt"]', "-", ref, input=buf.getvalue())
    return image_id(d, ref)


@pytest.fixture(scope="module")
def fixture_archive(fixtures_dir, skopeo_path, tmp_path_factory) -> Path:
    """debian-tiny-vuln:1 as a docker-archive (skopeo copy oci:… docker-archive:…)."""
    out = tmp_path_factory.mktemp("docker-archive") / "tiny.tar"
    src = fixtures_dir / "images" / "debian-tiny-vuln"
    cmd = [skopeo_path, "copy", "--quiet", f"oci:{src}:1", f"docker-archive:{out}:berth-fixture/tiny:1"]
    p = subprocess.run(cmd, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.decode(errors='replace')}"
    return out


def fixture_config_digest(fixtures_dir) -> tuple:
    """(config digest, layer count) of debian-tiny-vuln:1, read from its OCI layout."""
    root = fixtures_dir / "images" / "debian-tiny-vuln"
    index = json.loads((root / "index.json").read_text())
    desc = next(m for m in index["manifests"]
                if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == "1")
    manifest = json.loads((root / "blobs" / "sha256" / desc["digest"].split(":", 1)[1]).read_text())
    return manifest["config"]["digest"], len(manifest["layers"])


def new_user(root: ECRSession, attach=()) -> tuple:
    """An IAM user with the given managed policies and an access key: (user ARN, its ECRSession)."""
    iam = _boto_session().client("iam", endpoint_url=root.server.url, region_name=root.region,
                                 aws_access_key_id=root.access_key, aws_secret_access_key=root.secret_key)
    name = unique("docker")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    for policy in attach:
        iam.attach_user_policy(UserName=name, PolicyArn=policy)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return arn, root.other(key["AccessKeyId"], key["SecretAccessKey"])


# =============================================================================================
# tests
# =============================================================================================
def test_login_with_get_login_password_and_a_wrong_password(docker, ecr):
    host = ecr.server.hostport
    p = docker_login(docker, ecr)
    assert p.returncode == 0 and "Login Succeeded" in p.stdout, f"{p.stdout}\n{p.stderr}"
    auths = json.loads((docker.client_config / "config.json").read_text())["auths"]
    user, _, password = base64.b64decode(auths[host]["auth"]).decode().partition(":")
    assert user == "AWS" and len(password) > 20, auths

    # A password that is no token: the daemon's /v2/ check answers 401, as ECR's does.
    p = docker.run("login", "--username", "AWS", "--password-stdin", host, input=b"not-a-registry-token",
                   check=False)
    assert p.returncode != 0, p.stdout
    line = error_line(p)
    m = ECR_LOGIN_REFUSED.match(line)
    assert m and m.group("host") == host, f"docker login with a wrong password printed {line!r}"


def test_push_pull_and_manifest_inspect_of_the_fixture_image(docker, ecr, fixture_archive, fixtures_dir):
    host = ecr.server.hostport
    config_digest, n_layers = fixture_config_digest(fixtures_dir)
    out = docker.run("load", "-i", str(fixture_archive)).stdout
    assert "berth-fixture/tiny:1" in out, out
    local_id = image_id(docker, "berth-fixture/tiny:1")
    assert local_id == config_digest  # docker's image ID is the config digest
    diff_ids = json.loads(docker.run("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                                     local_id).stdout)
    assert len(diff_ids) == n_layers == 2

    repo = f"docker/{unique('tiny')}"
    create_repo(ecr, repo)
    login_ok(docker, ecr)
    ref = f"{host}/{repo}"
    docker.run("tag", local_id, f"{ref}:1")
    t0 = time.monotonic()
    p = push(docker, f"{ref}:1")
    digest, size = pushed_digest(p, "1")
    assert p.stdout.count("Pushed") == n_layers, p.stdout
    print(f"push of {n_layers} layers took {time.monotonic() - t0:.2f}s")

    # what the ECR API says about it
    [detail] = describe_images(ecr, repo)
    assert detail["imageDigest"] == digest and detail["imageTags"] == ["1"], detail
    assert detail["imageManifestMediaType"] == DOCKER_V2, detail
    got = ecr.client.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "1"}])["images"]
    manifest_text = got[0]["imageManifest"]
    assert len(manifest_text.encode()) == size
    manifest = json.loads(manifest_text)
    assert manifest["config"]["digest"] == local_id and len(manifest["layers"]) == n_layers

    # docker manifest inspect (client side, with the login's credentials), by tag and by digest
    for reference in (f"{ref}:1", f"{ref}@{digest}"):
        shown = json.loads(docker.run("manifest", "inspect", "--insecure", reference).stdout)
        assert shown["mediaType"] == DOCKER_V2 and shown["schemaVersion"] == 2, shown
        assert shown["config"]["digest"] == local_id, shown
        assert [x["digest"] for x in shown["layers"]] == [x["digest"] for x in manifest["layers"]]

    # a second tag of the same image: every layer is already there, same digest
    docker.run("tag", local_id, f"{ref}:2")
    p = push(docker, f"{ref}:2")
    assert pushed_digest(p, "2")[0] == digest
    assert p.stdout.count("Layer already exists") == n_layers, p.stdout
    [detail] = describe_images(ecr, repo)
    assert sorted(detail["imageTags"]) == ["1", "2"], detail

    # remove the image locally, pull it back by tag, then by digest: same image ID, layers, digest
    docker.run("rmi", "-f", local_id)
    assert docker.run("image", "inspect", local_id, check=False).returncode != 0
    p = docker.run("pull", f"{ref}:1", timeout=300)
    assert f"Digest: {digest}" in p.stdout, p.stdout
    assert image_id(docker, f"{ref}:1") == local_id
    assert json.loads(docker.run("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                                 local_id).stdout) == diff_ids
    repo_digests = json.loads(docker.run("image", "inspect", "--format", "{{json .RepoDigests}}",
                                         local_id).stdout)
    assert f"{ref}@{digest}" in repo_digests, repo_digests
    docker.run("rmi", "-f", local_id)
    p = docker.run("pull", f"{ref}@{digest}", timeout=300)
    assert image_id(docker, f"{ref}@{digest}") == local_id, p.stdout


def test_push_creates_a_missing_repository_or_refuses_it_like_ecr(docker, ecr, berth_bin, tmp_path):
    # Berth's default (BERTH_CREATE_ON_PUSH=true): the push creates the repository.
    login_ok(docker, ecr)
    repo = f"docker/{unique('auto')}"
    ref = f"{ecr.server.hostport}/{repo}:1"
    imported_image(docker, ref)
    digest, _ = pushed_digest(push(docker, ref), "1")
    names = [r["repositoryName"] for r in ecr.client.describe_repositories()["repositories"]]
    assert repo in names
    assert describe_images(ecr, repo)[0]["imageDigest"] == digest

    # As ECR does (BERTH_CREATE_ON_PUSH=false): name unknown.
    with running_server(berth_bin, tmp_path / "strict", BERTH_CREATE_ON_PUSH="false") as srv:
        strict = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        offsets = log_offsets(srv)
        try:
            login_ok(docker, strict)
            missing = f"docker/{unique('missing')}"
            ref = f"{srv.hostport}/{missing}:1"
            imported_image(docker, ref)
            p = push(docker, ref, check=False)
            assert p.returncode != 0, p.stdout
            line = error_line(p)
            assert line.startswith("name unknown: ") and missing in line, line
            check_ecr_wording("name-unknown", line, ECR_NAME_UNKNOWN(missing, ACCOUNT_ID))
            names = [r["repositoryName"] for r in strict.client.describe_repositories()["repositories"]]
            assert missing not in names
        finally:
            check_after_test(srv, [strict])
        assert not failed_requests(offsets), failed_requests(offsets)


def test_immutable_tag_refuses_other_content(docker, ecr):
    host = ecr.server.hostport
    repo = f"docker/{unique('immutable')}"
    create_repo(ecr, repo, imageTagMutability="IMMUTABLE")
    login_ok(docker, ecr)
    ref = f"{host}/{repo}:v1"
    first = imported_image(docker, ref)
    digest, _ = pushed_digest(push(docker, ref), "v1")

    # The same image again under the same tag: ECR refuses this too, with the same text (kaniko added
    # --push-ignore-immutable-tag-errors for it, osscontainertools/kaniko#204; aws/containers-roadmap#2179:
    # "even when the digest has not changed, it fails"). Berth accepts it as a no-op on purpose (a retried
    # push must not fail; README, tag immutability): the tag keeps its digest.
    p = push(docker, ref, check=False)
    assert p.returncode == 0, f"the same image again under an immutable tag was refused:\n{p.stdout}\n{p.stderr}"
    assert pushed_digest(p, "v1")[0] == digest

    other = imported_image(docker, ref)  # the tag now names other content locally
    assert other != first
    p = push(docker, ref, check=False)
    assert p.returncode != 0, f"docker pushed other content over an immutable tag:\n{p.stdout}"
    line = error_line(p)
    assert line.startswith("tag invalid: ") and "v1" in line, line
    check_ecr_wording("tag-immutable", line, ECR_TAG_IMMUTABLE("v1", repo))
    [detail] = describe_images(ecr, repo)
    assert detail["imageDigest"] == digest and detail["imageTags"] == ["v1"], detail


def test_push_and_pull_without_login(docker, ecr, tmp_path):
    host = ecr.server.hostport
    repo = f"docker/{unique('nologin')}"
    create_repo(ecr, repo)
    ref = f"{host}/{repo}:1"
    imported_image(docker, ref)
    p = push(docker, ref, check=False)
    assert p.returncode != 0, p.stdout
    assert error_line(p) == ECR_NO_CREDENTIALS, p.stderr
    # something to pull, pushed with credentials, then pulled without
    login_ok(docker, ecr)
    push(docker, ref)
    docker.run("logout", host)
    docker.run("rmi", "-f", ref)
    p = docker.run("pull", ref, check=False)
    assert p.returncode != 0, p.stdout
    line = error_line(p)
    assert line.endswith(f": {ECR_NO_CREDENTIALS}") and line.startswith("Error response from daemon: "), line


def test_read_only_user_pulls_but_cannot_push(docker, ecr):
    host = ecr.server.hostport
    repo = f"docker/{unique('readonly')}"
    create_repo(ecr, repo)
    login_ok(docker, ecr)
    ref = f"{host}/{repo}"
    image = imported_image(docker, f"{ref}:1")
    push(docker, f"{ref}:1")
    docker.run("rmi", "-f", image)

    user_arn, reader = new_user(ecr, attach=[READ_ONLY])
    docker.run("logout", host)
    login_ok(docker, reader)
    docker.run("pull", f"{ref}:1", timeout=300)
    assert image_id(docker, f"{ref}:1") == image

    imported_image(docker, f"{ref}:2")  # new layer: docker has to start an upload
    p = push(docker, f"{ref}:2", check=False)
    assert p.returncode != 0, f"a read-only user pushed:\n{p.stdout}"
    line = error_line(p)
    action = "ecr:InitiateLayerUpload"
    repo_arn = f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{repo}"
    assert line.startswith("denied: "), line
    assert user_arn in line and action in line and repo_arn in line, line
    check_ecr_wording("denied", line, ECR_DENIED(user_arn, action, repo_arn))
    [detail] = describe_images(ecr, repo)
    assert detail["imageTags"] == ["1"], detail
