"""Real clients against a real `berth serve`: skopeo (containers/image) and oras-py.

A missing client is a FAILURE, never a skip (CI rule): skopeo comes from Debian's `skopeo` package,
oras-py from PyPI (`pip install oras`, the 0.2.x SDK). Missing ../shared/fixtures skips the skopeo
tests that need the fixture images, with a message saying so.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path

import pytest

import berth_helpers as bh
from berth_helpers import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, describe, sha256, unique

SKOPEO = os.environ.get("SKOPEO", "/usr/bin/skopeo")


# =============================================================================================
# skopeo
# =============================================================================================
class Skopeo:
    def __init__(self, path: str, workdir: Path):
        self.path = path
        self.workdir = workdir
        self.policy = workdir / "policy.json"
        self.policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        self.auth = workdir / "auth.json"
        self.auth.write_text("{}")
        self.env = {**os.environ, "REGISTRY_AUTH_FILE": str(self.auth), "TMPDIR": str(workdir)}

    def run(self, *args, check=True, timeout=600) -> subprocess.CompletedProcess:
        self.auth.write_text(json.dumps({"auths": bh.auth_file_entries()}))
        cmd = [self.path, "--policy", str(self.policy), *args]
        p = subprocess.run(cmd, capture_output=True, env=self.env, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\nstdout: "
                                 f"{p.stdout.decode(errors='replace')[-3000:]}\nstderr: "
                                 f"{p.stderr.decode(errors='replace')[-3000:]}")
        return p

    def copy(self, src, dst, *extra):
        return self.run("copy", "--retry-times", "0", "--src-tls-verify=false",
                        "--dest-tls-verify=false", *extra, src, dst)


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory) -> Skopeo:
    path = shutil.which(SKOPEO) or (SKOPEO if os.access(SKOPEO, os.X_OK) else None)
    if not path:
        pytest.fail(f"skopeo not found at {SKOPEO}: install it (apt-get install -y skopeo); "
                    f"client tests are required and never skipped", pytrace=False)
    return Skopeo(path, tmp_path_factory.mktemp("skopeo"))


class Layout:
    """An OCI image layout on disk."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.index = json.loads((self.root / "index.json").read_text())

    def blob_path(self, digest: str) -> Path:
        alg, enc = digest.split(":", 1)
        return self.root / "blobs" / alg / enc

    def blob(self, digest: str) -> bytes:
        return self.blob_path(digest).read_bytes()

    def ref(self, name: str) -> dict:
        for m in self.index["manifests"]:
            if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == name:
                return m
        raise AssertionError(f"{name} not in {self.root}/index.json: {self.index}")

    def closure(self, digest: str) -> set:
        """Digests of a manifest/index and everything it references."""
        out = {digest}
        doc = json.loads(self.blob(digest))
        for m in doc.get("manifests", []):
            out |= self.closure(m["digest"])
        if "config" in doc:
            out.add(doc["config"]["digest"])
        for layer in doc.get("layers", []):
            out.add(layer["digest"])
        return out


def file_sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


@pytest.fixture(scope="module")
def debian(fixtures_dir) -> Layout:
    return Layout(fixtures_dir / "images" / "debian-minbase")


@pytest.fixture(scope="module")
def tiny(fixtures_dir) -> Layout:
    return Layout(fixtures_dir / "images" / "debian-tiny-vuln")


@pytest.fixture(scope="module")
def pushed_debian(skopeo, shared_server, debian):
    """skopeo copy oci:<fixture>:bookworm docker://127.0.0.1:PORT/library/debian:bookworm"""
    dst = f"docker://{shared_server.hostport}/library/debian:bookworm"
    skopeo.copy(f"oci:{debian.root}:bookworm", dst, "--preserve-digests")
    return dst


def test_skopeo_copy_oci_layout_to_registry(reg, skopeo, debian, pushed_debian):
    desc = debian.ref("bookworm")
    original = debian.blob(desc["digest"])
    # skopeo sees exactly the bytes of the layout's manifest
    p = skopeo.run("inspect", "--tls-verify=false", "--raw", pushed_debian)
    raw = p.stdout
    assert raw.rstrip(b"\n") == original.rstrip(b"\n"), "skopeo inspect --raw differs from the layout"
    # and so does a plain HTTP GET
    r = reg.get_manifest("library/debian", "bookworm")
    assert r.status_code == 200, describe(r)
    assert r.content == original
    assert r.headers.get("Docker-Content-Digest") == desc["digest"]
    assert r.headers.get("Content-Type") == OCI_MANIFEST
    doc = json.loads(original)
    for d in [doc["config"]] + doc["layers"]:
        h = reg.head(f"/v2/library/debian/blobs/{d['digest']}")
        assert h.status_code == 200, describe(h)
        assert int(h.headers["Content-Length"]) == d["size"]
    # the big layer comes back byte-exact
    layer = doc["layers"][0]
    g = reg.get(f"/v2/library/debian/blobs/{layer['digest']}", stream=True)
    h = hashlib.sha256()
    for chunk in g.iter_content(1 << 20):
        h.update(chunk)
    assert "sha256:" + h.hexdigest() == layer["digest"]


def test_skopeo_inspect(skopeo, debian, pushed_debian):
    p = skopeo.run("inspect", "--tls-verify=false", pushed_debian)
    info = json.loads(p.stdout)
    doc = json.loads(debian.blob(debian.ref("bookworm")["digest"]))
    assert info["Digest"] == debian.ref("bookworm")["digest"]
    assert info["Layers"] == [layer["digest"] for layer in doc["layers"]]
    assert info["Os"] == "linux"
    assert "bookworm" in info.get("RepoTags", [])


def test_skopeo_copy_back_to_oci_layout(skopeo, debian, pushed_debian, tmp_path):
    out = tmp_path / "out"
    skopeo.copy(pushed_debian, f"oci:{out}:bookworm", "--preserve-digests")
    back = Layout(out)
    want = debian.ref("bookworm")["digest"]
    assert back.ref("bookworm")["digest"] == want
    for d in debian.closure(want):
        a, b = debian.blob_path(d), back.blob_path(d)
        assert b.exists(), f"{d} missing from the pulled layout"
        assert a.stat().st_size == b.stat().st_size, d
        assert file_sha256(b) == d, f"pulled blob {d} does not hash to its digest"
        assert filecmp.cmp(a, b, shallow=False), f"{d} differs from the fixture"


def test_skopeo_list_tags_and_registry_to_registry_copy(reg, skopeo, shared_server, pushed_debian):
    extra = f"docker://{shared_server.hostport}/library/debian:extra"
    skopeo.copy(pushed_debian, extra, "--preserve-digests")
    p = skopeo.run("list-tags", "--tls-verify=false", f"docker://{shared_server.hostport}/library/debian")
    listing = json.loads(p.stdout)
    assert {"bookworm", "extra"} <= set(listing["Tags"])
    a = reg.get_manifest("library/debian", "bookworm")
    b = reg.get_manifest("library/debian", "extra")
    assert a.content == b.content


def test_skopeo_copy_all_with_an_index(reg, skopeo, shared_server, debian, tiny, pushed_debian, tmp_path):
    host = shared_server.hostport
    repo = f"multi/{unique()}"
    # two images into one repo: one from a layout, one cross-repository from the registry
    skopeo.copy(f"oci:{tiny.root}:1", f"docker://{host}/{repo}:tiny", "--preserve-digests")
    skopeo.copy(pushed_debian, f"docker://{host}/{repo}:deb", "--preserve-digests")
    deb_desc = debian.ref("bookworm")
    tiny_desc = tiny.ref("1")
    index = bh.make_index([
        {"mediaType": OCI_MANIFEST, "digest": deb_desc["digest"], "size": deb_desc["size"],
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": OCI_MANIFEST, "digest": tiny_desc["digest"], "size": tiny_desc["size"],
         "platform": {"architecture": "arm64", "os": "linux"}},
    ])
    r = reg.put_manifest(repo, "idx", index, OCI_INDEX)
    assert r.status_code == 201, describe(r)

    # registry -> registry, all images of the list, digests preserved
    copy_repo = f"{repo}-copy"
    skopeo.copy(f"docker://{host}/{repo}:idx", f"docker://{host}/{copy_repo}:idx", "--all",
                "--preserve-digests")
    g = reg.get_manifest(copy_repo, "idx")
    assert g.status_code == 200 and g.content == index
    for d in (deb_desc, tiny_desc):
        m = reg.get_manifest(copy_repo, d["digest"])
        assert m.status_code == 200, describe(m)
    raw = skopeo.run("inspect", "--tls-verify=false", "--raw", f"docker://{host}/{copy_repo}:idx").stdout
    assert raw.rstrip(b"\n") == index

    # registry -> layout, everything
    out = tmp_path / "all"
    skopeo.copy(f"docker://{host}/{repo}:idx", f"oci:{out}:idx", "--all", "--preserve-digests")
    back = Layout(out)
    assert back.ref("idx")["digest"] == sha256(index)
    assert back.blob(sha256(index)) == index
    for src, d in ((debian, deb_desc["digest"]), (tiny, tiny_desc["digest"])):
        for blob in src.closure(d):
            assert file_sha256(back.blob_path(blob)) == blob
            assert filecmp.cmp(src.blob_path(blob), back.blob_path(blob), shallow=False)


def test_skopeo_delete(reg, skopeo, shared_server, tiny):
    host = shared_server.hostport
    repo = f"todelete/{unique()}"
    skopeo.copy(f"oci:{tiny.root}:1", f"docker://{host}/{repo}:1", "--preserve-digests")
    skopeo.copy(f"oci:{tiny.root}:1", f"docker://{host}/{repo}:2", "--preserve-digests")
    keep = reg.push_image(repo, tag="keep")
    digest = tiny.ref("1")["digest"]
    assert reg.get_manifest(repo, digest).status_code == 200
    skopeo.run("delete", "--tls-verify=false", f"docker://{host}/{repo}:1")
    # skopeo deletes the manifest (by digest), so every tag pointing at it goes too
    assert reg.get_manifest(repo, digest).status_code == 404
    assert reg.get_manifest(repo, "1").status_code == 404
    assert reg.get_manifest(repo, "2").status_code == 404
    p = skopeo.run("inspect", "--tls-verify=false", "--raw", f"docker://{host}/{repo}:1", check=False)
    assert p.returncode != 0
    tags = json.loads(skopeo.run("list-tags", "--tls-verify=false", f"docker://{host}/{repo}").stdout)["Tags"]
    assert tags == ["keep"]
    assert reg.get_manifest(repo, "keep").content == keep.manifest


# =============================================================================================
# oras-py
# =============================================================================================
ARTIFACT_TYPE = "application/vnd.berth.test.bundle.v1+json"
SIG_TYPE = "application/vnd.berth.test.signature.v1+json"
SBOM_TYPE = "application/vnd.berth.test.sbom.v1+json"


@pytest.fixture(scope="session")
def oras():
    try:
        import oras.defaults  # noqa: F401
        import oras.oci  # noqa: F401
        import oras.provider  # noqa: F401
    except ImportError as e:
        pytest.fail(f"the python package 'oras' (oras-py 0.2.x) is not installed ({e}): "
                    f"pip install oras; client tests are required and never skipped", pytrace=False)
    import oras as mod
    return mod


@pytest.fixture
def oras_client(oras, reg):
    class NoRetryRegistry(oras.provider.Registry):
        """oras-py retries every failed request with sleeps of 3..80 s; a test wants the first
        answer. Same request code, minus the retry decorator."""

        def do_request(self, *args, **kwargs):
            return oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)

    client = NoRetryRegistry(hostname=reg.server.hostport, insecure=True, auth_backend="basic")
    client.auth.set_basic_auth("AWS", reg.server.token())
    original = client.session.request

    def recording_request(method, url, **kw):  # make 5xx seen by oras-py fail the test too
        kw.setdefault("timeout", 60)
        r = original(method, url, **kw)
        if r.status_code >= 500:
            reg.server_errors.append(describe(r))
        return r

    client.session.request = recording_request
    return client


def _files(tmp_path: Path) -> dict:
    d = tmp_path / "src"
    d.mkdir()
    files = {
        "hello.txt": b"hello from berth's integration tests\n",
        "data.bin": os.urandom(300 * 1024 + 7),
    }
    for name, data in files.items():
        (d / name).write_bytes(data)
    (d / "config.json").write_bytes(b'{"kind":"bundle"}')
    return {"dir": d, "files": files}


def test_oras_push_pull_roundtrip(oras, oras_client, reg, tmp_path):
    src = _files(tmp_path)
    host = reg.server.hostport
    target = f"{host}/artifacts/{unique()}:v1"
    resp = oras_client.push(
        target=target,
        files=[f"{src['dir']}/hello.txt:text/plain", f"{src['dir']}/data.bin:application/vnd.berth.test.data"],
        manifest_config=f"{src['dir']}/config.json:{ARTIFACT_TYPE}",
        manifest_annotations={"org.example.purpose": "integration-test"},
        disable_path_validation=True, quiet=True)
    assert resp.status_code == 201, describe(resp)

    manifest = oras_client.get_manifest(target)
    assert manifest["config"]["mediaType"] == ARTIFACT_TYPE
    titles = {layer["annotations"]["org.opencontainers.image.title"]: layer for layer in manifest["layers"]}
    assert set(titles) == {"hello.txt", "data.bin"}
    assert titles["hello.txt"]["mediaType"] == "text/plain"
    assert manifest["annotations"] == {"org.example.purpose": "integration-test"}

    out = tmp_path / "pulled"
    paths = oras_client.pull(target=target, outdir=str(out))
    got = {Path(p).name: Path(p).read_bytes() for p in paths}
    assert got == src["files"]

    repo = target.split("/", 1)[1].rsplit(":", 1)[0]
    assert oras_client.get_tags(f"{host}/{repo}") == ["v1"]


def test_oras_chunked_push_and_delete_tag(oras, oras_client, reg, tmp_path):
    src = _files(tmp_path)
    host = reg.server.hostport
    repo = f"artifacts/{unique()}"
    for tag in ("chunked", "other"):
        resp = oras_client.push(
            target=f"{host}/{repo}:{tag}",
            files=[f"{src['dir']}/data.bin:application/vnd.berth.test.data"],
            manifest_annotations={"tag": tag},
            do_chunked=True, chunk_size=64 * 1024,
            disable_path_validation=True, quiet=True)
        assert resp.status_code == 201, describe(resp)
    out = tmp_path / "pulled"
    paths = oras_client.pull(target=f"{host}/{repo}:chunked", outdir=str(out))
    assert [Path(p).read_bytes() for p in paths] == [src["files"]["data.bin"]]
    assert sorted(oras_client.get_tags(f"{host}/{repo}")) == ["chunked", "other"]
    assert oras_client.get_tags(f"{host}/{repo}", N=1) == ["chunked"]
    # oras-py resolves the tag with HEAD and deletes the manifest by digest (expects 202)
    assert oras_client.delete_tag(f"{host}/{repo}", "chunked") is True
    assert oras_client.get_tags(f"{host}/{repo}") == ["other"]


def test_oras_referrers(oras, oras_client, reg, tmp_path):
    src = _files(tmp_path)
    host = reg.server.hostport
    repo = f"artifacts/{unique()}"
    resp = oras_client.push(target=f"{host}/{repo}:v1",
                            files=[f"{src['dir']}/hello.txt:text/plain"],
                            manifest_config=f"{src['dir']}/config.json:{ARTIFACT_TYPE}",
                            disable_path_validation=True, quiet=True)
    assert resp.status_code == 201
    head = reg.get_manifest(repo, "v1", method="HEAD")
    subject_digest = head.headers["Docker-Content-Digest"]
    subject = oras.oci.Subject(mediaType=OCI_MANIFEST, digest=subject_digest,
                               size=int(head.headers["Content-Length"]))

    # referrer 1: oras-py's own push with a subject (artifact type carried by config.mediaType)
    sig = tmp_path / "sig.txt"
    sig.write_bytes(b"signature bytes " + os.urandom(8))
    sig_cfg = tmp_path / "sig-config.json"
    sig_cfg.write_bytes(b'{"signed":true}')
    r1 = oras_client.push(target=f"{host}/{repo}:sig", files=[f"{sig}:application/vnd.berth.test.sig"],
                          manifest_config=f"{sig_cfg}:{SIG_TYPE}", subject=subject,
                          manifest_annotations={"org.example.role": "signature"},
                          disable_path_validation=True, quiet=True)
    assert r1.status_code == 201, describe(r1)
    assert r1.headers.get("OCI-Subject") == subject_digest
    sig_digest = r1.headers.get("Docker-Content-Digest") or \
        reg.get_manifest(repo, "sig", method="HEAD").headers["Docker-Content-Digest"]

    # referrer 2: a manifest with an explicit artifactType (oras-py 0.2's push cannot set it),
    # assembled with oras-py's helpers and uploaded with oras-py's blob/manifest calls
    container = oras_client.get_container(f"{host}/{repo}:sbom")
    sbom = tmp_path / "sbom.json"
    sbom.write_bytes(b'{"spdxVersion":"SPDX-2.3","packages":[]}')
    layer = oras.oci.NewLayer(str(sbom), media_type="application/spdx+json")
    layer["annotations"] = {"org.opencontainers.image.title": "sbom.json"}
    assert oras_client.upload_blob(str(sbom), container, layer).status_code in (200, 201)
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"{}")
    conf = {"mediaType": OCI_EMPTY, "digest": bh.EMPTY_JSON_DIGEST, "size": 2}
    assert oras_client.upload_blob(str(empty), container, conf).status_code in (200, 201)
    manifest = oras.oci.NewManifest()
    manifest["artifactType"] = SBOM_TYPE
    manifest["config"] = conf
    manifest["layers"] = [layer]
    manifest["subject"] = asdict(subject)
    manifest["annotations"] = {"org.example.role": "sbom"}
    r2 = oras_client.upload_manifest(manifest, container)
    assert r2.status_code == 201, describe(r2)
    assert r2.headers.get("OCI-Subject") == subject_digest
    sbom_digest = reg.get_manifest(repo, "sbom", method="HEAD").headers["Docker-Content-Digest"]

    # discovery: oras-py 0.2 has no referrers call; use its HTTP session (and plain requests)
    url = f"http://{host}/v2/{repo}/referrers/{subject_digest}"
    for get in (lambda u, **kw: oras_client.do_request(u, "GET", **kw), lambda u, **kw: reg.get(u)):
        r = get(url)
        assert r.status_code == 200, describe(r)
        assert r.headers.get("Content-Type", "").split(";")[0] == OCI_INDEX
        found = {m["digest"]: m for m in r.json()["manifests"]}
        assert set(found) == {sig_digest, sbom_digest}
        assert found[sig_digest]["artifactType"] == SIG_TYPE
        assert found[sig_digest]["annotations"] == {"org.example.role": "signature"}
        assert found[sbom_digest]["artifactType"] == SBOM_TYPE
        assert found[sbom_digest]["annotations"] == {"org.example.role": "sbom"}

    for wanted, digest in ((SBOM_TYPE, sbom_digest), (SIG_TYPE, sig_digest)):
        r = reg.get(f"/v2/{repo}/referrers/{subject_digest}", params={"artifactType": wanted})
        assert r.status_code == 200
        assert r.headers.get("OCI-Filters-Applied") == "artifactType"
        assert [m["digest"] for m in r.json()["manifests"]] == [digest]

    # the referrers can be pulled back with oras-py by digest
    out = tmp_path / "pulled-sbom"
    paths = oras_client.pull(target=f"{host}/{repo}@{sbom_digest}", outdir=str(out))
    assert [Path(p).read_bytes() for p in paths] == [sbom.read_bytes()]
