import ChorusCore
import CKernels

/// Recommends by what items say about themselves: score(u, i) = cos(profile(u), text(i)), where
/// text(i) is the encoder vector of the item's text and profile(u) is the direction of the
/// weighted sum of the text vectors of the items u interacted with, plus, when the host gave one,
/// the vector of u's profile text (each part L2-normalised first, so neither drowns the other).
///
/// It needs no interactions for an item, only its text: a new item is scored from the first fit
/// that sees its text. It scores a user the model has never seen from a request history or a
/// profile text alone.
public final class ContentAgent: RecommenderAgent {
    public let name = "content"
    public var role: AgentRole { .itemDescriptions }
    /// items x dimension, L2-normalised rows; a zero row for an item without text.
    let vectors: FloatMatrix
    /// users x dimension: each training user's history direction (zero row without history).
    let profiles: FloatMatrix
    /// Items that have a text (the others get the mean score, so content neither favours nor
    /// buries what it cannot see).
    let textItems: [Int32]
    /// The item vectors again in half precision, for the catalogue scans of scoring: they are
    /// bound by memory traffic (384 floats per item), which half precision halves; cosines change
    /// by < 1e-3.
    let half: [UInt16]

    init(vectors: FloatMatrix, profiles: FloatMatrix) {
        self.vectors = vectors
        self.profiles = profiles
        half = (0..<vectors.count).map { Float16(vectors.base[$0]).bitPattern }
        var withText: [Int32] = []
        for i in 0..<vectors.rows {
            let r = vectors.row(i)
            if (0..<vectors.cols).contains(where: { r[$0] != 0 }) { withText.append(Int32(i)) }
        }
        textItems = withText
    }

    public var dimension: Int { vectors.cols }
    public var itemVectors: FloatMatrix? { vectors }
    public var modelBytes: Int { vectors.byteCount + profiles.byteCount + half.count * 2 }

    /// scores[i] = text(i) · q over the catalogue (half-precision scan).
    func scan(_ q: UnsafePointer<Float>, into scores: UnsafeMutablePointer<Float>) {
        half.withUnsafeBufferPointer { ck_row_dots_f16($0.baseAddress!, vectors.rows, vectors.cols, q, scores) }
    }

    private func hasProfile(_ u: Int32?) -> Bool {
        guard let u, Int(u) < profiles.rows else { return false }
        let r = profiles.row(Int(u))
        return (0..<profiles.cols).contains { r[$0] != 0 }
    }

    public func canScore(_ request: AgentRequest) -> Bool {
        !textItems.isEmpty && (hasProfile(request.user) || request.profile != nil
            || request.history.contains { Int($0) < vectors.rows && Int($0) >= 0 })
    }

    /// The request's profile direction into `q` (dimension floats); false when there is none.
    func profile(_ request: AgentRequest, into q: UnsafeMutablePointer<Float>) -> Bool {
        let d = dimension
        q.update(repeating: 0, count: d)
        var parts = 0
        if let u = request.user, hasProfile(u) { Kernels.axpy(1, profiles.row(Int(u)), q, d); parts += 1 }
        if !request.history.isEmpty {
            let h = UnsafeMutablePointer<Float>.allocate(capacity: d)
            defer { h.deallocate() }
            h.update(repeating: 0, count: d)
            for i in request.history where i >= 0 && Int(i) < vectors.rows { Kernels.axpy(1, vectors.row(Int(i)), h, d) }
            if ContentAgent.normalize(h, d) { Kernels.axpy(1, h, q, d); parts += 1 }
        }
        if let p = request.profile, p.count == d { Kernels.axpy(1, p.baseAddress!, q, d); parts += 1 }
        return parts > 0 && ContentAgent.normalize(q, d)
    }

    public func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) {
        let d = dimension
        let q = UnsafeMutablePointer<Float>.allocate(capacity: d)
        defer { q.deallocate() }
        guard !textItems.isEmpty, profile(request, into: q) else { scores.update(repeating: 0); return }
        scan(q, into: scores.baseAddress!)
        fillItemsWithoutText(scores)
    }

    public var scoresInBatches: Bool { true }

    /// Each request's profile, then one pass over the half-precision item vectors for the batch
    /// (`Kernels.rowDotsF16Batch`): bit for bit `score` per request.
    public func scoreBatch(_ requests: [AgentRequest], into rows: [UnsafeMutablePointer<Float>], itemCount: Int) {
        let d = dimension
        let profiles = UnsafeMutablePointer<Float>.allocate(capacity: max(1, requests.count * d))
        defer { profiles.deallocate() }
        var xs: [UnsafePointer<Float>] = [], ys: [UnsafeMutablePointer<Float>] = []
        for (r, request) in requests.enumerated() {
            let q = profiles + r * d
            if !textItems.isEmpty, profile(request, into: q) { xs.append(q); ys.append(rows[r]) }
            else { rows[r].update(repeating: 0, count: itemCount) }
        }
        half.withUnsafeBufferPointer { Kernels.rowDotsF16Batch($0.baseAddress!, m: vectors.rows, k: d, xs, into: ys) }
        for y in ys { fillItemsWithoutText(UnsafeMutableBufferPointer(start: y, count: itemCount)) }
    }

    /// The history item whose text is closest: "its description is close to X's" (the engine asks
    /// with the user's whole history in `request.history`).
    public func reason(_ request: AgentRequest, item: Int32) -> AgentReason? {
        guard Int(item) < vectors.rows else { return nil }
        let d = dimension
        var best: (Int32, Float)? = nil
        for j in request.history where j != item && j >= 0 && Int(j) < vectors.rows {
            let s = Kernels.dot(vectors.row(Int(j)), vectors.row(Int(item)), d)
            if s > (best?.1 ?? 0.3) { best = (j, s) }
        }
        if let best { return AgentReason(phrase: "its description is close to that of %@", becauseItem: best.0) }
        return request.profile != nil ? AgentReason(phrase: "its description matches your profile") : nil
    }

    /// Gives items without a text the mean score of those with one (content can neither favour
    /// nor bury what it cannot see).
    func fillItemsWithoutText(_ scores: UnsafeMutableBufferPointer<Float>) {
        Self.fillUnjudged(scores, judged: textItems, items: vectors.rows)
    }

    /// Gives the items outside `judged` (ascending item indices) the mean score of those inside:
    /// for agents that see only some items (those with a text, those in the knowledge graph).
    static func fillUnjudged(_ scores: UnsafeMutableBufferPointer<Float>, judged: [Int32], items: Int) {
        let n = min(items, scores.count)
        guard !judged.isEmpty, judged.count < n else { return }
        var sum: Float = 0
        for i in judged { sum += scores[Int(i)] }
        let mean = sum / Float(judged.count)
        var next = 0
        for i in 0..<n {
            if next < judged.count && Int(judged[next]) == i { next += 1 } else { scores[i] = mean }
        }
    }

    /// Scales `v` to unit length; false (and `v` untouched) for a zero vector.
    static func normalize(_ v: UnsafeMutablePointer<Float>, _ d: Int) -> Bool {
        let n = Kernels.dot(v, v, d).squareRoot()
        guard n > 0, n.isFinite else { return false }
        let inv = 1 / n
        for j in 0..<d { v[j] *= inv }
        return true
    }

    public func encode(into w: inout ByteWriter) {
        w.write(UInt32(dimension))
        w.writeRaw(UnsafeBufferPointer(vectors.buffer))
        w.writeRaw(UnsafeBufferPointer(profiles.buffer))
    }

    public struct Factory: AgentFactory {
        public let name = "content"
        /// The text vectors of the fit's items (rows = item indices); nil when only decoding.
        let itemVectors: FloatMatrix?
        public init(itemVectors: FloatMatrix?) { self.itemVectors = itemVectors }

        /// Profiles: for each user, the direction of Σ w_ui text(i) over the training interactions.
        public func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent {
            guard let itemVectors, itemVectors.rows == data.itemCount else {
                throw .internalError("the content agent needs one text vector row per item")
            }
            let d = itemVectors.cols
            let profiles = try FloatMatrix(rows: data.userCount, cols: d)
            let m = data.userItems
            let box = SendableBox((profiles, itemVectors))
            Parallel.forEachChunk(count: data.userCount, threads: context.threads) { _, range in
                let (profiles, vectors) = box.value
                for u in range {
                    let p = profiles.row(u)
                    // Only the direction counts: weights relative to the row's largest keep the sum
                    // finite whatever the weights' size.
                    var largest: Float = 0
                    for j in m.rowStart[u]..<m.rowStart[u + 1] { largest = max(largest, m.values[j]) }
                    for j in m.rowStart[u]..<m.rowStart[u + 1] { Kernels.axpy(m.values[j] / largest, vectors.row(Int(m.colIndex[j])), p, d) }
                    if !ContentAgent.normalize(p, d) { p.update(repeating: 0, count: d) }
                }
            }
            _ = context.progress?(1)
            return ContentAgent(vectors: itemVectors, profiles: profiles)
        }

        public func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
            let d = Int(try r.read(UInt32.self))
            guard d >= 1, d <= 65_536 else { throw .format("content vector dimension \(d) is implausible") }
            let v = try r.readMatrix(rows: context.itemCount, cols: d)
            let p = try r.readMatrix(rows: context.userCount, cols: d)
            for m in [v, p] { for j in 0..<m.count where !m.base[j].isFinite { throw .format("content vectors contain a non-finite value") } }
            return ContentAgent(vectors: v, profiles: p)
        }
    }
}

/// Natural-language requests: score(i) = cos(query, text(i)) over the same item text vectors as
/// the content agent (shared, not copied). It takes part only in requests that carry a query; the
/// coordinator mixes its scores with the user's personal ranking by a weight fitted on validation
/// pseudo-queries (see `Trainer.fitQueryWeight`).
public final class QueryAgent: RecommenderAgent {
    public let name = "query"
    public var role: AgentRole { .query }
    public let itemVectors: FloatMatrix? = nil
    let content: ContentAgent

    init(content: ContentAgent) { self.content = content }

    /// The query agent of `agents`: built on their content agent, nil when there is none.
    static func derived(from agents: [RecommenderAgent]) -> QueryAgent? {
        (agents.last { $0.role.contains(.itemDescriptions) } as? ContentAgent).map(QueryAgent.init)
    }

    public var modelBytes: Int { 0 }

    public func canScore(_ request: AgentRequest) -> Bool {
        request.query?.count == content.dimension && !content.textItems.isEmpty
    }

    public func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) {
        guard canScore(request), let q = request.query else { scores.update(repeating: 0); return }
        let c = content
        c.scan(q.baseAddress!, into: scores.baseAddress!)
        c.fillItemsWithoutText(scores)
    }

    public func reason(_ request: AgentRequest, item: Int32) -> AgentReason? {
        canScore(request) ? AgentReason(phrase: "its description matches your request") : nil
    }

    /// Nothing of its own: it reads the content agent's vectors.
    public func encode(into w: inout ByteWriter) {}

    /// Builds on the content agent fitted just before it (the factories keep that order).
    public struct Factory: AgentFactory {
        public let name = "query"
        public init() {}

        public func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent {
            throw .internalError("the query agent is built from the content agent, not fitted")
        }

        public func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
            guard let content = context.previous.last(where: { $0.role.contains(.itemDescriptions) }) as? ContentAgent else {
                throw .format("snapshot has a query agent but no content agent before it")
            }
            return QueryAgent(content: content)
        }
    }
}
