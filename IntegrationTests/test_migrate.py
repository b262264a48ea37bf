"""`berth admin migrate --to-config FILE`: an embedded registry (SQLite + files) moved up to PostgreSQL + S3.

An embedded server gets real content — the fixture images pushed with skopeo (one repository stored in
plaintext, one AES256, one KMS-encrypted with a customer key), an IAM user with an access key and a policy,
a lifecycle policy, a finished scan — and is stopped. The migration into a throwaway PostgreSQL database
and a SeaweedFS bucket is killed with SIGKILL twice (once copying blobs, once copying tables) and run a
third time, which must complete with every count equal; a fourth run finds it complete. `berth serve` on
the target configuration then serves the same registry: the same repositories, tags and digests, images
pulled back byte for byte (the KMS one decrypting), the old access keys working, the lifecycle policy and
the scan findings there. The source directory is byte-for-byte unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import boto3
import pytest

from berth_helpers import FIXTURES_DIR, unique
from ecr_helpers import (ECRServer, ECRSession, aws_service, check_after_test, default_env, aws_cli,  # noqa: F401
                         skopeo_ecr, skopeo_path, write_oci_layout)
from test_postgres import pg_database, psql  # noqa: F401 (fixture)
from test_s3 import ACCESS_KEY, BUCKET, SECRET_KEY, seaweed  # noqa: F401 (fixture)

MINBASE = FIXTURES_DIR / "images" / "debian-minbase"
TINY = FIXTURES_DIR / "images" / "debian-tiny-vuln"
LIFECYCLE = json.dumps({"rules": [{"rulePriority": 1, "description": "keep 5", "selection": {
    "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}}]})


def tree_digest(root: Path) -> dict:
    """sha256 of every file under `root`, the lock files and SQLite's empty shared-memory files left out."""
    out = {}
    for f in sorted(root.rglob("*")):
        if f.is_file() and "-lease-" not in f.name and not f.name.endswith(("-wal", "-shm")):
            out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def registry_state(s: ECRSession) -> dict:
    """Repositories with their settings, and every image's digest, tags and size."""
    state = {}
    for r in s.client.describe_repositories()["repositories"]:
        name = r["repositoryName"]
        images = s.client.describe_images(repositoryName=name)["imageDetails"]
        state[name] = {
            "uri": r["repositoryUri"], "encryption": r["encryptionConfiguration"],
            "mutability": r["imageTagMutability"],
            "images": sorted((i["imageDigest"], tuple(sorted(i.get("imageTags", []))), i["imageSizeInBytes"]) for i in images),
        }
    return state


def pull_all(skopeo, session: ECRSession, state: dict, out: Path) -> dict:
    """Every tagged image pulled with skopeo into `out/<repo>/<tag>`; the sha256 of each file."""
    skopeo.login(session)
    files = {}
    for repo, info in state.items():
        for _, tags, _ in info["images"]:
            for tag in tags:
                d = out / repo.replace("/", "_") / tag
                d.parent.mkdir(parents=True, exist_ok=True)
                skopeo.copy(f"docker://{session.server.hostport}/{repo}:{tag}", f"dir:{d}")
                files.update({f"{repo}:{tag}/{f.name}": hashlib.sha256(f.read_bytes()).hexdigest()
                              for f in d.iterdir() if f.name != "version"})
    return files


def migrate(berth_bin, data_dir: Path, config: Path, *extra) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "AWS_", "PG"))}
    return subprocess.Popen([str(berth_bin), "admin", "migrate", "--data-dir", str(data_dir), "--to-config", str(config), *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def migrate_until(berth_bin, data_dir: Path, config: Path, marker: str, count: int) -> list:
    """A migration killed with SIGKILL once `count` progress lines containing `marker` went by; its lines."""
    p = migrate(berth_bin, data_dir, config, "--batch-size", "1")
    seen, lines = 0, []
    for raw in p.stderr:
        line = raw.decode(errors="replace").rstrip()
        lines.append(line)
        if marker in line:
            seen += 1
            if seen >= count:
                p.send_signal(signal.SIGKILL)
                break
    p.wait(30)
    p.stdout.close()
    p.stderr.close()
    assert p.returncode == -signal.SIGKILL, f"the migration ended before it was killed ({p.returncode}):\n" + "\n".join(lines[-20:])
    return lines


def test_migrate_an_embedded_registry_to_postgres_and_s3(berth_bin, pg_database, seaweed, skopeo_ecr, tmp_path):
    if not (MINBASE.is_dir() and TINY.is_dir() and (FIXTURES_DIR / "vulndb").is_dir()):
        pytest.fail(f"shared fixtures not found at {FIXTURES_DIR}", pytrace=False)
    src = ECRServer(berth_bin, tmp_path / "src", env={**default_env(), "BERTH_SCAN_POLL_SECONDS": "1",
                                                      "BERTH_ENCRYPT_BLOBS": "false"})
    # 1. Content: a plaintext repository first (blobs stored as pushed), then encryption on for the rest.
    src.start()
    root = ECRSession(src, *src.root_credentials, tmp=tmp_path)
    root.client.create_repository(repositoryName="plain/gen")
    generated = write_oci_layout(tmp_path / "generated", tag="v1", n_layers=2, layer_size=70_000)
    skopeo_ecr.login(root)
    skopeo_ecr.copy(f"oci:{generated.root}:v1", f"docker://{src.hostport}/plain/gen:v1", "--preserve-digests")
    src.stop()
    src.env["BERTH_ENCRYPT_BLOBS"] = "true"
    src.start()
    root = ECRSession(src, *src.root_credentials, tmp=tmp_path)
    subprocess.run([str(berth_bin), "vulndb", "import", str(FIXTURES_DIR / "vulndb"), "--data-dir", str(src.data_dir)],
                   check=True, capture_output=True, timeout=300, env=src.process_env())
    kms = boto3.client("kms", endpoint_url=src.url, region_name="us-east-1", aws_access_key_id=root.access_key,
                       aws_secret_access_key=root.secret_key)
    key = kms.create_key(Description="migrated key")["KeyMetadata"]
    kms.create_alias(AliasName="alias/migrated", TargetKeyId=key["KeyId"])
    root.client.create_repository(repositoryName="app/minbase")
    root.client.create_repository(repositoryName="secure/tiny", imageScanningConfiguration={"scanOnPush": True},
                                  encryptionConfiguration={"encryptionType": "KMS", "kmsKey": "alias/migrated"})
    skopeo_ecr.login(root)
    skopeo_ecr.copy(f"oci:{MINBASE}:bookworm", f"docker://{src.hostport}/app/minbase:bookworm")
    skopeo_ecr.copy(f"docker://{src.hostport}/app/minbase:bookworm", f"docker://{src.hostport}/app/minbase:stable")
    skopeo_ecr.copy(f"oci:{TINY}:1", f"docker://{src.hostport}/secure/tiny:1")
    root.client.put_lifecycle_policy(repositoryName="app/minbase", lifecyclePolicyText=LIFECYCLE)
    user = unique("puller")
    aws_service(root, "iam", "create-user", "--user-name", user)
    aws_service(root, "iam", "put-user-policy", "--user-name", user, "--policy-name", "read", "--policy-document", json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}]}))
    user_key = aws_service(root, "iam", "create-access-key", "--user-name", user)["AccessKey"]
    root.cli("wait", "image-scan-complete", "--repository-name", "secure/tiny", "--image-id", "imageTag=1", timeout=180)
    findings = root.client.describe_image_scan_findings(repositoryName="secure/tiny", imageId={"imageTag": "1"})
    assert findings["imageScanStatus"]["status"] == "COMPLETE"
    scanned = findings["imageScanFindings"]["findingSeverityCounts"]

    before = registry_state(root)
    assert set(before) == {"plain/gen", "app/minbase", "secure/tiny"}
    pulled_before = pull_all(skopeo_ecr, root, before, tmp_path / "pulled-src")
    check_after_test(src, [root])

    # 2. The target: PostgreSQL + the bucket, its own data directory.
    dst_dir = tmp_path / "dst" / "data"
    dst_dir.mkdir(parents=True)
    target = tmp_path / "target.json"
    target.write_text(json.dumps({
        "dataDir": str(dst_dir), "metadataBackend": "postgres", "postgresURL": pg_database,
        "blobBackend": "s3", "s3Endpoint": seaweed.endpoint, "s3Bucket": BUCKET, "s3Region": "us-east-1",
        "s3PathStyle": True, "s3AccessKeyId": ACCESS_KEY, "s3SecretAccessKey": SECRET_KEY}))

    # Refused while the server has the source open.
    p = migrate(berth_bin, src.data_dir, target)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1 and b"has " in err and b"open" in err, err.decode(errors="replace")
    src.stop()
    source_files = tree_digest(src.data_dir)

    # Refused without the source's master key (and it says what to do).
    p = migrate(berth_bin, src.data_dir, target)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1 and b"master key" in err and b"copy" in err, err.decode(errors="replace")
    shutil.copy2(src.data_dir / "master.key", dst_dir / "master.key")
    os.chmod(dst_dir / "master.key", 0o600)

    # The number of blobs copied at once is bounded (default 4), and checked.
    for bad in ("0", "65"):
        p = migrate(berth_bin, src.data_dir, target, "--blob-concurrency", bad)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 2 and b"--blob-concurrency must be 1" in err, err.decode(errors="replace")

    # 3. Killed while copying blobs (four at a time: the kill lands with copies in flight), killed while
    # copying tables, then completed copying eight at a time.
    lines = migrate_until(berth_bin, src.data_dir, target, " copied (", 2)
    assert any(" blob sha256:" in line for line in lines)
    lines = migrate_until(berth_bin, src.data_dir, target, " table ", 3)
    assert any("already in the target" in line for line in lines), "the second run re-copied the blobs of the first"
    assert psql(pg_database, "SELECT completed_at IS NULL FROM berth_import") == "t"
    p = migrate(berth_bin, src.data_dir, target, "--blob-concurrency", "8")
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode(errors="replace")[-4000:]
    summary = json.loads(out)
    assert summary["resumed"] and not summary["alreadyComplete"]
    assert all(t["sourceRows"] == t["targetRows"] for t in summary["tables"]), summary["tables"]
    rows = {t["name"]: t["targetRows"] for t in summary["tables"]}
    assert rows["repositories"] == 3 and rows["kms_keys"] >= 1 and rows["iam_entities"] >= 1 and rows["image_scans"] >= 1
    blobs = summary["blobs"]
    assert blobs["total"] == blobs["verifiedPlain"] + blobs["verifiedSealed"] + blobs["sizeCheckedOnly"]
    assert blobs["verifiedPlain"] == 3 and blobs["verifiedSealed"] >= 5, blobs
    assert blobs["alreadyPresent"] >= 2 and blobs["missingInSource"] == []
    assert "[1/" in err.decode() and "verified sha256:" in err.decode()
    stored = seaweed.keys("blobs/")
    assert len(stored) == blobs["total"]
    assert seaweed.keys("uploads/") == {}, "no staged upload left behind"

    # A fourth run finds the copy complete; the source is as it was.
    p = migrate(berth_bin, src.data_dir, target)
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0 and json.loads(out)["alreadyComplete"], err.decode(errors="replace")[-3000:]
    assert tree_digest(src.data_dir) == source_files, "the source data directory changed"

    # 4. The same registry, served from PostgreSQL + S3.
    dst = ECRServer(berth_bin, tmp_path / "dst", env=default_env(), extra_args=["--config", str(target)])
    dst.start()
    try:
        again = ECRSession(dst, *dst.root_credentials, tmp=tmp_path)
        after = registry_state(again)
        for info in list(before.values()) + list(after.values()):
            info["uri"] = info["uri"].split("/", 1)[1]  # the host:port differs
        assert after == before
        assert pull_all(skopeo_ecr, again, after, tmp_path / "pulled-dst") == pulled_before
        # The IAM user's old access key, the lifecycle policy, the KMS key and the scan findings came along.
        puller = ECRSession(dst, user_key["AccessKeyId"], user_key["SecretAccessKey"], tmp=tmp_path)
        assert puller.client.batch_get_image(repositoryName="secure/tiny", imageIds=[{"imageTag": "1"}])["images"]
        assert again.client.get_lifecycle_policy(repositoryName="app/minbase")["lifecyclePolicyText"] == LIFECYCLE
        kms = boto3.client("kms", endpoint_url=dst.url, region_name="us-east-1", aws_access_key_id=again.access_key,
                           aws_secret_access_key=again.secret_key)
        assert kms.describe_key(KeyId="alias/migrated")["KeyMetadata"]["KeyState"] == "Enabled"
        found = again.client.describe_image_scan_findings(repositoryName="secure/tiny", imageId={"imageTag": "1"})
        assert found["imageScanFindings"]["findingSeverityCounts"] == scanned
        # The registry goes on: a new repository and push (fresh ids after the copied ones).
        again.client.create_repository(repositoryName="after/migration")
        skopeo_ecr.login(again)
        skopeo_ecr.copy(f"oci:{TINY}:1", f"docker://{dst.hostport}/after/migration:1")
        assert len(again.client.describe_repositories()["repositories"]) == 4
        check_after_test(dst, [again, puller])
    finally:
        dst.dispose()
        src.dispose()
    assert tree_digest(src.data_dir) == source_files
