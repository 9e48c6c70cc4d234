import ChorusCore
import ChorusAgents
import ChorusEval
import ArgumentParser

/// `chorus eval`: temporal hold-out evaluation of every agent and the blend on a MovieLens dataset.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate every agent and the blend on MovieLens with a per-user temporal hold-out.",
        discussion: """
            Fits the engine on each user's earlier ratings and scores its top-k recommendations \
            (seen items excluded) against the ratings it held out: the latest --holdout share of every \
            user's history. Reports Recall, NDCG, hit rate, MRR and catalogue coverage at k for each \
            agent alone and for the blend, and the blend weights the coordinator chose.

            Recall@k = hits / min(k, |relevant|); NDCG@k uses binary relevance and a log2 discount; \
            HR@k is the share of users with a hit; MRR@k the mean reciprocal rank of the first hit; \
            Cov@k the share of the training catalogue that appears in any user's top k.
            """)

    /// The --dataset names (MovieLensFormat's raw values).
    enum Dataset: String, ExpressibleByArgument, CaseIterable {
        case latestSmall = "ml-latest-small"
        case ml100k = "ml-100k"
    }

    @Option(parsing: .unconditional,
            help: ArgumentHelp("A MovieLens directory (ratings.csv + movies.csv, or u.data + u.item), or a parent holding "
                               + "ml-latest-small/ or ml-100k/.", valueName: "dir"),
            completion: .directory)
    var data: String = "../shared/data"

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Which sub-directory of a parent to use (default: ml-latest-small, else ml-100k).", valueName: "name"))
    var dataset: Dataset?

    @Option(parsing: .unconditional, help: ArgumentHelp("List length (default 10).", valueName: "n"), transform: Parse.int(1...10_000))
    var k: Int = 10

    @Option(parsing: .unconditional, help: ArgumentHelp("Share of each user's ratings held out, in (0, 1) (default 0.2).", valueName: "f"),
            transform: Parse.double(0...1, lowerOpen: true, upperOpen: true))
    var holdout: Double = 0.2

    @Option(name: .customLong("min-rating"), parsing: .unconditional,
            help: ArgumentHelp("Count only held-out ratings >= r as relevant (default: all).", valueName: "r"),
            transform: Parse.float(0...1e6))
    var minRating: Float?

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Also evaluate the blend re-ranked for diversity at these MMR weights, comma-separated in "
                               + "(0, 1] (for example 0.1,0.3,0.5).", valueName: "list"),
            transform: EvalCommand.diversities)
    var diversity: [Float] = []

    @Flag(name: .customLong("cold-items"),
          help: ArgumentHelp("Give every movie its text, including movies that only appear in the test split (cold items: no "
                             + "training interaction), and report how well they are recommended (Recall@k among cold items only)."))
    var coldItems = false

    @Option(name: .customLong("export-split"), parsing: .unconditional,
            help: ArgumentHelp("Also write the split as <dir>/train.csv (user,item,weight,timestamp) and <dir>/test.csv "
                               + "(user,item), for peers evaluated on the same split.", valueName: "dir"),
            completion: .directory)
    var exportSplit: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Also write the result rows as JSON.", valueName: "file"),
            completion: .file())
    var json: String?

    @OptionGroup(title: "Fit options")
    var fit: FitOptions

    static let diversities: @Sendable (String) throws -> [Float] = { list in
        var out: [Float] = []
        for part in list.split(separator: ",") {
            guard let v = Float(part.trimmingSpaces), v > 0, v <= 1 else { throw ValidationError("takes values in (0, 1]") }
            out.append(v)
        }
        return out
    }

    func validate() throws {
        if coldItems && !fit.texts.isOn { throw ValidationError("--cold-items needs --texts on") }
    }

    func run() throws {
        do throws(CLIError) { try evaluate() } catch {
            switch error {
            case .failure(let message): throw CLIFailure(command: "eval", message: message)
            }
        }
    }

    private func evaluate() throws(CLIError) {
        let dataPath = data
        let format = dataset.flatMap { MovieLensFormat(rawValue: $0.rawValue) }
        let k = self.k, holdout = self.holdout, minRating = self.minRating
        let (config, parameters) = fit.parameters
        fit.startLogging()
        let withTexts = fit.texts.isOn
        let withFacts = fit.facts.isOn
        let diversities = diversity
        let coldItems = self.coldItems

        do throws(ChorusError) {
            let (data, loadSeconds) = try timed { () throws(ChorusError) in try MovieLens.load(dataPath, preferred: format) }
            print("Dataset   \(data.name) (\(data.directory))")
            print("          \(Report.datasetSummary(data)); loaded in \(TextFormat.seconds(loadSeconds))")

            let (split, splitSeconds) = try timed { () throws(ChorusError) in
                try TemporalSplit.split(data.interactions, fraction: holdout, minRating: minRating)
            }
            let lines = Report.splitSummary(split, fraction: holdout, minRating: minRating)
            print("Split     " + lines[0] + " (\(TextFormat.seconds(splitSeconds)))")
            for l in lines.dropFirst() { print("          " + l) }
            if let dir = exportSplit {
                try SplitExport.write(split, directory: dir)
                print("          split written to \(dir)/train.csv and \(dir)/test.csv")
            }

            print("Fit       " + FitOptions.describe(config, parameters))
            let progress = FitProgress(indent: "          ")
            let result: EvaluationResult
            var kinds: [SplitExport.RowKind] = []
            do throws(ChorusError) {
                let engine = Engine(config: config)
                try engine.add(split.train)
                let trainItems = Set(split.train.map(\.item))
                let coldSet = Set(split.test.values.flatMap { $0 }).subtracting(trainItems).filter { data.movies[$0] != nil }
                if withTexts {
                    try FitOptions.setMovieTexts(engine, data.movies, items: coldItems ? trainItems.union(coldSet) : trainItems, indent: "          ")
                }
                if withFacts {
                    try FitOptions.addMovieFacts(engine, data.movies, items: coldItems ? trainItems.union(coldSet) : trainItems, indent: "          ")
                }
                let clock = Stopwatch()
                try engine.fit(parameters, progress: progress.callback)
                progress.finish()
                let fitSeconds = clock.seconds
                print("          coordinator: " + engine.coordinatorDescription)
                print("          fitted in \(TextFormat.seconds(fitSeconds)) on \(TextFormat.grouped(engine.itemCount)) items; "
                      + "popularity half-life " + FitOptions.halfLife(engine.stats().popularityHalfLifeSeconds))
                guard k <= engine.itemCount else {
                    throw .invalidArgument("--k \(k) exceeds the \(engine.itemCount) items in the training set")
                }
                let evalClock = Stopwatch()
                var rows = try Evaluation.evaluate(engine: engine, test: split.test, k: k)
                kinds = rows.map { $0.name == Evaluation.blendName ? .blend : .agent }
                for d in diversities {
                    var o = RecommendOptions(); o.diversity = d
                    rows += try Evaluation.evaluate(engine: engine, test: split.test, k: k, recommenders: [nil], options: o,
                                                    label: " MMR \(TextFormat.fixed(Double(d), 2))")
                    kinds.append(.mmr(d))
                }
                if coldItems {
                    // Cold items alone: each test user's relevant cold items, ranked among all cold items.
                    let coldTest = split.test.mapValues { $0.intersection(coldSet) }.filter { !$0.value.isEmpty }
                    var o = RecommendOptions(); o.allow = coldSet
                    if coldSet.count >= k {
                        rows += try Evaluation.evaluate(engine: engine, test: coldTest, k: k,
                                                    recommenders: [nil, "content"] + (withFacts ? ["kg"] : []), options: o,
                                                        label: " (cold items: \(coldSet.count) items, \(coldTest.count) users)")
                        kinds += Array(repeating: .cold, count: rows.count - kinds.count)
                    }
                }
                result = EvaluationResult(k: k, rows: rows, agentNames: engine.agentNames, blendWeights: engine.blendWeights,
                                          catalogueSize: engine.itemCount, fitSeconds: fitSeconds)
                print("")
                print("Top-\(k) metrics over \(TextFormat.grouped(rows.first?.users ?? 0)) test users "
                      + "(recommended in \(TextFormat.seconds(evalClock.seconds)); seen items excluded)")
            } catch {
                progress.finish()
                throw error
            }
            print("")
            print(Evaluation.formatTable(result.rows), terminator: "")
            print("")
            print("Blend weights: " + Report.weights(names: result.agentNames, weights: result.blendWeights)
                  + " (fitted on a validation hold-out of the training data)")
            if let path = json {
                try SplitExport.writeJSON(result, kinds: kinds, dataset: data.name, path: path)
                print("Result rows written to \(path)")
            }
            let cold = result.rows.map(\.coldUsers).max() ?? 0
            if cold > 0 { print("\(cold) test users were unknown to the model and got the cold-start fallback.") }
        } catch {
            throw .failure(error.message)
        }
    }
}
