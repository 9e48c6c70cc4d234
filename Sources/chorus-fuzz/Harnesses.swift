import CChorus
import ChorusCore
import ChorusEval
import ChorusKnowledge
import ChorusText

/// One harness per entry point that parses bytes or takes sizes from the caller. Each runs one
/// input through the real entry point a user hits (the C ABI where it takes the input, the public
/// Swift API for the parsers the C ABI does not expose) and then uses what loaded, since a hostile
/// count can load and trap later. A harness returns normally for every input: an error status or a
/// thrown `ChorusError` is a correct answer; a trap, a sanitizer report or a broken invariant
/// (`fail`) is a finding.
enum Harness: String, CaseIterable {
    case engineSnapshot = "engine-snapshot"
    case graphSnapshot = "graph-snapshot"
    case safetensors
    case config
    case tokenizer
    case movielens
    case triples
    case api

    /// Whether inputs are snapshot containers (mutated by `SnapshotMutator`, keeping checksums valid).
    var isSnapshot: Bool { self == .engineSnapshot || self == .graphSnapshot }

    /// libFuzzer's `-max_len` for this harness: room for the seeds and some growth.
    var maxLength: Int {
        switch self {
        case .engineSnapshot: return 65_536
        case .graphSnapshot, .safetensors: return 16_384
        case .config, .tokenizer, .movielens, .triples, .api: return 4_096
        }
    }

    func run(_ bytes: [UInt8]) {
        switch self {
        case .engineSnapshot: EngineHarnesses.snapshot(bytes)
        case .graphSnapshot: GraphHarness.snapshot(bytes)
        case .safetensors: TextHarnesses.safetensors(bytes)
        case .config: TextHarnesses.config(bytes)
        case .tokenizer: TextHarnesses.tokenizer(bytes)
        case .movielens: FileHarnesses.movielens(bytes)
        case .triples: FileHarnesses.triples(bytes)
        case .api: EngineHarnesses.api(bytes)
        }
    }
}

/// A broken invariant: a finding, reported like a crash.
func fail(_ message: String) -> Never {
    fatalError("chorus-fuzz: \(message)")
}

/// What save writes, load reads: saves a loaded `kind` (engine, graph) to a scratch file with `save`,
/// loads it back with `load` and frees the result with `free`; anything else is a finding.
func requireSaveLoadRoundTrip(_ kind: String, save: (String) -> chorus_status,
                              load: (String, inout OpaquePointer?) -> chorus_status, free: (OpaquePointer?) -> Void) {
    let again = Scratch.path("\(kind)-again.chorus")
    guard save(again) == 0 else { fail("a loaded \(kind) cannot be saved: \(String(cString: chorus_last_error()))") }
    var reloaded: OpaquePointer? = nil
    guard load(again, &reloaded) == 0 else {
        fail("a loaded \(kind) saved a snapshot that does not load: \(String(cString: chorus_last_error()))")
    }
    free(reloaded)
}

// MARK: - Text model files

enum TextHarnesses {
    /// `SafeTensors(path:)` on the input as a file; every F32 tensor read back at its own shape.
    static func safetensors(_ bytes: [UInt8]) {
        let path = Scratch.write("model.safetensors", bytes)
        guard let file = try? SafeTensors(path: path) else { return }
        for (name, info) in file.tensors where info.dtype == .f32 {
            guard let t = try? file.tensor(named: name, shape: info.shape) else { continue }
            var sum: Float = 0
            for v in t { sum += v }
            _ = sum
        }
        _ = file.metadata.count
    }

    /// `config.json`: the JSON parser, then `BertConfig`'s validation.
    static func config(_ bytes: [UInt8]) {
        guard let json = try? JSONValue.parse(bytes, source: "config.json") else { return }
        _ = try? BertConfig(json: json)
        // The parser's depth limit at its smallest, on the same bytes.
        _ = try? JSONValue.parse(bytes, source: "config.json", maxDepth: 2)
    }

    /// A tokenizer fixed once (the seed vocabulary), reused across inputs.
    nonisolated(unsafe) static var fixed: WordPieceTokenizer? = nil

    static let defaultVocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "film", "##s", "light",
                                    "-", "hearted", "anim", "##ated", "cafe", "café", "naïve", "東", "京", "!", ".", ","]

    /// Input: one byte `n`, then a vocabulary file of `n * 16` bytes (or what remains), then text.
    /// The vocabulary goes through `WordPieceTokenizer(vocabularyFile:)`; the text is tokenized by
    /// it when it loaded and always by the fixed tokenizer (basic tokenizer, NFD, wordpieces).
    static func tokenizer(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let vocabLength = min(Int(bytes[0]) * 16, bytes.count - 1)
        let vocab = Array(bytes[1..<(1 + vocabLength)])
        let text = String(decoding: bytes[(1 + vocabLength)...], as: UTF8.self)
        if fixed == nil { fixed = try! WordPieceTokenizer(vocabulary: defaultVocabulary) }
        var tokenizers = [fixed!]
        if vocabLength > 0, let t = try? WordPieceTokenizer(vocabularyFile: Scratch.write("vocab.txt", vocab)) {
            tokenizers.append(t)
        }
        let maxLength = Int(bytes[0] % 7) == 0 ? 2 : 512
        for t in tokenizers {
            let ids = t.encode(text, maxLength: maxLength)
            guard ids.count >= 2, ids.count <= max(2, maxLength), ids.first == t.clsID, ids.last == t.sepID else {
                fail("encode gave \(ids.count) ids for maxLength \(maxLength), not [CLS] ... [SEP]")
            }
            for id in ids where t.token(of: id) == nil { fail("encode gave id \(id), outside the vocabulary") }
            for piece in t.tokens(text) where t.id(of: piece) == nil && piece != t.token(of: t.unkID) {
                fail("tokens gave '\(piece)', which is not in the vocabulary")
            }
        }
    }
}

// MARK: - Delimited text files

enum FileHarnesses {
    /// The MovieLens readers; the first byte picks the file.
    static func movielens(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        switch first % 5 {
        case 0: _ = try? MovieLens.parseRatingsCSV(body)
        case 1:
            if let movies = try? MovieLens.parseMoviesCSV(body) {
                for m in movies.values { _ = MovieLens.itemText(m) }
                _ = MovieLens.itemFacts(movies)
            }
        case 2: _ = try? MovieLens.parseUData(body)
        case 3: _ = try? MovieLens.parseUGenre(body)
        default:
            let genres = (try? MovieLens.parseUGenre(Array("unknown|0\nAction|1\n".utf8))) ?? MovieLens.ml100kGenres
            if let movies = try? MovieLens.parseUItem(body, genres: genres) { _ = MovieLens.itemFacts(movies) }
        }
    }

    /// The triple-file reader: a training store from the input, then the input again as an
    /// evaluation split against it (known and unknown names, duplicates).
    static func triples(_ bytes: [UInt8]) {
        var store = TripleStore()
        guard (try? TripleFile.append(bytes: bytes, path: "train.txt", to: &store)) != nil else { return }
        guard store.count > 0, store.entityCount > 0, store.relationCount > 0 else { fail("a loaded triple file gave an empty store") }
        if let (split, report) = try? TripleFile.loadSplit(bytes: bytes, path: "test.txt", against: store) {
            guard report.kept == split.count, report.kept <= report.lines else { fail("split report \(report) for \(split.count) triples") }
        }
    }
}
