"""The public gallery (`/gallery/`) against the real `berth serve`: public repositories created with
catalog data through boto3's `ecr-public` client, images pushed with PutImage, then the HTML checked
as served (headers, ETags, what is listed and what never is), XSS payloads in every catalog field,
the setting that switches the pages off, and the pages rendered by headless Chromium (`--dump-dom`,
`--screenshot`; screenshots are kept under the test's tmp directory)."""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

import berth_helpers as bh
from berth_helpers import unique
from ecr_helpers import SKOPEO, ECRSession, SkopeoECR, ecr, put_api_image, running_server  # noqa: F401
from test_ecr_public import PNG, public_client
from test_postgres import pg_database, pg_server  # noqa: F401 (fixture)

CSP = "default-src 'none'"


def alias(session) -> str:
    return "r" + session.server.account_id


class Page(HTMLParser):
    """The elements of a page: (tag, attrs) in order, and the text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: (v or "") for k, v in attrs}))

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict]:
        return [a for t, a in self.elements if t == tag]

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def assert_inert(html: str):
    """No element, event handler or URL that a catalog text could have injected."""
    page = Page(html)
    allowed = {"html", "head", "meta", "title", "link", "script", "body", "a", "header", "span", "form", "label", "input",
               "button", "main", "footer", "p", "code", "h1", "h2", "h3", "h4", "h5", "h6", "section", "ul", "ol", "li",
               "img", "nav", "select", "option", "article", "div", "table", "thead", "tbody", "tr", "th", "td", "time", "pre",
               "em", "strong", "blockquote", "hr", "br"}
    for tag, attrs in page.elements:
        assert tag in allowed, f"injected <{tag}>"
        for k, v in attrs.items():
            assert not k.startswith("on"), f"event handler {k} on <{tag}>"
            if k in ("href", "src", "action"):
                assert not v.strip().lower().startswith(("javascript:", "data:", "vbscript:")), f"{k}={v!r} on <{tag}>"
    scripts = page.all("script")
    assert [s.get("src") for s in scripts] == ["/gallery/static/gallery.js"], scripts


def get(session, path: str, **kw) -> requests.Response:
    return requests.get(f"{session.server.url}{path}", timeout=30, allow_redirects=False, **kw)


def push_index(pub, repo: str, tag: str):
    """Two single-platform images (untagged) and an index listing them for linux/amd64 and linux/arm64/v8."""
    children = [put_api_image(pub, repo, layer_size=2000), put_api_image(pub, repo, layer_size=3000)]
    platforms = [{"architecture": "amd64", "os": "linux"}, {"architecture": "arm64", "os": "linux", "variant": "v8"}]
    body = bh.make_index([{"mediaType": bh.OCI_MANIFEST, "digest": c.digest, "size": len(c.manifest), "platform": p}
                          for c, p in zip(children, platforms)])
    pub.put_image(repositoryName=repo, imageManifest=body.decode(), imageTag=tag)
    return bh.sha256(body)


@pytest.fixture(scope="module")
def ecr_server(berth_bin, tmp_path_factory):  # noqa: F811 (this module's server reads the store on every page)
    with running_server(berth_bin, tmp_path_factory.mktemp("berth-gallery"), BERTH_GALLERY_CACHE_SECONDS="0") as srv:
        yield srv


@pytest.fixture
def pub(ecr):
    return public_client(ecr)


@pytest.fixture
def gallery_repo(ecr, pub):
    """A public repository with catalog data, an image tagged v1 and a multi-platform index tagged latest."""
    name = unique("gallery") + "/web"
    pub.put_registry_catalog_data(displayName="Gallery Tests")
    pub.create_repository(repositoryName=name, catalogData={
        "description": "A tiny web server for the gallery tests",
        "aboutText": "## What it is\n\nA **small** server. See [the docs](https://example.com/docs).",
        "usageText": "Run it:\n\n```\ndocker run --rm it\n```",
        "architectures": ["x86-64", "ARM 64"], "operatingSystems": ["Linux"], "logoImageBlob": PNG,
    })
    put_api_image(pub, name, tag="v1", layer_size=1500)
    index = push_index(pub, name, "latest")
    return name, index


def test_front_page_search_registry_and_repository_pages(ecr, pub, gallery_repo):
    name, index = gallery_repo
    a = alias(ecr)
    # A private repository, and a private one with the public one's name: never listed, never a page.
    private = unique("secret-private")
    ecr.client.create_repository(repositoryName=private)
    ecr.client.create_repository(repositoryName=name)

    r = get(ecr, "/gallery/")
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert r.headers["Content-Security-Policy"].startswith(CSP) and "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Cache-Control"].startswith("public")
    page = Page(r.text)
    links = [x["href"] for x in page.all("a")]
    assert f"/gallery/{a}/{name}" in links
    assert private not in r.text
    assert "A tiny web server for the gallery tests" in page.plain and "Gallery Tests" in page.plain
    assert {"src": f"/gallery/{a}/{name}/logo", "alt": "", "width": "48", "height": "48"} in page.all("img")
    assert any(o.get("value") == "ARM 64" for o in page.all("option"))
    assert_inert(r.text)
    # ETags: the same page again is 304 without a body.
    etag = r.headers["ETag"]
    again = get(ecr, "/gallery/", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    assert get(ecr, "/gallery").headers["Location"] == "/gallery/"
    head = requests.head(f"{ecr.server.url}/gallery/", timeout=30)
    assert head.status_code == 200 and head.content == b""

    # Filters: an architecture the repository lists keeps it, one it does not drops it.
    assert f"/gallery/{a}/{name}" in get(ecr, "/gallery/", params={"arch": "ARM 64"}).text
    assert f"/gallery/{a}/{name}" not in get(ecr, "/gallery/", params={"arch": "s390x"}).text

    # Search: by name, by description words, and nothing for a private name.
    found = get(ecr, "/gallery/search", params={"q": name.split("/")[0]})
    assert found.status_code == 200 and f"/gallery/{a}/{name}" in found.text
    assert f"/gallery/{a}/{name}" in get(ecr, "/gallery/search", params={"q": "tiny gallery"}).text
    nothing = get(ecr, "/gallery/search", params={"q": private})
    assert f"/gallery/{a}/{private}" not in nothing.text and "No public repository matches." in nothing.text

    reg = get(ecr, f"/gallery/{a}/")
    assert reg.status_code == 200 and f"/gallery/{a}/{name}" in reg.text and "Gallery Tests" in reg.text
    assert get(ecr, f"/gallery/{a}").headers["Location"] == f"/gallery/{a}/"
    assert get(ecr, "/gallery/r999999999999/").status_code == 404

    repo = get(ecr, f"/gallery/{a}/{name}")
    assert repo.status_code == 200
    assert_inert(repo.text)
    page = Page(repo.text)
    commands = [i["value"] for i in page.all("input") if i.get("readonly") is not None]
    ref = f"{ecr.server.hostport}/public/{a}/{name}:latest"
    assert commands == [f"docker pull {ref}", f"podman pull {ref}", f"skopeo copy docker://{ref} oci:web:latest"]
    assert {"class": "logo", "src": f"/gallery/{a}/{name}/logo", "alt": f"{name} logo", "width": "96", "height": "96"} in page.all("img")
    assert "<h2>What it is</h2>" in repo.text and "<strong>small</strong>" in repo.text
    assert '<a href="https://example.com/docs" rel="nofollow noopener noreferrer">the docs</a>' in repo.text
    assert "docker run --rm it" in page.plain
    assert "linux/amd64, linux/arm64/v8" in page.plain, "the index's platforms"
    assert "linux/amd64" in page.plain and "v1" in page.plain and "Not scanned" in page.plain
    assert index.split(":")[1][:12] in repo.text
    # The pull command works, anonymously.
    m = requests.get(f"{ecr.server.url}/v2/public/{a}/{name}/manifests/latest",
                     headers={"Accept": bh.OCI_INDEX}, timeout=30)
    assert m.status_code == 200 and bh.sha256(m.content) == index

    # The logo, with an ETag.
    logo = get(ecr, f"/gallery/{a}/{name}/logo")
    assert logo.status_code == 200 and logo.content == PNG and logo.headers["Content-Type"] == "image/png"
    assert logo.headers["X-Content-Type-Options"] == "nosniff"
    assert get(ecr, f"/gallery/{a}/{name}/logo", headers={"If-None-Match": logo.headers["ETag"]}).status_code == 304

    # Private repositories are plain 404s, whatever the name.
    for path in (f"/gallery/{a}/{private}", f"/gallery/{a}/{unique('nothing')}", f"/gallery/{a}/{private}/logo"):
        nf = get(ecr, path)
        assert nf.status_code == 404, path
        assert private not in nf.text
    assert get(ecr, f"/gallery/{a}/{private}").text == get(ecr, f"/gallery/{a}/{unique('nothing')}").text

    # Static assets.
    css = get(ecr, "/gallery/static/gallery.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css") and "ETag" in css.headers
    assert get(ecr, "/gallery/static/nope.js").status_code == 404

    # The gallery goes through the one pipeline: metrics count it under its door.
    metrics = get(ecr, "/metrics").text
    assert 'door="gallery"' in metrics and 'operation="repository"' in metrics


def tag_downloads(html: str) -> dict[str, int]:
    """The Downloads column of a repository page's tag table: tag -> count."""
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th>.*?<td class="num">([\d,]+)</td>', html)
    return {tag: int(n.replace(",", "")) for tag, n in rows}


def wait_for(check, what: str, seconds: float = 30):
    """Polls `check()` until it returns something truthy (pulls are written every pullTimeFlushSeconds)."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            assert got, what
            return got
        time.sleep(0.5)


def test_download_counts_on_the_pages(ecr, pub, tmp_path):
    """Pulls with skopeo and plain GETs count once per top-level image: an index's children fetched by the
    same pull are not counted, HEADs are not counted; the repository page shows the counts per tag and
    the sum, the front page lists the repository as most pulled; a private repository of the same name,
    pulled many times, is never listed and does not add to the public one's count."""
    name = unique("pulled") + "/app"
    a = alias(ecr)
    pub.create_repository(repositoryName=name, catalogData={"description": "pulled a lot"})
    single = put_api_image(pub, name, tag="v1", layer_size=900)
    index = push_index(pub, name, "latest")
    ecr.client.create_repository(repositoryName=name)
    put_api_image(ecr.client, name, tag="v1", layer_size=800)
    base = f"{ecr.server.url}/v2/public/{a}/{name}/manifests"
    accept = {"Accept": ", ".join([bh.OCI_INDEX, bh.OCI_MANIFEST])}

    # skopeo, anonymously: the index by tag, then every child by digest (--all): one download, the index's.
    skopeo = SkopeoECR(SKOPEO, tmp_path / "skopeo")
    skopeo.copy(f"docker://{ecr.server.hostport}/public/{a}/{name}:latest", f"oci:{tmp_path / 'layout'}:latest", "--all")
    # docker's way: HEAD the tag, GET the index by digest (a download), then a child by digest (not one).
    head = requests.head(f"{base}/latest", headers=accept, timeout=30)
    assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == index
    got = requests.get(f"{base}/{index}", headers=accept, timeout=30)
    assert got.status_code == 200
    child = json.loads(got.content)["manifests"][0]["digest"]
    assert requests.get(f"{base}/{child}", headers=accept, timeout=30).status_code == 200
    # v1: three GETs by tag, one by digest, and HEADs that do not count.
    for _ in range(3):
        assert requests.get(f"{base}/v1", headers=accept, timeout=30).status_code == 200
    for _ in range(2):
        assert requests.head(f"{base}/v1", headers=accept, timeout=30).status_code == 200
    assert requests.get(f"{base}/{single.digest}", headers=accept, timeout=30).status_code == 200
    # The private repository of the same name, pulled through ECR's BatchGetImage: counted there, never shown.
    for _ in range(5):
        assert ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])["images"]

    def counts():
        page = get(ecr, f"/gallery/{a}/{name}")
        assert page.status_code == 200
        found = tag_downloads(page.text)
        return (found, page) if found.get("latest") == 2 and found.get("v1") == 4 else None

    found, page = wait_for(counts, "the repository page shows the counts of the flushed pulls")
    assert found == {"latest": 2, "v1": 4}, "index children fetched by the pulls of the index are not counted"
    assert "6 downloads" in Page(page.text).plain
    # Nothing more arrives later (a second flush would have shown double counting).
    time.sleep(6)
    assert tag_downloads(get(ecr, f"/gallery/{a}/{name}").text) == {"latest": 2, "v1": 4}

    front = get(ecr, "/gallery/").text
    most = front[front.index('id="pulled"'):front.index('id="pushed"')]
    assert f'href="/gallery/{a}/{name}"' in most
    assert "6 downloads" in most
    # The private repository (5 pulls) is no card and no page; the public one's count is its own.
    assert front.count(f'href="/gallery/{a}/{name}"') == 2, "the public one, in both sections, once each"
    search = get(ecr, "/gallery/search", params={"q": name}).text
    assert search.count('class="card-link"') == 1


def test_two_nodes_on_postgres_add_up_their_downloads(berth_bin, pg_database, tmp_path):
    """Two nodes sharing PostgreSQL, each counting its own pulls in memory: their flushes add up
    (download_count + n, never read and written back), and either node's page shows the total."""
    key = str(tmp_path / "master.key")
    nodes = [pg_server(berth_bin, tmp_path / f"node{i}", pg_database, BERTH_SECRET_KEY_FILE=key,
                       BERTH_PULL_TIME_FLUSH_SECONDS="1", BERTH_GALLERY_CACHE_SECONDS="0") for i in range(2)]
    try:
        for n in nodes:
            n.start()
        session = ECRSession(nodes[0], *nodes[0].root_credentials, tmp=tmp_path)
        pub = public_client(session)
        name = unique("two-nodes")
        pub.create_repository(repositoryName=name, catalogData={"description": "pulled from two nodes"})
        put_api_image(pub, name, tag="v1")
        a = "r" + nodes[0].account_id

        def pull(node, n):
            for _ in range(n):
                r = requests.get(f"{node.url}/v2/public/{a}/{name}/manifests/v1", headers={"Accept": bh.OCI_MANIFEST}, timeout=30)
                assert r.status_code == 200, r.status_code

        threads = [threading.Thread(target=pull, args=(nodes[0], 40)), threading.Thread(target=pull, args=(nodes[1], 25))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for node in nodes:
            def counted(node=node):
                return tag_downloads(requests.get(f"{node.url}/gallery/{a}/{name}", timeout=30).text).get("v1") == 65
            wait_for(counted, f"{node.url} shows the 65 downloads of both nodes")
    finally:
        for n in nodes:
            n.dispose()


PAYLOADS = [
    "<script>document.body.dataset.pwned='1'</script>",
    "\"><img src=x onerror=\"document.body.dataset.pwned='1'\">",
    "' onmouseover='document.body.dataset.pwned=1' x='",
    "[click](javascript:document.body.dataset.pwned=1)",
    "[click](JaVaScRiPt:alert(1)) ![i](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "&lt;script&gt;alert(1)&lt;/script&gt; &#60;b&#62; &amp;amp;",
    "<svg/onload=alert(1)><iframe src=javascript:alert(1)></iframe>",
    "```x\" onmouseover=\"alert(1)\ncode\n```",
]


def test_xss_in_every_catalog_field_renders_inert(ecr, pub):
    name = unique("xss")
    long_text = ("<script>alert(1)</script> **x** [y](javascript:1) " * 500)[:25_600]
    about = "\n\n".join(PAYLOADS) + "\n\n" + long_text
    pub.create_repository(repositoryName=name, catalogData={
        "description": " ".join(PAYLOADS)[:1024], "aboutText": about[:25_600], "usageText": "\n\n".join(reversed(PAYLOADS)),
        "architectures": [p[:50] for p in PAYLOADS], "operatingSystems": [p[:50] for p in PAYLOADS],
    })
    put_api_image(pub, name, tag="v1")
    a = alias(ecr)
    for path, params in [("/gallery/", {}), ("/gallery/search", {"q": name}), (f"/gallery/{a}/", {}),
                         (f"/gallery/{a}/{name}", {}), ("/gallery/search", {"q": PAYLOADS[1]}),
                         ("/gallery/", {"arch": PAYLOADS[0][:50]}), ("/gallery/search", {"q": "x", "os": PAYLOADS[2][:50]})]:
        r = get(ecr, path, params=params)
        assert r.status_code == 200, (path, r.status_code)
        assert_inert(r.text)
        assert "<script>document" not in r.text and "pwned='1'\">" not in r.text
    # The query is reflected escaped.
    r = get(ecr, "/gallery/search", params={"q": "<b>bold</b>\"'"})
    assert "&lt;b&gt;bold&lt;/b&gt;&quot;&#39;" in r.text


def test_gallery_can_be_switched_off(berth_bin, tmp_path):
    with running_server(berth_bin, tmp_path / "off", BERTH_GALLERY_ENABLED="false") as srv:
        session = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        pub = public_client(session)
        name = unique("off")
        pub.create_repository(repositoryName=name, catalogData={"description": "hidden", "logoImageBlob": PNG})
        for path in ("/gallery/", "/gallery/search?q=hidden", f"/gallery/r{srv.account_id}/", f"/gallery/r{srv.account_id}/{name}",
                     "/gallery/static/gallery.css"):
            r = requests.get(f"{srv.url}{path}", timeout=30, allow_redirects=False)
            assert r.status_code == 404, path
            assert "hidden" not in r.text
        # ECR Public's logoUrl still answers.
        logo_url = pub.get_repository_catalog_data(repositoryName=name)["catalogData"]["logoUrl"]
        assert requests.get(logo_url, timeout=30).content == PNG


# --- a real browser -----------------------------------------------------------------------------

def chromium() -> str:
    for c in ("chromium", "chromium-browser"):
        if shutil.which(c):
            return shutil.which(c)
    pytest.fail("chromium is not installed (scripts/test installs Debian's chromium)")


def browse(url: str, tmp: Path, shot: str, size: str = "1280,2200") -> str:
    """The DOM after Chromium loaded `url` (and ran the page's script), plus a screenshot `tmp/<shot>.png`."""
    profile = tmp / "chromium-profile"
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            f"--user-data-dir={profile}", "--hide-scrollbars", f"--window-size={size}"]
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert dom.returncode == 0, dom.stderr.decode(errors="replace")[-2000:]
    png = tmp / f"{shot}.png"
    s = subprocess.run(base + [f"--screenshot={png}", url], capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert s.returncode == 0 and png.exists() and png.stat().st_size > 1000, s.stderr.decode(errors="replace")[-2000:]
    return dom.stdout.decode()


def test_pages_in_headless_chromium(ecr, pub, gallery_repo, tmp_path):
    name, _ = gallery_repo
    a = alias(ecr)
    xss = unique("xss-browser")
    pub.create_repository(repositoryName=xss, catalogData={
        "description": PAYLOADS[1], "aboutText": "\n\n".join(PAYLOADS), "usageText": PAYLOADS[0] + "\n\n" + PAYLOADS[1],
    })
    put_api_image(pub, xss, tag="v1")
    shots = tmp_path / "screenshots"
    shots.mkdir()

    front = Page(browse(f"{ecr.server.url}/gallery/", shots, "front"))
    assert any(l.get("href") == f"/gallery/{a}/{name}" for l in front.all("a"))
    assert [h for t, h in front.elements if t == "main"] and front.all("form")[0].get("role") == "search"
    assert "Public repositories" in front.plain and "Recently pushed" in front.plain

    results = Page(browse(f"{ecr.server.url}/gallery/search?q={name.split('/')[0]}", shots, "search"))
    assert [l["href"] for l in results.all("a") if l.get("class") == "card-link"] == [f"/gallery/{a}/{name}"]
    assert "1 repository" in results.plain

    dom = browse(f"{ecr.server.url}/gallery/{a}/{name}", shots, "repository")
    repo = Page(dom)
    assert f"docker pull {ecr.server.hostport}/public/{a}/{name}:latest" in [i.get("value") for i in repo.all("input")]
    assert "What it is" in repo.plain and "linux/arm64/v8" in repo.plain
    # The logo loaded: the browser fetched it from the page (same origin, allowed by the CSP).
    assert any(i.get("alt") == f"{name} logo" for i in repo.all("img"))
    # Phone width: the same page lays out (a screenshot to look at).
    browse(f"{ecr.server.url}/gallery/{a}/{name}", shots, "repository-phone", size="390,1800")

    # XSS payloads in a real browser: nothing ran (they would have set data-pwned on <body>).
    xdom = browse(f"{ecr.server.url}/gallery/{a}/{xss}", shots, "xss")
    assert "data-pwned" not in xdom
    assert_inert(xdom)
    assert "data-pwned" not in browse(f"{ecr.server.url}/gallery/search?q=xss-browser", shots, "xss-search")


def test_gallery_reads_are_audited_only_when_they_fail(ecr, pub):
    """Like /v2/ pulls, successful gallery pages and logos are anonymous reads, recorded only with
    auditRegistryReads; a page that is not found is recorded (under the gallery's door)."""
    a = alias(ecr)
    missing = unique("nothing-here")
    assert get(ecr, "/gallery/").status_code == 200
    assert get(ecr, f"/gallery/{a}/{missing}").status_code == 404
    srv = ecr.server
    cmd = [str(srv.binary), "audit", "export", "--since", "2020-01-01", "--data-dir", str(srv.data_dir)]
    deadline = time.monotonic() + 30
    while True:
        p = subprocess.run(cmd, capture_output=True, env=srv.process_env(), timeout=120, stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr
        gallery = [json.loads(line) for line in p.stdout.decode().splitlines()]
        gallery = [r for r in gallery if r.get("eventName") in ("frontPage", "repository", "search", "logo", "registry", "static")]
        if any(r["eventName"] == "repository" for r in gallery) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    names = [r["eventName"] for r in gallery]
    assert "repository" in names and "frontPage" not in names, names
    assert all(r["eventSource"] == "ecr-public.amazonaws.com" for r in gallery)
