import CChorus
import ChorusAgents
import ChorusCore

// Live feedback's C entry points (chorus.h, "Live feedback"): validate -> convert -> Engine.feedback.

@c @implementation public func chorus_feedback_params_init(_ params: UnsafeMutablePointer<chorus_feedback_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_feedback_params.initialise(params, "params")
    }
}

@c @implementation public func chorus_feedback_params_init_sized(_ params: UnsafeMutablePointer<chorus_feedback_params>!,
                                                              _ structSize: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_feedback_params.initialise(params, "params", size: structSize)
    }
}

/// The rewards of a params struct (NULL = the defaults).
private func rewards(_ params: UnsafePointer<chorus_feedback_params>?) throws(ChorusError) -> FeedbackRewards {
    let c = try chorus_feedback_params.read(params)
    var r = FeedbackRewards()
    r.impression = c.impression; r.click = c.click; r.addToCart = c.add_to_cart; r.purchase = c.purchase
    r.rating = c.rating; r.skip = c.skip; r.dismiss = c.dismiss
    guard c.reserved == 0 else { throw .invalidArgument("chorus_feedback_params.reserved must be 0, got \(c.reserved)") }
    return r
}

@c @implementation public func chorus_engine_feedback(_ engine: OpaquePointer!, _ userIds: UnsafePointer<Int64>!, _ itemIds: UnsafePointer<Int64>!,
                                                   _ events: UnsafePointer<Int32>!, _ values: UnsafePointer<Float>!,
                                                   _ timestamps: UnsafePointer<Int64>!, _ n: Int, _ scenario: UnsafePointer<CChar>!,
                                                   _ requestIds: UnsafePointer<Int64>!,
                                                   _ params: UnsafePointer<chorus_feedback_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let u = try Check.notNull(userIds, "user_ids"), i = try Check.notNull(itemIds, "item_ids")
        let ev = try Check.notNull(events, "events")
        let n = try Check.count(n, "n")
        guard n > 0 else { throw .invalidArgument("n is 0: no feedback to record") }
        let r = try rewards(params)
        func array<T>(_ p: UnsafePointer<T>) -> [T] { Array(UnsafeBufferPointer(start: p, count: n)) }
        let name = try scenario.map { (s) throws(ChorusError) in try Check.text(s, "scenario", maxBytes: Limits.maxScenarioNameBytes) }
        try e.feedback(users: array(u), items: array(i), events: array(ev), values: values.map(array), timestamps: timestamps.map(array),
                       scenario: name?.isEmpty == true ? nil : name, requestIds: requestIds.map(array), rewards: r)
    }
}
