import Testing
#if canImport(Glibc)
import Glibc
#endif
import ChorusCore
@testable import ChorusText

@Suite struct ModelConfigTests {
    /// all-MiniLM-L6-v2's config.json, verbatim.
    static let miniLMConfig = #"""
    {
      "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
      "architectures": [
        "BertModel"
      ],
      "attention_probs_dropout_prob": 0.1,
      "gradient_checkpointing": false,
      "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1,
      "hidden_size": 384,
      "initializer_range": 0.02,
      "intermediate_size": 1536,
      "layer_norm_eps": 1e-12,
      "max_position_embeddings": 512,
      "model_type": "bert",
      "num_attention_heads": 12,
      "num_hidden_layers": 6,
      "pad_token_id": 0,
      "position_embedding_type": "absolute",
      "transformers_version": "4.8.2",
      "type_vocab_size": 2,
      "use_cache": true,
      "vocab_size": 30522
    }
    """#

    /// The config with one field replaced (or removed, for nil).
    func config(_ key: String, _ value: String?) throws -> JSONValue {
        guard case .object(var o) = try JSONValue.parse(Self.miniLMConfig) else { throw ChorusError.internalError("not an object") }
        if let value { o[key] = try JSONValue.parse(value) } else { o[key] = nil }
        return .object(o)
    }

    func message(_ json: JSONValue) -> String {
        do throws(ChorusError) {
            _ = try BertConfig(json: json, source: "config.json")
            return ""
        } catch {
            return error.message
        }
    }

    @Test func readsMiniLM() throws {
        let c = try BertConfig(json: try JSONValue.parse(Self.miniLMConfig))
        #expect(c == .miniLML6)
        #expect(c.headSize == 32 && c.layerNormEps == 1e-12 && c.padTokenId == 0)
    }

    @Test func rejectsMissingAndMalformedFields() throws {
        #expect(message(try config("hidden_size", nil)) == "config.json: \"hidden_size\" is missing")
        #expect(message(try config("hidden_size", "\"384\"")) == "config.json: \"hidden_size\" is a JSON string (string(\"384\")), not an integer")
        #expect(message(try config("num_hidden_layers", "6.5")).contains("\"num_hidden_layers\" is a JSON number"))
        #expect(message(try config("num_attention_heads", "0")) == "config.json: \"num_attention_heads\" is 0, outside 1...1024")
        #expect(message(try config("num_attention_heads", "7")) == "config.json: hidden_size 384 is not a multiple of num_attention_heads 7")
        #expect(message(try config("layer_norm_eps", "-1")).contains("\"layer_norm_eps\" must be a number in (0, 1)"))
        #expect(message(try config("layer_norm_eps", nil)) == "config.json: \"layer_norm_eps\" is missing")
        #expect(message(try config("pad_token_id", "30522")).contains("\"pad_token_id\" is 30522, outside 0...30521"))
        #expect(message(.array([])) == "config.json: a JSON array, not an object")
    }

    @Test func rejectsOtherArchitectures() throws {
        #expect(message(try config("hidden_act", "\"gelu_new\"")) == "config.json: hidden_act \"gelu_new\" is not supported (only \"gelu\", the erf form)")
        #expect(message(try config("hidden_act", nil)) == "config.json: \"hidden_act\" is missing")
        #expect(message(try config("model_type", "\"roberta\"")) == "config.json: model_type \"roberta\" is not supported (only \"bert\")")
        #expect(message(try config("position_embedding_type", "\"relative_key\"")).contains("is not supported (only \"absolute\")"))
        #expect(message(try config("is_decoder", "true")).contains("only encoders are supported"))
        let relu = try config("hidden_act", "\"relu\"")
        do throws(ChorusError) {
            _ = try BertConfig(json: relu)
        } catch {
            guard case .unsupportedVersion = error else { Issue.record("expected .unsupportedVersion, got \(error)"); return }
        }
        // Optional fields may be absent.
        #expect(try BertConfig(json: try config("model_type", nil)) == .miniLML6)
        #expect(try BertConfig(json: try config("pad_token_id", nil)).padTokenId == 0)
    }

    @Test func readsFromAFileAndNamesIt() throws {
        var template = Array("/tmp/chorus-config-XXXXXX".utf8CString)
        let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        defer { unlink(dir + "/config.json"); rmdir(dir) }
        try FileIO.writeAtomically(path: dir + "/config.json", bytes: Array(Self.miniLMConfig.utf8))
        #expect(try BertConfig(path: dir + "/config.json") == .miniLML6)
        try FileIO.writeAtomically(path: dir + "/config.json", bytes: Array("{\"hidden_size\": 384,}".utf8))
        #expect(throws: ChorusError.format("\(dir)/config.json: invalid JSON at byte 20: expected a string key in an object, found '}'")) {
            try BertConfig(path: dir + "/config.json")
        }
        #expect(throws: ChorusError.self) { try BertConfig(path: dir + "/missing.json") }
    }
}
