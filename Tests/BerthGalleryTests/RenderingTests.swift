import BerthCore
import Foundation
import Testing
@testable import BerthGallery

let account = "123456789012"

func repo(_ name: String, description: String? = nil, about: String? = nil, usage: String? = nil, archs: [String]? = nil,
          os: [String]? = nil, pushed: Double? = nil, pulled: Double? = nil, tags: Int = 1, logo: Bool = false,
          displayName: String? = nil, downloads: Int64 = 0) -> PublicRepositorySummary {
    PublicRepositorySummary(
        key: RepositoryKey(registry: .public(account), name: try! RepositoryName(name)), createdAt: 0,
        catalog: PublicCatalogData(description: description, architectures: archs, operatingSystems: os, aboutText: about, usageText: usage),
        hasLogo: logo, tagCount: tags, lastPushedAt: pushed, lastPulledAt: pulled, downloadCount: downloads,
        registryDisplayName: displayName)
}

/// Every element and attribute name that may appear in a page: anything else in the output was injected.
let allowedTags: Set<String> = [
    "html", "head", "meta", "title", "link", "script", "body", "a", "header", "span", "form", "label", "input", "button",
    "main", "footer", "p", "code", "h1", "h2", "h3", "h4", "h5", "h6", "section", "ul", "ol", "li", "img", "nav", "select",
    "option", "article", "div", "table", "thead", "tbody", "tr", "th", "td", "time", "pre", "em", "strong", "blockquote",
    "hr", "br", "del", "s",
]

/// The tags of an HTML text (`<name` after `<`), lower-cased.
func tagNames(_ html: String) -> [String] {
    var names: [String] = []
    var rest = Substring(html)
    while let open = rest.firstIndex(of: "<") {
        rest = rest[rest.index(after: open)...]
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "/" || $0 == "!" }
        names.append(name.lowercased().trimmingCharacters(in: ["/"]))
    }
    return names
}

/// Asserts that an HTML text has no injected element, event handler or script URL.
func expectInert(_ html: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for name in tagNames(html) where name != "!doctype" {
        #expect(allowedTags.contains(name), "unexpected element <\(name)>", sourceLocation: sourceLocation)
    }
    // Inside a tag, outside its quoted attribute values, there must be no event handler; no URL attribute
    // may hold a script or data URL.
    var rest = Substring(html)
    while let open = rest.firstIndex(of: "<"), let close = rest[open...].firstIndex(of: ">") {
        let tag = rest[open...close].lowercased()
        let unquoted = tag.replacingOccurrences(of: #""[^"]*""#, with: "\"\"", options: .regularExpression)
        #expect(unquoted.range(of: #"\son[a-z]+\s*="#, options: .regularExpression) == nil, "event handler in \(tag)", sourceLocation: sourceLocation)
        #expect(!unquoted.contains("'"), "an attribute outside double quotes in \(tag)", sourceLocation: sourceLocation)
        #expect(tag.range(of: #"(href|src|action)\s*=\s*"\s*(javascript|data|vbscript):"#, options: .regularExpression) == nil,
                "script URL in \(tag)", sourceLocation: sourceLocation)
        rest = rest[rest.index(after: close)...]
    }
}

@Suite struct SafeMarkdownTests {
    @Test func rendersOrdinaryMarkdown() {
        let html = SafeMarkdown.html("""
            # Title

            Some *emphasis*, **strong** and `code`, a [link](https://example.com/a?b=1&c=2) and a [relative](/gallery/).

            - one
            - two

            ```swift
            let x = 1 < 2
            ```
            """)
        #expect(html.contains("<h1>Title</h1>"))
        #expect(html.contains("<em>emphasis</em>") && html.contains("<strong>strong</strong>") && html.contains("<code>code</code>"))
        #expect(html.contains(#"<a href="https://example.com/a?b=1&amp;c=2" rel="nofollow noopener noreferrer">link</a>"#))
        #expect(html.contains(#"<a href="/gallery/" rel="nofollow noopener noreferrer">relative</a>"#))
        #expect(html.contains("<li>one</li>"))
        #expect(html.contains("<pre><code>let x = 1 &lt; 2\n</code></pre>") || html.contains("<pre><code>let x = 1 &lt; 2</code></pre>"), "\(html)")
        expectInert(html)
    }

    @Test(arguments: [
        "<script>alert(1)</script>",
        "hello <script>alert(1)</script> world",
        "<img src=x onerror=alert(1)>",
        "text <img src=x onerror=alert(1)> text",
        "<a href=\"javascript:alert(1)\">x</a>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](java\tscript:alert(1))",
        "[click]( javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        "[x](https://ok.example/\"onmouseover=\"alert(1))",
        "[x\" onmouseover=\"alert(1)](https://ok.example/)",
        "![x\" onerror=\"alert(1)](https://ok.example/a.png)",
        "![x](javascript:alert(1))",
        "![x](data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=)",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
        "[javascript:alert(1)][]",
        "```js\" onmouseover=\"alert(1)\ncode\n```",
        "```<script>alert(1)</script>\ncode\n```",
        "<svg/onload=alert(1)>",
        "<iframe src=\"https://evil.example\"></iframe>",
        "<style>body{display:none}</style>",
        "<div onclick=\"alert(1)\">click</div>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#60;script&#62;alert(1)&#60;/script&#62;",
        "[a](&#106;avascript:alert(1))",
        "<<script>script>alert(1)<</script>/script>",
        "# <script>alert(1)</script>",
        "| a | b |\n|---|---|\n| <script>alert(1)</script> | [x](javascript:alert(1)) |",
        "> <img src=x onerror=alert(1)>",
        "- <b onmouseover=alert(1)>x</b>",
        "`<script>alert(1)</script>`",
        "[[nested](javascript:alert(1))](https://ok.example/)",
        "<!-- <script>alert(1)</script> -->",
        "<p>para</p><script>alert(1)</script>",
    ])
    func payloadsRenderInert(_ payload: String) {
        let html = SafeMarkdown.html(payload)
        expectInert(html)
        #expect(!html.contains("<script"), "\(html)")
    }

    @Test func deeplyNestedBracketsAreShownAsText() {
        let html = SafeMarkdown.html(String(repeating: "[", count: 9) + "x" + String(repeating: "](javascript:1)", count: 9))
        #expect(html.hasPrefix("<pre>[[[[[[[[[x](javascript:1)") && !html.contains("<a"))
        let ok = SafeMarkdown.html("[[*a*](https://a.example/) b](https://b.example/)")
        expectInert(ok)
        #expect(ok.contains("https://b.example/"), "\(ok)")
    }

    @Test func rawHTMLIsShownAsText() {
        let html = SafeMarkdown.html("<b>bold</b> and <script>alert(1)</script>")
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "\(html)")
        #expect(!html.contains("<b>"))
    }

    @Test func unsafeLinksKeepOnlyTheirText() {
        let html = SafeMarkdown.html("[click me](javascript:alert(1)) and ![pic](data:image/png;base64,AAAA)")
        #expect(!html.contains("href") && !html.contains("<img"), "\(html)")
        #expect(html.contains("click me") && html.contains("pic"))
    }

    @Test func urlSchemes() {
        #expect(SafeMarkdown.safeURL("https://a.example/x", allowMailto: true) == "https://a.example/x")
        #expect(SafeMarkdown.safeURL("mailto:a@b.example", allowMailto: true) == "mailto:a@b.example")
        #expect(SafeMarkdown.safeURL("mailto:a@b.example", allowMailto: false) == nil)
        #expect(SafeMarkdown.safeURL("/relative/path?x=1#y", allowMailto: true) == "/relative/path?x=1#y")
        #expect(SafeMarkdown.safeURL("docs/page:1", allowMailto: true) == "docs/page:1")
        for bad in ["javascript:alert(1)", "JAVASCRIPT:x", "data:text/html,x", "vbscript:x", "java\nscript:x", "java\u{0}script:x",
                    "\u{1}javascript:x", "file:///etc/passwd", "", "   "] {
            #expect(SafeMarkdown.safeURL(Substring(bad), allowMailto: true) == nil, "\(bad)")
        }
    }

    @Test(arguments: [
        String(repeating: "word <script>x</script> [a](javascript:1) *b* ", count: 500),
        String(repeating: "[", count: 2000) + "x" + String(repeating: "](javascript:1)", count: 2000),
        String(repeating: String(repeating: "[", count: 8) + "*x*" + String(repeating: "](https://a.example/)", count: 8) + "\n", count: 300),
        String(repeating: "<div>", count: 3000),
        String(repeating: "*", count: 20_000),
        String(repeating: "`", count: 20_000),
        String(repeating: "x", count: 25_600),
    ])
    func veryLongTextsRender(_ text: String) {
        expectInert(SafeMarkdown.html(text))
    }
}

@Suite struct GallerySearchTests {
    let repos = [
        repo("tools/nginx-exporter", description: "Prometheus exporter", pushed: 5),
        repo("nginx", description: "The web server", archs: ["x86-64", "ARM 64"], os: ["Linux"], pushed: 1),
        repo("proxy", description: "A reverse proxy built on nginx", pushed: 9),
        repo("base", description: "Base image", about: "Runs nginx too", pushed: 10),
        repo("redis", description: "Key-value store", archs: ["ARM 64"], os: ["Linux"], pushed: 3),
        repo("windows-tool", archs: ["x86-64"], os: ["Windows"], pushed: 2),
    ]

    @Test func nameMatchesComeFirstThenDescriptionThenAbout() {
        let found = GallerySearch.search(repos, GalleryQuery(text: "nginx")).map(\.key.name)
        #expect(found == ["nginx", "tools/nginx-exporter", "proxy", "base"])
    }

    @Test func everyWordMustMatch() {
        #expect(GallerySearch.search(repos, GalleryQuery(text: "nginx exporter")).map(\.key.name) == ["tools/nginx-exporter"])
        #expect(GallerySearch.search(repos, GalleryQuery(text: "NGINX Prometheus")).map(\.key.name) == ["tools/nginx-exporter"])
        #expect(GallerySearch.search(repos, GalleryQuery(text: "nothing-like-this")).isEmpty)
    }

    @Test func filtersByArchitectureAndOperatingSystem() {
        #expect(GallerySearch.search(repos, GalleryQuery(text: "", architecture: "arm 64")).map(\.key.name) == ["redis", "nginx"])
        #expect(GallerySearch.filter(repos, GalleryQuery(operatingSystem: "windows")).map(\.key.name) == ["windows-tool"])
        #expect(GallerySearch.filter(repos, GalleryQuery(architecture: "x86-64", operatingSystem: "Linux")).map(\.key.name) == ["nginx"])
        #expect(GallerySearch.facets(repos) { $0.catalog.architectures } == ["ARM 64", "x86-64"])
    }

    @Test func ordersForTheFrontPage() {
        #expect(GallerySearch.recentlyPushed(repos + [repo("empty")]).map(\.key.name)
                == ["base", "proxy", "tools/nginx-exporter", "redis", "windows-tool", "nginx", "empty"])
        // By downloads, not by the latest pull; ties by the latest pull, then by name; never downloaded: left out.
        let pulled = [repo("aa", pulled: 5, downloads: 30), repo("bb"), repo("cc", pulled: 9, downloads: 2), repo("dd", pulled: 7, downloads: 30),
                      repo("ee", pulled: 7, downloads: 30)]
        #expect(GallerySearch.mostPulled(pulled).map(\.key.name) == ["dd", "ee", "aa", "cc"])
    }

    @Test func queryParameters() {
        let q = GalleryQuery(parameters: [("q", "x y"), ("arch", ""), ("os", "Linux"), ("page", "-3")])
        #expect(q.text == "x y" && q.architecture == nil && q.operatingSystem == "Linux" && q.page == 1)
        #expect(GalleryQuery(parameters: [("page", "99999999")]).page == GalleryQuery.maxPage)
        #expect(GalleryQuery(text: String(repeating: "a", count: 5000)).text.count == GalleryQuery.maxTextLength)
    }
}

@Suite struct GalleryRendererTests {
    let renderer = GalleryRenderer(host: "registry.example:5000")

    @Test func frontPageListsRepositoriesWithLinksLogosAndFilters() {
        let html = renderer.frontPage([
            repo("nginx", description: "The web server", archs: ["ARM 64"], os: ["Linux"], pushed: 100, pulled: 200, logo: true, displayName: "Example Corp",
                 downloads: 1_234_567),
            repo("redis", pushed: 50, pulled: 300, downloads: 1),
            repo("never", pushed: 10),
        ], GalleryQuery())
        #expect(html.hasPrefix("<!doctype html>"))
        #expect(html.contains(#"<a class="card-link" href="/gallery/r123456789012/nginx"><img src="/gallery/r123456789012/nginx/logo" alt="""#))
        #expect(html.contains("The web server") && html.contains("Example Corp"))
        #expect(html.contains("Most pulled") && html.contains("Recently pushed"))
        #expect(html.contains("1,234,567 downloads") && html.contains("1 download ·") && html.contains("0 downloads"))
        // The most pulled section lists nginx before redis (more downloads, though pulled earlier), and not `never`.
        let mostPulled = String(html[html.range(of: "Most pulled")!.lowerBound..<html.range(of: "Recently pushed")!.lowerBound])
        #expect(mostPulled.range(of: "/nginx\"")!.lowerBound < mostPulled.range(of: "/redis\"")!.lowerBound)
        #expect(!mostPulled.contains("/never\""))
        #expect(html.contains(#"<option value="ARM 64">ARM 64</option>"#) && html.contains(#"<option value="Linux">Linux</option>"#))
        #expect(html.contains(#"<main id="main">"#) && html.contains(#"role="search""#) && html.contains(#"<html lang="en">"#))
        expectInert(html)
    }

    @Test func downloadCountsAreGroupedByThousands() {
        #expect([0, 7, 999, 1_000, 12_345, 999_999, 1_000_000, Int64.max].map(GalleryRenderer.count)
                == ["0", "7", "999", "1,000", "12,345", "999,999", "1,000,000", "9,223,372,036,854,775,807"])
        #expect(GalleryRenderer.downloads(1) == "1 download" && GalleryRenderer.downloads(2_000) == "2,000 downloads")
    }

    @Test func frontPagePages() {
        let many = (0..<60).map { repo(String(format: "repo-%02d", $0), pushed: Double($0)) }
        let first = renderer.frontPage(many, GalleryQuery())
        #expect(first.contains("Page 1 of 3") && first.contains(#"<a rel="next" href="/gallery/?page=2">"#))
        #expect(first.contains("repo-59") && !first.contains("repo-35"))
        let third = renderer.frontPage(many, GalleryQuery(architecture: "x", page: 3))
        #expect(third.contains("No public repositories yet."), "filtered to nothing")
        let last = renderer.frontPage(many, GalleryQuery(page: 3))
        #expect(last.contains("repo-00") && last.contains(#"<a rel="prev" href="/gallery/?page=2">"#) && !last.contains("rel=\"next\""))
    }

    @Test func searchNeverReflectsTheQueryUnescaped() {
        let q = GalleryQuery(text: "\"><script>alert(1)</script><x onmouseover=\"")
        let html = renderer.searchPage([repo("nginx")], q)
        expectInert(html)
        #expect(html.contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"))
        let paged = renderer.searchPage((0..<30).map { repo("n-\($0)", description: "a&b <x>") }, GalleryQuery(text: "a&b <x>"))
        #expect(paged.contains("href=\"/gallery/search?q=a%26b%20%3Cx%3E&amp;page=2\""), "the next page keeps the query, encoded")
    }

    @Test(arguments: [
        "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "' onmouseover='alert(1)", "javascript:alert(1)",
        "&lt;b&gt;entity&lt;/b&gt; &amp;amp; &#x3C;script&#x3E;", String(repeating: "<script>long</script>", count: 2000),
    ])
    func xssInEveryCatalogFieldIsInert(_ payload: String) {
        let r = repo("nginx", description: payload, about: payload + "\n\n[x](javascript:alert(1))", usage: "```\(payload)\n\(payload)\n```",
                     archs: [String(payload.prefix(50))], os: [String(payload.prefix(50))], pushed: 1, pulled: 1, logo: true,
                     displayName: String(payload.prefix(100)))
        let pages = [
            renderer.frontPage([r], GalleryQuery()),
            renderer.searchPage([r], GalleryQuery(text: "nginx")),
            renderer.registryPage(alias: "r" + account, displayName: r.registryDisplayName, [r], GalleryQuery()),
            renderer.repositoryPage(GalleryRepositoryPage(
                repository: r,
                tags: [GalleryTag(tag: "latest", digest: "sha256:" + String(repeating: "a", count: 64), pushedAt: 1, imageSize: 1234,
                                  platforms: [Descriptor.Platform(architecture: String(payload.prefix(30)), os: "linux")],
                                  scan: GalleryScanSummary(state: .complete, counts: [.high: 2]))],
                pullTag: "latest", page: 1, pages: 1)),
        ]
        for html in pages {
            expectInert(html)
            #expect(!html.contains("<script>"))
        }
    }

    @Test func repositoryPageShowsPullCommandsTagsAndTexts() {
        let r = repo("team/app", description: "An app", about: "# About\n\nIt **works**.", usage: "Run `app --help`.",
                     archs: ["x86-64"], os: ["Linux"], pushed: 1_700_000_000, tags: 2, logo: true)
        let html = renderer.repositoryPage(GalleryRepositoryPage(
            repository: r,
            tags: [
                GalleryTag(tag: "latest", digest: "sha256:" + String(repeating: "b", count: 64), pushedAt: 1_700_000_000, imageSize: 12_345_678,
                           platforms: [Descriptor.Platform(architecture: "amd64", os: "linux"), Descriptor.Platform(architecture: "arm64", os: "linux", variant: "v8")],
                           scan: GalleryScanSummary(state: .complete, counts: [.critical: 1, .low: 3]), downloads: 4_321),
                GalleryTag(tag: "v1", digest: "sha256:" + String(repeating: "c", count: 64), pushedAt: 1_600_000_000, imageSize: 10,
                           platforms: [], scan: nil),
            ],
            pullTag: "latest", page: 1, pages: 1))
        #expect(html.contains(#"value="docker pull registry.example:5000/public/r123456789012/team/app:latest""#))
        #expect(html.contains(#"value="podman pull registry.example:5000/public/r123456789012/team/app:latest""#))
        #expect(html.contains(#"value="skopeo copy docker://registry.example:5000/public/r123456789012/team/app:latest oci:app:latest""#))
        #expect(html.contains(#"<img class="logo" src="/gallery/r123456789012/team/app/logo" alt="team/app logo""#))
        #expect(html.contains("<h1>About</h1>") && html.contains("<strong>works</strong>") && html.contains("<code>app --help</code>"))
        #expect(html.contains("linux/amd64, linux/arm64/v8") && html.contains("12.3 MB") && html.contains("1 critical, 3 low"))
        #expect(html.contains("Not scanned") && html.contains("2023-11-14 22:13 UTC") && html.contains(#"<time datetime="2023-11-14T22:13:20Z">"#))
        #expect(html.contains(#"<th scope="row">v1</th>"#) && html.contains("sha256:bbbbbbbbbbbb"))
        #expect(html.contains(#"<th scope="col">Downloads</th>"#) && html.contains(#"<td class="num">4,321</td>"#) && html.contains(#"<td class="num">0</td>"#))
        expectInert(html)
    }
}
