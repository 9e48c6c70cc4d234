/// Maps keys to dense `Int32` indices (0, 1, 2, ... in first-seen order) and back: the host's
/// `Int64` user and item ids (`IdIndex`), a knowledge graph's entity and relation names (`NameIndex`).
/// Inlinable so that each key type gets specialised code in the modules that intern per record.
public struct DenseIndex<Key: Hashable & Sendable>: Sendable, Equatable {
    @usableFromInline var storage: [Key] = []
    @usableFromInline var lookup: [Key: Int32] = [:]

    @inlinable public var keys: [Key] { storage }

    public init() {}

    /// Rebuilds an index from its keys in index order.
    /// - Throws: `.format` with `repeated(key)` when a key appears twice (a corrupted table).
    public init(keys: [Key], repeated: (Key) -> String) throws(ChorusError) {
        storage = keys
        lookup.reserveCapacity(keys.count)
        for (i, key) in keys.enumerated() where lookup.updateValue(Int32(i), forKey: key) != nil {
            throw .format(repeated(key))
        }
    }

    @inlinable public var count: Int { storage.count }

    /// The index of `key`, adding it if new.
    @inlinable public mutating func intern(_ key: Key) -> Int32 {
        if let i = lookup[key] { return i }
        let i = Int32(storage.count)
        storage.append(key)
        lookup[key] = i
        return i
    }

    @inlinable public func index(of key: Key) -> Int32? { lookup[key] }

    @inlinable public func contains(_ key: Key) -> Bool { lookup[key] != nil }

    /// The key at `index`, nil when out of range.
    @inlinable public func key(at index: Int32) -> Key? { index >= 0 && Int(index) < storage.count ? storage[Int(index)] : nil }
}

/// The host's user or item ids.
public typealias IdIndex = DenseIndex<Int64>

extension DenseIndex where Key == Int64 {
    @inlinable public var ids: [Int64] { storage }

    public init(ids: [Int64]) throws(ChorusError) {
        try self.init(keys: ids) { "id \($0) appears twice in an id table" }
    }
}

/// A knowledge graph's entity or relation names.
public typealias NameIndex = DenseIndex<String>

extension DenseIndex where Key == String {
    @inlinable public var names: [String] { storage }

    @inlinable public func id(of name: String) -> Int32? { index(of: name) }

    public func name(of id: Int32) -> String? { key(at: id) }

    public init(names: [String], context: String) throws(ChorusError) {
        try self.init(keys: names) { "\(context): the name '\($0)' appears twice" }
    }
}
