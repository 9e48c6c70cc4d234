import Testing
import ChorusCore
@testable import ChorusText

@Suite struct ModelJSONTests {
    @Test func parsesEveryKindOfValue() throws {
        let v = try JSONValue.parse(#" { "a" : [1, -2.5e1, 0, -0, 1E+2, 3.25e-2], "b": {"c": true, "d": false, "e": null}, "s": "x", "empty": [], "o": {} } "#)
        #expect(v["a"] == .array([.number(1), .number(-25), .number(0), .number(-0.0), .number(100), .number(0.0325)]))
        #expect(v["b"]?["c"] == .bool(true) && v["b"]?["d"] == .bool(false) && v["b"]?["e"] == .null)
        #expect(v["s"]?.stringValue == "x" && v["empty"] == .array([]) && v["o"] == .object([:]))
        #expect(v["missing"] == nil && v["s"]?["x"] == nil)
        #expect(try JSONValue.parse("42") == .number(42))
        #expect(try JSONValue.parse("\"top\"") == .string("top"))
        #expect(try JSONValue.parse("\t\r\n null \n") == .null)
    }

    @Test func numbersConvertExactly() throws {
        #expect(try JSONValue.parse("0.1").numberValue == 0.1)
        #expect(try JSONValue.parse("1e-12").numberValue == 1e-12)
        #expect(try JSONValue.parse("9007199254740993").numberValue == 9007199254740992)  // rounds to nearest
        #expect(try JSONValue.parse("90868376").intValue == 90_868_376)
        #expect(try JSONValue.parse("3.0").intValue == 3)
        #expect(try JSONValue.parse("3.5").intValue == nil)
        #expect(try JSONValue.parse("1e300").intValue == nil)
        #expect(try JSONValue.parse("-7").intValue == -7)
        #expect(try JSONValue.parse("\"7\"").intValue == nil)
    }

    @Test func stringsDecodeEscapesAndUTF8() throws {
        #expect(try JSONValue.parse(#""q\"b\\s\/b\bf\fn\nr\rt\t""#) == .string("q\"b\\s/b\u{8}f\u{c}n\nr\rt\t"))
        #expect(try JSONValue.parse(#""\u00e9\u00E9 caf\u00e9""#) == .string("éé café"))
        #expect(try JSONValue.parse(#""\ud83d\ude00!""#) == .string("😀!"))  // a surrogate pair
        #expect(try JSONValue.parse(#""\u0000""#) == .string("\u{0}"))
        #expect(try JSONValue.parse("\"naïve 日本 😀\"") == .string("naïve 日本 😀"))  // raw UTF-8
        #expect(try JSONValue.parse(#"{"\u0061": 1}"#)["a"] == .number(1))
    }

    /// Each malformed document, and the exact message (with its byte offset) it must produce.
    @Test func rejectsMalformedInputWithItsOffset() {
        let cases: [(String, String)] = [
            ("", "at byte 0: the document is empty"),
            ("   ", "at byte 3: the document is empty"),
            ("{", "at byte 1: expected a string key in an object, found end of input"),
            ("[1,]", "at byte 3: expected a value, found ']'"),
            (#"{"a":1,}"#, "at byte 7: expected a string key in an object, found '}'"),
            (#"{"a" 1}"#, "at byte 5: expected ':' after the object key \"a\", found '1'"),
            (#"{"a":1 "b":2}"#, "at byte 7: expected ',' or '}' in an object, found '\"'"),
            ("{1:2}", "at byte 1: expected a string key in an object, found '1'"),
            ("[1 2]", "at byte 3: expected ',' or ']' in an array, found '2'"),
            ("[1", "at byte 2: expected ',' or ']' in an array, found end of input"),
            ("01", "at byte 1: a number has a leading zero"),
            ("1.", "at byte 2: expected a digit after the decimal point, found end of input"),
            (".5", "at byte 0: expected a value, found '.'"),
            ("-", "at byte 1: expected a digit in a number, found end of input"),
            ("+1", "at byte 0: expected a value, found '+'"),
            ("1e", "at byte 2: expected a digit in a number's exponent, found end of input"),
            ("1e999", "at byte 0: the number 1e999 is out of range"),
            ("NaN", "at byte 0: expected a value, found 'N'"),
            ("tru", "at byte 3: expected 'true', found end of input"),
            ("nul1", "at byte 3: expected 'null', found '1'"),
            ("1 2", "at byte 2: unexpected '2' after the top-level value"),
            ("// c\n1", "at byte 0: expected a value, found '/'"),
            ("\"abc", "at byte 4: a string opened at byte 0 is not closed"),
            (#""\x""#, "at byte 1: unknown escape sequence '\\' followed by 'x'"),
            (#""\u12""#, "at byte 5: expected 4 hex digits after \\u, found '\"'"),
            (#""\uD800""#, "at byte 1: the escape \\uD800 is a high surrogate without a following low surrogate"),
            (#""\uD800\u0041""#, "at byte 1: the escape \\uD800 is a high surrogate followed by \\u0041, not a low surrogate"),
            (#""\uDC00""#, "at byte 1: the escape \\uDC00 is a low surrogate without a preceding high surrogate"),
            ("\"a\nb\"", "at byte 2: a control character (byte 0x0A) must be escaped in a string"),
            (#"{"a":1,"a":2}"#, "at byte 7: the key \"a\" appears twice in one object"),
        ]
        for (text, message) in cases {
            #expect(throws: ChorusError.format("doc: invalid JSON \(message)"), "input: \(text)") {
                try JSONValue.parse(text, source: "doc")
            }
        }
        // Invalid UTF-8 inside a string, and a stray byte outside one.
        #expect(throws: ChorusError.format("doc: invalid JSON at byte 0: the string opened at byte 0 is not valid UTF-8")) {
            try JSONValue.parse([0x22, 0x61, 0xFF, 0x22], source: "doc")
        }
        #expect(throws: ChorusError.format("doc: invalid JSON at byte 0: expected a value, found byte 0xEF")) {
            try JSONValue.parse([0xEF, 0xBB, 0xBF, 0x31], source: "doc")  // a byte-order mark
        }
    }

    @Test func limitsNestingDepth() throws {
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(try JSONValue.parse(ok) != .null)
        let deep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        #expect(throws: ChorusError.format("JSON: invalid JSON at byte 128: arrays and objects are nested deeper than 128 levels")) {
            try JSONValue.parse(deep)
        }
        #expect(throws: ChorusError.self) { try JSONValue.parse(#"{"a":{"b":[1]}}"#, maxDepth: 2) }
        #expect(try JSONValue.parse(#"{"a":{"b":1}}"#, maxDepth: 2)["a"]?["b"] == .number(1))
        // Far past any stack: rejected, not a crash.
        let huge = String(repeating: "[", count: 100_000)
        #expect(throws: ChorusError.self) { try JSONValue.parse(huge) }
    }
}
