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
    /// users score nothing and count as 0).
    public func ndcg(userFactors: FloatMatrix, itemFactors: FloatMatrix) -> Double {
        let n = users.count, items = itemFactors.rows, f = itemFactors.cols
        guard n > 0, items > 0, userFactors.cols == f else { return 0 }
        let parts = max(1, min(threads, n / 32 + 1))
        let sums = UnsafeSendableBox([Double](repeating: 0, count: parts))
        defer { sums.free() }
        let users = self.users, seen = self.seen, relevant = self.relevant
        Parallel.forEachChunk(count: n, threads: parts) { worker, range in
            var scores = [Float](repeating: 0, count: items)
            var total = 0.0
            for k in range {
                let u = Int(users[k])
                guard u < userFactors.rows else { continue }
                scores.withUnsafeMutableBufferPointer { s in
                    Kernels.rowDots(itemFactors.base, m: items, k: f, userFactors.row(u), into: s.baseAddress!)
                }
                for i in seen(users[k]) where Int(i) < items { scores[Int(i)] = -.infinity }
                let top = scores.withUnsafeBufferPointer { TopK.select($0, k: 10) }
                total += RankingMetrics.ndcg(top.map(\.index), relevant: relevant[k], k: 10)
            }
            sums.pointer[worker] = total
        }
        return sums.pointer.reduce(0, +) / Double(n)
    }

    /// Keeps the budget (epochs, iterations) `agent` chose on this hold-out.
    public func record(_ agent: String, budget: Int) { chosen.withLock { $0[agent] = budget } }

    /// The budget `agent` chose, if it recorded one.
    public func budget(_ agent: String) -> Int? { chosen.withLock { $0[agent] } }
}
