import ChorusCore

/// The texts the host gave for items (title, description, tags) and users (a profile), each kept
/// with its encoder vector. Vectors are computed once, when the text is set, so fitting and
/// recommending never run the encoder over the catalogue again.
///
/// All vectors come from one encoder (`encoderName`): vectors of two encoders are not comparable,
/// so the engine refuses to mix them (see `Engine.setTexts`).
public struct TextCatalogue: Sendable {
    public struct Entry: Sendable, Equatable {
        public var text: String
        /// L2-normalised (a zero row for a text with no tokens).
        public var vector: [Float]
    }

    /// The encoder of every vector here ("" while empty).
    public private(set) var encoderName = ""
    public private(set) var dimension = 0
    public private(set) var items: [Int64: Entry] = [:]
    public private(set) var users: [Int64: Entry] = [:]

    public init() {}

    public var isEmpty: Bool { items.isEmpty && users.isEmpty }

    public enum Kind: Sendable { case item, user }

    /// Sets (non-empty text) or removes (empty text) entries. `vectors` holds one row of
    /// `dimension` floats per non-empty text, in order.
    /// - Throws: `.invalidArgument` when the vectors come from another encoder than those already here.
    public mutating func set(_ kind: Kind, ids: [Int64], texts: [String], vectors: [Float],
                             encoderName: String, dimension: Int) throws(ChorusError) {
        if !isEmpty && (encoderName != self.encoderName || dimension != self.dimension) {
            throw .invalidArgument("this engine's texts were encoded by '\(self.encoderName)' (\(self.dimension) dimensions); the encoder now loaded is '\(encoderName)' (\(dimension)): vectors of two encoders cannot be mixed (load the same encoder, or start a new engine)")
        }
        self.encoderName = encoderName
        self.dimension = dimension
        var row = 0
        for (id, text) in zip(ids, texts) {
            if text.isEmpty {
                if kind == .item { items[id] = nil } else { users[id] = nil }
                continue
            }
            let entry = Entry(text: text, vector: Array(vectors[(row * dimension)..<((row + 1) * dimension)]))
            row += 1
            if kind == .item { items[id] = entry } else { users[id] = entry }
        }
        if isEmpty { self.encoderName = ""; self.dimension = 0 }
    }

    /// Text vectors of `index`'s items as rows of a matrix (a zero row for an item without text),
    /// or nil when none of them has a text.
    public func itemMatrix(for index: IdIndex) throws(ChorusError) -> FloatMatrix? {
        guard dimension > 0, index.ids.contains(where: { items[$0] != nil }) else { return nil }
        let m = try FloatMatrix(rows: index.count, cols: dimension)
        for (i, id) in index.ids.enumerated() {
            guard let v = items[id]?.vector else { continue }
            let row = m.row(i)
            for j in 0..<dimension { row[j] = v[j] }
        }
        return m
    }

    // MARK: - Snapshot ("TEXT" section)

    public func encode(into w: inout ByteWriter) {
        w.write(encoderName)
        w.write(UInt32(dimension))
        for table in [items, users] {
            let ids = table.keys.sorted()
            w.write(UInt64(ids.count))
            for id in ids {
                let e = table[id]!
                w.write(id)
                w.write(e.text)
                w.writeArray(e.vector)
            }
        }
    }

    public static func decode(_ r: inout ByteReader) throws(ChorusError) -> TextCatalogue {
        var c = TextCatalogue()
        c.encoderName = try r.readString(maxBytes: Limits.maxNameBytes)
        c.dimension = Int(try r.read(UInt32.self))
        guard c.dimension >= 1, c.dimension <= 65_536 else { throw .format("text vector dimension \(c.dimension) is implausible") }
        for kind in [Kind.item, .user] {
            let n = try r.read(UInt64.self)
            guard n <= UInt64(Int32.max) else { throw .format("text table size \(n) is implausible") }
            // Before the table reserves room for n entries: each takes at least its id, a non-empty
            // string and a vector of `dimension` floats.
            let smallestEntry = 8 + 4 + 1 + 8 + 4 * c.dimension
            guard n <= UInt64(r.remaining / smallestEntry) else {
                throw .format("text table of \(n) entries cannot fit the \(r.remaining) bytes left")
            }
            var table: [Int64: Entry] = [:]
            table.reserveCapacity(Int(n))
            for _ in 0..<Int(n) {
                let id = try r.read(Int64.self)
                let text = try r.readString()
                let vector = try r.readArray(Float.self, maxCount: c.dimension)
                guard !text.isEmpty, vector.count == c.dimension, vector.allSatisfy(\.isFinite) else {
                    throw .format("text entry \(id) is malformed (empty text, wrong dimension or non-finite vector)")
                }
                guard table.updateValue(Entry(text: text, vector: vector), forKey: id) == nil else {
                    throw .format("text entry \(id) appears twice")
                }
            }
            if kind == .item { c.items = table } else { c.users = table }
        }
        guard !c.isEmpty else { throw .format("an empty text section") }
        return c
    }
}
