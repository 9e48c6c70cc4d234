/// BERT's normaliser and pre-tokeniser: text in, words out.
///
/// Steps, in the reference's order (HuggingFace `tokenizers`: BertNormalizer then BertPreTokenizer):
/// 1. the special tokens (`[CLS]`, `[SEP]`, `[UNK]`, `[PAD]`, `[MASK]`) written literally in the raw
///    text are matched first, case-sensitively, and pass through as themselves;
/// 2. clean-up: U+0000, U+FFFD and control characters vanish, whitespace becomes a space;
/// 3. CJK ideographs get a space on either side;
/// 4. accent stripping: canonical decomposition (NFD), then non-spacing marks (Mn) vanish;
/// 5. lower-casing, one scalar at a time (no final-sigma rule, as the reference);
/// 6. words split at whitespace, and every punctuation character becomes a word of its own.
///
/// The predicates and their Unicode versions are in `BertCharacters`.
struct BasicTokenizer: Sendable {
    /// The special tokens recognised in raw text, as scalars, with their ids.
    let specials: [(name: [Unicode.Scalar], id: Int32)]

    /// One unit of output: a word to split into wordpieces, or a special token's id.
    enum Piece {
        case word
        case special(Int32)
    }

    /// Special tokens are parked in the cleaned buffer as these private-use scalars (the cleaner
    /// deletes every private-use character of the input, so they cannot collide with text).
    static let sentinelBase: UInt32 = 0xF0000

    /// Scalars cleaned per round: the text is normalised in chunks that end at whitespace, so that a
    /// long text costs little memory and `encode` can stop early once it has enough tokens.
    static let chunkSize = 4096

    /// Runs the normaliser and pre-tokeniser over `text`, calling `body` for each word (its scalars,
    /// lower-cased and accent-free, are in `word`) or special token, in order, until it returns false.
    /// - Complexity: O(n) in the length of `text`.
    func forEachPiece(
        in text: String,
        _ body: (_ piece: Piece, _ word: [Unicode.Scalar]) -> Bool
    ) {
        let scalars = text.unicodeScalars
        var position = scalars.startIndex
        var buffer = [Unicode.Scalar]()
        buffer.reserveCapacity(min(text.utf8.count, Self.chunkSize) + 8)
        var word = [Unicode.Scalar]()
        word.reserveCapacity(64)
        let empty = [Unicode.Scalar]()
        @inline(__always) func flush() -> Bool {
            if word.isEmpty { return true }
            defer { word.removeAll(keepingCapacity: true) }
            return body(.word, word)
        }
        /// A punctuation character: ends the current word and is a word of its own.
        @inline(__always) func isolate(_ p: Unicode.Scalar) -> Bool {
            guard flush() else { return false }
            word.append(p)
            return flush()
        }
        while position < scalars.endIndex {
            buffer.removeAll(keepingCapacity: true)
            if clean(scalars, from: &position, into: &buffer) { NFD.reorder(&buffer) }
            for s in buffer {
                let v = s.value
                if v == 0x20 { guard flush() else { return }; continue }
                if v < 0x80 {
                    if BertCharacters.isPunctuation(s) {
                        guard isolate(s) else { return }
                    } else if v >= 0x41 && v <= 0x5A {
                        word.append(Unicode.Scalar(v + 0x20)!)
                    } else {
                        word.append(s)
                    }
                    continue
                }
                if v >= Self.sentinelBase && v < Self.sentinelBase + UInt32(specials.count) {
                    guard flush(), body(.special(specials[Int(v - Self.sentinelBase)].id), empty) else { return }
                    continue
                }
                if BertCharacters.isWhitespace(s) { guard flush() else { return }; continue }
                if BertCharacters.isStrippedMark(s) { continue }
                let properties = s.properties
                if properties.changesWhenLowercased {
                    for l in properties.lowercaseMapping.unicodeScalars {
                        if BertCharacters.isPunctuation(l) {
                            guard isolate(l) else { return }
                        } else {
                            word.append(l)
                        }
                    }
                } else if BertCharacters.isPunctuation(s) {
                    guard isolate(s) else { return }
                } else {
                    word.append(s)
                }
            }
        }
        _ = flush()
    }

    /// Steps 1 to 4 minus the mark removal, from `position` on: special tokens become sentinels, the
    /// rest is cleaned, CJK-spaced and decomposed into `buffer`. Stops at the end of the text, or
    /// after a space once `buffer` holds `chunkSize` scalars (a space is a starter and a word break,
    /// so neither canonical reordering nor a word spans two chunks), leaving `position` after it.
    /// Returns true when canonical reordering may be needed (two non-starters in a row).
    private func clean(
        _ scalars: String.UnicodeScalarView,
        from position: inout String.UnicodeScalarView.Index,
        into buffer: inout [Unicode.Scalar]
    ) -> Bool {
        var needsReorder = false
        var previousNonStarter = false
        var i = position
        defer { position = i }
        let end = scalars.endIndex
        let space: Unicode.Scalar = " "
        while i < end {
            let s = scalars[i]
            let v = s.value
            if v == 0x5B /* [ */, let (k, after) = matchSpecial(scalars, at: i) {
                buffer.append(Unicode.Scalar(Self.sentinelBase + UInt32(k))!)
                previousNonStarter = false
                i = after
                continue
            }
            i = scalars.index(after: i)
            if v < 0x80 {
                // ASCII: no decomposition, class 0; tab/newline/return are whitespace.
                if BertCharacters.isRemoved(s) { continue }
                if v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D {
                    buffer.append(space)
                    if buffer.count >= Self.chunkSize { break }
                } else {
                    buffer.append(s)
                }
                previousNonStarter = false
                continue
            }
            if BertCharacters.isRemoved(s) { continue }
            if BertCharacters.isWhitespace(s) {
                buffer.append(space)
                previousNonStarter = false
                if buffer.count >= Self.chunkSize { break }
                continue
            }
            let chinese = BertCharacters.isChineseCharacter(v)
            if chinese { buffer.append(space) }
            let first = buffer.count
            if BertCharacters.isDecomposed(v) { NFD.decompose(s, into: &buffer) } else { buffer.append(s) }
            for j in first..<buffer.count {
                let nonStarter = NFD.combiningClass(buffer[j]) != 0
                if nonStarter && previousNonStarter { needsReorder = true }
                previousNonStarter = nonStarter
            }
            if chinese {
                buffer.append(space)
                previousNonStarter = false
                if buffer.count >= Self.chunkSize { break }
            }
        }
        return needsReorder
    }

    /// The special token spelled at `i` (which holds a `[`), and the index after it.
    private func matchSpecial(_ scalars: String.UnicodeScalarView, at i: String.UnicodeScalarView.Index)
        -> (Int, String.UnicodeScalarView.Index)?
    {
        outer: for (k, special) in specials.enumerated() {
            var j = i
            for expected in special.name {
                guard j < scalars.endIndex, scalars[j] == expected else { continue outer }
                j = scalars.index(after: j)
            }
            return (k, j)
        }
        return nil
    }
}
