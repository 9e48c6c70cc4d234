#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// Facts about items the host gives (or the catalogue holds): (item, relation, entity), such as
/// (movie 1, genre, Animation), (movie 1, decade, 1990s), (movie 1, director, John Lasseter).
/// Kept as strings, deduplicated, in snapshots ("FACT").
public struct ItemFacts: Sendable, Equatable {
    public struct Fact: Sendable, Hashable {
        public var item: Int64
        public var relation: String
        public var entity: String
    }
    public private(set) var facts: [Fact] = []
    private var seen = Set<Fact>()

    public init() {}

    public var isEmpty: Bool { facts.isEmpty }
    public var count: Int { facts.count }

    /// Adds facts; repeats of a known fact are skipped. Returns how many were new.
    /// - Throws: `.invalidArgument` for an empty or over-long relation or entity (`Limits`);
    ///   nothing is added.
    @discardableResult
    public mutating func add(items: [Int64], relations: [String], entities: [String]) throws(ChorusError) -> Int {
        guard items.count == relations.count, items.count == entities.count else {
            throw .invalidArgument("\(items.count) items, \(relations.count) relations and \(entities.count) entities differ in length")
        }
        for (i, (r, e)) in zip(relations, entities).enumerated() {
            try Limits.checkName(r, "the relation of fact \(i) (item \(items[i]))")
            try Limits.checkName(e, "the entity of fact \(i) (item \(items[i]))")
        }
        var added = 0
        for i in items.indices {
            let f = Fact(item: items[i], relation: relations[i], entity: entities[i])
            if seen.insert(f).inserted { facts.append(f); added += 1 }
        }
        return added
    }

    func encode(into w: inout ByteWriter) {
        w.write(UInt64(facts.count))
        for f in facts { w.write(f.item); w.write(f.relation); w.write(f.entity) }
    }

    static func decode(_ r: inout ByteReader) throws(ChorusError) -> ItemFacts {
        var out = ItemFacts()
        let n = try r.read(UInt64.self)
        guard n <= UInt64(Int32.max) else { throw .format("fact count \(n) is implausible") }
        var items: [Int64] = [], relations: [String] = [], entities: [String] = []
        for _ in 0..<Int(n) { items.append(try r.read(Int64.self)); relations.append(try r.readString(maxBytes: Limits.maxNameBytes)); entities.append(try r.readString(maxBytes: Limits.maxNameBytes)) }
        do { try out.add(items: items, relations: relations, entities: entities) } catch { throw .format("snapshot facts: \(error.message)") }
        guard out.count == Int(n) else { throw .format("snapshot facts repeat") }
        return out
    }

    /// The facts of `index`'s items as an item -> entity table (entity = "relation: entity").
    func graph(for index: IdIndex) -> KnowledgeGraphTable? {
        var entityIds: [String: Int32] = [:], names: [String] = []
        var rows = [[Int32]](repeating: [], count: index.count)
        for f in facts {
            guard let i = index.index(of: f.item) else { continue }
            let key = f.relation + ": " + f.entity
            let e: Int32
            if let known = entityIds[key] { e = known } else { e = Int32(names.count); entityIds[key] = e; names.append(key) }
            rows[Int(i)].append(e)
        }
        guard !names.isEmpty else { return nil }
        var start = [0], flat: [Int32] = []
        for r in rows { flat += r; start.append(flat.count) }
        return KnowledgeGraphTable(itemStart: start, entities: flat, names: names)
    }
}

/// Items -> entities (CSR) with entity names, and each entity's weight: its inverse document
/// frequency log(1 + items / items with the entity), so "Drama" counts less than a director.
struct KnowledgeGraphTable: Sendable {
    let itemStart: [Int]
    let entities: [Int32]
    let names: [String]
    let weights: [Float]

    init(itemStart: [Int], entities: [Int32], names: [String]) {
        self.itemStart = itemStart; self.entities = entities; self.names = names
        var df = [Int](repeating: 0, count: names.count)
        for e in entities { df[Int(e)] += 1 }
        let items = Float(max(1, itemStart.count - 1))
        weights = df.map { logf(1 + items / Float(max(1, $0))) }
    }

    var items: Int { itemStart.count - 1 }
    func of(_ i: Int) -> ArraySlice<Int32> { entities[itemStart[i]..<itemStart[i + 1]] }
    var byteCount: Int { itemStart.count * 8 + entities.count * 4 + weights.count * 4 + names.reduce(0) { $0 + $1.utf8.count } }

    func encode(into w: inout ByteWriter) {
        w.writeArray(itemStart.map { UInt64($0) }); w.writeArray(entities)
        w.write(UInt64(names.count)); for n in names { w.write(n) }
    }

    static func decode(_ r: inout ByteReader, items: Int) throws(ChorusError) -> KnowledgeGraphTable {
        let start = try r.readArray(UInt64.self).map { Int(truncatingIfNeeded: $0) }
        let entities = try r.readArray(Int32.self)
        let n = try r.read(UInt64.self)
        guard n <= UInt64(Int32.max) else { throw .format("entity count is implausible") }
        var names: [String] = []
        for _ in 0..<Int(n) { names.append(try r.readString()) }
        guard start.count == items + 1, start.first == 0, start.last == entities.count,
              zip(start, start.dropFirst()).allSatisfy({ $0 <= $1 }),
              entities.allSatisfy({ $0 >= 0 && Int($0) < names.count }) else { throw .format("the item knowledge graph is malformed") }
        return KnowledgeGraphTable(itemStart: start, entities: entities, names: names)
    }
}

/// Recommends through the item knowledge graph: user -> items they interacted with -> the
/// entities those items have -> other items with the same entities.
/// score(u, i) = Σ_{e ∈ E(i)} w_e · c_u(e) / sqrt(|E(i)|), with c_u(e) the share of u's items that
/// have entity e and w_e its inverse document frequency. Its reason is a path: "it shares
/// director: John Lasseter with X", X an item of the user's.
public final class KnowledgeAgent: RecommenderAgent {
    public let name = "kg"
    public let itemVectors: FloatMatrix? = nil
    let graph: KnowledgeGraphTable
    let histories: UserHistories

    init(graph: KnowledgeGraphTable, histories: UserHistories) { self.graph = graph; self.histories = histories }

    public var modelBytes: Int { graph.byteCount + histories.byteCount }

    private func history(_ request: AgentRequest) -> [Int32] { histories.items(of: request, itemCount: graph.items) }

    public func canScore(_ request: AgentRequest) -> Bool { history(request).contains { !graph.of(Int($0)).isEmpty } }

    /// c_u(e) over the request's history.
    private func profile(_ items: [Int32]) -> [Int32: Float] {
        var c: [Int32: Float] = [:]
        let share = 1 / Float(max(1, items.count))
        for j in items { for e in graph.of(Int(j)) { c[e, default: 0] += share } }
        return c
    }

    public func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) {
        scores.update(repeating: 0)
        let c = profile(history(request))
        guard !c.isEmpty else { return }
        // Dense profile for the catalogue pass.
        var dense = [Float](repeating: 0, count: graph.names.count)
        for (e, v) in c { dense[Int(e)] = v * graph.weights[Int(e)] }
        for i in 0..<min(graph.items, scores.count) {
            let row = graph.of(i)
            guard !row.isEmpty else { continue }
            var s: Float = 0
            for e in row { s += dense[Int(e)] }
            scores[i] = s / Float(row.count).squareRoot()
        }
    }

    /// The strongest path: the item's entity with the largest w_e c_u(e), through the most recent
    /// history item that has it.
    public func reason(_ request: AgentRequest, item: Int32) -> AgentReason? {
        let h = history(request)
        let c = profile(h)
        guard Int(item) < graph.items else { return nil }
        var best: (Int32, Float)? = nil
        for e in graph.of(Int(item)) {
            let v = (c[e] ?? 0) * graph.weights[Int(e)]
            if v > (best?.1 ?? 0) { best = (e, v) }
        }
        guard let (e, _) = best, let via = h.last(where: { $0 != item && graph.of(Int($0)).contains(e) }) else { return nil }
        return AgentReason(phrase: "it shares \(graph.names[Int(e)]) with %@", becauseItem: via)
    }

    public func encode(into w: inout ByteWriter) { graph.encode(into: &w); histories.encode(into: &w) }

    public struct Factory: AgentFactory {
        public let name = "kg"
        let graph: KnowledgeGraphTable?
        init(graph: KnowledgeGraphTable?) { self.graph = graph }

        public func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent {
            guard let graph, graph.items == data.itemCount else { throw .internalError("the knowledge-graph agent needs one row per item") }
            _ = context.progress?(1)
            return KnowledgeAgent(graph: graph, histories: UserHistories(data))
        }

        public func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
            let graph = try KnowledgeGraphTable.decode(&r, items: context.itemCount)
            return KnowledgeAgent(graph: graph, histories: try UserHistories.decode(&r, users: context.userCount, items: context.itemCount))
        }
    }
}
