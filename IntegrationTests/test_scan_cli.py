"""`berth scan oci:DIR:TAG --vulndb DIR`, the real binary, against the shared scanner fixtures."""
import json
import subprocess

import pytest

from berth_helpers import FIXTURES_DIR, berth_binary


def run_scan(layout: str, tag: str) -> dict:
    if not (FIXTURES_DIR / "vulndb").is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES_DIR}")
    p = subprocess.run([str(berth_binary()), "scan", f"oci:{FIXTURES_DIR / 'images' / layout}:{tag}",
                        "--vulndb", str(FIXTURES_DIR / "vulndb")],
                       capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-3000:]
    return json.loads(p.stdout)


def test_tiny_vuln_findings_are_exactly_the_expected_ones():
    report = run_scan("debian-tiny-vuln", "1")
    expected = json.loads((FIXTURES_DIR / "expected" / "debian-tiny-vuln.json").read_text())
    negative = json.loads((FIXTURES_DIR / "expected" / "debian-tiny-vuln.negative.json").read_text())

    def key(f):
        attrs = {a["key"]: a["value"] for a in f.get("attributes", [])}
        return (f["name"], attrs.get("package_name"), attrs.get("package_version"))

    got = {key(f) for f in report["findings"]}
    want = {(f["id"], f["package"], f["installed_version"]) for f in expected["findings"]}
    assert len(report["findings"]) == expected["finding_count"]
    assert got == want
    by_package = {(name, pkg) for name, pkg, _ in got}
    # negative.json: "<package> ... - must not be reported" -> ids, or {"<package> <version>": ids}
    for what, ids in negative.items():
        if "must" not in what and "boundary" not in what:
            continue  # e.g. "reported only when …": a hint about a finding that *is* expected
        groups = ids.items() if isinstance(ids, dict) else [(what, ids)]
        for label, names in groups:
            package = label.split()[0].rstrip(":")
            for name in names:
                assert (name, package) not in by_package, f"{name} reported for {package}: {what}"


def test_minbase_scans_every_installed_package():
    report = run_scan("debian-minbase", "bookworm")
    assert report["packages"] == 88
    assert sum(report["findingSeverityCounts"].values()) == len(report["findings"])
    assert set(report["findingSeverityCounts"]) <= {"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED"}
