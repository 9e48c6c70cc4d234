import CChorus
import ChorusAgents
import ChorusCore

// Sharded training's C entry points (chorus.h, "Sharded training"): validate -> convert ->
// Engine.merge / Engine.fit(_:startingFrom:) / Engine.privacySpent.

@c @implementation public func chorus_merge_params_init(_ params: UnsafeMutablePointer<chorus_merge_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_merge_params.initialise(params, "params")
    }
}

@c @implementation public func chorus_merge_params_init_sized(_ params: UnsafeMutablePointer<chorus_merge_params>!,
                                                           _ structSize: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_merge_params.initialise(params, "params", size: structSize)
    }
}

/// The merge parameters of a params struct (NULL = the defaults), checked.
private func mergeParameters(_ params: UnsafePointer<chorus_merge_params>?) throws(ChorusError) -> MergeParameters {
    let c = try chorus_merge_params.read(params)
    var m = MergeParameters()
    m.threads = Int(c.threads)
    m.noiseMultiplier = c.noise_multiplier
    m.clipNorm = c.clip_norm
    if c.delta != 0 { m.delta = c.delta }
    m.seed = c.seed
    try m.validate()
    return m
}

@c @implementation public func chorus_engine_merge(_ shards: UnsafePointer<OpaquePointer?>!, _ n: Int,
                                                _ params: UnsafePointer<chorus_merge_params>!,
                                                _ outEngine: UnsafeMutablePointer<OpaquePointer?>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let out = try Check.notNull(outEngine, "out_engine")
        out.pointee = nil
        let n = try Check.count(n, "n")
        guard n > 0 else { throw .invalidArgument("n is 0: merge needs at least one shard") }
        let list = try Check.notNull(shards, "shards")
        var engines: [Engine] = []
        for i in 0..<n {
            guard let h = list[i] else { throw .invalidArgument("shards[\(i)] is NULL") }
            do throws(ChorusError) { engines.append(try Handles.engine(h)) } catch { throw .invalidArgument("shards[\(i)]: \(error.message)") }
        }
        let merged = try Engine.merge(engines, parameters: try mergeParameters(params))
        out.pointee = Handles.make(merged)
    }
}

@c @implementation public func chorus_engine_fit_from(_ engine: OpaquePointer!, _ params: UnsafePointer<chorus_fit_params>!,
                                                   _ start: OpaquePointer!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        guard let start else { throw .invalidArgument("start is NULL: use chorus_engine_fit for a fit from scratch") }
        let s: Engine
        do throws(ChorusError) { s = try Handles.engine(start) } catch { throw .invalidArgument("start: \(error.message)") }
        let (p, progress) = try fitParameters(params)
        try e.fit(p, startingFrom: s, progress: progress)
    }
}

@c @implementation public func chorus_engine_privacy_spent(_ engine: OpaquePointer!, _ outEpsilon: UnsafeMutablePointer<Double>!,
                                                        _ outDelta: UnsafeMutablePointer<Double>!,
                                                        _ outRounds: UnsafeMutablePointer<UInt32>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let eps = try Check.notNull(outEpsilon, "out_epsilon"), delta = try Check.notNull(outDelta, "out_delta")
        let rounds = try Check.notNull(outRounds, "out_rounds")
        guard e.stats().fitted else { throw .notFitted("the engine has no model: no privacy to report") }
        let spent = e.privacySpent
        eps.pointee = spent?.epsilon ?? .infinity
        delta.pointee = spent?.delta ?? 0
        rounds.pointee = UInt32(clamping: spent?.rounds ?? 0)
    }
}
