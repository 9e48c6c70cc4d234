import ArgumentParser

/// Option value parsers with their ranges. A value out of range is a ValidationError, which the
/// argument parser reports as "The value 'x' is invalid for '--name <v>': <why>" (exit 2).
/// Every value option is declared with `parsing: .unconditional`, as the hand-written parser
/// this replaced: the next word is the value even when it starts with a dash (`--gamma -1.5`).
enum Parse {
    static func int(_ range: ClosedRange<Int>) -> @Sendable (String) throws -> Int {
        { text in
            guard let v = Int(text), range.contains(v) else {
                throw ValidationError("must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return v
        }
    }

    static let uint64: @Sendable (String) throws -> UInt64 = { text in
        guard let v = UInt64(text) else { throw ValidationError("must be a non-negative integer") }
        return v
    }

    /// A finite number in `range` (open bounds via `lowerOpen`/`upperOpen`).
    static func double(_ range: ClosedRange<Double>, lowerOpen: Bool = false, upperOpen: Bool = false)
        -> @Sendable (String) throws -> Double {
        { text in
            guard let v = Double(text), v.isFinite, range.contains(v),
                  !(lowerOpen && v == range.lowerBound), !(upperOpen && v == range.upperBound) else {
                let lo = lowerOpen ? "(" : "[", hi = upperOpen ? ")" : "]"
                throw ValidationError("must be a number in \(lo)\(range.lowerBound), \(range.upperBound)\(hi)")
            }
            return v
        }
    }

    static func float(_ range: ClosedRange<Double>, lowerOpen: Bool = false, upperOpen: Bool = false)
        -> @Sendable (String) throws -> Float {
        let parse = double(range, lowerOpen: lowerOpen, upperOpen: upperOpen)
        return { text in Float(try parse(text)) }
    }

    /// One of `names`.
    static func choice(_ names: [String]) -> @Sendable (String) throws -> String {
        { text in
            guard names.contains(text) else { throw ValidationError("must be one of " + names.joined(separator: ", ")) }
            return text
        }
    }
}

/// --texts / --facts.
enum OnOff: String, ExpressibleByArgument, CaseIterable {
    case on, off
    var isOn: Bool { self == .on }
}
