#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusAgents
import ChorusEval
import ArgumentParser

/// `chorus demo`: fit on MovieLens (or the shipped demo catalogue), show a few users'
/// recommendations with each agent's share, then the evaluation table.
struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Fit on MovieLens (or the shipped demo catalogue), show recommendations and an evaluation.",
        discussion: """
            Fits the engine on MovieLens ml-latest-small when --data holds it, otherwise on the demo \
            catalogue shipped with Chorus (examples/data/demo: 300 movies, 200 users). Prints the top-k \
            titles for a few users with each agent's share of every score and some titles each user \
            liked, then evaluates every agent and the blend on a per-user temporal hold-out.
            """)

    @Option(parsing: .unconditional,
            help: ArgumentHelp("A MovieLens directory or a parent holding ml-latest-small/ (the demo catalogue is used when absent).",
                               valueName: "dir"),
            completion: .directory)
    var data: String = "../shared/data"

    @Option(name: .customLong("demo-data"), parsing: .unconditional,
            help: ArgumentHelp("The demo catalogue (default: examples/data/demo, searched next to the executable and in the "
                               + "current directory).", valueName: "dir"),
            completion: .directory)
    var demoData: String?

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Comma-separated user ids to show (default: 3 users of low, median and high activity).",
                               valueName: "ids"),
            transform: DemoCommand.userIds)
    var users: [Int64]?

    @Option(parsing: .unconditional, help: ArgumentHelp("List length (default 10).", valueName: "n"), transform: Parse.int(1...1000))
    var k: Int = 10

    @OptionGroup(title: "Fit options")
    var fit: FitOptions

    static let userIds: @Sendable (String) throws -> [Int64] = { text in
        var ids: [Int64] = []
        for part in text.split(separator: ",") {
            guard let id = Int64(part.trimmingSpaces) else { throw ValidationError("must be comma-separated integer ids") }
            ids.append(id)
        }
        guard !ids.isEmpty else { throw ValidationError("needs at least one id") }
        return ids
    }

    func run() throws {
        do throws(CLIError) { try demo() } catch {
            switch error {
            case .failure(let message): throw CLIFailure(command: "demo", message: message)
            }
        }
    }

    private func demo() throws(CLIError) {
        let k = self.k
        let (config, parameters) = fit.parameters
        fit.startLogging()
        let withTexts = fit.texts.isOn
        let withFacts = fit.facts.isOn
        let chosenUsers = users

        // 1. Data: MovieLens from --data when present, else the shipped demo catalogue.
        let dataPath = data
        let directory: String
        if let demo = demoData {
            directory = demo
        } else if let found = try? MovieLens.locate(dataPath) {
            directory = found.directory
        } else if let demo = DemoCommand.locateDemoCatalogue() {
            print("No MovieLens dataset under '\(dataPath)': using the demo catalogue shipped with Chorus.")
            directory = demo
        } else {
            throw .failure("no MovieLens dataset under '\(dataPath)' and no demo catalogue (examples/data/demo) "
                           + "next to the executable or in the current directory; give --data or --demo-data")
        }

        do throws(ChorusError) {
            let (data, loadSeconds) = try timed { () throws(ChorusError) in try MovieLens.load(directory) }
            print("Data      \(data.name) (\(data.directory))")
            print("          \(Report.datasetSummary(data)); loaded in \(TextFormat.seconds(loadSeconds))")

            // 2. Fit on everything.
            print("Fit       " + FitOptions.describe(config, parameters))
            let engine = Engine(config: config)
            try engine.add(data.interactions)
            if withTexts { try FitOptions.setMovieTexts(engine, data.movies, items: Set(data.interactions.map(\.item)), indent: "          ") }
            if withFacts { try FitOptions.addMovieFacts(engine, data.movies, items: Set(data.interactions.map(\.item)), indent: "          ") }
            // A newcomer known only by what they say they like: served by popularity and content.
            let newcomer: Int64 = -1
            let wish = "a light-hearted animated film for a family evening"
            if withTexts { try engine.setTexts(.user, ids: [newcomer], texts: [wish]) }
            let progress = FitProgress(indent: "          ")
            let clock = Stopwatch()
            do throws(ChorusError) { try engine.fit(parameters, progress: progress.callback) } catch {
                progress.finish()
                throw error
            }
            progress.finish()
            print("          fitted in \(TextFormat.seconds(clock.seconds)); blend weights "
                  + Report.weights(names: engine.agentNames, weights: engine.blendWeights))
            guard k <= engine.itemCount else { throw .invalidArgument("--k \(k) exceeds the \(engine.itemCount) items in the data") }

            // 3. A few users' recommendations.
            var history: [Int64: [Interaction]] = [:]
            for x in data.interactions { history[x.user, default: []].append(x) }
            let users = chosenUsers ?? DemoCommand.sampleUsers(history)
            let lists = try engine.recommend(users: users, k: k)
            for list in lists {
                DemoCommand.show(list, history: history[list.user] ?? [], movies: data.movies, agents: engine.agentNames)
                if let top = list.items.first { print("  Why #1: " + (try engine.explain(user: list.user, item: top)).sentence) }
            }
            if withTexts {
                print("")
                print("A new user with no ratings, who says: \"\(wish)\"")
                let list = try engine.recommend(users: [newcomer], k: k)[0]
                DemoCommand.show(list, history: [], movies: data.movies, agents: engine.agentNames, headline: false)
            }
            // The search needs the query agent, which comes with content (absent when --agents leaves it out).
            if withTexts && engine.agentNames.contains("query") {
                var asked = RecommendOptions(); asked.query = "a tense heist thriller"
                print("")
                print("The same newcomer searches: \"a tense heist thriller\"")
                let searched = try engine.recommend(users: [newcomer], k: k, options: asked)[0]
                DemoCommand.show(searched, history: [], movies: data.movies, agents: engine.agentNames, headline: false)
                if let top = searched.items.first {
                    print("  Why #1: " + (try engine.explain(user: newcomer, item: top, options: asked)).sentence)
                }
            }

            // 4. Evaluation on a temporal hold-out.
            print("")
            let fraction = 0.2
            let split = try TemporalSplit.split(data.interactions, fraction: fraction)
            print("Evaluation: refit on the training part of a " + Report.splitSummary(split, fraction: fraction, minRating: nil)[0])
            for l in Report.splitSummary(split, fraction: fraction, minRating: nil).dropFirst() { print("          " + l) }
            let evalProgress = FitProgress(indent: "          ")
            let run: (result: EvaluationResult, engine: Engine)
            do throws(ChorusError) {
                run = try Evaluation.run(train: split.train, test: split.test, k: k, config: config, parameters: parameters,
                                         itemTexts: withTexts ? data.movies.mapValues(MovieLens.itemText) : [:],
                                         itemFacts: withFacts ? data.movies : [:],
                                         progress: evalProgress.callback)
            } catch {
                evalProgress.finish()
                throw error
            }
            evalProgress.finish()
            print("          fitted in \(TextFormat.seconds(run.result.fitSeconds))")
            print("")
            print(Evaluation.formatTable(run.result.rows), terminator: "")
            print("")
            print("Blend weights: " + Report.weights(names: run.result.agentNames, weights: run.result.blendWeights))
        } catch {
            throw .failure(error.message)
        }
    }

    /// Three users at the 10th, 50th and 90th percentile of activity (ties by id), distinct.
    static func sampleUsers(_ history: [Int64: [Interaction]]) -> [Int64] {
        var ranked: [(user: Int64, count: Int)] = history.map { (user: $0.key, count: $0.value.count) }
        ranked.sort { (a: (user: Int64, count: Int), b: (user: Int64, count: Int)) -> Bool in
            a.count < b.count || (a.count == b.count && a.user < b.user)
        }
        guard !ranked.isEmpty else { return [] }
        var out: [Int64] = []
        for q in [0.1, 0.5, 0.9] {
            let u = ranked[min(ranked.count - 1, Int(Double(ranked.count - 1) * q))].user
            if !out.contains(u) { out.append(u) }
        }
        return out
    }

    static func show(_ list: RecommendationList, history: [Interaction], movies: [Int64: Movie], agents: [String],
                     headline: Bool = true) {
        func title(_ id: Int64) -> String { movies[id]?.title ?? "movie \(id)" }
        if headline { print("") }
        if !headline {
        } else if history.isEmpty {
            print("User \(list.user): no ratings in the data (cold start: popularity only)")
        } else {
            // Liked: ratings >= 4, most recent first (the best-rated when none reaches 4).
            var liked = history.filter { $0.weight >= 4 }
            if liked.isEmpty { liked = history.sorted { $0.weight > $1.weight } }
            liked.sort { $0.timestamp > $1.timestamp || ($0.timestamp == $1.timestamp && $0.weight > $1.weight) }
            let shown = liked.prefix(4).map { "\(TextFormat.truncate(title($0.item), 40)) (\(TextFormat.fixed(Double($0.weight), 1)))" }
            print("User \(list.user): \(TextFormat.grouped(history.count)) ratings; recently liked: " + shown.joined(separator: ", "))
        }
        let width = min(52, list.items.map { title($0).count }.max() ?? 10)
        for (rank, item) in list.items.enumerated() {
            let shares = list.shares[rank]
            let parts = zip(agents, shares).sorted { $0.1 > $1.1 }
                .map { "\($0.0) \(TextFormat.percent(Double($0.1)))" }.joined(separator: " / ")
            let number = TextFormat.pad(String(rank + 1), 3, left: false)
            print("  \(number). \(TextFormat.pad(TextFormat.truncate(title(item), width), width))  "
                  + "\(TextFormat.fixed(Double(list.scores[rank]), 3))  \(parts)")
        }
    }

    /// examples/data/demo: next to the executable (walking up from its directory: build/chorus,
    /// .build/<triple>/release/chorus-cli) or below the current directory.
    static func locateDemoCatalogue() -> String? {
        var candidates: [String] = ["examples/data/demo"]
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if n > 0 {
            var dir = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            for _ in 0..<5 {
                guard let slash = dir.lastIndex(of: "/"), slash > dir.startIndex else { break }
                dir = String(dir[..<slash])
                candidates.append(dir + "/examples/data/demo")
            }
        }
        return candidates.first { MovieLens.detect(directory: $0) == .latestSmall }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
