import ChorusCore

/// A mutator for snapshot files that keeps their checksums valid, so that mutations reach the
/// payload parsers instead of dying at the container's CRC check (`Sources/ChorusCore/Snapshot.swift`
/// has the layout: magic, version, section count, header CRC-32, then per section a 4-byte tag, a
/// u64 length, a CRC-32 of tag + length + payload, the payload).
///
/// Most mutations take one section apart, let libFuzzer's mutator (`mutate`) change its payload,
/// or overwrite one of its aligned words with a hostile count, then put the file back together
/// with fresh checksums. A few drop, duplicate or reorder sections, and a few change the raw bytes
/// with the checksums left as they are, so the container checks are fuzzed too.
enum SnapshotMutator {
    struct Section {
        var tag: [UInt8]
        var payload: [UInt8]
    }

    /// The sections of an intact-looking container (lengths in bounds; checksums not checked).
    static func split(_ bytes: [UInt8]) -> (version: UInt32, sections: [Section])? {
        guard bytes.count >= 20, Array(bytes[0..<8]) == Snapshot.magic else { return nil }
        func u32(_ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(bytes[o + $1]) << (8 * $1) } }
        func u64(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(bytes[o + $1]) << (8 * $1) } }
        let version = u32(8), count = Int(u32(12))
        guard count <= 1024 else { return nil }
        var sections: [Section] = []
        var o = 20
        for _ in 0..<count {
            guard bytes.count - o >= 16 else { return nil }
            let length = u64(o + 4)
            guard length <= UInt64(bytes.count - o - 16) else { return nil }
            let start = o + 16, end = start + Int(length)
            sections.append(Section(tag: Array(bytes[o..<(o + 4)]), payload: Array(bytes[start..<end])))
            o = end
        }
        return (version, sections)
    }

    /// A container with valid checksums around `sections`.
    static func join(version: UInt32, _ sections: [Section]) -> [UInt8] {
        Snapshot.encode(version: version, sections.map { ($0.tag, $0.payload) })
    }

    /// Values a count or an index field is most likely to be wrong with.
    static let hostile: [UInt64] = [0, 1, 2, 3, 7, 255, 256, 0x7fff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff,
                                    0x1_0000_0000, 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000, 0xffff_ffff_ffff_ffff,
                                    0x1fff_ffff_ffff_ffff, 0x4000_0000_0000_0000]

    /// Mutates `bytes` in place, keeping them at most `maxSize` long.
    /// - Parameters:
    ///   - seed: libFuzzer's seed for this mutation (the mutator's only source of randomness).
    ///   - mutate: libFuzzer's byte mutator (`LLVMFuzzerMutate`): grows, shrinks or changes a buffer
    ///     in place up to the size given and returns the new size.
    static func mutate(_ bytes: inout [UInt8], maxSize: Int, seed: UInt32,
                       mutate: (inout [UInt8], Int) -> Void) {
        var rng = SeededRandom(seed: UInt64(seed) &+ 0x9e37_79b9)
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        guard let (version, sectionsIn) = split(bytes), !sectionsIn.isEmpty, pick(16) != 0 else {
            // Not a container (or, one time in 16, on purpose): the raw bytes, checksums and all.
            mutate(&bytes, maxSize)
            return
        }
        var sections = sectionsIn
        let room = maxSize - join(version: version, sections).count
        let s = pick(sections.count)
        switch pick(20) {
        case 0:
            sections.remove(at: s)
        case 1:
            sections.insert(sections[s], at: pick(sections.count + 1))
        case 2:
            sections.swapAt(s, pick(sections.count))
        case 3:
            var tag = sections[s].tag
            tag[pick(4)] = UInt8(ascii: "A") &+ UInt8(pick(26))
            sections[s].tag = tag
        case 4..<10:
            // A hostile value over an aligned word of the payload (counts, lengths and indices are
            // 4 or 8 bytes, aligned in the payloads this library writes).
            var p = sections[s].payload
            let width = pick(2) == 0 ? 4 : 8
            guard p.count >= width else { break }
            let at = pick(p.count / width) * width
            var v = hostile[pick(hostile.count)]
            if pick(4) == 0 {
                // Or the current value nudged: one more or fewer element than the data holds.
                var cur: UInt64 = 0
                for i in 0..<width { cur |= UInt64(p[at + i]) << (8 * i) }
                v = pick(2) == 0 ? cur &+ 1 : cur &- 1
            }
            for i in 0..<width { p[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
            sections[s].payload = p
        default:
            var p = sections[s].payload
            mutate(&p, p.count + max(0, room))
            sections[s].payload = p
        }
        let out = join(version: version, sections)
        if out.count <= maxSize { bytes = out }
    }
}
