/// The vocabulary as an open-addressing hash table over UTF-8 bytes.
///
/// Lookups take a byte buffer and a hash computed incrementally by the caller, so the WordPiece loop
/// builds no `String` per candidate; equality is byte for byte (a `String` key would compare by
/// canonical equivalence, which the reference does not).
struct VocabularyTable: Sendable {
    /// All tokens' UTF-8, concatenated in id order; token `i` is `bytes[starts[i]..<starts[i + 1]]`.
    private let bytes: [UInt8]
    private let starts: [Int32]
    /// Ids by hash slot, -1 for empty; linear probing; at most half full.
    private let slots: [Int32]
    private let mask: UInt64

    var count: Int { starts.count - 1 }

    /// A token listed twice keeps its last id, as the reference's vocabulary loaders do.
    init(_ tokens: [String]) {
        var bytes = [UInt8]()
        var starts = [Int32]()
        starts.reserveCapacity(tokens.count + 1)
        for token in tokens {
            starts.append(Int32(bytes.count))
            bytes.append(contentsOf: token.utf8)
        }
        starts.append(Int32(bytes.count))
        var capacity = 16
        while capacity < 2 * tokens.count { capacity <<= 1 }
        var slots = [Int32](repeating: -1, count: capacity)
        let mask = UInt64(capacity - 1)
        bytes.withUnsafeBufferPointer { all in
            for id in tokens.indices {
                let token = UnsafeBufferPointer(rebasing: all[Int(starts[id])..<Int(starts[id + 1])])
                var hash = Self.seed
                for b in token { hash = Self.step(hash, b) }
                var slot = Int(Self.finish(hash) & mask)
                while true {
                    let existing = Int(slots[slot])
                    if existing < 0 || all[Int(starts[existing])..<Int(starts[existing + 1])].elementsEqual(token) {
                        slots[slot] = Int32(id)
                        break
                    }
                    slot = (slot + 1) & Int(mask)
                }
            }
        }
        self.bytes = bytes
        self.starts = starts
        self.slots = slots
        self.mask = mask
    }

    // FNV-1a, so that the hash of every prefix of a candidate comes out of one pass.
    static let seed: UInt64 = 0xcbf2_9ce4_8422_2325
    @inline(__always) static func step(_ hash: UInt64, _ byte: UInt8) -> UInt64 {
        (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }
    @inline(__always) static func finish(_ hash: UInt64) -> UInt64 { hash ^ (hash >> 29) }

    /// The id of the token spelled by `key`, whose hash (`seed` then `step` for each byte) is `hash`.
    @inline(__always)
    func id(of key: UnsafeBufferPointer<UInt8>, hash: UInt64) -> Int32? {
        slots.withUnsafeBufferPointer { slots in
            var slot = Int(Self.finish(hash) & mask)
            while true {
                let id = Int(slots[slot])
                if id < 0 { return nil }
                let start = Int(starts[id]), end = Int(starts[id + 1])
                if end - start == key.count && bytes.withUnsafeBufferPointer({
                    key.count == 0 || memcmpEqual($0.baseAddress! + start, key.baseAddress!, key.count)
                }) {
                    return Int32(id)
                }
                slot = (slot + 1) & Int(mask)
            }
        }
    }

    /// The id of `token` (exact UTF-8 spelling), or nil.
    func id(of token: String) -> Int32? {
        var token = token
        return token.withUTF8 { key in
            var hash = Self.seed
            for b in key { hash = Self.step(hash, b) }
            return id(of: key, hash: hash)
        }
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
    for i in 0..<count where a[i] != b[i] { return false }
    return true
}
