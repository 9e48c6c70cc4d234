#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusCollaborative

/// Each training user's items, oldest first (ties in log order), at most `limit` of the latest.
struct UserHistories: Sendable {
    let rowStart: [Int]
    let items: [Int32]

    init(rowStart: [Int], items: [Int32]) { self.rowStart = rowStart; self.items = items }

    /// From the training data: time-ordered (`UserRows`), the latest `limit` kept.
    init(_ data: TrainingData, limit: Int = .max) {
        let byUser = UserRows(users: data.users, timestamps: data.timestamps, userCount: data.userCount, excluding: data.excluded)
        var outStart = [Int](repeating: 0, count: data.userCount + 1), flat: [Int32] = []
        let bound = data.userCount.multipliedReportingOverflow(by: max(0, limit))
        flat.reserveCapacity(bound.overflow ? data.count : min(data.count, bound.partialValue))
        for u in 0..<data.userCount {
            for row in byUser.of(u).suffix(limit) { flat.append(data.items[row]) }
            outStart[u + 1] = flat.count
        }
        rowStart = outStart; items = flat
    }

    /// The same histories cut to each user's latest `limit` items.
    func latest(_ limit: Int) -> UserHistories {
        var start = [Int](repeating: 0, count: rowStart.count), flat: [Int32] = []
        for u in 0..<users {
            flat.append(contentsOf: of(u).suffix(limit))
            start[u + 1] = flat.count
        }
        return UserHistories(rowStart: start, items: flat)
    }

    var users: Int { rowStart.count - 1 }

    /// Whether a request brings any item: a known user with training items, or a request history.
    func hasItems(_ request: AgentRequest, itemCount: Int) -> Bool {
        request.user.map { Int($0) < users && !of(Int($0)).isEmpty } ?? false
            || request.history.contains { $0 >= 0 && Int($0) < itemCount }
    }

    /// A request's items, oldest first: the user's training items (when the model knows the user)
    /// then the request's own history, keeping only indices below `itemCount`.
    func items(of request: AgentRequest, itemCount: Int) -> [Int32] {
        var h: [Int32] = request.user.map { Int($0) < users ? Array(of(Int($0))) : [] } ?? []
        h += request.history.filter { $0 >= 0 && Int($0) < itemCount }
        return h
    }
    func of(_ u: Int) -> ArraySlice<Int32> { items[rowStart[u]..<rowStart[u + 1]] }
    var byteCount: Int { rowStart.count * 8 + items.count * 4 }

    func encode(into w: inout ByteWriter) {
        w.writeArray(rowStart.map { UInt64($0) }); w.writeArray(items)
    }

    static func decode(_ r: inout ByteReader, users: Int, items itemCount: Int) throws(ChorusError) -> UserHistories {
        let start = try r.readArray(UInt64.self).map { Int(truncatingIfNeeded: $0) }
        let items = try r.readArray(Int32.self)
        guard start.count == users + 1, start.first == 0, start.last == items.count,
              zip(start, start.dropFirst()).allSatisfy({ $0 <= $1 }),
              items.allSatisfy({ $0 >= 0 && Int($0) < itemCount }) else { throw .format("user histories are malformed") }
        return UserHistories(rowStart: start, items: items)
    }
}

extension ItemNeighbours.Table {
    /// Of `sources`, the one whose neighbour list gives `target` the highest similarity.
    func strongest(from sources: [Int32], to target: Int32) -> Int32? {
        var best: (Int32, Float)? = nil
        for j in sources where j >= 0 && Int(j) < items {
            for e in rowStart[Int(j)]..<rowStart[Int(j) + 1] where neighbour[e] == target {
                if similarity[e] > (best?.1 ?? 0) { best = (j, similarity[e]) }
            }
        }
        return best?.0
    }

    func encode(into w: inout ByteWriter) {
        w.write(UInt64(items))
        w.writeArray(rowStart.map { UInt64($0) }); w.writeArray(neighbour); w.writeArray(similarity)
    }

    static func decode(_ r: inout ByteReader, items: Int) throws(ChorusError) -> ItemNeighbours.Table {
        let n = Int(truncatingIfNeeded: try r.read(UInt64.self))
        guard n == items else { throw .format("neighbour table has \(n) items, the model \(items)") }
        let start = try r.readArray(UInt64.self).map { Int(truncatingIfNeeded: $0) }
        return try ItemNeighbours.Table(items: n, rowStart: start, neighbour: try r.readArray(Int32.self),
                                        similarity: try r.readArray(Float.self))
    }
}

/// Item-kNN: score(u, l) = Σ_{j ∈ history(u)} cos(j, l) over each item's top neighbours, by
/// co-occurrence in users' histories. Scores a request history for users it never saw.
public final class ItemKNNAgent: RecommenderAgent {
    public let name = "itemknn"
    public let itemVectors: FloatMatrix? = nil
    let table: ItemNeighbours.Table
    let histories: UserHistories

    init(table: ItemNeighbours.Table, histories: UserHistories) { self.table = table; self.histories = histories }

    public var modelBytes: Int { table.byteCount + histories.byteCount }

    public func canScore(_ request: AgentRequest) -> Bool {
        histories.hasItems(request, itemCount: table.items)
    }

    public func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) {
        scores.update(repeating: 0)
        if let u = request.user, Int(u) < histories.users { for j in histories.of(Int(u)) { table.accumulate(Int(j), weight: 1, into: scores) } }
        // With the stream's co-occurrences from the request's history, on the table's scale
        // (`OnlineState.Transitions`).
        let online = request.transitions.flatMap { $0.counts.count == table.items ? $0 : nil }
        for j in request.history where j >= 0 && Int(j) < table.items {
            table.accumulate(Int(j), weight: 1, into: scores)
            online?.addCooccurrences(from: j, weight: 1, into: scores)
        }
    }

    public func encode(into w: inout ByteWriter) { table.encode(into: &w); histories.encode(into: &w) }

    /// The history item that contributes most: "people who interacted with X also interacted with it".
    public func reason(_ request: AgentRequest, item: Int32) -> AgentReason? {
        guard let best = table.strongest(from: histories.items(of: request, itemCount: table.items), to: item) else { return nil }
        return AgentReason(phrase: "people who interacted with %@ also interacted with it", becauseItem: best)
    }

    public struct Factory: AgentFactory {
        public let name = "itemknn"
        public let parameters: ItemNeighbours.Parameters
        public init(parameters: ItemNeighbours.Parameters) { self.parameters = parameters }

        public func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent {
            var p = parameters
            p.threads = context.threads
            let table = try ItemNeighbours.cosine(userItems: data.userItems, parameters: p)
            _ = context.progress?(1)
            return ItemKNNAgent(table: table, histories: UserHistories(data))
        }

        public func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
            let table = try ItemNeighbours.Table.decode(&r, items: context.itemCount)
            return ItemKNNAgent(table: table, histories: try UserHistories.decode(&r, users: context.userCount, items: context.itemCount))
        }
    }
}

/// Session / next item: from the user's latest items (the request's history last), what users
/// went on to next: score(u, l) = Σ_t 2^(−age_t / 4) T(i_t, l), age_t = 0 for the newest item, over
/// the newest `recent` items, T the time-ordered transition table (`ItemNeighbours.transitions`).
public final class SessionAgent: RecommenderAgent {
    public let name = "session"
    public let itemVectors: FloatMatrix? = nil
    /// How many of the latest items a profile looks at.
    static let recent = 20
    let table: ItemNeighbours.Table
    let histories: UserHistories

    init(table: ItemNeighbours.Table, histories: UserHistories) { self.table = table; self.histories = histories }

    public var modelBytes: Int { table.byteCount + histories.byteCount }

    public func canScore(_ request: AgentRequest) -> Bool {
        histories.hasItems(request, itemCount: table.items)
    }

    public func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) {
        scores.update(repeating: 0)
        let sequence = histories.items(of: request, itemCount: table.items)
        let online = request.transitions.flatMap { $0.counts.count == table.items ? $0 : nil }
        for (age, j) in sequence.suffix(Self.recent).reversed().enumerated() {
            let w = exp2f(-Float(age) / 4)
            table.accumulate(Int(j), weight: w, into: scores)
            // The stream's transitions from j (an item of the request's history), on the table's
            // scale (`OnlineState.Transitions`).
            online?.addTransitions(from: j, weight: w, into: scores)
        }
    }

    public func encode(into w: inout ByteWriter) { table.encode(into: &w); histories.encode(into: &w) }

    /// The recent item it most often follows: "it often comes next after X".
    public func reason(_ request: AgentRequest, item: Int32) -> AgentReason? {
        let sequence = histories.items(of: request, itemCount: table.items)
        guard let best = table.strongest(from: Array(sequence.suffix(Self.recent)), to: item) else { return nil }
        return AgentReason(phrase: "it often comes next after %@", becauseItem: best)
    }

    public struct Factory: AgentFactory {
        public let name = "session"
        public let parameters: ItemNeighbours.Parameters
        public init(parameters: ItemNeighbours.Parameters) { self.parameters = parameters }

        public func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent {
            var p = parameters
            p.threads = context.threads
            let all = UserHistories(data)
            let table = try ItemNeighbours.transitions(rowStart: all.rowStart, sequence: all.items, items: data.itemCount, parameters: p)
            _ = context.progress?(1)
            return SessionAgent(table: table, histories: all.latest(SessionAgent.recent))
        }

        public func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
            let table = try ItemNeighbours.Table.decode(&r, items: context.itemCount)
            return SessionAgent(table: table, histories: try UserHistories.decode(&r, users: context.userCount, items: context.itemCount))
        }
    }
}
