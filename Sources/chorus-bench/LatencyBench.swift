#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import ChorusAgents
import ChorusEval

/// `chorus-bench latency`: single-user recommend latency of every agent alone and of the
/// coordinator, on one thread, from a fitted engine (a snapshot, made on first use), so the
/// serving path can be profiled without refitting (perf record chorus-bench latency ...).
enum LatencyBench {
    static let options: Set<String> = ["data", "snapshot", "encoder", "passes"]
    static let help = """
        Usage: chorus-bench latency --data DIR --snapshot FILE [--encoder hashing|auto] [--passes 3]

        DIR holds ml-latest-small (ratings.csv, movies.csv). FILE is loaded when it exists; otherwise
        the engine is fitted on all ratings with movie texts and saved there. Prints p50/p99 in µs.
        """

    static func run(_ o: Options) throws(BenchError) {
        try o.check()
        let dir = try o.required("data"), snapshot = try o.required("snapshot")
        let passes = try o.int("passes", default: 3, minimum: 1)
        do throws(ChorusError) {
            let engine: Engine
            if access(snapshot, R_OK) == 0 {
                engine = try Engine.load(path: snapshot)
            } else {
                let data = try MovieLens.load(dir)
                engine = Engine(config: EngineConfig(hashingEncoder: (o.string("encoder") ?? "hashing") == "hashing"))
                try engine.add(data.interactions)
                let ids = Set(data.interactions.map(\.item)).filter { data.movies[$0] != nil }.sorted()
                try engine.setTexts(.item, ids: ids, texts: ids.map { MovieLens.itemText(data.movies[$0]!) })
                try engine.fit(FitParameters())
                try engine.save(path: snapshot)
            }
            let users = engine.stats().modelUsers
            let ids = (1...users).map { Int64($0) }
            var rows: [String] = []
            for agent in engine.agentNames.filter({ $0 != "query" }).map(Optional.some) + [nil] {
                var o = RecommendOptions(); o.agent = agent
                var times: [Double] = []
                for _ in 0..<passes {
                    for u in ids {
                        let clock = Stopwatch()
                        _ = try engine.recommend(users: [u], k: 10, options: o)
                        times.append(clock.seconds * 1e6)
                    }
                }
                times.sort()
                let p50 = times[times.count / 2], p99 = times[min(times.count - 1, times.count * 99 / 100)]
                rows.append("\"\(agent ?? "coordinator")\": {\"p50_us\": \(Int(p50)), \"p99_us\": \(Int(p99))}")
            }
            print("{" + rows.joined(separator: ", ") + "}")
        } catch {
            throw .failure(error.message)
        }
    }
}
