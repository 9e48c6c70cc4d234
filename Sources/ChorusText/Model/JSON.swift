import ChorusCore

/// A parsed JSON document (RFC 8259): the small subset of a JSON library that reading a model
/// directory needs (`config.json`, the safetensors header), without Foundation.
///
/// Numbers are kept as `Double` (every integer up to 2^53 is exact, far beyond any tensor offset
/// or configuration value we read); `intValue` gives an integer only when the number is one.
/// Objects are dictionaries: member order is not kept, and a repeated key is an error.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The deepest nesting of arrays and objects `parse` accepts by default.
    public static let defaultMaxDepth = 128

    /// Parses one JSON value from UTF-8 bytes, strictly: no comments, no trailing commas, no
    /// leading zeros, no bare control characters in strings, no unpaired surrogates, no invalid
    /// UTF-8, no non-finite numbers, no repeated keys, nothing but whitespace after the value.
    /// - Parameters:
    ///   - bytes: the document.
    ///   - source: names the document in error messages ("config.json").
    ///   - maxDepth: the deepest nesting of arrays and objects accepted (guards the stack).
    /// - Throws: `.format("<source>: invalid JSON at byte <offset>: <what>")`.
    /// - Complexity: O(n) in the document's length.
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, source: String = "JSON",
                             maxDepth: Int = defaultMaxDepth) throws(ChorusError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, source: source, maxDepth: maxDepth)
        return try parser.parseDocument()
    }

    /// Parses one JSON value from UTF-8 bytes; see `parse(_:source:maxDepth:)`.
    public static func parse(_ bytes: [UInt8], source: String = "JSON",
                             maxDepth: Int = defaultMaxDepth) throws(ChorusError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (p) throws(ChorusError) -> JSONValue in
            try parse(p, source: source, maxDepth: maxDepth)
        }
    }

    /// Parses one JSON value from a string; see `parse(_:source:maxDepth:)`.
    public static func parse(_ text: String, source: String = "JSON",
                             maxDepth: Int = defaultMaxDepth) throws(ChorusError) -> JSONValue {
        try parse(Array(text.utf8), source: source, maxDepth: maxDepth)
    }

    /// The member `key` of an object; nil for a missing key or a value that is not an object.
    public subscript(key: String) -> JSONValue? {
        if case .object(let o) = self { return o[key] }
        return nil
    }

    public var isNull: Bool { self == .null }
    public var boolValue: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var numberValue: Double? { if case .number(let d) = self { return d }; return nil }
    public var stringValue: String? { if case .string(let s) = self { return s }; return nil }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }

    /// The number as an `Int` when it is an integer that fits (`3` and `3.0`, not `3.5` or `1e300`).
    public var intValue: Int? {
        guard case .number(let d) = self, d == d.rounded(.towardZero),
              d >= -9_007_199_254_740_992, d <= 9_007_199_254_740_992 else { return nil }
        return Int(d)
    }

    /// "null", "boolean", "number", "string", "array" or "object", for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

/// A recursive-descent parser over a byte buffer; `depth` bounds the recursion.
struct JSONParser {
    let bytes: UnsafeBufferPointer<UInt8>
    let source: String
    let maxDepth: Int
    var pos = 0

    init(bytes: UnsafeBufferPointer<UInt8>, source: String, maxDepth: Int) {
        self.bytes = bytes
        self.source = source
        self.maxDepth = maxDepth
    }

    mutating func parseDocument() throws(ChorusError) -> JSONValue {
        skipWhitespace()
        if pos == bytes.count { throw fail("the document is empty") }
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if pos != bytes.count { throw fail("unexpected \(found()) after the top-level value") }
        return value
    }

    func fail(_ what: String, at offset: Int? = nil) -> ChorusError {
        .format("\(source): invalid JSON at byte \(offset ?? pos): \(what)")
    }

    /// Describes the byte at `pos` for an error message.
    func found() -> String {
        guard pos < bytes.count else { return "end of input" }
        let b = bytes[pos]
        if b >= 0x21 && b < 0x7f { return "'\(Character(Unicode.Scalar(b)))'" }
        let hex = String(b, radix: 16, uppercase: true)
        return "byte 0x\(hex.count == 1 ? "0" + hex : hex)"
    }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            switch bytes[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(ChorusError) -> JSONValue {
        guard pos < bytes.count else { throw fail("expected a value, found end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw fail("expected a value, found \(found())")
        }
    }

    mutating func expectLiteral(_ word: StaticString) throws(ChorusError) {
        let start = pos
        let n = word.utf8CodeUnitCount
        let w = UnsafeBufferPointer(start: word.utf8Start, count: n)
        for i in 0..<n where start + i >= bytes.count || bytes[start + i] != w[i] {
            pos = start + i
            throw fail("expected '\(word)', found \(found())", at: start + i)
        }
        pos = start + n
    }

    mutating func parseObject(depth: Int) throws(ChorusError) -> JSONValue {
        if depth > maxDepth { throw fail("arrays and objects are nested deeper than \(maxDepth) levels") }
        pos += 1  // {
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else {
                throw fail("expected a string key in an object, found \(found())")
            }
            let keyOffset = pos
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else {
                throw fail("expected ':' after the object key \"\(key)\", found \(found())")
            }
            pos += 1
            skipWhitespace()
            let value = try parseValue(depth: depth)
            if members.updateValue(value, forKey: key) != nil {
                throw fail("the key \"\(key)\" appears twice in one object", at: keyOffset)
            }
            skipWhitespace()
            guard pos < bytes.count else { throw fail("expected ',' or '}' in an object, found end of input") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(members) }
            throw fail("expected ',' or '}' in an object, found \(found())")
        }
    }

    mutating func parseArray(depth: Int) throws(ChorusError) -> JSONValue {
        if depth > maxDepth { throw fail("arrays and objects are nested deeper than \(maxDepth) levels") }
        pos += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard pos < bytes.count else { throw fail("expected ',' or ']' in an array, found end of input") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(elements) }
            throw fail("expected ',' or ']' in an array, found \(found())")
        }
    }

    /// A number per RFC 8259's grammar, converted with correct rounding; non-finite results
    /// ("1e400") are rejected.
    mutating func parseNumber() throws(ChorusError) -> Double {
        let start = pos
        func isDigit(_ i: Int) -> Bool { i < bytes.count && bytes[i] >= UInt8(ascii: "0") && bytes[i] <= UInt8(ascii: "9") }
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        guard isDigit(pos) else { throw fail("expected a digit in a number, found \(found())") }
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
            if isDigit(pos) { throw fail("a number has a leading zero") }
        } else {
            while isDigit(pos) { pos += 1 }
        }
        if pos < bytes.count && bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            guard isDigit(pos) else { throw fail("expected a digit after the decimal point, found \(found())") }
            while isDigit(pos) { pos += 1 }
        }
        if pos < bytes.count && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
            pos += 1
            if pos < bytes.count && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) { pos += 1 }
            guard isDigit(pos) else { throw fail("expected a digit in a number's exponent, found \(found())") }
            while isDigit(pos) { pos += 1 }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        guard let d = Double(text), d.isFinite else { throw fail("the number \(text) is out of range", at: start) }
        return d
    }

    /// A string after its opening quote has been seen at `pos`; returns the decoded text.
    mutating func parseString() throws(ChorusError) -> String {
        let open = pos
        pos += 1
        var decoded: [UInt8] = []
        var runStart = pos
        while true {
            guard pos < bytes.count else { throw fail("a string opened at byte \(open) is not closed") }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                break
            } else if b == UInt8(ascii: "\\") {
                decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<pos]))
                try parseEscape(into: &decoded)
                runStart = pos
            } else if b < 0x20 {
                throw fail("a control character (\(found())) must be escaped in a string")
            } else {
                pos += 1
            }
        }
        let text: String?
        if decoded.isEmpty && runStart == open + 1 {
            text = String(validating: UnsafeBufferPointer(rebasing: bytes[runStart..<pos]), as: UTF8.self)
        } else {
            decoded.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<pos]))
            text = String(validating: decoded, as: UTF8.self)
        }
        guard let s = text else { throw fail("the string opened at byte \(open) is not valid UTF-8", at: open) }
        pos += 1  // closing quote
        return s
    }

    /// One escape sequence at `pos` (the backslash), appended as UTF-8.
    mutating func parseEscape(into out: inout [UInt8]) throws(ChorusError) {
        let start = pos
        pos += 1
        guard pos < bytes.count else { throw fail("a string ends inside an escape sequence") }
        let c = bytes[pos]
        pos += 1
        switch c {
        case UInt8(ascii: "\""): out.append(0x22)
        case UInt8(ascii: "\\"): out.append(0x5C)
        case UInt8(ascii: "/"): out.append(0x2F)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try hex4()
            if scalar >= 0xD800 && scalar <= 0xDBFF {
                guard pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                    throw fail("the escape \\u\(hexString(scalar)) is a high surrogate without a following low surrogate", at: start)
                }
                pos += 2
                let low = try hex4()
                guard low >= 0xDC00 && low <= 0xDFFF else {
                    throw fail("the escape \\u\(hexString(scalar)) is a high surrogate followed by \\u\(hexString(low)), not a low surrogate", at: start)
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                throw fail("the escape \\u\(hexString(scalar)) is a low surrogate without a preceding high surrogate", at: start)
            }
            // Valid by construction: not a surrogate, at most 0x10FFFF.
            out.append(contentsOf: Unicode.Scalar(scalar)!.utf8)
        default:
            pos -= 1
            throw fail("unknown escape sequence '\\' followed by \(found())", at: start)
        }
    }

    /// Four hex digits at `pos`.
    mutating func hex4() throws(ChorusError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard pos < bytes.count else { throw fail("expected 4 hex digits after \\u, found end of input") }
            let b = bytes[pos]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw fail("expected 4 hex digits after \\u, found \(found())")
            }
            v = v << 4 | UInt32(d)
            pos += 1
        }
        return v
    }

    func hexString(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }
}
