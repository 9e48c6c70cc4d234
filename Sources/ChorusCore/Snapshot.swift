/// The snapshot container: one file holding named sections, each with its own CRC-32.
///
/// Layout (all integers little-endian):
///
///     offset 0   8 bytes   magic "CHORSNAP"
///     offset 8   u32       format version (`Snapshot.formatVersion`)
///     offset 12  u32       section count
///     offset 16  u32       CRC-32 of bytes 0..<16
///     then, per section:   4-byte ASCII tag, u64 payload length, u32 CRC-32 of tag + length +
///                          payload, payload
///
/// Nothing may follow the last section. Readers check the magic, then the version (a newer one is
/// `.unsupportedVersion`, as its layout may differ), then every length against the file size and
/// every checksum, before any payload is parsed.
public enum Snapshot {
    public static let magic: [UInt8] = Array("CHORSNAP".utf8)
    public static let formatVersion: UInt32 = 1

    public struct Section: Sendable {
        public let tag: String
        public let payload: [UInt8]
        public init(tag: String, payload: [UInt8]) {
            precondition(tag.utf8.count == 4, "section tags are 4 ASCII bytes")
            self.tag = tag
            self.payload = payload
        }
    }

    public static func encode(_ sections: [Section]) -> [UInt8] {
        encode(version: formatVersion, sections.map { (Array($0.tag.utf8), $0.payload) })
    }

    /// The container around raw (tag, payload) pairs at any version, checksums computed: `encode`'s
    /// core, also used by the fuzzer's mutator to put mutated (even malformed) sections back together.
    public static func encode(version: UInt32, _ sections: [(tag: [UInt8], payload: [UInt8])]) -> [UInt8] {
        var w = ByteWriter()
        for b in magic { w.write(b) }
        w.write(version)
        w.write(UInt32(sections.count))
        w.write(CRC32.checksum(w.bytes))
        var out = w.bytes
        for s in sections {
            var h = ByteWriter()
            for b in s.tag { h.write(b) }
            h.write(UInt64(s.payload.count))
            let crc = s.payload.withUnsafeBytes { CRC32.update(CRC32.checksum(h.bytes), $0) }
            h.write(crc)
            out.append(contentsOf: h.bytes)
            out.append(contentsOf: s.payload)
        }
        return out
    }

    /// Verifies the container and returns each section's payload range in `bytes`, by tag.
    /// - Throws: `.format` for anything that is not an intact snapshot, `.unsupportedVersion` for
    ///   a snapshot from a newer format.
    public static func decode(_ bytes: [UInt8]) throws(ChorusError) -> [String: Range<Int>] {
        guard bytes.count >= 20, Array(bytes[0..<8]) == magic else {
            throw .format("not a Chorus snapshot (bad magic; expected a file written by chorus_engine_save)")
        }
        var r = ByteReader(bytes, context: "snapshot header")
        _ = try r.take(8)
        let version = try r.read(UInt32.self)
        if version > formatVersion {
            throw .unsupportedVersion("snapshot format version \(version) is newer than this library's (\(formatVersion)); upgrade Chorus to read it")
        }
        if version == 0 { throw .format("snapshot format version 0 is invalid") }
        let count = try r.read(UInt32.self)
        let headerCRC = try r.read(UInt32.self)
        guard headerCRC == bytes.withUnsafeBytes({ CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<16])) }) else {
            throw .format("snapshot header checksum mismatch: the file is corrupted")
        }
        guard count <= 1024 else { throw .format("snapshot claims \(count) sections: corrupted") }
        var sections: [String: Range<Int>] = [:]
        for i in 0..<Int(count) {
            r = ByteReader(bytes, range: r.offset..<bytes.count, context: "snapshot section \(i)")
            let tagStart = try r.take(4)
            let tag = String(decoding: bytes[tagStart..<(tagStart + 4)], as: UTF8.self)
            let length = try r.read(UInt64.self)
            let crc = try r.read(UInt32.self)
            guard length <= UInt64(r.remaining) else {
                throw .format("snapshot is truncated: section '\(tag)' needs \(length) bytes, \(r.remaining) left")
            }
            let start = try r.take(Int(length))
            let range = start..<(start + Int(length))
            let computed = bytes.withUnsafeBytes {
                CRC32.update(CRC32.checksum(UnsafeRawBufferPointer(rebasing: $0[tagStart..<(tagStart + 12)])), UnsafeRawBufferPointer(rebasing: $0[range]))
            }
            guard crc == computed else {
                throw .format("snapshot section '\(tag)' checksum mismatch: the file is corrupted")
            }
            guard sections[tag] == nil else { throw .format("snapshot has section '\(tag)' twice") }
            sections[tag] = range
        }
        guard r.isAtEnd else { throw .format("snapshot has \(r.remaining) unexpected bytes after its last section") }
        return sections
    }
}
