"""Data written by an earlier Berth, served by this one: `berth serve` on a copy of a committed
`berth-data` fixture (Tests/BerthStorageTests/Fixtures/v1, made by the unversioned Berth with
make_fixture.py) reads everything back through the real APIs (boto3: ECR, IAM, STS; /v2/), and a
database from a newer Berth is refused at start, untouched.
"""

from __future__ import annotations

import re
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from botocore.config import Config

import berth_helpers as bh
from ecr_helpers import ACCOUNT_ID, REGION, _boto_session, running_server

FIXTURES = Path(__file__).resolve().parents[1] / "Tests" / "BerthStorageTests" / "Fixtures"


def data_copy(tmp_path: Path, version: str) -> tuple[Path, dict]:
    """`tmp_path/data`: a copy of fixture `version` (berth.db, master.key, blobs); and its expected.json."""
    src = FIXTURES / version
    data = tmp_path / "data"
    shutil.copytree(src, data, ignore=shutil.ignore_patterns("expected.json"))
    # git keeps no 0600: restore what Berth wrote and insists on (a checkout has 0644).
    (data / "master.key").chmod(0o600)
    return data, json.loads((src / "expected.json").read_text())


def client(srv, service: str, key: str, secret: str):
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return _boto_session().client(service, endpoint_url=srv.url, region_name=REGION, aws_access_key_id=key,
                                  aws_secret_access_key=secret, config=cfg)


def schema_history(db: Path) -> list:
    """(version, name) of every applied migration, in order."""
    c = sqlite3.connect(db)
    try:
        return list(c.execute("SELECT version, name FROM schema_migrations ORDER BY version"))
    finally:
        c.close()


def test_fixture_v1_is_served_after_upgrade_and_restart(berth_bin, tmp_path):
    data, want = data_copy(tmp_path, "v1")
    with running_server(berth_bin, tmp_path) as srv:
        for start in (1, 2):  # the upgrade, then a start on the upgraded database (a no-op)
            if start == 2:
                srv.restart()
            ecr = client(srv, "ecr", *srv.root_credentials)
            repos = ecr.describe_repositories()["repositories"]
            assert sorted(r["repositoryName"] for r in repos) == want["repositories"]
            app = next(r for r in repos if r["repositoryName"] == "fixture/app")
            assert app["imageTagMutability"] == "IMMUTABLE"
            assert ecr.get_repository_policy(repositoryName="fixture/app")["policyText"] == want["repositoryPolicy"]
            ids = ecr.list_images(repositoryName="fixture/app")["imageIds"]
            assert {i["imageTag"]: i["imageDigest"] for i in ids if "imageTag" in i} == want["tags"]
            got = ecr.batch_get_image(repositoryName="fixture/app", imageIds=[{"imageTag": "v1"}])["images"][0]
            assert "sha256:" + hashlib.sha256(got["imageManifest"].encode()).hexdigest() == want["tags"]["v1"]
            assert ecr.get_registry_policy()["policyText"] == want["registryPolicy"]
            assert ecr.get_account_setting(name="BASIC_SCAN_TYPE_VERSION")["value"] == "CLAIR"
            scan = ecr.describe_image_scan_findings(repositoryName="fixture/app", imageId={"imageTag": "v1"})
            assert scan["imageScanStatus"]["status"] == "FAILED"

            # blob bytes through /v2/ with the root key's token
            reg = bh.Client(srv)
            layer = want["layers"]["v1"][0]
            r = reg.get(f"/v2/fixture/app/blobs/{layer}")
            assert r.status_code == 200 and bh.sha256(r.content) == layer

            # IAM, and keys sealed by the old release still open with its master.key
            iam = client(srv, "iam", *srv.root_credentials)
            assert iam.get_user(UserName="alice")["User"]["Path"] == "/team/"
            assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="alice")["Groups"]] == ["devs"]
            assert iam.get_user_policy(UserName="alice", PolicyName="push-fixture")["PolicyDocument"] in (
                want["aliceInlinePolicy"], json.loads(want["aliceInlinePolicy"]))
            attached = iam.list_attached_group_policies(GroupName="devs")["AttachedPolicies"]
            assert [p["PolicyArn"] for p in attached] == [want["managedPolicyArn"]]
            assert iam.get_role(RoleName="ci")["Role"]["MaxSessionDuration"] == 7200
            arns = [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
            assert arns == [want["oidcProviderArn"]]
            alice = client(srv, "sts", want["aliceAccessKeyId"], want["aliceSecretAccessKey"])
            assert alice.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/team/alice"
            other = client(srv, "sts", want["otherAccessKeyId"], want["otherSecretAccessKey"])
            assert other.get_caller_identity()["Account"] == want["otherAccount"]
            history = schema_history(data / "berth.db")
            assert [v for v, _ in history] == list(range(1, len(history) + 1)), history
            assert "kms keys, key material and aliases" in [n for _, n in history]
            # The storage class migration: every image of the previous release is ACTIVE (STANDARD).
            images = ecr.describe_images(repositoryName="fixture/app", filter={"imageStatus": "ANY"})["imageDetails"]
            assert images and all(d["imageStatus"] == "ACTIVE" and "lastArchivedAt" not in d for d in images), images

            # KMS keys on the upgraded database: made at the first start, still decrypting after the restart
            kms = client(srv, "kms", *srv.root_credentials)
            if start == 1:
                key_id = kms.create_key(Description="after upgrade")["KeyMetadata"]["KeyId"]
                kms.create_alias(AliasName="alias/upgraded", TargetKeyId=key_id)
                blob = kms.encrypt(KeyId="alias/upgraded", Plaintext=b"kept", EncryptionContext={"a": "b"})["CiphertextBlob"]
            assert kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})["Plaintext"] == b"kept"
            assert kms.describe_key(KeyId="alias/upgraded")["KeyMetadata"]["KeyId"] == key_id


def test_database_from_a_newer_berth_is_refused_untouched(berth_bin, tmp_path):
    data, _ = data_copy(tmp_path, "v1")
    db = data / "berth.db"
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)")
    c.execute("INSERT INTO schema_migrations VALUES (1, 'baseline', 1), (99, 'from the future', 2)")
    c.commit()
    c.close()
    before = db.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BERTH_")}
    env.update({"BERTH_ACCOUNT_ID": ACCOUNT_ID, "BERTH_REGION": REGION})
    try:
        p = subprocess.run([str(berth_bin), "serve", "--data-dir", str(data), "--host", bh.HOST, "--port", str(bh.free_port())],
                           capture_output=True, timeout=20, stdin=subprocess.DEVNULL, env=env, preexec_fn=bh._pdeathsig)
    except subprocess.TimeoutExpired:
        pytest.fail("berth serve kept running on a database recorded at schema version 99")
    err = p.stderr.decode(errors="replace")
    assert p.returncode != 0, f"berth serve started on a version-99 database:\n{err[-2000:]}"
    assert "schema version 99" in err and re.search(r"versions up to \d+", err), err[-2000:]
    assert db.read_bytes() == before
    assert not (data / "berth.db-wal").exists() or (data / "berth.db-wal").stat().st_size == 0
