import Testing
@testable import ChorusAgents
@testable import ChorusCollaborative
@testable import ChorusCore

/// The validation phase trains on the log's columns with the held-out rows excluded
/// (`TrainingData(excluding:)`), not on a copy of the other rows: every agent must train exactly
/// as on the copy.
@Suite struct TrainingDataTests {
    /// Seeded columns with repeated pairs, timestamp ties out of log order, and a mask.
    private func columns() -> (users: [Int32], items: [Int32], weights: [Float], timestamps: [Int64], excluded: [Bool]) {
        var rng = SeededRandom(seed: 11)
        var u: [Int32] = [], i: [Int32] = [], w: [Float] = [], t: [Int64] = [], x: [Bool] = []
        for _ in 0..<600 {
            u.append(Int32(rng.nextInt(below: 30)))
            i.append(Int32(rng.nextInt(below: 40)))
            w.append(1 + Float(rng.nextInt(below: 3)))
            t.append(1_000 + Int64(rng.nextInt(below: 200)) * 60)
            x.append(rng.nextFloat() < 0.25)
        }
        return (u, i, w, t, x)
    }

    private func bytes(_ agent: RecommenderAgent) -> [UInt8] {
        var w = ByteWriter()
        agent.encode(into: &w)
        return w.bytes
    }

    @Test func excludingRowsTrainsEveryAgentAsACopyOfTheOthers() throws {
        let c = columns()
        let kept = c.excluded.indices.filter { !c.excluded[$0] }
        let view = TrainingData(userCount: 31, itemCount: 41, users: c.users, items: c.items, weights: c.weights,
                                timestamps: c.timestamps, excluding: c.excluded)
        let copy = TrainingData(userCount: 31, itemCount: 41, users: kept.map { c.users[$0] }, items: kept.map { c.items[$0] },
                                weights: kept.map { c.weights[$0] }, timestamps: kept.map { c.timestamps[$0] })
        #expect(view.count == kept.count && copy.count == kept.count && kept.count < c.users.count)
        var visited: [Int] = []
        view.forEachRow { visited.append($0) }
        #expect(visited == kept)
        #expect(view.userItems.rowStart == copy.userItems.rowStart && view.userItems.colIndex == copy.userItems.colIndex
                && view.userItems.values == copy.userItems.values)
        // User 30 and item 40 have no row: zero rows and columns in both.
        var p = FitParameters()
        p.factors = 4; p.iterations = 3; p.bprEpochs = 4; p.threads = 2
        for halfLife: Int64 in [-1, 3_600] {
            let factories = AgentRegistry.factories(AgentRegistry.Inputs(parameters: p, halfLife: halfLife))
            #expect(factories.map(\.name) == ["popularity", "als", "bpr", "itemknn", "session"])
            for f in factories {
                let context = FitContext(threads: 2, seed: 5)
                #expect(bytes(try f.fit(view, context)) == bytes(try f.fit(copy, context)), "\(f.name), half-life \(halfLife)")
            }
        }
    }

    @Test func withoutAMaskEveryRowIsIn() {
        let c = columns()
        let all = TrainingData(userCount: 31, itemCount: 41, users: c.users, items: c.items, weights: c.weights, timestamps: c.timestamps)
        var visited = 0
        all.forEachRow { _ in visited += 1 }
        #expect(all.count == 600 && visited == 600 && all.excluded == nil)
        #expect(all.userItems.values.reduce(0, +) == c.weights.reduce(0, +))
    }
}
