import Testing
@testable import ChorusText

@Suite struct HashingEncoderTests {
    func cosine(_ v: [Float], _ a: Int, _ b: Int, _ d: Int) -> Float {
        var s: Float = 0
        for i in 0..<d { s += v[a * d + i] * v[b * d + i] }
        return s
    }

    @Test func rowsAreUnitLengthAndEmptyTextIsZero() throws {
        let e = HashingEncoder(dimension: 64)
        let v = try e.encode(["Space opera with rebels", "", "   ", "🎬🍿"], threads: 1)
        #expect(v.count == 4 * 64)
        var n: Float = 0
        for i in 0..<64 { n += v[i] * v[i] }
        #expect(abs(n - 1) < 1e-5)
        #expect(v[64..<(4 * 64)].allSatisfy { $0 == 0 })
    }

    @Test func sharedWordsAndPiecesAreCloserThanUnrelatedText() throws {
        let e = HashingEncoder()
        let d = e.dimension
        let v = try e.encode(["a galactic space opera with rebels", "rebels fight in a space opera",
                              "stainless steel frying pan", "Galactic SPACE operas!"], threads: 2)
        #expect(cosine(v, 0, 1, d) > cosine(v, 0, 2, d) + 0.2)
        #expect(cosine(v, 0, 3, d) > cosine(v, 0, 2, d) + 0.2)  // case, plural and punctuation
    }

    @Test func deterministicAndThreadCountIndependent() throws {
        let texts = (0..<100).map { "item \($0) with words \($0 % 7) and more \($0 * 3)" }
        let a = try HashingEncoder().encode(texts, threads: 1)
        let b = try HashingEncoder().encode(texts, threads: 3)
        #expect(a == b)
        #expect(HashingEncoder.words("Héllo, wörld 42x!") == ["héllo", "wörld", "42x"].map { Array($0.unicodeScalars.map(\.value)) })
    }
}
