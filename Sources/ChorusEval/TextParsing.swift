import ChorusCore

/// Byte-level readers for the delimited text files the loaders parse: lines with LF or CRLF
/// endings, fields split on a one-byte separator, and RFC 4180 CSV records (quoted fields with
/// separators, doubled quotes and even line breaks inside). Foundation-free, and fast enough for
/// the 100k-line MovieLens files (one pass, no regular expressions).
enum TextParsing {
    /// One record of a file: its 1-based line number (of its first line) and its fields as raw bytes.
    struct Record {
        var line: Int
        var fields: [ArraySlice<UInt8>]
    }

    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")
    static let quote = UInt8(ascii: "\"")

    /// Splits `bytes` into lines (LF, with a CR before the LF dropped; a lone final line without
    /// a newline counts) and calls `body(lineNumber, line)` for each non-blank one.
    static func forEachLine(_ bytes: [UInt8], _ body: (Int, ArraySlice<UInt8>) throws(ChorusError) -> Void) throws(ChorusError) {
        var start = 0
        var line = 0
        let n = bytes.count
        while start < n {
            line += 1
            var end = start
            while end < n && bytes[end] != lf { end += 1 }
            var stop = end
            if stop > start && bytes[stop - 1] == cr { stop -= 1 }
            if stop > start { try body(line, bytes[start..<stop]) }
            start = end + 1
        }
    }

    /// Splits one line on `separator`, no quoting (ml-100k's `|` and tab files).
    static func split(_ line: ArraySlice<UInt8>, separator: UInt8) -> [ArraySlice<UInt8>] {
        var out: [ArraySlice<UInt8>] = []
        var fieldStart = line.startIndex
        for i in line.indices where line[i] == separator {
            out.append(line[fieldStart..<i])
            fieldStart = i + 1
        }
        out.append(line[fieldStart..<line.endIndex])
        return out
    }

    /// Parses RFC 4180 CSV: fields separated by `,`, records by LF or CRLF; a field that starts
    /// with `"` runs to the matching closing quote, `""` inside it is one quote, and separators or
    /// line breaks inside it are data. Blank lines are skipped.
    /// - Throws: `.format("path:line: ...")` for an unterminated quote or text after a closing quote.
    static func forEachCSVRecord(_ bytes: [UInt8], path: String, _ body: (Record) throws(ChorusError) -> Void) throws(ChorusError) {
        let comma = UInt8(ascii: ",")
        let n = bytes.count
        var i = 0
        var line = 1
        while i < n {
            // Skip blank lines.
            if bytes[i] == lf { line += 1; i += 1; continue }
            if bytes[i] == cr && i + 1 < n && bytes[i + 1] == lf { line += 1; i += 2; continue }
            let recordLine = line
            var fields: [ArraySlice<UInt8>] = []
            var atRecordEnd = false
            while !atRecordEnd {
                if i < n && bytes[i] == quote {
                    // Quoted field: collect its bytes, undoubling quotes.
                    var value: [UInt8] = []
                    i += 1
                    var closed = false
                    while i < n {
                        let b = bytes[i]
                        if b == quote {
                            if i + 1 < n && bytes[i + 1] == quote { value.append(quote); i += 2; continue }
                            closed = true
                            i += 1
                            break
                        }
                        if b == lf { line += 1 }
                        value.append(b)
                        i += 1
                    }
                    if !closed { throw .format("\(path):\(recordLine): unterminated quoted field") }
                    fields.append(value[...])
                    if i < n && bytes[i] == cr && i + 1 < n && bytes[i + 1] == lf { i += 2; line += 1; atRecordEnd = true }
                    else if i < n && bytes[i] == lf { i += 1; line += 1; atRecordEnd = true }
                    else if i >= n { atRecordEnd = true }
                    else if bytes[i] == comma { i += 1; if i >= n { fields.append([][...]); atRecordEnd = true } }
                    else { throw .format("\(path):\(recordLine): unexpected text after a closing quote (a quote inside a field must be doubled)") }
                } else {
                    let start = i
                    while i < n && bytes[i] != comma && bytes[i] != lf { i += 1 }
                    var stop = i
                    if i < n && bytes[i] == lf && stop > start && bytes[stop - 1] == cr { stop -= 1 }
                    fields.append(bytes[start..<stop])
                    if i >= n { atRecordEnd = true }
                    else if bytes[i] == lf { i += 1; line += 1; atRecordEnd = true }
                    else { i += 1; if i >= n { fields.append([][...]); atRecordEnd = true } }
                }
            }
            try body(Record(line: recordLine, fields: fields))
        }
    }

    /// The bytes as UTF-8 text (invalid sequences become U+FFFD).
    static func utf8(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    /// The bytes as ISO-8859-1 text: every byte is the code point of the same value.
    static func latin1(_ bytes: ArraySlice<UInt8>) -> String {
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        var scalars = String.UnicodeScalarView()
        for b in bytes { scalars.append(Unicode.Scalar(b)) }
        return String(scalars)
    }

    /// A decimal integer with an optional leading `-` (no spaces, no `+`).
    static func int64(_ bytes: ArraySlice<UInt8>) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 20 else { return nil }
        return Int64(utf8(bytes))
    }

    /// A decimal number such as `4`, `3.5` or `-1e3`.
    static func float(_ bytes: ArraySlice<UInt8>) -> Float? {
        guard !bytes.isEmpty, bytes.count <= 40 else { return nil }
        return Float(utf8(bytes))
    }

    /// Up to 40 bytes of a line for an error message.
    static func excerpt(_ bytes: ArraySlice<UInt8>) -> String {
        let s = utf8(bytes.prefix(40))
        return bytes.count > 40 ? "'\(s)...'" : "'\(s)'"
    }
}
