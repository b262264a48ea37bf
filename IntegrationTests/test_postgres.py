"""`berth serve` with its metadata in PostgreSQL (`metadataBackend: postgres`), driven by skopeo and the aws CLI.

The server is the one `BERTH_TEST_POSTGRES_URL` names (scripts/test starts a throwaway PostgreSQL 15 cluster
and sets it); each test gets a database of its own, created with psql. Without the variable the tests are
skipped outside CI and FAIL in CI (CI=true): PostgreSQL is part of the suite there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

import berth_helpers as bh
from berth_helpers import OCI_MANIFEST, unique
from ecr_helpers import (ACCOUNT_ID, ECRServer, ECRSession, check_after_test, default_env, put_api_image, write_oci_layout,
                         aws_cli, skopeo_ecr, skopeo_path)  # noqa: F401 (fixtures)

PG_URL = os.environ.get("BERTH_TEST_POSTGRES_URL", "")
IN_CI = os.environ.get("CI", "") not in ("", "0", "false")


def psql(url: str, sql: str) -> str:
    p = subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"psql {sql!r} exited {p.returncode}: {p.stderr.decode(errors='replace')}"
    return p.stdout.decode().strip()


def with_database(url: str, name: str) -> str:
    """`url` naming database `name` instead."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/{name}" + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def pg_database() -> str:
    """The URL of a new, empty database on the test server."""
    if not PG_URL:
        if IN_CI:
            pytest.fail("BERTH_TEST_POSTGRES_URL is not set: CI runs the PostgreSQL tests (scripts/test starts a cluster)",
                        pytrace=False)
        pytest.skip("BERTH_TEST_POSTGRES_URL is not set (scripts/test starts a PostgreSQL cluster and sets it)")
    if not shutil.which("psql"):
        pytest.fail("psql not found: apt-get install postgresql", pytrace=False)
    name = "it_" + uuid.uuid4().hex[:16]
    psql(PG_URL, f"CREATE DATABASE {name}")
    return with_database(PG_URL, name)


def pg_server(berth_bin, base: Path, url: str, extra_args=(), **extra_env) -> ECRServer:
    env = {**default_env(), "BERTH_METADATA_BACKEND": "postgres", "BERTH_POSTGRES_URL": url, **extra_env}
    srv = ECRServer(berth_bin, base, env=env, extra_args=list(extra_args))
    srv.data_dir.mkdir(parents=True, exist_ok=True)
    return srv


def test_serve_on_postgres_with_skopeo_and_the_aws_cli(berth_bin, pg_database, skopeo_ecr, tmp_path):
    srv = pg_server(berth_bin, tmp_path / "berth", pg_database)
    srv.start()
    try:
        ecr = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        name = unique("pg") + "/app"
        created = ecr.cli_json("create-repository", "--repository-name", name)["repository"]
        assert created["repositoryName"] == name and created["imageTagMutability"] == "MUTABLE"

        layout = write_oci_layout(tmp_path / "layout", tag="v1", n_layers=2, layer_size=5000)
        skopeo_ecr.login(ecr)
        skopeo_ecr.copy(f"oci:{layout.root}:v1", f"docker://{srv.hostport}/{name}:v1", "--preserve-digests")

        details = ecr.cli_json("describe-images", "--repository-name", name)["imageDetails"]
        assert [(d["imageDigest"], d["imageTags"], d["imageManifestMediaType"]) for d in details] == \
            [(layout.digest, ["v1"], OCI_MANIFEST)]
        assert details[0]["imageSizeInBytes"] >= layout.layers_size

        # Pulled back byte for byte.
        out = tmp_path / "pulled"
        skopeo_ecr.copy(f"docker://{srv.hostport}/{name}:v1", f"dir:{out}")
        assert (out / "manifest.json").read_bytes() == layout.manifest
        for layer in layout.layers:
            assert (out / hashlib.sha256(layer).hexdigest()).read_bytes() == layer

        # Settings are stored (and enforced) in PostgreSQL: an immutable tag refuses to move.
        ecr.cli("put-image-tag-mutability", "--repository-name", name, "--image-tag-mutability", "IMMUTABLE")
        repo = ecr.cli_json("describe-repositories", "--repository-names", name)["repositories"][0]
        assert repo["imageTagMutability"] == "IMMUTABLE"
        other = write_oci_layout(tmp_path / "other", tag="v1", n_layers=1, layer_size=3000)
        p = skopeo_ecr.copy(f"oci:{other.root}:v1", f"docker://{srv.hostport}/{name}:v1", "--preserve-digests",
                            check=False)
        assert p.returncode != 0, "an immutable tag moved"
        tags = ecr.cli_json("list-images", "--repository-name", name)["imageIds"]
        assert tags == [{"imageDigest": layout.digest, "imageTag": "v1"}]

        # The metadata is in PostgreSQL, not in a berth.db beside the blobs, and survives a restart.
        assert not (srv.data_dir / "berth.db").exists()
        assert psql(pg_database, "SELECT count(*) FROM manifests") == "1"
        assert psql(pg_database, "SELECT max(version) FROM schema_migrations") != ""
        srv.restart()
        again = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        details = again.cli_json("describe-images", "--repository-name", name, "--image-ids", "imageTag=v1")["imageDetails"]
        assert details[0]["imageDigest"] == layout.digest
        check_after_test(srv, [ecr, again])
    finally:
        srv.dispose()


def test_two_nodes_start_together_on_one_database(berth_bin, pg_database, tmp_path):
    """Two servers migrating an empty database at the same moment (the advisory lock lets one apply each
    version), then serving the same registry: a repository made on one is described on the other."""
    # The nodes share the key that seals secret access keys (each writes the configured root key at start).
    key = str(tmp_path / "master.key")
    servers = [pg_server(berth_bin, tmp_path / f"node{i}", pg_database, BERTH_SECRET_KEY_FILE=key) for i in range(2)]
    try:
        # Spawned together from this thread (a server dies with the thread that spawned it: PR_SET_PDEATHSIG).
        procs = []
        for srv in servers:
            port = bh.free_port()
            procs.append((srv, srv._spawn(port), port))
        for srv, proc, port in procs:
            reason = srv._wait_ready(proc, port, 60)
            srv.proc, srv.port = proc, port
            assert reason is None, f"{reason}\n{srv.log_tail()}"
        versions = psql(pg_database, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations")
        assert versions == ",".join(str(v) for v in range(1, len(versions.split(",")) + 1))
        a = ECRSession(servers[0], *servers[0].root_credentials, tmp=tmp_path)
        b = ECRSession(servers[1], *servers[1].root_credentials, tmp=tmp_path)
        name = unique("pg2")
        a.cli_json("create-repository", "--repository-name", name)
        repo = b.cli_json("describe-repositories", "--repository-names", name)["repositories"][0]
        assert repo["registryId"] == ACCOUNT_ID
        b.cli("put-image-tag-mutability", "--repository-name", name, "--image-tag-mutability", "IMMUTABLE")
        assert a.cli_json("describe-repositories", "--repository-names", name)["repositories"][0][
            "imageTagMutability"] == "IMMUTABLE"
        check_after_test(servers[0], [a])
        check_after_test(servers[1], [b])
    finally:
        for s in servers:
            s.dispose()


def eventually(condition, seconds: float = 30.0) -> bool:
    end = time.time() + seconds
    while time.time() < end:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_change_on_one_node_takes_effect_on_the_other_at_once(berth_bin, pg_database, tmp_path):
    """Caches stay coherent across nodes (LISTEN/NOTIFY): with caches allowed to live 300 s (keys and
    policies) and 60 s (blob links), a key deleted and an image archived through node A are refused by
    node B, which had them cached, well within those times."""
    from test_access_control import Session, new_user
    key = str(tmp_path / "master.key")
    servers = [pg_server(berth_bin, tmp_path / f"node{i}", pg_database, BERTH_SECRET_KEY_FILE=key,
                         BERTH_AUTH_CACHE_SECONDS="300", BERTH_GC_GRACE_SECONDS="7200") for i in range(2)]
    try:
        for srv in servers:
            srv.start()
        a = Session(servers[0], *servers[0].root_credentials, tmp=tmp_path)
        b = Session(servers[1], *servers[1].root_credentials, tmp=tmp_path)
        name = unique("pgc")
        a.client.create_repository(repositoryName=name)
        img = put_api_image(a.client, name, tag="v1")
        layer = img.layer_digests[0]
        # A tag pushed (and moved) on node A is read on node B at once.
        v2b = b.v2()
        assert v2b.get_manifest(name, "v1").headers.get("Docker-Content-Digest") == img.digest
        moved = put_api_image(a.client, name, tag="v1")
        r = v2b.get_manifest(name, "v1")
        assert r.status_code == 200 and r.headers.get("Docker-Content-Digest") == moved.digest, "node B saw an old tag"
        a.client.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": moved.digest}])
        put_api_image(a.client, name, tag="v1", image=img)

        # A user's key, used (and so cached) on node B.
        user, as_user = new_user(a, attach=["arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"])
        on_b = Session(servers[1], as_user.access_key, as_user.secret_key, tmp=tmp_path)
        assert on_b.client.describe_repositories(repositoryNames=[name])["repositories"]
        # The layer's link, cached on node B by a HEAD.
        assert v2b.request("HEAD", f"/v2/{name}/blobs/{layer}").status_code == 200

        a.boto("iam").delete_access_key(UserName=user, AccessKeyId=as_user.access_key)
        a.client.update_image_storage_class(repositoryName=name, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE")

        def key_refused() -> bool:
            try:
                on_b.client.describe_repositories(repositoryNames=[name])
                return False
            except Exception as e:  # botocore ClientError
                return e.response["Error"]["Code"] == "UnrecognizedClientException"
        assert eventually(key_refused, 30), "node B kept accepting a key deleted through node A"
        assert eventually(lambda: v2b.request("HEAD", f"/v2/{name}/blobs/{layer}").status_code == 404, 30), \
            "node B kept serving a layer only an image archived through node A uses"
        check_after_test(servers[0], [a])
        check_after_test(servers[1], [b])
    finally:
        for s in servers:
            s.dispose()


def test_verify_config_hides_the_postgres_password(berth_bin, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env.update({"BERTH_METADATA_BACKEND": "postgres", "BERTH_POSTGRES_URL": "postgres://berth:hunter2secret@db:5432/reg"})
    p = subprocess.run([str(berth_bin), "verify-config", "--data-dir", str(tmp_path)], capture_output=True, env=env,
                       timeout=60, stdin=subprocess.DEVNULL)
    out, err = p.stdout.decode(), p.stderr.decode()
    assert '"metadataBackend" : "postgres"' in out or '"metadataBackend": "postgres"' in out, out
    assert "hunter2secret" not in out and "db:5432/reg" in out, out
    # The server is checked too: this one does not exist, and the message says where it looked (no password).
    assert p.returncode == 2 and "PostgreSQL" in err and "db:5432" in err and "hunter2secret" not in err, err
    env["BERTH_POSTGRES_URL"] = "mysql://nope"
    p = subprocess.run([str(berth_bin), "verify-config", "--data-dir", str(tmp_path)], capture_output=True, env=env,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 2 and "postgresURL" in p.stderr.decode(), p.stderr.decode()


def test_verify_config_reaches_the_postgres_server(berth_bin, pg_database, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env.update({"BERTH_METADATA_BACKEND": "postgres", "BERTH_POSTGRES_URL": pg_database})
    p = subprocess.run([str(berth_bin), "verify-config", "--data-dir", str(tmp_path)], capture_output=True, env=env,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0 and "PostgreSQL" in p.stderr.decode() and "reachable" in p.stderr.decode(), p.stderr.decode()
    assert psql(pg_database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0", "verify-config wrote nothing"


def test_an_upload_resumes_on_another_node_soon_after_its_node_is_killed(berth_bin, pg_database, tmp_path):
    """Two nodes on one database and one bucket, with `uploadWriterTimeoutSeconds` at 10 (docs/s3.md,
    "Claims renewed while their writer lives"). Node A is killed with -9 in the middle of a PATCH whose body
    streams slowly: its claim on the upload is no longer renewed. The same chunk sent to node B at the
    committed offset is refused (416 BLOB_UPLOAD_INVALID, another chunk is in progress) until the claim lapses,
    about 10 s after A's last renewal, then accepted (it waited 1,200 s before the heartbeat); the blob then
    completes on B with the right digest."""
    import two_nodes
    from s3_helpers import ACCESS_KEY, SECRET_KEY
    from test_crash import OCTET, MiB, patch, status
    timeout = 10
    seaweed = two_nodes.shared_seaweed()
    bucket = "claims-" + uuid.uuid4().hex[:12]
    seaweed.s3.create_bucket(Bucket=bucket)
    shared = {"BERTH_BLOB_BACKEND": "s3", "BERTH_S3_ENDPOINT": seaweed.endpoint, "BERTH_S3_BUCKET": bucket,
              "BERTH_S3_REGION": "us-east-1", "BERTH_S3_PATH_STYLE": "true", "BERTH_S3_ACCESS_KEY_ID": ACCESS_KEY,
              "BERTH_S3_SECRET_ACCESS_KEY": SECRET_KEY, "BERTH_SECRET_KEY_FILE": str(tmp_path / "master.key"),
              "BERTH_UPLOAD_WRITER_TIMEOUT_SECONDS": str(timeout)}
    servers = [pg_server(berth_bin, tmp_path / f"node{i}", pg_database, **shared) for i in range(2)]
    try:
        for srv in servers:
            srv.start()
        a, b = bh.Client(servers[0]), bh.Client(servers[1])
        repo = unique("claims")
        data = os.urandom(3 * MiB)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        loc = patch(a, a.start_upload(repo), data[:MiB], 0)
        session_path = bh.path_of(loc)
        upload_id = session_path.split("?")[0].rstrip("/").rsplit("/", 1)[1]

        # A chunk streaming into node A: it holds the upload's claim, renewed every 2 s, when A is killed.
        sock = bh.open_partial_request(servers[0], "PATCH", session_path,
                                       {**OCTET, "Content-Range": f"{MiB}-{2 * MiB - 1}", "Content-Length": str(MiB)},
                                       data[MiB:MiB + 300 * 1024])
        try:
            def claimed_since() -> str:
                return psql(pg_database, f"SELECT writing_since FROM uploads WHERE id = '{upload_id}'")
            assert eventually(lambda: claimed_since() != "", 10), "node A never claimed the upload"
            first = claimed_since()
            assert eventually(lambda: claimed_since() != first, 5), "node A never renewed its claim"
            servers[0].kill9()
            killed = time.monotonic()
        finally:
            sock.close()

        (start, end), loc_b = status(b, session_path)
        assert (start, end) == (0, MiB - 1), "the killed chunk's bytes were committed"
        refused_at, accepted_at = [], None
        while time.monotonic() - killed < timeout + 20:
            r = b.patch(loc_b, data=data[MiB:2 * MiB], headers={**OCTET, "Content-Range": f"{MiB}-{2 * MiB - 1}"})
            elapsed = time.monotonic() - killed
            if r.status_code == 202:
                accepted_at = elapsed
                loc_b = b.location(r)
                break
            bh.assert_oci_error(r, 416, "BLOB_UPLOAD_INVALID")
            assert "in progress" in r.text, bh.describe(r)
            refused_at.append(elapsed)
            time.sleep(0.25)
        print(f"\nresumed upload: refused {len(refused_at)} times in the first {refused_at[-1] if refused_at else 0:.1f} s "
              f"after the kill, accepted {accepted_at} s after it (timeout {timeout} s)")
        assert accepted_at is not None, f"the chunk was still refused {timeout + 20} s after node A died"
        assert refused_at and refused_at[0] < 1, "the claim of the node killed mid-chunk did not hold at first"
        assert accepted_at >= timeout - timeout / 5 - 1, f"the claim lapsed after {accepted_at:.1f} s, before its timeout"
        assert accepted_at <= timeout + 3, f"the resumed upload waited {accepted_at:.1f} s"

        loc_b = patch(b, loc_b, data[2 * MiB:], 2 * MiB)
        r = b.put(bh.add_query(loc_b, digest=digest))
        assert r.status_code == 201, bh.describe(r)
        b.blob_ok(repo, digest, data)
        servers[0].start()
        a.blob_ok(repo, digest, data)
    finally:
        for s in servers:
            s.dispose()
        try:
            for o in seaweed.s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                seaweed.s3.delete_object(Bucket=bucket, Key=o["Key"])
            seaweed.s3.delete_bucket(Bucket=bucket)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
