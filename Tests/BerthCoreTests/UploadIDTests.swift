import BerthCore
import Testing

@Suite struct UploadIDTests {
    @Test func generatedIdsAreCanonical() {
        let a = UploadID.generate(), b = UploadID.generate()
        #expect(a != b)
        #expect(UploadID.isCanonical(a) && UploadID.isCanonical(b))
        #expect(UploadID.canonical(a) == a)
    }

    @Test func canonicalFormIsLowerCase() {
        #expect(UploadID.canonical("0B8E5F1C-AAAA-4bbb-9CCC-0123456789AB") == "0b8e5f1c-aaaa-4bbb-9ccc-0123456789ab")
        #expect(!UploadID.isCanonical("0B8E5F1C-AAAA-4bbb-9CCC-0123456789AB"))
    }

    @Test(arguments: ["", "abc", "0b8e5f1c-aaaa-4bbb-9ccc-0123456789a", "0b8e5f1c-aaaa-4bbb-9ccc-0123456789abc",
                      "0b8e5f1caaaaa-4bbb-9ccc-0123456789ab", "0b8e5f1c-aaaa-4bbb-9ccc-0123456789ag",
                      "mono-0b8e5f1c-aaaa-4bbb-9ccc-01234567", "0b8e5f1c-aaaa-4bbb-9ccc-０123456789ab"])
    func refusesWhatIsNotAUUID(_ text: String) {
        #expect(UploadID.canonical(text) == nil)
        #expect(!UploadID.isCanonical(text))
    }
}
