#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusEval
import ChorusKnowledge
import ArgumentParser

/// `chorus kg train|eval`: knowledge-graph embeddings on a directory of train/valid/test.txt.
struct KGCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kg",
        abstract: "Train or evaluate knowledge-graph embeddings (TransE, DistMult, ComplEx, RotatE).",
        discussion: """
            <dir> holds train.txt, valid.txt and test.txt: tab-separated head, relation, tail (LF or \
            CRLF). 'train' fits on train.txt and reports filtered link prediction on --split (filtered \
            against train + valid + test; triples naming an entity or relation absent from train are \
            counted and left out). 'eval' loads a file written by --save and evaluates it.
            """,
        subcommands: [KGTrainCommand.self, KGEvalCommand.self])

    struct Data {
        var store: TripleStore
        var valid: [Triple]
        var test: [Triple]
        var known: KnownTriples
    }

    static func load(_ dir: String, store given: TripleStore?) throws(ChorusError) -> Data {
        let clock = Stopwatch()
        let store: TripleStore
        if let given { store = given } else { store = try TripleFile.loadTraining(path: dir + "/train.txt") }
        let (valid, vr) = try TripleFile.loadSplit(path: dir + "/valid.txt", against: store)
        let (test, tr) = try TripleFile.loadSplit(path: dir + "/test.txt", against: store)
        print("Data      \(dir): \(TextFormat.grouped(store.count)) training triples, \(TextFormat.grouped(store.entityCount)) entities, "
              + "\(TextFormat.grouped(store.relationCount)) relations (\(TextFormat.seconds(clock.seconds)))")
        if store.duplicatesDropped > 0 { print("          train.txt: \(store.duplicatesDropped) duplicate triples dropped") }
        for (name, r) in [("valid", vr), ("test", tr)] {
            var line = "          \(name).txt: \(TextFormat.grouped(r.kept)) of \(TextFormat.grouped(r.lines)) triples ranked"
            if r.unknownEntity + r.unknownRelation > 0 {
                line += "; \(r.unknownEntity) with an entity and \(r.unknownRelation) with a relation absent from train (excluded from the metrics)"
            }
            if r.duplicates > 0 { line += "; \(r.duplicates) duplicates dropped" }
            print(line)
        }
        return Data(store: store, valid: valid, test: test, known: KnownTriples(store: store, extra: [valid, test]))
    }

    static func printMetrics(_ r: LinkPrediction.Result, split: String, seconds: Double) {
        print("Filtered link prediction on \(split).txt (realistic rank for ties; \(TextFormat.seconds(seconds)))")
        print("  side    queries      MRR     MR   Hits@1  Hits@3  Hits@10")
        for (name, m) in [("both", r.both), ("head", r.head), ("tail", r.tail)] {
            print("  " + TextFormat.pad(name, 6) + TextFormat.pad(TextFormat.grouped(m.queries), 9, left: false)
                  + TextFormat.pad(TextFormat.fixed(m.mrr, 4), 9, left: false) + TextFormat.pad(TextFormat.fixed(m.meanRank, 0), 7, left: false)
                  + TextFormat.pad(TextFormat.fixed(m.hitsAt1, 4), 9, left: false) + TextFormat.pad(TextFormat.fixed(m.hitsAt3, 4), 8, left: false)
                  + TextFormat.pad(TextFormat.fixed(m.hitsAt10, 4), 9, left: false))
        }
    }

    static func json(_ r: LinkPrediction.Result) -> String {
        func one(_ m: LinkPredictionMetrics) -> String {
            "{\"queries\": \(m.queries), \"mrr\": \(m.mrr), \"mr\": \(m.meanRank), \"hits1\": \(m.hitsAt1), \"hits3\": \(m.hitsAt3), \"hits10\": \(m.hitsAt10)}"
        }
        return "{\"both\": \(one(r.both)), \"head\": \(one(r.head)), \"tail\": \(one(r.tail))}"
    }
}
