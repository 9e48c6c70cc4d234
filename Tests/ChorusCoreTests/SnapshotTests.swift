import Testing
@testable import ChorusCore

@Suite struct SnapshotTests {
    /// Strings come back only as they went in: at most their limit, and valid UTF-8, never repaired.
    @Test func stringsAreReadStrictly() throws {
        var w = ByteWriter()
        w.write("héllo")
        w.write(String(repeating: "n", count: Limits.maxNameBytes + 1))
        var r = ByteReader(w.bytes, context: "test")
        #expect(try r.readString(maxBytes: Limits.maxNameBytes) == "héllo")
        #expect(throws: ChorusError.self) { try r.readString(maxBytes: Limits.maxNameBytes) }
        var raw = ByteWriter()
        raw.write(UInt32(2))
        var bad = raw.bytes + [0x61, 0xFF]
        var r2 = ByteReader(bad, context: "test")
        do throws(ChorusError) {
            _ = try r2.readString()
            Issue.record("invalid UTF-8 was read")
        } catch {
            #expect(error.message == "test: a string at byte 4 is not valid UTF-8")
        }
        bad[5] = 0x62
        var r3 = ByteReader(bad, context: "test")
        #expect(try r3.readString() == "ab")
    }

    @Test func crc32KnownValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([]) == 0)
        // Slice-by-8 and the byte loop agree on every length around the 8-byte boundary.
        let data = (0..<37).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for n in 0...data.count {
            var c: UInt32 = 0xFFFF_FFFF
            for b in data[0..<n] { c = CRC32.tables[0][Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
            #expect(CRC32.checksum(Array(data[0..<n])) == c ^ 0xFFFF_FFFF)
        }
    }

    func sample() -> [UInt8] {
        var w = ByteWriter()
        w.write(UInt32(7)); w.write("hello"); w.writeArray([1.5, -2, 3] as [Float]); w.writeArray([Int64(-9), 10])
        return Snapshot.encode([.init(tag: "AAAA", payload: w.bytes), .init(tag: "BBBB", payload: [1, 2, 3])])
    }

    @Test func roundTrip() throws {
        let bytes = sample()
        let sections = try Snapshot.decode(bytes)
        #expect(Set(sections.keys) == ["AAAA", "BBBB"])
        var r = ByteReader(bytes, range: sections["AAAA"]!, context: "t")
        #expect(try r.read(UInt32.self) == 7)
        #expect(try r.readString() == "hello")
        #expect(try r.readArray(Float.self) == [1.5, -2, 3])
        #expect(try r.readArray(Int64.self) == [-9, 10])
        #expect(r.isAtEnd)
        #expect(Array(bytes[sections["BBBB"]!]) == [1, 2, 3])
    }

    @Test func everyTruncationIsRejected() {
        let bytes = sample()
        for n in 0..<bytes.count {
            #expect(throws: ChorusError.self) { try Snapshot.decode(Array(bytes[0..<n])) }
        }
    }

    @Test func everyFlippedByteIsRejected() {
        let bytes = sample()
        for i in 0..<bytes.count {
            var b = bytes
            b[i] ^= 0x10
            #expect(throws: ChorusError.self) { try Snapshot.decode(b) }
        }
    }

    @Test func newerVersionIsUnsupported() {
        var b = sample()
        b[8] = UInt8(Snapshot.formatVersion + 1)
        #expect(throws: ChorusError.unsupportedVersion("snapshot format version \(Snapshot.formatVersion + 1) is newer than this library's (\(Snapshot.formatVersion)); upgrade Chorus to read it")) {
            try Snapshot.decode(b)
        }
    }

    @Test func trailingBytesAndForeignFilesAreRejected() {
        #expect(throws: ChorusError.self) { try Snapshot.decode(sample() + [0]) }
        #expect(throws: ChorusError.self) { try Snapshot.decode(Array("hello, not a snapshot at all".utf8)) }
        #expect(throws: ChorusError.self) { try Snapshot.decode([]) }
    }

    @Test func readerNeverReadsPastItsRange() {
        var r = ByteReader([1, 2, 3], context: "t")
        #expect(throws: ChorusError.self) { try r.read(UInt32.self) }
        var w = ByteWriter(); w.write(UInt64(1 << 40))
        var r2 = ByteReader(w.bytes, context: "t")
        #expect(throws: ChorusError.self) { try r2.readArray(Float.self) }
    }

    /// Found by the graph-snapshot fuzzer (Tests/fuzz/corpus/graph-snapshot/crash-matrix-count):
    /// a stored value count of 2^63 or more trapped converting it to Int; a shape whose product or
    /// byte size overflows trapped multiplying.
    @Test func matrixCountsAreCheckedBeforeAnyArithmetic() throws {
        for stored: UInt64 in [0xffff_ffff_ffff_ffff, 0x8000_0000_0000_0000, 0x4000_0000_0000_0000, 7] {
            var w = ByteWriter(); w.write(stored); w.write(Float(1))
            var r = ByteReader(w.bytes, context: "t")
            #expect(throws: ChorusError.self) { _ = try r.readMatrix(rows: 2, cols: 3) }
        }
        for (rows, cols) in [(Int.max, 2), (1 << 62, 1), (-1, -6)] {
            var w = ByteWriter(); w.write(UInt64(truncatingIfNeeded: rows &* cols)); w.write(Float(1))
            var r = ByteReader(w.bytes, context: "t")
            #expect(throws: ChorusError.self) { _ = try r.readMatrix(rows: rows, cols: cols) }
        }
        var w = ByteWriter(); w.write(UInt64(2)); w.write(Float(1)); w.write(Float(2))
        var r = ByteReader(w.bytes, context: "t")
        let m = try r.readMatrix(rows: 1, cols: 2)
        #expect(m.rows == 1 && m.cols == 2 && r.isAtEnd)
    }
}
