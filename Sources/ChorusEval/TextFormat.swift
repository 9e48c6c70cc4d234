/// Number and column formatting for reports, without Foundation's `String(format:)`.
public enum TextFormat {
    /// `value` rounded to `digits` decimals: `fixed(0.47762, 4) == "0.4776"`, `fixed(-1.5, 0) == "-2"`.
    /// Non-finite values print as `nan`, `inf`, `-inf`.
    public static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        let d = max(0, min(digits, 15))
        var scale = 1.0
        for _ in 0..<d { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return String(value) }
        let n = UInt64(scaled)
        let p = UInt64(scale)
        let whole = String(n / p)
        let sign = value < 0 && n != 0 ? "-" : ""
        if d == 0 { return sign + whole }
        let frac = String(n % p)
        return sign + whole + "." + String(repeating: "0", count: d - frac.count) + frac
    }

    /// An integer with thousands separators: `grouped(100836) == "100,836"`.
    public static func grouped(_ value: Int) -> String {
        let digits = Array(String(value.magnitude))
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return value < 0 ? "-" + out : out
    }

    /// A percentage with no decimals: `percent(0.7249) == "72%"`.
    public static func percent(_ fraction: Double) -> String { fixed(fraction * 100, 0) + "%" }

    /// Seconds with a precision that suits their size: `0.042 s`, `1.25 s`, `73.4 s`.
    public static func seconds(_ s: Double) -> String {
        if s < 1 { return fixed(s, 3) + " s" }
        if s < 10 { return fixed(s, 2) + " s" }
        return fixed(s, 1) + " s"
    }

    /// `text` padded with spaces on the right (`left: true`) or the left, to `width` characters;
    /// longer text is returned whole.
    public static func pad(_ text: String, _ width: Int, left: Bool = true) -> String {
        let n = text.count
        if n >= width { return text }
        let fill = String(repeating: " ", count: width - n)
        return left ? text + fill : fill + text
    }

    /// `text` cut to at most `width` characters, ending in "..." when cut.
    public static func truncate(_ text: String, _ width: Int) -> String {
        guard text.count > width, width > 3 else { return text }
        return String(text.prefix(width - 3)) + "..."
    }
}

