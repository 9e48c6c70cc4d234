import ChorusCore
import ChorusKnowledge
import CKernels

/// Recommends through the trained knowledge-graph embeddings of items (present once the host has
/// trained the engine's graph): each item that is an entity of the engine's knowledge graph
/// ("item:<id>", see `Engine.knowledgeGraph`) has its
/// embedding, scaled to unit length; a request's profile is the direction of the mean embedding of
/// its items, and score(i) = cos(profile, e_i). Where the graph agent ("kg") counts shared facts,
/// this one generalises through what the embedding model learned: items whose facts are related,
/// not only equal, come out close, and an item with facts but no interaction yet is scored too.
public final class KnowledgeEmbeddingAgent: RecommenderAgent {
    public let name = "kge"
    public let itemVectors: FloatMatrix? = nil
    /// Unit embedding per item index; zero rows for items the graph does not hold.
    let vectors: FloatMatrix
    /// Item indices with an embedding, ascending, and the same as a flag per item.
    let embedded: [Int32]
    private let hasEmbedding: [Bool]
    let histories: UserHistories

    init(vectors: FloatMatrix, histories: UserHistories) {
        self.vectors = vectors; self.histories = histories
        let flags = (0..<vectors.rows).map { i in (0..<vectors.cols).contains { vectors.row(i)[$0] != 0 } }
        hasEmbedding = flags
        embedded = flags.indices.filter { flags[$0] }.map { Int32($0) }
    }

    public var modelBytes: Int { vectors.byteCount + histories.byteCount + embedded.count * 4 + hasEmbedding.count }

    private func embeddedHistory(_ request: AgentRequest) -> [Int32] {
        histories.items(of: request, itemCount: vectors.rows).filter(hasVector)
    }

    private func hasVector(_ i: Int32) -> Bool { hasEmbedding[Int(i)] }

    public func canScore(_ request: AgentRequest) -> Bool { !embedded.isEmpty && !embeddedHistory(request).isEmpty }

    public func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) {
        let d = vectors.cols
        var q = [Float](repeating: 0, count: d)
        let items = embeddedHistory(request)
        guard !items.isEmpty else { scores.update(repeating: 0); return }
        q.withUnsafeMutableBufferPointer { qb in
            for i in items { Kernels.axpy(1, vectors.row(Int(i)), qb.baseAddress!, d) }
            if !ContentAgent.normalize(qb.baseAddress!, d) { qb.update(repeating: 0) }
            let n = min(scores.count, vectors.rows)
            ck_row_dots(vectors.base, n, d, qb.baseAddress!, scores.baseAddress!)
        }
        // Items outside the graph get the mean score: this agent cannot judge them.
        ContentAgent.fillUnjudged(scores, judged: embedded, items: vectors.rows)
    }

    /// The request's item whose embedding is closest.
    public func reason(_ request: AgentRequest, item: Int32) -> AgentReason? {
        guard Int(item) < vectors.rows, hasVector(item) else { return nil }
        var best: (Int32, Float)? = nil
        for j in embeddedHistory(request) where j != item {
            let s = Kernels.dot(vectors.row(Int(j)), vectors.row(Int(item)), vectors.cols)
            if s > (best?.1 ?? 0.5) { best = (j, s) }
        }
        guard let best else { return nil }
        return AgentReason(phrase: "the knowledge graph places it close to %@", becauseItem: best.0)
    }

    public func encode(into w: inout ByteWriter) {
        w.write(UInt32(vectors.cols))
        w.writeRaw(UnsafeBufferPointer(vectors.buffer))
        histories.encode(into: &w)
    }

    /// The entity name of an item in the engine's knowledge graph.
    public static func entityName(item id: Int64) -> String { "item:\(id)" }

    /// Unit embeddings of `items` from a trained graph; nil when none of them is an entity.
    static func itemVectors(_ graph: KnowledgeGraph, items: IdIndex) throws(ChorusError) -> FloatMatrix? {
        guard let (store, model) = graph.trained else { return nil }
        let d = model.entities.cols
        let m = try FloatMatrix(rows: items.count, cols: d)
        var found = 0
        for i in 0..<items.count {
            guard let e = store.entities.id(of: entityName(item: items.ids[i])), Int(e) < model.entityCount else { continue }
            let row = m.row(i)
            let src = model.entities.row(Int(e))
            for j in 0..<d { row[j] = src[j] }
            if ContentAgent.normalize(row, d) { found += 1 } else { row.update(repeating: 0, count: d) }
        }
        return found > 0 ? m : nil
    }

    public struct Factory: AgentFactory {
        public let name = "kge"
        let vectors: FloatMatrix?
        init(vectors: FloatMatrix?) { self.vectors = vectors }

        public func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent {
            guard let vectors, vectors.rows == data.itemCount else { throw .internalError("the knowledge-graph embedding agent needs one row per item") }
            _ = context.progress?(1)
            return KnowledgeEmbeddingAgent(vectors: vectors, histories: UserHistories(data))
        }

        public func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
            let d = Int(try r.read(UInt32.self))
            guard d >= 1, d <= 65_536 else { throw .format("knowledge-graph embedding dimension \(d) is implausible") }
            let v = try r.readMatrix(rows: context.itemCount, cols: d)
            for j in 0..<v.count where !v.base[j].isFinite { throw .format("knowledge-graph item embeddings contain a non-finite value") }
            return KnowledgeEmbeddingAgent(vectors: v, histories: try UserHistories.decode(&r, users: context.userCount, items: context.itemCount))
        }
    }
}
