/// The limits of what Chorus takes in: one table, checked where data comes in (adding texts,
/// scenarios, facts, triples; queries) and again where a snapshot is read back, so that whatever
/// was accepted can be saved and loaded, and a load refuses what no add could have made.
/// `include/chorus.h` states the same numbers as `CHORUS_MAX_*` macros; the C host test checks
/// each one at its edge (the limit accepted, one byte more refused).
public enum Limits {
    /// An item or user text, a scenario description, a query: 1 MiB of UTF-8.
    public static let maxTextBytes = 1 << 20
    /// A name: a fact's relation or entity, a knowledge-graph entity or relation.
    public static let maxNameBytes = 4096
    /// A scenario name (it is repeated in explanations and logs).
    public static let maxScenarioNameBytes = 128
    /// A file path given to save or load (Linux's PATH_MAX).
    public static let maxPathBytes = 4096
    /// Defined scenarios (a scenario's index is stored in 16 bits; one is the default).
    public static let maxScenarios = Int(UInt16.max) - 1
    /// Host metadata (`chorus_engine_set_metadata`): all values of one engine together, in bytes
    /// (a binding's id maps: 10 million string ids of 20 bytes fit).
    public static let maxMetadataBytes = 1 << 30
    /// Host metadata keys one engine can hold (each a name: 1...`maxNameBytes`).
    public static let maxMetadataKeys = 1024

    /// Checks a text's length against `maxTextBytes`.
    /// - Throws: `.invalidArgument` naming `what` and the length.
    public static func checkText(_ text: String, _ what: @autoclosure () -> String) throws(ChorusError) {
        let n = text.utf8.count
        guard n <= maxTextBytes else { throw .invalidArgument("\(what()) is \(n) bytes; at most \(maxTextBytes) (CHORUS_MAX_TEXT_BYTES) are accepted") }
    }

    /// Checks a name: not empty, at most `maxNameBytes`.
    /// - Throws: `.invalidArgument` naming `what`.
    public static func checkName(_ name: String, _ what: @autoclosure () -> String) throws(ChorusError) {
        let n = name.utf8.count
        guard n > 0 else { throw .invalidArgument("\(what()) is empty") }
        guard n <= maxNameBytes else { throw .invalidArgument("\(what()) is \(n) bytes; at most \(maxNameBytes) (CHORUS_MAX_NAME_BYTES) are accepted") }
    }
}
