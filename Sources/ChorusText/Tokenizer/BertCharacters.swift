/// The character classes of BERT's basic tokenizer, as the reference implementation sees them.
///
/// The reference is HuggingFace `tokenizers` (BertNormalizer + BertPreTokenizer; checked against
/// version 0.23.3), which is what sentence-transformers runs for all-MiniLM-L6-v2. Its Unicode data
/// comes from several versions, and the ids depend on it, so these predicates reproduce the reference
/// rather than the current standard:
/// - control/format characters, non-spacing marks and punctuation come from the `unicode_categories`
///   crate, i.e. Unicode 8.0: a format character, mark or punctuation sign assigned later is an
///   ordinary letter to the reference, and so here (Swift's `age` property tells them apart); the few
///   characters whose category changed since 8.0 are listed below;
/// - unassigned code points (Cn) are kept, not deleted (the original Python BERT deletes them);
/// - whitespace (White_Space) and lower-casing use current data (Rust's std), which Swift's
///   `Unicode.Scalar.Properties` (Unicode 17 in Swift 6.3) matches;
/// - the CJK ranges are the reference's, whose Extension F block starts at U+2B920 (the original
///   BERT and the Python tokenizer say U+2B820, so U+2B820-2B91F are not spaced here);
/// - canonical decomposition comes from `NFDTable.swift` (Unicode 14 via Python), minus U+11938,
///   which the reference's older normalisation data leaves whole.
///
/// Every code point was checked against the reference in the context "a\u{X}b" (all 1,112,064
/// scalars give the same words); `TokenizerUnicodeTests` pins the exceptions.
enum BertCharacters {
    /// True for what the cleaner deletes: U+0000, U+FFFD, and control/format/private-use/surrogate
    /// characters (Unicode 8.0 categories Cc, Cf, Co, Cs) except tab, newline and carriage return.
    @inline(__always)
    static func isRemoved(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 { return (v < 0x20 && v != 0x09 && v != 0x0A && v != 0x0D) || v == 0x7F }
        if v == 0xFFFD { return true }
        switch s.properties.generalCategory {
        case .control, .privateUse, .surrogate: return true
        case .format: return isUnicode8(s)
        default: return false
        }
    }

    /// Rust's `char::is_whitespace` (the White_Space property), plus tab, newline, return.
    @inline(__always)
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return s.properties.isWhitespace
    }

    /// ASCII 33-47, 58-64, 91-96, 123-126 (so `$`, `+`, `^`, `|` too), or a Unicode 8.0
    /// punctuation category (Pc Pd Ps Pe Pi Pf Po).
    @inline(__always)
    static func isPunctuation(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x80 {
            return (v >= 33 && v <= 47) || (v >= 58 && v <= 64) || (v >= 91 && v <= 96) || (v >= 123 && v <= 126)
        }
        switch v {
        case 0x166D, 0x111C9: return true  // Po in Unicode 8.0; now So and Mn
        default: break
        }
        switch s.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            return isUnicode8(s)
        default:
            return false
        }
    }

    /// The CJK ideograph blocks that get a space on either side, as the reference spells them.
    @inline(__always)
    static func isChineseCharacter(_ v: UInt32) -> Bool {
        if v < 0x3400 { return false }
        return (v >= 0x4E00 && v <= 0x9FFF) || (v >= 0x3400 && v <= 0x4DBF)
            || (v >= 0x20000 && v <= 0x2A6DF) || (v >= 0x2A700 && v <= 0x2B73F)
            || (v >= 0x2B740 && v <= 0x2B81F) || (v >= 0x2B920 && v <= 0x2CEAF)
            || (v >= 0xF900 && v <= 0xFAFF) || (v >= 0x2F800 && v <= 0x2FA1F)
    }

    /// True for the non-spacing marks (Mn) that accent stripping drops, per Unicode 8.0.
    @inline(__always)
    static func isStrippedMark(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        if v < 0x300 { return false }
        switch v {
        case 0x1734, 0x1171E: return true  // Mn in Unicode 8.0; now Mc
        case 0x1885, 0x1886, 0xA9BD, 0x111C9: return false  // Lo, Lo, Mc, Po in Unicode 8.0; now Mn
        default: return s.properties.generalCategory == .nonspacingMark && isUnicode8(s)
        }
    }

    /// False for the characters with a canonical decomposition in `NFDTable` that the reference's
    /// normalisation data does not know (U+11938 DIVES AKURU VOWEL SIGN O, Unicode 13.0).
    @inline(__always)
    static func isDecomposed(_ v: UInt32) -> Bool {
        v != 0x11938
    }

    /// Assigned in Unicode 8.0 or earlier.
    @inline(__always)
    static func isUnicode8(_ s: Unicode.Scalar) -> Bool {
        guard let age = s.properties.age else { return false }
        return age.major < 8 || (age.major == 8 && age.minor == 0)
    }
}
