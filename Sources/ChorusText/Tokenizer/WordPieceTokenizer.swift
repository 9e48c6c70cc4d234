import ChorusCore

/// The BERT uncased WordPiece tokenizer of all-MiniLM-L6-v2, id for id as the reference
/// (HuggingFace `tokenizers`: BertNormalizer with lowercase and accent stripping, BertPreTokenizer,
/// WordPiece with `##` continuations and at most 100 characters a word, `[CLS] … [SEP]`).
///
/// The text rules are in `BasicTokenizer` and `BertCharacters`; this type holds the vocabulary and
/// does the greedy longest-match-first split of each word.
///
/// Thread safety: a value type with immutable state; share it freely.
public struct WordPieceTokenizer: Sendable {
    /// Words longer than this (in Unicode scalars) become `[UNK]` whole, as in the reference.
    public static let maxCharactersPerWord = 100

    /// Vocabulary entries by their exact UTF-8 bytes.
    private let ids: VocabularyTable
    private let pieces: [String]
    /// The longest vocabulary entry, in scalars: no candidate longer than this can match.
    private let longestPiece: Int
    private let basic: BasicTokenizer

    public let clsID: Int32
    public let sepID: Int32
    public let unkID: Int32
    public let padID: Int32

    /// Number of entries in the vocabulary (30522 for all-MiniLM-L6-v2).
    public var vocabularySize: Int { pieces.count }

    /// Loads a `vocab.txt`: one token a line, the id being the line number from 0.
    /// - Throws: `.notFound`/`.io` when the file cannot be read, `.format` when it is not UTF-8,
    ///   is empty, or lacks one of `[CLS]`, `[SEP]`, `[UNK]`, `[PAD]`.
    public init(vocabularyFile path: String) throws(ChorusError) {
        let bytes = try FileIO.readAll(path: path)
        var lines = [String]()
        lines.reserveCapacity(32 * 1024)
        var start = 0
        var lineNumber = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            lineNumber += 1
            var stop = end
            if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }
            guard let line = String(validating: bytes[start..<stop], as: UTF8.self) else {
                throw .format("'\(path)' line \(lineNumber) is not valid UTF-8")
            }
            lines.append(line)
            start = end + 1
        }
        do {
            try self.init(vocabulary: lines)
        } catch {
            throw .format("'\(path)': \(error.message)")
        }
    }

    /// Builds a tokenizer from its vocabulary: `vocabulary[i]` is the token of id `i` (continuation
    /// pieces spelled with `##`). A token listed twice keeps its last id, as the reference.
    /// - Throws: `.invalidArgument` when the vocabulary is empty, larger than `Int32.max`, or lacks
    ///   one of `[CLS]`, `[SEP]`, `[UNK]`, `[PAD]`.
    public init(vocabulary: [String]) throws(ChorusError) {
        if vocabulary.isEmpty { throw .invalidArgument("the vocabulary is empty") }
        if vocabulary.count > Int(Int32.max) { throw .invalidArgument("the vocabulary has more than 2^31-1 tokens") }
        let ids = VocabularyTable(vocabulary)
        var longest = 0
        for token in vocabulary { longest = max(longest, token.unicodeScalars.count) }
        func required(_ name: String) throws(ChorusError) -> Int32 {
            guard let id = ids.id(of: name) else {
                throw .invalidArgument("the vocabulary has no \(name) token")
            }
            return id
        }
        clsID = try required("[CLS]")
        sepID = try required("[SEP]")
        unkID = try required("[UNK]")
        padID = try required("[PAD]")
        var specials = [(name: [Unicode.Scalar], id: Int32)]()
        for name in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
            if let id = ids.id(of: name) { specials.append((Array(name.unicodeScalars), id)) }
        }
        self.ids = ids
        self.pieces = vocabulary
        self.longestPiece = longest
        self.basic = BasicTokenizer(specials: specials)
    }

    /// Token ids for `text`: `[CLS]`, its wordpieces, `[SEP]`, cut to at most `maxLength` ids in all
    /// (the wordpieces are truncated at the end; `[SEP]` stays last). `maxLength` below 2 counts as 2.
    /// - Complexity: O(n) in the text length; stops reading once `maxLength` ids are reached.
    public func encode(_ text: String, maxLength: Int = 256) -> [Int32] {
        let budget = max(maxLength, 2) - 2
        var out = [Int32]()
        out.reserveCapacity(min(budget, text.utf8.count + 1) + 2)
        out.append(clsID)
        if budget > 0 {
            forEachID(text) { id in
                out.append(id)
                return out.count - 1 < budget
            }
        }
        out.append(sepID)
        return out
    }

    /// The wordpieces of `text` as strings, without `[CLS]`/`[SEP]` and without truncation
    /// (for debugging and tests).
    public func tokens(_ text: String) -> [String] {
        var out = [String]()
        forEachID(text) { id in
            out.append(pieces[Int(id)])
            return true
        }
        return out
    }

    /// The token of `id`, or nil when out of range.
    public func token(of id: Int32) -> String? {
        id >= 0 && Int(id) < pieces.count ? pieces[Int(id)] : nil
    }

    /// The id of `token` in the vocabulary (exact spelling, `##` included), or nil.
    public func id(of token: String) -> Int32? {
        ids.id(of: token)
    }

    /// The words of `text` after normalisation and pre-tokenisation, before WordPiece (special
    /// tokens as their names). A clear-box hook for tests.
    package func basicWords(_ text: String) -> [String] {
        var out = [String]()
        basic.forEachPiece(in: text) { piece, word in
            switch piece {
            case .special(let id): out.append(pieces[Int(id)])
            case .word:
                var s = String()
                s.unicodeScalars.append(contentsOf: word)
                out.append(s)
            }
            return true
        }
        return out
    }

    /// Calls `body` with each wordpiece id of `text` in order until it returns false.
    private func forEachID(_ text: String, _ body: (Int32) -> Bool) {
        var scratch = SplitScratch()
        basic.forEachPiece(in: text) { piece, word in
            switch piece {
            case .special(let id):
                return body(id)
            case .word:
                split(word, scratch: &scratch)
                for id in scratch.ids where !body(id) { return false }
                return true
            }
        }
    }

    /// Reusable buffers for `split`, so that a word costs no allocation.
    struct SplitScratch {
        /// `##` then the word's UTF-8.
        var bytes = [UInt8]()
        /// `bytes` offset where each scalar of the word starts, plus the end.
        var boundaries = [Int]()
        /// FNV-1a state after each candidate end.
        var hashes = [UInt64]()
        /// The result: the word's wordpiece ids.
        var ids = [Int32]()
    }

    /// Greedy longest-match-first WordPiece: the longest vocabulary prefix of what is left, spelled
    /// with `##` after the first piece; a word with an unmatched rest becomes one `[UNK]`. The ids
    /// land in `scratch.ids`.
    /// - Complexity: O(w · L) hashing plus one byte comparison per hit, for a word of w scalars and
    ///   L = the longest vocabulary entry.
    func split(_ word: [Unicode.Scalar], scratch: inout SplitScratch) {
        scratch.ids.removeAll(keepingCapacity: true)
        let n = word.count
        if n > Self.maxCharactersPerWord { scratch.ids.append(unkID); return }
        scratch.bytes.removeAll(keepingCapacity: true)
        scratch.boundaries.removeAll(keepingCapacity: true)
        scratch.bytes.append(0x23)
        scratch.bytes.append(0x23)
        for s in word {
            scratch.boundaries.append(scratch.bytes.count)
            appendUTF8(s, to: &scratch.bytes)
        }
        scratch.boundaries.append(scratch.bytes.count)
        if scratch.hashes.count < longestPiece + 1 {
            scratch.hashes = [UInt64](repeating: 0, count: longestPiece + 1)
        }
        var start = 0
        while start < n {
            // The piece starts at its first byte, or 2 bytes earlier for "##": those two bytes belong
            // to pieces already matched (or to the "##" header), so they can be overwritten.
            var base = scratch.boundaries[start]
            if start > 0 {
                base -= 2
                scratch.bytes[base] = 0x23
                scratch.bytes[base + 1] = 0x23
            }
            let last = min(n, start + longestPiece)
            var match: (id: Int32, end: Int)? = nil
            scratch.bytes.withUnsafeBufferPointer { bytes in
                // hashes[k] = hash of the candidate ending after scalar start + k.
                var hash = VocabularyTable.seed
                var at = base
                for k in 0..<(last - start) {
                    let stop = scratch.boundaries[start + k + 1]
                    while at < stop { hash = VocabularyTable.step(hash, bytes[at]); at += 1 }
                    scratch.hashes[k] = hash
                }
                var end = last
                while end > start {
                    let key = UnsafeBufferPointer(rebasing: bytes[base..<scratch.boundaries[end]])
                    if let id = ids.id(of: key, hash: scratch.hashes[end - start - 1]) {
                        match = (id, end)
                        return
                    }
                    end -= 1
                }
            }
            guard let (id, end) = match else {
                scratch.ids.removeAll(keepingCapacity: true)
                scratch.ids.append(unkID)
                return
            }
            scratch.ids.append(id)
            start = end
        }
    }
}

@inline(__always)
private func appendUTF8(_ s: Unicode.Scalar, to bytes: inout [UInt8]) {
    let v = s.value
    if v < 0x80 {
        bytes.append(UInt8(v))
    } else if v < 0x800 {
        bytes.append(UInt8(0xC0 | (v >> 6)))
        bytes.append(UInt8(0x80 | (v & 0x3F)))
    } else if v < 0x10000 {
        bytes.append(UInt8(0xE0 | (v >> 12)))
        bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        bytes.append(UInt8(0x80 | (v & 0x3F)))
    } else {
        bytes.append(UInt8(0xF0 | (v >> 18)))
        bytes.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
        bytes.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        bytes.append(UInt8(0x80 | (v & 0x3F)))
    }
}
