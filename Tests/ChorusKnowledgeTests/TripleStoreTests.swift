import Testing
@testable import ChorusKnowledge
@testable import ChorusCore

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite struct TripleStoreTests {
    @Test func parsesLFAndCRLFWithOrWithoutFinalNewline() throws {
        let variants = ["a\tr\tb\nb\tr\tc\n", "a\tr\tb\r\nb\tr\tc\r\n", "a\tr\tb\r\nb\tr\tc", "a\tr\tb\nb\tr\tc\n\n", "a\tr\tb\r\nb\tr\tc\r\n\r\n  \n"]
        for v in variants {
            var s = TripleStore()
            try TripleFile.append(bytes: bytes(v), path: "t.txt", to: &s)
            #expect(s.count == 2)
            #expect(s.entities.names == ["a", "b", "c"])   // no '\r' left on the tail
            #expect(s.relations.names == ["r"])
            #expect(s.triple(1) == Triple(head: 1, relation: 0, tail: 2))
        }
    }

    @Test func malformedLineReportsItsNumber() {
        var s = TripleStore()
        #expect(throws: ChorusError.self) { try TripleFile.append(bytes: bytes("a\tr\tb\n\nc\tr\n"), path: "x.txt", to: &s) }
        do {
            try TripleFile.append(bytes: bytes("a\tr\tb\n\nc\tr\n"), path: "x.txt", to: &s)
        } catch {
            guard case .format(let m) = error else { Issue.record("expected .format, got \(error)"); return }
            #expect(m.hasPrefix("x.txt:3:"), "\(m)")
            #expect(m.contains("found 2"))
        }
        do {
            var t = TripleStore()
            try TripleFile.append(bytes: bytes("a\tr\tb\nc\t\td\n"), path: "y.txt", to: &t)
            Issue.record("an empty field was accepted")
        } catch {
            #expect(error.message.hasPrefix("y.txt:2: empty field"), "\(error.message)")
        }
        do {
            var t = TripleStore()
            try TripleFile.append(bytes: bytes("a\tr\tb\tc\n"), path: "z.txt", to: &t)
            Issue.record("four fields were accepted")
        } catch {
            #expect(error.message.hasPrefix("z.txt:1:"))
        }
    }

    /// Invalid UTF-8 is refused with its line, never repaired: "a\xff" and "a\xfe" would both
    /// become "a\u{FFFD}" and merge into one entity (here, a self-loop).
    @Test func invalidUTF8AndOverlongNamesNameTheirLine() {
        var s = TripleStore()
        let invalid: [UInt8] = bytes("x\tr\ty\n") + [0x61, 0xFF] + bytes("\tr\t") + [0x61, 0xFE] + bytes("\n")
        do throws(ChorusError) {
            try TripleFile.append(bytes: invalid, path: "u.txt", to: &s)
            Issue.record("invalid UTF-8 was accepted")
        } catch {
            #expect(error.message.hasPrefix("u.txt:2: a field is not valid UTF-8"))
        }
        let long = "a\tr\t" + String(repeating: "n", count: Limits.maxNameBytes + 1) + "\n"
        do throws(ChorusError) {
            try TripleFile.append(bytes: bytes(long), path: "l.txt", to: &s)
            Issue.record("an over-long name was accepted")
        } catch {
            #expect(error.message.hasPrefix("l.txt:1: the tail of a triple is 4097 bytes"))
        }
    }

    @Test func emptyFileIsAClearError() {
        for content in ["", "\n\r\n\n"] {
            var s = TripleStore()
            do {
                try TripleFile.append(bytes: bytes(content), path: "e.txt", to: &s)
                Issue.record("an empty file was accepted")
            } catch {
                #expect(error == .format("e.txt: no triples (the file is empty or blank)"))
            }
        }
    }

    @Test func duplicatesAreCountedAndDropped() throws {
        var s = TripleStore()
        try TripleFile.append(bytes: bytes("a\tr\tb\na\tr\tb\nb\tr\ta\na\tr\tb\n"), path: "d.txt", to: &s)
        #expect(s.count == 2)
        #expect(s.duplicatesDropped == 2)
        #expect(try s.add(head: "a", relation: "r", tail: "b") == false)
        #expect(try s.add(head: "a", relation: "q", tail: "b") == true)
        #expect(s.duplicatesDropped == 3)
        #expect(throws: ChorusError.self) { try s.add(head: "", relation: "r", tail: "b") }
        #expect(throws: ChorusError.self) { try s.add(Triple(head: 0, relation: 9, tail: 1)) }
    }

    @Test func splitAgainstTrainingCountsUnknowns() throws {
        var s = TripleStore()
        try TripleFile.append(bytes: bytes("a\tr\tb\nb\tr\tc\n"), path: "train", to: &s)
        let (kept, rep) = try TripleFile.loadSplit(bytes: bytes("a\tr\tc\nx\tr\ta\na\tq\tb\na\tr\tc\nb\tr\ty\r\n"), path: "test", against: s)
        #expect(kept == [Triple(head: 0, relation: 0, tail: 2)])
        #expect(rep == TripleFile.SplitReport(lines: 5, kept: 1, unknownEntity: 2, unknownRelation: 1, duplicates: 1))
        #expect(s.entityCount == 3)   // loading a split adds no names
    }

    @Test func storeRoundTripsThroughBytes() throws {
        var s = TripleStore()
        try TripleFile.append(bytes: bytes("a\tr\tb\nb\tq\tc\na\tr\tb\n"), path: "t", to: &s)
        var w = ByteWriter(); s.encode(into: &w)
        var r = ByteReader(w.bytes, context: "test")
        let back = try TripleStore.decode(from: &r)
        #expect(back.entities == s.entities && back.relations == s.relations)
        #expect(back.heads == s.heads && back.relationIds == s.relationIds && back.tails == s.tails)
        #expect(back.duplicatesDropped == 1)
        // A truncated payload is a format error, not a crash.
        var short = ByteReader(Array(w.bytes.dropLast(5)), context: "test")
        #expect(throws: ChorusError.self) { try TripleStore.decode(from: &short) }
    }

    @Test func bernoulliProbabilitiesFollowTheRelationShape() throws {
        var s = TripleStore()
        // one-to-many: one head, 4 tails (tph = 4, hpt = 1) -> corrupt the head with p = 0.8.
        for t in 0..<4 { try s.add(head: "h", relation: "has", tail: "t\(t)") }
        // many-to-one: 3 heads, one tail -> p = 1/4.
        for h in 0..<3 { try s.add(head: "x\(h)", relation: "in", tail: "box") }
        let p = s.headCorruptionProbabilities()
        #expect(abs(p[0] - 0.8) < 1e-6)
        #expect(abs(p[1] - 0.25) < 1e-6)
    }
}

@Suite struct KnownCompletionsTests {
    /// Every (triple, side, entity) against a brute-force scan of the triples, on a graph with
    /// lists of one entity and lists of dozens (the scanned and the binary-searched ones).
    @Test func answersLikeAScanOfTheTriples() {
        var rng = SeededRandom(seed: 9)
        var seen = Set<Triple>()
        var heads: [Int32] = [], rels: [Int32] = [], tails: [Int32] = []
        for _ in 0..<600 {
            // Relation 0 points many heads at few tails (long head lists); 1 and 2 are sparse.
            let r = Int32(rng.nextInt(below: 3))
            let h = Int32(rng.nextInt(below: 60)), t = Int32(r == 0 ? rng.nextInt(below: 3) : rng.nextInt(below: 60))
            if seen.insert(Triple(head: h, relation: r, tail: t)).inserted { heads.append(h); rels.append(r); tails.append(t) }
        }
        let known = KnownCompletions(heads: heads, relations: rels, tails: tails)
        var longest = 0
        for i in heads.indices {
            for corruptHead in [true, false] {
                let list = known.list(triple: i, corruptHead: corruptHead)
                longest = max(longest, Int(known.offsets[Int(list) + 1] - known.offsets[Int(list)]))
                for e in Int32(0)..<60 {
                    let candidate = corruptHead ? Triple(head: e, relation: rels[i], tail: tails[i]) : Triple(head: heads[i], relation: rels[i], tail: e)
                    #expect(known.contains(e, list: list) == seen.contains(candidate), "triple \(i), head side \(corruptHead), entity \(e)")
                }
            }
        }
        #expect(longest > 8, "no list long enough for the binary search")
    }
}
