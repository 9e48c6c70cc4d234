#if canImport(Glibc)
import Glibc
#endif
import CChorus
import ChorusCore

/// The seed corpora (`chorus-fuzz seeds DIR`; committed under Tests/fuzz/corpus): small, valid
/// inputs made by the library's own writers where it has them (engine and graph snapshots), and
/// by short generators here for the formats it only reads.
enum Seeds {
    static func write(to root: String) {
        for h in Harness.allCases {
            let dir = root + "/" + h.rawValue
            mkdir(root, 0o755)
            mkdir(dir, 0o755)
            for (name, bytes) in seeds(h, directory: dir) where !bytes.isEmpty {
                Scratch.write("seed", bytes)
                guard rename(Scratch.path("seed"), dir + "/" + name) == 0 || copy(Scratch.path("seed"), to: dir + "/" + name) else {
                    printError("cannot write \(dir)/\(name)"); exit(1)
                }
            }
        }
    }

    static func copy(_ from: String, to: String) -> Bool {
        guard let bytes = readFile(from), let f = fopen(to, "wb") else { return false }
        defer { fclose(f) }
        return fwrite(bytes, 1, bytes.count, f) == bytes.count
    }

    /// (file name, bytes); snapshot seeds are saved by the library straight into `directory` and
    /// listed with empty bytes.
    static func seeds(_ h: Harness, directory: String) -> [(String, [UInt8])] {
        switch h {
        case .engineSnapshot: engineSnapshots(directory); return []
        case .graphSnapshot: graphSnapshots(directory); return []
        case .safetensors: return safetensors()
        case .config: return [("minilm.json", Array(miniLMConfig.utf8)), ("small.json", Array(smallConfig.utf8))]
        case .tokenizer: return tokenizer()
        case .movielens: return movielens()
        case .triples:
            return [("train.tsv", Array("a\tr\tb\nb\ts\tc\r\nc\tr\ta\n\nd\thypernym\ta\n".utf8)),
                    ("names.tsv", Array("05\t_also_see\t07\nitem:1\tgenre\tAnimation\nitem:2\tgenre\tCafé 東京\nitem:1\tgenre\tAnimation".utf8))]
        case .api: return api()
        }
    }

    static let ok: chorus_status = 0

    static func check(_ s: chorus_status, _ what: String) {
        guard s == ok else { printError("seeds: \(what) failed: \(String(cString: chorus_last_error()))"); exit(1) }
    }

    /// Users 1...8, items 101...110, with timestamps; small enough that a fit stays in milliseconds.
    static func addLog(_ e: OpaquePointer, scenario: String? = nil) {
        var users: [Int64] = [], items: [Int64] = [], weights: [Float] = [], times: [Int64] = []
        for u in 1...8 {
            for j in 0..<5 {
                users.append(Int64(u)); items.append(Int64(101 + (u * 3 + j * 2) % 10))
                weights.append(Float(1 + j % 3)); times.append(Int64(1_000_000 + u * 100 + j))
            }
        }
        if let scenario {
            check(chorus_engine_add_scenario_interactions(e, scenario, users, items, weights, times, users.count), "add_scenario_interactions")
        } else {
            check(chorus_engine_add_interactions(e, users, items, weights, times, users.count), "add_interactions")
        }
    }

    static func newEngine() -> OpaquePointer {
        var p = chorus_engine_params()
        _ = chorus_engine_params_init(&p)
        p.flags = UInt32(CHORUS_ENGINE_HASHING_ENCODER)
        var e: OpaquePointer? = nil
        check(chorus_engine_create(&p, &e), "engine_create")
        return e!
    }

    static func engineSnapshots(_ dir: String) {
        // Data only, no model.
        var e = newEngine()
        addLog(e)
        check(chorus_engine_save(e, dir + "/unfitted.chorus"), "save")
        // Fitted on interactions alone.
        check(EngineHarnesses.tinyFit(e, factors: 4, iterations: 2), "fit")
        check(chorus_engine_save(e, dir + "/fitted.chorus"), "save")
        chorus_engine_free(e)
        // Fitted with a scenario, texts, facts and a trained graph: every section there is.
        e = newEngine()
        check(chorus_engine_define_scenario(e, "home", "the home feed"), "define_scenario")
        addLog(e)
        addLog(e, scenario: "home")
        let ids: [Int64] = [101, 102, 103]
        EngineHarnesses.withCStrings(["a light-hearted animated film", "a tense thriller", "Café 東京"].map { Array($0.utf8CString) }) { t in
            check(chorus_engine_set_item_texts(e, ids, t, 3), "set_item_texts")
        }
        EngineHarnesses.withCStrings([Array("likes animation".utf8CString)]) { t in check(chorus_engine_set_user_texts(e, [1], t, 1), "set_user_texts") }
        var added = 0
        EngineHarnesses.withCStrings(["genre", "genre", "genre", "director"].map { Array($0.utf8CString) }) { r in
            EngineHarnesses.withCStrings(["Animation", "Thriller", "Animation", "Someone"].map { Array($0.utf8CString) }) { en in
                check(chorus_engine_add_item_facts(e, [101, 102, 103, 101], r, en, 4, &added), "add_item_facts")
            }
        }
        var kg: OpaquePointer? = nil
        check(chorus_engine_knowledge_graph(e, &kg), "knowledge_graph")
        var tp = chorus_kg_train_params()
        _ = chorus_kg_train_params_init(&tp)
        tp.dim = 4; tp.epochs = 2; tp.threads = 1; tp.negatives = 2; tp.batch_size = 4
        check(chorus_kg_train(kg, &tp), "kg_train")
        chorus_kg_free(kg)
        let hostBytes: [UInt8] = Array("CHID".utf8) + [1, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x61]
        check(chorus_engine_set_metadata(e, "chorus-python/user-ids", hostBytes, hostBytes.count), "set_metadata")
        check(EngineHarnesses.tinyFit(e, factors: 4, iterations: 2), "fit")
        check(chorus_engine_save(e, dir + "/full.chorus"), "save")
        chorus_engine_free(e)
    }

    static func graphSnapshots(_ dir: String) {
        var g: OpaquePointer? = nil
        check(chorus_kg_create(&g), "kg_create")
        let heads = ["a", "b", "c", "d", "a"], relations = ["r", "s", "r", "r", "s"], tails = ["b", "c", "a", "a", "d"]
        var added = 0
        EngineHarnesses.withCStrings(heads.map { Array($0.utf8CString) }) { h in
            EngineHarnesses.withCStrings(relations.map { Array($0.utf8CString) }) { r in
                EngineHarnesses.withCStrings(tails.map { Array($0.utf8CString) }) { t in check(chorus_kg_add_triples(g, h, r, t, 5, &added), "kg_add_triples") }
            }
        }
        check(chorus_kg_save(g, dir + "/untrained.chorus"), "kg_save")
        for model in ["rotate", "complex"] {
            var p = chorus_kg_train_params()
            _ = chorus_kg_train_params_init(&p)
            p.dim = 4; p.epochs = 2; p.threads = 1; p.negatives = 2; p.batch_size = 4
            model.withCString { m in p.model = m; check(chorus_kg_train(g, &p), "kg_train") }
            check(chorus_kg_save(g, dir + "/\(model).chorus"), "kg_save")
        }
        chorus_kg_free(g)
    }

    /// A safetensors file: 8-byte header length, JSON header (padded with spaces to 8 bytes, as
    /// the reference writer does), data.
    static func safetensorsFile(_ tensors: [(name: String, dtype: String, shape: [Int], data: [UInt8])], metadata: Bool) -> [UInt8] {
        var entries: [String] = metadata ? ["\"__metadata__\":{\"format\":\"pt\"}"] : []
        var data: [UInt8] = []
        for t in tensors {
            entries.append("\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(data.count),\(data.count + t.data.count)]}")
            data += t.data
        }
        var header = Array(("{" + entries.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(32) }
        var out: [UInt8] = []
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out += $0 }
        return out + header + data
    }

    static func floats(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    static func safetensors() -> [(String, [UInt8])] {
        [("f32-tensors.bin", safetensorsFile([("embeddings.weight", "F32", [2, 3], floats([1, -2, 0.5, 0, 3, -0.25])),
                                               ("bias", "F32", [3], floats([0.1, 0.2, 0.3]))], metadata: true)),
         ("mixed-tensors.bin", safetensorsFile([("ids", "I64", [2], [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]),
                                                 ("half", "F16", [2], [0, 0x3c, 0, 0xc0]),
                                                 ("scalar", "F32", [], floats([7]))], metadata: false))]
    }

    static let miniLMConfig = """
        {"_name_or_path": "nreimers/MiniLM-L6-H384-uncased", "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1,
         "gradient_checkpointing": false, "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 384,
         "initializer_range": 0.02, "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512,
         "model_type": "bert", "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
         "position_embedding_type": "absolute", "transformers_version": "4.8.2", "type_vocab_size": 2,
         "use_cache": true, "vocab_size": 30522}
        """
    static let smallConfig = """
        {"model_type":"bert","hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16,
         "max_position_embeddings":16,"vocab_size":22,"type_vocab_size":2,"layer_norm_eps":1e-12,"hidden_act":"gelu",
         "pad_token_id":0,"nested":[[1,2.5e-3,-0.0,"\\u00e9\\ud83d\\ude00",null,true,false,{}]]}
        """

    static func tokenizer() -> [(String, [UInt8])] {
        var vocab = Array(TextHarnesses.defaultVocabulary.joined(separator: "").utf8) + [10]
        while vocab.count % 16 != 0 { vocab.append(UInt8(ascii: "z")) }
        let texts = ["A light-hearted ANIMATED film, naïve café!", "東京 Ｆｕｌｌｗｉｄｔｈ e\u{301}t\u{E9} \u{1F600} [CLS] [UNK]x",
                     String(repeating: "supercalifragilistic", count: 8)]
        return texts.enumerated().map { i, t in ("text\(i).bin", [UInt8(vocab.count / 16)] + vocab + Array(t.utf8)) }
            + [("fixed-only.bin", [0] + Array("Hello, World! ÀÉÎ ß ǅ ﬁ".utf8))]
    }

    static func movielens() -> [(String, [UInt8])] {
        [("ratings.csv", [0] + Array("userId,movieId,rating,timestamp\n1,1,4.0,964982703\r\n1,3,4.5,964981247\n2,1,0.5,964982224\n".utf8)),
         ("movies.csv", [1] + Array("movieId,title,genres\n1,Toy Story (1995),Adventure|Animation|Children\n11,\"American President, The (1995)\",Comedy|Drama|Romance\n12,\"Quote \"\"in\"\" title\",(no genres listed)\n".utf8)),
         ("u.data", [2] + Array("196\t242\t3\t881250949\n186\t302\t3\t891717742\n".utf8)),
         ("u.genre", [3] + Array("unknown|0\nAction|1\nAdventure|2\n\n".utf8)),
         ("u.item", [4] + Array("1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy%20Story%20(1995)|0|0|1\n2|GoldenEye (1995)|01-Jan-1995||x|0|1|0\n".utf8))]
    }

    /// Inputs for the api harness, written with the decoder's own choices (APIHarness.swift):
    /// a byte per choice, so that each seed is a meaningful sequence of calls.
    static func api() -> [(String, [UInt8])] {
        func add(_ pairs: [(UInt8, UInt8)], scenario: Bool = false) -> [UInt8] {
            // op 0, n - 1, then (user, item, weight, timestamp-is-a-byte, timestamp) per row, then mode.
            var out: [UInt8] = [0, UInt8(pairs.count - 1)]
            for (u, i) in pairs { out += [u, i, 2, 1, u &+ i] }
            return out + [scenario ? 8 : 0] + (scenario ? [4] + Array("home".utf8) : [])
        }
        let log: [UInt8] = add([(1, 2), (1, 3), (2, 3), (2, 4), (3, 2), (3, 5), (4, 5), (4, 6)])
            + add([(5, 2), (5, 6), (6, 3), (6, 7), (7, 7), (7, 2), (8, 4), (8, 3)])
        let fit: [UInt8] = [6, 2, 2, 1, 1, 1, 1]
        let recommend: [UInt8] = [7, 2, 1, 2, 5, 2, 1, 0]
        let details: [UInt8] = [9, 1, 3, 4, 2, 10, 0]
        let explain: [UInt8] = [10, 1, 2, 4, 1, 0]
        let similar: [UInt8] = [11, 1, 2, 3, 2, 0]
        let scenario: [UInt8] = [4, 4] + Array("home".utf8) + [9] + Array("home feed".utf8)
        let texts: [UInt8] = [2, 1, 2, 3, 1, 13] + Array("animated film".utf8) + [1, 8] + Array("thriller".utf8)
        let userText: [UInt8] = [3, 0, 9, 1, 9] + Array("animation".utf8)
        let facts: [UInt8] = [5, 1, 2, 3, 1, 5] + Array("genre".utf8) + [1, 5] + Array("genre".utf8) + [4] + Array("Anim".utf8) + [4] + Array("Anim".utf8)
        let request: [UInt8] = [7, 1, 1, 5, 2, 1, 255, 1, 2, 2, 3, 1, 4, 1, 1, 6] + Array("a film".utf8) + [1, 2, 1, 1, 1, 1]
        return [("basic.bin", [1] + log + fit + recommend + details + explain + similar),
                ("texts.bin", [1] + scenario + log + add([(1, 5), (2, 6)], scenario: true) + texts + userText + facts + fit + recommend + request + explain),
                ("unfitted.bin", [1] + log + recommend + similar + explain)]
    }
}
