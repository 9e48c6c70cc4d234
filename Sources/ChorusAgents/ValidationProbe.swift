import ChorusCore

/// The fit's validation hold-out as an agent sees it while it trains, so an iterative agent can
/// stop when more training stops helping (early stopping) instead of running a fixed budget:
/// `ndcg` scores factor matrices by mean NDCG@10 over a deterministic sample of validation users
/// (their training items masked, their held-out items relevant), and `record` keeps the budget the
/// agent chose, which the final fit on all data then uses.
public final class ValidationProbe: Sendable {
    /// At most this many users are scored per check: a check then costs about one recommend
    /// for each of them.
    static let maxUsers = 1000

    private let users: [Int32]
    private let seen: @Sendable (Int32) -> ArraySlice<Int32>
    private let relevant: [Set<Int32>]
    private let threads: Int
    private let chosen = Lock<[String: Int]>([:])

    /// - Parameters:
    ///   - users: the validation users (model indices), sorted; thinned to `maxUsers`.
    ///   - seen: a user's training items (masked when ranking).
    ///   - relevant: a user's held-out items.
    init(users all: [Int32], seen: @escaping @Sendable (Int32) -> ArraySlice<Int32>, relevant: (Int32) -> [Int32], threads: Int) {
        let step = max(1, (all.count + Self.maxUsers - 1) / Self.maxUsers)
        users = stride(from: 0, to: all.count, by: step).map { all[$0] }
        self.seen = seen
        self.relevant = users.map { Set(relevant($0)) }
        self.threads = max(1, threads)
    }

    /// Mean NDCG@10 of ranking by `userFactors[u] · itemFactors[i]` (rows beyond the matrices'
    /// users score nothing and count as 0), with its standard error over the probe's users (the
    /// sample standard deviation of their NDCG / sqrt(users); 0 with fewer than two): how far apart
    /// two checks must be before the probe can tell them apart.
    public func check(userFactors: FloatMatrix, itemFactors: FloatMatrix) -> (ndcg: Double, standardError: Double) {
        let n = users.count, items = itemFactors.rows, f = itemFactors.cols
        guard n > 0, items > 0, userFactors.cols == f else { return (0, 0) }
        let parts = max(1, min(threads, n / 32 + 1))
        let sums = UnsafeSendableBox([Double](repeating: 0, count: parts))
        let squares = UnsafeSendableBox([Double](repeating: 0, count: parts))
        defer { sums.free(); squares.free() }
        let users = self.users, seen = self.seen, relevant = self.relevant
        // A batch of users per pass over the item factors (`Kernels.rowDotsBatch`, bit for bit one
        // user's `rowDots`): on a large catalogue each check otherwise reads them once per user.
        let batch = max(1, min(32, (16 << 20) / max(1, items)))
        Parallel.forEachChunk(count: n, threads: parts) { worker, range in
            var flat = [Float](repeating: 0, count: min(batch, range.count) * items)
            var total = 0.0, totalSquares = 0.0
            flat.withUnsafeMutableBufferPointer { rows in
                var start = range.lowerBound
                while start < range.upperBound {
                    let part = (start..<min(range.upperBound, start + batch)).filter { Int(users[$0]) < userFactors.rows }
                    start = min(range.upperBound, start + batch)
                    guard !part.isEmpty else { continue }
                    Kernels.rowDotsBatch(itemFactors.base, m: items, k: f, part.map { UnsafePointer(userFactors.row(Int(users[$0]))) },
                                         into: part.indices.map { rows.baseAddress! + $0 * items })
                    for (j, k) in part.enumerated() {
                        let row = UnsafeMutableBufferPointer(rebasing: rows[(j * items)..<((j + 1) * items)])
                        for i in seen(users[k]) where i >= 0 && Int(i) < items { row[Int(i)] = -.infinity }
                        let top = TopK.select(UnsafeBufferPointer(row), k: 10)
                        let ndcg = RankingMetrics.ndcg(top.map(\.index), relevant: relevant[k], k: 10)
                        total += ndcg
                        totalSquares += ndcg * ndcg
                    }
                }
            }
            sums.pointer[worker] = total
            squares.pointer[worker] = totalSquares
        }
        let mean = sums.pointer.reduce(0, +) / Double(n)
        guard n > 1 else { return (mean, 0) }
        let variance = max(0, (squares.pointer.reduce(0, +) - Double(n) * mean * mean) / Double(n - 1))
        return (mean, (variance / Double(n)).squareRoot())
    }

    /// Keeps the budget (epochs, iterations) `agent` chose on this hold-out.
    public func record(_ agent: String, budget: Int) { chosen.withLock { $0[agent] = budget } }

    /// The budget `agent` chose, if it recorded one.
    public func budget(_ agent: String) -> Int? { chosen.withLock { $0[agent] } }
}

/// When an iterative agent checked on the probe stops, and which check it keeps: the latest check
/// within one standard error of the best check's mean (as good as the best as far as the probe can
/// tell), stopping `patience` epochs after it (never before `minimumEpochs`). On a plateau it keeps
/// training and keeps the most trained check; on a falling curve it stops early with the best.
struct PlateauStopping {
    let minimumEpochs: Int
    let patience: Int
    /// The best check's mean NDCG and that mean less its standard error.
    private(set) var best = (ndcg: -Double.infinity, floor: -Double.infinity)
    /// The epoch of the check kept so far (0: none yet).
    private(set) var kept = 0

    /// Takes the check after `epoch` epochs: `keep` when its factors replace the kept ones, `stop`
    /// when training should end here.
    mutating func check(epoch: Int, ndcg: Double, standardError: Double) -> (keep: Bool, stop: Bool) {
        if ndcg > best.ndcg { best = (ndcg, ndcg - max(0, standardError)) }
        let keep = ndcg >= best.floor
        if keep { kept = epoch }
        return (keep, epoch >= minimumEpochs && epoch - kept >= patience)
    }
}
