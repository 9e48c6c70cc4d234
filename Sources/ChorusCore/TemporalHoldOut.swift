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
}
