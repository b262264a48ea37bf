import BerthCore
import BerthSupport
import Testing

@Suite struct RepositoryNameTests {
    @Test(arguments: ["ab", "library/debian", "a/b", "my-repo", "my_repo", "my.repo", "a0/b1/c2", "team/app.v2-beta_x", "a--b", "a__b", "a---b/c_d",
                      String(repeating: "a", count: 256)])
    func accepts(_ s: String) throws {
        #expect(try RepositoryName(s).value == s)
    }

    @Test(arguments: ["", "a", "A/b", "-ab", "ab-", "a//b", "/ab", "ab/", "a..b", "a___b", "a.-b", "a-.b", "../etc", "a/../b",
                      "a/./b", "ab%2Fcd", "a b", "ab:tag", "ab@sha", "ünï", String(repeating: "a", count: 257), "a/-b", "a._b"])
    func rejects(_ s: String) {
        #expect(throws: BerthError.nameInvalid(s)) { try RepositoryName(s) }
    }
}

@Suite struct TagAndReferenceTests {
    @Test(arguments: ["latest", "v1.0.0", "_x", "A-b.c_d", "1", String(repeating: "t", count: 128)])
    func validTags(_ s: String) throws { #expect(try Tag(s).value == s) }

    @Test(arguments: ["", ".x", "-x", "a/b", "a:b", "a@b", String(repeating: "t", count: 129)])
    func invalidTags(_ s: String) { #expect(!Tag.isValid(s)) }

    @Test func referenceDistinguishesTagsAndDigests() throws {
        #expect(try Reference(parsing: "latest") == .tag(try Tag("latest")))
        let d = "sha256:" + String(repeating: "b", count: 64)
        #expect(try Reference(parsing: d) == .digest(try Digest(parsing: d)))
        #expect(throws: BerthError.self) { try Reference(parsing: "sha256:nothex") }
        #expect(throws: BerthError.tagInvalid("bad/tag")) { try Reference(parsing: "bad/tag") }
    }
}

@Suite struct PaginationTests {
    @Test func defaultsAndLimits() throws {
        #expect(try PageRequest(n: nil, last: nil) == PageRequest(limit: 1000, last: nil))
        #expect(try PageRequest(n: "5", last: "b").limit == 5)
        #expect(try PageRequest(n: "999999", last: nil).limit == PageRequest.maxLimit)
        #expect(try PageRequest(n: "0", last: "").last == nil)
        #expect(throws: BerthError.paginationNumberInvalid("-1")) { try PageRequest(n: "-1", last: nil) }
        #expect(throws: BerthError.paginationNumberInvalid("x")) { try PageRequest(n: "x", last: nil) }
    }

    @Test func pageFromRows() {
        let p = Page.from(rows: ["a", "b", "c"], limit: 2) { $0 }
        #expect(p.items == ["a", "b"])
        #expect(p.next == "b")
        let q = Page.from(rows: ["a", "b"], limit: 2) { $0 }
        #expect(q.next == nil)
    }
}

@Suite struct ByteRangeTests {
    @Test func parsesContentRange() {
        #expect(ByteRange.parse("0-99") == ByteRange(start: 0, end: 99))
        #expect(ByteRange.parse("bytes 10-19/100") == ByteRange(start: 10, end: 19))
        #expect(ByteRange.parse("5-4") == nil)
        #expect(ByteRange.parse("-4") == nil)
        #expect(ByteRange.parse("a-b") == nil)
    }

    @Test func resolvesRangeRequests() {
        #expect(ByteRange.resolveRequest(nil, size: 10) == .whole)
        #expect(ByteRange.resolveRequest("bytes=0-4", size: 10) == .partial(ByteRange(start: 0, end: 4)))
        #expect(ByteRange.resolveRequest("bytes=5-", size: 10) == .partial(ByteRange(start: 5, end: 9)))
        #expect(ByteRange.resolveRequest("bytes=-3", size: 10) == .partial(ByteRange(start: 7, end: 9)))
        #expect(ByteRange.resolveRequest("bytes=8-100", size: 10) == .partial(ByteRange(start: 8, end: 9)))
        #expect(ByteRange.resolveRequest("bytes=10-", size: 10) == .unsatisfiable)
        #expect(ByteRange.resolveRequest("bytes=5-2", size: 10) == .unsatisfiable)
        #expect(ByteRange.resolveRequest("items=1-2", size: 10) == .whole)
    }
}

@Suite struct TagMutabilityTests {
    @Test func wildcards() {
        #expect(WildcardPattern.glob("*", questionMark: false).matches("anything"))
        #expect(WildcardPattern.glob("release-*", questionMark: false).matches("release-1.2"))
        #expect(!WildcardPattern.glob("release-*", questionMark: false).matches("dev-1"))
        #expect(WildcardPattern.glob("*-rc*", questionMark: false).matches("v1-rc2"))
        #expect(WildcardPattern.glob("a*b*c", questionMark: false).matches("axxbyyc"))
        #expect(!WildcardPattern.glob("a*b*c", questionMark: false).matches("axxbyy"))
        #expect(WildcardPattern.glob("latest", questionMark: false).matches("latest"))
        #expect(!WildcardPattern.glob("latest", questionMark: false).matches("latest2"))
        #expect(WildcardPattern.glob("a?c").matches("abc"))
        #expect(!WildcardPattern.glob("a?c", questionMark: false).matches("abc"))
    }

    @Test func mutabilityModes() {
        #expect(!RepositorySettings().isImmutable(tag: "x"))
        #expect(RepositorySettings(imageTagMutability: .immutable).isImmutable(tag: "x"))
        let ie = RepositorySettings(imageTagMutability: .immutableWithExclusion, exclusionFilters: ["latest", "dev-*"])
        #expect(!ie.isImmutable(tag: "latest"))
        #expect(!ie.isImmutable(tag: "dev-7"))
        #expect(ie.isImmutable(tag: "v1.0"))
        let me = RepositorySettings(imageTagMutability: .mutableWithExclusion, exclusionFilters: ["v*"])
        #expect(me.isImmutable(tag: "v1.0"))
        #expect(!me.isImmutable(tag: "latest"))
    }
}

@Suite struct RegistryIDTests {
    /// A repository key round-trips its registry: the stored text is the only place `public:` appears.
    @Test func storedValueRoundTrips() throws {
        let name = try RepositoryName("team/app")
        for registry in [RegistryID.private("123456789012"), .public("123456789012")] {
            let key = RepositoryKey(registry: registry, name: name)
            #expect(key.registry == registry)
            #expect(RegistryID(storedValue: registry.storedValue) == registry)
        }
        #expect(RegistryID.private("123456789012").storedValue == "123456789012")
        #expect(RegistryID.public("123456789012").storedValue == "public:123456789012")
        #expect(RegistryID(storedValue: "public:123456789012").isPublic)
        #expect(RegistryID(storedValue: "123456789012").account == "123456789012")
        // The public and the private registry of one account are different registries.
        #expect(RegistryID.public("123456789012") != .private("123456789012"))
    }
}

