/// Maps the host's `Int64` ids to dense `Int32` indices (0, 1, 2, ... in first-seen order) and back.
public struct IdIndex: Sendable, Equatable {
    public private(set) var ids: [Int64] = []
    private var lookup: [Int64: Int32] = [:]

    public init() {}

    public init(ids: [Int64]) throws(ChorusError) {
        self.ids = ids
        lookup.reserveCapacity(ids.count)
        for (i, id) in ids.enumerated() {
            if lookup.updateValue(Int32(i), forKey: id) != nil { throw .format("id \(id) appears twice in an id table") }
        }
    }

    public var count: Int { ids.count }

    /// The index of `id`, adding it if new.
    public mutating func intern(_ id: Int64) -> Int32 {
        if let i = lookup[id] { return i }
        let i = Int32(ids.count)
        ids.append(id)
        lookup[id] = i
        return i
    }

    public func index(of id: Int64) -> Int32? { lookup[id] }

    public func contains(_ id: Int64) -> Bool { lookup[id] != nil }
}
