#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// A `user,item[,weight]` CSV (LF or CRLF; an optional header line whose first field is not a
/// number is skipped), with users and items given dense indices in order of first appearance.
struct TripleCSV {
    var userIds: [Int64] = []
    var itemIds: [Int64] = []
    var rowUser: [Int32] = []
    var rowItem: [Int32] = []
    var weights: [Float] = []

    /// Reads `path`; the dense id maps may be pre-seeded (`users`, `items`) so a test file shares
    /// the train file's indices. With `allowNewIds == false`, rows with unseen ids are dropped.
    /// - Throws: `.failure` for an unreadable file or a malformed line.
    static func read(path: String, seedUsers: [Int64] = [], seedItems: [Int64] = [],
                     allowNewIds: Bool = true) throws(BenchError) -> TripleCSV {
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(path: path) } catch { throw .failure(error.message) }
        var out = TripleCSV()
        out.userIds = seedUsers
        out.itemIds = seedItems
        var userIndex: [Int64: Int32] = [:], itemIndex: [Int64: Int32] = [:]
        for (i, id) in seedUsers.enumerated() { userIndex[id] = Int32(i) }
        for (i, id) in seedItems.enumerated() { itemIndex[id] = Int32(i) }
        var lineNo = 0
        var start = 0
        let n = bytes.count
        var fieldBuf = [CChar](repeating: 0, count: 64)
        while start < n {
            var end = start
            while end < n && bytes[end] != 0x0A { end += 1 }
            var stop = end
            if stop > start && bytes[stop - 1] == 0x0D { stop -= 1 }
            lineNo += 1
            defer { start = end + 1 }
            if stop == start { continue }
            // Split on commas.
            var fields: [Range<Int>] = []
            var fs = start
            for j in start..<stop where bytes[j] == 0x2C { fields.append(fs..<j); fs = j + 1 }
            fields.append(fs..<stop)
            guard let user = parseInt(bytes, fields[0]) else {
                if lineNo == 1 { continue } // header
                throw .failure("\(path):\(lineNo): the user field is not an integer")
            }
            guard fields.count >= 2, let item = parseInt(bytes, fields[1]) else {
                throw .failure("\(path):\(lineNo): the item field is missing or not an integer")
            }
            var w: Float = 1
            if fields.count >= 3 {
                let r = fields[2]
                guard r.count > 0, r.count < fieldBuf.count else { throw .failure("\(path):\(lineNo): bad weight field") }
                for (k, j) in r.enumerated() { fieldBuf[k] = CChar(bitPattern: bytes[j]) }
                fieldBuf[r.count] = 0
                var endPtr: UnsafeMutablePointer<CChar>? = nil
                let ok: Bool = fieldBuf.withUnsafeMutableBufferPointer { buf in
                    w = strtof(buf.baseAddress!, &endPtr)
                    return endPtr == buf.baseAddress! + r.count
                }
                guard ok, w.isFinite else { throw .failure("\(path):\(lineNo): the weight field is not a number") }
            }
            var u = userIndex[user], i = itemIndex[item]
            if u == nil || i == nil {
                if !allowNewIds { continue }
                if u == nil { u = Int32(out.userIds.count); userIndex[user] = u; out.userIds.append(user) }
                if i == nil { i = Int32(out.itemIds.count); itemIndex[item] = i; out.itemIds.append(item) }
            }
            out.rowUser.append(u!); out.rowItem.append(i!); out.weights.append(w)
        }
        return out
    }

    private static func parseInt(_ b: [UInt8], _ r: Range<Int>) -> Int64? {
        guard !r.isEmpty else { return nil }
        var j = r.lowerBound
        var negative = false
        if b[j] == 0x2D { negative = true; j += 1; if j == r.upperBound { return nil } }
        var v: Int64 = 0
        while j < r.upperBound {
            let d = b[j] &- 0x30
            guard d < 10 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(d))
            if o1 || o2 { return nil }
            v = s
            j += 1
        }
        return negative ? -v : v
    }
}
