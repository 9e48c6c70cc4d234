#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import Synchronization

/// What the engine learns between fits, beside the immutable published model: the overlay of live
/// feedback that every recommend reads.
///
/// Per user (by id): the positive events since the model (log row, item, weight: what they
/// consumed, excluded like seen items, and their recent history, fed to the history agents), the
/// accumulated negative reward per item (skips demote, dismissals drop), and their folded-in factor
/// vectors (`FoldIn`). Per model item: the positive weight since the model, and the popularity
/// agent's scores with it added (log(1 + decayed count + increment): new events count undecayed).
///
/// Synchronisation: its own lock, never held together with the engine's state lock, and held only
/// to copy a view or apply a small update. Readers take a copy-on-write `View` (users in 64 shards,
/// so a write after a reader's copy copies one shard, not every user). The positive events are
/// keyed by the log rows they went to, and the state is relative to one published model: a
/// publication (`rebase`) keeps only the events whose rows the new model did not see (`trainedRows`
/// onwards), recomputes popularity and drops the fold-ins, which the engine then recomputes for
/// the users still holding events. A fold-in computed against another model than the state's is
/// discarded; one computed from fewer events than the one stored never replaces it.
///
/// The source of truth is the data store (log rows and `FeedbackRecord`, saved with the engine);
/// this overlay is derived from it and rebuilt at load (`restore`).
public final class OnlineState: Sendable {
    struct Event: Sendable {
        let row: Int
        let item: Int64
        let weight: Float
    }
    struct Fold: Sendable {
        let generation: UInt64
        /// The user's `version` the vectors were computed from, and how many online events on model items.
        let version: UInt64
        let events: Int
        let vectors: [String: [Float]]
    }
    struct UserOverlay: Sendable {
        /// Positive events the model has not seen, in arrival (log) order.
        var events: [Event] = []
        /// Item -> accumulated negative reward (< 0).
        var negatives: [Int64: Float] = [:]
        /// Bumped by every batch with a positive event for the user.
        var version: UInt64 = 0
        var fold: Fold? = nil
        var isEmpty: Bool { events.isEmpty && negatives.isEmpty }
    }
    static let shardCount = 64
    @inline(__always) static func shard(_ user: Int64) -> Int { Int((UInt64(bitPattern: user) &* 0x9E37_79B9_7F4A_7C15) >> 58) }

    private struct Storage {
        /// The publication this state belongs to (0: no model yet) and its model.
        var generation: UInt64 = 0
        var model: FittedModel? = nil
        var foldIn: FoldIn? = nil
        /// Log rows below this are in the model.
        var baseRows = 0
        var shards = [[Int64: UserOverlay]](repeating: [:], count: OnlineState.shardCount)
        /// Per model item: positive weight since the model; popularity scores with it (nil: none yet).
        var increments: [Float] = []
        var popularity: [Float]? = nil
    }
    private let storage = Lock(Storage())

    init() {}

    /// The publication the state applies to.
    public var generation: UInt64 { storage.withLock { $0.generation } }

    /// Users with online state (events or negatives).
    public var userCount: Int { storage.withLock { $0.shards.reduce(0) { $0 + $1.count } } }

    // MARK: - Readers

    /// What one request reads: a copy-on-write view of the whole overlay, taken in one acquisition.
    struct View: Sendable {
        let generation: UInt64
        fileprivate let shards: [[Int64: UserOverlay]]
        /// The popularity agent's scores with the online increments (model items), when any.
        let popularity: [Float]?

        static let empty = View(generation: 0, shards: [], popularity: nil)

        /// The overlay of `user` in the model's index space (nil when the user has none).
        /// Fold-ins are used only when computed against `generation`'s model.
        func user(_ user: Int64, model: FittedModel, generation snapshotGeneration: UInt64) -> UserView? {
            guard !shards.isEmpty, let o = shards[OnlineState.shard(user)][user] else { return nil }
            var v = UserView()
            var consumed = Set<Int32>()
            for e in o.events { if let i = model.items.index(of: e.item) { consumed.insert(i) } }
            v.consumed = consumed.sorted()
            // The latest items, oldest first, each once at its latest position.
            var seen = Set<Int32>(), recent: [Int32] = []
            for e in o.events.reversed() {
                guard recent.count < UserView.recentLimit else { break }
                if let i = model.items.index(of: e.item), seen.insert(i).inserted { recent.append(i) }
            }
            v.recent = recent.reversed()
            for (item, reward) in o.negatives {
                guard let i = model.items.index(of: item) else { continue }
                if reward <= UserView.dropAt { v.excluded.append(i) } else { v.demoted.append((i, 1 + reward / -UserView.dropAt)) }
            }
            v.excluded.sort()
            if let f = o.fold, f.generation == snapshotGeneration { v.folded = f.vectors }
            v.hasEvents = !o.events.isEmpty
            return v
        }
    }

    /// One user's overlay as a request reads it (item indices of the model).
    struct UserView: Sendable {
        /// Items of the model the user consumed since it (excluded like seen items).
        var consumed: [Int32] = []
        /// The latest `recentLimit` of them, oldest first: joins the request's history.
        var recent: [Int32] = []
        /// Negative feedback: dropped items (accumulated reward <= `dropAt`), and demoted ones with
        /// the factor their normalised scores are multiplied by (1 + reward / |dropAt|, in (0, 1)).
        var excluded: [Int32] = []
        var demoted: [(item: Int32, factor: Float)] = []
        /// Folded-in factor vectors by agent name.
        var folded: [String: [Float]] = [:]
        var hasEvents = false

        static let recentLimit = 50
        /// A dismissal (-1 by default), or two skips, drops the item; less demotes it.
        static let dropAt: Float = -1
    }

    func view() -> View {
        storage.withLock { View(generation: $0.generation, shards: $0.shards, popularity: $0.popularity) }
    }

    // MARK: - Writers

    /// The users whose vectors to fold in against `model` (from outside the lock), each with its
    /// version and its online events on the model's items.
    struct FoldWork {
        let model: FittedModel
        let generation: UInt64
        let foldIn: FoldIn
        var users: [FoldIn.Input] = []
    }

    /// Applies a recorded feedback batch whose positive events went to log rows `firstRow...`.
    /// Rows the model already saw (a fit copied the data after they were appended) are skipped.
    func record(_ batch: FeedbackBatch, firstRow: Int) -> FoldWork? {
        storage.withLock { s in Self.insert(&s, users: batch.users, items: batch.items, weights: batch.weights, firstRow: firstRow,
                                             negatives: batch.negatives) }
    }

    /// Starts over for a newly published model: keeps the events it has not seen (rows from its
    /// `trainedRows`) and the negatives, recomputes popularity, drops the fold-ins. An older or
    /// equal generation than the state's is ignored (a newer one was already applied).
    /// - Returns: the fold-in work for the users still holding events.
    func rebase(to generation: UInt64, model: FittedModel?, foldIn: FoldIn?) -> FoldWork? {
        storage.withLock { s -> FoldWork? in
            guard generation > s.generation else { return nil }
            let old = s.shards
            s = Storage(generation: generation, model: model, foldIn: foldIn, baseRows: model?.trainedRows ?? 0)
            Self.resetPopularity(&s)
            var work = Self.work(s)
            for shard in old {
                for (id, var o) in shard {
                    o.events.removeAll { $0.row < s.baseRows }
                    o.fold = nil
                    if o.isEmpty { continue }
                    o.version &+= 1
                    s.shards[Self.shard(id)][id] = o
                    for e in o.events { Self.bumpPopularity(&s, item: e.item, weight: e.weight) }
                    if !o.events.isEmpty { work?.users.append(Self.foldInput(s, id, o)) }
                }
            }
            return work
        }
    }

    /// Rebuilds the overlay of a loaded engine from its data: the feedback rows the model has not
    /// seen (`rows`, with their log columns) and the recorded negatives.
    func restore(generation: UInt64, model: FittedModel?, foldIn: FoldIn?, log: InteractionLog, record: FeedbackRecord) -> FoldWork? {
        storage.withLock { s -> FoldWork? in
            s = Storage(generation: generation, model: model, foldIn: foldIn, baseRows: model?.trainedRows ?? 0)
            Self.resetPopularity(&s)
            for (u, items) in record.negatives { s.shards[Self.shard(u)][u, default: UserOverlay()].negatives = items }
            for run in Self.runs(record.rows(from: s.baseRows)) {
                let users = run.map { log.users.ids[Int(log.userIndex[$0])] }, items = run.map { log.items.ids[Int(log.itemIndex[$0])] }
                _ = Self.insert(&s, users: users, items: items, weights: run.map { log.weights[$0] }, firstRow: run.lowerBound, negatives: [])
            }
            guard var work = Self.work(s) else { return nil }
            for shard in s.shards { for (id, o) in shard where !o.events.isEmpty { work.users.append(Self.foldInput(s, id, o)) } }
            return work
        }
    }

    /// Stores folded vectors computed from `version` of the user's events against `generation`'s model.
    func storeFold(user: Int64, generation: UInt64, version: UInt64, events: Int, vectors: [String: [Float]]) {
        storage.withLock { s in
            guard s.generation == generation, var o = s.shards[Self.shard(user)][user] else { return }
            if let f = o.fold, f.generation == generation, f.version >= version { return }
            o.fold = Fold(generation: generation, version: version, events: events, vectors: vectors)
            s.shards[Self.shard(user)][user] = o
        }
    }

    // MARK: - Internals (called with the lock held)

    private static func insert(_ s: inout Storage, users: [Int64], items: [Int64], weights: [Float], firstRow: Int,
                               negatives: [(user: Int64, item: Int64, reward: Float)]) -> FoldWork? {
        var touched = Set<Int64>()
        for j in users.indices {
            let row = firstRow + j
            guard row >= s.baseRows else { continue }
            let (u, i) = (users[j], items[j])
            let sh = shard(u)
            s.shards[sh][u, default: UserOverlay()].events.append(Event(row: row, item: i, weight: weights[j]))
            s.shards[sh][u]!.negatives[i] = nil
            if touched.insert(u).inserted { s.shards[sh][u]!.version &+= 1 }
            bumpPopularity(&s, item: i, weight: weights[j])
        }
        for e in negatives { s.shards[shard(e.user)][e.user, default: UserOverlay()].negatives[e.item, default: 0] += e.reward }
        guard var work = work(s) else { return nil }
        for u in touched { if let o = s.shards[shard(u)][u] { work.users.append(foldInput(s, u, o)) } }
        return work
    }

    private static func work(_ s: Storage) -> FoldWork? {
        guard let model = s.model, let foldIn = s.foldIn, !foldIn.bases.isEmpty else { return nil }
        return FoldWork(model: model, generation: s.generation, foldIn: foldIn)
    }

    private static func foldInput(_ s: Storage, _ id: Int64, _ o: UserOverlay) -> FoldIn.Input {
        let m = s.model!
        let online = o.events.compactMap { e in m.items.index(of: e.item).map { (item: $0, weight: e.weight) } }
        let previous = o.fold.flatMap { $0.generation == s.generation ? $0 : nil }
        return FoldIn.Input(id: id, modelUser: m.users.index(of: id), version: o.version, online: online,
                            previous: previous?.vectors ?? [:], newEvents: online.count - (previous?.events ?? 0))
    }

    private static func resetPopularity(_ s: inout Storage) {
        s.increments = [Float](repeating: 0, count: s.model?.itemCount ?? 0)
        s.popularity = nil
    }

    private static func bumpPopularity(_ s: inout Storage, item: Int64, weight: Float) {
        guard let m = s.model, let i = m.items.index(of: item),
              let base = (m.agents[m.fallbackIndex] as? PopularityAgent)?.itemScores, Int(i) < base.count else { return }
        if s.popularity == nil { s.popularity = Array(UnsafeBufferPointer(start: base.base, count: min(base.count, m.itemCount))) }
        let k = Int(i)
        s.increments[k] = min(s.increments[k] + weight, .greatestFiniteMagnitude)
        let score = Float(log1p(expm1(Double(base.base[k])) + Double(s.increments[k])))
        s.popularity![k] = score.isFinite ? score : .greatestFiniteMagnitude
    }

    /// Consecutive runs of ascending row numbers.
    private static func runs(_ rows: [Int]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for r in rows {
            if let last = out.last, last.upperBound == r { out[out.count - 1] = last.lowerBound..<(r + 1) } else { out.append(r..<(r + 1)) }
        }
        return out
    }
}

extension OnlineState.FoldWork {
    /// Folds every user in and stores the vectors (no lock held while solving). A solve that
    /// cannot allocate leaves that user on the model's vector (the events are recorded all the same).
    func run(into state: OnlineState) {
        for u in users {
            do {
                let vectors = try foldIn.fold(model: model, u)
                if !vectors.isEmpty { state.storeFold(user: u.id, generation: generation, version: u.version, events: u.online.count, vectors: vectors) }
            } catch {
                Log.emit(.warning, "fold-in of user \(u.id) skipped: \(error.message)")
            }
        }
    }
}
