"""ECR lifecycle policies against `berth serve`, with boto3 and the aws CLI: Put/Get/DeleteLifecyclePolicy,
the policy grammar's InvalidParameterException, Start/GetLifecyclePolicyPreview (with Berth's index and
referrer awareness), `berth lifecycle run` on the server's data directory, and the schedule inside
`berth serve`. Shapes and errors from botocore's `ecr` model; semantics from AWS's lifecycle policy docs.
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

import berth_helpers as bh
from berth_helpers import EMPTY_JSON, OCI_EMPTY, sha256, unique
from ecr_helpers import (ACCOUNT_ID, assert_recent, create_repo, ensure_layer, expect_error, list_all_image_ids,
                         put_api_image, running_server, ECRSession, check_after_test)
from ecr_helpers import aws_cli, ecr, ecr_server  # noqa: F401 (fixtures)

IPE = "InvalidParameterException"
LPNF = "LifecyclePolicyNotFoundException"
PREVIEW_NF = "LifecyclePolicyPreviewNotFoundException"
RNF = "RepositoryNotFoundException"


def policy(*rules) -> str:
    return json.dumps({"rules": list(rules)})


def rule(priority, selection, action=None, description="berth integration test rule"):
    return {"rulePriority": priority, "description": description, "selection": selection,
            "action": action or {"type": "expire"}}


UNTAGGED_KEEP_1 = policy(rule(1, {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}))


def digests(client, repo) -> set:
    return {i["imageDigest"] for i in list_all_image_ids(client, repo)}


def run_lifecycle(server, *args) -> subprocess.CompletedProcess:
    cmd = [str(server.binary), "lifecycle", "run", "--data-dir", str(server.data_dir), *args]
    p = subprocess.run(cmd, capture_output=True, timeout=120, stdin=subprocess.DEVNULL,
                       env=server.process_env(), cwd=str(server.log_dir))
    return p


# =============================================================================================
# Put / Get / Delete
# =============================================================================================
def test_put_get_delete_lifecycle_policy(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    expect_error(ecr.client.get_lifecycle_policy, LPNF, repositoryName=name)
    expect_error(ecr.client.delete_lifecycle_policy, LPNF, repositoryName=name)
    r = ecr.client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=UNTAGGED_KEEP_1)
    assert r["registryId"] == ACCOUNT_ID
    assert r["repositoryName"] == name
    assert json.loads(r["lifecyclePolicyText"]) == json.loads(UNTAGGED_KEEP_1)
    got = ecr.client.get_lifecycle_policy(repositoryName=name)
    assert got["lifecyclePolicyText"] == UNTAGGED_KEEP_1
    assert got["registryId"] == ACCOUNT_ID and got["repositoryName"] == name
    assert "lastEvaluatedAt" not in got, "never evaluated yet"
    # replacing it
    other = policy(rule(5, {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30}))
    ecr.client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=other)
    assert ecr.client.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"] == other
    d = ecr.client.delete_lifecycle_policy(repositoryName=name)
    assert d["lifecyclePolicyText"] == other
    expect_error(ecr.client.get_lifecycle_policy, LPNF, repositoryName=name)


def test_lifecycle_policy_unknown_repository(ecr):
    missing = unique("missing")
    expect_error(ecr.client.put_lifecycle_policy, RNF, repositoryName=missing, lifecyclePolicyText=UNTAGGED_KEEP_1)
    expect_error(ecr.client.get_lifecycle_policy, RNF, repositoryName=missing)
    expect_error(ecr.client.delete_lifecycle_policy, RNF, repositoryName=missing)
    expect_error(ecr.client.start_lifecycle_policy_preview, RNF, repositoryName=missing)
    expect_error(ecr.client.get_lifecycle_policy_preview, RNF, repositoryName=missing)


def test_deleting_the_repository_deletes_its_policy(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    ecr.client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=UNTAGGED_KEEP_1)
    ecr.client.delete_repository(repositoryName=name, force=True)
    create_repo(ecr.client, name)
    expect_error(ecr.client.get_lifecycle_policy, LPNF, repositoryName=name)


def test_lifecycle_policy_with_cli(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    out = ecr.cli_json("put-lifecycle-policy", "--repository-name", name, "--lifecycle-policy-text", UNTAGGED_KEEP_1)
    assert out["repositoryName"] == name
    out = ecr.cli_json("get-lifecycle-policy", "--repository-name", name)
    assert json.loads(out["lifecyclePolicyText"]) == json.loads(UNTAGGED_KEEP_1)
    p = ecr.cli("put-lifecycle-policy", "--repository-name", name, "--lifecycle-policy-text",
                policy(rule(1, {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1})), check=False)
    assert p.returncode != 0
    assert b"InvalidParameterException" in p.stderr and b"Lifecycle policy validation failure" in p.stderr, p.stderr[-1000:]
    out = ecr.cli_json("delete-lifecycle-policy", "--repository-name", name)
    assert out["repositoryName"] == name
    p = ecr.cli("get-lifecycle-policy", "--repository-name", name, check=False)
    assert p.returncode != 0 and b"LifecyclePolicyNotFoundException" in p.stderr


INVALID = [
    ("tagged without list", policy(rule(1, {"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1})),
     "tagPrefixList or tagPatternList must be specified when tagStatus is 'tagged'"),
    ("both lists", policy(rule(1, {"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["a*"],
                                   "countType": "imageCountMoreThan", "countNumber": 1})),
     "tagPrefixList and tagPatternList cannot both be specified"),
    ("untagged with list", policy(rule(1, {"tagStatus": "untagged", "tagPrefixList": ["a"], "countType": "imageCountMoreThan",
                                           "countNumber": 1})),
     "can only be specified when tagStatus is 'tagged'"),
    ("missing countUnit", policy(rule(1, {"tagStatus": "any", "countType": "sinceImagePushed", "countNumber": 3})),
     "countUnit is required when countType is 'sinceImagePushed'"),
    ("countUnit with count", policy(rule(1, {"tagStatus": "any", "countType": "imageCountMoreThan", "countUnit": "days",
                                             "countNumber": 3})),
     "countUnit cannot be specified when countType is 'imageCountMoreThan'"),
    ("countNumber 0", policy(rule(1, {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 0})),
     "numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
    ("duplicate priorities", policy(rule(1, {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1}),
                                    rule(1, {"tagStatus": "tagged", "tagPrefixList": ["v"], "countType": "imageCountMoreThan",
                                             "countNumber": 1})),
     "rulePriority 1 is used by more than one rule"),
    ("any not last", policy(rule(1, {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}),
                            rule(2, {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1})),
     "the rule with tagStatus 'any' (rulePriority 1) must have the highest rulePriority value"),
    ("transition without target", policy(rule(1, {"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "days",
                                                  "countNumber": 1}, {"type": "transition"})),
     "targetStorageClass is required when the action type is 'transition'"),
    ("bad enum", policy(rule(1, {"tagStatus": "all", "countType": "imageCountMoreThan", "countNumber": 1})),
     'instance value ("all") not found in enum'),
    ("not JSON", "{" + "x" * 120, "the lifecycle policy is not valid JSON"),
    ("too long", policy(rule(1, {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
                             description="d" * 31_000)),
     "Member must have length less than or equal to 30720"),
    ("too short", '{"rules":[]}', "Member must have length greater than or equal to 100"),
]


@pytest.mark.parametrize("what, text, message", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_lifecycle_policies(ecr, what, text, message):
    name = create_repo(ecr.client)["repositoryName"]
    e = expect_error(ecr.raw.put_lifecycle_policy, IPE, repositoryName=name, lifecyclePolicyText=text)
    got = e.response["Error"]["Message"]
    assert message in got, got
    if "length" not in message:
        assert got.startswith("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
                              "'Lifecycle policy validation failure: "), got
    expect_error(ecr.raw.start_lifecycle_policy_preview, IPE, repositoryName=name, lifecyclePolicyText=text)
    expect_error(ecr.client.get_lifecycle_policy, LPNF, repositoryName=name)


# =============================================================================================
# Preview
# =============================================================================================
def test_lifecycle_policy_preview(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    expect_error(ecr.client.get_lifecycle_policy_preview, PREVIEW_NF, repositoryName=name)
    expect_error(ecr.client.start_lifecycle_policy_preview, LPNF, repositoryName=name)
    old = [put_api_image(ecr.client, name) for _ in range(3)]      # untagged, oldest first
    tagged = put_api_image(ecr.client, name, tag="v1")
    r = ecr.client.start_lifecycle_policy_preview(repositoryName=name, lifecyclePolicyText=UNTAGGED_KEEP_1)
    assert r["status"] in ("IN_PROGRESS", "COMPLETE")
    assert r["lifecyclePolicyText"] == UNTAGGED_KEEP_1
    p = ecr.client.get_lifecycle_policy_preview(repositoryName=name)
    assert p["status"] == "COMPLETE"
    assert p["lifecyclePolicyText"] == UNTAGGED_KEEP_1
    results = p["previewResults"]
    assert [x["imageDigest"] for x in results] == [old[0].digest, old[1].digest]
    for x in results:
        assert x["action"] == {"type": "EXPIRE"}
        assert x["appliedRulePriority"] == 1
        assert x["storageClass"] == "STANDARD"
        assert_recent(x["imagePushedAt"], "imagePushedAt")
    assert p["summary"]["expiringImageTotalCount"] == 2
    assert p["summary"].get("transitioningImageTotalCounts", []) == []
    # paging
    first = ecr.client.get_lifecycle_policy_preview(repositoryName=name, maxResults=1)
    assert [x["imageDigest"] for x in first["previewResults"]] == [old[0].digest]
    second = ecr.client.get_lifecycle_policy_preview(repositoryName=name, maxResults=1, nextToken=first["nextToken"])
    assert [x["imageDigest"] for x in second["previewResults"]] == [old[1].digest]
    assert "nextToken" not in second
    # filter
    assert ecr.client.get_lifecycle_policy_preview(repositoryName=name, filter={"tagStatus": "TAGGED"})["previewResults"] == []
    assert len(ecr.client.get_lifecycle_policy_preview(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["previewResults"]) == 2
    # the preview changed nothing
    assert digests(ecr.client, name) == {i.digest for i in old} | {tagged.digest}
    # a preview of the stored policy
    keep_tagged_0 = policy(rule(3, {"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "sinceImagePushed",
                                    "countUnit": "days", "countNumber": 1}, {"type": "transition", "targetStorageClass": "archive"}),
                           rule(4, {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2}))
    ecr.client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=keep_tagged_0)
    ecr.client.start_lifecycle_policy_preview(repositoryName=name)
    p = ecr.client.get_lifecycle_policy_preview(repositoryName=name)
    assert p["lifecyclePolicyText"] == keep_tagged_0
    assert [(x["imageDigest"], x["appliedRulePriority"]) for x in p["previewResults"]] == [(old[0].digest, 4)]


def test_lifecycle_preview_survives_a_restart(ecr, ecr_server):
    """The preview is kept in the metadata store (a day, as before), not in the server's memory."""
    name = create_repo(ecr.client)["repositoryName"]
    old = [put_api_image(ecr.client, name) for _ in range(3)]
    put_api_image(ecr.client, name, tag="v1")
    ecr.client.start_lifecycle_policy_preview(repositoryName=name, lifecyclePolicyText=UNTAGGED_KEEP_1)
    before = ecr.client.get_lifecycle_policy_preview(repositoryName=name)
    assert [x["imageDigest"] for x in before["previewResults"]] == [old[0].digest, old[1].digest]
    ecr_server.restart()
    after = ecr.client.get_lifecycle_policy_preview(repositoryName=name)
    for member in ("lifecyclePolicyText", "status", "previewResults", "summary"):
        assert after[member] == before[member], member
    by_id = ecr.client.get_lifecycle_policy_preview(repositoryName=name, imageIds=[{"imageDigest": old[1].digest}])
    assert [x["imageDigest"] for x in by_id["previewResults"]] == [old[1].digest]
    assert by_id["summary"]["expiringImageTotalCount"] == 1
    # Deleting the repository deletes its preview.
    ecr.client.delete_repository(repositoryName=name, force=True)
    create_repo(ecr.client, name=name)
    expect_error(ecr.client.get_lifecycle_policy_preview, PREVIEW_NF, repositoryName=name)


def test_lifecycle_preview_with_cli(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    imgs = [put_api_image(ecr.client, name) for _ in range(2)]
    out = ecr.cli_json("start-lifecycle-policy-preview", "--repository-name", name, "--lifecycle-policy-text", UNTAGGED_KEEP_1)
    assert out["repositoryName"] == name
    out = ecr.cli_json("get-lifecycle-policy-preview", "--repository-name", name)
    assert out["status"] == "COMPLETE"
    assert [x["imageDigest"] for x in out["previewResults"]] == [imgs[0].digest]
    assert out["summary"]["expiringImageTotalCount"] == 1


def _index_repo(ecr, name):
    """An index tagged `multi` over two untagged platform manifests, a loose untagged image, and a
    tagged `old` image with a referrer (an SBOM), in push order."""
    amd = put_api_image(ecr.client, name)
    arm = put_api_image(ecr.client, name)
    index = bh.make_index([amd.descriptor(platform={"architecture": "amd64", "os": "linux"}),
                           arm.descriptor(platform={"architecture": "arm64", "os": "linux"})])
    ecr.client.put_image(repositoryName=name, imageManifest=index.decode(), imageTag="multi")
    old = put_api_image(ecr.client, name, tag="old-1")
    ensure_layer(ecr.client, name, EMPTY_JSON)
    sbom = b'{"spdxVersion":"SPDX-2.3","name":"berth-lifecycle"}'
    ensure_layer(ecr.client, name, sbom)
    referrer = bh.make_manifest(bh.descriptor(OCI_EMPTY, EMPTY_JSON), [bh.descriptor("application/spdx+json", sbom)],
                                artifactType="application/spdx+json", subject=old.descriptor())
    ecr.client.put_image(repositoryName=name, imageManifest=referrer.decode())
    loose = put_api_image(ecr.client, name)
    newer_old = put_api_image(ecr.client, name, tag="old-2")
    return dict(amd=amd.digest, arm=arm.digest, index=sha256(index), old=old.digest, sbom=sha256(referrer),
                loose=loose.digest, old2=newer_old.digest)


# rule 1: keep one `old*` image; rule 2: keep two untagged images (the newest: the SBOM and the loose one),
# so it marks the two platform manifests
INDEX_POLICY = policy(rule(1, {"tagStatus": "tagged", "tagPrefixList": ["old"], "countType": "imageCountMoreThan", "countNumber": 1}),
                      rule(2, {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 2}))


def test_preview_is_index_and_referrer_aware(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    d = _index_repo(ecr, name)
    ecr.client.start_lifecycle_policy_preview(repositoryName=name, lifecyclePolicyText=INDEX_POLICY)
    p = ecr.client.get_lifecycle_policy_preview(repositoryName=name)
    got = [(x["imageDigest"], x["appliedRulePriority"]) for x in p["previewResults"]]
    # the platform manifests stay (the kept index lists them); old-1 expires and its SBOM with it
    # (the untagged rule would keep the SBOM, but its subject goes)
    assert got == [(d["old"], 1), (d["sbom"], 1)], got
    assert p["summary"]["expiringImageTotalCount"] == 2


# =============================================================================================
# berth lifecycle run, and the schedule
# =============================================================================================
def test_berth_lifecycle_run(ecr, ecr_server):
    name = create_repo(ecr.client)["repositoryName"]
    d = _index_repo(ecr, name)
    before = digests(ecr.client, name)
    # no policy yet: a clear error
    p = run_lifecycle(ecr_server, "--repository", name)
    assert p.returncode != 0 and b"no lifecycle policy" in p.stderr, p.stderr
    ecr.client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=INDEX_POLICY)
    p = run_lifecycle(ecr_server, "--repository", name, "--dry-run")
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    lines = out.strip().splitlines()
    assert any(d["old"] in l and "would expire" in l for l in lines), out
    assert any(d["sbom"] in l and "would expire" in l and f"with its subject {d['old']}" in l for l in lines), out
    assert any(d["amd"] in l and "kept (listed by index" in l for l in lines), out
    assert lines[-1].startswith("1 repositories: 2 images would expire"), out
    assert digests(ecr.client, name) == before, "a dry run changes nothing"
    p = run_lifecycle(ecr_server, "--repository", name, "--account", ACCOUNT_ID)
    out = p.stdout.decode()
    assert p.returncode == 0, p.stderr.decode()
    assert any(d["old"] in l and "\texpired\t" in l for l in out.splitlines()), out
    assert out.strip().splitlines()[-1].startswith("1 repositories: 2 images expired"), out
    assert digests(ecr.client, name) == before - {d["old"], d["sbom"]}
    time.sleep(1.2)  # the server's repository cache (1 s) sees the run's lastEvaluatedAt
    got = ecr.client.get_lifecycle_policy(repositoryName=name)
    assert_recent(got["lastEvaluatedAt"], "lastEvaluatedAt")
    # the kept index still pulls with its platform manifests
    imgs = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "multi"}])["images"]
    assert imgs and imgs[0]["imageId"]["imageDigest"] == d["index"]
    # a second run has nothing left to do
    p = run_lifecycle(ecr_server, "--repository", name)
    assert p.stdout.decode().strip().splitlines()[-1].startswith("1 repositories: 0 images expired"), p.stdout


def test_lifecycle_runs_on_schedule(berth_bin, tmp_path):
    with running_server(berth_bin, tmp_path / "sched", BERTH_LIFECYCLE_INTERVAL_SECONDS="1") as srv:
        s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        name = create_repo(s.client)["repositoryName"]
        imgs = [put_api_image(s.client, name) for _ in range(3)]
        s.client.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=UNTAGGED_KEEP_1)
        deadline = time.time() + 20
        while time.time() < deadline and digests(s.client, name) != {imgs[2].digest}:
            time.sleep(0.3)
        assert digests(s.client, name) == {imgs[2].digest}
        assert_recent(s.client.get_lifecycle_policy(repositoryName=name)["lastEvaluatedAt"], "lastEvaluatedAt")
        check_after_test(srv, [s])
