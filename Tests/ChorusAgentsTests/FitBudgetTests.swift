import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import ChorusAgents
@testable import ChorusCollaborative
@testable import ChorusCore

/// What the host chooses for a fit (which agents, BPR's epochs) and what the validation hold-out
/// chooses when the host leaves it (BPR's epochs by early stopping).
@Suite struct FitBudgetTests {
    @Test func aFitTrainsTheAgentsAskedForAndPopularityAlways() throws {
        let e = try clusteredEngine()
        var p = fastParameters()
        p.agents = ["session", "als"]
        p.bprEpochs = 3
        try e.fit(p)
        #expect(try e.serving().model.agents.map(\.name) == ["popularity", "als", "session"])  // blend order
        p.agents = ["popularity"]
        try e.fit(p)
        #expect(try e.serving().model.agents.map(\.name) == ["popularity"])
    }

    @Test func badAgentChoicesAreClearErrors() throws {
        let e = try clusteredEngine()
        func message(_ agents: [String]?, bprEpochs: Int = 0) -> String {
            var p = fastParameters()
            p.agents = agents
            p.bprEpochs = bprEpochs
            do throws(ChorusError) { try e.fit(p); return "" } catch { return error.message }
        }
        #expect(message(["nope"]).hasPrefix("unknown agent 'nope' in agents; known: popularity, als, bpr"))
        #expect(message(["query"]).contains("query is derived from content: name content"))
        #expect(message(["als", "als"]).hasPrefix("agents names an agent twice"))
        #expect(message([]).hasPrefix("agents is empty"))
        #expect(message(["content"]) == "fit cannot train the agents asked for: the content agent needs item texts (set_item_texts)")
        #expect(message(["kg"]).contains("needs item facts"))
        #expect(message(["bpr"], bprEpochs: -1).hasPrefix("bpr_epochs must be in 0...100000"))
        #expect(!e.stats().fitted)
    }

    /// Mean NDCG@10 by hand: user 0 ranks item 1 first (relevant: 1 / log2(2) = 1, ideal 1), user 1
    /// has item 0 masked (seen) and ranks item 2 first, its relevant item 1 second
    /// (1 / log2(3) = 0.6309), so the mean is (1 + 0.6309) / 2.
    @Test func theProbeScoresFactorsByValidationNDCG() throws {
        let users = try FloatMatrix(rows: 2, cols: 2), items = try FloatMatrix(rows: 3, cols: 2)
        users.row(0).update(from: [1, 0], count: 2); users.row(1).update(from: [0, 1], count: 2)
        items.row(0).update(from: [0.5, 3], count: 2); items.row(1).update(from: [2, 1], count: 2); items.row(2).update(from: [0, 2], count: 2)
        let probe = ValidationProbe(users: [0, 1], seen: { $0 == 1 ? [0] : [] }, relevant: { _ in [1] }, threads: 2)
        let expected = (1 + 1 / log2(3.0)) / 2
        #expect(abs(probe.check(userFactors: users, itemFactors: items).ndcg - expected) < 1e-12)
        // Two users: the sample standard deviation is |a - b| / sqrt(2), its standard error |a - b| / 2.
        let check = probe.check(userFactors: users, itemFactors: items)
        #expect(abs(check.ndcg - expected) < 1e-12 && abs(check.standardError - (1 - 1 / log2(3.0)) / 2) < 1e-12)
        #expect(probe.budget("bpr") == nil)
        probe.record("bpr", budget: 35)
        #expect(probe.budget("bpr") == 35)
    }

    /// The stopping rule on written-out curves: a plateau within a standard error of its best keeps
    /// training and keeps the latest check; a falling curve stops `patience` epochs after its best;
    /// nothing stops before the minimum.
    @Test func plateauStoppingKeepsTheLatestCheckAsGoodAsTheBest() {
        func run(_ curve: [Double], se: Double = 0.01) -> (kept: Int, stoppedAt: Int?) {
            var s = PlateauStopping(minimumEpochs: 25, patience: 20)
            for (i, ndcg) in curve.enumerated() {
                let epoch = 5 * (i + 1)
                if s.check(epoch: epoch, ndcg: ndcg, standardError: se).stop { return (s.kept, epoch) }
            }
            return (s.kept, nil)
        }
        // Rises to 0.070 at epoch 25, then wanders within 0.01 of it: never stops, keeps epoch 50.
        let wander = [0.05, 0.055, 0.06, 0.065, 0.07, 0.066, 0.0685, 0.062, 0.0605, 0.068]
        #expect(run(wander) == (50, nil))
        // The same wander with a standard error of 0.001: epoch 25 stays the latest as good, so it stops at 45.
        #expect(run(wander, se: 0.001) == (25, 45))
        // Best at epoch 5, then falls well below it: stops at the minimum-epochs check after patience.
        #expect(run([0.072, 0.057, 0.055, 0.052, 0.051, 0.05, 0.04]) == (5, 25))
        // A later, better best raises the floor: the checks after it (0.07-0.075) are not as good; it stops 20 epochs on.
        #expect(run([0.05, 0.06, 0.06, 0.09, 0.07, 0.075, 0.07, 0.07, 0.07]) == (20, 40))
    }

    /// With a probe, BPR stops by validation NDCG and records a budget on the check grid; the
    /// final fit then runs that many epochs (no probe, no early stopping).
    @Test func bprChoosesItsEpochsOnValidation() throws {
        let e = try clusteredEngine()
        var p = fastParameters()
        p.agents = ["bpr"]
        try e.fit(p)
        let data = TrainingData(userCount: 4, itemCount: 130, users: (0..<260).map { Int32($0 % 4) },
                                items: (0..<260).map { Int32($0 % 130) }, weights: [Float](repeating: 1, count: 260),
                                timestamps: [Int64](repeating: 0, count: 260))
        let probe = ValidationProbe(users: [0, 1, 2, 3], seen: { u in data.userItems.row(Int(u)).cols }, relevant: { _ in [0] }, threads: 1)
        var b = BPRParameters()
        b.factors = 4
        _ = try BPRAgent.Factory(parameters: b, earlyStopping: true).fit(data, FitContext(threads: 2, seed: 1, validation: probe))
        let chosen = try #require(probe.budget("bpr"))
        #expect(chosen % FitParameters.bprCheckEvery == 0 && chosen >= FitParameters.bprCheckEvery && chosen <= FitParameters.maxAutoBPREpochs)
    }

    /// A final BPR fit offered its validation twin continues from its factors for a quarter of the
    /// epochs: bit for bit BPR.fit(initial:) at that budget, trained in place in the twin's
    /// matrices (the twin is dropped after: no second set of factors); a twin of another shape is
    /// ignored.
    @Test func finalBPRContinuesFromTheValidationFit() throws {
        let data = TrainingData(userCount: 8, itemCount: 130, users: (0..<520).map { Int32($0 % 8) },
                                items: (0..<520).map { Int32(($0 * 7) % 130) }, weights: [Float](repeating: 1, count: 520),
                                timestamps: [Int64](repeating: 0, count: 520))
        var b = BPRParameters()
        b.factors = 4
        b.iterations = 12
        let factory = BPRAgent.Factory(parameters: b)
        let twin = try #require(try factory.fit(data, FitContext(threads: 2, seed: 3)) as? FactorAgent)
        let start = BPR.Factors(users: try twin.userFactors.copy(), items: try twin.itemFactors.copy())
        let final = try #require(try factory.fit(data, FitContext(threads: 2, seed: 3, warmStart: twin)) as? FactorAgent)
        #expect(final.userFactors === twin.userFactors && final.itemFactors === twin.itemFactors)
        var q = b
        q.iterations = 3
        q.threads = 2
        q.seed = 3
        let expected = try BPR.fit(userItems: data.userItems, parameters: q, initial: start)
        #expect(expected.users !== start.users, "without inPlace the start is copied")
        FactorAgent.zeroUnseenItems(expected.items, data)
        #expect(Array(UnsafeBufferPointer(start: final.userFactors.base, count: final.userFactors.count))
                == Array(UnsafeBufferPointer(start: expected.users.base, count: expected.users.count)))
        #expect(Array(UnsafeBufferPointer(start: final.itemFactors.base, count: final.itemFactors.count))
                == Array(UnsafeBufferPointer(start: expected.items.base, count: expected.items.count)))
        // A twin fitted on fewer users is not a start: the fit runs all 12 epochs from its own start.
        let small = TrainingData(userCount: 4, itemCount: 130, users: data.users.filter { $0 < 4 }, items: zip(data.users, data.items).filter { $0.0 < 4 }.map(\.1),
                                 weights: [Float](repeating: 1, count: 260), timestamps: [Int64](repeating: 0, count: 260))
        let other = try #require(try factory.fit(small, FitContext(threads: 2, seed: 3)) as? FactorAgent)
        let cold = try #require(try factory.fit(data, FitContext(threads: 2, seed: 3, warmStart: other)) as? FactorAgent)
        #expect(Array(UnsafeBufferPointer(start: cold.userFactors.base, count: cold.userFactors.count))
                == Array(UnsafeBufferPointer(start: start.users.base, count: start.users.count)))
    }

    /// A final ALS fit offered its validation twin runs `warmIterations` sweeps from its factors,
    /// in place (the twin is dropped after): bit for bit ImplicitALS.fit from a copy of them.
    @Test func finalALSContinuesFromTheValidationFitInPlace() throws {
        let data = TrainingData(userCount: 9, itemCount: 40, users: (0..<300).map { Int32($0 % 9) },
                                items: (0..<300).map { Int32(($0 * 11) % 40) }, weights: [Float](repeating: 1, count: 300),
                                timestamps: [Int64](repeating: 0, count: 300))
        var a = ALSParameters()
        a.factors = 6
        a.iterations = 15
        let factory = ALSAgent.Factory(parameters: a)
        let twin = try #require(try factory.fit(data, FitContext(threads: 2, seed: 5)) as? FactorAgent)
        let start = ImplicitALS.Factors(users: try twin.userFactors.copy(), items: try twin.itemFactors.copy())
        let final = try #require(try factory.fit(data, FitContext(threads: 2, seed: 5, warmStart: twin)) as? FactorAgent)
        #expect(final.userFactors === twin.userFactors && final.itemFactors === twin.itemFactors)
        var q = a
        q.iterations = ALSAgent.Factory.warmIterations
        q.threads = 2
        q.seed = 5
        let expected = try ImplicitALS.fit(userItems: data.userItems, parameters: q, initial: start)
        #expect(expected.users !== start.users)
        FactorAgent.zeroUnseenItems(expected.items, data)
        #expect(final.userFactors.toArray() == expected.users.toArray() && final.itemFactors.toArray() == expected.items.toArray())
        #expect(final.userFactors.toArray() != start.users.toArray(), "the sweeps changed the factors")
    }
}
