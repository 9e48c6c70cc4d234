import ChorusCore

/// Turns texts into L2-normalised vectors of a fixed dimension.
public protocol SentenceEncoder: AnyObject, Sendable {
    /// A short name for reports ("all-MiniLM-L6-v2", "hashing-384").
    var name: String { get }
    var dimension: Int { get }
    /// Encodes `texts` into `texts.count * dimension` floats, row-major, each row L2-normalised
    /// (an empty or all-padding text gives a zero row).
    func encode(_ texts: [String], threads: Int) throws(ChorusError) -> [Float]
}
