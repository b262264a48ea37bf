import BerthCore
import Testing

@Suite struct RegionTests {
    @Test(arguments: ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "ap-southeast-5", "il-central-1"])
    func wellFormedRegionNames(_ name: String) {
        #expect(RegionSet.isWellFormed(name))
    }

    @Test(arguments: ["", "*", "us", "us-east", "US-EAST-1", "us-east-1a", "us--1", "-east-1", "us-east-123",
                      "u-east-1", "us_east_1", "us-east-1 ", "us-east-1/../x", String(repeating: "a-", count: 20) + "1"])
    func malformedRegionNames(_ name: String) {
        #expect(!RegionSet.isWellFormed(name))
    }

    @Test func listedRegionsAndTheWildcard() {
        let listed = RegionSet(home: "us-east-1", listed: ["eu-west-1", "us-east-1"])
        #expect(listed.listed == ["us-east-1", "eu-west-1"])
        #expect(listed.accepts("us-east-1") && listed.accepts("eu-west-1"))
        #expect(!listed.accepts("eu-central-1"))
        #expect(listed.storageRegion("us-east-1") == nil)
        #expect(listed.storageRegion("eu-west-1") == "eu-west-1")
        let any = RegionSet(home: "us-east-1", acceptsAny: true)
        #expect(any.accepts("me-south-1") && any.accepts("us-east-1"))
        #expect(!any.accepts("not a region") && !any.accepts("*"))
        #expect(RegionSet.single("us-west-2").accepts("us-west-2") && !RegionSet.single("us-west-2").accepts("us-east-1"))
    }

    /// The home region's registries keep the stored ids every earlier Berth wrote: the bare account.
    @Test func registryIDsOfRegions() {
        #expect(RegistryID.private("123456789012").storedValue == "123456789012")
        let eu = RegistryID.private("123456789012", region: "eu-west-1")
        #expect(eu.storedValue == "123456789012@eu-west-1")
        #expect(RegistryID(storedValue: eu.storedValue) == eu)
        #expect(RegistryID(storedValue: "123456789012").region == nil)
        #expect(RegistryID(storedValue: "public:123456789012") == .public("123456789012"))
        #expect(RegistryID(account: "123456789012", kind: .public, region: "eu-west-1").storedValue == "public:123456789012")
        #expect(eu.regionName(home: "us-east-1") == "eu-west-1")
        #expect(RegistryID.private("123456789012").regionName(home: "us-east-1") == "us-east-1")
        #expect(eu != RegistryID.private("123456789012"))
    }

    @Test func theRequestRegionSelectsTheRegistry() async {
        let regions = RegionSet(home: "us-east-1", listed: ["eu-west-1"])
        #expect(RequestRegion.privateRegistry("123456789012").storedValue == "123456789012")
        #expect(RequestRegion.name(or: "us-east-1") == "us-east-1")
        await RequestRegion.$current.withValue(RequestRegion("eu-west-1", in: regions)) {
            #expect(RequestRegion.privateRegistry("123456789012").storedValue == "123456789012@eu-west-1")
            #expect(RequestRegion.name(or: "us-east-1") == "eu-west-1")
        }
        await RequestRegion.$current.withValue(RequestRegion("us-east-1", in: regions)) {
            #expect(RequestRegion.privateRegistry("123456789012").storedValue == "123456789012")
        }
    }
}
