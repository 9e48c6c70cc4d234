/// Canonical decomposition (Unicode NFD) without Foundation.
///
/// The Swift standard library normalises internally but exposes no NFD, so the decompositions come
/// from a generated table (`NFDTable.swift`, made by `scripts/generate_nfd_table.py` from Python's
/// `unicodedata`), and Hangul syllables are decomposed by the algorithm of Unicode §3.12.
enum NFD {
    static let hangulBase: UInt32 = 0xAC00
    static let hangulCount: UInt32 = 11172

    /// Appends the full canonical decomposition of `scalar` to `out` (the scalar itself when it has
    /// none). Canonical reordering across neighbouring scalars is the caller's job (`reorder`).
    /// - Complexity: O(log n) in the table size; O(1) for ASCII and Hangul.
    @inline(__always)
    static func decompose(_ scalar: Unicode.Scalar, into out: inout [Unicode.Scalar]) {
        let v = scalar.value
        if v < 0xC0 { out.append(scalar); return }
        let s = v &- hangulBase
        if s < hangulCount {
            // L V (T): 19 leading consonants x 21 vowels x 28 trailing (0 = none).
            out.append(Unicode.Scalar(0x1100 + s / 588)!)
            out.append(Unicode.Scalar(0x1161 + (s % 588) / 28)!)
            if s % 28 != 0 { out.append(Unicode.Scalar(0x11A7 + s % 28)!) }
            return
        }
        guard let range = lookup(v) else { out.append(scalar); return }
        for i in range { out.append(Unicode.Scalar(values[i])!) }
    }

    /// Where the decomposition of `v` sits in `values`, or nil when `v` has none.
    static func lookup(_ v: UInt32) -> Range<Int>? {
        let (found, index) = keys.withUnsafeBufferPointer { keys -> (Bool, Int) in
            var lo = 0, hi = keys.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                let key = keys[mid] & 0x1F_FFFF
                if key < v { lo = mid + 1 } else if key > v { hi = mid } else { return (true, mid) }
            }
            return (false, 0)
        }
        guard found else { return nil }
        let start = offsets[index]
        return start..<(start + Int(keys[index] >> 21))
    }

    /// Start of each key's decomposition in `values` (a prefix sum of the counts packed in `keys`).
    static let offsets: [Int] = {
        var result = [Int]()
        result.reserveCapacity(keys.count)
        var at = 0
        for key in keys {
            result.append(at)
            at += Int(key >> 21)
        }
        precondition(at == values.count, "NFDTable.swift is inconsistent; regenerate it")
        return result
    }()

    /// Canonical ordering (Unicode §3.11): within each run of non-starters, a stable sort by
    /// canonical combining class. Runs are almost always one scalar long, so this is a linear scan.
    static func reorder(_ buffer: inout [Unicode.Scalar], from start: Int = 0) {
        var i = start + 1
        while i < buffer.count {
            let c = combiningClass(buffer[i])
            if c != 0 {
                // Insertion sort step: move buffer[i] left past non-starters of a higher class.
                var j = i
                while j > start {
                    let p = combiningClass(buffer[j - 1])
                    if p <= c { break }
                    buffer.swapAt(j - 1, j)
                    j -= 1
                }
            }
            i += 1
        }
    }

    @inline(__always)
    static func combiningClass(_ s: Unicode.Scalar) -> UInt8 {
        s.value < 0x300 ? 0 : s.properties.canonicalCombiningClass.rawValue
    }
}
