import ChorusCore

/// Named byte strings the host keeps in the engine and its snapshot (a binding's id maps, a
/// pipeline's version): opaque to the engine, never interpreted. Keys are names (UTF-8,
/// 1...`Limits.maxNameBytes`), at most `Limits.maxMetadataKeys` of them, and all values together
/// at most `Limits.maxMetadataBytes`; a load checks the same limits.
struct HostMetadata: Sendable {
    private(set) var values: [String: [UInt8]] = [:]
    private(set) var totalBytes = 0

    var isEmpty: Bool { values.isEmpty }

    /// Sets `key` to `value`; an empty value removes the key.
    /// - Throws: `.invalidArgument` for a bad key, too many keys or too many bytes (nothing changes).
    mutating func set(_ key: String, _ value: [UInt8]) throws(ChorusError) {
        try Limits.checkName(key, "key")
        let old = values[key]?.count ?? 0
        if value.isEmpty {
            values[key] = nil
            totalBytes -= old
            return
        }
        guard old > 0 || values.count < Limits.maxMetadataKeys else {
            throw .invalidArgument("the engine already holds \(Limits.maxMetadataKeys) metadata keys (CHORUS_MAX_METADATA_KEYS); remove one first")
        }
        let total = totalBytes - old + value.count
        guard value.count <= Limits.maxMetadataBytes, total <= Limits.maxMetadataBytes else {
            throw .invalidArgument("metadata '\(key)' of \(value.count) bytes would bring the engine's metadata to \(total) bytes; at most \(Limits.maxMetadataBytes) (CHORUS_MAX_METADATA_BYTES) are accepted")
        }
        values[key] = value
        totalBytes = total
    }

    subscript(key: String) -> [UInt8]? { values[key] }

    /// Snapshot section "HOST": u32 count, then per key (sorted, so equal metadata encodes to
    /// equal bytes) the key as a string and the value as a byte array.
    func encode(into w: inout ByteWriter) {
        w.write(UInt32(values.count))
        for key in values.keys.sorted() {
            w.write(key)
            w.writeArray(values[key]!)
        }
    }

    /// Reads what `encode` wrote, each count checked against the limits and the bytes left.
    static func decode(_ r: inout ByteReader) throws(ChorusError) -> HostMetadata {
        let count = Int(try r.read(UInt32.self))
        // An entry takes at least 13 bytes (key length, one key byte, value count).
        guard count <= Limits.maxMetadataKeys, count <= r.remaining / 13 else {
            throw .format("snapshot section 'HOST' claims \(count) metadata keys in \(r.remaining) bytes")
        }
        var m = HostMetadata()
        for _ in 0..<count {
            let key = try r.readString(maxBytes: Limits.maxNameBytes)
            let value = try r.readArray(UInt8.self, maxCount: Limits.maxMetadataBytes)
            guard !key.isEmpty, !value.isEmpty, m.values[key] == nil else {
                throw .format("snapshot section 'HOST' holds an empty, valueless or repeated metadata key")
            }
            do { try m.set(key, value) } catch { throw .format("snapshot section 'HOST': \(error.message)") }
        }
        return m
    }
}
