"""OCI distribution-spec v1.1 over raw HTTP against a real `berth serve`.

Expectations come from the distribution-spec (spec.md: push / pull / content discovery / content
management, the endpoint table end-1..end-14 and the error-code table) and its conformance suite,
plus the project's contract (ARCHITECTURE.md): every bad input gets the spec's 4xx error envelope
and never a 5xx.  Any 5xx seen during a test also fails it (see conftest.reg).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import threading
import time
import urllib.parse
import uuid

import pytest
import requests

import berth_helpers as bh
from berth_helpers import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST, DOCKER_MANIFEST,
                           DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED, EMPTY_JSON, EMPTY_JSON_DIGEST,
                           OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, add_query,
                           assert_oci_error, descriptor, describe, make_index, make_manifest,
                           parse_range, raw_request, sha256, unique)

OCTET = {"Content-Type": "application/octet-stream"}
UNKNOWN_DIGEST = "sha256:" + "0" * 63 + "1"

MALFORMED_DIGESTS = [
    "sha256:abc",                          # too short
    "sha256:" + "g" * 64,                  # not hex
    "sha256:" + "A" * 64,                  # sha256 encoding must be lowercase hex
    "sha256:" + "a" * 65,                  # too long
    "sha256",                              # no encoded part
    "sha256:",                             # empty encoded part
    ":" + "a" * 64,                        # no algorithm
    "notadigest",
    "sha256:../../../../etc/passwd",
    "sha256:" + "a" * 32 + "\x00" + "a" * 31,
]


def q(s: str) -> str:
    return urllib.parse.quote(s, safe=":")


# =============================================================================================
# base
# =============================================================================================
class TestBase:
    def test_unexpected_methods_are_4xx(self, reg):
        repo = unique()
        img = reg.push_image(repo, tag="t")
        cases = [("POST", f"/v2/{repo}/manifests/t"), ("PATCH", f"/v2/{repo}/manifests/t"),
                 ("POST", f"/v2/{repo}/blobs/{img.config_digest}"),
                 ("PUT", f"/v2/{repo}/blobs/{img.config_digest}"),
                 ("PATCH", f"/v2/{repo}/blobs/{img.config_digest}"),
                 ("PUT", f"/v2/{repo}/tags/list"), ("DELETE", f"/v2/{repo}/tags/list"),
                 ("POST", f"/v2/{repo}/referrers/{img.digest}"), ("DELETE", "/v2/"),
                 ("PUT", "/v2/_catalog"), ("GET", f"/v2/{repo}/blobs/uploads/"),
                 ("DELETE", f"/v2/{repo}/blobs/uploads/")]
        for method, path in cases:
            r = reg.request(method, path, data=b"x" if method in ("POST", "PUT", "PATCH") else None)
            assert 400 <= r.status_code < 500, f"{method} {path}: {describe(r)}"
        assert reg.get_manifest(repo, "t").content == img.manifest

    def test_api_version_check(self, reg):
        r = reg.get("/v2/")
        assert r.status_code == 200, describe(r)
        assert r.headers.get("Docker-Distribution-API-Version") == "registry/2.0"

    def test_api_version_check_without_trailing_slash_is_not_5xx(self, reg):
        r = reg.get("/v2", allow_redirects=True)
        assert r.status_code in (200, 301, 302, 307, 308, 404), describe(r)

    def test_healthz(self, reg):
        r = reg.get("/healthz")
        assert r.status_code == 200

    def test_unknown_v2_path_is_404(self, reg):
        r = reg.get(f"/v2/{unique()}/nonsense/endpoint")
        assert r.status_code in (400, 404, 405), describe(r)


# =============================================================================================
# blob push: monolithic
# =============================================================================================
class TestMonolithicUpload:
    def test_post_then_put(self, reg):
        repo = f"mono/{unique()}"
        data = os.urandom(4096)
        digest = sha256(data)
        r = reg.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 202, describe(r)
        loc = reg.location(r)
        r = reg.put(add_query(loc, digest=digest), data=data, headers=OCTET)
        assert r.status_code == 201, describe(r)
        assert r.headers.get("Location"), "201 must carry the blob's Location"
        assert r.headers.get("Docker-Content-Digest") in (None, digest)
        # the Location is a pullable blob URL
        r2 = reg.get(reg.location(r))
        assert r2.status_code == 200 and r2.content == data
        reg.blob_ok(repo, digest, data)

    def test_single_post(self, reg):
        repo = unique()
        data = os.urandom(1000)
        digest = sha256(data)
        r = reg.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", data=data, headers=OCTET)
        assert r.status_code == 201, describe(r)
        assert r.headers.get("Location")
        reg.blob_ok(repo, digest, data)

    def test_get_and_head_headers(self, reg):
        repo = unique()
        data = os.urandom(12345)
        digest = reg.push_blob(repo, data)
        r = reg.get(f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 200
        assert r.headers.get("Docker-Content-Digest") == digest
        assert int(r.headers["Content-Length"]) == len(data)
        assert r.content == data
        h = reg.head(f"/v2/{repo}/blobs/{digest}")
        assert h.status_code == 200, describe(h)
        assert int(h.headers["Content-Length"]) == len(data)
        assert h.headers.get("Docker-Content-Digest") == digest
        assert h.content == b""

    def test_empty_blob(self, reg):
        repo = unique()
        digest = reg.push_blob(repo, b"")
        assert digest == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        r = reg.get(f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 200 and r.content == b""
        assert r.headers.get("Content-Length") in ("0", None)

    def test_large_blob_roundtrip(self, reg):
        repo = unique()
        data = os.urandom(24 * 1024 * 1024 + 17)
        digest = reg.push_blob(repo, data, method="post_put")
        r = reg.get(f"/v2/{repo}/blobs/{digest}", stream=True)
        assert r.status_code == 200
        h = __import__("hashlib").sha256()
        n = 0
        for chunk in r.iter_content(1 << 20):
            h.update(chunk)
            n += len(chunk)
        assert n == len(data) and "sha256:" + h.hexdigest() == digest

    def test_put_with_wrong_digest(self, reg):
        repo = unique()
        data = os.urandom(2048)
        wrong = sha256(b"something else " + os.urandom(8))
        loc = reg.start_upload(repo)
        r = reg.put(add_query(loc, digest=wrong), data=data, headers=OCTET)
        assert_oci_error(r, 400, "DIGEST_INVALID")
        assert reg.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404, \
            "a blob must never be visible under a digest that does not match its bytes"
        g = reg.get(f"/v2/{repo}/blobs/{wrong}")
        assert_oci_error(g, 404, "BLOB_UNKNOWN")

    def test_single_post_with_wrong_digest(self, reg):
        repo = unique()
        data = os.urandom(2048)
        wrong = sha256(os.urandom(16))
        r = reg.post(f"/v2/{repo}/blobs/uploads/?digest={wrong}", data=data, headers=OCTET)
        assert_oci_error(r, 400, "DIGEST_INVALID")
        assert reg.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404

    def test_put_without_digest(self, reg):
        repo = unique()
        loc = reg.start_upload(repo)
        r = reg.put(loc, data=b"abc", headers=OCTET)
        assert_oci_error(r, 400, {"DIGEST_INVALID", "BLOB_UPLOAD_INVALID"})

    @pytest.mark.parametrize("bad", MALFORMED_DIGESTS)
    def test_put_with_malformed_digest(self, reg, bad):
        repo = unique()
        loc = reg.start_upload(repo)
        r = reg.put(add_query(loc, digest=bad), data=b"abc", headers=OCTET)
        assert_oci_error(r, 400, "DIGEST_INVALID")

    @pytest.mark.parametrize("bad", MALFORMED_DIGESTS)
    def test_single_post_with_malformed_digest(self, reg, bad):
        repo = unique()
        r = reg.post(f"/v2/{repo}/blobs/uploads/?" + urllib.parse.urlencode({"digest": bad}),
                     data=b"abc", headers=OCTET)
        assert_oci_error(r, 400, "DIGEST_INVALID")

    def test_unsupported_algorithm(self, reg):
        repo = unique()
        r = reg.post(f"/v2/{repo}/blobs/uploads/?digest=md5:d41d8cd98f00b204e9800998ecf8427e",
                     data=b"", headers=OCTET)
        assert_oci_error(r, 400, {"DIGEST_INVALID", "UNSUPPORTED"})

    def test_truncated_body_never_commits(self, reg):
        """Content-Length promises more than is sent, then the client goes away."""
        repo = unique()
        data = os.urandom(64 * 1024)
        digest = sha256(data)
        s = bh.open_partial_request(reg.server, "POST", f"/v2/{repo}/blobs/uploads/?digest={digest}",
                                    {"Content-Type": "application/octet-stream",
                                     "Content-Length": str(len(data))}, data[:20000])
        time.sleep(0.3)
        s.close()
        time.sleep(0.3)
        assert reg.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
        # and the server is fine afterwards
        reg.push_blob(repo, data)
        reg.blob_ok(repo, digest, data)


# =============================================================================================
# blob pull: range, unknown, delete, malformed digests in the path
# =============================================================================================
class TestBlobPull:
    @pytest.fixture
    def blob(self, reg):
        repo = unique()
        data = bytes(range(256)) * 40  # 10240 bytes, recognisable
        return repo, reg.push_blob(repo, data), data

    def test_range_request(self, reg, blob):
        repo, digest, data = blob
        r = reg.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=10-19"})
        assert r.status_code == 206, describe(r)
        assert r.content == data[10:20]
        assert r.headers.get("Content-Range") == f"bytes 10-19/{len(data)}"
        assert int(r.headers["Content-Length"]) == 10

    def test_open_ended_range(self, reg, blob):
        repo, digest, data = blob
        r = reg.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": f"bytes={len(data) - 100}-"})
        assert r.status_code == 206, describe(r)
        assert r.content == data[-100:]
        assert r.headers.get("Content-Range") == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"

    def test_suffix_range(self, reg, blob):
        repo, digest, data = blob
        r = reg.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=-7"})
        assert r.status_code == 206, describe(r)
        assert r.content == data[-7:]

    def test_unsatisfiable_range(self, reg, blob):
        repo, digest, data = blob
        r = reg.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": f"bytes={len(data) + 10}-"})
        assert r.status_code == 416, describe(r)

    def test_garbage_range_header_is_not_5xx(self, reg, blob):
        repo, digest, data = blob
        for rng in ("bytes=abc", "lines=1-2", "bytes=5-2", "bytes=--1", "bytes=0-1,5-6"):
            r = reg.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": rng})
            assert r.status_code in (200, 206, 400, 416), f"{rng}: {describe(r)}"
            if r.status_code == 200:
                assert r.content == data

    def test_unknown_blob(self, reg, blob):
        repo, _, _ = blob
        r = reg.get(f"/v2/{repo}/blobs/{UNKNOWN_DIGEST}")
        assert_oci_error(r, 404, "BLOB_UNKNOWN")
        assert reg.head(f"/v2/{repo}/blobs/{UNKNOWN_DIGEST}").status_code == 404

    def test_blob_in_unknown_repository(self, reg, blob):
        _, digest, _ = blob
        r = reg.get(f"/v2/{unique('nope')}/blobs/{digest}")
        assert_oci_error(r, 404, {"BLOB_UNKNOWN", "NAME_UNKNOWN"})

    def test_blob_not_visible_from_other_repository(self, reg, blob):
        """Blobs are content-addressed globally but served per repository (spec: a repository
        only serves what was pushed or mounted into it)."""
        _, digest, _ = blob
        other = unique()
        reg.push_blob(other, b"other repo's blob " + os.urandom(8))
        r = reg.get(f"/v2/{other}/blobs/{digest}")
        assert_oci_error(r, 404, "BLOB_UNKNOWN")

    def test_delete_blob(self, reg, blob):
        repo, digest, _ = blob
        r = reg.delete(f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 202, describe(r)
        assert_oci_error(reg.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
        assert_oci_error(reg.delete(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")

    @pytest.mark.parametrize("bad", MALFORMED_DIGESTS)
    def test_malformed_digest_in_path(self, reg, blob, bad):
        repo, _, _ = blob
        for method in ("GET", "HEAD", "DELETE"):
            r = reg.request(method, f"/v2/{repo}/blobs/{q(bad)}")
            if "/" in urllib.parse.unquote(bad):
                # path-separators inside the "digest" may route elsewhere: any 4xx, never 5xx/2xx
                assert 400 <= r.status_code < 500, f"{method} {bad}: {describe(r)}"
            else:
                assert_oci_error(r, 400, "DIGEST_INVALID")


# =============================================================================================
# blob push: chunked
# =============================================================================================
def patch_chunk(reg, loc, data, start, end=None, **headers):
    end = start + len(data) - 1 if end is None else end
    return reg.patch(loc, data=data, headers={**OCTET, "Content-Range": f"{start}-{end}", **headers})


def upload_status(reg, loc):
    r = reg.get(loc)
    assert r.status_code == 204, f"GET upload status: {describe(r)}"
    assert r.headers.get("Location"), "upload status must carry Location"
    return r


class TestChunkedUpload:
    def test_chunked_upload_full_flow(self, reg):
        repo = unique()
        data = os.urandom(3 * 65536 + 123)
        digest = sha256(data)
        loc = reg.start_upload(repo)
        c1, c2, c3 = data[:65536], data[65536:2 * 65536], data[2 * 65536:]

        r = patch_chunk(reg, loc, c1, 0)
        assert r.status_code == 202, describe(r)
        assert parse_range(r.headers.get("Range")) == (0, 65535)
        loc = reg.location(r)

        st = upload_status(reg, loc)
        assert parse_range(st.headers.get("Range")) == (0, 65535)
        loc = reg.location(st)

        r = patch_chunk(reg, loc, c2, 65536)
        assert r.status_code == 202, describe(r)
        assert parse_range(r.headers.get("Range")) == (0, 2 * 65536 - 1)
        loc = reg.location(r)

        # final chunk in the closing PUT
        r = reg.put(add_query(loc, digest=digest), data=c3,
                    headers={**OCTET, "Content-Range": f"{2 * 65536}-{len(data) - 1}"})
        assert r.status_code == 201, describe(r)
        assert r.headers.get("Location")
        reg.blob_ok(repo, digest, data)

        # a finished session is gone
        assert_oci_error(reg.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")

    def test_final_chunk_in_put_without_content_range(self, reg):
        repo = unique()
        data = os.urandom(10_000)
        loc = reg.start_upload(repo)
        r = patch_chunk(reg, loc, data[:4000], 0)
        assert r.status_code == 202, describe(r)
        r = reg.put(add_query(reg.location(r), digest=sha256(data)), data=data[4000:], headers=OCTET)
        assert r.status_code == 201, describe(r)
        reg.blob_ok(repo, sha256(data), data)

    def test_streamed_patch_without_content_range(self, reg):
        """conformance: 'PATCH request with blob in body should yield 202'."""
        repo = unique()
        data = os.urandom(5000)
        loc = reg.start_upload(repo)
        r = reg.patch(loc, data=data, headers=OCTET)
        assert r.status_code == 202, describe(r)
        assert parse_range(r.headers.get("Range")) == (0, len(data) - 1)
        r = reg.put(add_query(reg.location(r), digest=sha256(data)))
        assert r.status_code == 201, describe(r)
        reg.blob_ok(repo, sha256(data), data)

    def test_post_response_carries_location_and_maybe_min_chunk(self, reg):
        r = reg.post(f"/v2/{unique()}/blobs/uploads/", headers={"Content-Length": "0"})
        assert r.status_code == 202
        assert r.headers.get("Location")
        if "OCI-Chunk-Min-Length" in r.headers:
            assert int(r.headers["OCI-Chunk-Min-Length"]) > 0

    def test_first_chunk_not_at_zero_is_416(self, reg):
        loc = reg.start_upload(unique())
        r = patch_chunk(reg, loc, b"x" * 100, 100)
        assert r.status_code == 416, describe(r)

    def _upload_with_first_chunk(self, reg, n=100):
        repo = unique()
        data = os.urandom(n * 3)
        loc = reg.start_upload(repo)
        r = patch_chunk(reg, loc, data[:n], 0)
        assert r.status_code == 202, describe(r)
        return repo, data, reg.location(r)

    def _assert_offset(self, reg, loc, end):
        st = upload_status(reg, loc)
        assert parse_range(st.headers.get("Range")) == (0, end), \
            f"committed offset changed after a rejected chunk: {st.headers.get('Range')}"
        return reg.location(st)

    def test_overlapping_chunk_is_416(self, reg):
        repo, data, loc = self._upload_with_first_chunk(reg)
        r = patch_chunk(reg, loc, data[50:150], 50)
        assert r.status_code == 416, describe(r)
        self._assert_offset(reg, loc, 99)

    def test_repeated_chunk_is_416(self, reg):
        repo, data, loc = self._upload_with_first_chunk(reg)
        r = patch_chunk(reg, loc, data[:100], 0)
        assert r.status_code == 416, describe(r)
        self._assert_offset(reg, loc, 99)

    def test_gap_is_416(self, reg):
        repo, data, loc = self._upload_with_first_chunk(reg)
        r = patch_chunk(reg, loc, data[200:300], 200)
        assert r.status_code == 416, describe(r)
        loc = self._assert_offset(reg, loc, 99)
        # the session still works after the rejected chunks
        r = patch_chunk(reg, loc, data[100:], 100)
        assert r.status_code == 202, describe(r)
        r = reg.put(add_query(reg.location(r), digest=sha256(data)))
        assert r.status_code == 201, describe(r)
        reg.blob_ok(repo, sha256(data), data)

    def test_content_range_that_lies_about_length(self, reg):
        """Content-Range claims 100 bytes, the body has 50 (or 150)."""
        repo, data, loc = self._upload_with_first_chunk(reg)
        for body in (data[100:150], data[100:250]):
            r = reg.patch(loc, data=body, headers={**OCTET, "Content-Range": "100-199"})
            assert r.status_code in (400, 416), describe(r)
            if r.status_code == 400:
                assert_oci_error(r, 400, {"SIZE_INVALID", "BLOB_UPLOAD_INVALID"})
            self._assert_offset(reg, loc, 99)

    def test_rfc7233_style_content_range(self, reg):
        """`bytes 100-199/300` is not the spec's form; a registry may refuse it or read it
        correctly, but never misplace the bytes."""
        repo, data, loc = self._upload_with_first_chunk(reg)
        r = reg.patch(loc, data=data[100:200], headers={**OCTET, "Content-Range": "bytes 100-199/300"})
        assert r.status_code in (202, 400, 416), describe(r)
        loc = self._assert_offset(reg, loc, 199 if r.status_code == 202 else 99)
        end = 199 if r.status_code == 202 else 99
        r = patch_chunk(reg, loc, data[end + 1:], end + 1)
        assert r.status_code == 202, describe(r)
        r = reg.put(add_query(reg.location(r), digest=sha256(data)))
        assert r.status_code == 201, describe(r)
        reg.blob_ok(repo, sha256(data), data)

    @pytest.mark.parametrize("rng", ["abc", "199-100", "100-", "-100",
                                     "100-199-299", "0x64-0xc7", "100 - 199", "99999999999999999999-1"])
    def test_malformed_content_range(self, reg, rng):
        repo, data, loc = self._upload_with_first_chunk(reg)
        r = reg.patch(loc, data=data[100:200], headers={**OCTET, "Content-Range": rng})
        assert r.status_code in (400, 416), f"{rng}: {describe(r)}"
        if r.status_code == 400:
            assert_oci_error(r, 400, {"BLOB_UPLOAD_INVALID", "SIZE_INVALID"})
        self._assert_offset(reg, loc, 99)

    def test_closing_put_with_wrong_digest(self, reg):
        repo, data, loc = self._upload_with_first_chunk(reg)
        wrong = sha256(b"nope" + os.urandom(4))
        r = reg.put(add_query(loc, digest=wrong))
        assert_oci_error(r, 400, "DIGEST_INVALID")
        assert reg.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
        assert reg.head(f"/v2/{repo}/blobs/{sha256(data[:100])}").status_code == 404

    def test_cancel_upload(self, reg):
        repo, data, loc = self._upload_with_first_chunk(reg)
        r = reg.delete(loc)
        assert r.status_code == 204, describe(r)
        assert_oci_error(reg.get(loc), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_oci_error(patch_chunk(reg, loc, data[100:200], 100), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_oci_error(reg.put(add_query(loc, digest=sha256(data[:100]))), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_oci_error(reg.delete(loc), 404, "BLOB_UPLOAD_UNKNOWN")

    def test_unknown_session_id(self, reg):
        repo = unique()
        reg.push_blob(repo, b"make the repository exist")
        sid = str(uuid.uuid4())
        base = f"/v2/{repo}/blobs/uploads/{sid}"
        assert_oci_error(reg.get(base), 404, "BLOB_UPLOAD_UNKNOWN")
        assert_oci_error(reg.patch(base, data=b"abc", headers={**OCTET, "Content-Range": "0-2"}),
                         404, "BLOB_UPLOAD_UNKNOWN")
        assert_oci_error(reg.put(add_query(base, digest=sha256(b"abc")), data=b"abc", headers=OCTET),
                         404, "BLOB_UPLOAD_UNKNOWN")
        assert_oci_error(reg.delete(base), 404, "BLOB_UPLOAD_UNKNOWN")

    @pytest.mark.parametrize("sid,strict", [("not-a-uuid", True), ("a" * 300, True), ("..", False),
                                            ("%2e%2e", False), ("..%2F..%2Fetc", False),
                                            ("%00", False), ("x%2Fy", False)])
    def test_garbage_session_id(self, reg, sid, strict):
        repo = unique()
        reg.push_blob(repo, b"make the repository exist")
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            path = f"/v2/{repo}/blobs/uploads/{sid}"
            if method == "PUT":
                path += f"?digest={sha256(b'')}"
            r = raw_request(reg.server, method, path, body=b"" if method != "PATCH" else b"abc")
            assert 400 <= r.status < 500, f"{r}"
            if strict:
                assert r.status == 404 and "BLOB_UPLOAD_UNKNOWN" in bh.raw_error_codes(r), str(r)

    def test_session_is_bound_to_its_repository(self, reg):
        repo_a, repo_b = unique("a"), unique("b")
        reg.push_blob(repo_b, b"b exists")
        loc = reg.start_upload(repo_a)
        path = urllib.parse.urlsplit(loc).path
        if f"/v2/{repo_a}/blobs/uploads/" not in path:
            pytest.skip(f"upload Location {path} is not of the form /v2/<name>/blobs/uploads/<id>")
        hijack = path.replace(f"/v2/{repo_a}/", f"/v2/{repo_b}/")
        r = reg.patch(hijack, data=b"abc", headers={**OCTET, "Content-Range": "0-2"})
        assert_oci_error(r, 404, "BLOB_UPLOAD_UNKNOWN")

    def test_concurrent_patches_of_the_same_range(self, reg, client_for):
        """Six clients PATCH 0-99 into one session at once, each its own bytes: exactly one may win, the
        others get 416 (another chunk is in progress, or the offset has moved), and the blob is exactly the
        winner's 100 bytes. With two nodes the requests alternate between them: the upload's claim in the
        shared database refuses the losers before they write (docs/s3.md, "Concurrent writes of one upload")."""
        repo = unique()
        datas = [os.urandom(100) for _ in range(6)]
        loc = reg.start_upload(repo)
        barrier = threading.Barrier(6)

        def go(i):
            c = client_for(reg.server)
            barrier.wait()
            return patch_chunk(c, loc, datas[i], 0).status_code

        with cf.ThreadPoolExecutor(6) as ex:
            codes = list(ex.map(go, range(6)))
        assert codes.count(202) == 1, f"statuses: {codes}"
        assert all(c == 416 for c in codes if c != 202), f"statuses: {codes}"
        data = datas[codes.index(202)]
        st = upload_status(reg, loc)
        assert parse_range(st.headers.get("Range")) == (0, 99)
        r = reg.put(add_query(reg.location(st), digest=sha256(data)))
        assert r.status_code == 201, describe(r)
        reg.blob_ok(repo, sha256(data), data)


# =============================================================================================
# cross-repository mount
# =============================================================================================
class TestMount:
    def test_mount_from_other_repository(self, reg):
        src, dst = unique("src"), unique("dst")
        data = os.urandom(3000)
        digest = reg.push_blob(src, data)
        r = reg.post(f"/v2/{dst}/blobs/uploads/?mount={digest}&from={src}")
        assert r.status_code == 201, describe(r)
        assert r.headers.get("Location")
        assert r.headers.get("Docker-Content-Digest") in (None, digest)
        reg.blob_ok(dst, digest, data)

    def test_mount_unknown_blob_starts_an_upload(self, reg):
        src, dst = unique("src"), unique("dst")
        reg.push_blob(src, b"src exists")
        r = reg.post(f"/v2/{dst}/blobs/uploads/?mount={UNKNOWN_DIGEST}&from={src}")
        assert r.status_code == 202, describe(r)
        data = os.urandom(100)
        r2 = reg.put(add_query(reg.location(r), digest=sha256(data)), data=data, headers=OCTET)
        assert r2.status_code == 201, describe(r2)
        reg.blob_ok(dst, sha256(data), data)

    def test_mount_from_repository_that_lacks_the_blob(self, reg):
        a, b, dst = unique("a"), unique("b"), unique("dst")
        digest = reg.push_blob(a, os.urandom(64))
        reg.push_blob(b, b"b exists")
        r = reg.post(f"/v2/{dst}/blobs/uploads/?mount={digest}&from={b}")
        # spec: "The registry MAY treat the from parameter as optional, and it MAY cross-mount the
        # blob if it can be found" -- so 201 is allowed, but then the blob must really be there
        assert r.status_code in (201, 202), describe(r)
        if r.status_code == 201:
            assert reg.head(f"/v2/{dst}/blobs/{digest}").status_code == 200
        else:
            assert reg.location(r)
            assert reg.head(f"/v2/{dst}/blobs/{digest}").status_code == 404

    def test_automatic_mount_without_from(self, reg):
        src, dst = unique("src"), unique("dst")
        data = os.urandom(777)
        digest = reg.push_blob(src, data)
        r = reg.post(f"/v2/{dst}/blobs/uploads/?mount={digest}")
        assert r.status_code == 201, describe(r)
        reg.blob_ok(dst, digest, data)

    @pytest.mark.parametrize("frm", ["../../etc", "UPPER", "a%2Fb", "-x", ""])
    def test_mount_from_invalid_name(self, reg, frm):
        dst = unique("dst")
        digest = reg.push_blob(unique(), os.urandom(50))
        r = raw_request(reg.server, "POST", f"/v2/{dst}/blobs/uploads/?mount={digest}&from={frm}")
        assert r.status in (201, 202, 400), str(r)

    @pytest.mark.parametrize("bad", ["sha256:abc", "nope"])
    def test_mount_malformed_digest(self, reg, bad):
        src, dst = unique("src"), unique("dst")
        reg.push_blob(src, b"x")
        r = reg.post(f"/v2/{dst}/blobs/uploads/?" + urllib.parse.urlencode({"mount": bad, "from": src}))
        assert r.status_code in (202, 400), describe(r)
        if r.status_code == 400:
            assert_oci_error(r, 400, "DIGEST_INVALID")


# =============================================================================================
# manifests
# =============================================================================================
class TestManifests:
    def test_push_pull_by_tag_and_digest(self, reg):
        repo = f"library/{unique()}"
        img = reg.push_image(repo, tag="v1", n_layers=2)
        for ref in ("v1", img.digest):
            r = reg.get_manifest(repo, ref)
            assert r.status_code == 200, describe(r)
            assert r.content == img.manifest, "registry must store the manifest byte-for-byte"
            assert r.headers.get("Content-Type") == OCI_MANIFEST
            assert r.headers.get("Docker-Content-Digest") == img.digest
            h = reg.get_manifest(repo, ref, method="HEAD")
            assert h.status_code == 200
            assert int(h.headers["Content-Length"]) == len(img.manifest)
            assert h.headers.get("Docker-Content-Digest") == img.digest
            assert h.headers.get("Content-Type") == OCI_MANIFEST

    def test_location_of_pushed_manifest_is_pullable(self, reg):
        repo = unique()
        cfg = bh.random_config()
        reg.push_blob(repo, cfg)
        body = make_manifest(descriptor(OCI_CONFIG, cfg), [])
        r = reg.put_manifest(repo, "loc", body)
        assert r.status_code == 201, describe(r)
        g = reg.get(reg.location(r), headers={"Accept": OCI_MANIFEST})
        assert g.status_code == 200 and g.content == body

    def test_bytes_preserved_exactly(self, reg):
        repo = unique()
        cfg = bh.random_config()
        reg.push_blob(repo, cfg)
        d = descriptor(OCI_CONFIG, cfg)
        body = ('{\n   "layers" : [ ],\n\t"schemaVersion":2,  "mediaType": "%s",\n "config": %s ,'
                '"annotations":{"z":"\\u00e9\\u2603","a":"1"}}\n\n' % (OCI_MANIFEST, json.dumps(d, indent=3))).encode()
        r = reg.put_manifest(repo, "odd", body)
        assert r.status_code == 201, describe(r)
        assert r.headers.get("Docker-Content-Digest") in (None, sha256(body))
        g = reg.get_manifest(repo, "odd")
        assert g.content == body
        assert reg.get_manifest(repo, sha256(body)).content == body

    def test_push_by_digest_creates_no_tag(self, reg):
        repo = unique()
        img = reg.push_image(repo, tag="keep")
        img2 = reg.push_image(repo, by_digest=True)
        assert reg.get_manifest(repo, img2.digest).status_code == 200
        assert reg.tags(repo) == ["keep"]

    def test_push_by_mismatched_digest(self, reg):
        repo = unique()
        img = reg.push_image(repo, tag="a")
        other = sha256(b"not this manifest")
        r = reg.put_manifest(repo, other, img.manifest)
        assert_oci_error(r, 400, "DIGEST_INVALID")
        assert reg.get_manifest(repo, other).status_code == 404

    def test_content_type_with_parameters_is_accepted(self, reg):
        repo = unique()
        cfg = bh.random_config()
        reg.push_blob(repo, cfg)
        body = make_manifest(descriptor(OCI_CONFIG, cfg), [])
        r = reg.put_manifest(repo, "p", body, OCI_MANIFEST + "; charset=utf-8")
        assert r.status_code == 201, describe(r)

    def test_manifest_without_media_type_field(self, reg):
        """image-spec: `mediaType` SHOULD be set; its absence is not an error."""
        repo = unique()
        cfg = bh.random_config()
        reg.push_blob(repo, cfg)
        body = make_manifest(descriptor(OCI_CONFIG, cfg), [], media_type=None)
        r = reg.put_manifest(repo, "nomt", body, OCI_MANIFEST)
        assert r.status_code == 201, describe(r)
        g = reg.get_manifest(repo, "nomt")
        assert g.content == body and g.headers.get("Content-Type") == OCI_MANIFEST

    def test_docker_schema2_manifest(self, reg):
        repo = unique()
        img = reg.push_image(repo, tag="d", media_type=DOCKER_MANIFEST)
        g = reg.get_manifest(repo, "d")
        assert g.status_code == 200 and g.content == img.manifest
        assert g.headers.get("Content-Type") == DOCKER_MANIFEST

    def test_oci_index_and_docker_list(self, reg):
        repo = unique()
        a = reg.push_image(repo, by_digest=True)
        b = reg.push_image(repo, by_digest=True)
        idx = make_index([a.descriptor(platform={"architecture": "amd64", "os": "linux"}),
                          b.descriptor(platform={"architecture": "arm64", "os": "linux"})])
        r = reg.put_manifest(repo, "multi", idx, OCI_INDEX)
        assert r.status_code == 201, describe(r)
        g = reg.get_manifest(repo, "multi")
        assert g.content == idx and g.headers.get("Content-Type") == OCI_INDEX
        assert g.headers.get("Docker-Content-Digest") == sha256(idx)

        d1 = reg.push_image(repo, by_digest=True, media_type=DOCKER_MANIFEST)
        lst = make_index([d1.descriptor(platform={"architecture": "amd64", "os": "linux"})],
                         media_type=DOCKER_LIST)
        r = reg.put_manifest(repo, "dlist", lst, DOCKER_LIST)
        assert r.status_code == 201, describe(r)
        g = reg.get_manifest(repo, "dlist")
        assert g.content == lst and g.headers.get("Content-Type") == DOCKER_LIST

    def test_index_referencing_missing_manifest(self, reg):
        repo = unique()
        a = reg.push_image(repo, by_digest=True)
        missing = {"mediaType": OCI_MANIFEST, "digest": UNKNOWN_DIGEST, "size": 321}
        idx = make_index([a.descriptor(), missing])
        r = reg.put_manifest(repo, "broken", idx, OCI_INDEX)
        assert_oci_error(r, 400, {"MANIFEST_BLOB_UNKNOWN", "MANIFEST_UNKNOWN"})
        assert reg.get_manifest(repo, "broken").status_code == 404

    def test_manifest_referencing_missing_layer(self, reg):
        repo = unique()
        cfg = bh.random_config()
        reg.push_blob(repo, cfg)
        body = make_manifest(descriptor(OCI_CONFIG, cfg),
                             [{"mediaType": OCI_LAYER, "digest": UNKNOWN_DIGEST, "size": 10}])
        r = reg.put_manifest(repo, "x", body)
        assert_oci_error(r, 400, {"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"})
        assert reg.get_manifest(repo, "x").status_code == 404

    def test_manifest_referencing_missing_config(self, reg):
        repo = unique()
        layer = os.urandom(100)
        reg.push_blob(repo, layer)
        body = make_manifest({"mediaType": OCI_CONFIG, "digest": UNKNOWN_DIGEST, "size": 10},
                             [descriptor(OCI_LAYER, layer)])
        r = reg.put_manifest(repo, "x", body)
        assert_oci_error(r, 400, {"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"})

    def test_manifest_referencing_blob_of_another_repository(self, reg):
        other, repo = unique("o"), unique("r")
        layer = os.urandom(100)
        reg.push_blob(other, layer)
        cfg = bh.random_config()
        reg.push_blob(repo, cfg)
        body = make_manifest(descriptor(OCI_CONFIG, cfg), [descriptor(OCI_LAYER, layer)])
        r = reg.put_manifest(repo, "x", body)
        assert_oci_error(r, 400, {"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN"})

    def test_manifest_unknown(self, reg):
        repo = unique()
        reg.push_image(repo, tag="exists")
        assert_oci_error(reg.get_manifest(repo, "nosuchtag"), 404, "MANIFEST_UNKNOWN")
        assert_oci_error(reg.get_manifest(repo, UNKNOWN_DIGEST), 404, "MANIFEST_UNKNOWN")
        assert reg.get_manifest(repo, "nosuchtag", method="HEAD").status_code == 404
        r = reg.get_manifest(unique("nope"), "latest")
        assert_oci_error(r, 404, {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"})

    def test_tag_overwrite(self, reg):
        repo = unique()
        a = reg.push_image(repo, tag="moving")
        b = reg.push_image(repo, tag="moving")
        g = reg.get_manifest(repo, "moving")
        assert g.headers.get("Docker-Content-Digest") == b.digest and g.content == b.manifest
        assert reg.get_manifest(repo, a.digest).content == a.manifest
        assert reg.tags(repo) == ["moving"]

    def test_valid_tag_edge_cases(self, reg):
        repo = unique()
        img = reg.push_image(repo, by_digest=True)
        for tag in ("A_b.c-1", "_leading_underscore", "x" * 128, "0", "1.2.3-rc.1"):
            r = reg.put_manifest(repo, tag, img.manifest)
            assert r.status_code == 201, f"{tag}: {describe(r)}"
            assert reg.get_manifest(repo, tag).content == img.manifest

    @pytest.mark.parametrize("tag", ["-dash", ".dot", "x" * 129, "sp%20ace", "semi;colon", "a+b"])
    def test_invalid_tag(self, reg, tag):
        repo = unique()
        img = reg.push_image(repo, by_digest=True)
        r = raw_request(reg.server, "PUT", f"/v2/{repo}/manifests/{tag}",
                        headers={"Content-Type": OCI_MANIFEST}, body=img.manifest)
        assert r.status in (400, 404), str(r)
        assert r.status != 201
        assert bh.raw_error_codes(r), f"error body expected: {r}"

    @pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
    @pytest.mark.parametrize("ref", [".INVALID_MANIFEST_NAME", "-dash", "x" * 129])
    def test_reference_that_is_no_tag_is_unknown_on_read(self, reg, ref, method):
        """distribution-spec v1.1.1 conformance: "GET/HEAD nonexistent manifest should return 404"
        with the reference `.INVALID_MANIFEST_NAME`. Such a reference names nothing: 404
        MANIFEST_UNKNOWN on GET, HEAD and DELETE; a PUT under it stays 400 TAG_INVALID."""
        repo = unique()
        img = reg.push_image(repo, tag="t")
        r = reg.request(method, f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        if method == "HEAD":
            assert r.status_code == 404, describe(r)
        else:
            assert_oci_error(r, 404, "MANIFEST_UNKNOWN")
        assert_oci_error(reg.put_manifest(repo, ref, img.manifest), 400, "TAG_INVALID")
        assert reg.get_manifest(repo, "t").content == img.manifest

    @pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
    @pytest.mark.parametrize("bad", ["sha256:abc", "sha256:" + "g" * 64, "sha256:" + "A" * 64],
                             ids=["short", "nonhex", "uppercase"])
    def test_malformed_digest_reference(self, reg, bad, method):
        """A reference with a colon is a digest (tags cannot contain ':'); a malformed one is
        DIGEST_INVALID, whatever the method."""
        repo = unique()
        img = reg.push_image(repo, tag="t")
        if method == "PUT":
            r = reg.put_manifest(repo, bad, img.manifest)
        else:
            r = reg.request(method, f"/v2/{repo}/manifests/{bad}", headers={"Accept": OCI_MANIFEST})
        assert_oci_error(r, 400, {"DIGEST_INVALID"})

    def test_delete_tag_keeps_manifest(self, reg):
        repo = unique()
        img = reg.push_image(repo, tag="one")
        assert reg.put_manifest(repo, "two", img.manifest).status_code == 201
        r = reg.delete(f"/v2/{repo}/manifests/one")
        assert r.status_code == 202, describe(r)
        assert_oci_error(reg.get_manifest(repo, "one"), 404, "MANIFEST_UNKNOWN")
        assert reg.get_manifest(repo, "two").status_code == 200
        assert reg.get_manifest(repo, img.digest).status_code == 200
        assert reg.tags(repo) == ["two"]
        assert_oci_error(reg.delete(f"/v2/{repo}/manifests/one"), 404, "MANIFEST_UNKNOWN")

    def test_delete_manifest_by_digest_removes_its_tags(self, reg):
        repo = unique()
        keep = reg.push_image(repo, tag="keep")
        img = reg.push_image(repo, tag="one")
        assert reg.put_manifest(repo, "two", img.manifest).status_code == 201
        r = reg.delete(f"/v2/{repo}/manifests/{img.digest}")
        assert r.status_code == 202, describe(r)
        for ref in (img.digest, "one", "two"):
            assert_oci_error(reg.get_manifest(repo, ref), 404, "MANIFEST_UNKNOWN")
        assert reg.tags(repo) == ["keep"]
        assert reg.get_manifest(repo, "keep").content == keep.manifest
        assert_oci_error(reg.delete(f"/v2/{repo}/manifests/{img.digest}"), 404, "MANIFEST_UNKNOWN")

    def test_delete_manifest_an_index_lists_is_refused(self, reg):
        # The rule ECR's BatchDeleteImage applies (ImageReferencedByManifestList) holds on /v2 too: a manifest
        # an index in the repository lists stays until the index is deleted. Berth answers 409 DENIED (the
        # distribution spec has no code for it); the index and the manifest are unchanged.
        repo = unique()
        child = reg.push_image(repo, tag="child")
        idx = make_index([child.descriptor(platform={"architecture": "amd64", "os": "linux"})])
        assert reg.put_manifest(repo, "multi", idx, OCI_INDEX).status_code == 201
        r = reg.delete(f"/v2/{repo}/manifests/{child.digest}")
        assert_oci_error(r, 409, "DENIED")
        assert sha256(idx) in r.text, r.text
        assert reg.get_manifest(repo, child.digest).content == child.manifest
        assert reg.get_manifest(repo, "multi").content == idx
        assert reg.tags(repo) == ["child", "multi"]
        # deleting a tag of the listed manifest is still allowed
        assert reg.delete(f"/v2/{repo}/manifests/child").status_code == 202
        # once the index is gone, the manifest can go
        assert reg.delete(f"/v2/{repo}/manifests/{sha256(idx)}").status_code == 202
        assert reg.delete(f"/v2/{repo}/manifests/{child.digest}").status_code == 202
        assert_oci_error(reg.get_manifest(repo, child.digest), 404, "MANIFEST_UNKNOWN")

    def test_delete_in_unknown_repository(self, reg):
        r = reg.delete(f"/v2/{unique('nope')}/manifests/{UNKNOWN_DIGEST}")
        assert_oci_error(r, 404, {"NAME_UNKNOWN", "MANIFEST_UNKNOWN"})


class TestBadManifests:
    @pytest.fixture
    def ctx(self, reg):
        repo = unique()
        cfg = bh.random_config()
        layer = os.urandom(200)
        reg.push_blob(repo, cfg)
        reg.push_blob(repo, layer)
        return repo, descriptor(OCI_CONFIG, cfg), descriptor(OCI_LAYER, layer)

    def _refused(self, reg, repo, body, content_type=OCI_MANIFEST, codes="MANIFEST_INVALID", tag="bad"):
        r = reg.put_manifest(repo, tag, body, content_type)
        assert_oci_error(r, 400, codes)
        assert reg.get_manifest(repo, tag).status_code == 404, "a refused manifest must not be tagged"
        assert reg.get_manifest(repo, sha256(body)).status_code in (400, 404)

    @pytest.mark.parametrize("body", [b"", b"{not json", b"[]", b'"a string"', b"null", b"42",
                                      b'{"schemaVersion":2', b"\xff\xfe\x00garbage",
                                      b'{"schemaVersion":2,"mediaType":"' + OCI_MANIFEST.encode() + b'"}'],
                             ids=["empty", "broken", "array", "string", "null", "number",
                                  "truncated", "binary", "no-config-no-layers"])
    def test_malformed_json(self, reg, ctx, body):
        repo, _, _ = ctx
        self._refused(reg, repo, body)

    def test_deeply_nested_json(self, reg, ctx):
        repo, _, _ = ctx
        body = b'{"schemaVersion":2,"x":' + b"[" * 100000 + b"]" * 100000 + b"}"
        self._refused(reg, repo, body)

    def test_wrong_field_types(self, reg, ctx):
        repo, cfg, layer = ctx
        cases = [
            dict(schemaVersion="2", mediaType=OCI_MANIFEST, config=cfg, layers=[layer]),
            dict(schemaVersion=2, mediaType=OCI_MANIFEST, config=cfg, layers=layer),
            dict(schemaVersion=2, mediaType=OCI_MANIFEST, config="sha256:x", layers=[layer]),
            dict(schemaVersion=2, mediaType=OCI_MANIFEST, config={**cfg, "size": -1}, layers=[layer]),
            dict(schemaVersion=2, mediaType=OCI_MANIFEST, config={**cfg, "size": "12"}, layers=[layer]),
            dict(schemaVersion=2, mediaType=OCI_MANIFEST, config=cfg, layers=[{**layer, "digest": 5}]),
            dict(schemaVersion=3, mediaType=OCI_MANIFEST, config=cfg, layers=[layer]),
            dict(schemaVersion=2, mediaType=OCI_MANIFEST, layers=[layer]),
        ]
        for i, m in enumerate(cases):
            self._refused(reg, repo, bh.dumps(m), tag=f"bad{i}")

    def test_malformed_subject(self, reg, ctx):
        repo, cfg, layer = ctx
        for i, subject in enumerate([{"mediaType": OCI_MANIFEST, "digest": "sha256:nothex", "size": 1},
                                     {"mediaType": OCI_MANIFEST, "size": 1},
                                     "sha256:" + "a" * 64]):
            body = make_manifest(cfg, [layer], subject=subject)
            self._refused(reg, repo, body, codes={"MANIFEST_INVALID", "DIGEST_INVALID"}, tag=f"subj{i}")

    def test_malformed_digest_inside_manifest(self, reg, ctx):
        repo, cfg, layer = ctx
        body = make_manifest(cfg, [{**layer, "digest": "sha256:zzzz"}])
        self._refused(reg, repo, body, codes={"MANIFEST_INVALID", "DIGEST_INVALID"})

    @pytest.mark.parametrize("ctype", [DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1, OCI_MANIFEST])
    def test_schema1_refused(self, reg, ctx, ctype):
        repo, _, layer = ctx
        body = bh.dumps({
            "schemaVersion": 1, "name": repo, "tag": "old", "architecture": "amd64",
            "fsLayers": [{"blobSum": layer["digest"]}],
            "history": [{"v1Compatibility": json.dumps({"id": "a" * 64, "created": "2020-01-01T00:00:00Z"})}],
            "signatures": [{"header": {"jwk": {"crv": "P-256", "kty": "EC", "x": "x", "y": "y"}, "alg": "ES256"},
                            "signature": "c2lnbmF0dXJl", "protected": "eyJmb3JtYXRMZW5ndGgiOjEsImZvcm1hdFRhaWwiOiJmUSJ9"}],
        })
        self._refused(reg, repo, body, content_type=ctype, tag="old")

    def test_content_type_differs_from_media_type(self, reg, ctx):
        repo, cfg, layer = ctx
        oci = make_manifest(cfg, [layer])
        self._refused(reg, repo, oci, content_type=DOCKER_MANIFEST, tag="mm1")
        self._refused(reg, repo, oci, content_type=OCI_INDEX, tag="mm2")
        docker = make_manifest(cfg, [layer], media_type=DOCKER_MANIFEST)
        self._refused(reg, repo, docker, content_type=OCI_MANIFEST, tag="mm3")

    def test_index_body_sent_as_manifest(self, reg, ctx):
        repo, cfg, layer = ctx
        img = make_manifest(cfg, [layer])
        assert reg.put_manifest(repo, sha256(img), img).status_code == 201
        idx = make_index([descriptor(OCI_MANIFEST, img)])
        self._refused(reg, repo, idx, content_type=OCI_MANIFEST, tag="mm4")

    def test_oversized_manifest_refused(self, reg, ctx):
        repo, cfg, layer = ctx
        body = make_manifest(cfg, [layer], annotations={"pad": "x" * (4 * 1024 * 1024 + 65536)})
        try:
            r = reg.put_manifest(repo, "huge", body)
        except requests.ConnectionError:
            # answering early and closing the connection is legitimate HTTP for a too-large body
            assert reg.get_manifest(repo, "huge").status_code == 404
            return
        # spec: "SHOULD respond ... with a response code 413 Payload Too Large"
        assert r.status_code in (413, 400), describe(r)
        if r.status_code == 400 or r.content:
            assert_oci_error(r, r.status_code, {"SIZE_INVALID", "MANIFEST_INVALID"})
        assert reg.get_manifest(repo, "huge").status_code == 404

    def test_four_mib_manifest_accepted(self, reg, ctx):
        """spec: 'Clients and registries SHOULD expect to support manifest uploads of at least 4 MiB'"""
        repo, cfg, layer = ctx
        limit = 4 * 1024 * 1024
        probe = make_manifest(cfg, [layer], annotations={"pad": ""})
        body = make_manifest(cfg, [layer], annotations={"pad": "x" * (limit - len(probe))})
        assert len(body) == limit
        r = reg.put_manifest(repo, "big", body)
        assert r.status_code == 201, describe(r)
        assert reg.get_manifest(repo, "big").content == body


# =============================================================================================
# tags list and catalog
# =============================================================================================
def collect_pages(reg, first_url, key):
    url, pages, seen = first_url, [], []
    for _ in range(50):
        r = reg.get(url)
        assert r.status_code == 200, describe(r)
        items = r.json().get(key) or []
        pages.append(items)
        seen.extend(items)
        nxt = r.links.get("next", {}).get("url")
        if not nxt:
            break
        url = nxt
    else:
        raise AssertionError("pagination did not terminate")
    return pages, seen


class TestTagsList:
    TAGS = ["alpha", "beta", "delta", "epsilon", "gamma", "1.0", "1.1", "latest"]

    @pytest.fixture(scope="class")
    def tagged_repo(self, shared_server):
        c = bh.Client(shared_server)
        repo = f"tags/{unique()}"
        img = c.push_image(repo, by_digest=True)
        for t in self.TAGS:
            assert c.put_manifest(repo, t, img.manifest).status_code == 201
        return repo

    def test_full_list_sorted(self, reg, tagged_repo):
        r = reg.get(f"/v2/{tagged_repo}/tags/list")
        assert r.status_code == 200, describe(r)
        body = r.json()
        assert body["name"] == tagged_repo
        assert body["tags"] == sorted(self.TAGS)

    def test_n_limits_and_link_paginates(self, reg, tagged_repo):
        r = reg.get(f"/v2/{tagged_repo}/tags/list?n=3")
        assert r.status_code == 200
        assert r.json()["tags"] == sorted(self.TAGS)[:3]
        assert "next" in r.links, f"expected Link rel=next, headers: {dict(r.headers)}"
        pages, seen = collect_pages(reg, f"/v2/{tagged_repo}/tags/list?n=3", "tags")
        assert seen == sorted(self.TAGS)
        assert all(len(p) <= 3 for p in pages)

    def test_last(self, reg, tagged_repo):
        r = reg.get(f"/v2/{tagged_repo}/tags/list?last=beta")
        assert r.status_code == 200
        assert r.json()["tags"] == [t for t in sorted(self.TAGS) if t > "beta"]
        r = reg.get(f"/v2/{tagged_repo}/tags/list?n=2&last=beta")
        assert r.json()["tags"] == [t for t in sorted(self.TAGS) if t > "beta"][:2]
        r = reg.get(f"/v2/{tagged_repo}/tags/list?last=zzzz")
        assert (r.json().get("tags") or []) == []

    def test_n_zero(self, reg, tagged_repo):
        r = reg.get(f"/v2/{tagged_repo}/tags/list?n=0")
        assert r.status_code == 200, describe(r)
        assert (r.json().get("tags") or []) == []
        assert "Link" not in r.headers

    def test_n_larger_than_count(self, reg, tagged_repo):
        r = reg.get(f"/v2/{tagged_repo}/tags/list?n=1000")
        assert r.json()["tags"] == sorted(self.TAGS)
        assert "next" not in r.links

    @pytest.mark.parametrize("n", ["abc", "-1", "1e3", "99999999999999999999999"])
    def test_bad_n_is_not_5xx(self, reg, tagged_repo, n):
        r = reg.get(f"/v2/{tagged_repo}/tags/list?n={n}")
        assert r.status_code in (200, 400), describe(r)

    def test_unknown_repository(self, reg):
        assert_oci_error(reg.get(f"/v2/{unique('nope')}/tags/list"), 404, "NAME_UNKNOWN")


def test_catalog(fresh):
    repos = sorted(["alpha", "beta/one", "beta/two", "library/debian", "z.z_z-z", "m/n/o/p"])
    img = None
    for repo in repos:
        img = fresh.push_image(repo, tag="t")
    r = fresh.get("/v2/_catalog")
    assert r.status_code == 200, describe(r)
    assert r.json()["repositories"] == repos
    r = fresh.get("/v2/_catalog?n=2")
    assert r.json()["repositories"] == repos[:2]
    assert "next" in r.links
    pages, seen = collect_pages(fresh, "/v2/_catalog?n=2", "repositories")
    assert seen == repos and all(len(p) <= 2 for p in pages)
    r = fresh.get("/v2/_catalog?last=beta/one")
    assert r.json()["repositories"] == [x for x in repos if x > "beta/one"]
    r = fresh.get("/v2/_catalog?n=0")
    assert (r.json().get("repositories") or []) == [] and "Link" not in r.headers


# =============================================================================================
# referrers
# =============================================================================================
SBOM = "application/vnd.berth.test.sbom.v1+json"
SIG_CONFIG = "application/vnd.berth.test.signature.config.v1+json"


class TestReferrers:
    @pytest.fixture(scope="class")
    def graph(self, shared_server):
        c = bh.Client(shared_server)
        repo = f"refs/{unique()}"
        subject = c.push_image(repo, tag="app")
        c.push_blob(repo, EMPTY_JSON)
        blob = b"sbom document " + os.urandom(8)
        c.push_blob(repo, blob)
        sig_cfg = b'{"sig":"config"}'
        c.push_blob(repo, sig_cfg)

        out = {"repo": repo, "subject": subject}
        # A: artifactType field, empty config
        a = make_manifest({"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
                          [descriptor("application/spdx+json", blob)],
                          head={"artifactType": SBOM},
                          subject=subject.descriptor(), annotations={"org.example.kind": "sbom"})
        # B: no artifactType, custom config media type (=> artifactType = config.mediaType)
        b = make_manifest(descriptor(SIG_CONFIG, sig_cfg), [descriptor("application/octet-stream", blob)],
                          subject=subject.descriptor(), annotations={"org.example.kind": "sig",
                                                                     "org.example.n": "2"})
        # C: an index with a subject and no artifactType
        c_idx = make_index([], subject=subject.descriptor(), annotations={"org.example.kind": "idx"})
        # D: referrer to a subject that does not exist (must still be accepted)
        ghost = {"mediaType": OCI_MANIFEST, "digest": sha256(b"ghost" + os.urandom(4)), "size": 123}
        d = make_manifest({"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
                          [descriptor("application/spdx+json", blob)], head={"artifactType": SBOM},
                          subject=ghost, annotations={"org.example.kind": "orphan"})
        for name, body, ctype in (("a", a, OCI_MANIFEST), ("b", b, OCI_MANIFEST),
                                  ("c", c_idx, OCI_INDEX), ("d", d, OCI_MANIFEST)):
            r = c.put_manifest(repo, sha256(body), body, ctype)
            out[name] = body
            out[name + "_resp"] = (r.status_code, r.headers.get("OCI-Subject"), describe(r))
        out["ghost"] = ghost
        return out

    def test_push_returns_oci_subject(self, reg, graph):
        subj = graph["subject"].digest
        for name, expect in (("a", subj), ("b", subj), ("c", subj), ("d", graph["ghost"]["digest"])):
            status, header, desc = graph[name + "_resp"]
            assert status == 201, f"{name}: {desc}"
            assert header == expect, f"{name}: OCI-Subject {header!r} != {expect}"

    def test_list_referrers(self, reg, graph):
        repo, subj = graph["repo"], graph["subject"].digest
        r = reg.get(f"/v2/{repo}/referrers/{subj}")
        assert r.status_code == 200, describe(r)
        assert r.headers.get("Content-Type", "").split(";")[0].strip() == OCI_INDEX
        idx = r.json()
        assert idx["schemaVersion"] == 2 and idx.get("mediaType") == OCI_INDEX
        by_digest = {m["digest"]: m for m in idx["manifests"]}
        expected = {sha256(graph[k]): k for k in ("a", "b", "c")}
        assert set(by_digest) == set(expected), f"referrers: {idx}"
        a = by_digest[sha256(graph["a"])]
        assert a["mediaType"] == OCI_MANIFEST and a["size"] == len(graph["a"])
        assert a["artifactType"] == SBOM
        assert a["annotations"] == {"org.example.kind": "sbom"}
        b = by_digest[sha256(graph["b"])]
        assert b["artifactType"] == SIG_CONFIG, "artifactType must fall back to config.mediaType"
        assert b["annotations"] == {"org.example.kind": "sig", "org.example.n": "2"}
        assert b["size"] == len(graph["b"]) and b["mediaType"] == OCI_MANIFEST
        c = by_digest[sha256(graph["c"])]
        assert c["mediaType"] == OCI_INDEX and "artifactType" not in c
        assert c["annotations"] == {"org.example.kind": "idx"}

    def test_filter_by_artifact_type(self, reg, graph):
        repo, subj = graph["repo"], graph["subject"].digest
        r = reg.get(f"/v2/{repo}/referrers/{subj}", params={"artifactType": SBOM})
        assert r.status_code == 200, describe(r)
        assert r.headers.get("OCI-Filters-Applied") == "artifactType"
        assert [m["digest"] for m in r.json()["manifests"]] == [sha256(graph["a"])]
        r = reg.get(f"/v2/{repo}/referrers/{subj}", params={"artifactType": SIG_CONFIG})
        assert r.headers.get("OCI-Filters-Applied") == "artifactType"
        assert [m["digest"] for m in r.json()["manifests"]] == [sha256(graph["b"])]
        r = reg.get(f"/v2/{repo}/referrers/{subj}", params={"artifactType": "application/x-none"})
        assert r.status_code == 200 and r.json()["manifests"] == []
        assert r.headers.get("OCI-Filters-Applied") == "artifactType"

    def test_referrers_of_missing_subject(self, reg, graph):
        r = reg.get(f"/v2/{graph['repo']}/referrers/{graph['ghost']['digest']}")
        assert r.status_code == 200, describe(r)
        assert [m["digest"] for m in r.json()["manifests"]] == [sha256(graph["d"])]

    def test_unknown_digest_gives_empty_index(self, reg, graph):
        r = reg.get(f"/v2/{graph['repo']}/referrers/{UNKNOWN_DIGEST}")
        assert r.status_code == 200, describe(r)
        assert r.headers.get("Content-Type", "").split(";")[0].strip() == OCI_INDEX
        body = r.json()
        assert body["schemaVersion"] == 2 and body["manifests"] == []

    def test_referrers_are_per_repository(self, reg, graph):
        other = unique()
        reg.push_image(other, tag="x")
        r = reg.get(f"/v2/{other}/referrers/{graph['subject'].digest}")
        assert r.status_code == 200 and r.json()["manifests"] == []

    @pytest.mark.parametrize("bad", ["sha256:abc", "sha256:" + "g" * 64, "latest"])
    def test_malformed_digest(self, reg, graph, bad):
        assert_oci_error(reg.get(f"/v2/{graph['repo']}/referrers/{bad}"), 400,
                         {"DIGEST_INVALID", "MANIFEST_INVALID"})

    def test_deleted_referrer_disappears(self, reg):
        repo = unique()
        subject = reg.push_image(repo, tag="s")
        reg.push_blob(repo, EMPTY_JSON)
        ref = make_manifest({"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2},
                            [{"mediaType": OCI_EMPTY, "digest": EMPTY_JSON_DIGEST, "size": 2}],
                            head={"artifactType": SBOM}, subject=subject.descriptor())
        r = reg.put_manifest(repo, sha256(ref), ref)
        assert r.status_code == 201 and r.headers.get("OCI-Subject") == subject.digest
        assert len(reg.get(f"/v2/{repo}/referrers/{subject.digest}").json()["manifests"]) == 1
        assert reg.delete(f"/v2/{repo}/manifests/{sha256(ref)}").status_code == 202
        assert reg.get(f"/v2/{repo}/referrers/{subject.digest}").json()["manifests"] == []

    def test_manifest_without_subject_has_no_oci_subject_header(self, reg):
        repo = unique()
        cfg = bh.random_config()
        reg.push_blob(repo, cfg)
        r = reg.put_manifest(repo, "plain", make_manifest(descriptor(OCI_CONFIG, cfg), []))
        assert r.status_code == 201 and "OCI-Subject" not in r.headers


# =============================================================================================
# repository names and path traversal
# =============================================================================================
INVALID_NAMES = ["UPPER", "Library/debian", "-lead", "trail-", "a..b", "a_-b", "a/-b", "a/.b",
                 "a/b/", "x" * 300, "a/" + "b" * 260, "sp ace", "a@b", "a:b", "é"]
VALID_NAMES = ["ab", "a0", "library/debian", "a.b_c-d/e/f", "a/b/c/d/e/f/g/h",
               "/".join(["abcdefghij" * 2] * 11)[:230]]


class TestNames:
    @pytest.mark.parametrize("name", INVALID_NAMES)
    def test_invalid_name(self, reg, name):
        qn = urllib.parse.quote(name, safe="/")
        r = reg.post(f"/v2/{qn}/blobs/uploads/")
        if name.endswith("/"):
            assert r.status_code in (400, 404), describe(r)
        else:
            assert_oci_error(r, 400, "NAME_INVALID")
        img_body = b'{"schemaVersion":2}'
        r = reg.put(f"/v2/{qn}/manifests/latest", data=img_body, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code in (400, 404), describe(r)
        if not name.endswith("/"):
            assert_oci_error(r, 400, "NAME_INVALID")
            assert_oci_error(reg.get(f"/v2/{qn}/tags/list"), 400, "NAME_INVALID")
            assert_oci_error(reg.get(f"/v2/{qn}/manifests/latest"), 400, "NAME_INVALID")
            assert_oci_error(reg.get(f"/v2/{qn}/blobs/{UNKNOWN_DIGEST}"), 400, "NAME_INVALID")

    @pytest.mark.parametrize("name", VALID_NAMES)
    def test_valid_name(self, reg, name):
        # make each valid name unique per run while keeping its shape
        img = reg.push_image(name, tag=unique())
        assert reg.get_manifest(name, img.tag).content == img.manifest
        assert reg.get(f"/v2/{name}/blobs/{img.config_digest}").status_code == 200

    TRAVERSALS = [
        "/v2/../../../../etc/passwd/blobs/uploads/",
        "/v2/a/../../b/blobs/uploads/",
        "/v2/a/%2e%2e/%2e%2e/b/blobs/uploads/",
        "/v2/..%2F..%2F..%2Ftmp%2Fberth-escape/blobs/uploads/",
        "/v2/a%2Fb/blobs/uploads/",
        "/v2/a%2F..%2F..%2Fescape/blobs/uploads/",
        "/v2/a/b%2F..%2F..%2F..%2Fescape/manifests/latest",
        "/v2/%2e%2e/blobs/uploads/",
        "/v2/a/..%2f..%2fescape/tags/list",
        "/v2/a/manifests/..%2F..%2F..%2Fescape",
        "/v2/a/blobs/..%2F..%2F..%2Fescape",
        "/v2/a/blobs/uploads/..%2F..%2F..%2Fescape",
        "/v2/a/referrers/..%2F..%2Fescape",
        "/v2/a%00b/blobs/uploads/",
        "/v2/a\\..\\..\\escape/blobs/uploads/",
    ]

    def test_path_traversal(self, reg, tmp_path):
        srv = reg.server
        parent = srv.data_dir.parent
        before = sorted(p.name for p in parent.iterdir())
        created_names = set()
        for path in self.TRAVERSALS:
            for method in ("POST", "PUT", "PATCH", "GET", "DELETE"):
                p = path
                if method == "PUT" and "uploads" in path:
                    p = path + f"?digest={sha256(b'pwn')}"
                r = raw_request(srv, method, p, headers={"Content-Type": OCI_MANIFEST}, body=b"pwn"
                                if method in ("PUT", "PATCH", "POST") else b"")
                assert r.status < 500, f"5xx: {r}"
                assert not (200 <= r.status < 300), f"traversal accepted: {r}"
        after = sorted(p.name for p in parent.iterdir())
        assert before == after, f"files appeared next to the data dir: {set(after) - set(before)}"
        for p in (srv.data_dir.parent.parent / "berth-escape", srv.data_dir.parent / "escape",
                  srv.data_dir / "escape"):
            assert not p.exists(), f"{p} created by a traversal request"
        r = reg.get("/v2/_catalog")
        if r.status_code == 200:
            for name in r.json().get("repositories") or []:
                assert ".." not in name and "%" not in name and "escape" not in name, name


# =============================================================================================
# concurrency
# =============================================================================================
class TestConcurrency:
    def test_parallel_pushes_of_the_same_blob(self, reg, client_for):
        data = os.urandom(3 * 1024 * 1024 + 5)
        digest = sha256(data)
        repos = [f"conc/{unique()}" for _ in range(3)]
        jobs = [(repos[i % 3], ("post_put", "single", "chunked")[i % 3]) for i in range(9)]
        barrier = threading.Barrier(len(jobs))

        def go(job):
            repo, method = job
            c = client_for(reg.server)
            barrier.wait()
            return c.push_blob(repo, data, method=method, chunk=512 * 1024)

        with cf.ThreadPoolExecutor(len(jobs)) as ex:
            results = list(ex.map(go, jobs))
        assert results == [digest] * len(jobs)
        for repo in repos:
            reg.blob_ok(repo, digest, data)
            h = reg.head(f"/v2/{repo}/blobs/{digest}")
            assert int(h.headers["Content-Length"]) == len(data)

    def test_same_tag_from_two_clients(self, reg, client_for):
        repo = unique()
        imgs = [reg.push_image(repo, by_digest=True) for _ in range(2)]
        rounds = 15
        barrier = threading.Barrier(2)

        def go(i):
            c = client_for(reg.server)
            codes = []
            for _ in range(rounds):
                barrier.wait()
                codes.append(c.put_manifest(repo, "shared", imgs[i].manifest).status_code)
            return codes

        with cf.ThreadPoolExecutor(2) as ex:
            results = list(ex.map(go, range(2)))
        assert all(code == 201 for codes in results for code in codes), results
        g = reg.get_manifest(repo, "shared")
        assert g.status_code == 200
        assert g.headers.get("Docker-Content-Digest") in {i.digest for i in imgs}
        assert sha256(g.content) == g.headers.get("Docker-Content-Digest")
        assert reg.tags(repo) == ["shared"]

    def test_manifest_push_racing_delete(self, reg, client_for):
        repo = unique()
        keep = reg.push_image(repo, tag="keep")
        img = reg.push_image(repo, by_digest=True)
        stop = time.monotonic() + 8
        n = 25

        def pusher():
            c = client_for(reg.server)
            codes = []
            for _ in range(n):
                if time.monotonic() > stop:
                    break
                codes.append(c.put_manifest(repo, "race", img.manifest).status_code)
            return codes

        def deleter():
            c = client_for(reg.server)
            codes = []
            for _ in range(n):
                if time.monotonic() > stop:
                    break
                codes.append(c.delete(f"/v2/{repo}/manifests/{img.digest}").status_code)
            return codes

        with cf.ThreadPoolExecutor(2) as ex:
            fp, fd = ex.submit(pusher), ex.submit(deleter)
            pc, dc = fp.result(), fd.result()
        assert set(pc) <= {201}, f"push statuses {pc}"
        assert set(dc) <= {202, 404}, f"delete statuses {dc}"

        tag = reg.get_manifest(repo, "race")
        by_digest = reg.get_manifest(repo, img.digest)
        tags = reg.tags(repo)
        assert tag.status_code in (200, 404)
        if tag.status_code == 200:
            assert tag.content == img.manifest
            assert by_digest.status_code == 200, "tag points to a manifest that is gone"
            assert "race" in tags
        else:
            assert "race" not in tags
        assert "keep" in tags and reg.get_manifest(repo, "keep").content == keep.manifest
        # the repository still works normally
        assert reg.put_manifest(repo, "race", img.manifest).status_code == 201
        assert reg.get_manifest(repo, "race").content == img.manifest

    def test_blob_push_racing_delete(self, reg, client_for):
        repo = unique()
        data = os.urandom(256 * 1024)
        digest = sha256(data)
        reg.push_blob(repo, data)
        n = 20

        def pusher():
            c = client_for(reg.server)
            out = []
            for _ in range(n):
                loc = c.start_upload(repo)
                out.append(c.put(add_query(loc, digest=digest), data=data, headers=OCTET).status_code)
            return out

        def deleter():
            c = client_for(reg.server)
            return [c.delete(f"/v2/{repo}/blobs/{digest}").status_code for _ in range(n)]

        with cf.ThreadPoolExecutor(2) as ex:
            fp, fd = ex.submit(pusher), ex.submit(deleter)
            pc, dc = fp.result(), fd.result()
        assert set(pc) <= {201}, pc
        assert set(dc) <= {202, 404}, dc
        h = reg.head(f"/v2/{repo}/blobs/{digest}")
        assert h.status_code in (200, 404)
        if h.status_code == 200:
            reg.blob_ok(repo, digest, data)
        reg.push_blob(repo, data)
        reg.blob_ok(repo, digest, data)

    def test_parallel_pushes_to_many_repositories(self, reg, client_for):
        base = unique("many")

        def go(i):
            c = client_for(reg.server)
            return c.push_image(f"{base}/r{i}", tag="v")

        with cf.ThreadPoolExecutor(8) as ex:
            imgs = list(ex.map(go, range(16)))
        for img in imgs:
            assert reg.get_manifest(img.repo, "v").content == img.manifest
