import Testing
@testable import ChorusAgents
@testable import ChorusCore

/// Host metadata (`chorus_engine_set_metadata`): kept in the 'HOST' snapshot section, every count
/// of which a load checks against the limits and the bytes left.
@Suite struct HostMetadataTests {
    static func engineWithMetadata() throws -> Engine {
        let e = Engine()
        try e.add([Interaction(user: 1, item: 101), Interaction(user: 2, item: 102)])
        try e.setMetadata("python.ids", [0, 1, 2, 0, 255])
        try e.setMetadata("pipeline", Array("v7".utf8))
        return e
    }

    @Test func metadataRoundTripsThroughASnapshot() throws {
        let e = try Self.engineWithMetadata()
        let loaded = try Engine.load(bytes: e.snapshotBytes())
        #expect(loaded.metadata("python.ids") == [0, 1, 2, 0, 255])
        #expect(loaded.metadata("pipeline") == Array("v7".utf8))
        #expect(loaded.metadata("absent") == nil)
        // Equal metadata encodes to equal bytes (keys sorted).
        #expect(loaded.snapshotBytes() == e.snapshotBytes())
    }

    @Test func anEngineWithoutMetadataWritesNoHostSection() throws {
        let e = Engine()
        try e.add([Interaction(user: 1, item: 101), Interaction(user: 2, item: 102)])
        #expect(try Snapshot.decode(e.snapshotBytes())["HOST"] == nil)
        try e.setMetadata("k", [1])
        try e.setMetadata("k", [])
        #expect(try Snapshot.decode(e.snapshotBytes())["HOST"] == nil)
    }

    @Test func keysAndSizesAreLimited() throws {
        var m = HostMetadata()
        #expect(throws: ChorusError.self) { try m.set("", [1]) }
        #expect(throws: ChorusError.self) { try m.set(String(repeating: "k", count: Limits.maxNameBytes + 1), [1]) }
        try m.set(String(repeating: "k", count: Limits.maxNameBytes), [1])
        for i in 1..<Limits.maxMetadataKeys { try m.set("key \(i)", [UInt8(i & 0xff)]) }
        #expect(throws: ChorusError.self) { try m.set("one too many", [1]) }
        try m.set("key 1", [9, 9])  // replacing at the limit is fine
        try m.set("key 1", [])
        try m.set("one more", [1])
        #expect(m.totalBytes == Limits.maxMetadataKeys)
    }

    /// The entry count, a key's length and a value's length of any value: refused with an error,
    /// before anything of that size is allocated.
    @Test func hostileCountsAreRefused() throws {
        let bytes = try Self.engineWithMetadata().snapshotBytes()
        func hostile(_ edit: @escaping (inout [UInt8]) -> Void) throws -> [UInt8] {
            try HostileSnapshotTests.rewrite(bytes, "HOST", edit)
        }
        for count: UInt32 in [3, 1025, 0xffff_ffff] {
            let b = try hostile { p in for i in 0..<4 { p[i] = UInt8(truncatingIfNeeded: count >> (8 * i)) } }
            #expect(throws: ChorusError.self, "count \(count)") { try Engine.load(bytes: b) }
        }
        // The first key ("pipeline", sorted first): its length, then its value's length.
        for length: UInt32 in [0, 9, 4097, 0xffff_ffff] {
            let b = try hostile { p in for i in 0..<4 { p[4 + i] = UInt8(truncatingIfNeeded: length >> (8 * i)) } }
            #expect(throws: ChorusError.self, "key length \(length)") { try Engine.load(bytes: b) }
        }
        for length: UInt64 in [0, 3, 1 << 40, 0xffff_ffff_ffff_ffff] {
            let b = try hostile { HostileSnapshotTests.put(length, at: 4 + 4 + 8, in: &$0) }
            #expect(throws: ChorusError.self, "value length \(length)") { try Engine.load(bytes: b) }
        }
        // A repeated key, and trailing bytes.
        let repeated = try hostile { p in
            var w = ByteWriter(); w.write(UInt32(2)); w.write("a"); w.writeArray([UInt8(1)]); w.write("a"); w.writeArray([UInt8(2)])
            p = w.bytes
        }
        #expect(throws: ChorusError.self) { try Engine.load(bytes: repeated) }
        #expect(throws: ChorusError.self) { try Engine.load(bytes: hostile { $0.append(0) }) }
        #expect(try Engine.load(bytes: hostile { _ in }).metadata("pipeline") == Array("v7".utf8))
    }
}
