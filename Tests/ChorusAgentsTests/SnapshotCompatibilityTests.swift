import Testing
@testable import ChorusAgents
@testable import ChorusCore
import ChorusText

/// A snapshot written by an earlier library (engine format 3, before the engine was split by
/// responsibility; `Fixtures/make_engine_v3.py` says how it was made) loads and serves exactly
/// what that library served: the same items, scores and shares, bit for bit, for plain, scenario,
/// query, history and diversity requests.
@Suite struct SnapshotCompatibilityTests {
    static func fixture(_ name: String) -> String {
        let file = "\(#filePath)"
        return String(file[..<file.lastIndex(of: "/")!]) + "/Fixtures/" + name
    }

    @Test func anEngineFormat3SnapshotServesAsItDid() throws {
        let engine = try Engine.load(path: Self.fixture("engine-v3.chorus"))
        let expected = try JSONValue.parse(FileIO.readAll(path: Self.fixture("engine-v3.expected.json")))
        #expect(engine.agentNames == expected["agents"]?.arrayValue?.compactMap(\.stringValue))
        let requests = try #require(expected["requests"]?.arrayValue)
        #expect(requests.count == 6)
        for r in requests {
            let user = Int64(try #require(r["user"]?.numberValue))
            var o = RecommendOptions()
            let given = try #require(r["options"]?.objectValue)
            o.scenario = given["scenario"]?.stringValue
            o.query = given["query"]?.stringValue
            o.history = given["history"]?.arrayValue?.compactMap { $0.numberValue.map(Int64.init) } ?? []
            o.diversity = Float(given["diversity"]?.numberValue ?? 0)
            let list = try #require(try engine.recommend(users: [user], k: 5, options: o).first)
            #expect(list.items == r["items"]?.arrayValue?.compactMap { $0.numberValue.map(Int64.init) }, "user \(user) \(given)")
            #expect(list.scores == r["scores"]?.arrayValue?.compactMap { $0.numberValue.map(Float.init) }, "user \(user) \(given)")
            let shares = r["shares"]?.arrayValue?.map { $0.arrayValue?.compactMap { $0.numberValue.map(Float.init) } ?? [] }
            #expect(list.shares == shares, "user \(user) \(given)")
        }
    }
}
