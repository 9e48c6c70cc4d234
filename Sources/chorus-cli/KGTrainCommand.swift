#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ArgumentParser
import ChorusCore
import ChorusEval
import ChorusKnowledge

/// `chorus kg train`.
struct KGTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train embeddings on <dir>/train.txt, then report filtered link prediction on --split.")

    @Option(parsing: .unconditional, help: ArgumentHelp("The directory of train.txt, valid.txt and test.txt.", valueName: "dir"),
            completion: .directory)
    var data: String

    @Option(parsing: .unconditional, help: ArgumentHelp("transe, distmult, complex or rotate (default rotate).", valueName: "name"),
            completion: .list(KGModelKind.allCases.map(\.rawValue)),
            transform: { text in
                do throws(ChorusError) { return try KGModelKind(name: text) } catch { throw ValidationError(error.message) }
            })
    var model: KGModelKind = .rotatE

    @Option(parsing: .unconditional, help: ArgumentHelp("Embedding dimension (complex models hold 2 x dim floats) (default 100).", valueName: "n"),
            transform: Parse.int(1...65_536))
    var dim: Int = 100

    @Option(parsing: .unconditional, help: ArgumentHelp("Passes over train.txt (default 10).", valueName: "n"), transform: Parse.int(0...1_000_000))
    var epochs: Int = 10

    @Option(parsing: .unconditional, help: ArgumentHelp("Positive triples per step (default 512).", valueName: "n"), transform: Parse.int(1...1_000_000))
    var batch: Int = 512

    @Option(parsing: .unconditional, help: ArgumentHelp("Negatives per positive (default 64).", valueName: "n"), transform: Parse.int(1...100_000))
    var negatives: Int = 64

    @Option(name: .customLong("share-negatives"), parsing: .unconditional,
            help: ArgumentHelp("Runs of n consecutive positives share one draw of negatives (default 1: each positive draws "
                               + "its own, as the RotatE code).", valueName: "n"),
            transform: Parse.int(1...1_000_000))
    var shareNegatives: Int = 1

    @Flag(name: .customLong("filter-negatives"),
          help: ArgumentHelp("Leave out negatives that are training triples (known facts), as the RotatE code's sampler "
                             + "(default: every drawn entity counts)."))
    var filterNegatives = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Learning rate (default 0.001).", valueName: "x"), transform: Parse.float(0...10, lowerOpen: true))
    var lr: Float = 0.001

    @Option(name: .customLong("lr-decay-epochs"), parsing: .unconditional,
            help: ArgumentHelp("After each of these epochs multiply the learning rate by --lr-decay-factor (default: no decay).",
                               valueName: "e,.."),
            transform: KGTrainCommand.decayEpochs)
    var lrDecayEpochs: [Int] = []

    @Option(name: .customLong("lr-decay-factor"), parsing: .unconditional, help: ArgumentHelp("The decay factor (default 0.1).", valueName: "x"),
            transform: Parse.float(0...1e6, lowerOpen: true))
    var lrDecayFactor: Float = 0.1

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Margin of TransE/RotatE's gamma - distance; init range (gamma+2)/dim (default: 6; 200 for "
                               + "distmult/complex, as the RotatE code).", valueName: "x"),
            transform: Parse.float(-1.99...1e6))
    var gamma: Float?

    @Option(name: .customLong("init-range"), parsing: .unconditional,
            help: ArgumentHelp("Half-width of the uniform initialisation (default: (gamma+2)/dim; 0.202 for distmult, "
                               + "the RotatE code's value at d = 1000; 0.02525 for complex, chosen on valid.txt).", valueName: "x"),
            transform: Parse.float(0...1e6))
    var initRange: Float?

    @Option(parsing: .unconditional,
            help: ArgumentHelp("margin, logistic or adversarial (default per model: transe margin, distmult/complex logistic, "
                               + "rotate adversarial).", valueName: "name"),
            completion: .list(["margin", "logistic", "adversarial"]),
            transform: Parse.choice(["margin", "logistic", "adversarial"]))
    var loss: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Margin of the margin ranking loss (default 1).", valueName: "x"),
            transform: Parse.float(0...1e6))
    var margin: Float = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("Self-adversarial temperature alpha (default 0.5).", valueName: "x"),
            transform: Parse.float(0...1e6))
    var temperature: Float = 0.5

    @Option(parsing: .unconditional, help: ArgumentHelp("uniform or bernoulli (default uniform).", valueName: "name"),
            completion: .list(["uniform", "bernoulli"]), transform: Parse.choice(["uniform", "bernoulli"]))
    var sampling: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("adam or adagrad (default adam).", valueName: "name"),
            completion: .list(["adam", "adagrad"]), transform: Parse.choice(["adam", "adagrad"]))
    var optimizer: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("none, n3 or l2 (default: n3 for distmult/complex, else none).", valueName: "name"),
            completion: .list(["none", "n3", "l2"]), transform: Parse.choice(["none", "n3", "l2"]))
    var regularizer: String?

    @Option(name: .customLong("reg-weight"), parsing: .unconditional,
            help: ArgumentHelp("Regularisation weight (default 5e-6 with n3).", valueName: "x"), transform: Parse.float(0...1e6))
    var regWeight: Float?

    @Option(parsing: .unconditional, help: ArgumentHelp("TransE distance: 1 or 2 (default 1).", valueName: "1|2"), transform: Parse.int(1...2))
    var norm: Int = 1

    @Flag(name: .customLong("no-subsampling"), help: "Weigh every positive 1 (the RotatE code's -u).")
    var noSubsampling = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Worker threads, 0 = all CPUs (default 0).", valueName: "n"), transform: Parse.int(0...1024))
    var threads: Int = 0

    @Option(parsing: .unconditional, help: ArgumentHelp("Random seed (default 42).", valueName: "n"), transform: Parse.uint64)
    var seed: UInt64 = 42

    @Option(parsing: .unconditional, help: ArgumentHelp("test, valid or none (default test).", valueName: "name"),
            completion: .list(["test", "valid", "none"]), transform: Parse.choice(["test", "valid", "none"]))
    var split: String = "test"

    @Option(name: .customLong("max-minutes"), parsing: .unconditional,
            help: ArgumentHelp("End training after the first epoch that passes this training time (checks not counted; the "
                               + "model trained so far is kept and evaluated); 0 = no limit (default 0).", valueName: "x"),
            transform: Parse.double(0...1e7))
    var maxMinutes: Double = 0

    @Option(name: .customLong("check-every"), parsing: .unconditional,
            help: ArgumentHelp("Every n epochs (and after the last), score the check triples of valid.txt (filtered MRR and "
                               + "Hits@10, not counted in the training time); 0 = never (default 0).", valueName: "n"),
            transform: Parse.int(0...1_000_000))
    var checkEvery: Int = 0

    @Option(name: .customLong("check-sample"), parsing: .unconditional,
            help: ArgumentHelp("Check on m triples of valid.txt, evenly spaced (triple i * count / m for i < m); 0 = all "
                               + "(default 0).", valueName: "m"),
            transform: Parse.int(0...100_000_000))
    var checkSample: Int = 0

    @Option(name: .customLong("stop-at-mrr"), parsing: .unconditional,
            help: ArgumentHelp("End training after the first check whose MRR reaches x (time to a validation quality); "
                               + "0 = never (default 0).", valueName: "x"),
            transform: Parse.double(0...1))
    var stopAtMRR: Double = 0

    @Option(name: .customLong("plateau-checks"), parsing: .unconditional,
            help: ArgumentHelp("With --check-every: after n checks in a row without a valid-MRR gain of --plateau-delta, "
                               + "multiply the learning rate by --lr-decay-factor, or after --plateau-decays such decays end "
                               + "training (validation chooses the step and the epochs); 0 = off (default 0).", valueName: "n"),
            transform: Parse.int(0...1_000_000))
    var plateauChecks: Int = 0

    @Option(name: .customLong("plateau-delta"), parsing: .unconditional,
            help: ArgumentHelp("The valid-MRR gain over the best check that counts as progress (default 0.001).", valueName: "x"),
            transform: Parse.double(0...1))
    var plateauDelta: Double = 0.001

    @Option(name: .customLong("plateau-decays"), parsing: .unconditional,
            help: ArgumentHelp("Learning-rate decays before a plateau ends training (default 1).", valueName: "n"),
            transform: Parse.int(0...100))
    var plateauDecays: Int = 1

    @Flag(name: .customLong("keep-best"),
          help: ArgumentHelp("With --check-every: keep the model of the check with the best valid MRR (epochs chosen on "
                             + "validation) and evaluate, save and report that one."))
    var keepBest = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Write the trained model and its names (a Chorus snapshot).", valueName: "file"),
            completion: .file())
    var save: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Write per-epoch seconds, losses and the metrics as JSON.", valueName: "file"),
            completion: .file())
    var json: String?

    static let decayEpochs: @Sendable (String) throws -> [Int] = { list in
        var epochs: [Int] = []
        for part in list.split(separator: ",", omittingEmptySubsequences: false) {
            guard let e = Int(part), e > 0 else { throw ValidationError("takes positive epoch numbers separated by commas") }
            epochs.append(e)
        }
        guard zip(epochs, epochs.dropFirst()).allSatisfy({ $0 < $1 }) else { throw ValidationError("must be ascending") }
        return epochs
    }

    /// The training parameters: the model's defaults, then every option given.
    var parameters: KGTrainingParameters {
        var p = KGTrainingParameters.defaults(for: model)
        p.dimension = dim
        p.epochs = epochs
        p.batchSize = batch
        p.negatives = negatives
        p.negativeSharing = shareNegatives
        p.learningRate = lr
        if !lrDecayEpochs.isEmpty { p.learningRateDecayEpochs = lrDecayEpochs }
        p.learningRateDecayFactor = lrDecayFactor
        if let gamma { p.gamma = gamma }
        if let initRange { p.initRange = initRange }
        p.norm = norm
        switch loss {
        case nil:
            if case .marginRanking = p.loss { p.loss = .marginRanking(margin: margin) }
            if case .selfAdversarial = p.loss { p.loss = .selfAdversarial(temperature: temperature) }
        case "margin": p.loss = .marginRanking(margin: margin)
        case "logistic": p.loss = .logistic
        default: p.loss = .selfAdversarial(temperature: temperature)
        }
        if let s = sampling, let v = KGNegativeSampling(rawValue: s) { p.sampling = v }
        if let s = optimizer, let v = KGOptimizer(rawValue: s) { p.optimizer = v }
        if let s = regularizer, let v = KGRegularizer(rawValue: s) { p.regularizer = v }
        if let regWeight { p.regularizationWeight = regWeight }
        if noSubsampling { p.subsamplingWeights = false }
        if filterNegatives { p.filterKnownNegatives = true }
        p.threads = threads
        p.seed = seed
        return p
    }

    func run() throws {
        do throws(CLIError) { try train() } catch {
            switch error {
            case .failure(let message): throw CLIFailure(command: "kg train", message: message)
            }
        }
    }

    private func train() throws(CLIError) {
        let dir = data, p = parameters, maxMinutes = self.maxMinutes, split = self.split
        let checkEvery = self.checkEvery, stopAtMRR = self.stopAtMRR, keepBest = self.keepBest
        if keepBest && checkEvery == 0 { throw .failure("--keep-best needs --check-every") }
        if plateauChecks > 0 && checkEvery == 0 { throw .failure("--plateau-checks needs --check-every") }
        do throws(ChorusError) {
            var plateau = plateauChecks > 0 ? try PlateauSchedule(patience: plateauChecks, minDelta: plateauDelta, decays: plateauDecays) : nil
            let data = try KGCommand.load(dir, store: nil)
            let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
            print("Model     \(p.model.rawValue), dim \(p.dimension), \(p.epochs) epochs, batch \(p.batchSize), \(p.negatives) negatives\(p.negativeSharing > 1 ? " shared by \(p.negativeSharing) positives" : ""), "
                  + "lr \(p.learningRate)\(p.learningRateDecayEpochs.isEmpty ? "" : " x\(p.learningRateDecayFactor) after epochs \(p.learningRateDecayEpochs)")\(plateau.map { " x\(p.learningRateDecayFactor) after \($0.patience) checks without a gain of \($0.minDelta) (\($0.decays) times, then stop)" } ?? ""), gamma \(p.gamma), init range \(p.initRange > 0 ? p.initRange : (p.gamma + 2) / Float(p.dimension)), loss \(p.loss), \(p.sampling.rawValue) sampling\(p.filterKnownNegatives ? " (known facts left out)" : ""), \(p.optimizer.rawValue), "
                  + "regularizer \(p.regularizer.rawValue) \(p.regularizationWeight), \(threads) threads, seed \(p.seed)")
            var epochSeconds: [Double] = [], losses: [Double] = []
            var clock = Stopwatch()
            let total = Stopwatch()
            // The check triples: valid.txt, or m of them evenly spaced (a driver can list the same ones).
            let checkTriples = checkSample > 0 && checkSample < data.valid.count
                ? (0..<checkSample).map { data.valid[$0 * data.valid.count / checkSample] } : data.valid
            if checkEvery > 0 && checkTriples.isEmpty { throw ChorusError.invalidArgument("--check-every: valid.txt has no triples to check on") }
            var checks: [(epoch: Int, trainSeconds: Double, result: LinkPrediction.Result)] = []
            var checkSeconds = 0.0
            var best: (epoch: Int, mrr: Double, model: KnowledgeGraphModel)? = nil
            var keepFailure: ChorusError? = nil
            var plateauDecayEpochs: [Int] = []   // epochs after which a plateau decayed the learning rate
            let trained = try KGTrainer.fit(data.store, parameters: p) { report in
                epochSeconds.append(clock.seconds); losses.append(report.loss)
                print("  epoch \(report.epoch)/\(report.epochs)  loss \(TextFormat.fixed(report.loss, 5))  (\(TextFormat.seconds(epochSeconds.last!)))")
                fflush(nil)
                clock = Stopwatch()
                return false
            } afterEpoch: { report, model in
                let overBudget = maxMinutes > 0 && total.seconds - checkSeconds >= maxMinutes * 60 && report.epoch < report.epochs
                if checkEvery > 0 && (report.epoch % checkEvery == 0 || report.epoch == report.epochs || overBudget) {
                    let soFar = total.seconds - checkSeconds, watch = Stopwatch()
                    // A failed check (it cannot: the triples were checked at load) ends training.
                    guard let r = try? LinkPrediction.evaluate(model, triples: checkTriples, known: data.known, threads: p.threads) else { return .finish }
                    checkSeconds += watch.seconds
                    checks.append((report.epoch, soFar, r))
                    if keepBest && r.both.mrr > (best?.mrr ?? -1) {
                        do throws(ChorusError) { best = (report.epoch, r.both.mrr, try model.copy()) } catch {
                            keepFailure = error
                            return .finish
                        }
                    }
                    print("  check after epoch \(report.epoch): valid MRR \(TextFormat.fixed(r.both.mrr, 4)), Hits@10 \(TextFormat.fixed(r.both.hitsAt10, 4)) "
                          + "(\(TextFormat.seconds(soFar)) trained, \(checkTriples.count) triples)")
                    clock = Stopwatch()   // the next epoch's time starts after the check
                    if stopAtMRR > 0 && r.both.mrr >= stopAtMRR && report.epoch < report.epochs {
                        print("  valid MRR \(stopAtMRR) reached after epoch \(report.epoch)")
                        return .finish
                    }
                    switch plateau?.observe(mrr: r.both.mrr) ?? .continue {
                    case .continue: break
                    case .decayLearningRate:
                        plateauDecayEpochs.append(report.epoch)
                        print("  valid MRR on a plateau: learning rate x\(p.learningRateDecayFactor) after epoch \(report.epoch)")
                        if !overBudget { return .decayLearningRate }
                    case .finish:
                        print("  valid MRR on a plateau after epoch \(report.epoch): training ends")
                        return .finish
                    }
                }
                guard overBudget else { return .continue }
                print("  time budget of \(maxMinutes) minutes reached after epoch \(report.epoch) of \(report.epochs)")
                return .finish
            }
            if let keepFailure { throw keepFailure }
            // Training time without the checks'.
            let trainSeconds = total.seconds - checkSeconds
            let model = best?.model ?? trained
            if let best { print("Kept      the model of epoch \(best.epoch) (best valid MRR \(TextFormat.fixed(best.mrr, 4)))") }
            print("Trained   in \(TextFormat.seconds(trainSeconds))")
            var metrics: LinkPrediction.Result? = nil
            var evalSeconds = 0.0
            if split != "none" {
                let triples = split == "test" ? data.test : data.valid
                let ec = Stopwatch()
                metrics = try LinkPrediction.evaluate(model, triples: triples, known: data.known, threads: p.threads)
                evalSeconds = ec.seconds
                KGCommand.printMetrics(metrics!, split: split, seconds: evalSeconds)
            }
            if let path = save {
                let bytes = Snapshot.encode([
                    Snapshot.Section(tag: "KGST", payload: { var w = ByteWriter(); data.store.encode(into: &w); return w.bytes }()),
                    Snapshot.Section(tag: "KGEM", payload: model.encoded()),
                ])
                try FileIO.writeAtomically(path: path, bytes: bytes)
                print("Saved     \(path) (\(TextFormat.grouped(bytes.count)) bytes)")
            }
            if let path = json {
                var j = "{\"model\": \"\(p.model.rawValue)\", \"dim\": \(p.dimension), \"epochs\": \(p.epochs), \"epochs_run\": \(epochSeconds.count), \"lr\": \(p.learningRate), \"lr_decay_epochs\": \((p.learningRateDecayEpochs + plateauDecayEpochs).sorted()), \"lr_decay_factor\": \(p.learningRateDecayFactor), \"gamma\": \(p.gamma), \"batch\": \(p.batchSize), "
                j += "\"negatives\": \(p.negatives), \"negative_sharing\": \(p.negativeSharing), \"filter_negatives\": \(p.filterKnownNegatives), \"threads\": \(threads), \"train_seconds\": \(trainSeconds), "
                j += "\"epoch_seconds\": \(epochSeconds), \"losses\": \(losses), \"eval_seconds\": \(evalSeconds)"
                if let plateau { j += ", \"plateau\": {\"checks\": \(plateau.patience), \"delta\": \(plateau.minDelta), \"decays\": \(plateau.decays), \"decay_epochs\": \(plateauDecayEpochs)}" }
                if checkEvery > 0 {
                    if let best { j += ", \"chosen_epoch\": \(best.epoch)" }
                    j += ", \"check_triples\": \(checkTriples.count), \"check_seconds\": \(checkSeconds), \"checks\": ["
                    j += checks.map { "{\"epoch\": \($0.epoch), \"train_seconds\": \($0.trainSeconds), \"metrics\": \(KGCommand.json($0.result))}" }
                        .joined(separator: ", ") + "]"
                }
                if let m = metrics { j += ", \"split\": \"\(split)\", \"metrics\": " + KGCommand.json(m) }
                j += "}\n"
                try FileIO.writeAtomically(path: path, bytes: Array(j.utf8))
            }
        } catch {
            throw .failure(error.message)
        }
    }

}

/// `chorus kg eval`.
struct KGEvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model written by 'kg train --save' on <dir>'s test or valid triples.")

    @Option(parsing: .unconditional, help: ArgumentHelp("The directory of train.txt, valid.txt and test.txt.", valueName: "dir"),
            completion: .directory)
    var data: String

    @Option(parsing: .unconditional, help: ArgumentHelp("A file written by 'kg train --save'.", valueName: "file"), completion: .file())
    var load: String

    @Option(parsing: .unconditional, help: ArgumentHelp("test or valid (default test).", valueName: "name"),
            completion: .list(["test", "valid"]), transform: Parse.choice(["test", "valid"]))
    var split: String = "test"

    @Option(parsing: .unconditional, help: ArgumentHelp("Worker threads, 0 = all CPUs (default 0).", valueName: "n"), transform: Parse.int(0...1024))
    var threads: Int = 0

    @Option(parsing: .unconditional, help: ArgumentHelp("Write the metrics as JSON.", valueName: "file"), completion: .file())
    var json: String?

    func run() throws {
        do throws(CLIError) { try evaluate() } catch {
            switch error {
            case .failure(let message): throw CLIFailure(command: "kg eval", message: message)
            }
        }
    }

    private func evaluate() throws(CLIError) {
        let dir = data, path = load, split = self.split, threads = self.threads
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
            let data = try KGCommand.load(dir, store: store)
            let ec = Stopwatch()
            let m = try LinkPrediction.evaluate(model, triples: split == "test" ? data.test : data.valid, known: data.known, threads: threads)
            KGCommand.printMetrics(m, split: split, seconds: ec.seconds)
            if let out = json {
                try FileIO.writeAtomically(path: out, bytes: Array(("{\"split\": \"\(split)\", \"metrics\": " + KGCommand.json(m) + "}\n").utf8))
            }
        } catch {
            throw .failure(error.message)
        }
    }

}
