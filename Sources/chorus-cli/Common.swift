#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusAgents
import ChorusEval
import ArgumentParser

/// Options shared by the commands that fit an engine (eval and demo).
struct FitOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("ALS latent factors (default \(FitParameters().factors)).", valueName: "n"), transform: Parse.int(1...1024))
    var factors: Int = FitParameters().factors

    @Option(parsing: .unconditional, help: ArgumentHelp("ALS sweeps (default \(FitParameters().iterations)).", valueName: "n"), transform: Parse.int(1...10_000))
    var iterations: Int = FitParameters().iterations

    @Option(parsing: .unconditional, help: ArgumentHelp("ALS L2 penalty lambda (default \(FitParameters().regularization)).", valueName: "x"), transform: Parse.float(0...1e6))
    var regularization: Float = FitParameters().regularization

    @Option(parsing: .unconditional, help: ArgumentHelp("ALS confidence scale, c = 1 + alpha * rating (default \(FitParameters().alpha)).", valueName: "x"),
            transform: Parse.float(0...1e6, lowerOpen: true))
    var alpha: Float = FitParameters().alpha

    @Option(parsing: .unconditional, help: ArgumentHelp("Worker threads, 0 = every CPU (default 0).", valueName: "n"), transform: Parse.int(0...1024))
    var threads: Int = 0

    @Option(parsing: .unconditional, help: ArgumentHelp("Random seed (default \(FitParameters().seed)).", valueName: "n"), transform: Parse.uint64)
    var seed: UInt64 = FitParameters().seed

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Share of each user's latest training interactions the fit holds out to choose the blend, in [0, 0.5) (default \(FitParameters().validationFraction)).",
                               valueName: "f"),
            transform: Parse.float(0...0.49))
    var validation: Float = FitParameters().validationFraction

    @Option(name: .customLong("half-life-days"), parsing: .unconditional,
            help: ArgumentHelp("Popularity decay half-life in days; 0 = no decay (default: chosen by the fit on its validation "
                               + "hold-out among no decay, 7, 30, 91 and 365 days).", valueName: "d"),
            transform: Parse.double(0...1e6))
    var halfLifeDays: Double?

    @Option(parsing: .unconditional,
            help: "Give the training movies their text (title and genres), which adds the content agent.")
    var texts: OnOff = .on

    @Option(parsing: .unconditional,
            help: "Give the training movies their facts (genres, decade) as an item knowledge graph, which adds the knowledge-graph agent.")
    var facts: OnOff = .on

    @Option(parsing: .unconditional,
            help: ArgumentHelp("auto (all-MiniLM-L6-v2 when installed, else hashing), hashing, or a directory with the "
                               + "all-MiniLM-L6-v2 weights.", valueName: "e"),
            completion: .directory)
    var encoder: String = "auto"

    @Option(parsing: .unconditional,
            help: ArgumentHelp("The agents to train, comma-separated (als,bpr,itemknn,session,kg,kge,content; popularity always) "
                               + "(default: every agent the data allows).", valueName: "list"))
    var agents: String?

    @Option(name: .customLong("bpr-epochs"), parsing: .unconditional,
            help: ArgumentHelp("BPR epochs; 0 = chosen on the validation hold-out by early stopping (default 0).", valueName: "n"),
            transform: Parse.int(0...100_000))
    var bprEpochs: Int = 0

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Print the engine's log lines at this level and up on stderr (debug, info, warning; "
                               + "default: none). Debug shows the fit's choices: BPR's validation checks, the blend's searches.",
                               valueName: "level"),
            transform: FitOptions.logLevel)
    var log: Log.Level?

    static let logLevel: @Sendable (String) throws -> Log.Level = { name in
        switch name {
        case "debug": return .debug
        case "info": return .info
        case "warning": return .warning
        default: throw ValidationError("takes debug, info or warning")
        }
    }

    /// Sends the engine's log lines at `log` and up to stderr (no sink without --log: the library is silent).
    func startLogging() {
        guard let log else { return }
        Log.setSink { level, message in
            if level.rawValue >= log.rawValue { Console.put("[\(level)] \(message)\n", toStderr: true) }
        }
    }

    var parameters: (EngineConfig, FitParameters) {
        var p = FitParameters()
        p.factors = factors
        p.iterations = iterations
        p.regularization = regularization
        p.alpha = alpha
        p.threads = threads
        p.seed = seed
        p.validationFraction = validation
        p.bprEpochs = bprEpochs
        if let agents { p.agents = agents.split(separator: ",", omittingEmptySubsequences: false).map { String($0) } }
        var config = EngineConfig()
        if let days = halfLifeDays { config.popularityHalfLifeSeconds = days > 0 ? max(1, Int64(days * 86_400)) : -1 }
        switch encoder {
        case "auto": break
        case "hashing": config.hashingEncoder = true
        case let dir: config.encoderPath = dir
        }
        return (config, p)
    }

    /// Gives the engine's items that are in `movies` their facts (genres, decade).
    static func addMovieFacts(_ engine: Engine, _ movies: [Int64: Movie], items: Set<Int64>, indent: String) throws(ChorusError) {
        let f = MovieLens.itemFacts(movies, only: items)
        let added = try engine.addItemFacts(items: f.items, relations: f.relations, entities: f.entities)
        print(indent + "\(TextFormat.grouped(added)) movie facts (genre, decade) in the item knowledge graph")
    }

    /// Gives the engine's items that are in `movies` their text, and prints what it took.
    static func setMovieTexts(_ engine: Engine, _ movies: [Int64: Movie], items: Set<Int64>, indent: String) throws(ChorusError) {
        let ids = items.filter { movies[$0] != nil }.sorted()
        let clock = Stopwatch()
        try engine.setTexts(.item, ids: ids, texts: ids.map { MovieLens.itemText(movies[$0]!) })
        print(indent + "\(TextFormat.grouped(ids.count)) movie texts (title and genres) encoded in \(TextFormat.seconds(clock.seconds)) by "
              + engine.encoderDescription)
    }

    /// A fitted model's half-life in words.
    static func halfLife(_ seconds: Int64) -> String {
        seconds > 0 ? TextFormat.fixed(Double(seconds) / 86_400, 0) + " days" : "none (no decay)"
    }

    static func describe(_ config: EngineConfig, _ p: FitParameters) -> String {
        let threads = p.threads > 0 ? p.threads : Parallel.cpuCount
        let h = config.popularityHalfLifeSeconds
        let halfLife = h > 0 ? TextFormat.fixed(Double(h) / 86_400, 1) + " days" : h == 0 ? "chosen on validation" : "none"
        return "ALS factors \(p.factors), iterations \(p.iterations), regularization \(TextFormat.fixed(Double(p.regularization), 4)), "
            + "alpha \(TextFormat.fixed(Double(p.alpha), 2)); popularity half-life \(halfLife); "
            + "\(threads) thread\(threads == 1 ? "" : "s"), seed \(p.seed)"
    }
}

enum Report {
    /// A line such as "100,836 ratings, 610 users, 9,724 rated movies (catalogue 9,742)".
    static func datasetSummary(_ d: MovieLensData) -> String {
        let ratings = d.interactions.map(\.weight)
        let lo = ratings.min() ?? 0, hi = ratings.max() ?? 0
        let times = d.interactions.map(\.timestamp)
        var text = "\(TextFormat.grouped(d.interactions.count)) ratings (\(TextFormat.fixed(Double(lo), 1))-\(TextFormat.fixed(Double(hi), 1))), "
            + "\(TextFormat.grouped(d.userCount)) users, \(TextFormat.grouped(d.ratedItemCount)) rated movies "
            + "(catalogue \(TextFormat.grouped(d.movies.count)))"
        if let t0 = times.min(), let t1 = times.max() { text += ", \(date(t0)) to \(date(t1))" }
        return text
    }

    static func splitSummary(_ s: TemporalSplit, fraction: Double, minRating: Float?) -> [String] {
        var lines = [
            "per-user temporal hold-out of the latest \(TextFormat.percent(fraction)) of each user's ratings"
                + (minRating.map { "; relevant = held-out ratings >= \(TextFormat.fixed(Double($0), 1))" } ?? "; every held-out rating is relevant"),
            "train \(TextFormat.grouped(s.train.count)) ratings; test \(TextFormat.grouped(s.test.count)) users, "
                + "\(TextFormat.grouped(s.relevantPairs)) relevant items (\(TextFormat.grouped(s.heldOut)) held out)",
        ]
        var notes: [String] = []
        if s.coldTestPairs > 0 {
            notes.append("\(TextFormat.grouped(s.coldTestPairs)) relevant pairs on \(TextFormat.grouped(s.coldTestItems)) items absent from train (kept: they count as misses)")
        }
        if s.belowMinRating > 0 { notes.append("\(TextFormat.grouped(s.belowMinRating)) held-out ratings below --min-rating") }
        if s.repeatsDropped > 0 { notes.append("\(TextFormat.grouped(s.repeatsDropped)) held-out repeats of training items dropped") }
        if s.usersTrainOnly > 0 { notes.append("\(TextFormat.grouped(s.usersTrainOnly)) users with < 2 ratings kept in train only") }
        if !notes.isEmpty { lines.append(notes.joined(separator: "; ")) }
        return lines
    }

    /// The blend weights as "popularity 0.23, als 0.77".
    static func weights(names: [String], weights: [Float]) -> String {
        zip(names, weights).map { "\($0) \(TextFormat.fixed(Double($1), 3))" }.joined(separator: ", ")
    }

    /// A Unix time as a UTC calendar date, YYYY-MM-DD.
    static func date(_ t: Int64) -> String {
        var time = time_t(t)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return String(t) }
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))"
    }
}

/// Runs `body`, printing "<what> ... done in <time>" style output around it.
func timed<T>(_ body: () throws(ChorusError) -> T) throws(ChorusError) -> (T, Double) {
    let clock = Stopwatch()
    let value = try body()
    return (value, clock.seconds)
}
