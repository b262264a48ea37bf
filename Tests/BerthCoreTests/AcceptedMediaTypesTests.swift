@testable import BerthCore
import Testing

/// `AcceptedMediaTypes.parse` reads ASCII headers as bytes (every manifest GET parses one); that path must
/// answer exactly as the general, character-based one.
@Suite struct AcceptedMediaTypesTests {
    @Test(arguments: [
        "",
        "application/vnd.oci.image.manifest.v1+json",
        "Application/VND.OCI.Image.Index.v1+JSON ; q=0.5, application/json",
        "application/vnd.docker.distribution.manifest.v2+json;q=0, */*;q=0",
        " \tapplication/vnd.oci.image.index.v1+json\t ,, ;application/x;Q = 0 ",
        "*/*",
        "application/*; q=1",
        "text/plain; q=0.000, text/html;q=0e0, a/b; q=, c/d;=0, e/f; q=abc",
        ";;;,,,",
        "application/vnd.oci.image.manifest.v1+json; charset=utf-8; q=0.9",
    ])
    func bytesAndCharactersAgree(_ header: String) {
        #expect(AcceptedMediaTypes.parseASCII([header]) == AcceptedMediaTypes.parseCharacters([header]))
        #expect(AcceptedMediaTypes.parseASCII([header, "x/y"]) == AcceptedMediaTypes.parseCharacters([header, "x/y"]))
    }

    @Test func randomASCIIHeadersAgree() {
        let alphabet = Array("aA/*,;= \t\r\nq0.1xJ+")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let length = Int.random(in: 0...24, using: &generator)
            let header = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            #expect(AcceptedMediaTypes.parseASCII([header]) == AcceptedMediaTypes.parseCharacters([header]), "\(header.debugDescription)")
        }
    }

    @Test func nonASCIIHeadersTakeTheCharacterPath() {
        let header = "application/vnd.oci.image.manifest.v1+json, tëxt/plain"
        #expect(AcceptedMediaTypes(acceptHeaders: [header]).types == AcceptedMediaTypes.parseCharacters([header]))
    }
}
