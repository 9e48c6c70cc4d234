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
        /// The item's index in the state's model, -1 when it has none (looked up once, at insert:
        /// the events are inserted again whenever the model changes, `rebase`).
        let modelItem: Int32
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
        /// The distinct items of `events`, and the new items among them in first-event order.
        var items = Set<Int64>()
        var newItems: [Int64] = []
        var fold: Fold? = nil
        var isEmpty: Bool { events.isEmpty && negatives.isEmpty }
    }
    static let shardCount = 64
    @inline(__always) static func shard(_ user: Int64) -> Int { Int((UInt64(bitPattern: user) &* 0x9E37_79B9_7F4A_7C15) >> 58) }
    /// The new items' pair tables (`NewItemPairs`) in 1,024 shards by item: smaller dictionaries
    /// to grow and rehash as an event writes up to `pairLimit` rows.
    static let pairShardCount = 1024
    @inline(__always) static func pairShard(_ item: Int64) -> Int { Int((UInt64(bitPattern: item) &* 0x9E37_79B9_7F4A_7C15) >> 54) }

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
        /// Items the model does not know that received positive events since it.
        var newItems = NewItems()
        /// Transitions between the model's items in the stream (the session agent's table learns no
        /// new pairs before the next fit).
        var transitions = Transitions()
        /// Log rows of feedback received while learning was private (`PrivateRows`).
        var privateRows = PrivateRows()
        /// Per new item (`newItems` index): its users (id -> summed weight), for its placement.
        /// Kept out of `NewItems`, which every request's view copies.
        var newItemUsers: [[Int64: Float]] = []
        /// The new items' transitions and co-occurrences (out of the view too).
        var pairs = NewItemPairs()
    }

    /// The log rows of feedback received while the engine learned privately from feedback
    /// (`LearningOptions.isPrivate`): their events reach only their own user's overlay (consumed
    /// items, history, negatives, the user's fold-in, which serves that user alone), never the
    /// statistics every user's requests read (popularity, transitions, new items and their
    /// co-occurrences and placement). Boundaries start, end, start ...; an odd count leaves the last
    /// range open.
    struct PrivateRows: Sendable {
        var bounds: [Int] = []
        /// Whether `row` lies in a range: an odd number of boundaries at or below it.
        func contains(_ row: Int) -> Bool {
            guard !bounds.isEmpty else { return false }
            var lo = 0, hi = bounds.count
            while lo < hi { let mid = (lo + hi) / 2; if bounds[mid] <= row { lo = mid + 1 } else { hi = mid } }
            return lo % 2 == 1
        }
    }

    /// Sets the private rows (the learner's, after a change of its options or a load). Events
    /// recorded before keep the effect they had; a rebuild (a publication, a load) applies the rows.
    func setPrivateRows(_ bounds: [Int]) { storage.withLock { $0.privateRows = PrivateRows(bounds: bounds) } }

    /// Next-item transitions between model items seen since the model: from item j to item l, Σ 1/d
    /// over the events l that came d = 1 ... `window` events after j in a user's online events (the
    /// session agent's own rule), in 64 shards by j. The session agent adds Σ_j 2^(−age/4) · c(j, l) /
    /// sqrt(n_j n_l) to its scores, n = 1 + the item's users at the fit (from its warmth) + its online
    /// events: the scale of its fitted table.
    ///
    /// With them, co-occurrences between model items since the model: c(j, l) += 1, both ways, when
    /// a user's first event on l pairs it with their latest `pairLimit` online items j. The item-kNN
    /// agent adds Σ_j c(j, l) / sqrt(n_j n_l), its cosine's scale.
    ///
    /// Both agents add these terms from the request's history only (the user's latest online items,
    /// then the host's), whose rows a request takes under the lock (`pairRows`, `ModelPairs`): the
    /// tables stay out of the `View`, so a write never copies a shard a request holds. (Read from
    /// every item of the user's fit-time history too, the co-occurrences made a request scan rows
    /// that grow with the stream: on ml-latest-small's second half, recommend p50 0.59 ms instead of
    /// 0.31, and 4.3 ms p99 during ingest; the validation replays scored the same hits either way.)
    struct Transitions: Sendable {
        var shards = [[Int32: PairRow]](repeating: [:], count: OnlineState.shardCount)
        var cooccurrence = [[Int32: PairRow]](repeating: [:], count: OnlineState.shardCount)
        /// Per model item: users at the fit plus online events (the normalisation's n), and 1 / sqrt(n)
        /// (a request multiplies by it: a division and a root per partner were most of item-kNN's time).
        var counts: [Float] = []
        var inverseRoots: [Float] = []
        var isEmpty: Bool { counts.isEmpty }
        static let window = 5

        static func shard(_ j: Int32) -> Int { Int(UInt32(bitPattern: j) % UInt32(OnlineState.shardCount)) }
        func row(_ j: Int32) -> PairRow? { shards[Self.shard(j)][j] }
        func cooccurrenceRow(_ j: Int32) -> PairRow? { cooccurrence[Self.shard(j)][j] }
    }

    /// The rows of `Transitions` one request reads, those of its history's items, with the
    /// normalisation (empty `counts`: the stream has brought no event on a model item yet).
    struct ModelPairs: Sendable {
        var transitions: [Int32: PairRow] = [:]
        var cooccurrence: [Int32: PairRow] = [:]
        /// Per model item: 1 + its users (`Transitions.counts`), and 1 / sqrt of it.
        var counts: [Float] = []
        var inverseRoots: [Float] = []
        var isEmpty: Bool { counts.isEmpty }

        /// scores[l] += weight · c(j, l) / sqrt(n_j n_l) over the stream's transitions from j (the
        /// session agent's term).
        func addTransitions(from j: Int32, weight: Float, into scores: UnsafeMutableBufferPointer<Float>) {
            if let row = transitions[j] { Self.accumulate(row, from: j, weight: weight, inverseRoots: inverseRoots, into: scores) }
        }

        /// scores[l] += weight · c(j, l) / sqrt(n_j n_l) over the stream's co-occurrences of j (the
        /// item-kNN agent's term).
        func addCooccurrences(from j: Int32, weight: Float, into scores: UnsafeMutableBufferPointer<Float>) {
            if let row = cooccurrence[j] { Self.accumulate(row, from: j, weight: weight, inverseRoots: inverseRoots, into: scores) }
        }

        /// scores[l] += weight · c(j, l) / sqrt(n_j n_l) over row j's partners l (`inverseRoots`:
        /// 1 / sqrt(n) per model item).
        private static func accumulate(_ row: PairRow, from j: Int32, weight: Float, inverseRoots: [Float],
                                       into scores: UnsafeMutableBufferPointer<Float>) {
            guard j >= 0, Int(j) < inverseRoots.count else { return }
            let wj = weight * inverseRoots[Int(j)]
            inverseRoots.withUnsafeBufferPointer { r in
                row.partners.withUnsafeBufferPointer { partners in
                    row.counts.withUnsafeBufferPointer { c in
                        for e in 0..<partners.count {
                            let l = Int(partners[e])
                            guard l >= 0, l < scores.count, l < r.count else { continue }
                            scores[l] += wj * c[e] * r[l]
                        }
                    }
                }
            }
        }
    }

    /// One item's row of a pair table between model items: its partners and their counts in two
    /// arrays, which a request scans (iterating a dictionary row was a quarter of all the samples
    /// of bench/online/ingest.c, in item-kNN's score), and where each partner sits: found by a scan
    /// while the row is short, then by an open-addressing index (multiplicative hash, linear
    /// probing, at most half full). A Swift Dictionary here, hashing each key with SipHash, was a
    /// tenth of ingest's time.
    struct PairRow: Sendable {
        private(set) var partners: [Int32] = []
        private(set) var counts: [Float] = []
        /// Bucket -> position in `partners` (-1: empty); empty while the row has fewer than `indexFrom`.
        private var index: [Int32] = []
        static let indexFrom = 16

        mutating func add(_ l: Int32, _ x: Float) {
            if let k = position(l) { counts[k] += x; return }
            partners.append(l); counts.append(x)
            guard partners.count >= Self.indexFrom else { return }
            if 2 * partners.count > index.count { reindex() } else { insert(partners.count - 1) }
        }

        subscript(_ l: Int32) -> Float? { position(l).map { counts[$0] } }

        private func position(_ l: Int32) -> Int? {
            if index.isEmpty { return partners.firstIndex(of: l) }
            let mask = index.count - 1
            var b = Self.bucket(l, mask)
            while index[b] >= 0 {
                if partners[Int(index[b])] == l { return Int(index[b]) }
                b = (b + 1) & mask
            }
            return nil
        }

        @inline(__always) private static func bucket(_ l: Int32, _ mask: Int) -> Int {
            Int(truncatingIfNeeded: (UInt64(UInt32(bitPattern: l)) &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
        }

        private mutating func insert(_ k: Int) {
            let mask = index.count - 1
            var b = Self.bucket(partners[k], mask)
            while index[b] >= 0 { b = (b + 1) & mask }
            index[b] = Int32(truncatingIfNeeded: k)
        }

        /// A table of 4 x the partners' count rounded up to a power of two: half full at the latest
        /// after it doubles.
        private mutating func reindex() {
            var size = 64
            while size < 4 * partners.count { size *= 2 }
            index = [Int32](repeating: -1, count: size)
            for k in partners.indices { insert(k) }
        }
    }

    /// The new items' pair tables, kept out of the `View` every request copies: a request reads
    /// only the rows of its user's items (`pairRows`, references to copy-on-write rows taken under
    /// the lock), so an event's up to `pairLimit` row writes copy a row only while a request holds
    /// it, instead of a shard after every request (ingest, bench/online/ingest.c).
    struct NewItemPairs: Sendable {
        /// Previous item id (of the same user) -> new item k -> count, in shards by the previous item.
        var transitions = [[Int64: [Int32: Float]]](repeating: [:], count: OnlineState.pairShardCount)
        /// Item id -> new item k -> users who had both, in shards by the item.
        var cooccurrence = [[Int64: [Int32: Float]]](repeating: [:], count: OnlineState.pairShardCount)
    }

    /// The rows of the pair tables one request reads: the new items' (by item id, see
    /// `NewItemPairs`) and the model items' (`ModelPairs`).
    struct PairRows: Sendable {
        var transitions: [Int64: [Int32: Float]] = [:]
        var cooccurrence: [Int64: [Int32: Float]] = [:]
        var model = ModelPairs()
    }

    /// In one acquisition of the lock, when the state still belongs to `generation` (else none: a
    /// publication started over): the new items' transitions from `sequence`'s items and
    /// co-occurrences of `items` (ids), and the model items' transitions and co-occurrences from
    /// `history`'s items (model indices).
    func pairRows(generation: UInt64, sequence: [Int64], items: Set<Int64>, history: [Int32] = []) -> PairRows {
        storage.withLock { s in
            var out = PairRows()
            guard s.generation == generation else { return out }
            for j in sequence { if out.transitions[j] == nil, let row = s.pairs.transitions[Self.pairShard(j)][j] { out.transitions[j] = row } }
            for j in items { if let row = s.pairs.cooccurrence[Self.pairShard(j)][j] { out.cooccurrence[j] = row } }
            guard !s.transitions.isEmpty else { return out }
            out.model.counts = s.transitions.counts
            out.model.inverseRoots = s.transitions.inverseRoots
            for j in history {
                if out.model.transitions[j] == nil, let row = s.transitions.row(j) { out.model.transitions[j] = row }
                if out.model.cooccurrence[j] == nil, let row = s.transitions.cooccurrenceRow(j) { out.model.cooccurrence[j] = row }
            }
            return out
        }
    }

    /// Items unknown to the model with positive events since it: served as extra columns after the
    /// model's items (index `model.itemCount + k`), by popularity (their summed weight), session
    /// (transitions from the user's previous item to them) and item-kNN (co-occurrence in users'
    /// histories); the other agents do not know them (they rank them last).
    struct NewItems: Sendable {
        var ids: [Int64] = []
        var index: [Int64: Int32] = [:]
        var weight: [Float] = []
        /// The popularity agent's score of each new item, log(1 + weight), kept with the weight so
        /// a request does not take a logarithm per new item.
        var popularity: [Float] = []
        /// Per new item: how many users it has (the item-kNN normalisation; the users themselves are
        /// in `Storage.newItemUsers`, which no reader copies).
        var userCounts: [Int] = []
        /// Per factor agent: the new items' folded-in vectors (`FoldIn.foldItem`), and per new item
        /// how many users it was placed from.
        var folded: [String: ItemVectors] = [:]
        var foldedFrom: [Int] = []
        /// A new item's vectors by agent name.
        func vectors(of k: Int) -> [String: [Float]] {
            var out: [String: [Float]] = [:]
            for (name, all) in folded { if let v = all.vector(k) { out[name] = v } }
            return out
        }
        var count: Int { ids.count }
    }

    /// One factor agent's vectors of the new items, row k for new item k, in chunks of
    /// `chunkRows` contiguous rows: a request scores them with the row-dot kernel chunk by chunk,
    /// and a placement after a reader's copy copies one chunk (and the list of chunks), not all.
    struct ItemVectors: Sendable {
        let dims: Int
        private(set) var chunks: [[Float]] = []
        /// Which rows hold a placed vector (the others score NaN).
        private(set) var placed: [Bool] = []
        /// 64 rows: a placement after a request's view copies 64 x dims floats (16 KB at 64 factors).
        static let chunkRows = 64

        init(dims: Int) { self.dims = dims }

        func vector(_ k: Int) -> [Float]? {
            guard k >= 0, k < placed.count, placed[k] else { return nil }
            let c = k / Self.chunkRows, at = (k % Self.chunkRows) * dims
            return Array(chunks[c][at..<(at + dims)])
        }

        mutating func set(_ k: Int, _ v: [Float]) {
            guard k >= 0, v.count == dims else { return }
            while placed.count <= k { placed.append(false) }
            while chunks.count <= k / Self.chunkRows { chunks.append([Float](repeating: 0, count: Self.chunkRows * dims)) }
            let at = (k % Self.chunkRows) * dims
            chunks[k / Self.chunkRows].withUnsafeMutableBufferPointer { c in
                v.withUnsafeBufferPointer { c.baseAddress!.advanced(by: at).update(from: $0.baseAddress!, count: dims) }
            }
            placed[k] = true
        }

        /// x · each placed row, for the first `n` new items (NaN where none is placed, or not finite).
        func scores(_ x: [Float], count n: Int) -> [Float] {
            var out = [Float](repeating: .nan, count: n)
            guard x.count == dims, dims > 0 else { return out }
            let rows = min(n, placed.count)
            x.withUnsafeBufferPointer { xb in
                out.withUnsafeMutableBufferPointer { o in
                    var base = 0
                    for chunk in chunks where base < rows {
                        let m = min(Self.chunkRows, rows - base)
                        chunk.withUnsafeBufferPointer { Kernels.rowDots($0.baseAddress!, m: m, k: dims, xb.baseAddress!, into: o.baseAddress! + base) }
                        base += m
                    }
                    for k in 0..<rows where !placed[k] || !o[k].isFinite { o[k] = .nan }
                }
            }
            return out
        }
    }
    private let storage = Lock(Storage())
    /// What learning from feedback has cost so far (`learningWork`): fold-ins of users, placements
    /// of new items, and the nanoseconds spent solving both (lazily in requests or in feedback).
    private let folds = Atomic<Int>(0), placements = Atomic<Int>(0), learningNanos = Atomic<Int>(0)

    init() {}

    /// The work of learning from feedback since this state was made: users folded in, new items
    /// placed, and the seconds those solves took (wherever they ran: a request's lazy fold-in or
    /// a feedback call). Serving and recording events are not counted.
    public struct LearningWork: Sendable, Equatable {
        public let folds: Int
        public let placements: Int
        public let seconds: Double
    }
    public var learningWork: LearningWork {
        LearningWork(folds: folds.load(ordering: .relaxed), placements: placements.load(ordering: .relaxed),
                     seconds: Double(learningNanos.load(ordering: .relaxed)) * 1e-9)
    }
    fileprivate func count(folds f: Int = 0, placements p: Int = 0, since clock: ContinuousClock.Instant) {
        guard f > 0 || p > 0 else { return }
        let d = (ContinuousClock.now - clock).components
        let nanos = Int(clamping: d.seconds &* 1_000_000_000) &+ Int(d.attoseconds / 1_000_000_000)
        if f > 0 { folds.wrappingAdd(f, ordering: .relaxed) }
        if p > 0 { placements.wrappingAdd(p, ordering: .relaxed) }
        learningNanos.wrappingAdd(max(0, nanos), ordering: .relaxed)
    }

    /// The publication the state applies to.
    public var generation: UInt64 { storage.withLock { $0.generation } }

    /// Users with online state (events or negatives).
    public var userCount: Int { storage.withLock { $0.shards.reduce(0) { $0 + $1.count } } }

    // MARK: - Readers

    /// What one request reads: a copy-on-write view of the overlay, taken in one acquisition (the
    /// pair tables are read row by row, `pairRows`).
    struct View: Sendable {
        let generation: UInt64
        fileprivate let shards: [[Int64: UserOverlay]]
        /// The popularity agent's scores with the online increments (model items), when any.
        let popularity: [Float]?
        let newItems: NewItems

        static let empty = View(generation: 0, shards: [], popularity: nil, newItems: NewItems())

        /// The index of an item in the served catalogue: the model's items, then this view's new items.
        func index(of item: Int64, model: FittedModel) -> Int32? {
            if let i = model.items.index(of: item) { return i }
            return newItems.index[item].map { Int32(model.itemCount) + $0 }
        }

        /// The overlay of `user` in the model's index space (nil when the user has none).
        /// Fold-ins are used only when computed against `generation`'s model.
        func user(_ user: Int64, model: FittedModel, generation snapshotGeneration: UInt64) -> UserView? {
            guard !shards.isEmpty, let o = shards[OnlineState.shard(user)][user] else { return nil }
            var v = UserView()
            var consumed = Set<Int32>()
            for item in o.items { if let i = index(of: item, model: model) { consumed.insert(i) } }
            v.consumed = consumed.sorted()
            // The latest items, oldest first, each once at its latest position.
            var seen = Set<Int32>(), recent: [Int32] = []
            for e in o.events.reversed() {
                guard recent.count < UserView.recentLimit else { break }
                if let i = model.items.index(of: e.item), seen.insert(i).inserted { recent.append(i) }
            }
            v.recent = recent.reversed()
            for (item, reward) in o.negatives {
                guard let i = index(of: item, model: model) else { continue }
                if reward <= UserView.dropAt { v.excluded.append(i) } else { v.demoted.append((i, 1 + reward / -UserView.dropAt)) }
            }
            v.excluded.sort()
            if let f = o.fold, f.generation == snapshotGeneration { v.folded = f.vectors }
            v.hasEvents = !o.events.isEmpty
            // Feedback leaves fold-ins to the user's next request (`OnlineState.freshFold`).
            v.stale = v.hasEvents && (o.fold.map { $0.generation != snapshotGeneration || $0.version != o.version } ?? true)
            v.sequence = o.events.suffix(UserView.recentLimit).map(\.item)
            return v
        }

        /// 1 + an item's users: at the fit plus online events for a model item (`ModelPairs.counts`,
        /// else its warmth), its online users for a new one.
        func users(of item: Int64, model: FittedModel, pairs: PairRows) -> Float {
            if let i = model.items.index(of: item).map(Int.init) {
                if i < pairs.model.counts.count { return max(1, pairs.model.counts[i]) }
                return i < model.itemWarmth.count ? 1 + Float(expm1(8 * Double(model.itemWarmth[i])).rounded()) : 1
            }
            return Float(1 + (newItems.index[item].map { newItems.userCounts[Int($0)] } ?? 0))
        }

        /// The scores of the new items for one request, by agent name (popularity, session, itemknn):
        /// `sequence` the user's latest items (ids, oldest first), `items` all the user's items (ids),
        /// `pairs` their rows of the pair tables (`OnlineState.pairRows`; read after this view, so a
        /// row may name new items the view does not have yet: those are skipped).
        /// `userVectors`: the user's vector per factor agent; a new item without a vector of that
        /// agent scores NaN there (the ranker gives it the row's minimum).
        func newItemScores(model: FittedModel, sequence: [Int64], items: Set<Int64>, pairs: PairRows,
                           userVectors: [String: [Float]] = [:]) -> [String: [Float]] {
            let n = newItems.count
            guard n > 0 else { return [:] }
            var out: [String: [Float]] = [:]
            // The new items' factor scores: the user's vector against each placed item's.
            for (name, x) in userVectors {
                guard let all = newItems.folded[name] else { continue }
                out[name] = all.scores(x, count: n)
            }
            out["popularity"] = newItems.popularity
            // On the session agent's scale, c(j, k) / sqrt(n_j n_k) with n = 1 + the item's users
            // (as `Transitions` for model items): raw counts put every new item that followed one
            // of the user's items above all the model's (hit@10 0.186 -> 0.200 on the ml-100k
            // validation replay, 0.040 -> 0.053 on ml-latest-small's, online mode).
            var session = [Float](repeating: 0, count: n)
            for (age, j) in sequence.suffix(20).reversed().enumerated() {
                guard let row = pairs.transitions[j] else { continue }
                let nj = users(of: j, model: model, pairs: pairs)
                for (k, c) in row where k >= 0 && Int(k) < n {
                    session[Int(k)] += exp2f(-Float(age) / 4) * c / (nj * Float(1 + newItems.userCounts[Int(k)])).squareRoot()
                }
            }
            out["session"] = session
            // Cosine of binary user sets: c(k, j) / sqrt(n_k n_j), n_j from the model's warmth (its
            // users at the fit) for a model item, the online users for a new one.
            var knn = [Float](repeating: 0, count: n)
            for j in items {
                guard let row = pairs.cooccurrence[j] else { continue }
                var nj: Float = 1
                if let i = model.items.index(of: j) { nj = max(1, Float(expm1(8 * Double(model.itemWarmth[Int(i)])).rounded())) }
                else if let kj = newItems.index[j] { nj = Float(max(1, newItems.userCounts[Int(kj)])) }
                for (k, c) in row where k >= 0 && Int(k) < n { knn[Int(k)] += c / (Float(max(1, newItems.userCounts[Int(k)])) * nj).squareRoot() }
            }
            out["itemknn"] = knn
            return out
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
        /// The fold-in (if any) predates the user's latest events.
        var stale = false
        /// The latest online items (ids, oldest first), new items included: the new items' session scores.
        var sequence: [Int64] = []

        static let recentLimit = 50
        /// A dismissal (-1 by default), or two skips, drops the item; less demotes it.
        static let dropAt: Float = -1
    }

    func view() -> View {
        storage.withLock { View(generation: $0.generation, shards: $0.shards, popularity: $0.popularity, newItems: $0.newItems) }
    }

    // MARK: - Writers

    /// The users whose vectors to fold in against `model` (from outside the lock), each with its
    /// version and its online events on the model's items: every user with events after a
    /// publication or a load; after feedback only the users of re-placed new items who have no
    /// vector yet (the others are folded at their next request, `freshFold`).
    struct FoldWork {
        let model: FittedModel
        let generation: UInt64
        let foldIn: FoldIn
        var users: [FoldIn.Input] = []
        /// New items whose users changed: placed after the users are folded in.
        var items: Set<Int64> = []
    }

    /// Applies a recorded feedback batch whose positive events went to log rows `firstRow...`.
    /// Rows the model already saw (a fit copied the data after they were appended) are skipped.
    /// Applied `chunk` events per acquisition of the lock, so a large batch never holds readers
    /// back for long (the batch is whole in the data store already; the overlay is derived).
    func record(_ batch: FeedbackBatch, firstRow: Int) -> FoldWork? {
        let n = batch.users.count
        var work: FoldWork? = nil
        var start = 0
        repeat {
            let end = min(start + Self.chunk, n)
            let part = storage.withLock { s in
                Self.insert(&s, users: Array(batch.users[start..<end]), items: Array(batch.items[start..<end]),
                            weights: Array(batch.weights[start..<end]), rows: Array((firstRow + start)..<(firstRow + end)),
                            negatives: start == 0 ? batch.negatives : [])
            }
            if let part {
                if work == nil || work!.generation != part.generation {
                    work = FoldWork(model: part.model, generation: part.generation, foldIn: part.foldIn)
                }
                work!.items.formUnion(part.items)
                // A user listed by two chunks: the later input (more events) replaces the earlier.
                let ids = Set(part.users.map(\.id))
                work!.users.removeAll { ids.contains($0.id) }
                work!.users += part.users
            }
            start = end
        } while start < n
        return work
    }
    /// 16: a request waits for at most 16 events' updates (bench/online/ingest.c, 1 ingest thread
    /// beside recommend on ml-latest-small: p99 during ingest 1.35 ms at 16, 2.64 ms at 64, at the
    /// same ingest rate).
    static let chunk = 16

    /// Starts over for a newly published model: keeps the events it has not seen (rows from its
    /// `trainedRows`) and the negatives, recomputes popularity, drops the fold-ins. An older or
    /// equal generation than the state's is ignored (a newer one was already applied).
    /// - Returns: the fold-in work for the users still holding events.
    func rebase(to generation: UInt64, model: FittedModel?, foldIn: FoldIn?) -> FoldWork? {
        storage.withLock { s -> FoldWork? in
            guard generation > s.generation else { return nil }
            let old = s.shards
            s = Storage(generation: generation, model: model, foldIn: foldIn, baseRows: model?.trainedRows ?? 0, privateRows: s.privateRows)
            Self.resetPopularity(&s)
            // The events the new model has not seen, applied again in log order (popularity, new
            // items, the users' overlays), and the negatives as they were.
            var kept: [(user: Int64, event: Event)] = []
            for shard in old {
                for (id, o) in shard {
                    if !o.negatives.isEmpty { s.shards[Self.shard(id)][id, default: UserOverlay()].negatives = o.negatives }
                    for e in o.events where e.row >= s.baseRows { kept.append((id, e)) }
                }
            }
            kept.sort { $0.event.row < $1.event.row }
            _ = Self.insert(&s, users: kept.map(\.user), items: kept.map(\.event.item), weights: kept.map(\.event.weight),
                            rows: kept.map(\.event.row), negatives: [])
            guard var work = Self.work(s) else { return nil }
            for shard in s.shards { for (id, o) in shard where !o.events.isEmpty { work.users.append(Self.foldInput(s, id, o)) } }
            work.items = Set(s.newItems.ids)
            return work
        }
    }

    /// Rebuilds the overlay of a loaded engine from its data: the feedback rows the model has not
    /// seen (`rows`, with their log columns) and the recorded negatives.
    func restore(generation: UInt64, model: FittedModel?, foldIn: FoldIn?, log: InteractionLog, record: FeedbackRecord) -> FoldWork? {
        storage.withLock { s -> FoldWork? in
            s = Storage(generation: generation, model: model, foldIn: foldIn, baseRows: model?.trainedRows ?? 0, privateRows: s.privateRows)
            Self.resetPopularity(&s)
            for (u, items) in record.negatives { s.shards[Self.shard(u)][u, default: UserOverlay()].negatives = items }
            let rows = record.rows(from: s.baseRows)
            _ = Self.insert(&s, users: rows.map { log.users.ids[Int(log.userIndex[$0])] }, items: rows.map { log.items.ids[Int(log.itemIndex[$0])] },
                            weights: rows.map { log.weights[$0] }, rows: rows, negatives: [])
            guard var work = Self.work(s) else { return nil }
            for shard in s.shards { for (id, o) in shard where !o.events.isEmpty { work.users.append(Self.foldInput(s, id, o)) } }
            work.items = Set(s.newItems.ids)
            return work
        }
    }

    /// What placing new items needs (read after their users were folded in): per item, per factor
    /// agent, the vectors of its users (the model's row or their fold-in) with their weights.
    func itemFoldInputs(_ items: Set<Int64>, generation: UInt64) -> [FoldIn.ItemInput] {
        storage.withLock { s in
            guard s.generation == generation, let m = s.model, let foldIn = s.foldIn else { return [] }
            var out: [FoldIn.ItemInput] = []
            for id in items {
                guard let k = s.newItems.index[id] else { continue }
                var vectors: [String: [([Float], Float)]] = [:]
                // In id order: a Dictionary iterates in a per-process order, and the placement (its sums,
                // BPR's sampled users) must not depend on it.
                for (u, w) in s.newItemUsers[Int(k)].sorted(by: { $0.key < $1.key }) {
                    let fold = s.shards[Self.shard(u)][u]?.fold.flatMap { $0.generation == generation ? $0.vectors : nil }
                    let mu = m.users.index(of: u)
                    for b in foldIn.bases {
                        if let v = fold?[b.name] { vectors[b.name, default: []].append((v, w)); continue }
                        guard let mu, Int(mu) < b.users.rows else { continue }
                        vectors[b.name, default: []].append((Array(UnsafeBufferPointer(start: b.users.row(Int(mu)), count: b.users.cols)), w))
                    }
                }
                out.append(FoldIn.ItemInput(id: id, users: s.newItemUsers[Int(k)].count, vectors: vectors,
                                            previous: s.newItems.vectors(of: Int(k)), previousUsers: s.newItems.foldedFrom[Int(k)]))
            }
            return out
        }
    }

    /// Stores a new item's folded vectors, unless ones placed from more users are already there.
    func storeItemFold(item: Int64, generation: UInt64, users: Int, vectors: [String: [Float]]) {
        storage.withLock { s in
            guard s.generation == generation, let k = s.newItems.index[item], s.newItems.foldedFrom[Int(k)] <= users else { return }
            for (name, v) in vectors {
                if s.newItems.folded[name] == nil { s.newItems.folded[name] = ItemVectors(dims: v.count) }
                s.newItems.folded[name]!.set(Int(k), v)
            }
            s.newItems.foldedFrom[Int(k)] = users
        }
    }

    /// The user's fold-in against `generation`'s model, computed now when it predates their latest
    /// events (feedback leaves it to the user's next request), else nil (the stored one is current,
    /// or there is nothing to fold). Solved with no lock held; concurrent requests for one user may
    /// both solve: the newer version is kept.
    func freshFold(_ user: Int64, generation: UInt64) -> [String: [Float]]? {
        let job: (FoldIn, FittedModel, FoldIn.Input)? = storage.withLock { s in
            guard s.generation == generation, let m = s.model, let f = s.foldIn, !f.bases.isEmpty,
                  let o = s.shards[Self.shard(user)][user], !o.events.isEmpty else { return nil }
            if let fold = o.fold, fold.generation == generation, fold.version == o.version { return nil }
            return (f, m, Self.foldInput(s, user, o))
        }
        guard let (foldIn, model, input) = job else { return nil }
        let clock = ContinuousClock.now
        defer { count(folds: 1, since: clock) }
        do {
            let vectors = try foldIn.fold(model: model, input)
            guard !vectors.isEmpty else { return nil }
            storeFold(user: user, generation: generation, version: input.version, events: input.online.count, vectors: vectors)
            return vectors
        } catch {
            Log.emit(.warning, "fold-in of user \(user) skipped: \(error.message)")
            return nil
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

    private static func insert(_ s: inout Storage, users: [Int64], items: [Int64], weights: [Float], rows: [Int],
                               negatives: [(user: Int64, item: Int64, reward: Float)]) -> FoldWork? {
        var touched = Set<Int64>(), newItems = Set<Int64>()
        for j in users.indices {
            let row = rows[j]
            guard row >= s.baseRows else { continue }
            let (u, i) = (users[j], items[j])
            let sh = shard(u)
            let shared = !s.privateRows.contains(row)
            let l = s.model?.items.index(of: i)
            if shared, let m = s.model {
                // The user's overlay before the event, looked up once for both; released with this
                // scope, so the append below finds its arrays uniquely held.
                let o = s.shards[sh][u], mu = m.users.index(of: u)
                if trackNewItems(&s, user: u, overlay: o, modelUser: mu, item: i, modelItem: l, weight: weights[j]) { newItems.insert(i) }
                if let l { trackTransitions(&s, overlay: o, modelUser: mu, item: i, modelItem: l) }
            }
            let event = Event(row: row, item: i, weight: weights[j], modelItem: l ?? -1)
            append(event, to: &s.shards[sh][u, default: UserOverlay()], isNewItem: s.newItems.index[i] != nil, newVersion: touched.insert(u).inserted)
            if shared, let l { bumpPopularity(&s, modelItem: l, weight: weights[j]) }
        }
        for e in negatives {
            // Saturated, as the feedback record's (FeedbackRecord.apply): a sum past Float's range stays finite.
            let sum = (s.shards[shard(e.user)][e.user]?.negatives[e.item] ?? 0) + e.reward
            s.shards[shard(e.user)][e.user, default: UserOverlay()].negatives[e.item] = max(sum, -.greatestFiniteMagnitude)
        }
        guard var work = work(s) else { return nil }
        // A new item is placed again when its users have doubled since its last placement (at 1, 2,
        // 4, 8 ... users): amortised O(log users) placements, not one per event. It is placed from
        // its users' vectors as they are (a fold-in may predate this batch: folding every user here
        // cost half of ingest, bench/online/ingest.c), except users with none yet, folded in first.
        var vectorless = Set<Int64>()
        for i in newItems {
            guard let k = s.newItems.index[i].map(Int.init) else { continue }
            guard s.newItemUsers[k].count >= max(1, 2 * s.newItems.foldedFrom[k]) else { continue }
            work.items.insert(i)
            for u in s.newItemUsers[k].keys where work.model.users.index(of: u) == nil {
                guard let o = s.shards[shard(u)][u], o.fold?.generation != s.generation, vectorless.insert(u).inserted else { continue }
                work.users.append(foldInput(s, u, o))
            }
        }
        return work
    }

    /// Appends a positive event to its user's overlay (one dictionary access for all of it).
    private static func append(_ e: Event, to o: inout UserOverlay, isNewItem: Bool, newVersion: Bool) {
        o.events.append(e)
        if o.items.insert(e.item).inserted, isNewItem { o.newItems.append(e.item) }
        if !o.negatives.isEmpty { o.negatives[e.item] = nil }
        if newVersion { o.version &+= 1 }
    }

    private static func work(_ s: Storage) -> FoldWork? {
        guard let model = s.model, let foldIn = s.foldIn, !foldIn.bases.isEmpty else { return nil }
        return FoldWork(model: model, generation: s.generation, foldIn: foldIn)
    }

    private static func foldInput(_ s: Storage, _ id: Int64, _ o: UserOverlay) -> FoldIn.Input {
        let m = s.model!
        let online = o.events.compactMap { e in e.modelItem >= 0 ? (item: e.modelItem, weight: e.weight) : nil }
        let previous = o.fold.flatMap { $0.generation == s.generation ? $0 : nil }
        return FoldIn.Input(id: id, modelUser: m.users.index(of: id), version: o.version, online: online,
                            previous: previous?.vectors ?? [:], newEvents: online.count - (previous?.events ?? 0))
    }

    private static func resetPopularity(_ s: inout Storage) {
        s.increments = [Float](repeating: 0, count: s.model?.itemCount ?? 0)
        s.popularity = nil
        s.transitions = Transitions()
    }

    /// Counts the transitions into model item `item` from the user's previous online events on
    /// model items (within `Transitions.window`), and its co-occurrences with their latest
    /// `pairLimit` online items on a first event of the user on it, before the event is appended.
    private static func trackTransitions(_ s: inout Storage, overlay o: UserOverlay?, modelUser mu: Int32?, item: Int64, modelItem l: Int32) {
        guard let m = s.model else { return }
        if s.transitions.counts.isEmpty {
            s.transitions.counts = m.itemWarmth.map { 1 + Float(expm1(8 * Double($0)).rounded()) }
            s.transitions.inverseRoots = s.transitions.counts.map { 1 / $0.squareRoot() }
        }
        if Int(l) < s.transitions.counts.count {
            s.transitions.counts[Int(l)] = min(s.transitions.counts[Int(l)] + 1, .greatestFiniteMagnitude)
            s.transitions.inverseRoots[Int(l)] = 1 / s.transitions.counts[Int(l)].squareRoot()
        }
        guard let events = o?.events else { return }
        for (d, e) in events.suffix(Transitions.window).reversed().enumerated() {
            let j = e.modelItem
            guard j >= 0, j != l else { continue }
            s.transitions.shards[Transitions.shard(j)][j, default: PairRow()].add(l, 1 / Float(d + 1))
        }
        // Co-occurrence, once per (user, item): not when the user had the item online or at the fit.
        guard o?.items.contains(item) != true else { return }
        if let mu, Int(mu) < m.seen.rows, sortedContains(m.seen.row(Int(mu)).cols, l) { return }
        var partners: [Int32] = []
        for e in events.reversed() {
            guard partners.count < pairLimit else { break }
            let j = e.modelItem
            if j >= 0, j != l, !partners.contains(j) { partners.append(j) }
        }
        for j in partners {
            s.transitions.cooccurrence[Transitions.shard(j)][j, default: PairRow()].add(l, 1)
            s.transitions.cooccurrence[Transitions.shard(l)][l, default: PairRow()].add(j, 1)
        }
    }

    private static func bumpPopularity(_ s: inout Storage, modelItem i: Int32, weight: Float) {
        guard let m = s.model, i >= 0,
              let base = (m.agents[m.fallbackIndex] as? PopularityAgent)?.itemScores, Int(i) < base.count else { return }
        if s.popularity == nil { s.popularity = Array(UnsafeBufferPointer(start: base.base, count: min(base.count, m.itemCount))) }
        let k = Int(i)
        s.increments[k] = min(s.increments[k] + weight, .greatestFiniteMagnitude)
        let score = Float(log1p(expm1(Double(base.base[k])) + Double(s.increments[k])))
        s.popularity![k] = score.isFinite ? score : .greatestFiniteMagnitude
    }

    /// Binary search in a row's sorted column indices.
    private static func sortedContains(_ row: ArraySlice<Int32>, _ j: Int32) -> Bool {
        var lo = row.startIndex, hi = row.endIndex
        while lo < hi {
            let mid = (lo + hi) / 2
            if row[mid] < j { lo = mid + 1 } else { hi = mid }
        }
        return lo < row.endIndex && row[lo] == j
    }

    /// Pairs a co-occurrence counts per event at most: the user's latest online items. (Pairing with
    /// their model-time items too made both the events of heavy users and every recommend scan rows
    /// as long as the catalogue of new items: 4 ms a request on ml-latest-small's second half.)
    /// 16, chosen on the validation replay (fit on the first 30% by time, next 20,000 events, online
    /// mode): hit@10 at 64 / 16 / 8 was 0.1995 / 0.1996 / 0.1995 on ml-100k and 0.0529 / 0.0528 /
    /// 0.0519 on ml-latest-small, whose feed took 0.51 / 0.33 / 0.36 s.
    static let pairLimit = 16

    /// Before the user's event on `item` is appended: the new items' weights, users, transitions
    /// (from the user's previous online item) and co-occurrences (a user's first event on an item
    /// pairs it with the latest new items the user had, and a new item with the user's latest
    /// online items, `pairLimit` each).
    /// - Returns: whether `item` is a new item that gained a user (to be placed again).
    private static func trackNewItems(_ s: inout Storage, user u: Int64, overlay o: UserOverlay?, modelUser: Int32?, item: Int64,
                                      modelItem known: Int32?, weight: Float) -> Bool {
        guard let m = s.model else { return false }
        var gained = false
        var k: Int32? = nil
        if known == nil {
            if let existing = s.newItems.index[item] { k = existing } else {
                guard s.newItems.count < Int(Int32.max) - m.itemCount else { return false }
                k = Int32(s.newItems.count)
                s.newItems.ids.append(item); s.newItems.index[item] = k!
                s.newItems.weight.append(0); s.newItems.popularity.append(0); s.newItems.userCounts.append(0); s.newItemUsers.append([:])
                s.newItems.foldedFrom.append(0)
            }
            let kk = Int(k!)
            s.newItems.weight[kk] = min(s.newItems.weight[kk] + weight, .greatestFiniteMagnitude)
            s.newItems.popularity[kk] = Float(log1p(Double(s.newItems.weight[kk])))
            gained = s.newItemUsers[kk][u] == nil
            s.newItemUsers[kk][u, default: 0] += weight
            if gained { s.newItems.userCounts[kk] += 1 }
            if let prev = o?.events.last?.item, prev != item { s.pairs.transitions[pairShard(prev)][prev, default: [:]][k!, default: 0] += 1 }
        }
        // Co-occurrence, once per (user, item).
        let seenBefore = (o?.items.contains(item) ?? false) || (known.flatMap { i in modelUser.map { Int($0) < m.seen.rows && sortedContains(m.seen.row(Int($0)).cols, i) } } ?? false)
        guard !seenBefore else { return gained }
        for x in (o?.newItems ?? []).suffix(pairLimit) where x != item {
            if let kx = s.newItems.index[x] { s.pairs.cooccurrence[pairShard(item)][item, default: [:]][kx, default: 0] += 1 }
        }
        if let k {
            var partners = Set<Int64>()
            for e in (o?.events ?? []).reversed() where e.item != item {
                if partners.count >= pairLimit { break }
                partners.insert(e.item)
            }
            for j in partners { s.pairs.cooccurrence[pairShard(j)][j, default: [:]][k, default: 0] += 1 }
        }
        return gained
    }
}

extension OnlineState.FoldWork {
    /// Folds every user in and stores the vectors (no lock held while solving). A solve that
    /// cannot allocate leaves that user on the model's vector (the events are recorded all the same).
    func run(into state: OnlineState) {
        let clock = ContinuousClock.now
        defer { state.count(folds: users.count, placements: items.count, since: clock) }
        for u in users {
            do {
                let vectors = try foldIn.fold(model: model, u)
                if !vectors.isEmpty { state.storeFold(user: u.id, generation: generation, version: u.version, events: u.online.count, vectors: vectors) }
            } catch {
                Log.emit(.warning, "fold-in of user \(u.id) skipped: \(error.message)")
            }
        }
        // New items, placed from their users' vectors (those just folded in included).
        guard !items.isEmpty else { return }
        for input in state.itemFoldInputs(items, generation: generation) {
            do {
                let vectors = try foldIn.foldItem(input)
                if !vectors.isEmpty { state.storeItemFold(item: input.id, generation: generation, users: input.users, vectors: vectors) }
            } catch {
                Log.emit(.warning, "fold-in of item \(input.id) skipped: \(error.message)")
            }
        }
    }
}
