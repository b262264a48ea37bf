"""The audit trail (issue #16 section 2): every request on every door is recorded CloudTrail-shaped and
read back with the real `aws cloudtrail lookup-events`.

One server (the module's), driven by the account root and by IAM users: ECR API calls, a skopeo push
through `/v2/`, IAM and STS calls, a denied call, an unsigned call and a malformed one. Events are
written within about a second (the trail flushes every second), so lookups poll briefly.
"""
from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import requests

from berth_helpers import unique
from ecr_helpers import ACCOUNT_ID, create_repo, write_oci_layout
from ecr_helpers import ecr, ecr_server, skopeo_ecr, skopeo_path, aws_cli  # noqa: F401 (fixtures)
from test_access_control import READ_ONLY, Session, new_user, root, statement  # noqa: F401 (fixture)


def lookup(session: Session, key: str | None = None, value: str | None = None, want=lambda events: bool(events),
           timeout: float = 10.0) -> list:
    """`aws cloudtrail lookup-events` (every page), repeated until `want(events)` or the timeout."""
    args = ["lookup-events"]
    if key:
        args += ["--lookup-attributes", f"AttributeKey={key},AttributeValue={value}"]
    deadline = time.time() + timeout
    while True:
        events = session.aws_json("cloudtrail", *args).get("Events", [])
        if want(events) or time.time() > deadline:
            return events
        time.sleep(0.3)


def records(events: list) -> list:
    return [json.loads(e["CloudTrailEvent"]) for e in events]


def test_requests_on_every_door_are_recorded_and_looked_up_by_each_attribute(root, skopeo_ecr, tmp_path):
    repo = create_repo(root.client)["repositoryName"]
    # /v2/ traffic: a skopeo push is recorded under ECR's event names.
    skopeo_ecr.login(root)
    layout = write_oci_layout(tmp_path / "layout", "v1")
    skopeo_ecr.copy(f"oci:{layout.root}:v1", f"docker://{root.server.hostport}/{repo}:v1")
    # IAM: a user whose secret must never be recorded, and a denied call of that user.
    name, reader = new_user(root, attach=[READ_ONLY])
    secret = reader.secret_key
    denied_repo = unique("denied")
    p = reader.aws("ecr", "create-repository", "--repository-name", denied_repo, check=False)
    assert p.returncode != 0 and b"AccessDeniedException" in p.stderr
    # Unsigned and malformed requests on the ECR JSON door.
    target = "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"
    r = requests.post(root.server.url + "/", data="{}", headers={"X-Amz-Target": target,
                                                               "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code in (400, 403)
    root.aws("sts", "get-caller-identity")
    r = requests.post(root.server.url + "/", data="{not json", headers={"X-Amz-Target": target,
                                                                      "Content-Type": "application/x-amz-json-1.1"})
    assert r.status_code == 400

    created = lookup(root, "EventName", "CreateRepository",
                     want=lambda ev: any(json.loads(e["CloudTrailEvent"])["requestParameters"]["repositoryName"] == repo for e in ev))
    mine = [r for r in records(created) if r["requestParameters"]["repositoryName"] == repo]
    assert len(mine) == 1
    rec = mine[0]
    assert rec["eventSource"] == "ecr.amazonaws.com" and rec["awsRegion"] == root.region
    assert rec["userIdentity"]["type"] == "Root" and rec["userIdentity"]["accountId"] == ACCOUNT_ID
    assert rec["readOnly"] is False and "errorCode" not in rec and rec["eventVersion"] == "1.08"
    assert rec["resources"][0]["ARN"].endswith(f":repository/{repo}")
    # Event ids are version 7 UUIDs (time-ordered: the trail's indexes on them grow at their end).
    assert uuid.UUID(rec["eventID"]).version == 7 and str(uuid.UUID(rec["eventID"])) == rec["eventID"]

    # The push: InitiateLayerUpload … PutImage, with the repository as resource and parameters.
    by_repo = lookup(root, "ResourceName", repo, want=lambda ev: {"PutImage", "InitiateLayerUpload"} <= {e["EventName"] for e in ev})
    names = {e["EventName"] for e in by_repo}
    assert {"CreateRepository", "InitiateLayerUpload", "CompleteLayerUpload", "PutImage"} <= names, names
    put = next(r for r in records(by_repo) if r["eventName"] == "PutImage")
    assert put["requestParameters"]["repositoryName"] == repo and put["requestParameters"]["imageTag"] == "v1"
    assert put["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT_ID}:root"

    # The denied call, found by the user's name and by its access key.
    denied = lookup(root, "Username", name, want=lambda ev: any(e["EventName"] == "CreateRepository" for e in ev))
    refused = [r for r in records(denied) if r["eventName"] == "CreateRepository"]
    assert refused and refused[0]["errorCode"] == "AccessDeniedException" and "errorMessage" in refused[0]
    assert refused[0]["userIdentity"]["type"] == "IAMUser" and refused[0]["userIdentity"]["userName"] == name
    by_key = lookup(root, "AccessKeyId", reader.access_key, want=lambda ev: len(ev) >= 1)
    assert {e["EventName"] for e in by_key} >= {"CreateRepository"}

    # IAM and STS events by source; the unsigned request is recorded without an identity.
    iam_events = lookup(root, "EventSource", "iam.amazonaws.com", want=lambda ev: any(e["EventName"] == "CreateAccessKey" for e in ev))
    assert {"CreateUser", "CreateAccessKey", "AttachUserPolicy"} <= {e["EventName"] for e in iam_events}
    sts_events = lookup(root, "EventName", "GetCallerIdentity")
    assert sts_events and records(sts_events)[0]["eventSource"] == "sts.amazonaws.com"
    assert all(e["ReadOnly"] == "true" for e in lookup(root, "ReadOnly", "true"))

    # Successful /v2/ reads are not recorded by default (auditRegistryReads); a failed one is.
    missing = root.v2().get_manifest(repo, "no-such-tag")
    assert missing.status_code == 404
    reads = lookup(root, "EventName", "BatchGetImage", want=lambda ev: any(
        json.loads(e["CloudTrailEvent"]).get("errorCode") == "MANIFEST_UNKNOWN" for e in ev))
    assert reads and all(json.loads(e["CloudTrailEvent"]).get("errorCode") for e in reads), reads

    # The unsigned requests: recorded under the operation they asked for, with the error, without identity.
    unsigned = [r for r in records(lookup(root, "EventName", "DescribeRepositories", want=lambda ev: any(
        "userIdentity" not in json.loads(e["CloudTrailEvent"]) for e in ev))) if "userIdentity" not in r]
    assert len(unsigned) >= 2 and all(r["errorCode"] for r in unsigned), unsigned

    # The secret of the key CreateAccessKey returned is in no record, nor anywhere in the trail's file.
    everything = lookup(root, want=lambda ev: True)
    assert everything and all(secret not in e["CloudTrailEvent"] for e in everything)
    # `berth audit export`: the same records as JSON lines, oldest first, beside the running server.
    srv = root.server
    cmd = [str(srv.binary), "audit", "export", "--since", "2020-01-01", "--data-dir", str(srv.data_dir)]
    p = subprocess.run(cmd, capture_output=True, env=srv.process_env(), timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    lines = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert any(r["eventName"] == "CreateRepository" and r["requestParameters"]["repositoryName"] == repo for r in lines)
    assert [r["eventTime"] for r in lines] == sorted(r["eventTime"] for r in lines)
    assert secret.encode() not in p.stdout
    p = subprocess.run([*cmd[:4], "yesterday-ish", *cmd[5:]], capture_output=True, env=srv.process_env(), timeout=60,
                       stdin=subprocess.DEVNULL)
    assert p.returncode != 0 and b"not a time" in p.stderr
    trail_files = list(Path(root.server.data_dir).glob("audit.db*"))
    assert trail_files
    for f in trail_files:
        assert secret.encode() not in f.read_bytes()


def test_reading_the_trail_needs_cloudtrail_lookup_events(root):
    _, reader = new_user(root, attach=[READ_ONLY])
    p = reader.aws("cloudtrail", "lookup-events", check=False)
    assert p.returncode != 0 and b"AccessDeniedException" in p.stderr, p.stderr
    _, auditor = new_user(root, inline=[statement("Allow", ["cloudtrail:LookupEvents"])])
    time.sleep(1.2)  # policies are cached for at most a second
    assert "Events" in auditor.aws_json("cloudtrail", "lookup-events", "--max-results", "1")
    p = root.aws("cloudtrail", "lookup-events", "--start-time", "2030-01-01", "--end-time", "2020-01-01", check=False)
    assert p.returncode != 0 and b"InvalidTimeRangeException" in p.stderr
    p = root.aws("cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=Nope,AttributeValue=x", check=False)
    assert p.returncode != 0
