#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// `chorus-bench holdout`: the library's own per-user temporal split (`TemporalHoldOut.split`) of
/// a MovieLens-style ratings file, so bench/als/run.py can check that its Python twin of the
/// rule selects exactly the same rows.
enum HoldoutBench {
    static let options: Set<String> = ["ratings", "fraction", "out"]
    static let help = """
        Usage: chorus-bench holdout --ratings FILE --out FILE [--fraction 0.2]

        Reads userId,movieId,rating,timestamp rows (header optional, LF or CRLF), applies
        TemporalHoldOut.split, and writes the 0-based data-row numbers of the held-out rows to
        --out, one per line. Prints {"rows": N, "held": M} as JSON.
        """

    static func run(_ o: Options) throws(BenchError) {
        try o.check()
        let path = try o.required("ratings")
        let out = try o.required("out")
        let fractionText = o.string("fraction") ?? "0.2"
        guard let fraction = Double(fractionText), fraction >= 0, fraction < 1 else {
            throw .usage("--fraction wants a number in [0, 1), got '\(fractionText)'")
        }
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path: path) } catch { throw .failure(error.message) }
        var users: [Int32] = [], times: [Int64] = []
        var index: [Int64: Int32] = [:]
        var lineNo = 0, start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            var stop = end
            if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }
            lineNo += 1
            defer { start = end + 1 }
            if stop == start { continue }
            let fields = bytes[start..<stop].split(separator: 0x2C, omittingEmptySubsequences: false)
            guard fields.count >= 4, let u = Int64(String(decoding: fields[0], as: UTF8.self)),
                  let t = Int64(String(decoding: fields[3], as: UTF8.self)) else {
                if lineNo == 1 { continue } // header
                throw .failure("\(path):\(lineNo): expected userId,movieId,rating,timestamp")
            }
            let dense: Int32
            if let d = index[u] { dense = d } else { dense = Int32(index.count); index[u] = dense }
            users.append(dense); times.append(t)
        }
        let held = TemporalHoldOut.split(users: users, timestamps: times, fraction: fraction)
        var text = ""
        var count = 0
        for (row, h) in held.enumerated() where h { text += "\(row)\n"; count += 1 }
        do { try FileIO.writeAtomically(path: out, bytes: Array(text.utf8)) } catch { throw .failure(error.message) }
        print("{\"command\": \"holdout\", \"rows\": \(users.count), \"held\": \(count), \"fraction\": \(fraction)}")
    }
}
