import CChorus
import ChorusAgents
import ChorusCore

// The learning coordinator's C entry points (chorus.h, "Learning coordinator"): validate -> convert ->
// Engine.setLearning / Engine.slateLog / Engine.learningPrivacySpent.

@c @implementation public func chorus_learning_params_init(_ params: UnsafeMutablePointer<chorus_learning_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_learning_params.initialise(params, "params")
    }
}

@c @implementation public func chorus_learning_params_init_sized(_ params: UnsafeMutablePointer<chorus_learning_params>!,
                                                              _ structSize: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_learning_params.initialise(params, "params", size: structSize)
    }
}

@c @implementation public func chorus_engine_set_learning(_ engine: OpaquePointer!, _ params: UnsafePointer<chorus_learning_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let c = try chorus_learning_params.read(params)
        guard let mode = LearningOptions.Mode(rawValue: c.mode) else {
            throw .invalidArgument("mode is \(c.mode), not a chorus_learning_mode (0 off ... 3 policy)")
        }
        guard c.reserved == 0 else { throw .invalidArgument("chorus_learning_params.reserved must be 0, got \(c.reserved)") }
        guard c.log_capacity <= UInt64(LearningOptions.maxLogCapacity) else {
            throw .invalidArgument("log_capacity is \(c.log_capacity); at most \(LearningOptions.maxLogCapacity)")
        }
        guard c.release_slates <= UInt64(LearningOptions.maxReleaseSlates) else {
            throw .invalidArgument("release_slates is \(c.release_slates); at most \(LearningOptions.maxReleaseSlates)")
        }
        var o = LearningOptions(mode: mode)
        o.exploration = c.exploration; o.learningRate = c.learning_rate; o.priorStrength = c.prior_strength
        o.logCapacity = Int(c.log_capacity); o.seed = c.seed
        o.noiseMultiplier = c.noise_multiplier; o.clipNorm = c.clip_norm; o.delta = c.delta; o.releaseSlates = Int(c.release_slates)
        try e.setLearning(o)
    }
}

@c @implementation public func chorus_engine_learning_privacy_spent(_ engine: OpaquePointer!, _ outEpsilon: UnsafeMutablePointer<Double>!,
                                                                 _ outDelta: UnsafeMutablePointer<Double>!,
                                                                 _ outReleases: UnsafeMutablePointer<UInt64>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let eps = try Check.notNull(outEpsilon, "out_epsilon"), delta = try Check.notNull(outDelta, "out_delta")
        let releases = try Check.notNull(outReleases, "out_releases")
        let spent = e.learningPrivacySpent
        eps.pointee = spent.epsilon
        delta.pointee = spent.delta
        releases.pointee = UInt64(spent.releases)
    }
}

@c @implementation public func chorus_engine_slate_log(_ engine: OpaquePointer!, _ flags: UInt32, _ out: UnsafeMutablePointer<chorus_slate_row>!,
                                                    _ capacity: Int, _ outCount: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let count = try Check.notNull(outCount, "out_count")
        let known = UInt32(CHORUS_SLATE_LOG_CLOSE_OPEN | CHORUS_SLATE_LOG_DRAIN)
        guard flags & ~known == 0 else { throw .invalidArgument("unknown bits in flags: \(flags)") }
        let capacity = Check.capacity(capacity)
        guard out != nil || capacity == 0 else { throw .invalidArgument("out is NULL but capacity is \(capacity)") }
        if flags & UInt32(CHORUS_SLATE_LOG_CLOSE_OPEN) != 0 { e.closeSlates() }
        let (rows, total) = e.slateLog(limit: capacity, drain: flags & UInt32(CHORUS_SLATE_LOG_DRAIN) != 0)
        for (i, r) in rows.enumerated() {
            out[i] = chorus_slate_row(request_id: r.requestId, user_id: r.user, item_id: r.item, slot: r.slot,
                                      propensity: r.propensity, reward: r.reward, reserved: 0)
        }
        count.pointee = total
    }
}
