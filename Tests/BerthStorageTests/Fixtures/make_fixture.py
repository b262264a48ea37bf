#!/usr/bin/env python3
"""Makes a metadata fixture: a `berth-data` directory written by a released Berth through its real APIs.

    python3 Tests/BerthStorageTests/Fixtures/make_fixture.py BERTH_BINARY OUT_DIR

starts `BERTH_BINARY serve` on a temporary data directory with the integration tests' identity
(account 123456789012, the root key of IntegrationTests/ecr_helpers.py), fills every table family
(repositories with settings and policies, images, tags, an index, blob links, an unfinished upload,
a scan, account settings, a second account, IAM users/groups/roles/managed and inline policies, an
access key, an OIDC provider), stops the server cleanly, checkpoints the WAL and copies
`berth.db`, `master.key` and the blob files to OUT_DIR, with `expected.json` (what was written).

Every byte pushed is derived from fixed seeds, so the digests are the same at every run; only times,
generated ids and the sealed secrets differ. Re-run it with the release you are about to replace
(`OUT_DIR` = `Fixtures/vN`, N = that release's schema version) before adding a migration, and keep the
old fixtures: each is a database a user may still have (see docs/architecture.md, "Storage schema and
migrations").
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "IntegrationTests"))

import berth_helpers as bh  # noqa: E402
from ecr_helpers import ACCOUNT_ID, REGION, ECRServer, _boto_session, default_env, upload_layer  # noqa: E402
from botocore.config import Config  # noqa: E402

OTHER_ACCOUNT = "210987654321"


def seeded(seed: str, n: int) -> bytes:
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}/{i}".encode()).digest()
        i += 1
    return out[:n]


def image(name: str) -> tuple[bytes, list[bytes], bytes]:
    config = bh.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                       "config": {}, "comment": f"berth fixture {name}"})
    layers = [seeded(f"{name}-layer", 600)]
    manifest = bh.make_manifest(bh.descriptor(bh.OCI_CONFIG, config), [bh.descriptor(bh.OCI_LAYER, x) for x in layers])
    return config, layers, manifest


def main(binary: str, out: str) -> None:
    out_dir = Path(out)
    base = Path(tempfile.mkdtemp(prefix="berth-fixture-"))
    srv = ECRServer(Path(binary), base, env=default_env())
    srv.start()
    expected: dict = {"account": ACCOUNT_ID, "otherAccount": OTHER_ACCOUNT, "region": REGION}
    try:
        root_key, root_secret = srv.root_credentials

        def client(service: str, key=root_key, secret=root_secret):
            cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"})
            return _boto_session().client(service, endpoint_url=srv.url, region_name=REGION, aws_access_key_id=key,
                                          aws_secret_access_key=secret, config=cfg)

        ecr = client("ecr")
        iam = client("iam")

        # repositories and their settings
        app = "fixture/app"
        ecr.create_repository(repositoryName=app, imageTagMutability="IMMUTABLE",
                              imageScanningConfiguration={"scanOnPush": False})
        ecr.create_repository(repositoryName="fixture/empty")
        repo_policy = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "OtherAccountPulls", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]}, separators=(",", ":"))
        ecr.set_repository_policy(repositoryName=app, policyText=repo_policy)
        expected["repositories"] = [app, "fixture/empty"]
        expected["repositoryPolicy"] = repo_policy

        # images: two manifests, one index over both, tags
        digests = {}
        for name, tag in (("one", "v1"), ("two", "v2")):
            config, layers, manifest = image(name)
            for blob in [config, *layers]:
                upload_layer(ecr, app, blob)
            r = ecr.put_image(repositoryName=app, imageManifest=manifest.decode(), imageTag=tag)
            digests[tag] = r["image"]["imageId"]["imageDigest"]
            assert digests[tag] == bh.sha256(manifest)
            expected.setdefault("layers", {})[tag] = [bh.sha256(x) for x in layers]
            expected.setdefault("configs", {})[tag] = bh.sha256(config)
        sizes = {t: len(image(n)[2]) for n, t in (("one", "v1"), ("two", "v2"))}
        index = bh.make_index([{"mediaType": bh.OCI_MANIFEST, "digest": digests[t], "size": sizes[t],
                                "platform": {"architecture": a, "os": "linux"}} for t, a in (("v1", "amd64"), ("v2", "arm64"))])
        r = ecr.put_image(repositoryName=app, imageManifest=index.decode(), imageTag="multi")
        digests["multi"] = r["image"]["imageId"]["imageDigest"]
        expected["tags"] = digests
        ecr.batch_get_image(repositoryName=app, imageIds=[{"imageTag": "v1"}])  # a pull: last_pulled_at

        # an upload left unfinished
        expected["unfinishedUpload"] = ecr.initiate_layer_upload(repositoryName=app)["uploadId"]

        # a scan (no vulnerability database: it ends FAILED or stays PENDING, either is a row)
        ecr.start_image_scan(repositoryName=app, imageId={"imageTag": "v1"})

        # account settings
        ecr.put_account_setting(name="BASIC_SCAN_TYPE_VERSION", value="CLAIR")
        ecr.put_registry_scanning_configuration(scanType="BASIC", rules=[{
            "scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "fixture/*", "filterType": "WILDCARD"}]}])
        registry_policy = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Sid": "Replicate", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
            "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
            "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/*"}]}, separators=(",", ":"))
        ecr.put_registry_policy(policyText=registry_policy)
        expected["registryPolicy"] = registry_policy

        # a second account
        other = srv.admin_create_account(OTHER_ACCOUNT)
        expected["otherAccessKeyId"] = other["AccessKeyId"]
        expected["otherSecretAccessKey"] = other["SecretAccessKey"]

        # IAM
        iam.create_user(UserName="alice", Path="/team/")
        iam.create_user(UserName="bob")
        key = iam.create_access_key(UserName="alice")["AccessKey"]
        expected["aliceAccessKeyId"] = key["AccessKeyId"]
        expected["aliceSecretAccessKey"] = key["SecretAccessKey"]
        inline = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "ecr:*", "Resource": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/fixture/*"}]},
            separators=(",", ":"))
        iam.put_user_policy(UserName="alice", PolicyName="push-fixture", PolicyDocument=inline)
        expected["aliceInlinePolicy"] = inline
        iam.create_group(GroupName="devs")
        iam.add_user_to_group(GroupName="devs", UserName="alice")
        iam.add_user_to_group(GroupName="devs", UserName="bob")
        managed = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage"], "Resource": "*"}]},
            separators=(",", ":"))
        policy_arn = iam.create_policy(PolicyName="pull-all", Path="/fixture/", PolicyDocument=managed,
                                       Description="pull everything")["Policy"]["Arn"]
        expected["managedPolicyArn"] = policy_arn
        expected["managedPolicy"] = managed
        iam.attach_group_policy(GroupName="devs", PolicyArn=policy_arn)
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "sts:AssumeRole"}]},
            separators=(",", ":"))
        iam.create_role(RoleName="ci", AssumeRolePolicyDocument=trust, MaxSessionDuration=7200, Description="builds")
        expected["roleTrustPolicy"] = trust
        iam.attach_role_policy(RoleName="ci", PolicyArn="arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
        oidc = iam.create_open_id_connect_provider(Url="https://token.actions.githubusercontent.com",
                                                   ClientIDList=["sts.amazonaws.com"],
                                                   ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"])
        expected["oidcProviderArn"] = oidc["OpenIDConnectProviderArn"]
    finally:
        code = srv.stop()
        srv.dispose()
    assert code == 0, f"berth serve exited {code}\n{srv.log_tail()}"

    data = base / "data"
    db = sqlite3.connect(data / "berth.db")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    expected["tables"] = {n: db.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]
                          for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")}
    db.close()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    shutil.copytree(data, out_dir, ignore=shutil.ignore_patterns("berth.db-wal", "berth.db-shm"))
    (out_dir / "expected.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(base, ignore_errors=True)
    print(json.dumps(expected["tables"], indent=1))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
