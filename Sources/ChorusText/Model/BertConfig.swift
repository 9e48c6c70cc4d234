import ChorusCore

/// The architecture of a BERT encoder, read from a Hugging Face `config.json` and validated for
/// what `MiniLMModel` runs: absolute position embeddings, the erf form of GELU, heads that split the
/// hidden size evenly.
public struct BertConfig: Equatable, Sendable {
    public var hiddenSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var intermediateSize: Int
    public var maxPositionEmbeddings: Int
    public var vocabSize: Int
    public var typeVocabSize: Int
    public var layerNormEps: Float
    /// Always "gelu" once validated (the erf form, `0.5 x (1 + erf(x / sqrt 2))`).
    public var hiddenAct: String
    /// The padding token id (`pad_token_id`, 0 when absent).
    public var padTokenId: Int

    /// The width of one attention head.
    public var headSize: Int { hiddenSize / numAttentionHeads }

    /// all-MiniLM-L6-v2's configuration.
    public static let miniLML6 = BertConfig(
        hiddenSize: 384, numHiddenLayers: 6, numAttentionHeads: 12, intermediateSize: 1536,
        maxPositionEmbeddings: 512, vocabSize: 30522, typeVocabSize: 2, layerNormEps: 1e-12,
        hiddenAct: "gelu", padTokenId: 0)

    public init(hiddenSize: Int, numHiddenLayers: Int, numAttentionHeads: Int, intermediateSize: Int,
                maxPositionEmbeddings: Int, vocabSize: Int, typeVocabSize: Int, layerNormEps: Float,
                hiddenAct: String, padTokenId: Int) {
        self.hiddenSize = hiddenSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.intermediateSize = intermediateSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.vocabSize = vocabSize
        self.typeVocabSize = typeVocabSize
        self.layerNormEps = layerNormEps
        self.hiddenAct = hiddenAct
        self.padTokenId = padTokenId
    }

    /// Reads and validates a `config.json`.
    /// - Throws: `.notFound`/`.io` when the file cannot be read, `.format` for invalid JSON or a
    ///   missing or malformed field, `.unsupportedVersion` for an architecture this code does not run.
    public init(path: String) throws(ChorusError) {
        let bytes = try FileIO.readAll(path: path)
        try self.init(json: try JSONValue.parse(bytes, source: path), source: path)
    }

    /// Reads and validates a parsed `config.json`; `source` names it in error messages.
    public init(json: JSONValue, source: String = "config.json") throws(ChorusError) {
        guard case .object = json else { throw .format("\(source): a JSON \(json.typeName), not an object") }

        func int(_ key: String, _ range: ClosedRange<Int>) throws(ChorusError) -> Int {
            guard let v = json[key] else { throw .format("\(source): \"\(key)\" is missing") }
            guard let i = v.intValue else { throw .format("\(source): \"\(key)\" is a JSON \(v.typeName) (\(v)), not an integer") }
            guard range.contains(i) else { throw .format("\(source): \"\(key)\" is \(i), outside \(range.lowerBound)...\(range.upperBound)") }
            return i
        }
        func optionalString(_ key: String) throws(ChorusError) -> String? {
            guard let v = json[key], !v.isNull else { return nil }
            guard let s = v.stringValue else { throw .format("\(source): \"\(key)\" is a JSON \(v.typeName), not a string") }
            return s
        }

        if let type = try optionalString("model_type"), type != "bert" {
            throw .unsupportedVersion("\(source): model_type \"\(type)\" is not supported (only \"bert\")")
        }
        if let pos = try optionalString("position_embedding_type"), pos != "absolute" {
            throw .unsupportedVersion("\(source): position_embedding_type \"\(pos)\" is not supported (only \"absolute\")")
        }
        if json["is_decoder"]?.boolValue == true {
            throw .unsupportedVersion("\(source): is_decoder is true; only encoders are supported")
        }
        guard let act = try optionalString("hidden_act") else { throw .format("\(source): \"hidden_act\" is missing") }
        guard act == "gelu" else {
            throw .unsupportedVersion("\(source): hidden_act \"\(act)\" is not supported (only \"gelu\", the erf form)")
        }
        guard let epsValue = json["layer_norm_eps"] else { throw .format("\(source): \"layer_norm_eps\" is missing") }
        guard let eps = epsValue.numberValue, eps > 0, eps < 1 else {
            throw .format("\(source): \"layer_norm_eps\" must be a number in (0, 1), got \(epsValue)")
        }

        self.hiddenSize = try int("hidden_size", 1...65536)
        self.numHiddenLayers = try int("num_hidden_layers", 1...256)
        self.numAttentionHeads = try int("num_attention_heads", 1...1024)
        self.intermediateSize = try int("intermediate_size", 1...262_144)
        self.maxPositionEmbeddings = try int("max_position_embeddings", 1...65536)
        self.vocabSize = try int("vocab_size", 1...10_000_000)
        self.typeVocabSize = try int("type_vocab_size", 1...1024)
        self.layerNormEps = Float(eps)
        self.hiddenAct = act
        if json["pad_token_id"] == nil || json["pad_token_id"]!.isNull {
            self.padTokenId = 0
        } else {
            self.padTokenId = try int("pad_token_id", 0...(vocabSize - 1))
        }
        guard hiddenSize % numAttentionHeads == 0 else {
            throw .format("\(source): hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
    }
}
