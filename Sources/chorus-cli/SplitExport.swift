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

    static func writeJSON(_ result: EvaluationResult, dataset: String, path: String) throws(ChorusError) {
        func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
        let rows = result.rows.map { r in
            "{\"name\": \"\(r.name)\", \"k\": \(r.k), \"recall\": \(number(r.recall)), \"ndcg\": \(number(r.ndcg)), "
                + "\"hit_rate\": \(number(r.hitRate)), \"mrr\": \(number(r.mrr)), \"coverage\": \(number(r.coverage)), "
                + "\"users\": \(r.users), \"cold_users\": \(r.coldUsers), \"seconds\": \(number(r.seconds)), "
                + "\"weight\": \(r.weight.map { number(Double($0)) } ?? "null"), "
                + "\"diversity\": \(r.diversity.map { number($0) } ?? "null")}"
        }
        let text = "{\"dataset\": \"\(dataset)\", \"k\": \(result.k), \"fit_seconds\": \(number(result.fitSeconds)), "
            + "\"catalogue\": \(result.catalogueSize), \"rows\": [\n  " + rows.joined(separator: ",\n  ") + "\n]}\n"
        try FileIO.writeAtomically(path: path, bytes: Array(text.utf8))
    }
}
