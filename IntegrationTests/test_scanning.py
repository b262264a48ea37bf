"""ECR basic scanning end to end: `berth vulndb import`, scan on push with skopeo, findings read with
the aws CLI and boto3, registry scanning configuration, StartImageScan limits, and a CONTINUOUS_SCAN
rescan after a database update — against the real `berth serve`."""
from __future__ import annotations

import json
import subprocess
import time

import pytest

from berth_helpers import FIXTURES_DIR, unique
from ecr_helpers import (ECRSession, check_after_test, create_repo, ensure_layer, expect_error, running_server,
                         put_api_image, skopeo_ecr, skopeo_path, aws_cli)  # noqa: F401 (fixtures)

TINY = FIXTURES_DIR / "images" / "debian-tiny-vuln"
SEVERITIES = {"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"}


def vulndb(server: ECRServer, *args) -> subprocess.CompletedProcess:
    cmd = [str(server.binary), "vulndb", *args, "--data-dir", str(server.data_dir)]
    p = subprocess.run(cmd, capture_output=True, timeout=300, stdin=subprocess.DEVNULL, env=server.process_env())
    assert p.returncode == 0, f"{' '.join(cmd)}: {p.stderr.decode(errors='replace')[-3000:]}"
    return p


def import_fixture_vulndb(srv):
    """Imported while the server runs: it picks the database up within a poll, as in production."""
    vulndb(srv, "import", str(FIXTURES_DIR / "vulndb"))
    deadline = time.time() + 60
    while "vulnerability database loaded" not in srv.log_tail(200000) and time.time() < deadline:
        time.sleep(0.2)


@pytest.fixture(scope="module")
def scan_server(berth_bin, tmp_path_factory):
    if not (FIXTURES_DIR / "vulndb").is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES_DIR}", pytrace=False)
    with running_server(berth_bin, tmp_path_factory.mktemp("berth-scan"), BERTH_SCAN_POLL_SECONDS="1") as srv:
        import_fixture_vulndb(srv)
        yield srv


@pytest.fixture
def scan(scan_server, tmp_path):
    if not scan_server.alive():
        scan_server.start()
    s = ECRSession(scan_server, *scan_server.root_credentials, tmp=tmp_path)
    yield s
    check_after_test(scan_server, [s])


def wait_scan(client, repo: str, image_id: dict, timeout: float = 60.0) -> dict:
    deadline = time.time() + timeout
    while True:
        try:
            r = client.describe_image_scan_findings(repositoryName=repo, imageId=image_id)
            if r["imageScanStatus"]["status"] not in ("PENDING", "IN_PROGRESS"):
                return r
        except client.exceptions.ScanNotFoundException:
            pass
        assert time.time() < deadline, f"scan of {repo} {image_id} did not finish in {timeout}s"
        time.sleep(0.2)


def finding_key(f: dict) -> tuple:
    attrs = {a["key"]: a["value"] for a in f.get("attributes", [])}
    return f["name"], attrs.get("package_name"), attrs.get("package_version")


def push_tiny(skopeo, session, repo: str, tag: str = "1"):
    skopeo.login(session)
    skopeo.copy(f"oci:{TINY}:1", f"docker://{session.server.hostport}/{repo}:{tag}")


def test_vulndb_status_reports_counts_per_ecosystem(scan_server):
    out = vulndb(scan_server, "status").stdout.decode()
    assert "Debian:12\t1780" in out
    assert "PyPI\t2661" in out
    assert "npm\t449" in out
    assert "newest modified: 2025-02-16T11:19:04.364665Z" in out
    meta = json.loads(vulndb(scan_server, "status", "--json").stdout)
    assert meta["recordsByFeed"] == {"Alpine": 2545, "Debian": 1758, "Debian-DSA": 22, "PyPI": 2661, "npm": 449}


def test_scan_on_push_findings_read_with_the_aws_cli(scan, skopeo_ecr):
    repo = unique("scan")
    scan.cli("create-repository", "--repository-name", repo, "--image-scanning-configuration", "scanOnPush=true")
    push_tiny(skopeo_ecr, scan, repo)
    scan.cli("wait", "image-scan-complete", "--repository-name", repo, "--image-id", "imageTag=1", timeout=180)
    # The CLI follows nextToken itself; a small page size makes it walk several pages.
    doc = scan.cli_json("describe-image-scan-findings", "--repository-name", repo, "--image-id", "imageTag=1",
                        "--page-size", "10")
    assert doc["imageScanStatus"]["status"] == "COMPLETE"
    findings = doc["imageScanFindings"]["findings"]
    expected = json.loads((FIXTURES_DIR / "expected" / "debian-tiny-vuln.json").read_text())
    assert len(findings) == expected["finding_count"] == 64
    assert {finding_key(f) for f in findings} == {(f["id"], f["package"], f["installed_version"]) for f in expected["findings"]}
    negative = json.loads((FIXTURES_DIR / "expected" / "debian-tiny-vuln.negative.json").read_text())
    reported = {(name, pkg) for name, pkg, _ in map(finding_key, findings)}
    for what, ids in negative.items():
        if "must" not in what and "boundary" not in what:
            continue
        groups = ids.items() if isinstance(ids, dict) else [(what, ids)]
        for label, names in groups:
            for name in names:
                assert (name, label.split()[0].rstrip(":")) not in reported, f"{name}: {what}"
    for f in findings:
        assert f["severity"] in SEVERITIES and f["uri"].startswith("https://")
    counts = doc["imageScanFindings"]["findingSeverityCounts"]
    assert sum(counts.values()) == 64 and set(counts) <= SEVERITIES
    details = scan.cli_json("describe-images", "--repository-name", repo)["imageDetails"][0]
    assert details["imageScanStatus"]["status"] == "COMPLETE"
    assert details["imageScanFindingsSummary"]["findingSeverityCounts"] == counts
    assert "vulnerabilitySourceUpdatedAt" in details["imageScanFindingsSummary"]


def test_registry_scanning_configuration_drives_scan_on_push(scan, skopeo_ecr):
    c = scan.client
    c.put_registry_scanning_configuration(scanType="BASIC", rules=[
        {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "onpush-*", "filterType": "WILDCARD"}]}])
    try:
        got = c.get_registry_scanning_configuration()
        assert got["registryId"] == scan.server.account_id
        assert got["scanningConfiguration"]["rules"][0]["repositoryFilters"] == [{"filter": "onpush-*", "filterType": "WILDCARD"}]
        on, off = unique("onpush-"), unique("manual-")
        create_repo(c, on)
        create_repo(c, off)
        r = c.batch_get_repository_scanning_configuration(repositoryNames=[on, off, "missing-repo"])
        by_name = {x["repositoryName"]: x for x in r["scanningConfigurations"]}
        # `scanOnPush` is the repository's own flag, as ECR reports it; the rule shows in the frequency.
        assert by_name[on]["scanFrequency"] == "SCAN_ON_PUSH" and by_name[on]["scanOnPush"] is False
        assert by_name[on]["appliedScanFilters"] == [{"filter": "onpush-*", "filterType": "WILDCARD"}]
        assert by_name[off]["scanFrequency"] == "MANUAL" and by_name[off]["scanOnPush"] is False
        c.put_image_scanning_configuration(repositoryName=off, imageScanningConfiguration={"scanOnPush": True})
        flagged = c.batch_get_repository_scanning_configuration(repositoryNames=[off])["scanningConfigurations"][0]
        assert flagged["scanFrequency"] == "SCAN_ON_PUSH" and flagged["scanOnPush"] is True and flagged["appliedScanFilters"] == []
        c.put_image_scanning_configuration(repositoryName=off, imageScanningConfiguration={"scanOnPush": False})
        assert r["failures"] == [{"repositoryName": "missing-repo", "failureCode": "REPOSITORY_NOT_FOUND",
                                  "failureReason": "REPOSITORY_NOT_FOUND"}]
        push_tiny(skopeo_ecr, scan, on)
        push_tiny(skopeo_ecr, scan, off)
        assert wait_scan(c, on, {"imageTag": "1"})["imageScanStatus"]["status"] == "COMPLETE"
        time.sleep(1.5)
        expect_error(c.describe_image_scan_findings, "ScanNotFoundException", repositoryName=off, imageId={"imageTag": "1"})
        # On demand: once, then ECR's daily limit.
        started = c.start_image_scan(repositoryName=off, imageId={"imageTag": "1"})
        assert started["imageScanStatus"]["status"] in ("PENDING", "IN_PROGRESS", "COMPLETE")
        assert wait_scan(c, off, {"imageTag": "1"})["imageScanStatus"]["status"] == "COMPLETE"
        expect_error(c.start_image_scan, "LimitExceededException", repositoryName=off, imageId={"imageTag": "1"})
        expect_error(c.start_image_scan, "ImageNotFoundException", repositoryName=off, imageId={"imageTag": "nope"})
    finally:
        c.put_registry_scanning_configuration(scanType="BASIC", rules=[])


def test_invalid_scanning_configurations_are_refused(scan):
    raw = scan.raw
    expect_error(raw.put_registry_scanning_configuration, "ValidationException", scanType="DEEP")
    expect_error(raw.put_registry_scanning_configuration, "ValidationException",
                 rules=[{"scanFrequency": "HOURLY", "repositoryFilters": [{"filter": "*", "filterType": "WILDCARD"}]}])
    expect_error(raw.put_registry_scanning_configuration, "ValidationException",
                 rules=[{"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [{"filter": "UPPER", "filterType": "WILDCARD"}]}])
    expect_error(raw.batch_get_repository_scanning_configuration, "InvalidParameterException",
                 repositoryNames=[f"r{i}" * 2 for i in range(26)])
    expect_error(raw.describe_image_scan_findings, "RepositoryNotFoundException",
                 repositoryName="no-such-repo", imageId={"imageTag": "1"})


def test_unscannable_images_end_with_a_reason(scan):
    c = scan.client
    repo = create_repo(c)["repositoryName"]
    # Random bytes under a gzip layer media type: the scan fails cleanly with a reason.
    img = put_api_image(c, repo, tag="noise", layer_size=4000)
    c.start_image_scan(repositoryName=repo, imageId={"imageTag": "noise"})
    r = wait_scan(c, repo, {"imageTag": "noise"})
    assert r["imageScanStatus"]["status"] == "FAILED"
    assert r["imageScanStatus"]["description"]
    assert "imageScanFindings" not in r
    assert img.digest


def test_continuous_scan_rescans_after_a_database_import(scan, skopeo_ecr):
    c = scan.client
    repo = unique("cont-")
    c.put_registry_scanning_configuration(scanType="BASIC", rules=[
        {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [{"filter": "cont-*", "filterType": "WILDCARD"}]}])
    try:
        create_repo(c, repo)
        push_tiny(skopeo_ecr, scan, repo)
        first = wait_scan(c, repo, {"imageTag": "1"})
        assert first["imageScanStatus"]["status"] == "COMPLETE"
        before = first["imageScanFindings"]["imageScanCompletedAt"]
        vulndb(scan.server, "import", str(FIXTURES_DIR / "vulndb"))
        deadline = time.time() + 60
        while True:
            r = c.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "1"})
            done = r["imageScanStatus"]["status"] == "COMPLETE"
            if done and r["imageScanFindings"]["imageScanCompletedAt"] > before:
                break
            assert time.time() < deadline, "no rescan after the database import"
            time.sleep(0.3)
        assert len(r["imageScanFindings"]["findings"]) == len(first["imageScanFindings"]["findings"])
    finally:
        c.put_registry_scanning_configuration(scanType="BASIC", rules=[])


def push_tiny_zstd(skopeo, session, repo: str, tag: str = "zstd"):
    """The tiny image re-compressed with zstd (OCI `tar+zstd` layers). skopeo recompresses into a local
    layout (pushing with it directly would reuse the gzip layers it knows the registry has), and the
    blobs and manifest go in through the ECR layer API and PutImage."""
    layout = skopeo.workdir / f"zstd-{unique('l')}"
    skopeo.run("copy", "--format", "oci", "--dest-compress-format", "zstd", "--dest-compress",
               f"oci:{TINY}:1", f"oci:{layout}:{tag}")
    index = json.loads((layout / "index.json").read_text())
    blob = lambda d: (layout / "blobs" / "sha256" / d.split(":", 1)[1]).read_bytes()  # noqa: E731
    manifest_bytes = blob(index["manifests"][0]["digest"])
    manifest = json.loads(manifest_bytes)
    assert manifest["layers"] and all(l["mediaType"].endswith("+zstd") for l in manifest["layers"]), manifest
    c = session.client
    for d in [manifest["config"]["digest"]] + [l["digest"] for l in manifest["layers"]]:
        ensure_layer(c, repo, blob(d))
    c.put_image(repositoryName=repo, imageTag=tag, imageManifest=manifest_bytes.decode(),
                imageManifestMediaType=index["manifests"][0].get("mediaType", "application/vnd.oci.image.manifest.v1+json"))


def scan_new_zstd_image(skopeo, session, prefix: str):
    """A new repository with the zstd image, scanned on demand: (repository, final scan answer)."""
    c = session.client
    repo = unique(prefix)
    c.create_repository(repositoryName=repo)
    push_tiny_zstd(skopeo, session, repo)
    c.start_image_scan(repositoryName=repo, imageId={"imageTag": "zstd"})
    return repo, wait_scan(c, repo, {"imageTag": "zstd"}, timeout=180)


def test_zstd_layers_are_scanned_with_the_system_libzstd(scan, skopeo_ecr):
    # libzstd is opened at run time (no zstd headers at build time); a zstd image scans like the gzip one.
    c = scan.client
    repo, r = scan_new_zstd_image(skopeo_ecr, scan, "zstd")
    assert r["imageScanStatus"]["status"] == "COMPLETE", r["imageScanStatus"]
    findings = list(r["imageScanFindings"]["findings"])
    while r.get("nextToken"):
        r = c.describe_image_scan_findings(repositoryName=repo, imageId={"imageTag": "zstd"}, nextToken=r["nextToken"])
        findings += r["imageScanFindings"]["findings"]
    expected = json.loads((FIXTURES_DIR / "expected" / "debian-tiny-vuln.json").read_text())
    assert {finding_key(f) for f in findings} == {(f["id"], f["package"], f["installed_version"]) for f in expected["findings"]}


def test_without_libzstd_a_zstd_layer_scan_fails_with_the_reason(berth_bin, tmp_path_factory, skopeo_ecr, tmp_path):
    # As on a machine without Debian's libzstd1: the server runs and pushes work; the scan of a zstd layer
    # ends FAILED and says what is missing (gzip images still scan).
    with running_server(berth_bin, tmp_path_factory.mktemp("berth-nozstd"), BERTH_SCAN_POLL_SECONDS="1",
                        BERTH_ZSTD_LIBRARY="/nonexistent/libzstd.so.1") as srv:
        import_fixture_vulndb(srv)
        s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        c = s.client
        repo, r = scan_new_zstd_image(skopeo_ecr, s, "nozstd")
        assert r["imageScanStatus"]["status"] == "FAILED", r["imageScanStatus"]
        assert "libzstd1" in r["imageScanStatus"]["description"], r["imageScanStatus"]
        push_tiny(skopeo_ecr, s, repo, tag="gz")
        c.start_image_scan(repositoryName=repo, imageId={"imageTag": "gz"})
        assert wait_scan(c, repo, {"imageTag": "gz"}, timeout=120)["imageScanStatus"]["status"] == "COMPLETE"
        check_after_test(srv, [s])
