/// For every training triple (h, r, t), the entities that complete it in training: the heads x with
/// (x, r, t) a fact and the tails x with (h, r, x) a fact, as sorted lists. A negative drawn for
/// one side is a known fact when it is in that side's list (the RotatE code's `true_head` and
/// `true_tail`). Built once per training; each triple keeps the index of its two lists, so that a
/// sample looks its list up without hashing.
struct KnownCompletions: Sendable {
    /// The lists' members, each list sorted ascending.
    let members: [Int32]
    /// List g is members[offsets[g] ..< offsets[g + 1]].
    let offsets: [Int32]
    /// Per triple: the list of its known heads (key (r, t)) and of its known tails (key (h, r)).
    let headList: [Int32], tailList: [Int32]

    /// - Precondition: the triples are distinct (a `TripleStore`'s are).
    init(heads: [Int32], relations: [Int32], tails: [Int32]) {
        let n = heads.count
        var headKeys: [UInt64: Int32] = [:], tailKeys: [UInt64: Int32] = [:]
        var headList = [Int32](repeating: 0, count: n), tailList = [Int32](repeating: 0, count: n)
        var sizes: [Int32] = []
        func list(_ keys: inout [UInt64: Int32], _ key: UInt64) -> Int32 {
            if let g = keys[key] { sizes[Int(g)] += 1; return g }
            let g = Int32(sizes.count)
            keys[key] = g; sizes.append(1)
            return g
        }
        for i in 0..<n {
            headList[i] = list(&headKeys, Triple.pairKey(tails[i], relations[i]))
            tailList[i] = list(&tailKeys, Triple.pairKey(heads[i], relations[i]))
        }
        var offsets = [Int32](repeating: 0, count: sizes.count + 1)
        for g in 0..<sizes.count { offsets[g + 1] = offsets[g] + sizes[g] }
        var cursor = Array(offsets.dropLast())
        var members = [Int32](repeating: 0, count: 2 * n)
        for i in 0..<n {
            members[Int(cursor[Int(headList[i])])] = heads[i]; cursor[Int(headList[i])] += 1
            members[Int(cursor[Int(tailList[i])])] = tails[i]; cursor[Int(tailList[i])] += 1
        }
        for g in 0..<sizes.count where sizes[g] > 1 { members[Int(offsets[g])..<Int(offsets[g + 1])].sort() }
        self.members = members; self.offsets = offsets; self.headList = headList; self.tailList = tailList
    }

    /// The list of entities that complete triple `i` on the corrupted side.
    @inline(__always) func list(triple i: Int, corruptHead: Bool) -> Int32 { corruptHead ? headList[i] : tailList[i] }

    /// Whether `entity` is in list `g`.
    @inline(__always) func contains(_ entity: Int32, list g: Int32) -> Bool {
        var lo = Int(offsets[Int(g)]), hi = Int(offsets[Int(g) + 1])
        // Most lists hold one or a few entities: scan those; search the long ones.
        if hi - lo <= 8 {
            while lo < hi { if members[lo] == entity { return true }; lo += 1 }
            return false
        }
        while lo < hi {
            let mid = (lo + hi) >> 1
            let m = members[mid]
            if m == entity { return true }
            if m < entity { lo = mid + 1 } else { hi = mid }
        }
        return false
    }
}
