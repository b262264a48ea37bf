import BerthSupport
import Testing

@Suite struct MarkupTests {
    @Test func escapesTheMarkupCharacters() {
        #expect(Markup.escape(#"a<b>&"c"'d'"#) == "a&lt;b&gt;&amp;&quot;c&quot;&#39;d&#39;")
        #expect(Markup.escape("it's\r\n", apostrophe: "&apos;", carriageReturn: true) == "it&apos;s&#13;\n")
        #expect(Markup.escape("\r") == "\r")
        #expect(Markup.escape("plain é ✓") == "plain é ✓")
    }
}
