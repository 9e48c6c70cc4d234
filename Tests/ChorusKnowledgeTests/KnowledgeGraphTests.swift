import Testing
import Foundation
@testable import ChorusKnowledge
import ChorusCore

/// The host-facing `KnowledgeGraph`: a graph that keeps growing after it was trained must stay
/// usable (evaluate, vectors, save and load) and say what its model does not cover.
@Suite struct KnowledgeGraphTests {
    func trainedGraph() throws -> KnowledgeGraph {
        let kg = KnowledgeGraph()
        var h: [String] = [], r: [String] = [], t: [String] = []
        for g in 0..<2 { for a in 0..<6 { h.append("e\(g)_\(a)"); r.append("member_of"); t.append("hub\(g)") } }
        try kg.add(heads: h, relations: r, tails: t)
        var p = KGTrainingParameters.defaults(for: .distMult)
        p.dimension = 8; p.epochs = 2; p.batchSize = 4; p.negatives = 2; p.threads = 1
        try kg.train(p)
        return kg
    }

    /// A training started from inside a training's own progress callback would lock the graph's
    /// non-recursive training lock twice on one thread (a trap: the host process gone). It is an error.
    @Test func aTrainingInsideItsOwnProgressCallbackIsRefusedNotATrap() throws {
        let kg = try trainedGraph()
        var p = KGTrainingParameters.defaults(for: .distMult)
        p.dimension = 8; p.epochs = 2; p.batchSize = 4; p.negatives = 2; p.threads = 1
        var inner: ChorusError? = nil
        try kg.train(p) { _ in
            if inner == nil {
                do throws(ChorusError) { try kg.train(p) } catch { inner = error }
            }
            return false
        }
        guard case .invalidArgument(let message)? = inner else { Issue.record("nested training gave \(String(describing: inner))"); return }
        #expect(message == "train cannot be called from inside a train's own progress callback")
        try kg.train(p)  // the gate is open again
    }

    @Test func aGraphGrownAfterTrainingSavesLoadsAndEvaluates() throws {
        let kg = try trainedGraph()
        // New entities and a new relation after training; the model covers the first ones only.
        try kg.add(heads: ["e0_0", "newcomer"], relations: ["likes", "member_of"], tails: ["e1_0", "hub0"])
        #expect(kg.counts.entities == 15)
        #expect(throws: ChorusError.self) { try kg.vector(entity: "newcomer") }
        #expect(throws: ChorusError.self) { try kg.vector(relation: "likes") }
        #expect(try kg.vector(entity: "hub0").count == 8)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-kg-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("kg.chorus").path
        try kg.save(path: path)
        let back = try KnowledgeGraph.load(path: path)
        #expect(back.counts == kg.counts)
        #expect(try back.vector(entity: "hub0") == kg.vector(entity: "hub0"))

        // A test file naming the newcomer: that triple is skipped and counted, the others ranked.
        let test = dir.appendingPathComponent("test.tsv").path
        try "e0_1\tmember_of\thub0\nnewcomer\tmember_of\thub0\ne1_1\tmember_of\thub1\n".write(toFile: test, atomically: true, encoding: .utf8)
        let (result, skipped) = try back.evaluate(tsv: test, threads: 1)
        #expect(skipped == 1)
        #expect(result.both.queries == 4)
    }

    /// Found by the graph-snapshot fuzzer (Tests/fuzz/corpus/graph-snapshot/crash-duplicates-count):
    /// a dropped-duplicates count of 2^63 or more (the last u64 of 'KGST', checksums valid) trapped
    /// converting it to Int.
    @Test func aHostileDuplicateCountIsRefused() throws {
        let kg = try trainedGraph()
        let bytes = kg.snapshotBytes()
        let ranges = try Snapshot.decode(bytes)
        for value: UInt64 in [0xffff_ffff_ffff_ffff, 0x8000_0000_0000_0000, 1 << 62] {
            var sections: [Snapshot.Section] = []
            for (tag, range) in ranges.sorted(by: { $0.value.lowerBound < $1.value.lowerBound }) {
                var payload = Array(bytes[range])
                if tag == "KGST" { for i in 0..<8 { payload[payload.count - 8 + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) } }
                sections.append(Snapshot.Section(tag: tag, payload: payload))
            }
            #expect(throws: ChorusError.self, "\(value)") { try KnowledgeGraph.load(bytes: Snapshot.encode(sections)) }
        }
        #expect(try KnowledgeGraph.load(bytes: bytes).counts == kg.counts)
    }
}
