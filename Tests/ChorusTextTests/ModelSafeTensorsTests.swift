import Testing
#if canImport(Glibc)
import Glibc
#endif
import ChorusCore
@testable import ChorusText

@Suite struct ModelSafeTensorsTests {
    /// A fresh directory for one test's files.
    func tempDir() -> String {
        var template = Array("/tmp/chorus-safetensors-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    func removeDir(_ dir: String, files: [String]) {
        for f in files { unlink(dir + "/" + f) }
        rmdir(dir)
    }

    func bytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }
    func bytes(_ values: [Int64]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    /// A safetensors file: the header length (little-endian), the header padded with spaces to a
    /// multiple of 8 (as the reference writer does), then the data.
    func file(header: String, data: [UInt8]) -> [UInt8] {
        var h = Array(header.utf8)
        while h.count % 8 != 0 { h.append(0x20) }
        var out: [UInt8] = []
        var n = UInt64(h.count)
        for _ in 0..<8 { out.append(UInt8(n & 0xff)); n >>= 8 }
        return out + h + data
    }

    /// Two F32 tensors, an I64 one and metadata: 24 + 8 + 16 bytes of data.
    var validHeader: String {
        #"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"#
            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},"ids":{"dtype":"I64","shape":[1,2],"data_offsets":[32,48]}}"#
    }
    var validData: [UInt8] { bytes([1, 2, 3, 4, 5, 6] as [Float]) + bytes([-0.5, 0.25] as [Float]) + bytes([7, 8] as [Int64]) }

    /// Writes `contents` to a temporary file, opens it, and cleans up.
    func open(_ contents: [UInt8]) throws(ChorusError) -> SafeTensors {
        let dir = tempDir()
        defer { removeDir(dir, files: ["m.safetensors"]) }
        try FileIO.writeAtomically(path: dir + "/m.safetensors", bytes: contents)
        return try SafeTensors(path: dir + "/m.safetensors")  // the mapping outlives the unlink
    }

    /// The message of the error `body` throws (empty when it does not throw).
    func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return ""
        } catch let error as ChorusError {
            return error.message
        } catch {
            return "unexpected error type: \(error)"
        }
    }

    @Test func readsTensorsByName() throws {
        let st = try open(file(header: validHeader, data: validData))
        #expect(st.tensors.count == 3 && st.metadata == ["format": "pt"])
        #expect(st.tensors["ids"] == SafeTensors.TensorInfo(name: "ids", dtype: .i64, shape: [1, 2], dataOffsets: 32..<48))
        #expect(try st.tensor(named: "w", shape: [2, 3]) == [1, 2, 3, 4, 5, 6])
        #expect(Array(try st.tensor(named: "b", shape: [2])) == [-0.5, 0.25])
        // Into the caller's memory too.
        var into = [Float](repeating: 0, count: 2)
        try into.withUnsafeMutableBufferPointer { (b) throws(ChorusError) in try st.read(named: "b", shape: [2], into: b.baseAddress!) }
        #expect(into == [-0.5, 0.25])
        // Offsets are relative to the data region, which starts after the padded header.
        #expect(st.dataStart % 8 == 0 && st.fileSize == st.dataStart + 48)
    }

    @Test func acceptsEmptyTensorsAndAnEmptyFile() throws {
        let st = try open(file(header: #"{"e":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]}}"#, data: []))
        #expect(try st.tensor(named: "e", shape: [0, 4]).count == 0)
        #expect(try open(file(header: "{}", data: [])).tensors.isEmpty)
    }

    @Test func namesMissingWrongDtypeAndWrongShape() throws {
        let st = try open(file(header: validHeader, data: validData))
        #expect(message { _ = try st.tensor(named: "nope", shape: [1]) }.hasSuffix("the tensor 'nope' is missing"))
        #expect(message { _ = try st.tensor(named: "ids", shape: [1, 2]) }.hasSuffix("the tensor 'ids' has dtype I64; F32 is expected"))
        #expect(message { _ = try st.tensor(named: "w", shape: [3, 2]) }.hasSuffix("the tensor 'w' has shape [2, 3]; [3, 2] is expected"))
    }

    @Test func refusesNonFiniteWeights() throws {
        for bad in [Float.nan, .infinity, -.infinity] {
            let data = bytes([1, 2, 3, bad, 5, 6] as [Float]) + bytes([-0.5, 0.25] as [Float]) + bytes([7, 8] as [Int64])
            let st = try open(file(header: validHeader, data: data))
            #expect(message { _ = try st.tensor(named: "w", shape: [2, 3]) }.contains("the tensor 'w' holds \(bad) at element 3; weights must be finite"))
            #expect(Array(try st.tensor(named: "b", shape: [2])) == [-0.5, 0.25])  // the other tensors still read
        }
    }

    /// The file is read, not mapped: truncating it after the open makes the next read an error
    /// (with a mapping, the next touch of a truncated page is SIGBUS), and what was read stays.
    @Test func aFileTruncatedAfterTheOpenIsAnErrorNotACrash() throws {
        let dir = tempDir()
        defer { removeDir(dir, files: ["m.safetensors"]) }
        try FileIO.writeAtomically(path: dir + "/m.safetensors", bytes: file(header: validHeader, data: validData))
        let st = try SafeTensors(path: dir + "/m.safetensors")
        let w = try st.tensor(named: "w", shape: [2, 3])
        #expect(truncate(dir + "/m.safetensors", 0) == 0)
        #expect(message { _ = try st.tensor(named: "b", shape: [2]) }.contains("changed since it was opened?"))
        #expect(w == [1, 2, 3, 4, 5, 6])
    }

    @Test func aFifoIsRefusedWithoutBlocking() throws {
        let dir = tempDir()
        defer { removeDir(dir, files: ["pipe"]) }
        #expect(mkfifo(dir + "/pipe", 0o600) == 0)
        #expect(message { _ = try SafeTensors(path: dir + "/pipe") }.contains("is not a regular file"))
    }

    @Test func rejectsTruncatedFiles() {
        let whole = file(header: validHeader, data: validData)
        // Cut inside the data: the last tensor runs past the end.
        #expect(message { _ = try open(Array(whole.dropLast(4))) }.contains("the tensor 'ids' has data_offsets [32, 48] past the end of the 44-byte data region (truncated file?)"))
        // Cut inside the header.
        #expect(message { _ = try open(Array(whole.prefix(40))) }.contains("runs past the end of the 40-byte file (truncated?)"))
        // Too short for the length prefix.
        #expect(message { _ = try open([1, 0, 0]) }.contains("3 bytes is too short for a safetensors file"))
        #expect(message { _ = try open([]) }.contains("0 bytes is too short"))
    }

    @Test func rejectsBadHeaders() {
        // Not JSON: the parser's message, with the offset inside the header.
        #expect(message { _ = try open(file(header: #"{"w": {"dtype": "F32",}}"#, data: [])) }.contains("(header): invalid JSON at byte 22: expected a string key in an object, found '}'"))
        #expect(message { _ = try open(file(header: "[1, 2]", data: [])) }.contains("the header is a JSON array, not an object"))
        // An absurd header length (e.g. a different file format).
        var absurd = file(header: "{}", data: [])
        absurd[7] = 0x7f
        #expect(message { _ = try open(absurd) }.contains("exceeds the 100000000-byte limit"))
        #expect(message { _ = try open(file(header: #"{"__metadata__":{"n":1}}"#, data: [])) }.contains("__metadata__[\"n\"] is a JSON number, not a string"))
        #expect(message { _ = try open(file(header: #"{"w":[1]}"#, data: [])) }.contains("the tensor 'w' is described by a JSON array, not an object"))
        #expect(message { _ = try open(file(header: #"{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#, data: bytes([1] as [Float]))) }.contains("the tensor 'w' has an unknown dtype \"F33\""))
        #expect(message { _ = try open(file(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: bytes([1] as [Float]))) }.contains("shape entry that is not a non-negative integer"))
        #expect(message { _ = try open(file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}"#, data: bytes([1] as [Float]))) }.contains("has no \"data_offsets\" of two integers"))
        #expect(message { _ = try open(file(header: #"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: bytes([1] as [Float]))) }.contains("has no array \"shape\""))
    }

    @Test func rejectsInconsistentOffsets() {
        let one = bytes([1] as [Float]), two = bytes([1, 2] as [Float])
        // Past the end of the data region.
        #expect(message { _ = try open(file(header: #"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: one)) }.contains("past the end of the 4-byte data region"))
        // Reversed range.
        #expect(message { _ = try open(file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: two)) }.contains("data_offsets [4, 0], which is not a valid byte range"))
        // Size does not match dtype x shape.
        #expect(message { _ = try open(file(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}}"#, data: two)) }.contains("data_offsets [0, 8] (8 bytes), but F32 x [1] takes 4 bytes"))
        #expect(message { _ = try open(file(header: #"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: two)) }.contains("too large to address"))
        // Overlap, gap, trailing bytes.
        #expect(message { _ = try open(file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: two)) }.contains("the tensors 'a' and 'b' overlap"))
        #expect(message { _ = try open(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: two)) }.contains("bytes 0..<4 of the data region belong to no tensor (before 'a')"))
        #expect(message { _ = try open(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: two)) }.contains("the tensors cover 4 bytes but the data region has 8"))
    }

    @Test func rejectsMisalignedFloats() throws {
        // The data region starts at a multiple of 8, so an F32 tensor at data offset 3 is misaligned.
        let header = #"{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"w":{"dtype":"F32","shape":[1],"data_offsets":[3,7]}}"#
        let st = try open(file(header: header, data: [1, 2, 3] + bytes([1] as [Float])))
        #expect(message { _ = try st.tensor(named: "w", shape: [1]) }.hasSuffix("the tensor 'w' starts at byte \(st.dataStart + 3) of the file, which is not 4-byte aligned"))
    }

    @Test func missingFileIsNotFound() {
        #expect(throws: ChorusError.self) { try SafeTensors(path: "/nonexistent-chorus/model.safetensors") }
        do throws(ChorusError) {
            _ = try SafeTensors(path: "/nonexistent-chorus/model.safetensors")
        } catch {
            guard case .notFound = error else { Issue.record("expected .notFound, got \(error)"); return }
        }
        #expect(message { _ = try SafeTensors(path: "/tmp") }.contains("is not a regular file"))
    }

    @Test(.enabled(if: MiniLMFixture.directory != nil, Comment(rawValue: MiniLMFixture.skipMessage)))
    func readsTheRealModelFile() throws {
        let st = try SafeTensors(path: MiniLMFixture.directory! + "/model.safetensors")
        #expect(st.tensors.count == 104 && st.metadata == ["format": "pt"])  // 101 weights + position_ids (I64) + pooler (unused)
        #expect(st.tensors["embeddings.position_ids"]?.dtype == .i64)
        let words = try st.tensor(named: "embeddings.word_embeddings.weight", shape: [30522, 384])
        #expect(words.allSatisfy { $0.isFinite })
        let config = try BertConfig(path: MiniLMFixture.directory! + "/config.json")
        #expect(config == .miniLML6)
        _ = try BertWeights(file: st, config: config)
    }
}
