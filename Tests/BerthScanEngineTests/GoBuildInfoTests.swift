import Foundation
import Testing
@testable import BerthScanEngine

/// Synthetic Go executables: an ELF header, filler, and a Go ≥ 1.18 build information block.
enum GoBinaryBuilder {
    static func uvarint(_ n: Int) -> [UInt8] {
        var v = n
        var out: [UInt8] = []
        repeat {
            var b = UInt8(v & 0x7f)
            v >>= 7
            if v != 0 { b |= 0x80 }
            out.append(b)
        } while v != 0
        return out
    }

    static let startSentinel: [UInt8] = [0x30, 0x77, 0xaf, 0x0c, 0x92, 0x74, 0x08, 0x02, 0x41, 0xe1, 0xc1, 0x07, 0xe6, 0xd6, 0x18, 0xe6]
    static let endSentinel: [UInt8] = [0xf9, 0x32, 0x43, 0x31, 0x86, 0x18, 0x20, 0x72, 0x00, 0x82, 0x42, 0x10, 0x41, 0x16, 0xd8, 0xf2]

    static let modinfo = """
    path\texample.com/app/cmd/app
    mod\texample.com/app\tv1.4.0\th1:abc=
    dep\tgolang.org/x/net\tv0.17.0\th1:net=
    dep\tgithub.com/old/lib\tv1.0.0\th1:old=
    =>\tgithub.com/new/lib\tv1.2.0\th1:new=
    dep\texample.com/local\tv0.0.0
    =>\t../local\t
    build\t-compiler=gc
    build\tCGO_ENABLED=0

    """

    static func buildInfo(goVersion: String = "go1.21.4", modinfo: String = modinfo, flags: UInt8 = 2) -> [UInt8] {
        var header = [0xff] + Array(" Go buildinf:".utf8) + [8, flags]
        header += [UInt8](repeating: 0, count: 16)
        let mod = startSentinel + Array(modinfo.utf8) + endSentinel
        return header + uvarint(goVersion.utf8.count) + Array(goVersion.utf8) + uvarint(mod.count) + mod
    }

    /// An ELF file with a decoy magic in "rodata" (as `debug/buildinfo` itself has) before the real block.
    static func binary(fillerBytes: Int = 100_000, info: [UInt8] = buildInfo()) -> [UInt8] {
        var out: [UInt8] = [0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0] + [UInt8](repeating: 0, count: 56)
        out += (0..<fillerBytes).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        out += [0xff] + Array(" Go buildinf:".utf8) + Array("decoy string constant, not a header".utf8)
        out += [UInt8](repeating: 0x90, count: 4000)
        while out.count % 16 != 0 { out.append(0) }
        out += info
        out += [UInt8](repeating: 0, count: 5000)
        return out
    }
}

@Suite struct GoBuildInfoTests {
    @Test func parsesModulesReplacementsAndGoVersion() throws {
        let info = try #require(GoBuildInfoScanner.scan(GoBinaryBuilder.binary()))
        #expect(info.goVersion == "go1.21.4")
        #expect(info.path == "example.com/app/cmd/app")
        #expect(info.main == GoModule(path: "example.com/app", version: "v1.4.0", sum: "h1:abc="))
        #expect(info.dependencies.map(\.path) == ["golang.org/x/net", "github.com/old/lib", "example.com/local"])
        #expect(info.dependencies[1].replacement == GoModule.Replacement(path: "github.com/new/lib", version: "v1.2.0", sum: "h1:new="))
        #expect(info.dependencies[2].replacement?.version == nil)
        let packages = info.packages(path: "usr/bin/app")
        #expect(packages.map { "\($0.name)@\($0.version)" } == [
            "stdlib@1.21.4", "example.com/app@v1.4.0", "golang.org/x/net@v0.17.0", "github.com/new/lib@v1.2.0",
            "example.com/local@(devel)",
        ])
        #expect(packages.allSatisfy { $0.kind == .golang && $0.path == "usr/bin/app" })
    }

    @Test func streamsInAnyChunkSize() throws {
        let binary = GoBinaryBuilder.binary(fillerBytes: 70_000)
        for chunk in [1, 3, 13, 14, 15, 512, 65_536] {
            let scanner = GoBuildInfoScanner()
            for start in stride(from: 0, to: binary.count, by: chunk) {
                scanner.consume(binary[start..<min(start + chunk, binary.count)])
            }
            #expect(scanner.result?.goVersion == "go1.21.4", "chunk \(chunk)")
            #expect(scanner.result?.dependencies.count == 3, "chunk \(chunk)")
        }
    }

    @Test func rejectsNonELFLegacyAndDamagedBlocks() {
        var notELF = GoBinaryBuilder.binary()
        notELF[0] = 0x7e
        #expect(GoBuildInfoScanner.scan(notELF) == nil)
        let legacy = GoBuildInfoScanner()
        legacy.consume(GoBinaryBuilder.binary(info: GoBinaryBuilder.buildInfo(flags: 0))[...])
        #expect(legacy.result == nil && legacy.foundLegacyFormat)
        // A version string that is not a Go version, a length beyond the file, an endless varint.
        #expect(GoBuildInfoScanner.scan(GoBinaryBuilder.binary(info: GoBinaryBuilder.buildInfo(goVersion: "hello"))) == nil)
        let header = Array(GoBinaryBuilder.buildInfo().prefix(32))
        #expect(GoBuildInfoScanner.scan(GoBinaryBuilder.binary(info: header + [0xff, 0xff, 0xff, 0x7f, 0x41])) == nil)
        #expect(GoBuildInfoScanner.scan(GoBinaryBuilder.binary(info: header + [UInt8](repeating: 0xff, count: 64))) == nil)
        // A bounded window: a modinfo larger than the limit is not read.
        let big = GoBinaryBuilder.buildInfo(modinfo: String(repeating: "dep\tx\tv1.0.0\n", count: 10_000))
        #expect(GoBuildInfoScanner.scan(GoBinaryBuilder.binary(info: big), maxBuildInfoBytes: 4096) == nil)
        #expect(GoBuildInfoScanner.scan(GoBinaryBuilder.binary(info: big))?.dependencies.count == 10_000)
        // Modinfo without sentinels (empty) still gives stdlib.
        #expect(GoBuildInfoScanner.scan(GoBinaryBuilder.binary(info: Array(GoBinaryBuilder.buildInfo().prefix(32)) + [8] + Array("go1.22.0".utf8) + [0]))?
            .packages(path: "x").map(\.name) == ["stdlib"])
    }

    @Test func stdlibVersions() {
        #expect(GoBuildInfo.stdlibVersion("go1.22.1") == "1.22.1")
        #expect(GoBuildInfo.stdlibVersion("go1.21") == "1.21.0")
        #expect(GoBuildInfo.stdlibVersion("go1.22rc1") == "1.22.0-rc.1")
        #expect(GoBuildInfo.stdlibVersion("go1.20.3 X:boringcrypto") == "1.20.3")
        #expect(GoBuildInfo.stdlibVersion("devel go1.23-abc") == nil)
        #expect(GoBuildInfo.stdlibVersion("go") == nil)
    }

    @Test func layerWalkerFindsGoBinariesAndAppliesWhiteouts() throws {
        let binary = GoBinaryBuilder.binary()
        var l1 = TarBuilder()
        l1.file("usr/local/bin/app", binary, mode: 0o755)
        l1.file("usr/local/bin/app-not-executable", binary, mode: 0o644)
        l1.file("opt/tool", binary, mode: 0o755)
        l1.hardlink("opt/tool-link", to: "opt/tool")
        l1.file("usr/bin/script", Array("#!/bin/sh\necho \u{ff} Go buildinf:\n".utf8), mode: 0o755)
        l1.end()
        var l2 = TarBuilder()
        l2.whiteout("opt/.wh.tool")
        l2.end()
        var walker = LayerWalker()
        try walker.apply(bytes: l1.gzipped, chunk: 4096)
        #expect(walker.index.goBinaries().map(\.path) == ["opt/tool", "opt/tool-link", "usr/local/bin/app"])
        try walker.apply(bytes: l2.bytes)
        #expect(walker.index.goBinaries().map(\.path) == ["opt/tool-link", "usr/local/bin/app"])
        #expect(walker.index.catalogFiles().isEmpty)

        let db = database(feed: "Go", [
            osvRecord(id: "GO-2099-0001", ecosystem: "Go", name: "stdlib", fixed: "1.21.5", type: "SEMVER"),
            osvRecord(id: "GO-2099-0002", ecosystem: "Go", name: "golang.org/x/net", fixed: "0.17.0", type: "SEMVER"),
            osvRecord(id: "GO-2099-0003", ecosystem: "Go", name: "github.com/new/lib", fixed: "1.3.0", type: "SEMVER"),
            osvRecord(id: "GO-2099-0004", ecosystem: "Go", name: "github.com/old/lib", fixed: "9.0.0", type: "SEMVER"),
        ])
        let report = ImageScanner(matcher: Matcher(database: db)).scan(index: walker.index)
        #expect(Set(report.findings.map { "\($0.package.path) \($0.name)" }) == [
            "usr/local/bin/app GO-2099-0001", "usr/local/bin/app GO-2099-0003",
            "opt/tool-link GO-2099-0001", "opt/tool-link GO-2099-0003",
        ])
    }

    @Test func bigAndTinyExecutablesAreNotScanned() throws {
        var t = TarBuilder()
        t.file("usr/bin/app", GoBinaryBuilder.binary(), mode: 0o755)
        t.end()
        var walker = LayerWalker(limits: .init(maxGoBinaryBytes: 10_000))
        try walker.apply(bytes: t.bytes)
        #expect(walker.index.goBinaries().isEmpty)
    }

    /// A binary built by the real Go toolchain, when one is installed.
    @Test  // needs `go` (golang-go, installed by scripts/test): fails rather than skips without it
    func realGoBinary() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try dir.write("go.mod", "module example.com/hello\n\ngo 1.18\n")
        try dir.write("main.go", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n")
        let env = ["GOCACHE": dir.path("cache").path, "GOPATH": dir.path("gopath").path, "GOFLAGS": "-mod=mod",
                   "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "HOME": dir.url.path]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(which("go"), "go is not installed (apt-get install golang-go)"))
        process.arguments = ["build", "-o", dir.path("hello").path, "."]
        process.currentDirectoryURL = dir.url
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0)
        let bytes = [UInt8](try Data(contentsOf: dir.path("hello")))
        let info = try #require(GoBuildInfoScanner.scan(bytes))
        let version = try run("go", ["env", "GOVERSION"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(info.goVersion == version)
        #expect(info.path == "example.com/hello")
        #expect(info.main?.path == "example.com/hello")
        var t = TarBuilder()
        t.file("usr/bin/hello", bytes, mode: 0o755)
        t.end()
        var walker = LayerWalker()
        try walker.apply(bytes: t.gzipped, chunk: 65_536)
        #expect(walker.index.goBinaries().first?.info == info)
    }
}
