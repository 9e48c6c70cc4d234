#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusEval
import ChorusKnowledge

/// `chorus kg train|eval`: knowledge-graph embeddings on a directory of train/valid/test.txt.
enum KGCommand {
    static let help = """
        Usage: chorus kg train --data <dir> [--model rotate] [options] [--save <file>]
               chorus kg eval  --data <dir> --load <file> [--split test|valid] [--threads n]

        <dir> holds train.txt, valid.txt and test.txt: tab-separated head, relation, tail (LF or
        CRLF). 'train' fits on train.txt and reports filtered link prediction on --split (filtered
        against train + valid + test; triples naming an entity or relation absent from train are
        counted and left out). 'eval' loads a file written by --save and evaluates it.

        Options (train):
          --model <name>          transe, distmult, complex or rotate (default rotate)
          --dim <n>               embedding dimension (complex models hold 2 x dim floats) (default 100)
          --epochs <n>            passes over train.txt (default 10)
          --batch <n>             positive triples per step (default 512)
          --negatives <n>         negatives per positive (default 64)
          --share-negatives <n>   runs of n consecutive positives share one draw of negatives
                                  (default 1: each positive draws its own, as the RotatE code)
          --filter-negatives      leave out negatives that are training triples (known facts), as
                                  the RotatE code's sampler (default: every drawn entity counts)
          --lr <x>                learning rate (default 0.001)
          --lr-decay-epochs <e,..> after each of these epochs multiply the learning rate by
                                  --lr-decay-factor (default: no decay)
          --lr-decay-factor <x>   (default 0.1)
          --gamma <x>             margin of TransE/RotatE's gamma - distance; init range (gamma+2)/dim
                                  (default: 6; 200 for distmult/complex, as the RotatE code)
          --init-range <x>        half-width of the uniform initialisation (default: (gamma+2)/dim;
                                  0.202 for distmult and complex: the RotatE code's value at d = 1000)
          --loss <name>           margin, logistic or adversarial (default per model: transe margin,
                                  distmult/complex logistic, rotate adversarial)
          --margin <x>            margin of the margin ranking loss (default 1)
          --temperature <x>       self-adversarial temperature alpha (default 0.5)
          --sampling <name>       uniform or bernoulli (default uniform)
          --optimizer <name>      adam or adagrad (default adam)
          --regularizer <name>    none, n3 or l2 (default: n3 for distmult/complex, else none)
          --reg-weight <x>        regularisation weight (default 5e-6 with n3)
          --norm <1|2>            TransE distance (default 1)
          --no-subsampling        weigh every positive 1 (the RotatE code's -u)
          --threads <n>           worker threads (default: all CPUs)
          --seed <n>              random seed (default 42)
          --split <name>          test, valid or none (default test)
          --max-minutes <x>       end training after the first epoch that passes this wall time
                                  (the model trained so far is kept and evaluated)
          --save <file>           write the trained model and its names (a Chorus snapshot)
          --json <file>           write per-epoch seconds, losses and the metrics as JSON
          -h, --help              show this help
        """

    static let trainSpec: [String: Arguments.Kind] = [
        "data": .value, "model": .value, "dim": .value, "epochs": .value, "batch": .value, "negatives": .value, "share-negatives": .value,
        "lr": .value, "lr-decay-epochs": .value, "lr-decay-factor": .value, "gamma": .value, "init-range": .value, "loss": .value, "margin": .value, "temperature": .value, "sampling": .value,
        "optimizer": .value, "regularizer": .value, "reg-weight": .value, "norm": .value, "no-subsampling": .flag, "filter-negatives": .flag,
        "threads": .value, "seed": .value, "split": .value, "max-minutes": .value, "save": .value, "json": .value,
    ]
    static let evalSpec: [String: Arguments.Kind] = ["data": .value, "load": .value, "split": .value, "threads": .value, "json": .value]

    static func run(_ args: ArraySlice<String>) throws(CLIError) {
        guard let sub = args.first else { throw .usage("expected 'train' or 'eval'") }
        let rest = args.dropFirst()
        switch sub {
        case "train": try train(rest)
        case "eval": try evaluate(rest)
        default: throw .usage("unknown kg command '\(sub)' (expected train or eval)")
        }
    }

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

    static func parameters(_ a: Arguments) throws(CLIError) -> KGTrainingParameters {
        let kind: KGModelKind
        do throws(ChorusError) { kind = try KGModelKind(name: a.string("model") ?? "rotate") } catch { throw .usage(error.message) }
        var p = KGTrainingParameters.defaults(for: kind)
        p.dimension = try a.int("dim", default: 100, range: 1...65_536)
        p.epochs = try a.int("epochs", default: 10, range: 0...1_000_000)
        p.batchSize = try a.int("batch", default: 512, range: 1...1_000_000)
        p.negatives = try a.int("negatives", default: 64, range: 1...100_000)
        p.negativeSharing = try a.int("share-negatives", default: 1, range: 1...1_000_000)
        p.learningRate = Float(try a.double("lr", default: 0.001, range: 0...10, lowerOpen: true))
        if let list = a.string("lr-decay-epochs") {
            var epochs: [Int] = []
            for part in list.split(separator: ",", omittingEmptySubsequences: false) {
                guard let e = Int(part), e > 0 else {
                    throw .usage("--lr-decay-epochs takes positive epoch numbers separated by commas, got '\(list)'")
                }
                epochs.append(e)
            }
            guard zip(epochs, epochs.dropFirst()).allSatisfy({ $0 < $1 }) else { throw .usage("--lr-decay-epochs must be ascending, got '\(list)'") }
            p.learningRateDecayEpochs = epochs
        }
        p.learningRateDecayFactor = Float(try a.double("lr-decay-factor", default: 0.1, range: 0...1e6, lowerOpen: true))
        p.gamma = Float(try a.double("gamma", default: Double(p.gamma), range: -1.99...1e6))
        p.initRange = Float(try a.double("init-range", default: Double(p.initRange), range: 0...1e6))
        p.norm = try a.int("norm", default: 1, range: 1...2)
        let margin = Float(try a.double("margin", default: 1, range: 0...1e6))
        let temperature = Float(try a.double("temperature", default: 0.5, range: 0...1e6))
        switch a.string("loss") {
        case nil:
            if case .marginRanking = p.loss { p.loss = .marginRanking(margin: margin) }
            if case .selfAdversarial = p.loss { p.loss = .selfAdversarial(temperature: temperature) }
        case "margin": p.loss = .marginRanking(margin: margin)
        case "logistic": p.loss = .logistic
        case "adversarial": p.loss = .selfAdversarial(temperature: temperature)
        case let other?: throw .usage("--loss must be margin, logistic or adversarial, got '\(other)'")
        }
        if let s = a.string("sampling") {
            guard let v = KGNegativeSampling(rawValue: s) else { throw .usage("--sampling must be uniform or bernoulli, got '\(s)'") }
            p.sampling = v
        }
        if let s = a.string("optimizer") {
            guard let v = KGOptimizer(rawValue: s) else { throw .usage("--optimizer must be adam or adagrad, got '\(s)'") }
            p.optimizer = v
        }
        if let s = a.string("regularizer") {
            guard let v = KGRegularizer(rawValue: s) else { throw .usage("--regularizer must be none, n3 or l2, got '\(s)'") }
            p.regularizer = v
        }
        p.regularizationWeight = Float(try a.double("reg-weight", default: Double(p.regularizationWeight), range: 0...1e6))
        if a.has("no-subsampling") { p.subsamplingWeights = false }
        if a.has("filter-negatives") { p.filterKnownNegatives = true }
        p.threads = try a.int("threads", default: 0, range: 0...1024)
        p.seed = try a.uint64("seed", default: 42)
        return p
    }

    static func train(_ args: ArraySlice<String>) throws(CLIError) {
        let a = try Arguments(args, spec: trainSpec)
        guard let dir = a.string("data") else { throw .usage("--data <dir> is required") }
        let p = try parameters(a)
        let maxMinutes = try a.double("max-minutes", default: 0, range: 0...1e7)
        let split = a.string("split") ?? "test"
        guard ["test", "valid", "none"].contains(split) else { throw .usage("--split must be test, valid or none, got '\(split)'") }
        do throws(ChorusError) {
            let data = try load(dir, store: nil)
            let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
            print("Model     \(p.model.rawValue), dim \(p.dimension), \(p.epochs) epochs, batch \(p.batchSize), \(p.negatives) negatives\(p.negativeSharing > 1 ? " shared by \(p.negativeSharing) positives" : ""), "
                  + "lr \(p.learningRate)\(p.learningRateDecayEpochs.isEmpty ? "" : " x\(p.learningRateDecayFactor) after epochs \(p.learningRateDecayEpochs)"), gamma \(p.gamma), init range \(p.initRange > 0 ? p.initRange : (p.gamma + 2) / Float(p.dimension)), loss \(p.loss), \(p.sampling.rawValue) sampling\(p.filterKnownNegatives ? " (known facts left out)" : ""), \(p.optimizer.rawValue), "
                  + "regularizer \(p.regularizer.rawValue) \(p.regularizationWeight), \(threads) threads, seed \(p.seed)")
            var epochSeconds: [Double] = [], losses: [Double] = []
            var clock = Stopwatch()
            let total = Stopwatch()
            let model = try KGTrainer.fit(data.store, parameters: p) { report in
                epochSeconds.append(clock.seconds); losses.append(report.loss)
                print("  epoch \(report.epoch)/\(report.epochs)  loss \(TextFormat.fixed(report.loss, 5))  (\(TextFormat.seconds(epochSeconds.last!)))")
                fflush(nil)
                clock = Stopwatch()
                return false
            } finishEarly: { report in
                guard maxMinutes > 0, total.seconds >= maxMinutes * 60, report.epoch < report.epochs else { return false }
                print("  time budget of \(maxMinutes) minutes reached after epoch \(report.epoch) of \(report.epochs)")
                return true
            }
            let trainSeconds = total.seconds
            print("Trained   in \(TextFormat.seconds(trainSeconds))")
            var metrics: LinkPrediction.Result? = nil
            var evalSeconds = 0.0
            if split != "none" {
                let triples = split == "test" ? data.test : data.valid
                let ec = Stopwatch()
                metrics = try LinkPrediction.evaluate(model, triples: triples, known: data.known, threads: p.threads)
                evalSeconds = ec.seconds
                printMetrics(metrics!, split: split, seconds: evalSeconds)
            }
            if let path = a.string("save") {
                let bytes = Snapshot.encode([
                    Snapshot.Section(tag: "KGST", payload: { var w = ByteWriter(); data.store.encode(into: &w); return w.bytes }()),
                    Snapshot.Section(tag: "KGEM", payload: model.encoded()),
                ])
                try FileIO.writeAtomically(path: path, bytes: bytes)
                print("Saved     \(path) (\(TextFormat.grouped(bytes.count)) bytes)")
            }
            if let path = a.string("json") {
                var j = "{\"model\": \"\(p.model.rawValue)\", \"dim\": \(p.dimension), \"epochs\": \(p.epochs), \"epochs_run\": \(epochSeconds.count), \"lr\": \(p.learningRate), \"lr_decay_epochs\": \(p.learningRateDecayEpochs), \"lr_decay_factor\": \(p.learningRateDecayFactor), \"gamma\": \(p.gamma), \"batch\": \(p.batchSize), "
                j += "\"negatives\": \(p.negatives), \"negative_sharing\": \(p.negativeSharing), \"filter_negatives\": \(p.filterKnownNegatives), \"threads\": \(threads), \"train_seconds\": \(trainSeconds), "
                j += "\"epoch_seconds\": \(epochSeconds), \"losses\": \(losses), \"eval_seconds\": \(evalSeconds)"
                if let m = metrics { j += ", \"split\": \"\(split)\", \"metrics\": " + json(m) }
                j += "}\n"
                try FileIO.writeAtomically(path: path, bytes: Array(j.utf8))
            }
        } catch {
            throw .failure(error.message)
        }
    }

    static func evaluate(_ args: ArraySlice<String>) throws(CLIError) {
        let a = try Arguments(args, spec: evalSpec)
        guard let dir = a.string("data") else { throw .usage("--data <dir> is required") }
        guard let path = a.string("load") else { throw .usage("--load <file> (written by 'kg train --save') is required") }
        let split = a.string("split") ?? "test"
        guard ["test", "valid"].contains(split) else { throw .usage("--split must be test or valid, got '\(split)'") }
        let threads = try a.int("threads", default: 0, range: 0...1024)
        do throws(ChorusError) {
            let bytes = try FileIO.readAll(path: path)
            let sections = try Snapshot.decode(bytes)
            guard let st = sections["KGST"], let em = sections["KGEM"] else {
                throw .format("'\(path)' is a Chorus snapshot without a knowledge-graph model (write one with 'kg train --save')")
            }
            var sr = ByteReader(bytes, range: st, context: "knowledge-graph store")
            let store = try TripleStore.decode(from: &sr)
            let model = try KnowledgeGraphModel.decode(Array(bytes[em]))
            guard model.entityCount == store.entityCount, model.relationCount == store.relationCount else {
                throw .format("'\(path)': the model has \(model.entityCount) entities and \(model.relationCount) relations, its names \(store.entityCount) and \(store.relationCount)")
            }
            print("Model     \(model.kind.rawValue), dim \(model.dimension), from \(path)")
            let data = try load(dir, store: store)
            let ec = Stopwatch()
            let m = try LinkPrediction.evaluate(model, triples: split == "test" ? data.test : data.valid, known: data.known, threads: threads)
            printMetrics(m, split: split, seconds: ec.seconds)
            if let out = a.string("json") {
                try FileIO.writeAtomically(path: out, bytes: Array(("{\"split\": \"\(split)\", \"metrics\": " + json(m) + "}\n").utf8))
            }
        } catch {
            throw .failure(error.message)
        }
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
