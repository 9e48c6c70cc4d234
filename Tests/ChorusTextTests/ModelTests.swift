import Testing
#if canImport(Glibc)
import Glibc
#endif
import ChorusCore
@testable import ChorusText

/// The reference sentences (`Fixtures/minilm_reference.jsonl`: text, input_ids, and the embedding
/// sentence-transformers computed from the original weights) and the model, when its weights are installed.
enum MiniLMFixture {
    struct Line: Sendable {
        let text: String
        let inputIds: [Int32]
        let embedding: [Float]
    }

    /// CHORUS_MINILM_DIR, else the pip package's directory (`ModelDirectory.find`); nil when absent.
    static let directory: String? = ModelDirectory.find()

    static let skipMessage = "all-MiniLM-L6-v2 weights not found (set CHORUS_MINILM_DIR to a directory with config.json and model.safetensors)"

    /// Loaded once and shared by the tests (it is thread-safe).
    static let model: Result<MiniLMModel, ChorusError>? = directory.map { dir in
        Result { () throws(ChorusError) -> MiniLMModel in try MiniLMModel(directory: dir) }
    }

    static func loadModel() throws -> MiniLMModel {
        guard let model else { throw ChorusError.notFound(skipMessage) }
        return try model.get()
    }

    static var fixturePath: String {
        let file = "\(#filePath)"
        return String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures/minilm_reference.jsonl"
    }

    static func lines() throws -> [Line] {
        let bytes = try FileIO.readAll(path: fixturePath)
        var result: [Line] = []
        for (n, raw) in bytes.split(separator: UInt8(ascii: "\n")).enumerated() {
            let json = try JSONValue.parse(Array(raw), source: "minilm_reference.jsonl line \(n + 1)")
            guard let text = json["text"]?.stringValue,
                  let ids = json["input_ids"]?.arrayValue?.compactMap({ $0.intValue }),
                  let embedding = json["embedding"]?.arrayValue?.compactMap({ $0.numberValue }) else {
                throw ChorusError.format("minilm_reference.jsonl line \(n + 1): missing text, input_ids or embedding")
            }
            result.append(Line(text: text, inputIds: ids.map { Int32($0) }, embedding: embedding.map { Float($0) }))
        }
        return result
    }

    static func cosine(_ a: ArraySlice<Float>, _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for (x, y) in zip(a, b) { dot += Double(x) * Double(y); na += Double(x) * Double(x); nb += Double(y) * Double(y) }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    static func maxAbsDiff(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }
}

@Suite(.enabled(if: MiniLMFixture.directory != nil, Comment(rawValue: MiniLMFixture.skipMessage)))
struct ModelTests {
    @Test func fixtureIsComplete() throws {
        let lines = try MiniLMFixture.lines()
        #expect(lines.count == 48)
        for line in lines {
            #expect(line.embedding.count == 384)
            #expect(line.inputIds.first == 101 && line.inputIds.last == 102)
        }
    }

    @Test func matchesReferenceEmbeddings() throws {
        let model = try MiniLMFixture.loadModel()
        #expect(model.dimension == 384 && model.config == .miniLML6 && model.maxSequenceLength == 256)
        let lines = try MiniLMFixture.lines()
        let out = try model.embed(tokenIds: lines.map(\.inputIds), threads: 2)
        #expect(out.count == lines.count * 384)
        for (i, line) in lines.enumerated() {
            let row = out[i * 384 ..< (i + 1) * 384]
            let cos = MiniLMFixture.cosine(row, line.embedding)
            #expect(cos >= 0.9999, "line \(i + 1) (\"\(line.text)\"): cosine \(cos) with the reference")
            let norm = row.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(norm - 1) < 1e-5, "line \(i + 1): norm \(norm)")
        }
    }

    @Test func batchEqualsOneByOne() throws {
        let model = try MiniLMFixture.loadModel()
        let lines = try MiniLMFixture.lines()
        let batched = try model.embed(tokenIds: lines.map(\.inputIds), threads: 2)
        for (i, line) in lines.enumerated() {
            let single = try model.embed(tokenIds: [line.inputIds], threads: 1)
            let diff = MiniLMFixture.maxAbsDiff(batched[i * 384 ..< (i + 1) * 384], single[...])
            #expect(diff == 0, "line \(i + 1): batch and single embeddings differ by \(diff)")  // one summation order
        }
    }

    @Test func paddingDoesNotChangeAnEmbedding() throws {
        let model = try MiniLMFixture.loadModel()
        let lines = try MiniLMFixture.lines()
        let shortest = lines.min { $0.inputIds.count < $1.inputIds.count }!
        let longest = lines.max { $0.inputIds.count < $1.inputIds.count }!
        // The shortest line (2 tokens) alone, and in one batch with the longest (256 tokens) twice.
        let long = longest.inputIds
        #expect(long.count == 256 && shortest.inputIds.count == 2)
        let alone = try model.embed(tokenIds: [shortest.inputIds], threads: 1)
        let padded = try model.embed(tokenIds: [long, shortest.inputIds, long], threads: 2)
        #expect(MiniLMFixture.maxAbsDiff(alone[...], padded[384 ..< 768]) == 0)
        #expect(MiniLMFixture.maxAbsDiff(padded[0 ..< 384], padded[768 ..< 1152]) == 0)
    }

    @Test func threadCountDoesNotChangeResults() throws {
        let model = try MiniLMFixture.loadModel()
        let ids = try MiniLMFixture.lines().map(\.inputIds)
        let one = try model.embed(tokenIds: ids, threads: 1)
        let two = try model.embed(tokenIds: ids, threads: 2)
        let all = try model.embed(tokenIds: ids, threads: 0)
        #expect(one == two && one == all)  // bit-identical: each output is summed in one fixed order
    }

    @Test func edgeCases() throws {
        let model = try MiniLMFixture.loadModel()
        #expect(try model.embed(tokenIds: [], threads: 1).isEmpty)
        let out = try model.embed(tokenIds: [[], [101, 102], []], threads: 1)
        #expect(out.count == 3 * 384)
        #expect(out[0 ..< 384].allSatisfy { $0 == 0 } && out[768 ..< 1152].allSatisfy { $0 == 0 })
        #expect(out[384 ..< 768].contains { $0 != 0 })
        #expect(throws: ChorusError.invalidArgument("sequence 1, position 1: the token id 30522 is outside the vocabulary 0..<30522")) {
            try model.embed(tokenIds: [[101, 102], [101, 30522, 102]], threads: 1)
        }
        #expect(throws: ChorusError.invalidArgument("sequence 0, position 0: the token id -1 is outside the vocabulary 0..<30522")) {
            try model.embed(tokenIds: [[-1]], threads: 1)
        }
        #expect(throws: ChorusError.invalidArgument("sequence 0 has 513 tokens; the model takes at most 512")) {
            try model.embed(tokenIds: [Array(repeating: 1996, count: 513)], threads: 1)
        }
        #expect(throws: ChorusError.invalidArgument("threads must be in 0...1024, got -1")) {
            try model.embed(tokenIds: [[101, 102]], threads: -1)
        }
        // The longest sequence the model takes runs (position embeddings 0..<512).
        let longest = try model.embed(tokenIds: [[101] + Array(repeating: 1996, count: 510) + [102]], threads: 2)
        #expect(longest.allSatisfy { $0.isFinite })
    }

    /// A model keeps nothing pointing into its files: a weights file truncated after the load (an
    /// update in place, a full disk) changes nothing, where a mapped file would kill the process.
    @Test(.enabled(if: MiniLMFixture.directory != nil, Comment(rawValue: MiniLMFixture.skipMessage)))
    func aWeightsFileTruncatedAfterLoadingCannotHurt() throws {
        var template = Array("/tmp/chorus-minilm-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        let files = ["config.json", "model.safetensors"]
        defer { for f in files { unlink(dir + "/" + f) }; rmdir(dir) }
        for f in files { try FileIO.writeAtomically(path: dir + "/" + f, bytes: try FileIO.readAll(path: MiniLMFixture.directory! + "/" + f)) }
        let model = try MiniLMModel(directory: dir)
        let before = try model.embed(tokenIds: [[101, 7592, 2088, 102]], threads: 1)
        #expect(truncate(dir + "/model.safetensors", 0) == 0)
        #expect(try model.embed(tokenIds: [[101, 7592, 2088, 102]], threads: 1) == before)
    }

    @Test func loadErrorsNameTheProblem() throws {
        #expect(throws: ChorusError.self) { try MiniLMModel(directory: "/nonexistent-chorus-model") }
        do throws(ChorusError) {
            _ = try MiniLMModel(directory: "/nonexistent-chorus-model")
        } catch {
            #expect(error.message.contains("/nonexistent-chorus-model/config.json"))
        }
    }
}
