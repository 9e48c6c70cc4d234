import ChorusCore
import ChorusEval

/// Writes an evaluation's split and results as plain files, so that peers (bench/quality) are
/// evaluated on exactly the same split and compared with the same rows.
enum SplitExport {
    static func write(_ split: TemporalSplit, directory: String) throws(ChorusError) {
        try FileIO.makeDirectory(directory)
        var train = "user,item,weight,timestamp\n"
        for x in split.train { train += "\(x.user),\(x.item),\(x.weight),\(x.timestamp)\n" }
        try FileIO.writeAtomically(path: directory + "/train.csv", bytes: Array(train.utf8))
        var test = "user,item\n"
        for user in split.test.keys.sorted() {
            for item in split.test[user]!.sorted() { test += "\(user),\(item)\n" }
        }
        try FileIO.writeAtomically(path: directory + "/test.csv", bytes: Array(test.utf8))
    }

    /// What a result row measures, for readers of the JSON (`chorus.report` draws from it).
    enum RowKind {
        case agent, blend, cold
        case mmr(Float)   // the blend re-ranked for diversity at this MMR weight

        var name: String {
            switch self {
            case .agent: "agent"
            case .blend: "blend"
            case .cold: "cold"
            case .mmr: "mmr"
            }
        }
    }

    /// The result as JSON: the agents and their blend weights, then the rows, each with its kind (`kinds[i]`;
    /// a row without one is named by whether it is an agent's) and, for re-ranked rows, the MMR weight.
    static func writeJSON(_ result: EvaluationResult, kinds: [RowKind], dataset: String, path: String) throws(ChorusError) {
        func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
        func number(_ x: Float) -> String { x.isFinite ? "\(x)" : "null" }  // shortest form: 0.1, not 0.10000000149
        let rows = result.rows.enumerated().map { i, r in
            let kind = i < kinds.count ? kinds[i] : (result.agentNames.contains(r.name) ? .agent : .blend)
            var mmr = "null"
            if case .mmr(let d) = kind { mmr = number(d) }
            return "{\"name\": \(quoted(r.name)), \"kind\": \"\(kind.name)\", \"mmr\": \(mmr), \"k\": \(r.k), "
                + "\"recall\": \(number(r.recall)), \"ndcg\": \(number(r.ndcg)), "
                + "\"hit_rate\": \(number(r.hitRate)), \"mrr\": \(number(r.mrr)), \"coverage\": \(number(r.coverage)), "
                + "\"users\": \(r.users), \"cold_users\": \(r.coldUsers), \"seconds\": \(number(r.seconds)), "
                + "\"weight\": \(r.weight.map { number($0) } ?? "null"), "
                + "\"diversity\": \(r.diversity.map { number($0) } ?? "null")}"
        }
        let agents = result.agentNames.map(quoted).joined(separator: ", ")
        let weights = result.blendWeights.map { number($0) }.joined(separator: ", ")
        let text = "{\"dataset\": \(quoted(dataset)), \"k\": \(result.k), \"fit_seconds\": \(number(result.fitSeconds)), "
            + "\"catalogue\": \(result.catalogueSize), \"agents\": [\(agents)], \"blend_weights\": [\(weights)], "
            + "\"rows\": [\n  " + rows.joined(separator: ",\n  ") + "\n]}\n"
        try FileIO.writeAtomically(path: path, bytes: Array(text.utf8))
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}
