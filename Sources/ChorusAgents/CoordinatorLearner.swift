import ChorusCore
import Synchronization

/// One row of the slate log: an item served in a logged request, with its slot, the probability
/// the serving policy had of putting it there, and the reward its feedback brought.
public struct SlateLogRow: Sendable, Equatable {
    public var requestId: Int64
    public var user: Int64
    public var slot: Int32
    public var item: Int64
    /// P(item at this slot | request) under the serving policy: 1 for the fitted coordinator and
    /// LinUCB (deterministic); for the policy the softmax at slot 0 and, like Thompson's, an estimate
    /// from 64 draws of the same policy at later slots (`LearnedRanking.propensities`).
    public var propensity: Float
    /// The sum of the rewards of the feedback events that named this request and item (0: none).
    public var reward: Float
    public init(requestId: Int64, user: Int64, slot: Int32, item: Int64, propensity: Float, reward: Float) {
        self.requestId = requestId; self.user = user; self.slot = slot; self.item = item
        self.propensity = propensity; self.reward = reward
    }
}

/// What the engine learns online about ranking itself (`LearningOptions`): per context segment a
/// `SegmentModel`, the slates served under request ids that are still open to feedback, and the log
/// of closed slates the host reads. Its own lock, never held with another.
///
/// A logged request (recommend with a request id) leaves a pending slate. Feedback naming the
/// request id credits the items of the slate it names (the sum of their events' rewards). A slate
/// closes when its user gets a new logged slate, when more than `maxPending` are open (the oldest),
/// or when the host asks (`closeAll`); on closing, the learner learns from every served item (reward
/// 0 for those without feedback), each agent is credited its shares of the rewards, and the slate's
/// rows join the log. Rewards for a closed or unknown request are counted as late, not learned.
public final class CoordinatorLearner: Sendable {
    /// Open slates kept at most (the oldest closes first).
    public static let maxPending = 16_384
    /// Candidates kept with an open slate in policy mode (the policy's most likely ones and the served
    /// ones: the softmax the off-policy correction recomputes runs over them).
    static let keptCandidates = 32

    struct Pending: Sendable {
        /// The mode that served it (the host may switch modes while slates are open).
        var mode: LearningOptions.Mode
        var user: Int64
        var segment: Int
        var items: [Int64]
        /// Feature rows (`dimension` floats each): bandits keep the served items' rows; the policy
        /// also the likely candidates', `served[i]` the row of slate item i.
        var z: [Float]
        var served: [Int]
        /// The serving policy's softmax probability of each served item (policy mode).
        var logged: [Double]
        var propensities: [Float]
        var shares: [Float]
        var rewards: [Double]
    }

    struct State: Sendable {
        var options = LearningOptions().resolved
        /// The agents of the feature layout the segments were learned on; another layout resets them.
        var agents: [String] = []
        var segments: [Int: SegmentModel] = [:]
        var pending: [Int64: Pending] = [:]
        var order: [Int64] = []
        var orderHead = 0
        var openByUser: [Int64: Int64] = [:]
        var log: [SlateLogRow] = []
        var logHead = 0
        var credits: [Double] = []
        var closed: UInt64 = 0
        var late: UInt64 = 0
        /// Private learning (`PrivateLearning`): the closed slates not yet released, the accountant
        /// of the releases, and the log rows of feedback received while learning was private
        /// (boundaries: start, end, start ...; an odd count leaves the last range open), which the
        /// overlay's shared statistics do not learn from (`OnlineState.PrivateRows`).
        var batch = PrivateLearning.Batch()
        var ledger = PrivacyLedger()
        var privateRows: [Int] = []
        /// Slates learned from without privacy (any makes the learner's ε infinite).
        var plainSlates: UInt64 = 0
        var dimension: Int { 2 * agents.count + 4 }
    }

    let state = Lock(State())

    public init() {}

    public var options: LearningOptions { state.withLock { $0.options } }

    /// Never configured and nothing learned: a snapshot needs no section for it.
    var isDefault: Bool {
        state.withLock { $0.options == LearningOptions().resolved && $0.segments.isEmpty && $0.closed == 0 && $0.ledger.rounds == 0 && $0.privateRows.isEmpty }
    }

    /// Sets the mode and its knobs (learned statistics are kept: the modes share the segments).
    /// `logRows`: the interaction log's length now (where private feedback starts or ends).
    /// - Returns: the rows of feedback received while private, for the overlay.
    @discardableResult
    func configure(_ options: LearningOptions, logRows: Int = 0) throws(ChorusError) -> [Int] {
        try options.validate()
        let resolved = options.resolved
        return state.withLock { s in
            // A batch collected under the old options is released under them.
            if s.batch.slates > 0 && (resolved.isPrivate != s.options.isPrivate || resolved.mode != s.options.mode) {
                PrivateLearning.release(&s)
            }
            if resolved.isPrivate != (s.privateRows.count % 2 == 1) {
                if let last = s.privateRows.last, last == logRows { s.privateRows.removeLast() } else { s.privateRows.append(logRows) }
            }
            s.options = resolved
            if s.log.count > resolved.logCapacity {
                let total = s.log.count, head = s.logHead
                s.log = ((total - resolved.logCapacity)..<total).map { s.log[(head + $0) % total] }
                s.logHead = 0
            }
            return s.privateRows
        }
    }

    /// The log rows of feedback received while learning was private (see `State.privateRows`).
    var privateRows: [Int] { state.withLock { $0.privateRows } }

    /// What learning from feedback has spent: ε at δ over the private releases, infinite when any
    /// slate was learned from without privacy; 0 when nothing was learned.
    public struct PrivacySpent: Sendable, Equatable {
        public var epsilon: Double
        public var delta: Double
        public var releases: Int
        public var plainSlates: UInt64
    }

    public var privacySpent: PrivacySpent {
        state.withLock { s in
            PrivacySpent(epsilon: s.plainSlates > 0 ? .infinity : s.ledger.epsilon(), delta: s.ledger.rounds > 0 ? s.ledger.delta : s.options.delta,
                         releases: s.ledger.rounds, plainSlates: s.plainSlates)
        }
    }

    /// A model with these agents is now served: segments learned over another feature layout start
    /// again (the features would mean other things); open slates of another layout are dropped.
    func adopt(agents: [String]) {
        state.withLock { s in
            guard s.agents != agents else { return }
            if !s.agents.isEmpty { Log.emit(.info, "coordinator learning restarts: the model's agents changed") }
            s.agents = agents; s.segments = [:]; s.pending = [:]; s.order = []; s.orderHead = 0; s.openByUser = [:]
            s.batch = PrivateLearning.Batch()
            s.credits = [Double](repeating: 0, count: agents.count)
        }
    }

    /// The ranking a request of `segment` uses, or nil when learning is off (or the request's model
    /// has other agents than the learner follows).
    func ranking(segment: Int, agents: [String]) -> LearnedRanking? {
        state.withLock { s in
            guard s.options.mode != .off, s.agents == agents else { return nil }
            let model = s.segments[segment] ?? SegmentModel(dimension: s.dimension, prior: Double(s.options.priorStrength))
            return LearnedRanking(mode: s.options.mode, exploration: Double(s.options.exploration), model: model)
        }
    }

    /// Opens a slate served under `requestId` (closing the user's previous open slate, and the
    /// oldest when too many are open). A request id already open is replaced (closed first).
    func open(_ requestId: Int64, _ slate: Pending, agents: [String]) {
        state.withLock { s in
            guard s.options.mode != .off, s.agents == agents else { return }
            if s.pending[requestId] != nil { Self.close(&s, requestId) }
            if let previous = s.openByUser[slate.user] { Self.close(&s, previous) }
            s.pending[requestId] = slate
            s.openByUser[slate.user] = requestId
            s.order.append(requestId)
            while s.pending.count > Self.maxPending, s.orderHead < s.order.count {
                let oldest = s.order[s.orderHead]
                s.orderHead += 1
                Self.close(&s, oldest)
            }
            if s.orderHead > 4096 && s.orderHead * 2 > s.order.count { s.order.removeFirst(s.orderHead); s.orderHead = 0 }
        }
    }

    /// Feedback naming served requests: each (request, item, reward) adds to that slate item's reward.
    func credit(_ answers: [(request: Int64, item: Int64, reward: Float)]) {
        guard !answers.isEmpty else { return }
        state.withLock { s in
            for a in answers {
                guard var p = s.pending[a.request], let slot = p.items.firstIndex(of: a.item) else { s.late &+= 1; continue }
                p.rewards[slot] += Double(a.reward)
                s.pending[a.request] = p
            }
        }
    }

    /// Closes every open slate (their rewards so far are final).
    func closeAll() {
        state.withLock { s in
            for id in s.order[s.orderHead...] where s.pending[id] != nil { Self.close(&s, id) }
            s.order = []; s.orderHead = 0
        }
    }

    /// The log's oldest `limit` rows and how many it holds; `drain` removes the rows returned.
    func readLog(limit: Int, drain: Bool) -> (rows: [SlateLogRow], total: Int) {
        state.withLock { s in
            // Oldest first from the ring's head; only the rows returned are copied (a count costs nothing).
            let total = s.log.count, head = s.logHead
            let n = min(max(0, limit), total)
            let rows = (0..<n).map { s.log[(head + $0) % total] }
            if drain && n > 0 {
                s.log = (n..<total).map { s.log[(head + $0) % total] }
                s.logHead = 0
            }
            return (rows, total)
        }
    }

    /// Learning statistics for the host: per agent its credited reward, slates closed, late rewards,
    /// rewards learned from per segment.
    public struct Stats: Sendable, Equatable {
        public var mode: LearningOptions.Mode
        public var agents: [String]
        public var credits: [Double]
        public var closedSlates: UInt64
        public var openSlates: Int
        public var lateRewards: UInt64
        public var segments: Int
        public var updates: UInt64
        /// Private learning: the releases' accountant and the closed slates waiting for the next release.
        public var privacy: PrivacyLedger
        public var unreleasedSlates: Int
    }

    public var stats: Stats {
        state.withLock { s in
            Stats(mode: s.options.mode, agents: s.agents, credits: s.credits, closedSlates: s.closed, openSlates: s.pending.count,
                  lateRewards: s.late, segments: s.segments.count, updates: s.segments.values.reduce(0) { $0 &+ $1.updates },
                  privacy: s.ledger, unreleasedSlates: s.batch.slates)
        }
    }


    /// Closes one open slate: learn, credit, log.
    private static func close(_ s: inout State, _ id: Int64) {
        guard let p = s.pending.removeValue(forKey: id) else { return }
        if s.openByUser[p.user] == id { s.openByUser[p.user] = nil }
        let d = s.dimension
        var model = s.segments[p.segment] ?? SegmentModel(dimension: d, prior: Double(s.options.priorStrength))
        guard p.z.count % d == 0 else { return }
        if s.options.isPrivate {
            PrivateLearning.collect(&s.batch, p, model: model, options: s.options, agents: s.agents.count)
            if s.batch.slates >= s.options.releaseSlates { PrivateLearning.release(&s) }
            s.closed &+= 1
            appendToLog(&s, id, p)
            return
        }
        // Learnt as the mode that served it: the regression learns from any slate; the policy's
        // correction needs the probabilities and candidates its own slates keep.
        p.z.withUnsafeBufferPointer { z in
            switch p.mode {
            case .off: break
            case .linUCB, .thompson:
                for (slot, row) in p.served.enumerated() where (row + 1) * d <= p.z.count {
                    model.observe(z.baseAddress! + row * d, reward: p.rewards[slot])
                }
            case .policyGradient:
                model.reinforce(z: z.baseAddress!, count: p.z.count / d, served: p.served, logged: p.logged, rewards: p.rewards,
                                tau: Double(max(s.options.exploration, 1e-6)), rate: Double(s.options.learningRate))
            }
        }
        s.segments[p.segment] = model
        if p.mode != .off { s.plainSlates &+= 1 }
        let nA = s.agents.count
        if p.shares.count == p.items.count * nA {
            for slot in p.items.indices { for a in 0..<nA { s.credits[a] += p.rewards[slot] * Double(p.shares[slot * nA + a]) } }
        }
        s.closed &+= 1
        appendToLog(&s, id, p)
    }

    /// Appends a closed slate's rows to the log ring.
    private static func appendToLog(_ s: inout State, _ id: Int64, _ p: Pending) {
        let capacity = s.options.logCapacity
        guard capacity > 0 else { return }
        for (slot, item) in p.items.enumerated() {
            let row = SlateLogRow(requestId: id, user: p.user, slot: Int32(slot), item: item, propensity: p.propensities[slot],
                                  reward: Float(max(-Double(Float.greatestFiniteMagnitude), min(Double(Float.greatestFiniteMagnitude), p.rewards[slot]))))
            if s.log.count < capacity { s.log.append(row) } else {
                s.log[s.logHead] = row
                s.logHead = (s.logHead + 1) % capacity
            }
        }
    }
}

// MARK: - Snapshot ("LRNR" section)

extension CoordinatorLearner {
    /// What a snapshot keeps: the options, the agents, every segment's model and the credits. Open
    /// slates and the log are the host's to read before saving (`closeAll`, `readLog`): not saved.
    func encode(into w: inout ByteWriter) {
        let s = state.withLock { $0 }
        w.write(UInt32(2)) // section version
        w.write(s.options.mode.rawValue); w.write(s.options.exploration); w.write(s.options.learningRate)
        w.write(s.options.priorStrength); w.write(UInt64(s.options.logCapacity)); w.write(s.options.seed)
        w.write(UInt32(s.agents.count)); for a in s.agents { w.write(a) }
        w.writeArray(s.credits)
        let keys = s.segments.keys.sorted()
        w.write(UInt32(keys.count))
        for k in keys {
            let m = s.segments[k]!
            w.write(Int64(k)); w.write(m.updates); w.write(m.baseline)
            w.writeArray(m.inverse); w.writeArray(m.b); w.writeArray(m.policy)
            w.write(m.noiseVariance); w.write(m.noiseShift) // version 2
        }
        w.write(s.closed); w.write(s.late)
        // Version 2: private learning.
        w.write(s.options.noiseMultiplier); w.write(s.options.clipNorm); w.write(s.options.delta); w.write(UInt64(s.options.releaseSlates))
        s.ledger.encode(into: &w)
        w.writeArray(s.privateRows.map(Int64.init))
        w.write(s.plainSlates)
    }

    /// Reads what `encode` wrote, checking every count and value.
    func decode(from r: inout ByteReader) throws(ChorusError) {
        let version = try r.read(UInt32.self)
        guard version == 1 || version == 2 else { throw .unsupportedVersion("learning section version \(version) is not supported (this library reads 1 and 2)") }
        var o = LearningOptions()
        let raw = try r.read(Int32.self)
        guard let mode = LearningOptions.Mode(rawValue: raw) else { throw .format("learning mode \(raw) is unknown") }
        o.mode = mode
        o.exploration = try r.readFloat(); o.learningRate = try r.readFloat(); o.priorStrength = try r.readFloat()
        let capacity = try r.read(UInt64.self)
        guard capacity <= UInt64(LearningOptions.maxLogCapacity) else { throw .format("learning log capacity \(capacity) is implausible") }
        o.logCapacity = Int(capacity)
        o.seed = try r.read(UInt64.self)
        let agentCount = try r.read(UInt32.self)
        guard agentCount <= 64 else { throw .format("learning section names \(agentCount) agents") }
        var agents: [String] = []
        for _ in 0..<agentCount { agents.append(try r.readString(maxBytes: 256)) }
        let credits = try r.readArray(Double.self, maxCount: Int(agentCount))
        guard credits.count == agents.count else { throw .format("learning section has \(credits.count) credits for \(agents.count) agents") }
        let d = 2 * agents.count + 4
        let segmentCount = try r.read(UInt32.self)
        guard segmentCount <= 1 << 20 else { throw .format("learning section has \(segmentCount) segments") }
        var segments: [Int: SegmentModel] = [:]
        for _ in 0..<segmentCount {
            let key = try r.read(Int64.self)
            guard key >= 0, key < Int64(Int32.max) else { throw .format("learning segment key \(key) is out of range") }
            let updates = try r.read(UInt64.self)
            let baseline = try r.readDouble()
            let inverse = try r.readArray(Double.self, maxCount: d * d)
            let b = try r.readArray(Double.self, maxCount: d)
            let policy = try r.readArray(Double.self, maxCount: d)
            guard inverse.count == d * d, b.count == d, policy.count == d else {
                throw .format("learning segment \(key) has the wrong shape for \(agents.count) agents")
            }
            let noiseVariance = version >= 2 ? try r.readDouble() : 0, noiseShift = version >= 2 ? try r.readDouble() : 0
            guard baseline.isFinite, (inverse + b + policy).allSatisfy(\.isFinite) else { throw .format("learning segment \(key) holds a non-finite value") }
            guard noiseVariance.isFinite, noiseVariance >= 0, noiseShift.isFinite, noiseShift >= 0 else {
                throw .format("learning segment \(key) holds an invalid noise variance or shift")
            }
            guard segments[Int(key)] == nil else { throw .format("learning segment \(key) appears twice") }
            segments[Int(key)] = SegmentModel(dimension: d, inverse: inverse, b: b, policy: policy, baseline: baseline, updates: updates,
                                              noiseVariance: noiseVariance, noiseShift: noiseShift)
        }
        let closed = try r.read(UInt64.self), late = try r.read(UInt64.self)
        var ledger = PrivacyLedger(), privateRows: [Int] = [], plainSlates: UInt64 = 0
        if version >= 2 {
            o.noiseMultiplier = try r.readDouble(); o.clipNorm = try r.readDouble(); o.delta = try r.readDouble()
            let release = try r.read(UInt64.self)
            guard release <= UInt64(LearningOptions.maxReleaseSlates) else { throw .format("learning release size \(release) is implausible") }
            o.releaseSlates = Int(release)
            ledger = try PrivacyLedger.decode(&r)
            let rows = try r.readArray(Int64.self, maxCount: 1 << 20)
            // Boundaries of ranges of log rows: non-negative and not decreasing.
            guard rows.allSatisfy({ $0 >= 0 && $0 <= Int64(Int32.max) * 1024 }), zip(rows, rows.dropFirst()).allSatisfy({ $0 <= $1 }) else {
                throw .format("learning section's private feedback rows are not ordered boundaries")
            }
            privateRows = rows.map { Int($0) }
            plainSlates = try r.read(UInt64.self)
        } else {
            plainSlates = closed // version 1 had no private learning
        }
        try o.validate()
        let resolved = o.resolved
        state.withLock { s in
            s = State()
            s.options = resolved; s.agents = agents; s.credits = credits; s.segments = segments; s.closed = closed; s.late = late
            s.ledger = ledger; s.privateRows = privateRows; s.plainSlates = plainSlates
        }
    }
}

// MARK: - Serving's side

/// How serving files a request for the learner: its segment, its sampling stream, its open slate.
enum LearningSegment {
    /// The segment of a request: kind (0 a user the model knows, 1 one known only from feedback,
    /// 2 a cold request with a profile text or a history, 3 a cold one with nothing), + 4 with a
    /// query, + 8 · scenario.
    static func of(known: Bool, online: Bool, personal: Bool, query: Bool, scenario: Int) -> Int {
        let kind = known ? 0 : online ? 1 : personal ? 2 : 3
        return kind + (query ? 4 : 0) + 8 * min(scenario, Int(Int32.max) / 8 - 1)
    }

    private static let draws = Atomic<UInt64>(0)
    /// A fresh stream for a request without an id (its slate is not logged, only sampled).
    static func nextDraw() -> UInt64 { draws.wrappingAdd(1, ordering: .relaxed).newValue &* 0xD1B5_4A32_D192_ED03 }

    /// The open slate of the ranker's last request (its first `ids.count` ranked candidates).
    static func pending(ranker: RequestRanker, learning: LearnedRanking, user: Int64, segment: Int, ids: [Int64]) -> CoordinatorLearner.Pending {
        let d = ranker.learnedDimension, k = ids.count
        let c = d > 0 ? ranker.learnedZ.count / d : 0
        let served = Array(ranker.order.prefix(k))
        var rows: [Int] = served, logged: [Double] = []
        var propensities = [Float](repeating: 1, count: k)
        ranker.learnedZ.withUnsafeBufferPointer { z in
            guard c > 0 else { return }
            propensities = learning.propensities(z.baseAddress!, count: c, served: served, random: &ranker.random)
            if learning.mode == .policyGradient {
                let p = learning.softmax(z.baseAddress!, count: c)
                logged = served.map { p[$0] }
                let likely = p.indices.sorted { p[$0] > p[$1] }.prefix(CoordinatorLearner.keptCandidates)
                rows += likely.filter { !served.contains($0) }
            }
        }
        var kept: [Float] = []
        kept.reserveCapacity(rows.count * d)
        for r in rows where r < c { kept += ranker.learnedZ[(r * d)..<((r + 1) * d)] }
        let nA = ranker.m.agents.count
        var shares = [Float](repeating: 0, count: k * nA)
        shares.withUnsafeMutableBufferPointer { sh in for slot in 0..<k { ranker.shares(of: slot, into: sh.baseAddress! + slot * nA) } }
        return CoordinatorLearner.Pending(mode: learning.mode, user: user, segment: segment, items: ids, z: kept, served: Array(0..<k), logged: logged,
                                          propensities: propensities, shares: shares, rewards: [Double](repeating: 0, count: k))
    }
}
