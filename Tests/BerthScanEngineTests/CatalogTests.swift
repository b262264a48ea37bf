import Foundation
import Testing
@testable import BerthScanEngine

@Suite struct CatalogTests {
    static let status = """
    Package: bsdutils
    Status: install ok installed
    Architecture: amd64
    Source: util-linux (2.38.1-5)
    Version: 1:2.38.1-5+b1
    Description: basic utilities
     continued description
     .
     more

    Package: tar
    Status: install ok installed
    Architecture: amd64
    Version: 1.34+dfsg-1.2

    Package: libssl1.1
    Status: deinstall ok config-files
    Source: openssl
    Version: 1.1.1n-0+deb11u4

    Package: half
    Status: install ok half-configured
    Version: 1.0
    """

    @Test func dpkgStatus() {
        let r = Catalogers.catalog([CatalogFile(path: "var/lib/dpkg/status", contents: Array(Self.status.utf8))])
        #expect(r.packages == [
            InstalledPackage(kind: .deb, name: "bsdutils", version: "1:2.38.1-5+b1", architecture: "amd64",
                             sourceName: "util-linux", sourceVersion: "2.38.1-5", path: "var/lib/dpkg/status"),
            InstalledPackage(kind: .deb, name: "tar", version: "1.34+dfsg-1.2", architecture: "amd64",
                             path: "var/lib/dpkg/status"),
        ])
        #expect(r.notInstalled.map(\.name) == ["libssl1.1", "half"])
        #expect(r.notInstalled[0].status == "deinstall ok config-files")
        #expect(r.issues.isEmpty)
    }

    @Test func continuationLinesAndCaseInsensitiveFields() {
        let (paragraphs, bad) = ControlParagraphParser.parse("package: a\nDescription: x\n y\n\tz\r\n\n\n")
        #expect(bad.isEmpty)
        #expect(paragraphs.count == 1)
        #expect(paragraphs[0]["Package"] == "a")
        #expect(paragraphs[0]["description"] == "x\ny\nz")
    }

    @Test func sourceField() {
        #expect(DpkgStatusCataloger.parseSource("util-linux (2.38.1-5)") == ("util-linux", "2.38.1-5"))
        #expect(DpkgStatusCataloger.parseSource("glibc") == ("glibc", nil))
        #expect(DpkgStatusCataloger.parseSource("x (") == ("x", nil))
        #expect(DpkgStatusCataloger.parseSource("x ()") == ("x", nil))
    }

    @Test func malformedStatusNeverCrashes() {
        let inputs: [[UInt8]] = [
            [], [0xff, 0xfe, 0x00, 0x0a], Array(" leading continuation\nno colon here\n:empty name\n".utf8),
            Array("Package: a\n\nVersion: 1\n".utf8), Array(repeating: UInt8(ascii: "\n"), count: 10_000),
            Array("Package: x\nStatus: installed\nVersion: 1\n".utf8),
        ]
        for input in inputs {
            let r = Catalogers.catalog([CatalogFile(path: "var/lib/dpkg/status", contents: input)])
            #expect(r.packages.isEmpty)
        }
    }

    @Test func statusDFilesWithoutStatusAreInstalled() {
        let r = Catalogers.catalog([
            CatalogFile(path: "var/lib/dpkg/status.d/base", contents: Array("Package: base-files\nVersion: 12.4\n".utf8)),
            CatalogFile(path: "var/lib/dpkg/status.d/base.md5sums", contents: Array("abc  etc/x\n".utf8)),
        ])
        #expect(r.packages.map(\.name) == ["base-files"])
    }

    @Test func pythonMetadata() {
        let r = Catalogers.catalog([
            CatalogFile(path: "usr/lib/python3/dist-packages/requests-2.19.1.dist-info/METADATA",
                        contents: Array("Metadata-Version: 2.1\nName: requests\nVersion: 2.19.1\n\nName: body-not-a-header\n".utf8)),
            CatalogFile(path: "usr/lib/python3/site-packages/PyYAML.egg-info/PKG-INFO",
                        contents: Array("Name: PyYAML\nVersion: 5.3\n".utf8)),
            CatalogFile(path: "usr/lib/python3/site-packages/six-1.0.egg-info", contents: Array("Name: six\nVersion: 1.0\n".utf8)),
            CatalogFile(path: "x/broken.dist-info/METADATA", contents: Array("Summary: no name\n".utf8)),
        ])
        #expect(r.packages.map { "\($0.name)@\($0.version)" }.sorted() == ["PyYAML@5.3", "requests@2.19.1", "six@1.0"])
        #expect(r.issues.count == 1)
    }

    @Test func npmPackageJSON() {
        let r = Catalogers.catalog([
            CatalogFile(path: "usr/lib/node_modules/ms/package.json", contents: Array(#"{"name":"ms","version":"0.7.0"}"#.utf8)),
            CatalogFile(path: "app/node_modules/@scope/pkg/package.json", contents: Array(#"{"name":"@scope/pkg","version":"1.0.0"}"#.utf8)),
            CatalogFile(path: "app/node_modules/a/node_modules/b/package.json", contents: Array(#"{"name":"b","version":"2.0.0","x":[1]}"#.utf8)),
            CatalogFile(path: "app/node_modules/bad/package.json", contents: Array("[]".utf8)),
            CatalogFile(path: "app/node_modules/typed/package.json", contents: Array(#"{"name":1,"version":"1"}"#.utf8)),
        ])
        #expect(r.packages.map(\.name).sorted() == ["@scope/pkg", "b", "ms"])
        #expect(r.issues.count == 2)
    }

    @Test func wantedPaths() {
        #expect(Catalogers.wants("var/lib/dpkg/status"))
        #expect(Catalogers.wants("var/lib/dpkg/status.d/libgcc-s1"))
        #expect(!Catalogers.wants("var/lib/dpkg/status.d/libgcc-s1.md5sums"))
        #expect(!Catalogers.wants("var/lib/dpkg/status-old"))
        #expect(Catalogers.wants("usr/lib/node_modules/ms/package.json"))
        #expect(!Catalogers.wants("usr/lib/node_modules/ms/lib/package.json"))
        #expect(!Catalogers.wants("app/package.json"))
        #expect(Catalogers.wants("usr/local/lib/python3.11/dist-packages/x-1.dist-info/METADATA"))
        #expect(!Catalogers.wants("usr/local/lib/python3.11/dist-packages/x-1.dist-info/RECORD"))
        #expect(Catalogers.wants("etc/os-release"))
    }

    @Test func osRelease() {
        let r = OSRelease.parse("ID=debian\nVERSION_ID=\"12\"\n# c\nPRETTY_NAME='Debian 12'\n")
        #expect(r == ["ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian 12"])
        #expect(Matcher.dpkgEcosystem(osRelease: r) == "Debian:12")
        #expect(Matcher.dpkgEcosystem(osRelease: ["ID": "ubuntu", "VERSION_ID": "22.04"]) == nil)
    }
}
