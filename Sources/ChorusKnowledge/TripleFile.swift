import ChorusCore

/// Reads `head<TAB>relation<TAB>tail` files (WN18RR, FB15k-237): LF or CRLF line endings, with or
/// without a final newline; blank lines are skipped. Names are taken as UTF-8 bytes, verbatim.
public enum TripleFile {
    /// What loading an evaluation split against a training store found.
    public struct SplitReport: Sendable, Equatable {
        /// Lines holding a triple.
        public var lines = 0
        /// Triples whose entities and relation all occur in training: the ones that are ranked.
        public var kept = 0
        /// Triples naming an entity absent from training (not ranked: no embedding exists).
        public var unknownEntity = 0
        /// Triples naming a relation absent from training (not ranked), entity problems aside.
        public var unknownRelation = 0
        /// Repeats within the split (dropped).
        public var duplicates = 0
    }

    /// Calls `body(lineNumber, head, relation, tail)` for each non-blank line.
    /// - Throws: `.format("path:line: ...")` for a line that is not three non-empty tab-separated
    ///   fields of valid UTF-8, `.format` for a file without any triple.
    static func forEachTriple(_ bytes: [UInt8], path: String,
                              _ body: (Int, String, String, String) throws(ChorusError) -> Void) throws(ChorusError) {
        let lf = UInt8(ascii: "\n"), cr = UInt8(ascii: "\r"), tab = UInt8(ascii: "\t")
        var start = 0, line = 0, found = 0
        let n = bytes.count
        try bytes.withUnsafeBufferPointer { (b) throws(ChorusError) in
            while start < n {
                line += 1
                var end = start
                while end < n && b[end] != lf { end += 1 }
                var stop = end
                if stop > start && b[stop - 1] == cr { stop -= 1 }
                // A line of only spaces/tabs counts as blank (a stray final line).
                var blank = true
                for i in start..<stop where b[i] != tab && b[i] != UInt8(ascii: " ") { blank = false; break }
                if !blank {
                    var cuts: [Int] = []
                    for i in start..<stop where b[i] == tab { cuts.append(i) }
                    guard cuts.count == 2 else {
                        throw .format("\(path):\(line): expected 3 tab-separated fields (head, relation, tail), found \(cuts.count + 1): \(excerpt(b, start, stop))")
                    }
                    let f0 = start..<cuts[0], f1 = (cuts[0] + 1)..<cuts[1], f2 = (cuts[1] + 1)..<stop
                    guard !f0.isEmpty, !f1.isEmpty, !f2.isEmpty else {
                        throw .format("\(path):\(line): empty field in \(excerpt(b, start, stop))")
                    }
                    // Never repaired: two invalid names would merge into one.
                    func text(_ r: Range<Int>) throws(ChorusError) -> String {
                        guard let s = String(validating: UnsafeBufferPointer(rebasing: b[r]), as: UTF8.self) else {
                            throw .format("\(path):\(line): a field is not valid UTF-8: \(excerpt(b, start, stop))")
                        }
                        return s
                    }
                    found += 1
                    try body(line, try text(f0), try text(f1), try text(f2))
                }
                start = end + 1
            }
        }
        if found == 0 { throw .format("\(path): no triples (the file is empty or blank)") }
    }

    static func excerpt(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ stop: Int) -> String {
        let cut = min(stop, start + 60)
        var s = String(decoding: UnsafeBufferPointer(rebasing: b[start..<cut]), as: UTF8.self)
        s = s.replacingTabs()
        return cut < stop ? "'\(s)...'" : "'\(s)'"
    }

    /// Loads a training file into a new store.
    /// - Throws: `.notFound`/`.io` for the file, `.format` for malformed or empty content.
    public static func loadTraining(path: String) throws(ChorusError) -> TripleStore {
        var store = TripleStore()
        try append(path: path, to: &store)
        return store
    }

    /// Adds a file's triples to `store` (new names become new ids).
    public static func append(path: String, to store: inout TripleStore) throws(ChorusError) {
        try append(bytes: try FileIO.readAll(path: path), path: path, to: &store)
    }

    public static func append(bytes: [UInt8], path: String, to store: inout TripleStore) throws(ChorusError) {
        try forEachTriple(bytes, path: path) { (line, h, r, t) throws(ChorusError) in
            do throws(ChorusError) { try store.add(head: h, relation: r, tail: t) } catch { throw .format("\(path):\(line): \(error.message)") }
        }
    }

    /// Maps an evaluation split onto `store`'s ids without adding names: triples with an entity or
    /// relation unknown to training are counted and left out (they cannot be ranked).
    public static func loadSplit(path: String, against store: TripleStore) throws(ChorusError) -> ([Triple], SplitReport) {
        try loadSplit(bytes: try FileIO.readAll(path: path), path: path, against: store)
    }

    public static func loadSplit(bytes: [UInt8], path: String, against store: TripleStore) throws(ChorusError) -> ([Triple], SplitReport) {
        var out: [Triple] = []
        var seen = Set<Triple>()
        var rep = SplitReport()
        var unknownSeen = Set<[String]>()
        try forEachTriple(bytes, path: path) { (_, h, r, t) throws(ChorusError) in
            rep.lines += 1
            guard let hi = store.entities.id(of: h), let ti = store.entities.id(of: t) else {
                if unknownSeen.insert([h, r, t]).inserted { rep.unknownEntity += 1 } else { rep.duplicates += 1 }
                return
            }
            guard let ri = store.relations.id(of: r) else {
                if unknownSeen.insert([h, r, t]).inserted { rep.unknownRelation += 1 } else { rep.duplicates += 1 }
                return
            }
            let tr = Triple(head: hi, relation: ri, tail: ti)
            if seen.insert(tr).inserted { out.append(tr) } else { rep.duplicates += 1 }
        }
        rep.kept = out.count
        return (out, rep)
    }
}

extension String {
    fileprivate func replacingTabs() -> String {
        var s = ""
        for c in self { if c == "\t" { s += "\\t" } else { s.append(c) } }
        return s
    }
}
