#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// A trained embedding model: one row per entity and per relation, plus what scoring needs
/// (kind, dimension, γ, TransE's norm, RotatE's phase scale). Read-only after training, so it can
/// be shared by scoring threads.
public final class KnowledgeGraphModel: @unchecked Sendable {
    public let kind: KGModelKind
    /// Embedding dimension d (complex models hold 2d floats per entity row).
    public let dimension: Int
    /// The margin γ of the distance models (TransE, RotatE); unused by DistMult/ComplEx.
    public let gamma: Float
    /// TransE's distance: 1 (L1) or 2 (L2).
    public let norm: Int
    /// Half-width of the uniform initialisation, (γ + 2) / d in the RotatE authors' code; RotatE's
    /// relation rows are phases in units of it (θ = r · π / range).
    public let embeddingRange: Float
    public let entities: FloatMatrix
    public let relations: FloatMatrix

    public var entityCount: Int { entities.rows }
    public var relationCount: Int { relations.rows }
    var phaseScale: Float { Float.pi / embeddingRange }

    /// - Throws: `.invalidArgument` for shapes that do not match `kind` and `dimension`.
    public init(kind: KGModelKind, dimension: Int, gamma: Float, norm: Int, embeddingRange: Float,
                entities: FloatMatrix, relations: FloatMatrix) throws(ChorusError) {
        guard dimension > 0 else { throw .invalidArgument("the embedding dimension must be positive") }
        guard entities.cols == kind.entityWidth(dimension), relations.cols == kind.relationWidth(dimension) else {
            throw .invalidArgument("\(kind.rawValue) with dimension \(dimension) needs \(kind.entityWidth(dimension))-wide entity rows and \(kind.relationWidth(dimension))-wide relation rows, got \(entities.cols) and \(relations.cols)")
        }
        guard norm == 1 || norm == 2 else { throw .invalidArgument("the TransE norm must be 1 or 2, got \(norm)") }
        guard embeddingRange > 0, embeddingRange.isFinite, gamma.isFinite else { throw .invalidArgument("gamma and the embedding range must be finite (range > 0)") }
        self.kind = kind; self.dimension = dimension; self.gamma = gamma; self.norm = norm
        self.embeddingRange = embeddingRange; self.entities = entities; self.relations = relations
    }

    /// A copy with its own tables (keeping the best check of a training run, which goes on in the original).
    public func copy() throws(ChorusError) -> KnowledgeGraphModel {
        try KnowledgeGraphModel(kind: kind, dimension: dimension, gamma: gamma, norm: norm, embeddingRange: embeddingRange,
                                entities: try entities.copy(), relations: try relations.copy())
    }

    /// The plausibility f(h, r, t): higher is more plausible.
    /// - Throws: `.invalidArgument` for an id out of range.
    public func score(head: Int32, relation: Int32, tail: Int32) throws(ChorusError) -> Float {
        try check(entity: head); try check(entity: tail); try check(relation: relation)
        let w = entities.cols
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: w) { q in
            ScoreKernels.query(kind, anchor: entities.row(Int(head)), relation: relations.row(Int(relation)), tailSide: true,
                               d: dimension, phaseScale: phaseScale, out: q.baseAddress!)
            return ScoreKernels.score(ScoreKernels.comparison(kind, norm: norm), q: q.baseAddress!, x: entities.row(Int(tail)), w: w, gamma: gamma)
        }
    }

    /// Scores every entity as the missing tail of (head, relation, ?) — or as the missing head of
    /// (?, relation, anchor) when `predictTail` is false — into `out` (entityCount floats).
    /// - Throws: `.invalidArgument` for an id out of range or a short buffer.
    public func scoreAll(anchor: Int32, relation: Int32, predictTail: Bool, into out: UnsafeMutableBufferPointer<Float>) throws(ChorusError) {
        try check(entity: anchor); try check(relation: relation)
        guard out.count >= entityCount else { throw .invalidArgument("the score buffer holds \(out.count) floats, \(entityCount) needed") }
        withUnsafeTemporaryAllocation(of: Float.self, capacity: entities.cols) { q in
            scoreAllUnchecked(anchor: anchor, relation: relation, predictTail: predictTail, query: q.baseAddress!, into: out.baseAddress!)
        }
    }

    /// `scoreAll` without checks, with caller-provided query scratch (entity-row width).
    func scoreAllUnchecked(anchor: Int32, relation: Int32, predictTail: Bool, query q: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let w = entities.cols
        ScoreKernels.query(kind, anchor: entities.row(Int(anchor)), relation: relations.row(Int(relation)), tailSide: predictTail,
                           d: dimension, phaseScale: phaseScale, out: q)
        let cmp = ScoreKernels.comparison(kind, norm: norm)
        let base = entities.base, g = gamma
        switch cmp {
        case .dot: Kernels.rowDots(base, m: entityCount, k: w, q, into: out)
        default:
            for e in 0..<entityCount { out[e] = ScoreKernels.score(cmp, q: q, x: base + e * w, w: w, gamma: g) }
        }
    }

    /// Entity `id`'s embedding row (2d floats for complex models: real parts, then imaginary parts).
    public func entityVector(_ id: Int32) throws(ChorusError) -> [Float] {
        try check(entity: id)
        return Array(UnsafeBufferPointer(start: entities.row(Int(id)), count: entities.cols))
    }

    /// Relation `id`'s row (RotatE: d raw phase parameters; θ = value · π / embeddingRange).
    public func relationVector(_ id: Int32) throws(ChorusError) -> [Float] {
        try check(relation: id)
        return Array(UnsafeBufferPointer(start: relations.row(Int(id)), count: relations.cols))
    }

    /// Whether the triple's ids are all inside the model.
    func knows(_ t: Triple) -> Bool {
        t.head >= 0 && t.tail >= 0 && t.relation >= 0 && Int(t.head) < entityCount && Int(t.tail) < entityCount && Int(t.relation) < relationCount
    }

    func check(entity id: Int32) throws(ChorusError) {
        guard id >= 0, Int(id) < entityCount else { throw .invalidArgument("entity id \(id) is outside 0..<\(entityCount)") }
    }
    func check(relation id: Int32) throws(ChorusError) {
        guard id >= 0, Int(id) < relationCount else { throw .invalidArgument("relation id \(id) is outside 0..<\(relationCount)") }
    }
}

extension KnowledgeGraphModel {
    static let magic: UInt32 = 0x4B47_454D   // "MEGK" little-endian: knowledge-graph embedding model
    static let layoutVersion: UInt32 = 1

    /// Writes the model (header, then both tables) for a snapshot section.
    public func encode(into w: inout ByteWriter) {
        w.write(Self.magic); w.write(Self.layoutVersion)
        w.write(kind.code); w.write(UInt8(norm))
        w.write(UInt64(dimension)); w.write(UInt64(entityCount)); w.write(UInt64(relationCount))
        w.write(gamma); w.write(embeddingRange)
        w.writeRaw(UnsafeBufferPointer(entities.buffer)); w.writeRaw(UnsafeBufferPointer(relations.buffer))
    }

    /// Reads what `encode` wrote, verifying the magic, the model kind, every size against the
    /// others and that every value is finite.
    /// - Throws: `.format` for a corrupted or truncated payload, `.unsupportedVersion` for a newer layout.
    public static func decode(from r: inout ByteReader) throws(ChorusError) -> KnowledgeGraphModel {
        guard try r.read(UInt32.self) == magic else { throw .format("knowledge-graph model: bad magic (not a model payload)") }
        let version = try r.read(UInt32.self)
        guard version == layoutVersion else { throw .unsupportedVersion("knowledge-graph model layout \(version) is not supported (this build reads \(layoutVersion))") }
        let code = try r.read(UInt8.self)
        guard let kind = KGModelKind(code: code) else { throw .format("knowledge-graph model: unknown model kind code \(code)") }
        let norm = Int(try r.read(UInt8.self))
        let d = try r.read(UInt64.self), ne = try r.read(UInt64.self), nr = try r.read(UInt64.self)
        // Bounds first: the matrices' own reads then check the payload length before allocating.
        guard d > 0, d <= 1 << 16, ne > 0, nr > 0, ne <= UInt64(Int32.max), nr <= UInt64(Int32.max) else {
            throw .format("knowledge-graph model: implausible sizes (dimension \(d), \(ne) entities, \(nr) relations) for a \(r.remaining)-byte payload")
        }
        let gamma = try r.readFloat(), range = try r.readFloat()
        let dim = Int(d)
        let ent = try r.readMatrix(rows: Int(ne), cols: kind.entityWidth(dim))
        let rel = try r.readMatrix(rows: Int(nr), cols: kind.relationWidth(dim))
        for v in ent.buffer where !v.isFinite { throw .format("knowledge-graph model: a non-finite entity value") }
        for v in rel.buffer where !v.isFinite { throw .format("knowledge-graph model: a non-finite relation value") }
        do {
            return try KnowledgeGraphModel(kind: kind, dimension: dim, gamma: gamma, norm: norm, embeddingRange: range, entities: ent, relations: rel)
        } catch {
            throw .format("knowledge-graph model: \(error.message)")
        }
    }

    /// The encoded bytes as one array.
    public func encoded() -> [UInt8] { var w = ByteWriter(); encode(into: &w); return w.bytes }

    /// Decodes a whole array, requiring it to end exactly where the model does.
    public static func decode(_ bytes: [UInt8]) throws(ChorusError) -> KnowledgeGraphModel {
        var r = ByteReader(bytes, context: "knowledge-graph model")
        let m = try decode(from: &r)
        guard r.isAtEnd else { throw .format("knowledge-graph model: \(r.remaining) unexpected bytes after the model") }
        return m
    }
}
