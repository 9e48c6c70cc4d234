/// Per-user temporal hold-out over interaction rows: for each user, the latest `fraction` of their
/// interactions (by timestamp, ties by position) go to the hold-out side, the rest to training.
/// A user keeps at least one training row; users with fewer than `minimumRows` rows are kept
/// whole in training. Used by the engine (validation for the coordinator) and by evaluations.
public enum TemporalHoldOut {
    /// - Returns: one flag per row, true when the row is held out.
    public static func split<User: Hashable>(users: [User], timestamps: [Int64], fraction: Double, minimumRows: Int = 3) -> [Bool] {
        precondition(users.count == timestamps.count)
        var rowsOf: [User: [Int]] = [:]
        for (row, u) in users.enumerated() { rowsOf[u, default: []].append(row) }
        var held = [Bool](repeating: false, count: users.count)
        for (_, var rows) in rowsOf where rows.count >= max(2, minimumRows) {
            rows.sort { timestamps[$0] != timestamps[$1] ? timestamps[$0] < timestamps[$1] : $0 < $1 }
            let n = min(rows.count - 1, max(1, Int((Double(rows.count) * fraction).rounded())))
            for r in rows.suffix(n) { held[r] = true }
        }
        return held
    }

    /// The same split for dense user indices (0 ..< n, as a fit's log holds them), over `UserRows`
    /// instead of a dictionary of row arrays: the fit's validation split of 5M rows took seconds the
    /// other way. Falls back to the generic split for a negative index.
    public static func split(users: [Int32], timestamps: [Int64], fraction: Double, minimumRows: Int = 3) -> [Bool] {
        precondition(users.count == timestamps.count)
        guard let top = users.max(), users.allSatisfy({ $0 >= 0 }) else {
            return split(users: users.map { Int($0) }, timestamps: timestamps, fraction: fraction, minimumRows: minimumRows)
        }
        let byUser = UserRows(users: users, timestamps: timestamps, userCount: Int(top) + 1)
        var held = [Bool](repeating: false, count: users.count)
        for u in 0...Int(top) {
            let rows = byUser.of(u)
            guard rows.count >= max(2, minimumRows) else { continue }
            let n = min(rows.count - 1, max(1, Int((Double(rows.count) * fraction).rounded())))
            for r in rows.suffix(n) { held[r] = true }
        }
        return held
    }
}

/// Interaction rows grouped by dense user index, each user's rows in time order (ties by row): a
/// counting sort (one pass, no array per user), then a sort of each user's rows, skipped when they
/// are already in time order (a log appended as events happen). The temporal split and the agents'
/// user histories read it.
public struct UserRows: Sendable {
    /// User u's rows are `rows[start[u] ..< start[u + 1]]`.
    public let start: [Int]
    public let rows: [Int]

    /// Rows with `excluding[row]` true are left out.
    /// - Precondition: every user index in 0 ..< `userCount`, one timestamp (and flag) per row.
    public init(users: [Int32], timestamps: [Int64], userCount: Int, excluding: [Bool]? = nil) {
        precondition(users.count == timestamps.count && users.allSatisfy { $0 >= 0 && Int($0) < userCount })
        precondition(excluding.map { $0.count == users.count } ?? true)
        var start = [Int](repeating: 0, count: userCount + 1)
        for (row, u) in users.enumerated() where !(excluding?[row] ?? false) { start[Int(u) + 1] += 1 }
        for u in 0..<userCount { start[u + 1] += start[u] }
        var next = start
        var rows = [Int](repeating: 0, count: start[userCount])
        for (row, u) in users.enumerated() where !(excluding?[row] ?? false) { rows[next[Int(u)]] = row; next[Int(u)] += 1 }
        for u in 0..<userCount {
            let range = start[u]..<start[u + 1]
            if !(range.dropFirst().allSatisfy { timestamps[rows[$0 - 1]] <= timestamps[rows[$0]] }) {
                rows[range].sort { timestamps[$0] != timestamps[$1] ? timestamps[$0] < timestamps[$1] : $0 < $1 }
            }
        }
        self.start = start
        self.rows = rows
    }

    /// User u's rows, oldest first.
    public func of(_ u: Int) -> ArraySlice<Int> { rows[start[u]..<start[u + 1]] }
}
