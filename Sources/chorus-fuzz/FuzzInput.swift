/// Reads the fuzzer's bytes as a stream of choices (libFuzzer's FuzzedDataProvider, reduced): each
/// read takes what it needs from the front and gives zeros once the input is used up, so every
/// input, however short, decodes to some sequence of calls.
struct FuzzInput {
    let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isEmpty: Bool { offset >= bytes.count }
    var remaining: Int { max(0, bytes.count - offset) }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A little-endian integer of `T`'s width.
    mutating func integer<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        var v = T.zero
        for i in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: byte()) << (8 * i) }
        return v
    }

    /// A number in `0..<bound` (bound > 0) from one byte: small ranges stay cheap to reach.
    mutating func below(_ bound: Int) -> Int { Int(byte()) % bound }

    /// Host ids: mostly a small pool (so that calls meet the same users and items), sometimes the
    /// extremes and arbitrary 64-bit values.
    mutating func id() -> Int64 {
        let b = byte()
        switch b {
        case 0..<200: return Int64(b % 12)
        case 200..<210: return -1
        case 210..<220: return Int64.max
        case 220..<230: return Int64.min
        case 230..<240: return -2
        default: return integer(Int64.self)
        }
    }

    /// A size from the caller: small mostly, sometimes huge (overflow paths).
    mutating func size() -> Int {
        let b = byte()
        switch b {
        case 0..<220: return Int(b % 24)
        case 220..<230: return Int.max
        case 230..<240: return Int(Int32.max) + 1
        case 240..<250: return Int.max / 2 + 1
        default: return Int(truncatingIfNeeded: integer(UInt64.self) & 0x7fff_ffff_ffff_ffff)
        }
    }

    /// A float: ordinary values mostly, sometimes NaN, infinities, zeros of both signs, huge, tiny.
    mutating func float() -> Float {
        let b = byte()
        switch b {
        case 0..<180: return Float(b % 10) / 2
        case 180..<190: return .nan
        case 190..<200: return .infinity
        case 200..<210: return -.infinity
        case 210..<220: return -0.0
        case 220..<230: return -Float(b - 219)
        case 230..<240: return .greatestFiniteMagnitude
        case 240..<245: return .leastNonzeroMagnitude
        default: return Float(bitPattern: integer(UInt32.self))
        }
    }

    /// Up to `max` raw bytes (length from one byte).
    mutating func data(max: Int) -> [UInt8] {
        let n = min(Int(byte()) % (max + 1), remaining)
        defer { offset += n }
        return Array(bytes[offset..<(offset + n)])
    }

    /// A NUL-terminated C string of up to `max` bytes (any bytes but NUL: invalid UTF-8 included).
    mutating func cString(max: Int = 24) -> [CChar] {
        data(max: max).filter { $0 != 0 }.map { CChar(bitPattern: $0) } + [0]
    }
}
