#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import ChorusAgents
@testable import ChorusCollaborative
@testable import ChorusCore

/// Sharded training: the merge of shard models (federated averaging), rounds started from the
/// merged model, the privacy accountant, clipping and noise.
@Suite struct ShardMergeTests {
    /// The clustered data of `clusteredEngine`, users split into shards by `shardOf`.
    func shards(_ count: Int, agents: [String]? = ["als", "bpr", "itemknn", "session"], factors: Int = 2,
                shardOf: (Int64) -> Int = { Int($0 - 1) / 20 }) throws -> [Engine] {
        let all = try clusteredEngine()
        let log = all.dataAndModel.data.log
        let engines = (0..<count).map { _ in Engine() }
        var batches = [[Interaction]](repeating: [], count: count)
        for r in 0..<log.count {
            let u = log.users.keys[Int(log.userIndex[r])]
            batches[shardOf(u)].append(Interaction(user: u, item: log.items.keys[Int(log.itemIndex[r])], weight: log.weights[r], timestamp: log.timestamps[r]))
        }
        var p = fastParameters()
        p.factors = factors
        p.agents = agents
        for (e, b) in zip(engines, batches) { try e.add(b); try e.fit(p) }
        return engines
    }

    func factors(_ e: Engine, _ name: String) -> FactorAgent { e.dataAndModel.model!.agents.first { $0.name == name } as! FactorAgent }

    @Test func mergedEngineHoldsTheUnionServesAndSaves() throws {
        let parts = try shards(2)
        let merged = try Engine.merge(parts)
        let stats = merged.stats()
        #expect(stats.fitted && stats.modelUsers == 40 && stats.interactions == parts.reduce(0) { $0 + $1.stats().interactions })
        #expect(merged.agentNames == parts[0].agentNames)
        #expect(abs(merged.blendWeights.reduce(0, +) - 1) < 1e-5)
        for list in try merged.recommend(users: Array(1...40), k: 5) {
            let base: Int64 = list.user % 2 == 1 ? 100 : 200
            #expect(!list.coldFallback)
            #expect(list.items.filter { $0 > base && $0 <= base + 20 }.count >= 4, "user \(list.user) got \(list.items)")
        }
        let again = try Engine.load(bytes: merged.snapshotBytes())
        #expect(try again.recommend(users: [1, 2, 39], k: 5).map(\.items) == merged.recommend(users: [1, 2, 39], k: 5).map(\.items))
        #expect(merged.privacySpent == nil)
    }

    @Test func itemFactorsAreAveragedByEachShardsUsersOfTheItem() throws {
        // Users 1-10 in shard 0, the rest in shard 1: both shards see both clusters, unevenly.
        let parts = try shards(2, agents: ["bpr"], shardOf: { $0 <= 10 ? 0 : 1 })
        let merged = try Engine.merge(parts)
        let m = merged.dataAndModel.model!
        let y = factors(merged, "bpr").itemFactors
        for id: Int64 in [101, 105, 201, 213] {
            var num = [Double](repeating: 0, count: y.cols), den = 0.0
            for e in parts {
                let sm = e.dataAndModel.model!
                guard let i = sm.items.index(of: id) else { continue }
                let n = Double((0..<sm.seen.rows).filter { sm.seen.row($0).cols.contains(i) }.count)
                let row = factors(e, "bpr").itemFactors.row(Int(i))
                for k in 0..<y.cols { num[k] += n * Double(row[k]) }
                den += n
            }
            let got = y.row(Int(m.items.index(of: id)!))
            for k in 0..<y.cols { #expect(abs(Double(got[k]) - num[k] / den) < 1e-5) }
        }
        // BPR users keep their shard's vector.
        let u = factors(parts[1], "bpr").userFactors.row(Int(parts[1].dataAndModel.model!.users.index(of: 30)!))
        let mu = factors(merged, "bpr").userFactors.row(Int(m.users.index(of: 30)!))
        for k in 0..<y.cols { #expect(u[k] == mu[k]) }
    }

    @Test func alsUsersAreSolvedAgainAgainstTheMergedItems() throws {
        let parts = try shards(2, agents: ["als"])
        let merged = try Engine.merge(parts)
        let m = merged.dataAndModel.model!
        let als = factors(merged, "als")
        let gram = try FloatMatrix(rows: als.itemFactors.cols, cols: als.itemFactors.cols)
        Kernels.gram(als.itemFactors, lambda: m.parameters.regularization, into: gram)
        for id: Int64 in [3, 24] {
            let u = Int(m.users.index(of: id)!)
            var x = [Float](repeating: 0, count: als.itemFactors.cols)
            try ImplicitALS.solveRow(items: Array(m.seen.row(u).cols), weights: Array(m.seen.row(u).values), alpha: m.parameters.alpha,
                                     y: als.itemFactors, gram: gram, x: &x, cgSteps: 16)
            for k in 0..<x.count { #expect(abs(x[k] - als.userFactors.row(u)[k]) < 1e-3 * max(1, abs(x[k]))) }
        }
    }

    /// Cold requests' blends are averaged per kind with the shards' voices (a kind only one shard
    /// has comes from it alone); none when no shard has one.
    @Test func coldBlendsAreAveragedByVoice() {
        func model(_ w: [Float], cold: [ColdRequest: [Float]]) -> CoordinatorModel {
            CoordinatorModel(weights: w, ranker: nil, queryWeight: 0.5, candidatesPerAgent: 10, report: "", coldWeights: cold)
        }
        let a = model([0.5, 0.5, 0], cold: [.history: [0, 0.2, 0.8], .profile: [1, 0, 0]])
        let b = model([0.5, 0.5, 0], cold: [.history: [0, 0.6, 0.4]])
        let merged = ShardMerge.mergeCoordinators([a, b], voices: [1, 3])
        let h = merged.coldWeights[.history]!
        for (x, y) in zip(h, [Float(0), 0.5, 0.5]) { #expect(abs(x - y) < 1e-6) }
        #expect(merged.coldWeights[.profile] == [1, 0, 0])
        #expect(ShardMerge.mergeCoordinators([b.withoutCold, b.withoutCold], voices: [1, 1]).coldWeights.isEmpty)
    }

    @Test func oneShardIsACopy() throws {
        let parts = try shards(1, shardOf: { _ in 0 })
        let merged = try Engine.merge(parts)
        #expect(try merged.recommend(users: Array(1...40), k: 5).map(\.items) == parts[0].recommend(users: Array(1...40), k: 5).map(\.items))
        #expect(merged !== parts[0])
    }

    @Test func badShardsAreRefusedNamingTheCause() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch let e as ChorusError { return e.message } catch { return "\(error)" }
        }
        #expect(message { _ = try Engine.merge([]) }.contains("at least one shard"))
        let parts = try shards(2)
        #expect(message { _ = try Engine.merge([parts[0], parts[0]]) }.contains("same engine"))
        #expect(message { _ = try Engine.merge([parts[0], Engine()]) }.contains("shards[1] is not fitted"))
        // Overlapping users: the whole data against one of its halves.
        let whole = try shards(1, shardOf: { _ in 0 })[0]
        let overlap = message { _ = try Engine.merge([parts[0], whole]) }
        #expect(overlap.contains("share user id"))
        #expect(overlap.contains("shards[0] and shards[1]"))
        let wider = try shards(2, factors: 3)
        #expect(message { _ = try Engine.merge([parts[0], wider[1]]) }.contains("factors"))
        let fewer = try shards(2, agents: ["als"])
        #expect(message { _ = try Engine.merge([parts[0], fewer[1]]) }.contains("same agents"))
        var bad = MergeParameters()
        bad.noiseMultiplier = 1
        #expect(message { _ = try Engine.merge(parts, parameters: bad) }.contains("clip_norm"))
        bad.clipNorm = .nan
        #expect(message { _ = try Engine.merge(parts, parameters: bad) }.contains("clip_norm"))
        // Texts: the merge does not carry them.
        let texts = try shards(2)
        try texts[1].setTexts(.item, ids: [101], texts: ["a film"])
        #expect(message { _ = try Engine.merge([texts[0], texts[1]]) }.contains("texts"))
    }

    @Test func aRoundStartsFromTheMergedFactorsById() throws {
        let parts = try shards(2, agents: ["als", "bpr"])
        let merged = try Engine.merge(parts)
        let start = merged.dataAndModel.model!
        let shardModel = parts[1].dataAndModel.model!
        var p = fastParameters()
        p.agents = ["als", "bpr"]
        let initial = try ShardMerge.initialAgents(from: start, users: shardModel.users, items: shardModel.items, parameters: p)
        for name in ["als", "bpr"] {
            let a = try #require(initial[name] as? FactorAgent)
            for id: Int64 in [101, 220] {
                let mine = a.itemFactors.row(Int(shardModel.items.index(of: id)!)), theirs = factors(merged, name).itemFactors.row(Int(start.items.index(of: id)!))
                for k in 0..<a.itemFactors.cols { #expect(mine[k] == theirs[k]) }
            }
        }
        // The round itself: each shard fits again from the merged engine, then merges again.
        for e in parts { try e.fit(p, startingFrom: merged) }
        let second = try Engine.merge(parts)
        #expect(second.stats().modelUsers == 40)
        p.factors = 3
        #expect(throws: ChorusError.self) { try parts[0].fit(p, startingFrom: merged) }
        #expect(throws: ChorusError.notFitted("the engine to start the fit from has no model: fit or merge it first")) {
            try parts[0].fit(fastParameters(), startingFrom: Engine())
        }
    }

    // MARK: - Privacy

    @Test func aSnapshotWithoutInteractionsServesButRefusesToFit() throws {
        let e = try clusteredEngine()
        var p = fastParameters()
        p.agents = ["als", "bpr", "itemknn", "session"]
        try e.fit(p)
        try e.feedback(users: [3], items: [205], events: [.dismiss])
        let bytes = try e.snapshotBytes(withoutInteractions: true)
        let loaded = try Engine.load(bytes: bytes)
        #expect(loaded.stats().interactions == 0 && loaded.stats().fitted && loaded.interactionsWithheld)
        #expect(loaded.feedbackCounts.allSatisfy { $0 == 0 })  // the feedback record stays out too
        let users = Array(Int64(1)...40)
        var o = RecommendOptions()
        o.deny = [205]  // the dismissal the original engine serves with, which the file does not keep
        #expect(try loaded.recommend(users: users, k: 5, options: o).map(\.items) == e.recommend(users: users, k: 5, options: o).map(\.items))
        #expect(try loaded.recommend(users: users, k: 5, options: o).map(\.scores) == e.recommend(users: users, k: 5, options: o).map(\.scores))
        do {
            try loaded.fit(p)
            Issue.record("a fit of an engine saved without its interactions must be refused")
        } catch {
            #expect(error.message.contains("without its interactions"))
        }
        // Its own saves withhold them too, even after new interactions and feedback.
        try loaded.add([Interaction(user: 1, item: 101, weight: 1, timestamp: 9_999_999)])
        let again = try Engine.load(bytes: loaded.snapshotBytes())
        #expect(again.stats().interactions == 0 && again.interactionsWithheld)
        #expect(try again.recommend(users: [1, 2], k: 5).map(\.items) == loaded.recommend(users: [1, 2], k: 5).map(\.items))
        #expect(throws: ChorusError.self) { _ = try Engine.merge([again, try shards(1, shardOf: { _ in 0 })[0]]) }
        #expect(throws: ChorusError.self) { _ = try Engine().snapshotBytes(withoutInteractions: true) }
        // The file holds no timestamp of the data (they are all above 1,000,000).
        let stamp = withUnsafeBytes(of: Int64(1_000_060).littleEndian) { Array($0) }
        #expect(!bytes.indices.dropLast(7).contains { Array(bytes[$0..<$0 + 8]) == stamp })
    }

    @Test func accountantMatchesHandComputedValues() {
        // One Gaussian mechanism, σ = 1: RDP ε(α) = α/2. At α = 2 the conversion gives
        // 1 + ln(1e5) = 12.5129...; the best order is α* = 1 + sqrt(2 ln(1e5)) = 5.7985 (grid: 5.8),
        // ε = 0.5 + 2 sqrt(0.5 ln(1e5)) = 5.29855 (the continuous optimum).
        let one = PrivacyLedger(noiseMultipliers: [1], delta: 1e-5)
        #expect(abs(one.rdp(order: 2) - 1) < 1e-12)
        #expect(abs(one.rdp(order: 2) + log(1e5) / (2 - 1) - 12.512925) < 1e-5)
        #expect(abs(one.epsilon() - 5.29855) < 1e-3)
        // Four rounds at σ = 2 compose to ρ = 4 · 1/8 = 1/2 per unit order: the same ε.
        #expect(abs(PrivacyLedger(noiseMultipliers: [2, 2, 2, 2]).epsilon() - one.epsilon()) < 1e-9)
        // σ = 10, one round, δ = 1e-5: ρ = 0.005, ε ≈ 0.005 + 2 sqrt(0.005 · 11.5129) = 0.48485.
        #expect(abs(PrivacyLedger(noiseMultipliers: [10]).epsilon() - 0.48485) < 2e-3)
        #expect(PrivacyLedger(noiseMultipliers: [1, 0]).epsilon() == .infinity)
        #expect(PrivacyLedger().epsilon() == 0)
        #expect(one.epsilon(delta: 1e-3) < one.epsilon())
    }

    @Test func aLedgerThatLiesIsRefused() throws {
        func bytes(version: UInt32 = 1, delta: Double = 1e-5, sigmas: [Double] = [1, 2], count: UInt64? = nil) -> [UInt8] {
            var w = ByteWriter()
            w.write(version); w.write(delta)
            if let count { w.write(count); for s in sigmas { w.write(s) } } else { w.writeArray(sigmas) }
            return w.bytes
        }
        func decode(_ b: [UInt8]) throws -> PrivacyLedger {
            var r = ByteReader(b, range: 0..<b.count, context: "PRIV")
            return try PrivacyLedger.decode(&r)
        }
        #expect(try decode(bytes()) == PrivacyLedger(noiseMultipliers: [1, 2], delta: 1e-5))
        #expect(throws: ChorusError.self) { try decode(bytes(version: 3)) }
        #expect(throws: ChorusError.self) { try decode(bytes(delta: .nan)) }
        #expect(throws: ChorusError.self) { try decode(bytes(delta: 0)) }
        #expect(throws: ChorusError.self) { try decode(bytes(sigmas: [1, -1])) }
        #expect(throws: ChorusError.self) { try decode(bytes(sigmas: [.infinity])) }
        #expect(throws: ChorusError.self) { try decode(bytes(count: 1 << 40)) }  // a count past the bytes left
        #expect(throws: ChorusError.self) { try decode(Array(bytes().dropLast())) }
    }

    @Test func clippingBoundsEachUsersContribution() throws {
        // Three users; item factors with large rows. Each user's contribution must have norm ≤ C,
        // and removing a user moves the sums by at most C.
        let y = try FloatMatrix(rows: 4, cols: 3)
        for i in 0..<12 { y.base[i] = Float(i + 1) }
        let seen = SparseMatrix(rows: 3, cols: 4, rowIndex: [0, 0, 1, 2, 2, 2], colIndex: [0, 1, 2, 1, 2, 3], values: [1, 1, 1, 1, 1, 1])
        let clip = 0.5
        func sums(_ s: SparseMatrix) -> ([Double], [Double]) {
            var sums = [Double](repeating: 0, count: 12), w = [Double](repeating: 0, count: 4)
            ShardMerge.accumulate(itemFactors: y, seen: s, itemMap: [0, 1, 2, 3], clip: clip, sums: &sums, weights: &w)
            return (sums, w)
        }
        for u in 0..<3 {
            let alone = SparseMatrix(rows: 3, cols: 4, rowIndex: Array(repeating: 0, count: seen.row(u).cols.count),
                                     colIndex: Array(seen.row(u).cols), values: Array(seen.row(u).values))
            let norm = sums(alone).0.reduce(0) { $0 + $1 * $1 }.squareRoot()
            #expect(abs(norm - clip) < 1e-9, "user \(u): norm \(norm)")  // every row here is longer than C: clipped to exactly C
        }
        let all = sums(seen).0
        let without = sums(SparseMatrix(rows: 3, cols: 4, rowIndex: [0, 0, 2, 2, 2], colIndex: [0, 1, 1, 2, 3], values: [1, 1, 1, 1, 1])).0
        #expect(zip(all, without).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() <= clip + 1e-9)
    }

    @Test func jamesSteinShrinksNoiseToZeroAndKeepsSignal() {
        #expect(ShardMerge.jamesSteinFactor([3, 4, 0, 0][...], noise: 0) == 1)
        // f = 4: 1 − 2 · 1 / 25 = 0.92; a sum whose energy is under twice the noise's (8) is zeroed.
        #expect(abs(ShardMerge.jamesSteinFactor([3, 4, 0, 0][...], noise: 1) - 0.92) < 1e-12)
        #expect(ShardMerge.jamesSteinFactor([2, 2, 0, 0][...], noise: 1) == 0)
        #expect(ShardMerge.jamesSteinFactor([2, 2, 0.1, 0][...], noise: 1) > 0)
    }

    @Test func noiseHasTheAskedScale() {
        var rng = SeededRandom(seed: 7)
        var v = [Double](repeating: 3, count: 20_000)
        PrivateRelease.addNoise(&v, std: 0.8, rng: &rng)
        let mean = v.reduce(0, +) / Double(v.count)
        let sd = (v.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(v.count - 1)).squareRoot()
        // Standard errors: mean 0.8/sqrt(20000) = 0.0057, sd 0.8/sqrt(40000) = 0.004.
        #expect(abs(mean - 3) < 0.03)
        #expect(abs(sd - 0.8) < 0.02)
    }

    @Test func privateMergeAddsNoiseOfScaleSigmaCAndReportsEpsilon() throws {
        let parts = try shards(2, agents: ["bpr"])
        var mp = MergeParameters()
        mp.clipNorm = 0.5
        let clipped = try Engine.merge(parts, parameters: mp)
        // Noise small enough that most items keep their signal (the others are zeroed, and skipped).
        let sigma = 0.02, noiseSD = sigma * 0.5
        mp.noiseMultiplier = sigma
        let noisy = try Engine.merge(parts, parameters: mp)
        // Same clipping: the noisy item i is g · (S_i + z_i) / max(1, w_i), S_i the clipped sum (the
        // noiseless merge's row times max(1, w_i)), g the James–Stein factor 1 − c/‖S_i + z_i‖²,
        // c = (f − 2)σ²C². With m = ‖row · max(1, w_i)‖ = ‖S_i + z_i‖ − c/‖S_i + z_i‖, the norm is
        // x = (m + sqrt(m² + 4c)) / 2: z_i is recovered and must be N(0, σ²C²).
        let m = noisy.dataAndModel.model!
        let a = factors(clipped, "bpr").itemFactors, b = factors(noisy, "bpr").itemFactors
        var w = [Double](repeating: 0, count: m.items.count), s = [Double](repeating: 0, count: m.items.count * a.cols)
        for e in parts {
            let sm = e.dataAndModel.model!
            ShardMerge.accumulate(itemFactors: factors(e, "bpr").itemFactors, seen: sm.seen, itemMap: sm.items.keys.map { m.items.index(of: $0)! },
                                  clip: 0.5, sums: &s, weights: &w)
        }
        var z: [Double] = []
        let c = Double(a.cols - 2) * noiseSD * noiseSD  // zeroed items (energy under 2f σ²C²) are skipped below
        for i in 0..<m.items.count where w[i] > 0 {
            let d = max(1, w[i])
            let mm = (0..<a.cols).reduce(0.0) { $0 + pow(Double(b.row(i)[$1]) * d, 2) }.squareRoot()
            guard mm > 0 else { continue }  // shrunk to 0: the noise is not recoverable
            let x = (mm + (mm * mm + 4 * c).squareRoot()) / 2
            for k in 0..<a.cols { z.append(Double(b.row(i)[k]) * d * x / mm - Double(a.row(i)[k]) * d) }
        }
        let sd = (z.reduce(0) { $0 + $1 * $1 } / Double(z.count)).squareRoot()
        #expect(z.count >= 1000)
        #expect(abs(sd / noiseSD - 1) < 0.1, "noise sd \(sd), expected σC = \(noiseSD)")  // thousands of draws: sd's standard error < 0.02
        let spent = try #require(noisy.privacySpent)
        #expect(spent.rounds == 1 && spent.delta == 1e-5)
        #expect(abs(spent.epsilon - PrivacyLedger(noiseMultipliers: [sigma]).epsilon()) < 1e-12)
        // The ledger survives a save, a round started from it, and the next merge composes.
        let loaded = try Engine.load(bytes: noisy.snapshotBytes())
        #expect(loaded.privacySpent?.rounds == 1)
        var p = fastParameters()
        p.agents = ["bpr"]
        for e in parts { try e.fit(p, startingFrom: loaded) }
        #expect(parts[0].privacySpent?.rounds == 1)
        let second = try Engine.merge(parts, parameters: mp)
        #expect(second.privacySpent?.rounds == 2)
        #expect(abs(second.privacySpent!.epsilon - PrivacyLedger(noiseMultipliers: [sigma, sigma]).epsilon()) < 1e-12)
        // A later merge without noise makes the guarantee void, and says so.
        #expect(try Engine.merge(parts).privacySpent?.epsilon == .infinity)
    }
}

private extension CoordinatorModel {
    var withoutCold: CoordinatorModel {
        CoordinatorModel(weights: weights, ranker: ranker, queryWeight: queryWeight, candidatesPerAgent: candidatesPerAgent, report: report)
    }
}
