#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// Recommends what many users interacted with recently: each interaction counts its weight times
/// 2^(−age / halfLife), age measured from the newest interaction in the data. Scores are
/// log(1 + decayed count), so the coordinator's normalisation is not dominated by a few hits.
/// It scores every user the same way, so it is also the fallback for users with no history.
public final class PopularityAgent: RecommenderAgent {
    public let name = "popularity"
    public var role: AgentRole { .fallback }
    public let itemVectors: FloatMatrix? = nil
    let itemScores: FloatMatrix

    init(itemScores: FloatMatrix) { self.itemScores = itemScores }

    public var modelBytes: Int { itemScores.byteCount }

    public func canScore(_ request: AgentRequest) -> Bool { true }

    public func score(_ request: AgentRequest, into scores: UnsafeMutableBufferPointer<Float>) {
        if let online = request.popularity, online.count == itemScores.count {
            online.withUnsafeBufferPointer { scores.baseAddress!.update(from: $0.baseAddress!, count: min(scores.count, $0.count)) }
            return
        }
        scores.baseAddress!.update(from: itemScores.base, count: min(scores.count, itemScores.count))
    }

    public func encode(into w: inout ByteWriter) { w.writeRaw(UnsafeBufferPointer(itemScores.buffer)) }

    public func reason(_ request: AgentRequest, item: Int32) -> AgentReason? {
        AgentReason(phrase: "it is popular with everyone lately")
    }

    /// The factory; `halfLifeSeconds <= 0` means no decay.
    public struct Factory: AgentFactory {
        public let name = "popularity"
        public let halfLifeSeconds: Int64
        public init(halfLifeSeconds: Int64) { self.halfLifeSeconds = halfLifeSeconds }

        public func fit(_ data: TrainingData, _ context: FitContext) throws(ChorusError) -> RecommenderAgent {
            let scores = try FloatMatrix(rows: 1, cols: data.itemCount)
            // The newest timestamp matters only with a decay: no pass over the rows for it otherwise.
            var newest = Int64.min
            if halfLifeSeconds > 0 { data.forEachRow { j in newest = max(newest, data.timestamps[j]) } }
            var counts = [Double](repeating: 0, count: data.itemCount)
            data.forEachRow { j in
                var w = Double(data.weights[j])
                if halfLifeSeconds > 0 {
                    // In Double: two Int64 timestamps can be more than Int64.max apart (NaT is -2^63).
                    let age = max(0, Double(newest) - Double(data.timestamps[j]))
                    w *= exp2(-age / Double(halfLifeSeconds))
                }
                counts[Int(data.items[j])] += w
            }
            for i in 0..<data.itemCount { scores.base[i] = Float(log1p(counts[i])) }
            return PopularityAgent(itemScores: scores)
        }

        public func decode(_ r: inout ByteReader, _ context: AgentDecodeContext) throws(ChorusError) -> RecommenderAgent {
            let itemCount = context.itemCount
            let m = try r.readMatrix(rows: 1, cols: itemCount)
            for i in 0..<itemCount where !m.base[i].isFinite { throw .format("popularity score \(i) is not finite") }
            return PopularityAgent(itemScores: m)
        }
    }
}
