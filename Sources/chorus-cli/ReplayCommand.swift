#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusAgents
import ChorusEval
import ArgumentParser

/// `chorus replay`: fit on the first part of a MovieLens set by time, stream the rest event by
/// event, and measure how often each serving mode's slate holds the user's next positive item.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a MovieLens set in time order: serve a slate before each rating, then feed it.",
        discussion: """
            Sorts the ratings by timestamp (ties: file order), fits on the first --train-fraction, then \
            streams the rest. Before each event (user u rates item i) it serves u a slate of --k from the \
            catalogue known so far (seen items excluded); the reward is 1 when u's next positive item (the \
            first of u's events from this one on rated >= --min-rating) is in the slate (events with none \
            are fed, not scored); then the event is fed as rating feedback (modes that learn).

            Modes, each a separate engine run over the same stream: frozen (fitted once, nothing fed), \
            online (feedback fed: fold-in, online popularity, session, item-kNN), refit (fed, and a full \
            fit every --refit-every share of the stream: its seconds are its compute cost), popularity \
            (the popularity agent alone, fed), random (a seeded uniform slate of known items).
            """)

    @Option(parsing: .unconditional,
            help: ArgumentHelp("A MovieLens directory (ratings.csv or u.data), or a parent holding ml-latest-small/ or ml-100k/.",
                               valueName: "dir"),
            completion: .directory)
    var data: String = "../shared/data"

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Which sub-directory of a parent to use (default: ml-latest-small, else ml-100k).", valueName: "name"))
    var dataset: EvalCommand.Dataset?

    @Option(name: .customLong("train-fraction"), parsing: .unconditional,
            help: ArgumentHelp("Share of the ratings, by time, fitted on before the stream, in (0, 1) (default 0.5).", valueName: "f"),
            transform: Parse.double(0...1, lowerOpen: true, upperOpen: true))
    var trainFraction: Double = 0.5

    @Option(parsing: .unconditional, help: ArgumentHelp("Slate length (default 10).", valueName: "n"), transform: Parse.int(1...10_000))
    var k: Int = 10

    @Option(name: .customLong("min-rating"), parsing: .unconditional,
            help: ArgumentHelp("A rating >= r is a positive event, a target (default 4).", valueName: "r"), transform: Parse.float(0...1e6))
    var minRating: Float = 4

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Modes to run, comma-separated: " + ReplayMode.allCases.map(\.rawValue).joined(separator: ",")
                               + " (default: all).", valueName: "list"),
            transform: ReplayMode.list)
    var modes: [ReplayMode] = ReplayMode.allCases

    @Option(parsing: .unconditional,
            help: ArgumentHelp("The learning modes' exploration: LinUCB's alpha, Thompson's scale, the policy's temperature "
                               + "(default 0: the library's default, 0.03 for the bandits, 0.1 for the policy).", valueName: "x"),
            transform: Parse.float(0...1e6))
    var exploration: Float = 0

    @Option(name: .customLong("prior-strength"), parsing: .unconditional,
            help: ArgumentHelp("The bandits' pull toward the fitted coordinator (default 0: the library's default, 10).", valueName: "x"),
            transform: Parse.float(0...1e6))
    var priorStrength: Float = 0

    @Option(name: .customLong("learning-rate"), parsing: .unconditional,
            help: ArgumentHelp("The policy's step size (default 0: the library's default, 0.3).", valueName: "x"),
            transform: Parse.float(0...1e3))
    var learningRate: Float = 0

    @Option(name: .customLong("clip-norm"), parsing: .unconditional,
            help: ArgumentHelp("Private learning from feedback (learning modes): each user's part of a release clipped to this L2 norm "
                               + "(default 0: not private).", valueName: "c"),
            transform: Parse.double(0...1e12))
    var clipNorm: Double = 0

    @Option(name: .customLong("noise-multiplier"), parsing: .unconditional,
            help: ArgumentHelp("Private learning: the noise multiplier sigma (needs --clip-norm; default 0).", valueName: "s"),
            transform: Parse.double(0...1e6))
    var noiseMultiplier: Double = 0

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Private learning: the epsilon to spend over the replay (at delta 1e-5): sets the noise multiplier "
                               + "from the releases the stream makes (needs --clip-norm; overrides --noise-multiplier).", valueName: "e"),
            transform: Parse.double(0...1e6, lowerOpen: true))
    var epsilon: Double? = nil

    @Option(name: .customLong("release-slates"), parsing: .unconditional,
            help: ArgumentHelp("Private learning: closed slates per release (default 0: the library's default, 1000).", valueName: "n"),
            transform: Parse.int(0...10_000_000))
    var releaseSlates: Int = 0

    @Option(name: .customLong("refit-every"), parsing: .unconditional,
            help: ArgumentHelp("The refit mode fits again after every such share of the stream, in (0, 1] (default 0.1).", valueName: "f"),
            transform: Parse.double(0...1, lowerOpen: true))
    var refitEvery: Double = 0.1

    @Option(parsing: .unconditional, help: ArgumentHelp("Equal slices of the stream to report hit rates for (default 20).", valueName: "n"),
            transform: Parse.int(1...10_000))
    var windows: Int = 20

    @Option(parsing: .unconditional, help: ArgumentHelp("Stop after n streamed events (default: the whole stream).", valueName: "n"),
            transform: Parse.int(1...Int(Int32.max)))
    var limit: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Random seed of the fit and the random mode (default \(FitParameters().seed)).", valueName: "n"),
            transform: Parse.uint64)
    var seed: UInt64 = FitParameters().seed

    @Option(parsing: .unconditional, help: ArgumentHelp("Worker threads of the fit, 0 = every CPU (default 0).", valueName: "n"),
            transform: Parse.int(0...1024))
    var threads: Int = 0

    @Option(parsing: .unconditional, help: ArgumentHelp("ALS/BPR latent factors (default \(FitParameters().factors)).", valueName: "n"),
            transform: Parse.int(1...1024))
    var factors: Int = FitParameters().factors

    @Option(parsing: .unconditional, help: ArgumentHelp("ALS sweeps (default \(FitParameters().iterations)).", valueName: "n"),
            transform: Parse.int(1...10_000))
    var iterations: Int = FitParameters().iterations

    @Option(parsing: .unconditional,
            help: ArgumentHelp("The agents to train, comma-separated (als,bpr,itemknn,session; popularity always) (default: every agent "
                               + "the data allows).", valueName: "list"))
    var agents: String?

    @Option(name: .customLong("bpr-epochs"), parsing: .unconditional,
            help: ArgumentHelp("BPR epochs; 0 = chosen on the validation hold-out by early stopping (default 0).", valueName: "n"),
            transform: Parse.int(0...100_000))
    var bprEpochs: Int = 0

    @Option(parsing: .unconditional, help: ArgumentHelp("Also write the results as JSON.", valueName: "file"), completion: .file())
    var json: String?

    @Option(name: .customLong("export-candidates"), parsing: .unconditional,
            help: ArgumentHelp("In the online mode, write each scored event's candidate set (items, feature rows) and its true next "
                               + "positive item to this binary file (format: bench/online/README.md).", valueName: "file"),
            completion: .file())
    var exportCandidates: String?

    @Flag(help: "No progress on stderr.")
    var quiet = false

    func validate() throws {
        if exportCandidates != nil && !modes.contains(.online) {
            throw ValidationError("--export-candidates needs the online mode in --modes")
        }
    }

    var parameters: FitParameters {
        var p = FitParameters()
        p.seed = seed; p.threads = threads; p.factors = factors; p.iterations = iterations; p.bprEpochs = bprEpochs
        if let agents { p.agents = agents.split(separator: ",", omittingEmptySubsequences: false).map { String($0) } }
        return p
    }

    func run() throws {
        do throws(CLIError) { try replay() } catch {
            switch error {
            case .failure(let message): throw CLIFailure(command: "replay", message: message)
            }
        }
    }

    private func replay() throws(CLIError) {
        let parameters = self.parameters
        let progress = quiet ? nil : FitProgress(indent: "  ", toStderr: true)
        var snapshotPath: String?
        defer { if let p = snapshotPath { unlink(p) } }
        do throws(ChorusError) {
            let data = try MovieLens.load(self.data, preferred: dataset.flatMap { MovieLensFormat(rawValue: $0.rawValue) })
            let stream = try ReplayStream(data.interactions, trainFraction: trainFraction, limit: limit, minRating: minRating, windows: windows)
            let train = Array(stream.events[0..<stream.trainCount])
            let trainItems = Set(train.map(\.item)).count
            guard k <= trainItems else {
                throw .invalidArgument("--k \(k) exceeds the \(trainItems) items of the training part: the engine cannot serve a slate that long")
            }
            let first = stream.events[stream.trainCount], last = stream.events[stream.trainCount + stream.count - 1]
            print("Replay    \(data.name) (\(data.directory)): \(Report.datasetSummary(data))")
            print("          fit on the first \(TextFormat.grouped(stream.trainCount)) ratings (to \(Report.date(stream.events[stream.trainCount - 1].timestamp))); "
                  + "stream \(TextFormat.grouped(stream.count)) (\(Report.date(first.timestamp)) to \(Report.date(last.timestamp)))"
                  + (stream.count < stream.events.count - stream.trainCount ? ", --limit of \(TextFormat.grouped(stream.events.count - stream.trainCount))" : ""))
            print("          slate of \(k); target = the user's next rating >= \(TextFormat.fixed(Double(minRating), 1)); "
                  + "\(TextFormat.grouped(stream.target.compactMap { $0 }.count)) events scored; seed \(seed)")

            // One fit, saved; each engine mode loads its own copy (the same model, without fitting again).
            var fitSeconds = 0.0
            var agentNames: [String] = []
            var coordinator = ""
            if modes.contains(where: { $0 != .random }) {
                let engine = Engine()
                try engine.add(train)
                let clock = Stopwatch()
                try engine.fit(parameters, progress: progress?.callback)
                progress?.finish()
                fitSeconds = clock.seconds
                agentNames = engine.agentNames
                coordinator = engine.coordinatorDescription
                let dir = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
                let path = "\(dir)/chorus-replay-\(getpid()).chorus"
                snapshotPath = path
                try engine.save(path: path)
                print("Fit       " + FitOptions.describe(EngineConfig(), parameters) + "; \(TextFormat.seconds(fitSeconds))")
                print("          agents \(agentNames.joined(separator: ", ")); coordinator: \(coordinator)")
            }
            var learning = LearningOptions()
            (learning.exploration, learning.priorStrength, learning.learningRate) = (exploration, priorStrength, learningRate)
            (learning.clipNorm, learning.noiseMultiplier, learning.releaseSlates) = (clipNorm, noiseMultiplier, releaseSlates)
            if let epsilon {
                guard clipNorm > 0 else { throw ChorusError.invalidArgument("--epsilon needs --clip-norm > 0") }
                // One slate per scored event; a release per `releaseSlates` closed slates.
                let slates = stream.target.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
                let per = releaseSlates > 0 ? releaseSlates : LearningOptions.defaultReleaseSlates
                let rounds = max(1, slates / per)
                guard let sigma = PrivacyLedger.noiseMultiplier(epsilon: epsilon, rounds: rounds, delta: LearningOptions.defaultDelta) else {
                    throw ChorusError.invalidArgument("no noise multiplier spends epsilon \(epsilon) over \(rounds) releases")
                }
                learning.noiseMultiplier = sigma
                print("Privacy   epsilon \(epsilon) at delta \(LearningOptions.defaultDelta) over \(rounds) releases of \(per) slates: "
                      + "noise multiplier \(TextFormat.fixed(sigma, 3)), clip \(clipNorm)")
            }
            var results: [ReplayResult] = []
            for mode in modes {
                let export = mode == .online ? try exportCandidates.map { (p) throws(ChorusError) in try CandidateWriter(path: p, k: k) } : nil
                let r = try Replay.run(mode, stream: stream, k: k, seed: seed, parameters: parameters, refitEvery: refitEvery,
                                       minRating: minRating, learning: learning,
                                       fitted: { () throws(ChorusError) -> Engine in try Engine.load(path: snapshotPath ?? "") },
                                       export: export, progress: progress)
                try export?.close()
                results.append(r)
            }
            print("")
            print(Self.table(results, k: k), terminator: "")
            for r in results { if let l = r.privacy { print("\(r.mode.rawValue): epsilon \(TextFormat.fixed(l.epsilon, 3)) at delta \(l.delta) over \(l.releases) releases") } }
            print("")
            print(Self.windowTable(results, stream: stream), terminator: "")
            if let path = exportCandidates, let r = results.first(where: { $0.mode == .online }) {
                print("\nCandidates of \(TextFormat.grouped(r.exported)) scored events written to \(path) (\(TextFormat.seconds(r.exportSeconds)))")
            }
            if let path = json {
                let text = json(results, stream: stream, data: data, parameters: parameters, agents: agentNames, coordinator: coordinator,
                                     fitSeconds: fitSeconds)
                try FileIO.writeAtomically(path: path, bytes: Array(text.utf8))
                print("Results written to \(path)")
            }
        } catch {
            progress?.finish()
            throw .failure(error.message)
        }
    }

    static func rate(_ x: Double?) -> String { x.map { TextFormat.fixed($0, 4) } ?? "-" }

    static func table(_ results: [ReplayResult], k: Int) -> String {
        var out = TextFormat.pad("mode", 12) + TextFormat.pad("hit@\(k)", 9, left: false) + TextFormat.pad("hits", 9, left: false) + TextFormat.pad("scored", 9, left: false)
            + TextFormat.pad("serve s", 10, left: false) + TextFormat.pad("feed s", 10, left: false) + TextFormat.pad("refit s", 10, left: false) + TextFormat.pad("refits", 8, left: false)
            + TextFormat.pad("fold s", 10, left: false) + TextFormat.pad("new hit@\(k)", 12, left: false) + "\n"
        for r in results {
            out += TextFormat.pad(r.mode.rawValue, 12) + TextFormat.pad(rate(r.hitRate), 9, left: false) + TextFormat.pad(String(r.hits), 9, left: false)
                + TextFormat.pad(String(r.scored), 9, left: false) + TextFormat.pad(TextFormat.fixed(r.serveSeconds, 2), 10, left: false)
                + TextFormat.pad(TextFormat.fixed(r.feedSeconds, 2), 10, left: false) + TextFormat.pad(TextFormat.fixed(r.refitSeconds, 2), 10, left: false)
                + TextFormat.pad(String(r.refits), 8, left: false) + TextFormat.pad(TextFormat.fixed(r.foldSeconds, 2), 10, left: false)
                + TextFormat.pad(rate(r.newItemScored > 0 ? Double(r.newItemHits) / Double(r.newItemScored) : nil), 12, left: false) + "\n"
        }
        return out
    }

    static func windowTable(_ results: [ReplayResult], stream: ReplayStream) -> String {
        var out = "Hit rate per window of the stream\n" + TextFormat.pad("window", 8) + TextFormat.pad("events", 15, left: false)
        for r in results { out += TextFormat.pad(r.mode.rawValue, 12, left: false) }
        out += "\n"
        for (w, range) in stream.windows.enumerated() {
            out += TextFormat.pad(String(w + 1), 8) + TextFormat.pad("\(range.lowerBound + 1)-\(range.upperBound)", 15, left: false)
            for r in results { out += TextFormat.pad(rate(r.windowRate(w)), 12, left: false) }
            out += "\n"
        }
        return out
    }

    func json(_ results: [ReplayResult], stream: ReplayStream, data: MovieLensData, parameters p: FitParameters, agents: [String],
                     coordinator: String, fitSeconds: Double) -> String {
        func number(_ x: Double?) -> String { x.map { $0.isFinite ? "\($0)" : "null" } ?? "null" }
        let q = SplitExport.quoted
        let windows = stream.windows.map { r in
            "{\"start\": \(r.lowerBound), \"end\": \(r.upperBound), \"first_timestamp\": \(stream.events[stream.trainCount + r.lowerBound].timestamp), "
                + "\"last_timestamp\": \(stream.events[stream.trainCount + r.upperBound - 1].timestamp)}"
        }
        let modes = results.map { r in
            let w = r.windowHits.indices.map { "{\"hits\": \(r.windowHits[$0]), \"scored\": \(r.windowScored[$0]), \"hit_rate\": \(number(r.windowRate($0)))}" }
            return "{\"mode\": \(q(r.mode.rawValue)), \"hit_rate\": \(number(r.hitRate)), \"hits\": \(r.hits), \"scored\": \(r.scored), "
                + "\"fed\": \(r.fed), \"refits\": \(r.refits), \"serve_seconds\": \(number(r.serveSeconds)), \"feed_seconds\": \(number(r.feedSeconds)), "
                + "\"refit_seconds\": \(number(r.refitSeconds)), \"export_seconds\": \(number(r.exportSeconds)), \"exported\": \(r.exported), "
                + "\"fold_seconds\": \(number(r.foldSeconds)), \"folds\": \(r.folds), \"placements\": \(r.placements), "
                + "\"new_item_hits\": \(r.newItemHits), \"new_item_scored\": \(r.newItemScored), "
                + (r.privacy.map { "\"privacy\": {\"epsilon\": \(number($0.epsilon)), \"delta\": \($0.delta), \"releases\": \($0.releases)}, " } ?? "")
                + "\"windows\": [" + w.joined(separator: ", ") + "]}"
        }
        let c = self
        return "{\"command\": \"replay\", \"dataset\": \(q(data.name)), \"directory\": \(q(data.directory)), \"ratings\": \(data.interactions.count), "
            + "\"seed\": \(p.seed), \"k\": \(c.k), \"min_rating\": \(c.minRating), \"train_fraction\": \(c.trainFraction), "
            + "\"train_events\": \(stream.trainCount), \"stream_events\": \(stream.events.count - stream.trainCount), \"replayed_events\": \(stream.count), "
            + "\"limit\": \(c.limit.map(String.init) ?? "null"), \"refit_every\": \(c.refitEvery), \"exploration\": \(c.exploration), \"prior_strength\": \(c.priorStrength), \"learning_rate\": \(c.learningRate), "
            + "\"clip_norm\": \(c.clipNorm), \"noise_multiplier\": \(c.noiseMultiplier), \"epsilon\": \(c.epsilon.map { "\($0)" } ?? "null"), \"release_slates\": \(c.releaseSlates), "
            + "\"fit\": {\"factors\": \(p.factors), \"iterations\": \(p.iterations), \"regularization\": \(p.regularization), \"alpha\": \(p.alpha), "
            + "\"threads\": \(p.threads), \"bpr_epochs\": \(p.bprEpochs), \"agents\": [" + agents.map(q).joined(separator: ", ") + "], "
            + "\"coordinator\": \(q(coordinator)), \"seconds\": \(number(fitSeconds))}, "
            + "\"windows\": [\n  " + windows.joined(separator: ",\n  ") + "\n], "
            + "\"modes\": [\n  " + modes.joined(separator: ",\n  ") + "\n]}\n"
    }
}
