import Testing
@testable import ChorusText

/// Single code points through the normaliser and pre-tokeniser, in the context "a\u{X}b", against the
/// reference: HuggingFace `tokenizers` 0.23.3, `BertNormalizer(clean_text=True,
/// handle_chinese_chars=True, strip_accents=None, lowercase=True)` then `BertPreTokenizer()`,
/// `pre_tokenize_str(normalize_str("a" + chr(X) + "b"))`. Words are separated by spaces, scalars
/// within a word written in hex joined by dots ("61.62" is the one word "ab": X vanished).
///
/// The whole code space was compared once this way (all 1,112,064 scalars agree); these pins keep
/// the places where the reference departs from current Unicode or from the Python BERT tokenizer.
@Suite("Tokenizer Unicode data against the reference")
struct TokenizerUnicodeTests {
    static let pins: [(UInt32, String)] = [
        // Categories changed since Unicode 8.0
        (0x1734, "61.62"),  // HANUNOO SIGN PAMUDPOD
        (0x1171E, "61.62"),  // AHOM CONSONANT SIGN MEDIAL RA
        (0x1885, "61.1885.62"),  // MONGOLIAN LETTER ALI GALI BALUDA
        (0x1886, "61.1886.62"),  // MONGOLIAN LETTER ALI GALI THREE BALUDA
        (0xA9BD, "61.A9BD.62"),  // JAVANESE CONSONANT SIGN KERET
        (0x111C9, "61 111C9 62"),  // SHARADA SANDHI MARK
        (0x166D, "61 166D 62"),  // CANADIAN SYLLABICS CHI SIGN
        // Assigned after Unicode 8.0: ordinary characters to the reference
        (0x8D4, "61.8D4.62"),  // ARABIC SMALL HIGH WORD AR-RUB
        (0x8E2, "61.8E2.62"),  // ARABIC DISPUTED END OF AYAH
        (0x890, "61.890.62"),  // ARABIC POUND MARK ABOVE
        (0x2E43, "61.2E43.62"),  // DASH WITH LEFT UPTURN
        (0x2E52, "61.2E52.62"),  // TIRONIAN SIGN CAPITAL ET
        (0x10EAD, "61.10EAD.62"),  // YEZIDI HYPHENATION MARK
        (0x1F970, "61.1F970.62"),  // SMILING FACE WITH SMILING EYES AND THREE HEARTS
        // Decomposition the reference does not know
        (0x11938, "61.11938.62"),  // DIVES AKURU VOWEL SIGN O
        // CJK ranges (the reference's Extension F starts at U+2B920)
        (0x2B81F, "61 2B81F 62"),  // <unassigned>
        (0x2B820, "61.2B820.62"),  // CJK UNIFIED IDEOGRAPH-2B820
        (0x2B91F, "61.2B91F.62"),  // CJK UNIFIED IDEOGRAPH-2B91F
        (0x2B920, "61 2B920 62"),  // CJK UNIFIED IDEOGRAPH-2B920
        (0x2CEAF, "61 2CEAF 62"),  // <unassigned>
        (0x2CEB0, "61.2CEB0.62"),  // CJK UNIFIED IDEOGRAPH-2CEB0
        (0x3400, "61 3400 62"),  // CJK UNIFIED IDEOGRAPH-3400
        (0x4DBF, "61 4DBF 62"),  // CJK UNIFIED IDEOGRAPH-4DBF
        (0x4E00, "61 4E00 62"),  // CJK UNIFIED IDEOGRAPH-4E00
        (0x9FFF, "61 9FFF 62"),  // CJK UNIFIED IDEOGRAPH-9FFF
        (0xF900, "61 8C48 62"),  // CJK COMPATIBILITY IDEOGRAPH-F900
        (0xFAFF, "61 FAFF 62"),  // <unassigned>
        (0x2F800, "61 4E3D 62"),  // CJK COMPATIBILITY IDEOGRAPH-2F800
        (0x2FA1F, "61 2FA1F 62"),  // <unassigned>
        (0x20000, "61 20000 62"),  // CJK UNIFIED IDEOGRAPH-20000
        // Deleted: controls, format characters, private use; kept: unassigned and noncharacters
        (0x1C, "61.62"),  // <control>
        (0x1F, "61.62"),  // <control>
        (0x7F, "61.62"),  // <control>
        (0x85, "61.62"),  // <control>
        (0xAD, "61.62"),  // SOFT HYPHEN
        (0x61C, "61.62"),  // ARABIC LETTER MARK
        (0x180E, "61.62"),  // MONGOLIAN VOWEL SEPARATOR
        (0x200B, "61.62"),  // ZERO WIDTH SPACE
        (0x200D, "61.62"),  // ZERO WIDTH JOINER
        (0xFEFF, "61.62"),  // ZERO WIDTH NO-BREAK SPACE
        (0xFFFD, "61.62"),  // REPLACEMENT CHARACTER
        (0xE0001, "61.62"),  // LANGUAGE TAG
        (0xE000, "61.62"),  // <private use>
        (0xF0000, "61.62"),  // <private use>
        (0x378, "61.378.62"),  // <unassigned>
        (0xFFFE, "61.FFFE.62"),  // <unassigned in Unicode 14; Unicode 1.1 unassigned>
        // Whitespace (White_Space, not only Zs)
        (0xA0, "61 62"),  // NO-BREAK SPACE
        (0x1680, "61 62"),  // OGHAM SPACE MARK
        (0x2028, "61 62"),  // LINE SEPARATOR
        (0x2029, "61 62"),  // PARAGRAPH SEPARATOR
        (0x202F, "61 62"),  // NARROW NO-BREAK SPACE
        (0x3000, "61 62"),  // IDEOGRAPHIC SPACE
        // Lower-casing and decomposition
        (0x130, "61.69.62"),  // LATIN CAPITAL LETTER I WITH DOT ABOVE
        (0x3A3, "61.3C3.62"),  // GREEK CAPITAL LETTER SIGMA
        (0x1E9E, "61.DF.62"),  // LATIN CAPITAL LETTER SHARP S
        (0x212B, "61.61.62"),  // ANGSTROM SIGN
        (0x2126, "61.3C9.62"),  // OHM SIGN
        (0xAC00, "61.1100.1161.62"),  // HANGUL SYLLABLE GA
        (0xD7A3, "61.1112.1175.11C2.62"),  // HANGUL SYLLABLE HIH
        (0x1D15E, "61.1D157.1D165.62"),  // MUSICAL SYMBOL HALF NOTE
        (0x344, "61.62"),  // COMBINING GREEK DIALYTIKA TONOS
        (0x1F82, "61.3B1.62"),  // GREEK SMALL LETTER ALPHA WITH PSILI AND VARIA AND YPOGEGRAMMENI
        (0xFB01, "61.FB01.62"),  // LATIN SMALL LIGATURE FI
        (0x10400, "61.10428.62"),  // DESERET CAPITAL LETTER LONG I
        (0x1E900, "61.1E922.62"),  // ADLAM CAPITAL LETTER ALIF
        (0x13A0, "61.AB70.62"),  // CHEROKEE LETTER A
        (0x1C90, "61.10D0.62"),  // GEORGIAN MTAVRULI CAPITAL LETTER AN
        (0xA7C0, "61.A7C1.62"),  // LATIN CAPITAL LETTER OLD POLISH O
        (0x2C2F, "61.2C5F.62"),  // GLAGOLITIC CAPITAL LETTER CAUDATE CHRIVI
        (0x1C89, "61.1C8A.62"),  // <unassigned in Unicode 14; Unicode 16.0 uppercaseLetter>
        (0xFF21, "61.FF41.62"),  // FULLWIDTH LATIN CAPITAL LETTER A
        (0x2160, "61.2170.62"),  // ROMAN NUMERAL ONE
        (0x24B6, "61.24D0.62"),  // CIRCLED LATIN CAPITAL LETTER A
        // Marks
        (0x300, "61.62"),  // COMBINING GRAVE ACCENT
        (0x301, "61.62"),  // COMBINING ACUTE ACCENT
        (0x5B0, "61.62"),  // HEBREW POINT SHEVA
        (0x64B, "61.62"),  // ARABIC FATHATAN
        (0x302A, "61.62"),  // IDEOGRAPHIC LEVEL TONE MARK
        (0x3099, "61.62"),  // COMBINING KATAKANA-HIRAGANA VOICED SOUND MARK
        (0x1D165, "61.1D165.62"),  // MUSICAL SYMBOL COMBINING STEM
        (0x1D167, "61.62"),  // MUSICAL SYMBOL COMBINING TREMOLO-1
        // Punctuation
        (0xB7, "61 B7 62"),  // MIDDLE DOT
        (0x387, "61 B7 62"),  // GREEK ANO TELEIA
        (0x37E, "61 3B 62"),  // GREEK QUESTION MARK
        (0x2329, "61 3008 62"),  // LEFT-POINTING ANGLE BRACKET
        (0xA8FC, "61 A8FC 62"),  // DEVANAGARI SIGN SIDDHAM
        (0xA7, "61 A7 62"),  // SECTION SIGN
        (0xB6, "61 B6 62"),  // PILCROW SIGN
        (0x2E3C, "61 2E3C 62"),  // STENOGRAPHIC FULL STOP
        (0x2010, "61 2010 62"),  // HYPHEN
        (0xFF01, "61 FF01 62"),  // FULLWIDTH EXCLAMATION MARK
    ]

    @Test func singleCodePointsMatchTheReference() throws {
        let tokenizer = try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
        for (code, expected) in Self.pins {
            var text = String.UnicodeScalarView()
            text.append("a")
            text.append(try #require(Unicode.Scalar(code)))
            text.append("b")
            let words = tokenizer.basicWords(String(text)).map { word in
                word.unicodeScalars.map { String($0.value, radix: 16, uppercase: true) }.joined(separator: ".")
            }
            #expect(words.joined(separator: " ") == expected, "U+\(String(code, radix: 16, uppercase: true))")
        }
    }

    @Test func canonicalReorderingOfSurvivingMarks() throws {
        // U+1D16D (Mc, class 226) before U+1D165 (Mc, class 216): NFD swaps them; the acute accent
        // between them (class 230) is dropped. Reference: "61.1D165.1D16D.62" for both.
        let tokenizer = try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
        for text in ["a\u{1D16D}\u{1D165}b", "a\u{1D16D}\u{301}\u{1D165}b", "a\u{1D16D}\u{200B}\u{1D165}b"] {
            let scalars = tokenizer.basicWords(text).map { Array($0.unicodeScalars.map(\.value)) }
            #expect(scalars == [[0x61, 0x1D165, 0x1D16D, 0x62]])
        }
    }

    @Test func nfdTableIsConsistent() {
        #expect(NFD.offsets.count == NFD.keys.count)
        var previous: UInt32 = 0
        for key in NFD.keys {
            #expect(key & 0x1F_FFFF > previous)
            previous = key & 0x1F_FFFF
        }
        var out = [Unicode.Scalar]()
        NFD.decompose("\u{1E69}", into: &out)  // ṩ -> s, dot below, dot above
        #expect(out.map(\.value) == [0x73, 0x323, 0x307])
    }
}
