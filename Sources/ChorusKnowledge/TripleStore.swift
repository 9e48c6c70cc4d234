import ChorusCore

/// One (head, relation, tail) fact as dense ids.
public struct Triple: Hashable, Sendable {
    public var head: Int32
    public var relation: Int32
    public var tail: Int32
    public init(head: Int32, relation: Int32, tail: Int32) { self.head = head; self.relation = relation; self.tail = tail }

    /// The (entity, relation) key of the evaluation filter maps.
    @inline(__always) static func pairKey(_ entity: Int32, _ relation: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: entity)) << 32 | UInt64(UInt32(bitPattern: relation))
    }
}

/// A knowledge graph's training facts: entity and relation names mapped to dense ids, the
/// distinct triples in insertion order. Duplicates are counted and dropped, never an error.
public struct TripleStore: Sendable {
    public private(set) var entities = NameIndex()
    public private(set) var relations = NameIndex()
    public private(set) var heads: [Int32] = []
    public private(set) var relationIds: [Int32] = []
    public private(set) var tails: [Int32] = []
    /// Triples offered again after their first insertion (and dropped).
    public private(set) var duplicatesDropped = 0
    private var seen: Set<Triple> = []

    public init() {}

    public var count: Int { heads.count }
    public var entityCount: Int { entities.count }
    public var relationCount: Int { relations.count }

    public func triple(_ i: Int) -> Triple { Triple(head: heads[i], relation: relationIds[i], tail: tails[i]) }

    /// Adds one fact by names (the C ABI's entry point).
    /// - Returns: false when the triple was already present (counted in `duplicatesDropped`).
    /// - Throws: `.invalidArgument` for an empty or over-long name (`Limits.maxNameBytes`).
    @discardableResult
    public mutating func add(head: String, relation: String, tail: String) throws(ChorusError) -> Bool {
        try Limits.checkName(head, "the head of a triple")
        try Limits.checkName(relation, "the relation of a triple")
        try Limits.checkName(tail, "the tail of a triple")
        guard entities.count < Int(Int32.max) - 2, relations.count < Int(Int32.max) - 1 else {
            throw .invalidArgument("too many entities or relations for 32-bit ids")
        }
        let t = Triple(head: entities.intern(head), relation: relations.intern(relation), tail: entities.intern(tail))
        return insert(t)
    }

    /// Adds one fact by ids already in this store.
    /// - Throws: `.invalidArgument` for an id out of range.
    @discardableResult
    public mutating func add(_ t: Triple) throws(ChorusError) -> Bool {
        guard t.head >= 0, Int(t.head) < entityCount, t.tail >= 0, Int(t.tail) < entityCount,
              t.relation >= 0, Int(t.relation) < relationCount else {
            throw .invalidArgument("triple (\(t.head), \(t.relation), \(t.tail)) has an id outside this store (\(entityCount) entities, \(relationCount) relations)")
        }
        return insert(t)
    }

    private mutating func insert(_ t: Triple) -> Bool {
        if !seen.insert(t).inserted { duplicatesDropped += 1; return false }
        heads.append(t.head); relationIds.append(t.relation); tails.append(t.tail)
        return true
    }

    /// Bernoulli corruption probabilities (Wang et al. 2014, TransH): for each relation,
    /// P(corrupt the head) = tph / (tph + hpt), where tph is the mean number of tails per distinct
    /// head and hpt the mean number of heads per distinct tail.
    public func headCorruptionProbabilities() -> [Float] {
        var tails = [Set<Int32>](repeating: [], count: relationCount)   // distinct heads per relation
        var heads = [Set<Int32>](repeating: [], count: relationCount)   // distinct tails per relation
        var n = [Int](repeating: 0, count: relationCount)
        for i in 0..<count {
            let r = Int(relationIds[i])
            tails[r].insert(self.heads[i]); heads[r].insert(self.tails[i]); n[r] += 1
        }
        return (0..<relationCount).map { r in
            guard n[r] > 0 else { return 0.5 }
            let tph = Float(n[r]) / Float(tails[r].count), hpt = Float(n[r]) / Float(heads[r].count)
            return tph / (tph + hpt)
        }
    }
}

extension TripleStore {
    /// Writes names and triples (the duplicate count too) for an engine snapshot.
    public func encode(into w: inout ByteWriter) {
        w.write(UInt32(1))  // layout version of this section
        w.write(UInt64(entities.count)); for n in entities.names { w.write(n) }
        w.write(UInt64(relations.count)); for n in relations.names { w.write(n) }
        w.writeArray(heads); w.writeArray(relationIds); w.writeArray(tails)
        w.write(UInt64(duplicatesDropped))
    }

    /// Reads what `encode` wrote, checking every id against the name tables.
    /// - Throws: `.format` for a truncated or inconsistent payload, `.unsupportedVersion` for a newer layout.
    public static func decode(from r: inout ByteReader) throws(ChorusError) -> TripleStore {
        let version = try r.read(UInt32.self)
        guard version == 1 else { throw .unsupportedVersion("triple store layout \(version) is not supported (this build reads 1)") }
        func names(_ what: String, _ r: inout ByteReader) throws(ChorusError) -> NameIndex {
            let n = try r.read(UInt64.self)
            guard n <= UInt64(r.remaining) else { throw .format("triple store: \(n) \(what) names is implausible for the payload size") }
            var list: [String] = []; list.reserveCapacity(Int(n))
            for _ in 0..<Int(n) { list.append(try r.readString(maxBytes: Limits.maxNameBytes)) }
            return try NameIndex(names: list, context: "triple store \(what) names")
        }
        var s = TripleStore()
        s.entities = try names("entity", &r)
        s.relations = try names("relation", &r)
        let h = try r.readArray(Int32.self), rel = try r.readArray(Int32.self), t = try r.readArray(Int32.self)
        guard h.count == rel.count, h.count == t.count else { throw .format("triple store: column lengths differ (\(h.count), \(rel.count), \(t.count))") }
        // Compared as stored (any UInt64) before it becomes an Int, with room left to count on.
        let dropped = try r.read(UInt64.self)
        guard dropped < 1 << 62 else { throw .format("triple store: \(dropped) dropped duplicates is implausible") }
        s.duplicatesDropped = Int(dropped)
        for i in 0..<h.count {
            let tr = Triple(head: h[i], relation: rel[i], tail: t[i])
            guard tr.head >= 0, Int(tr.head) < s.entityCount, tr.tail >= 0, Int(tr.tail) < s.entityCount,
                  tr.relation >= 0, Int(tr.relation) < s.relationCount else {
                throw .format("triple store: triple \(i) has an id outside the name tables")
            }
            guard s.seen.insert(tr).inserted else { throw .format("triple store: triple \(i) is stored twice") }
        }
        s.heads = h; s.relationIds = rel; s.tails = t
        return s
    }
}
