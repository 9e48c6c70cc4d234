#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// A `.safetensors` file, read with `pread`: the header once at `init`, each tensor when asked
/// for, into memory the caller owns. Never mapped: a mapped file that another process truncates or
/// rewrites kills the reader with SIGBUS at its next touch, and Chorus runs inside other people's
/// processes; here a file that changed underneath is an error. Nor is the whole file held: a model
/// reads each tensor into its final place (or a small scratch it packs from), so loading costs
/// little more memory than the model keeps.
///
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

    /// The open file, read with `pread` (closed when the object goes away).
    private let fd: Int32

    /// Opens `path` and reads and validates its header.
    /// - Throws: `.notFound` when the file does not exist, `.io` when it cannot be read, `.format`
    ///   (naming the file and the problem) when it is not a valid safetensors file.
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
        // From here on, a failure must close: parse into locals, and assign the stored properties last.
        let parsed: (tensors: [String: TensorInfo], metadata: [String: String], dataStart: Int)
        let size: Int
        do throws(ChorusError) {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw .io("cannot stat '\(path)': \(String(cString: strerror(errno)))") }
            guard (st.st_mode & S_IFMT) == S_IFREG else { throw .io("'\(path)' is not a regular file") }
            size = Int(st.st_size)
            guard size >= 8 else {
                throw .format("\(path): \(size) bytes is too short for a safetensors file (it starts with an 8-byte header length)")
            }
            var length: UInt64 = 0
            try SafeTensors.readExactly(fd, into: &length, count: 8, at: 0, path: path)
            length = UInt64(littleEndian: length)
            guard length <= UInt64(SafeTensors.maxHeaderBytes) else {
                throw .format("\(path): the header length \(length) exceeds the \(SafeTensors.maxHeaderBytes)-byte limit (not a safetensors file?)")
            }
            guard Int(length) <= size - 8 else {
                throw .format("\(path): the header length \(length) runs past the end of the \(size)-byte file (truncated?)")
            }
            let header = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, Int(length)))
            defer { header.deallocate() }
            try SafeTensors.readExactly(fd, into: header, count: Int(length), at: 8, path: path)
            parsed = try SafeTensors.parseHeader(UnsafeBufferPointer(start: header, count: Int(length)), fileSize: size, path: path)
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.fileSize = size
        self.tensors = parsed.tensors
        self.metadata = parsed.metadata
        self.dataStart = parsed.dataStart
    }

    deinit { close(fd) }

    /// A float32 tensor, read from the file into a new array.
    /// - Parameters:
    ///   - name: the tensor's name in the header ("encoder.layer.0.attention.self.query.weight").
    ///   - shape: the shape the caller expects ([384, 384]).
    /// - Throws: `.format` naming the tensor when it is missing, not F32, of another shape, not
    ///   4-byte aligned in the file, or holding a NaN or infinite value (a model that would encode
    ///   every text to NaN); `.io` when the file cannot be read or has shrunk since `init`.
    public func tensor(named name: String, shape: [Int]) throws(ChorusError) -> [Float] {
        let count = try check(name, shape)
        var out = [Float](repeating: 0, count: count)
        try out.withUnsafeMutableBufferPointer { (b) throws(ChorusError) in
            if let base = b.baseAddress { try read(name, count: count, into: base) }
        }
        return out
    }

    /// Reads a float32 tensor (checked as `tensor(named:shape:)`) into `destination`, which holds
    /// the product of `shape` floats.
    public func read(named name: String, shape: [Int], into destination: UnsafeMutablePointer<Float>) throws(ChorusError) {
        try read(name, count: try check(name, shape), into: destination)
    }

    /// The checks of a read; returns the tensor's float count.
    private func check(_ name: String, _ shape: [Int]) throws(ChorusError) -> Int {
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
        return info.dataOffsets.count / MemoryLayout<Float>.stride
    }

    private func read(_ name: String, count: Int, into destination: UnsafeMutablePointer<Float>) throws(ChorusError) {
        guard count > 0, let info = tensors[name] else { return }
        try SafeTensors.readExactly(fd, into: destination, count: count * MemoryLayout<Float>.stride,
                                    at: dataStart + info.dataOffsets.lowerBound, path: path)
        let view = UnsafeBufferPointer(start: destination, count: count)
        if let bad = view.firstIndex(where: { !$0.isFinite }) {
            throw .format("\(path): the tensor '\(name)' holds \(view[bad]) at element \(bad); weights must be finite")
        }
    }

    /// `count` bytes at `offset` of the file, or an error: a short read means the file shrank
    /// since it was opened.
    static func readExactly(_ fd: Int32, into destination: UnsafeMutableRawPointer, count: Int, at offset: Int, path: String) throws(ChorusError) {
        var done = 0
        while done < count {
            let n = pread(fd, destination + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io("cannot read '\(path)': \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw .io("'\(path)' ended at byte \(offset + done), before the \(count) bytes at \(offset) (changed since it was opened?)") }
            done += n
        }
    }

    /// Validates the JSON header (the `header` bytes after the 8-byte length) of a file of
    /// `fileSize` bytes.
    static func parseHeader(_ header: UnsafeBufferPointer<UInt8>, fileSize size: Int, path: String) throws(ChorusError)
        -> (tensors: [String: TensorInfo], metadata: [String: String], dataStart: Int) {
        let headerLength = header.count
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
