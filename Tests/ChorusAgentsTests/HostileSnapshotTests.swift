import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// Snapshots whose checksums are valid but whose contents are hostile (what the engine-snapshot
/// fuzzer writes, Tests/fuzz/README.md): each must be refused with an error, never trap, and never
/// load into an engine that traps on its next request.
@Suite struct HostileSnapshotTests {
    /// `bytes` with the payload of section `tag` replaced by `edit(payload)`, checksums recomputed.
    static func rewrite(_ bytes: [UInt8], _ tag: String, _ edit: (inout [UInt8]) -> Void) throws -> [UInt8] {
        let ranges = try Snapshot.decode(bytes)
        var sections: [Snapshot.Section] = []
        for (t, range) in ranges.sorted(by: { $0.value.lowerBound < $1.value.lowerBound }) {
            var payload = Array(bytes[range])
            if t == tag { edit(&payload) }
            sections.append(Snapshot.Section(tag: t, payload: payload))
        }
        return Snapshot.encode(sections)
    }

    static func put(_ value: UInt64, at offset: Int, in payload: inout [UInt8]) {
        for i in 0..<8 { payload[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }

    static func fittedSnapshot() throws -> [UInt8] {
        let e = try clusteredEngine()
        try e.fit(fastParameters())
        return e.snapshotBytes()
    }

    /// Found by the engine-snapshot fuzzer (Tests/fuzz/corpus/engine-snapshot/crash-model-shape):
    /// the model's row, user and item counts (the first three u64 of 'MODL') of 2^63 or more
    /// trapped converting them to Int before they were compared with the log's.
    @Test func modelShapeCountsOfAnyValueAreRefused() throws {
        let bytes = try Self.fittedSnapshot()
        for field in 0..<3 {
            for value: UInt64 in [0xffff_ffff_ffff_ffff, 0x8000_0000_0000_0000, 1 << 40] {
                let hostile = try Self.rewrite(bytes, "MODL") { Self.put(value, at: 8 * field, in: &$0) }
                #expect(throws: ChorusError.self, "MODL field \(field) = \(value)") { try Engine.load(bytes: hostile) }
            }
        }
        #expect(try Engine.load(bytes: Self.rewrite(bytes, "MODL") { _ in }).stats().fitted)
    }

    /// Found by the engine-snapshot fuzzer (Tests/fuzz/corpus/engine-snapshot/oom-text-count): the
    /// 'TEXT' section's entry count was checked only against Int32.max, so a count near it reserved
    /// a dictionary of about a gigabyte before the first entry was read. The count is now checked
    /// against the bytes left first (the message says which check refused it; the counts here stay
    /// small enough that a regression fails this test instead of exhausting memory).
    @Test func aTextTableCountIsCheckedAgainstTheBytesLeft() throws {
        let e = Engine(config: EngineConfig(hashingEncoder: true))
        try e.add([Interaction(user: 1, item: 101), Interaction(user: 2, item: 102)])
        try e.setTexts(.item, ids: [101, 102], texts: ["space rockets", "a quiet garden"])
        let bytes = e.snapshotBytes()
        let nameLength = try #require(try Snapshot.decode(bytes)["TEXT"].map { Int(bytes[$0.lowerBound]) })
        for count: UInt64 in [3, 1000, 100_000] {
            let hostile = try Self.rewrite(bytes, "TEXT") { Self.put(count, at: 4 + nameLength + 4, in: &$0) }
            do {
                _ = try Engine.load(bytes: hostile)
                Issue.record("a text table claiming \(count) entries loaded")
            } catch {
                #expect(error.message.contains("cannot fit"), "\(count): \(error.message)")
            }
        }
        #expect(try Engine.load(bytes: Self.rewrite(bytes, "TEXT") { _ in }).text(.item, id: 101) == "space rockets")
    }
}

/// Found by the engine-snapshot fuzzer (Tests/fuzz/corpus/engine-snapshot/crash-als-nonfinite): a
/// log with weights of 1e21 and 2e25 (finite and positive: `add` accepts them too) made the ALS fit
/// diverge to non-finite factors; the fit published them, recommendations scored NaN, and the
/// engine saved a snapshot that its own loader refuses. Rows with such confidences are now solved
/// exactly in Double (`ExactRowSolve`), sums of weights saturate, and the content profile sums
/// relative weights: any weight `add` accepts fits, serves, saves and loads.
@Suite struct ExtremeWeightTests {
    @Test func theFuzzersDivergentLogNowFits() throws {
        let file = "\(#filePath)"
        let root = String(file[..<file.range(of: "/Tests/ChorusAgentsTests/")!.lowerBound])
        let engine = try Engine.load(path: root + "/Tests/fuzz/corpus/engine-snapshot/crash-als-nonfinite")
        var p = FitParameters()
        p.factors = 2; p.iterations = 1; p.threads = 1; p.seed = 1
        try engine.fit(p)
        #expect(engine.stats().fitted)
        _ = try Engine.load(bytes: engine.snapshotBytes())
    }

    /// Every agent (content included) over weights up to Float's largest, repeated so their sum
    /// passes it, with a large alpha: a fit, finite scores, a snapshot that loads back to the same lists.
    @Test(arguments: [Float(1e21), 2e25, .greatestFiniteMagnitude])
    func extremeWeightsFitServeSaveAndLoad(weight: Float) throws {
        let e = try textEngine()
        var batch: [Interaction] = []
        for u in 1...40 where u % 3 == 0 {
            let base: Int64 = u % 2 == 1 ? 100 : 200
            for i in 1...3 { for _ in 0..<2 { batch.append(Interaction(user: Int64(u), item: base + Int64(i), weight: weight, timestamp: 2_000_000)) } }
        }
        try e.add(batch)
        var p = fastParameters()
        p.alpha = 1000
        try e.fit(p)
        let lists = try e.recommend(users: Array(1...40), k: 5)
        for list in lists {
            #expect(list.items.count == 5 && list.scores.allSatisfy { $0.isFinite }, "user \(list.user)")
            #expect(list.shares.allSatisfy { $0.allSatisfy { $0.isFinite } })
        }
        // The heavy users' content profiles point at their own cluster's texts (a sum that overflowed
        // would leave them empty).
        var o = RecommendOptions(); o.agent = "content"
        for list in try e.recommend(users: Array(1...40).filter { $0 % 3 == 0 }, k: 5, options: o) {
            let base: Int64 = list.user % 2 == 1 ? 100 : 200
            #expect(list.items.allSatisfy { $0 > base && $0 <= base + 20 }, "user \(list.user): \(list.items)")
        }
        let back = try Engine.load(bytes: e.snapshotBytes())
        #expect(try back.recommend(users: Array(1...40), k: 5).map(\.items) == lists.map(\.items))
    }
}
