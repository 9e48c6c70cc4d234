import ChorusCore

/// The second stage of ranking: the coordinator scores each candidate (`Candidates`) from the
/// agents' normalised scores and ranks. Two models, both fitted on a validation hold-out, never
/// set by hand:
/// - the linear blend Σ_a w_a s_a with w on the simplex (`fitLinear`: coordinate ascent on
///   validation NDCG@10), which also serves users the model has not seen, and reports each agent's
///   share w_a s_a / Σ_b w_b s_b;
/// - a small ranking network (`RankingMLP`) over all candidate features, kept only when it beats
///   the linear blend on validation users held out of both fits (`choose`).
public enum Coordinator {
    /// Min-max normalises `scores` in place to [0, 1]; a constant vector becomes all zeros.
    @inline(__always)
    public static func normalize(_ scores: UnsafeMutableBufferPointer<Float>) {
        let (lo, hi) = Kernels.minMax(UnsafeBufferPointer(scores))
        let span = hi - lo
        if !(span > 0) || !span.isFinite { scores.update(repeating: 0); return }
        let inv = 1 / span
        for i in scores.indices { scores[i] = (scores[i] - lo) * inv }
    }

    /// The linear blend's score of one candidate.
    @inline(__always)
    static func linear(_ w: [Float], _ x: UnsafePointer<Float>) -> Float {
        var s: Float = 0
        for a in 0..<w.count where w[a] != 0 { s += w[a] * x[a] }
        return s
    }

    /// Fits blend weights on `users` of `cache` by maximising mean NDCG@`k`: coordinate ascent on
    /// the simplex from uniform weights (or `start`), moving mass between pairs of agents in steps
    /// that halve from `firstStep` down to `lastStep`, keeping a move when it raises NDCG.
    /// Agents in `frozen` keep weight 0 (the query agent: validation users have no queries).
    public static func fitLinear(_ cache: ValidationCandidates, users: [Int], k: Int, threads: Int, frozen: Set<Int> = [],
                                 start: [Float]? = nil, firstStep: Float = 0.25, lastStep: Float = 1.0 / 64) -> (weights: [Float], ndcg: Double) {
        let agentCount = cache.layout.agents
        func evaluate(_ w: [Float]) -> Double {
            meanNDCG(cache, users: users, k: k, threads: threads, weights: w)
        }
        let free = agentCount - frozen.count
        var w = start ?? (0..<agentCount).map { frozen.contains($0) ? 0 : 1 / Float(max(1, free)) }
        if free <= 1 { return (w, evaluate(w)) }
        var best = evaluate(w)
        var step = firstStep
        while step >= lastStep {
            var improved = true
            while improved {
                improved = false
                for from in 0..<agentCount {
                    for to in 0..<agentCount where to != from && !frozen.contains(to) {
                        let move = min(step, w[from])
                        if move <= 0 { continue }
                        var c = w
                        c[from] -= move; c[to] += move
                        let v = evaluate(c)
                        if v > best + 1e-9 { best = v; w = c; improved = true }
                    }
                }
            }
            step /= 2
        }
        return (w, best)
    }

    /// Chooses between the linear blend and the ranking network: both are fitted on 80% of the
    /// validation users and compared on the other 20% (a deterministic spread); the winner is
    /// refitted on all of them. Returns the linear weights (always: they serve unknown users) and
    /// the network when it wins.
    /// `descriptions[s]`: scenario s's description vector (the network is conditioned on the
    /// scenario of each validation query; see `RankingMLP`).
    public static func choose(_ cache: ValidationCandidates, k: Int, threads: Int, seed: UInt64, frozen: Set<Int> = [],
                              linearStart: [Float], descriptions: [[Float]] = []) -> (weights: [Float], ranker: RankingMLP?, report: String) {
        let all = Array(0..<cache.users)
        let linearAll = fitLinear(cache, users: all, k: k, threads: threads, frozen: frozen, start: linearStart, firstStep: 1.0 / 16)
        let held = all.filter { $0 % 5 == 2 }, fit = all.filter { $0 % 5 != 2 }
        guard held.count >= 20, fit.count >= 50 else {
            return (linearAll.weights, nil, "linear blend (too few validation users to train a ranking network)")
        }
        let linearFit = fitLinear(cache, users: fit, k: k, threads: threads, frozen: frozen, start: linearStart, firstStep: 1.0 / 16)
        let linearHeld = meanNDCG(cache, users: held, k: k, threads: threads, weights: linearFit.weights)
        let scenarios = max(1, descriptions.count)
        let dimension = descriptions.first { !$0.isEmpty }?.count ?? 0
        let agents = cache.layout.agents
        func network(_ linear: [Float]) -> RankingMLP {
            RankingMLP(inputs: cache.layout.count, hidden: 16, linear: linear, seed: seed,
                       agents: agents, scenarios: scenarios, scenarioDimension: dimension)
        }
        func scorer(_ model: RankingMLP) -> @Sendable (Int, UnsafePointer<Float>) -> Float {
            let mods = (0..<scenarios).map { model.modulation(scenario: $0, description: $0 < descriptions.count ? descriptions[$0] : []) }
            return { u, x in model.score(x, modulation: mods[min(cache.scenario(u), scenarios - 1)]) }
        }

        // The network starts at the linear blend (its v on the score features, scaled so the
        // softmax is not flat) and trains while held-out NDCG improves.
        let temperature: Float = 10
        var start = [Float](repeating: 0, count: cache.layout.count)
        for a in 0..<cache.layout.agents { start[cache.layout.score(a)] = linearFit.weights[a] * temperature }
        var net = network(start)
        var bestHeld = meanNDCG(cache, users: held, k: k, threads: threads, score: scorer(net))
        var bestEpochs = 0
        var settings = RankingMLP.Training()
        net.train(cache, users: fit, settings: settings, seed: seed, descriptions: descriptions) { epoch, model in
            let v = meanNDCG(cache, users: held, k: k, threads: threads, score: scorer(model))
            if v > bestHeld + 1e-9 { bestHeld = v; bestEpochs = epoch + 1 }
            return epoch + 1 - bestEpochs >= 8 // no gain for 8 epochs: stop
        }
        let describe = "validation NDCG@\(k) on held-out validation users: linear \(formatted(linearHeld)), network \(formatted(bestHeld))"
        guard bestEpochs > 0, bestHeld > linearHeld + 1e-9 else {
            return (linearAll.weights, nil, "linear blend; " + describe)
        }
        settings.epochs = bestEpochs
        var final = network(linearAll.weights.enumerated().reduce(into: [Float](repeating: 0, count: cache.layout.count)) { v, e in
            v[cache.layout.score(e.offset)] = e.element * temperature
        })
        final.train(cache, users: all, settings: settings, seed: seed, descriptions: descriptions)
        return (linearAll.weights, final, "ranking network (\(bestEpochs) epochs); " + describe)
    }

    /// The weight w of the query agent against the personal ranking, for requests with a query:
    /// final = (1 − w) · minmax(personal) + w · s_query, with `personal(x)` the coordinator's score of a
    /// candidate whose query features are zeroed (as it was trained). Fitted on validation users
    /// whose pseudo-query is the text of one of their held-out items (that item masked, the others
    /// relevant), on a grid of 21 values. Returns the weight and its NDCG@`k`.
    public static func fitQueryWeight(_ cache: ValidationCandidates, query a: Int, k: Int,
                                      personal: @escaping @Sendable (Int, UnsafePointer<Float>) -> Float) -> (weight: Float, ndcg: Double) {
        let grid = (0...20).map { Float($0) / 20 }
        var totals = [Double](repeating: 0, count: grid.count)
        let f = cache.layout.count, sq = cache.layout.score(a), rq = cache.layout.rank(a)
        var row = [Float](repeating: 0, count: f)
        var p: [Float] = [], q: [Float] = [], blended: [Float] = []
        for u in 0..<cache.users {
            let c = cache.candidates(u)
            guard c > 0, cache.relevantCount(u) > 0 else { continue }
            p.removeAll(keepingCapacity: true); q.removeAll(keepingCapacity: true)
            for j in 0..<c {
                let x = cache.features(u, j)
                for i in 0..<f { row[i] = x[i] }
                q.append(row[sq]); row[sq] = 0; row[rq] = 0
                p.append(row.withUnsafeBufferPointer { personal(u, $0.baseAddress!) })
            }
            p.withUnsafeMutableBufferPointer { normalize($0) }
            for (g, w) in grid.enumerated() {
                blended = (0..<c).map { (1 - w) * p[$0] + w * q[$0] }
                let top = blended.withUnsafeBufferPointer { TopK.select($0, k: k) }
                totals[g] += RankingMetrics.ndcg(top, relevantCount: cache.totalRelevant(u), k: k) { cache.isRelevant(u, Int($0.index)) }
            }
        }
        let best = totals.indices.max { totals[$0] < totals[$1] || (totals[$0] == totals[$1] && $0 > $1) } ?? 10
        return (grid[best], totals[best] / Double(max(1, cache.users)))
    }

    static func formatted(_ x: Double) -> String {
        let scaled = (x * 10_000).rounded() / 10_000
        return "\(scaled)"
    }

    /// `meanNDCG` of the linear blend `w`, bit for bit the closure form with `linear(w, x)`,
    /// without a closure call per candidate: the weight searches evaluate about a hundred blends.
    public static func meanNDCG(_ cache: ValidationCandidates, users: [Int], k: Int, threads: Int, weights w: [Float]) -> Double {
        let active = w.indices.filter { w[$0] != 0 }
        let f = cache.layout.count
        return meanNDCG(cache, users: users, k: k, threads: threads) { u, c, b in
            let x = cache.features(u, 0)
            for j in 0..<c {
                var s: Float = 0
                for a in active { s += w[a] * x[j * f + a] }
                b[j] = s
            }
        }
    }

    /// Mean NDCG@`k` over `users` of `cache` when candidates are ranked by `score(features)`;
    /// relevant items that are not candidates count as misses. Parallel over users; the sum is
    /// taken in a fixed order, so the value does not depend on scheduling.
    public static func meanNDCG(_ cache: ValidationCandidates, users: [Int], k: Int, threads: Int,
                                score: @escaping @Sendable (Int, UnsafePointer<Float>) -> Float) -> Double {
        meanNDCG(cache, users: users, k: k, threads: threads) { u, c, b in
            for j in 0..<c { b[j] = score(u, cache.features(u, j)) }
        }
    }

    /// The one evaluation loop: `fill(u, c, scores)` writes user u's c candidate scores. NDCG@k
    /// depends only on the ranks of the relevant candidates (how many candidates beat each: a higher
    /// score, or an equal one in an earlier slot, as `TopK.select` breaks ties; NaN and -infinity
    /// are never selected), so no top k is selected; the discounts are summed in rank order, as
    /// `RankingMetrics.ndcg` sums them. Users with no relevant candidate score 0 whatever the
    /// scores, and are skipped.
    private static func meanNDCG(_ cache: ValidationCandidates, users: [Int], k: Int, threads: Int,
                                 fill: @escaping @Sendable (Int, Int, UnsafeMutableBufferPointer<Float>) -> Void) -> Double {
        guard !users.isEmpty else { return 0 }
        let parts = max(1, min(threads, users.count / 64 + 1))
        let sums = UnsafeSendableBox([Double](repeating: 0, count: parts))
        defer { sums.free() }
        Parallel.forEachChunk(count: users.count, threads: parts) { worker, range in
            var total = 0.0
            var buffer: [Float] = []
            var hits: [Int] = []
            for slot in range {
                let u = users[slot]
                guard cache.relevantCount(u) > 0, k > 0 else { continue }
                let c = cache.candidates(u)
                if buffer.count < c { buffer = [Float](repeating: 0, count: c) }
                hits.removeAll(keepingCapacity: true)
                buffer.withUnsafeMutableBufferPointer { b in
                    fill(u, c, b)
                    for j in 0..<c where cache.isRelevant(u, j) {
                        let s = b[j]
                        guard !s.isNaN, s != -.infinity else { continue }
                        var rank = 0
                        for i in 0..<c where b[i] > s || (b[i] == s && i < j) {
                            rank += 1
                            if rank >= k { break }
                        }
                        if rank < k { hits.append(rank) }
                    }
                }
                hits.sort()
                var dcg = 0.0
                for p in hits { dcg += RankingMetrics.discount(p) }
                total += dcg / RankingMetrics.idealDCG(relevantCount: cache.totalRelevant(u), k: k)
            }
            sums.pointer[worker] = total
        }
        return sums.pointer.reduce(0, +) / Double(users.count)
    }
}

/// Validation users' candidates with their features and which of them were held out (relevant):
/// built once per fit, so the coordinator's searches never rescore anyone.
public final class ValidationCandidates: @unchecked Sendable {
    public let layout: Candidates.Features
    public let users: Int
    private let offsets: [Int]
    private let data: UnsafeMutableBufferPointer<Float>
    private let relevantFlags: [Bool]
    private let relevantInCandidates: [Int]
    private let relevantTotal: [Int]
    private let scenarioOf: [Int]

    /// Scores every validation user with every agent that can score them (normalised, training
    /// items masked), then builds candidates exactly as serving does.
    /// - Parameters:
    ///   - requests: the request of each validation user.
    ///   - seen: training items of each validation user (masked).
    ///   - relevant: held-out items of each validation user.
    ///   - warmth: each item's warmth in the data the agents were fitted on (`Candidates.itemWarmth`).
    public init(agents: [RecommenderAgent], itemCount: Int, quota: Int, threads: Int, users: Int,
                request: @escaping @Sendable (Int, (AgentRequest) -> Void) -> Void,
                seen: @escaping @Sendable (Int) -> ArraySlice<Int32>,
                relevant: @escaping @Sendable (Int) -> [Int32],
                activity: @escaping @Sendable (Int) -> Float,
                warmth: [Float],
                scenario: (Int) -> Int = { _ in 0 }) throws(ChorusError) {
        let layout = Candidates.Features(agents: agents.count)
        self.layout = layout
        self.users = users
        let results = SendableBox(UnsafeMutableBufferPointer<Candidates.Set>.allocate(capacity: users))
        results.value.initialize(repeating: Candidates.Set())
        defer { results.value.deinitialize(); results.value.deallocate() }
        let failed = SendableBox(UnsafeMutableBufferPointer<Bool>.allocate(capacity: 1))
        failed.value[0] = false
        defer { failed.value.deallocate() }
        precondition(warmth.count == itemCount, "one warmth per item")
        // Agents whose scores are dot products with every item vector score a batch of users per
        // pass over their item vectors (`scoreBatch`, bit for bit each user's own scores): one user
        // at a time, a large catalogue's factor matrices are read from memory once per user.
        let batchable = agents.indices.filter { agents[$0].scoresInBatches }
        let batch = batchable.isEmpty ? 1 : Self.batchSize(items: itemCount, agents: batchable.count)
        Parallel.forEachChunk(count: users, threads: threads) { _, range in
            let scored = batch > 1 ? try? FloatMatrix(rows: batch * batchable.count, cols: itemCount, zeroed: false) : nil
            guard let scratch = try? FloatMatrix(rows: agents.count, cols: itemCount, zeroed: false), batch == 1 || scored != nil else {
                failed.value[0] = true
                return
            }
            let ranks = UnsafeMutablePointer<Int32>.allocate(capacity: itemCount)
            ranks.initialize(repeating: -1, count: itemCount)
            defer { ranks.deallocate() }
            var start = range.lowerBound
            while start < range.upperBound {
                let part = Array(start..<min(range.upperBound, start + batch))
                start += part.count
                Self.withRequests(part[...], request) { requests in
                    if let scored {
                        for (b, a) in batchable.enumerated() {
                            agents[a].scoreBatch(requests, into: requests.indices.map { scored.row(b * batch + $0) }, itemCount: itemCount)
                        }
                    }
                    for (j, u) in part.enumerated() {
                        let masked = seen(u)
                        _ = warmth.withUnsafeBufferPointer { w in
                            Candidates.collect(agents: agents, request: requests[j], fallback: nil, itemCount: itemCount, quota: quota,
                                               activity: activity(u), warmth: w.baseAddress!, scratch: scratch, rankScratch: ranks,
                                               score: { a, row in
                                                   if let scored, let b = batchable.firstIndex(of: a) {
                                                       row.baseAddress!.update(from: scored.row(b * batch + j), count: itemCount)
                                                   } else {
                                                       agents[a].score(requests[j], into: row)
                                                   }
                                               },
                                               mask: { row in for i in masked { row[Int(i)] = -.infinity } }, into: &results.value[u])
                        }
                    }
                }
            }
        }
        if failed.value[0] { throw .outOfMemory("cannot allocate the validation scoring buffers") }
        var offsets = [0]
        var flags: [Bool] = []
        var inCandidates: [Int] = [], total: [Int] = []
        for u in 0..<users {
            let rel = Set(relevant(u))
            let items = results.value[u].items
            offsets.append(offsets.last! + items.count)
            var hits = 0
            for i in items { let r = rel.contains(i); flags.append(r); if r { hits += 1 } }
            inCandidates.append(hits); total.append(rel.count)
        }
        let f = layout.count
        data = .allocate(capacity: max(1, offsets.last! * f))
        for u in 0..<users {
            let feats = results.value[u].features
            for (j, v) in feats.enumerated() { data[offsets[u] * f + j] = v }
        }
        self.offsets = offsets
        relevantFlags = flags; relevantInCandidates = inCandidates; relevantTotal = total
        scenarioOf = (0..<users).map(scenario)
    }

    deinit { data.deallocate() }

    /// Users per batch of the validation scoring: up to 32, as many as keep the batch's score rows
    /// (one per user and batch-scoring agent) within 16M floats (64 MiB) per worker.
    static func batchSize(items: Int, agents: Int) -> Int { max(1, min(32, (16 << 20) / max(1, items * agents))) }

    /// Calls `body` with the requests of `users`, each built by `request` (whose pointers, a
    /// profile vector say, are valid only inside its callback: hence the nesting).
    private static func withRequests(_ users: ArraySlice<Int>, _ request: @escaping (Int, (AgentRequest) -> Void) -> Void,
                                     _ body: @escaping ([AgentRequest]) -> Void, _ built: [AgentRequest] = []) {
        guard let u = users.first else { body(built); return }
        request(u) { r in withRequests(users.dropFirst(), request, body, built + [r]) }
    }

    @inline(__always) public func candidates(_ u: Int) -> Int { offsets[u + 1] - offsets[u] }
    @inline(__always) public func features(_ u: Int, _ j: Int) -> UnsafePointer<Float> {
        UnsafePointer(data.baseAddress! + (offsets[u] + j) * layout.count)
    }
    @inline(__always) public func isRelevant(_ u: Int, _ j: Int) -> Bool { relevantFlags[offsets[u] + j] }
    @inline(__always) public func relevantCount(_ u: Int) -> Int { relevantInCandidates[u] }
    @inline(__always) public func totalRelevant(_ u: Int) -> Int { relevantTotal[u] }
    /// The scenario of validation query `u` (0 = default).
    @inline(__always) public func scenario(_ u: Int) -> Int { scenarioOf[u] }
    /// Bytes held (candidate features).
    public var byteCount: Int { data.count * MemoryLayout<Float>.stride }
}

/// A small fixed-size buffer shared by workers that each write their own slot.
final class UnsafeSendableBox: @unchecked Sendable {
    let pointer: UnsafeMutableBufferPointer<Double>
    init(_ values: [Double]) {
        pointer = .allocate(capacity: values.count)
        _ = pointer.initialize(from: values)
    }
    func free() { pointer.deallocate() }
}

#if canImport(Glibc)
import Glibc
#endif
