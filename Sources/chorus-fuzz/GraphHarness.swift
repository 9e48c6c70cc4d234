import CChorus
import ChorusCore

/// The knowledge graph's snapshot, through the C ABI.
enum GraphHarness {
    static let ok: chorus_status = 0

    /// `chorus_kg_load` on the input as a file; then counts, vectors of a few names, link
    /// prediction on a small split (filtered ranks read the loaded model and triples), triples
    /// added and a tiny training run, and save + load again.
    static func snapshot(_ bytes: [UInt8]) {
        let path = Scratch.write("graph.chorus", bytes)
        var graph: OpaquePointer? = nil
        guard chorus_kg_load(path, &graph) == ok, let g = graph else { return }
        defer { chorus_kg_free(g) }
        var counts = (0, 0, 0)
        guard chorus_kg_counts(g, &counts.0, &counts.1, &counts.2) == ok else { fail("chorus_kg_counts failed on a loaded graph") }
        var vector = [Float](repeating: 0, count: 64)
        var dim = 0
        for name in ["a", "b", "c", "item:1", "Animation"] {
            _ = chorus_kg_entity_vector(g, name, &vector, vector.count, &dim)
            _ = chorus_kg_entity_vector(g, name, &vector, 0, &dim)
        }
        for name in ["r", "s", "genre"] { _ = chorus_kg_relation_vector(g, name, &vector, vector.count, &dim) }
        var metrics = chorus_kg_metrics()
        _ = chorus_kg_metrics_init(&metrics)
        _ = chorus_kg_evaluate_tsv(g, split, &metrics)
        let heads = ["a", "x"], relations = ["r", "s"], tails = ["b", "a"]
        var added = 0
        EngineHarnesses.withCStrings(heads.map { Array($0.utf8CString) }) { h in
            EngineHarnesses.withCStrings(relations.map { Array($0.utf8CString) }) { r in
                EngineHarnesses.withCStrings(tails.map { Array($0.utf8CString) }) { t in _ = chorus_kg_add_triples(g, h, r, t, 2, &added) }
            }
        }
        _ = chorus_kg_evaluate_tsv(g, split, &metrics)
        requireSaveLoadRoundTrip("graph", save: { chorus_kg_save(g, $0) }, load: { chorus_kg_load($0, &$1) },
                                 free: { chorus_kg_free($0) })
        if counts.2 <= 64 {
            var p = chorus_kg_train_params()
            _ = chorus_kg_train_params_init(&p)
            p.dim = 2; p.epochs = 1; p.threads = 1; p.negatives = 2; p.batch_size = 8
            _ = chorus_kg_train(g, &p)
        }
    }

    /// A link-prediction split naming the seed graphs' entities and relations, and one unknown.
    static let split: String = Scratch.write("split.tsv", Array("a\tr\tb\nb\ts\tc\nc\tr\ta\nz\tr\ta\n".utf8))
}
