#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// A `.safetensors` file read into memory the library owns. It is read, not mapped: a mapped file
/// that another process truncates or rewrites kills the reader with SIGBUS at its next touch, and
/// Chorus runs inside other people's processes. (The model copies the tensors it keeps and lets
/// this object go, so the whole file is held only while a model loads.)
///
/// Layout: an 8-byte little-endian header length N, N bytes of JSON
/// `{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}`,
/// then the data region; offsets are relative to the start of the data region. The whole file is
/// validated when opened, as the reference implementation does: every tensor's byte range lies in
/// the data region and equals its dtype's size times the product of its shape, and the ranges tile
/// the data region exactly (no overlaps, gaps or trailing bytes).
///
/// Thread safety: immutable after `init`; `tensor(named:shape:)` may be called from any thread.
public final class SafeTensors: @unchecked Sendable {
    /// The element types of the format, with their sizes in bytes.
    public enum DType: String, Sendable, CaseIterable {
        case bool = "BOOL", u8 = "U8", i8 = "I8", f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
        case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
        case i32 = "I32", u32 = "U32", f32 = "F32"
        case i64 = "I64", u64 = "U64", f64 = "F64"

        public var size: Int {
            switch self {
            case .bool, .u8, .i8, .f8e4m3, .f8e5m2: return 1
            case .i16, .u16, .f16, .bf16: return 2
            case .i32, .u32, .f32: return 4
            case .i64, .u64, .f64: return 8
            }
        }
    }

    /// One tensor's entry in the header; `dataOffsets` is relative to the data region.
    public struct TensorInfo: Equatable, Sendable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let dataOffsets: Range<Int>
    }

    /// The largest header accepted (the reference implementation's limit).
    public static let maxHeaderBytes = 100_000_000

    public let path: String
    /// Every tensor in the file, by name.
    public let tensors: [String: TensorInfo]
    /// The free-form `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// The size of the file in bytes.
    public let fileSize: Int
    /// Where the data region starts in the file (8 + header length).
    public let dataStart: Int

    /// The file's bytes (64-byte aligned, from `Allocator`).
    private let storage: UnsafeMutableRawPointer

    /// Reads `path` and validates its header.
    /// - Throws: `.notFound` when the file does not exist, `.io` when it cannot be read (or changes
    ///   size while it is read), `.outOfMemory`, `.format` (naming the file and the problem) when it
    ///   is not a valid safetensors file.
    public init(path: String) throws(ChorusError) {
        self.path = path
        // O_NONBLOCK: a FIFO under this name must not block the open; only regular files are read.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            let code = errno
            let reason = String(cString: strerror(code))
            if code == ENOENT { throw .notFound("cannot open '\(path)': \(reason)") }
            throw .io("cannot open '\(path)': \(reason)")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io("cannot stat '\(path)': \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .io("'\(path)' is not a regular file") }
        let size = Int(st.st_size)
        guard size >= 8 else {
            throw .format("\(path): \(size) bytes is too short for a safetensors file (it starts with an 8-byte header length)")
        }
        let p = try Allocator.allocate(bytes: size, zeroed: false)
        // From here on, a failure must free: parse into locals, and assign the stored properties last.
        let parsed: (tensors: [String: TensorInfo], metadata: [String: String], dataStart: Int)
        do throws(ChorusError) {
            var done = 0
            while done < size {
                let n = read(fd, p + done, size - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .io("cannot read '\(path)': \(String(cString: strerror(errno)))")
                }
                if n == 0 { throw .io("'\(path)' shrank while it was read (\(done) of \(size) bytes)") }
                done += n
            }
            parsed = try SafeTensors.parseHeader(UnsafeRawPointer(p), size: size, path: path)
        } catch {
            Allocator.deallocate(p)
            throw error
        }
        self.storage = p
        self.fileSize = size
        self.tensors = parsed.tensors
        self.metadata = parsed.metadata
        self.dataStart = parsed.dataStart
    }

    deinit { Allocator.deallocate(storage) }

    /// A float32 tensor, without copying: a view into this object's bytes, valid while it lives.
    /// - Parameters:
    ///   - name: the tensor's name in the header ("encoder.layer.0.attention.self.query.weight").
    ///   - shape: the shape the caller expects ([384, 384]).
    /// - Throws: `.format` naming the tensor when it is missing, not F32, of another shape, not
    ///   4-byte aligned in the file, or holding a NaN or infinite value (a model that would encode
    ///   every text to NaN).
    public func tensor(named name: String, shape: [Int]) throws(ChorusError) -> UnsafeBufferPointer<Float> {
        guard let info = tensors[name] else {
            throw .format("\(path): the tensor '\(name)' is missing")
        }
        guard info.dtype == .f32 else {
            throw .format("\(path): the tensor '\(name)' has dtype \(info.dtype.rawValue); F32 is expected")
        }
        guard info.shape == shape else {
            throw .format("\(path): the tensor '\(name)' has shape \(info.shape); \(shape) is expected")
        }
        let offset = dataStart + info.dataOffsets.lowerBound
        guard offset % MemoryLayout<Float>.alignment == 0 else {
            throw .format("\(path): the tensor '\(name)' starts at byte \(offset) of the file, which is not 4-byte aligned")
        }
        let count = info.dataOffsets.count / MemoryLayout<Float>.stride
        let start = UnsafeRawPointer(storage + offset).assumingMemoryBound(to: Float.self)
        let view = UnsafeBufferPointer(start: start, count: count)
        if let bad = view.firstIndex(where: { !$0.isFinite }) {
            throw .format("\(path): the tensor '\(name)' holds \(view[bad]) at element \(bad); weights must be finite")
        }
        return view
    }

    /// Reads and validates the header of a file of `size` bytes held at `base`.
    static func parseHeader(_ base: UnsafeRawPointer, size: Int, path: String) throws(ChorusError)
        -> (tensors: [String: TensorInfo], metadata: [String: String], dataStart: Int) {
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << (8 * UInt64(i)) }
        guard n <= UInt64(maxHeaderBytes) else {
            throw .format("\(path): the header length \(n) exceeds the \(maxHeaderBytes)-byte limit (not a safetensors file?)")
        }
        let headerLength = Int(n)
        guard headerLength <= size - 8 else {
            throw .format("\(path): the header length \(headerLength) runs past the end of the \(size)-byte file (truncated?)")
        }
        let header = UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self) + 8, count: headerLength)
        let json = try JSONValue.parse(header, source: "\(path) (header)", maxDepth: 8)
        guard case .object(let entries) = json else {
            throw .format("\(path): the header is a JSON \(json.typeName), not an object")
        }
        let dataStart = 8 + headerLength
        let dataLength = size - dataStart

        var metadata: [String: String] = [:]
        var tensors: [String: TensorInfo] = [:]
        for (name, entry) in entries {
            if name == "__metadata__" {
                guard case .object(let m) = entry else {
                    throw .format("\(path): __metadata__ is a JSON \(entry.typeName), not an object")
                }
                for (k, v) in m {
                    guard case .string(let s) = v else {
                        throw .format("\(path): __metadata__[\"\(k)\"] is a JSON \(v.typeName), not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            tensors[name] = try parseEntry(name: name, entry, dataLength: dataLength, path: path)
        }

        // The byte ranges must tile the data region: sorted by start, each begins where the last ended.
        let sorted = tensors.values.sorted { ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name) < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name) }
        var end = 0
        var previous = ""
        for t in sorted {
            if t.dataOffsets.lowerBound < end {
                throw .format("\(path): the tensors '\(previous)' and '\(t.name)' overlap in the data region")
            }
            if t.dataOffsets.lowerBound > end {
                throw .format("\(path): bytes \(end)..<\(t.dataOffsets.lowerBound) of the data region belong to no tensor (before '\(t.name)')")
            }
            end = t.dataOffsets.upperBound
            previous = t.name
        }
        if end != dataLength {
            throw .format("\(path): the tensors cover \(end) bytes but the data region has \(dataLength) (trailing bytes after the last tensor)")
        }
        return (tensors, metadata, dataStart)
    }

    static func parseEntry(name: String, _ entry: JSONValue, dataLength: Int, path: String) throws(ChorusError) -> TensorInfo {
        let what = "\(path): the tensor '\(name)'"
        guard case .object(let fields) = entry else {
            throw .format("\(what) is described by a JSON \(entry.typeName), not an object")
        }
        guard let dtypeName = fields["dtype"]?.stringValue else { throw .format("\(what) has no string \"dtype\"") }
        guard let dtype = DType(rawValue: dtypeName) else { throw .format("\(what) has an unknown dtype \"\(dtypeName)\"") }
        guard let shapeValues = fields["shape"]?.arrayValue else { throw .format("\(what) has no array \"shape\"") }
        var shape: [Int] = []
        var elements = 1
        for v in shapeValues {
            guard let d = v.intValue, d >= 0 else { throw .format("\(what) has a shape entry that is not a non-negative integer: \(v)") }
            shape.append(d)
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw .format("\(what) has a shape \(shape) too large to address") }
            elements = product
        }
        guard let offsets = fields["data_offsets"]?.arrayValue, offsets.count == 2,
              let begin = offsets[0].intValue, let end = offsets[1].intValue else {
            throw .format("\(what) has no \"data_offsets\" of two integers")
        }
        guard begin >= 0, begin <= end else {
            throw .format("\(what) has data_offsets [\(begin), \(end)], which is not a valid byte range")
        }
        guard end <= dataLength else {
            throw .format("\(what) has data_offsets [\(begin), \(end)] past the end of the \(dataLength)-byte data region (truncated file?)")
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, bytes == end - begin else {
            throw .format("\(what) has data_offsets [\(begin), \(end)] (\(end - begin) bytes), but \(dtypeName) x \(shape) takes \(overflow ? "more" : String(bytes)) bytes")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }
}
