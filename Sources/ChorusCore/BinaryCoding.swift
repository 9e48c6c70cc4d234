#if _endian(big)
#error("Chorus snapshots are little-endian; big-endian hosts are not supported")
#endif

/// Appends little-endian primitives and arrays to a byte buffer (snapshot payloads).
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func write<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }
    public mutating func write(_ v: Float) { write(v.bitPattern) }
    public mutating func write(_ v: Double) { write(v.bitPattern) }
    public mutating func write(_ s: String) {
        let u = Array(s.utf8)
        write(UInt32(u.count))
        bytes.append(contentsOf: u)
    }
    /// An array of trivial values: a UInt64 count, then the raw values.
    public mutating func writeArray<T: BitwiseCopyable>(_ a: [T]) {
        write(UInt64(a.count))
        a.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }
    public mutating func writeRaw<T: BitwiseCopyable>(_ p: UnsafeBufferPointer<T>) {
        write(UInt64(p.count))
        bytes.append(contentsOf: UnsafeRawBufferPointer(p))
    }
}

/// Reads what `ByteWriter` wrote, checking every bound: running past the end is a `.format` error
/// naming the section, never a crash.
public struct ByteReader {
    let bytes: [UInt8]
    public private(set) var offset: Int
    let end: Int
    let context: String

    public init(_ bytes: [UInt8], range: Range<Int>? = nil, context: String) {
        self.bytes = bytes
        self.offset = range?.lowerBound ?? 0
        self.end = range?.upperBound ?? bytes.count
        self.context = context
    }

    public var remaining: Int { end - offset }
    public var isAtEnd: Bool { offset == end }

    mutating func take(_ n: Int) throws(ChorusError) -> Int {
        guard n >= 0, n <= end - offset else { throw .format("\(context): truncated (needed \(n) bytes, \(end - offset) left)") }
        let o = offset
        offset += n
        return o
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws(ChorusError) -> T {
        let o = try take(MemoryLayout<T>.size)
        var v = T.zero
        withUnsafeMutableBytes(of: &v) { dst in
            bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[o..<(o + dst.count)])) }
        }
        return T(littleEndian: v)
    }
    public mutating func readFloat() throws(ChorusError) -> Float { Float(bitPattern: try read(UInt32.self)) }
    public mutating func readDouble() throws(ChorusError) -> Double { Double(bitPattern: try read(UInt64.self)) }
    /// Reads a string written by `ByteWriter.write(_: String)`: at most `maxBytes` (the `Limits`
    /// entry for what it is), and valid UTF-8 — never repaired, since a repaired name could merge
    /// with another.
    public mutating func readString(maxBytes: Int = Limits.maxTextBytes) throws(ChorusError) -> String {
        let n = Int(try read(UInt32.self))
        guard n <= maxBytes else { throw .format("\(context): a string of \(n) bytes is over the \(maxBytes)-byte limit") }
        let o = try take(n)
        guard let s = String(validating: bytes[o..<(o + n)], as: UTF8.self) else {
            throw .format("\(context): a string at byte \(o) is not valid UTF-8")
        }
        return s
    }
    /// Reads an array written by `writeArray`; `maxCount` guards against absurd lengths.
    public mutating func readArray<T: BitwiseCopyable>(_: T.Type, maxCount: Int = Int(Int32.max)) throws(ChorusError) -> [T] {
        let n64 = try read(UInt64.self)
        guard n64 <= UInt64(maxCount) else { throw .format("\(context): array of \(n64) elements is implausible") }
        let n = Int(n64)
        let o = try take(n * MemoryLayout<T>.stride)
        // Not through unsafeUninitializedCapacity when empty: with capacity 0 it writes the count (0)
        // into the shared empty-array storage, which ThreadSanitizer reports as a race with any other
        // thread reading an empty array.
        guard n > 0 else { return [] }
        return [T](unsafeUninitializedCapacity: n) { buf, count in
            bytes.withUnsafeBytes { src in
                UnsafeMutableRawBufferPointer(buf).copyMemory(from: UnsafeRawBufferPointer(rebasing: src[o..<(o + n * MemoryLayout<T>.stride)]))
            }
            count = n
        }
    }
    /// Reads a float array straight into a jemalloc-backed matrix of the expected shape.
    public mutating func readMatrix(rows: Int, cols: Int) throws(ChorusError) -> FloatMatrix {
        // The stored count is untrusted: compared as a UInt64 (any value), and the shape's product
        // and byte size checked for overflow and against the bytes left before anything is allocated.
        let stored = try read(UInt64.self)
        let (n, overflow) = rows.multipliedReportingOverflow(by: cols)
        guard rows >= 0, cols >= 0, !overflow, stored == UInt64(n) else {
            throw .format("\(context): matrix has \(stored) values, expected \(rows) x \(cols)")
        }
        guard n <= (end - offset) / 4 else { throw .format("\(context): truncated (a \(rows) x \(cols) matrix needs \(n) floats, \(end - offset) bytes left)") }
        let o = try take(n * 4)
        let m = try FloatMatrix(rows: rows, cols: cols)
        bytes.withUnsafeBytes { src in
            UnsafeMutableRawBufferPointer(start: m.base, count: n * 4).copyMemory(from: UnsafeRawBufferPointer(rebasing: src[o..<(o + n * 4)]))
        }
        return m
    }
}
