#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore

/// The kinds of live feedback event; the raw values are the C API's `chorus_event` (pinned).
public enum FeedbackEvent: Int32, Sendable, CaseIterable {
    case impression = 0, click = 1, addToCart = 2, purchase = 3, rating = 4, skip = 5, dismiss = 6

    /// The name the Python binding and messages use.
    public var name: String {
        switch self {
        case .impression: "impression"
        case .click: "click"
        case .addToCart: "add_to_cart"
        case .purchase: "purchase"
        case .rating: "rating"
        case .skip: "skip"
        case .dismiss: "dismiss"
        }
    }
}

/// The reward of each event type (`chorus_feedback_params`). An event's reward is its type's
/// reward times its value (1 when the host gives none): a rating of 4 with the default rating
/// reward 1 is worth 4, a purchase of quantity 2 is worth 8. Positive rewards are interactions
/// (weight = reward), negative ones demote or drop the item for that user, 0 is only counted.
public struct FeedbackRewards: Sendable, Equatable {
    public var impression: Float = 0
    public var click: Float = 1
    public var addToCart: Float = 2
    public var purchase: Float = 4
    public var rating: Float = 1
    public var skip: Float = -0.5
    public var dismiss: Float = -1
    public init() {}

    public func reward(of event: FeedbackEvent) -> Float {
        switch event {
        case .impression: impression
        case .click: click
        case .addToCart: addToCart
        case .purchase: purchase
        case .rating: rating
        case .skip: skip
        case .dismiss: dismiss
        }
    }

    /// Every reward must be finite.
    public func validate() throws(ChorusError) {
        for e in FeedbackEvent.allCases where !reward(of: e).isFinite {
            throw .invalidArgument("the reward of \(e.name) events is \(reward(of: e)); rewards must be finite")
        }
    }
}

/// A validated batch of feedback: its positive events as interactions (weight = reward, in batch
/// order) and its negative ones, plus the count of each type.
struct FeedbackBatch: Sendable {
    var users: [Int64] = [], items: [Int64] = [], weights: [Float] = [], timestamps: [Int64] = []
    var negatives: [(user: Int64, item: Int64, reward: Float)] = []
    /// The events that name a served request (request id not -1): the learning coordinator's rewards.
    var answers: [(request: Int64, item: Int64, reward: Float)] = []
    var counts = [UInt64](repeating: 0, count: FeedbackEvent.allCases.count)

    /// Validates the whole batch before anything changes.
    /// - Throws: `.invalidArgument` naming the argument: lengths that differ, an unknown event type,
    ///   a value that is NaN, infinite or negative, a reward that overflows, item id -1 (the
    ///   empty-slot marker), or rewards that are not finite.
    init(users: [Int64], items: [Int64], events: [Int32], values: [Float]?, timestamps: [Int64]?, requestIds: [Int64]?,
         rewards: FeedbackRewards, now: Int64) throws(ChorusError) {
        let n = users.count
        guard n > 0 else { throw .invalidArgument("n is 0: no feedback to record") }
        guard items.count == n else { throw .invalidArgument("item_ids has \(items.count) entries for \(n) user_ids") }
        guard events.count == n else { throw .invalidArgument("events has \(events.count) entries for \(n) user_ids") }
        if let values, values.count != n { throw .invalidArgument("values has \(values.count) entries for \(n) events") }
        if let timestamps, timestamps.count != n { throw .invalidArgument("timestamps has \(timestamps.count) entries for \(n) events") }
        if let requestIds, requestIds.count != n { throw .invalidArgument("request_ids has \(requestIds.count) entries for \(n) events") }
        try rewards.validate()
        for i in 0..<n {
            guard let event = FeedbackEvent(rawValue: events[i]) else {
                throw .invalidArgument("events[\(i)] is \(events[i]), not an event type (0 impression ... 6 dismiss)")
            }
            if items[i] == InteractionLog.noItem {
                throw .invalidArgument("item_ids[\(i)] is -1 (CHORUS_NO_ITEM, the empty-slot marker of recommendation lists); it cannot name an item")
            }
            let value = values?[i] ?? 1
            guard value.isFinite, value >= 0 else { throw .invalidArgument("values[\(i)] is \(value); a value must be finite and >= 0") }
            let reward = rewards.reward(of: event) * value
            guard reward.isFinite else { throw .invalidArgument("values[\(i)] = \(value) times the \(event.name) reward overflows") }
            counts[Int(event.rawValue)] += 1
            if let request = requestIds?[i], request != Self.noRequest { answers.append((request, items[i], reward)) }
            if reward > 0 {
                self.users.append(users[i]); self.items.append(items[i]); weights.append(reward)
                self.timestamps.append(timestamps?[i] ?? now)
            } else if reward < 0 {
                negatives.append((users[i], items[i], reward))
            }
        }
    }

    /// The request id of an event that answers no logged request (`CHORUS_NO_REQUEST`).
    static let noRequest: Int64 = -1

    /// The wall clock in Unix seconds: the timestamp of events given without one.
    static var now: Int64 { Int64(time(nil)) }
}

/// What the host's feedback left in the data store besides the log's rows: which log rows came
/// from feedback (the online overlay is rebuilt from them at load), the accumulated negative reward
/// of each (user, item), and how many events of each type arrived. Saved in the "FDBK" section.
struct FeedbackRecord: Sendable, Equatable {
    /// Log rows appended by feedback, one range per batch, ascending.
    var rows: [Range<Int>] = []
    /// user -> item -> accumulated negative reward (< 0). A later positive event on the item clears it.
    var negatives: [Int64: [Int64: Float]] = [:]
    var counts = [UInt64](repeating: 0, count: FeedbackEvent.allCases.count)

    var isEmpty: Bool { rows.isEmpty && negatives.isEmpty && counts.allSatisfy { $0 == 0 } }

    /// Records a batch whose positive events went to log rows `first ..< first + batch.users.count`.
    mutating func record(_ batch: FeedbackBatch, firstRow first: Int) {
        if !batch.users.isEmpty {
            // Back-to-back batches make one range (the usual case: feedback alone feeds the log).
            if let last = rows.last, last.upperBound == first { rows[rows.count - 1] = last.lowerBound..<(first + batch.users.count) }
            else { rows.append(first..<(first + batch.users.count)) }
        }
        for (u, i) in zip(batch.users, batch.items) where negatives[u]?[i] != nil {
            negatives[u]![i] = nil
            if negatives[u]!.isEmpty { negatives[u] = nil }
        }
        // Saturated: two finite negative rewards may sum past Float's range, and a snapshot holding
        // -infinity would not load (found by the api fuzzer).
        for e in batch.negatives {
            let sum = (negatives[e.user]?[e.item] ?? 0) + e.reward
            negatives[e.user, default: [:]][e.item] = max(sum, -.greatestFiniteMagnitude)
        }
        for t in counts.indices { counts[t] &+= batch.counts[t] }
    }

    /// The feedback rows at or after `start` (those a model that saw `start` rows has not seen).
    func rows(from start: Int) -> [Int] {
        rows.flatMap { r in r.clamped(to: max(r.lowerBound, start)..<max(r.upperBound, start)) }
    }

    /// Section format version.
    static let version: UInt32 = 1

    func encode(into w: inout ByteWriter) {
        w.write(Self.version)
        w.writeArray(counts)
        w.writeArray(rows.map { UInt64($0.lowerBound) }); w.writeArray(rows.map { UInt64($0.count) })
        let users = negatives.keys.sorted()
        var start: [UInt64] = [0], items: [Int64] = [], rewards: [Float] = []
        for u in users {
            for (i, r) in negatives[u]!.sorted(by: { $0.key < $1.key }) { items.append(i); rewards.append(r) }
            start.append(UInt64(items.count))
        }
        w.writeArray(users); w.writeArray(start); w.writeArray(items); w.writeArray(rewards)
    }

    /// Reads what `encode` wrote, checking every count and index against the log it belongs to.
    static func decode(_ r: inout ByteReader, logCount: Int) throws(ChorusError) -> FeedbackRecord {
        let version = try r.read(UInt32.self)
        guard version == Self.version else {
            throw .unsupportedVersion("feedback section version \(version) is not supported (this library reads version \(Self.version))")
        }
        var f = FeedbackRecord()
        let counts = try r.readArray(UInt64.self)
        guard counts.count == f.counts.count else { throw .format("feedback section has \(counts.count) event counts, expected \(f.counts.count)") }
        f.counts = counts
        let starts = try r.readArray(UInt64.self), lengths = try r.readArray(UInt64.self)
        guard starts.count == lengths.count else { throw .format("feedback row ranges are malformed") }
        var end: UInt64 = 0
        for (s, n) in zip(starts, lengths) {
            guard n > 0, s >= end, s <= UInt64(logCount), n <= UInt64(logCount) - s else {
                throw .format("feedback row range \(s) + \(n) does not fit the log of \(logCount) rows")
            }
            end = s + n
            f.rows.append(Int(s)..<Int(end))
        }
        let users = try r.readArray(Int64.self), start = try r.readArray(UInt64.self)
        let items = try r.readArray(Int64.self), rewards = try r.readArray(Float.self)
        guard start.count == users.count + 1, start.first == 0, start.last == UInt64(items.count), items.count == rewards.count,
              zip(start, start.dropFirst()).allSatisfy({ $0 < $1 }) else { throw .format("feedback negatives are malformed") }
        for (k, u) in users.enumerated() {
            guard f.negatives[u] == nil else { throw .format("feedback negatives name user \(u) twice") }
            var row: [Int64: Float] = [:]
            for e in Int(start[k])..<Int(start[k + 1]) {
                guard items[e] != InteractionLog.noItem, rewards[e].isFinite, rewards[e] < 0, row[items[e]] == nil else {
                    throw .format("feedback negative \(e) is invalid")
                }
                row[items[e]] = rewards[e]
            }
            f.negatives[u] = row
        }
        return f
    }
}
