import CJemalloc

/// The engine's large numeric buffers come from jemalloc's own API (`mallocx`/`dallocx`, 64-byte
/// aligned), built into the library under a `chjem_` prefix, so they never touch the host's malloc.
public enum Allocator {
    /// MALLOCX_LG_ALIGN(6): 64-byte (cache line, AVX-512) alignment.
    static let alignFlags: Int32 = 6
    /// MALLOCX_ZERO.
    static let zeroFlag: Int32 = 0x40

    /// Allocates `bytes` 64-byte-aligned bytes, zeroed unless `zeroed` is false (scratch buffers
    /// that are overwritten anyway skip the cost).
    /// - Throws: `.outOfMemory` when jemalloc cannot serve the request.
    public static func allocate(bytes: Int, zeroed: Bool = true) throws(ChorusError) -> UnsafeMutableRawPointer {
        guard let p = chjem_mallocx(max(bytes, 64), alignFlags | (zeroed ? zeroFlag : 0)) else {
            throw .outOfMemory("cannot allocate \(bytes) bytes")
        }
        return p
    }

    public static func deallocate(_ pointer: UnsafeMutableRawPointer) {
        chjem_dallocx(pointer, alignFlags)
    }

    /// The size jemalloc holds for a buffer `allocate` returned (at least the bytes asked for).
    public static func allocationSize(_ pointer: UnsafeRawPointer) -> Int {
        chjem_sallocx(pointer, alignFlags)
    }

    /// jemalloc's statistics for this library: (allocated, resident) bytes. Refreshes the epoch first,
    /// as jemalloc's stats are cached until then.
    public static func stats() -> (allocated: UInt64, resident: UInt64) {
        var newEpoch: UInt64 = 1
        var oldEpoch: UInt64 = 0
        var len = MemoryLayout<UInt64>.size
        _ = chjem_mallctl("epoch", &oldEpoch, &len, &newEpoch, MemoryLayout<UInt64>.size)
        return (read("stats.allocated"), read("stats.resident"))
    }

    private static func read(_ name: String) -> UInt64 {
        var value: Int = 0
        var len = MemoryLayout<Int>.size
        guard chjem_mallctl(name, &value, &len, nil, 0) == 0 else { return 0 }
        return UInt64(value)
    }
}

/// A fixed-size, 64-byte-aligned, zero-initialised `Float` buffer owned by jemalloc: factor
/// matrices and score buffers. Row-major when used as a matrix (`rows` x `cols`).
public final class FloatMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let base: UnsafeMutablePointer<Float>

    public var count: Int { rows * cols }
    public var byteCount: Int { rows * cols * MemoryLayout<Float>.stride }

    /// A `rows` x `cols` matrix, zero-filled unless `zeroed` is false (then its contents are
    /// undefined until written).
    public init(rows: Int, cols: Int, zeroed: Bool = true) throws(ChorusError) {
        precondition(rows >= 0 && cols >= 0)
        self.rows = rows
        self.cols = cols
        let raw = try Allocator.allocate(bytes: rows * cols * MemoryLayout<Float>.stride, zeroed: zeroed)
        self.base = raw.bindMemory(to: Float.self, capacity: max(rows * cols, 16))
    }

    deinit { Allocator.deallocate(UnsafeMutableRawPointer(base)) }

    /// Row `r` as a pointer to its `cols` values.
    @inline(__always) public func row(_ r: Int) -> UnsafeMutablePointer<Float> { base + r * cols }

    public var buffer: UnsafeMutableBufferPointer<Float> { .init(start: base, count: count) }

    public func copy() throws(ChorusError) -> FloatMatrix {
        let m = try FloatMatrix(rows: rows, cols: cols)
        m.base.update(from: base, count: count)
        return m
    }

    public func toArray() -> [Float] { Array(buffer) }
}
