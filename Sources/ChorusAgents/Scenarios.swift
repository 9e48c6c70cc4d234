import ChorusCore

/// Named scenarios (home feed, search, item page, push...) with a text description each, encoded
/// once by the engine's sentence encoder. Index 0 is the default scenario ("", no description, a
/// zero vector): interactions and requests without a scenario belong to it.
///
/// The coordinator's ranking network is conditioned on the scenario: shared parameters, plus a
/// modulation of each agent's weight by the scenario's description vector (shared projection) and
/// by a per-scenario offset pulled towards zero, so a scenario with little data borrows from the
/// others and a scenario with none still gets what its description says (see `RankingMLP`).
public struct ScenarioTable: Sendable, Equatable {
    public private(set) var names: [String] = [""]
    public private(set) var descriptions: [String] = [""]
    /// Row s: scenario s's description vector (unit length; zeros for the default).
    public private(set) var vectors: [[Float]] = [[]]
    public private(set) var dimension = 0

    public init() {}

    public var count: Int { names.count }
    public func index(of name: String) -> Int? { names.firstIndex(of: name) }

    /// Defines (or redefines) a scenario. Its vector must come from the same encoder as the others.
    /// - Throws: `.invalidArgument` for an empty or over-long name or description, or too many
    ///   scenarios (`Limits`).
    public mutating func define(_ name: String, description: String, vector: [Float]) throws(ChorusError) {
        try ScenarioTable.checkName(name)
        try Limits.checkText(description, "the description of scenario '\(name)'")
        guard dimension == 0 || vector.count == dimension else {
            throw .invalidArgument("scenario '\(name)' was encoded with \(vector.count) dimensions, the others with \(dimension)")
        }
        dimension = vector.count
        if vectors[0].count != dimension { vectors[0] = [Float](repeating: 0, count: dimension) }
        if let s = index(of: name) {
            descriptions[s] = description; vectors[s] = vector
            return
        }
        guard names.count <= Limits.maxScenarios else { throw .invalidArgument("too many scenarios (at most \(Limits.maxScenarios))") }
        names.append(name); descriptions.append(description); vectors.append(vector)
    }

    /// A scenario name is 1...`Limits.maxScenarioNameBytes` bytes.
    static func checkName(_ name: String) throws(ChorusError) {
        guard !name.isEmpty, name.utf8.count <= Limits.maxScenarioNameBytes else {
            throw .invalidArgument("a scenario name must be 1...\(Limits.maxScenarioNameBytes) bytes (CHORUS_MAX_SCENARIO_NAME_BYTES), got \(name.utf8.count)")
        }
    }

    /// The index of a request's scenario (nil or "" = the default).
    /// - Throws: `.notFound` for a name that was never defined.
    public func resolve(_ name: String?) throws(ChorusError) -> Int {
        guard let name, !name.isEmpty else { return 0 }
        guard let s = index(of: name) else {
            throw .notFound("unknown scenario '\(name)'; defined: \(names.dropFirst().joined(separator: ", ")) (define it with define_scenario)")
        }
        return s
    }

    func encode(into w: inout ByteWriter) {
        w.write(UInt32(dimension)); w.write(UInt32(names.count - 1))
        for s in 1..<names.count { w.write(names[s]); w.write(descriptions[s]); w.writeArray(vectors[s]) }
    }

    static func decode(_ r: inout ByteReader) throws(ChorusError) -> ScenarioTable {
        var t = ScenarioTable()
        let d = Int(try r.read(UInt32.self)), n = Int(try r.read(UInt32.self))
        guard d >= 1, d <= 65_536, n >= 1, n <= Limits.maxScenarios else { throw .format("scenario table shape is implausible") }
        for _ in 0..<n {
            let name = try r.readString(maxBytes: Limits.maxScenarioNameBytes), description = try r.readString()
            let v = try r.readArray(Float.self, maxCount: d)
            guard v.count == d, v.allSatisfy(\.isFinite), t.index(of: name) == nil else { throw .format("scenario '\(name)' is malformed or repeated") }
            do { try t.define(name, description: description, vector: v) } catch { throw .format(error.message) }
        }
        return t
    }
}
