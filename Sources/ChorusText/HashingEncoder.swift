#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// The fallback encoder when the transformer's weights are absent: word unigrams and bigrams plus
/// character 3- to 5-grams of each word (with boundary marks), hashed with the sign trick
/// (Weinberger et al. 2009) into a fixed dimension, weighted 1 + log(count), L2-normalised.
/// It knows no synonyms, but texts sharing words or word pieces land close, which keeps every
/// text feature working, and it is deterministic across platforms (FNV-1a, no seeds).
public final class HashingEncoder: SentenceEncoder {
    public let dimension: Int
    public var name: String { "hashing-\(dimension)" }

    public init(dimension: Int = 384) {
        precondition(dimension > 0)
        self.dimension = dimension
    }

    public func encode(_ texts: [String], threads: Int) throws(ChorusError) -> [Float] {
        var out = [Float](repeating: 0, count: texts.count * dimension)
        out.withUnsafeMutableBufferPointer { buffer in
            let box = SendableBox(buffer)
            Parallel.forEach(count: texts.count, threads: max(1, threads), grain: 16) { _, t in
                let row = UnsafeMutableBufferPointer(rebasing: box.value[(t * self.dimension)..<((t + 1) * self.dimension)])
                self.encode(texts[t], into: row)
            }
        }
        return out
    }

    /// The features of one text, hashed into `row` (zeroed by the caller).
    func encode(_ text: String, into row: UnsafeMutableBufferPointer<Float>) {
        var counts: [UInt64: Float] = [:]
        let words = Self.words(text)
        for (i, w) in words.enumerated() {
            counts[Self.fnv1a(w, salt: 1), default: 0] += 1
            if i > 0 { counts[Self.fnv1a(words[i - 1] + [32] + w, salt: 2), default: 0] += 1 }
            let marked: [UInt32] = [60] + w + [62]  // "<word>"
            for n in 3...5 where marked.count >= n {
                for s in 0...(marked.count - n) { counts[Self.fnv1a(Array(marked[s..<(s + n)]), salt: UInt64(n)), default: 0] += 0.5 }
            }
        }
        var norm: Float = 0
        for (h, c) in counts {
            let slot = Int(h % UInt64(dimension))
            let sign: Float = (h >> 63) == 0 ? 1 : -1
            row[slot] += sign * (1 + logf(c))
        }
        for v in row { norm += v * v }
        if norm > 0 {
            let inv = 1 / norm.squareRoot()
            for i in row.indices { row[i] *= inv }
        }
    }

    /// Lower-cased words: maximal runs of letters and digits, as Unicode scalar values.
    static func words(_ text: String) -> [[UInt32]] {
        var out: [[UInt32]] = []
        var current: [UInt32] = []
        for scalar in text.lowercased().unicodeScalars {
            let p = scalar.properties
            if p.isAlphabetic || p.numericType != nil {
                current.append(scalar.value)
            } else if !current.isEmpty {
                out.append(current)
                current = []
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    static func fnv1a(_ scalars: [UInt32], salt: UInt64) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ (salt &* 0x9E37_79B9_7F4A_7C15)
        for s in scalars {
            var v = s
            for _ in 0..<4 {
                h ^= UInt64(v & 0xff)
                h = h &* 0x100_0000_01b3
                v >>= 8
            }
        }
        return h
    }
}

