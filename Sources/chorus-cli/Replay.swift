#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusAgents
import ChorusEval
import ArgumentParser

/// The replay's serving policies. Each is one engine run over the same stream (`Replay.run`);
/// `ReplayMode.plan` is the one place that says how a mode serves and learns.
enum ReplayMode: String, CaseIterable {
    /// Fitted once; no feedback fed: the model's serving alone.
    case frozen
    /// Feedback fed event by event: fold-in, online popularity, session and item-kNN.
    case online
    /// Feedback fed, and a full fit every `--refit-every` share of the stream (quality ceiling and its cost).
    case refit
    /// The popularity agent alone, with feedback fed (its online counts).
    case popularity
    /// A uniform random slate from the catalogue known so far (seeded); no engine.
    case random
    /// Online, with the learning coordinator (`Engine.setLearning`) as LinUCB, linear Thompson
    /// sampling or the REINFORCE policy: every served slate is logged under the event's position,
    /// and a positive rating (>= --min-rating) answering it rewards the slate.
    case linucb, thompson, policy

    /// How a mode serves and learns, set up once on its engine after the fit.
    struct Plan {
        var usesEngine = true
        var feeds = true
        var refits = false
        var options = RecommendOptions()
        /// Pass a request id per recommend and the same id with its feedback (the learning modes).
        var requestIds = false
    }

    /// `learning`: the learning modes' knobs (its mode is this mode's; 0 = the library's defaults).
    func plan(engine: Engine?, learning: LearningOptions = LearningOptions(), seed: UInt64 = 42) throws(ChorusError) -> Plan {
        var p = Plan()
        switch self {
        case .frozen: p.feeds = false
        case .online: break
        case .refit: p.refits = true
        case .popularity: p.options.agent = "popularity"
        case .random: p.usesEngine = false; p.feeds = false
        case .linucb, .thompson, .policy:
            var o = learning
            o.mode = self == .linucb ? .linUCB : self == .thompson ? .thompson : .policyGradient
            o.seed = seed
            o.logCapacity = 1
            try engine?.setLearning(o)
            p.requestIds = true
        }
        return p
    }

    static let list: @Sendable (String) throws -> [ReplayMode] = { text in
        var out: [ReplayMode] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let m = ReplayMode(rawValue: String(part.trimmingSpaces)) else {
                throw ValidationError("'\(part)' is not a mode; modes are " + ReplayMode.allCases.map(\.rawValue).joined(separator: ", "))
            }
            if !out.contains(m) { out.append(m) }
        }
        return out
    }
}

/// The stream and its targets, shared by every mode.
struct ReplayStream {
    /// All ratings sorted by time (ties: file order); the first `trainCount` are the fit's.
    let events: [Interaction]
    let trainCount: Int
    /// Streamed events replayed (after --limit).
    let count: Int
    /// Per streamed position: the item of the user's next positive event at or after it, or nil.
    let target: [Int64?]
    /// Per streamed position: whether that target is an item the fitted part never saw (a new item).
    let targetIsNew: [Bool]
    let windows: [Range<Int>]

    init(_ interactions: [Interaction], trainFraction: Double, limit: Int?, minRating: Float, windows: Int) throws(ChorusError) {
        let order = interactions.indices.sorted { (interactions[$0].timestamp, $0) < (interactions[$1].timestamp, $1) }
        events = order.map { interactions[$0] }
        trainCount = Int(Double(events.count) * trainFraction)
        let streamed = events.count - trainCount
        guard trainCount >= 2, streamed >= 1 else {
            throw .invalidArgument("\(events.count) ratings are too few to split at --train-fraction \(trainFraction): "
                                   + "\(trainCount) to fit on, \(streamed) to stream")
        }
        count = min(streamed, limit ?? streamed)
        var next = [Int64?](repeating: nil, count: count)
        var latest: [Int64: Int64] = [:]
        for p in stride(from: count - 1, through: 0, by: -1) {
            let e = events[trainCount + p]
            if e.weight >= minRating { latest[e.user] = e.item }
            next[p] = latest[e.user]
        }
        target = next
        let fitted = Set(events[0..<trainCount].map(\.item))
        targetIsNew = next.map { $0.map { !fitted.contains($0) } ?? false }
        let w = min(windows, count), n = count
        self.windows = (0..<w).map { (n * $0 / w)..<(n * ($0 + 1) / w) }
    }
}

/// One mode's figures.
struct ReplayResult {
    let mode: ReplayMode
    var hits = 0, scored = 0, fed = 0, refits = 0
    /// The scored events whose target is a new item (unknown to the first fit), and their hits.
    var newItemHits = 0, newItemScored = 0
    var windowHits: [Int], windowScored: [Int]
    var serveSeconds = 0.0, feedSeconds = 0.0, refitSeconds = 0.0, exportSeconds = 0.0
    var exported = 0
    /// Learning from feedback inside the engine (`OnlineState.learningWork`): the fold-ins of users
    /// and placements of new items, and their seconds (part of serve and feed seconds: fold-ins
    /// run lazily in a user's next request).
    var folds = 0, placements = 0, foldSeconds = 0.0
    /// What the learner's private releases spent (learning modes with privacy).
    var privacy: CoordinatorLearner.PrivacySpent? = nil

    init(mode: ReplayMode, windows: Int) {
        self.mode = mode
        windowHits = [Int](repeating: 0, count: windows)
        windowScored = [Int](repeating: 0, count: windows)
    }

    var hitRate: Double? { scored > 0 ? Double(hits) / Double(scored) : nil }
    func windowRate(_ w: Int) -> Double? { windowScored[w] > 0 ? Double(windowHits[w]) / Double(windowScored[w]) : nil }
}

enum Replay {
    /// Replays the stream under `mode`. `fitted` gives a fresh engine fitted on the training part
    /// (nil for the random mode); `export`: write each scored event's candidates (online mode).
    static func run(_ mode: ReplayMode, stream: ReplayStream, k: Int, seed: UInt64, parameters: FitParameters, refitEvery: Double,
                    minRating: Float = 4, learning: LearningOptions = LearningOptions(),
                    fitted: () throws(ChorusError) -> Engine, export: CandidateWriter?, progress: FitProgress?) throws(ChorusError) -> ReplayResult {
        var result = ReplayResult(mode: mode, windows: stream.windows.count)
        let engine: Engine? = mode == .random ? nil : try fitted()
        let plan = try mode.plan(engine: engine, learning: learning, seed: seed)
        let refitStride = plan.refits ? max(1, Int((Double(stream.count) * refitEvery).rounded(.up))) : 0
        // The random mode's catalogue and seen sets (the engine keeps its own).
        var known: [Int64] = [], knownSet = Set<Int64>(), seen: [Int64: Set<Int64>] = [:]
        var rng = SeededRandom(seed: seed ^ 0x5EED_0F_5A_1E)
        if !plan.usesEngine {
            for e in stream.events[0..<stream.trainCount] {
                if knownSet.insert(e.item).inserted { known.append(e.item) }
                seen[e.user, default: []].insert(e.item)
            }
        }
        var window = 0
        for p in 0..<stream.count {
            let e = stream.events[stream.trainCount + p]
            while window + 1 < stream.windows.count && p >= stream.windows[window].upperBound { window += 1 }
            if let target = stream.target[p] {
                let slate: [Int64]
                if let engine, plan.usesEngine {
                    let clock = Stopwatch()
                    var options = plan.options
                    if plan.requestIds { options.requestIds = [Int64(p)] }
                    slate = try engine.recommend(users: [e.user], k: k, options: options)[0].items
                    result.serveSeconds += clock.seconds
                    if let export {
                        let c = Stopwatch()
                        let set = try engine.candidates(user: e.user, k: k, options: plan.options)
                        try export.write(position: p, event: e, target: target, hit: slate.contains(target), set: set)
                        result.exportSeconds += c.seconds
                        result.exported += 1
                    }
                } else {
                    let clock = Stopwatch()
                    slate = randomSlate(k: k, known: known, seen: seen[e.user] ?? [], rng: &rng)
                    result.serveSeconds += clock.seconds
                }
                result.scored += 1
                result.windowScored[window] += 1
                if slate.contains(target) { result.hits += 1; result.windowHits[window] += 1 }
                if stream.targetIsNew[p] {
                    result.newItemScored += 1
                    if slate.contains(target) { result.newItemHits += 1 }
                }
            }
            if let engine, plan.feeds {
                let clock = Stopwatch()
                // The learning modes: a positive rating answers this event's slate (when one was served).
                let answers = plan.requestIds && stream.target[p] != nil && e.weight >= minRating ? [Int64(p)] : nil
                try engine.feedback(users: [e.user], items: [e.item], events: [FeedbackEvent.rating.rawValue], values: [e.weight],
                                    timestamps: [e.timestamp], requestIds: answers)
                result.feedSeconds += clock.seconds
                result.fed += 1
            }
            if !plan.usesEngine {
                if knownSet.insert(e.item).inserted { known.append(e.item) }
                seen[e.user, default: []].insert(e.item)
            }
            if let engine, refitStride > 0, (p + 1) % refitStride == 0, p + 1 < stream.count {
                let clock = Stopwatch()
                try engine.fit(parameters)
                result.refitSeconds += clock.seconds
                result.refits += 1
            }
            progress?.report(mode.rawValue, Double(p + 1) / Double(stream.count))
        }
        progress?.finish()
        if let engine {
            let work = engine.online.learningWork
            (result.folds, result.placements, result.foldSeconds) = (work.folds, work.placements, work.seconds)
        }
        if plan.requestIds, learning.isPrivate, let engine { result.privacy = engine.learningPrivacySpent }
        return result
    }

    /// Up to k distinct items of `known` not in `seen`, uniformly: rejection sampling while the
    /// catalogue is large, else a shuffle of what is left.
    static func randomSlate(k: Int, known: [Int64], seen: Set<Int64>, rng: inout SeededRandom) -> [Int64] {
        var slate: [Int64] = [], chosen = Set<Int64>()
        if known.count >= 4 * (seen.count + k) {
            while slate.count < k {
                let item = known[rng.nextInt(below: known.count)]
                if !seen.contains(item), chosen.insert(item).inserted { slate.append(item) }
            }
            return slate
        }
        var left = known.filter { !seen.contains($0) }
        var i = 0
        while i < min(k, left.count) {
            left.swapAt(i, i + rng.nextInt(below: left.count - i))
            slate.append(left[i])
            i += 1
        }
        return slate
    }
}

/// The online mode's candidate export (`--export-candidates`), little-endian binary:
///   header: "CHRCAND1" (8 bytes), u32 k, u32 feature count F, then F names (u16 byte length, UTF-8);
///   per scored event: i64 stream position, i64 user, i64 item rated, i64 timestamp, i64 true next
///   positive item, u8 whether Chorus's slate held it, u32 candidate count n, n × i64 item ids,
///   n × F × f32 features (row-major).
/// bench/online/replay.py reads it (and documents it in bench/online/README.md).
final class CandidateWriter {
    private let file: UnsafeMutablePointer<FILE>
    let path: String
    private var names: [String]?
    private let k: Int
    private var buffer: [UInt8] = []

    init(path: String, k: Int) throws(ChorusError) {
        guard let f = fopen(path, "wb") else {
            throw .io("cannot open \(path) for writing: \(String(cString: strerror(errno)))")
        }
        file = f; self.path = path; self.k = k
    }

    deinit { fclose(file) }

    private func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { buffer.append(contentsOf: $0) } }

    func write(position: Int, event: Interaction, target: Int64, hit: Bool, set: CandidateSet) throws(ChorusError) {
        if names == nil {
            names = set.featureNames
            buffer.append(contentsOf: Array("CHRCAND1".utf8))
            put(UInt32(k)); put(UInt32(set.featureNames.count))
            for n in set.featureNames { let b = Array(n.utf8); put(UInt16(b.count)); buffer.append(contentsOf: b) }
        } else if names! != set.featureNames {
            throw .internalError("the candidates' features changed within the run (a refit in the online mode?)")
        }
        put(Int64(position)); put(event.user); put(event.item); put(event.timestamp); put(target)
        buffer.append(hit ? 1 : 0)
        put(UInt32(set.items.count))
        for i in set.items { put(i) }
        for x in set.features { put(x.bitPattern) }
        if buffer.count >= 1 << 20 { try flush() }
    }

    func flush() throws(ChorusError) {
        guard !buffer.isEmpty else { return }
        let n = buffer.count
        let written = buffer.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        buffer.removeAll(keepingCapacity: true)
        guard written == n else { throw .io("writing \(path) failed: \(String(cString: strerror(errno)))") }
    }

    func close() throws(ChorusError) {
        try flush()
        guard fflush(file) == 0 else { throw .io("writing \(path) failed: \(String(cString: strerror(errno)))") }
    }
}
