import CChorus
import ChorusCore
import ChorusKnowledge

// The knowledge graph's C entry points: validate -> convert -> call ChorusKnowledge -> map errors.

private func graph(_ handle: OpaquePointer?) throws(ChorusError) -> KnowledgeGraph { try Handles.object(handle, "kg") }

@c @implementation public func chorus_kg_create(_ outKg: UnsafeMutablePointer<OpaquePointer?>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let out = try Check.notNull(outKg, "out_kg")
        out.pointee = Handles.make(KnowledgeGraph())
    }
}

@c @implementation public func chorus_kg_free(_ kg: OpaquePointer!) {
    Handles.release(kg, as: KnowledgeGraph.self, "kg")
}

@c @implementation public func chorus_kg_add_triples(_ kg: OpaquePointer!, _ heads: UnsafePointer<UnsafePointer<CChar>?>!,
                                                  _ relations: UnsafePointer<UnsafePointer<CChar>?>!,
                                                  _ tails: UnsafePointer<UnsafePointer<CChar>?>!, _ n: Int,
                                                  _ outAdded: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let g = try graph(kg)
        let h = try Check.notNull(heads, "heads"), r = try Check.notNull(relations, "relations"), t = try Check.notNull(tails, "tails")
        let n = try Check.count(n, "n")
        guard n > 0 else { throw .invalidArgument("n is 0: nothing to add") }
        let added = try g.add(heads: try Check.strings(h, n, "heads", maxBytes: Limits.maxNameBytes),
                              relations: try Check.strings(r, n, "relations", maxBytes: Limits.maxNameBytes),
                              tails: try Check.strings(t, n, "tails", maxBytes: Limits.maxNameBytes))
        outAdded?.pointee = added
    }
}

@c @implementation public func chorus_kg_load_tsv(_ kg: OpaquePointer!, _ path: UnsafePointer<CChar>!, _ outAdded: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let g = try graph(kg)
        let added = try g.load(tsv: try Check.path(path))
        outAdded?.pointee = added
    }
}

@c @implementation public func chorus_kg_counts(_ kg: OpaquePointer!, _ outEntities: UnsafeMutablePointer<Int>!,
                                             _ outRelations: UnsafeMutablePointer<Int>!, _ outTriples: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let c = try graph(kg).counts
        outEntities?.pointee = c.entities; outRelations?.pointee = c.relations; outTriples?.pointee = c.triples
    }
}

@c @implementation public func chorus_kg_train_params_init(_ params: UnsafeMutablePointer<chorus_kg_train_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_kg_train_params.initialise(params, "params")
    }
}

@c @implementation public func chorus_kg_train(_ kg: OpaquePointer!, _ params: UnsafePointer<chorus_kg_train_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let g = try graph(kg)
        var p = KGTrainingParameters.defaults(for: .rotatE)
        var progress: ((Double) -> Bool)? = nil
        if let params {
            let c = try chorus_kg_train_params.read(params)
            if let m = c.model { p = KGTrainingParameters.defaults(for: try KGModelKind(name: try Check.text(m, "model", maxBytes: Limits.maxNameBytes))) }
            if c.dim != 0 { p.dimension = Int(c.dim) }
            if c.epochs != 0 { p.epochs = Int(c.epochs) }
            if c.batch_size != 0 { p.batchSize = Int(c.batch_size) }
            if c.negatives != 0 { p.negatives = Int(c.negatives) }
            p.threads = Int(c.threads)
            guard c.learning_rate.isFinite, c.learning_rate >= 0, c.gamma.isFinite, c.gamma >= 0 else {
                throw .invalidArgument("learning_rate and gamma must be finite and >= 0")
            }
            if c.learning_rate != 0 { p.learningRate = c.learning_rate }
            if c.gamma != 0 { p.gamma = c.gamma }
            if c.seed != 0 { p.seed = c.seed }
            if c.share_negatives > 1 { p.negativeSharing = Int(c.share_negatives) }
            guard c.lr_decay_factor.isFinite, c.lr_decay_factor >= 0, c.lr_decay_factor <= 1 else {
                throw .invalidArgument("lr_decay_factor must be in (0, 1] (0: 0.1), got \(c.lr_decay_factor)")
            }
            if c.lr_decay_epoch != 0 { p.learningRateDecayEpochs = [Int(c.lr_decay_epoch)] }
            if c.lr_decay_factor != 0 { p.learningRateDecayFactor = c.lr_decay_factor }
            guard c.filter_negatives <= 1 else { throw .invalidArgument("filter_negatives must be 0 or 1, got \(c.filter_negatives)") }
            p.filterKnownNegatives = c.filter_negatives == 1
            if let fn = c.progress {
                let user = c.progress_user_data
                progress = { fraction in "training".withCString { fn($0, fraction, user) != 0 } }
            }
        }
        try g.train(p, progress: progress)
    }
}

@c @implementation public func chorus_kg_metrics_init(_ metrics: UnsafeMutablePointer<chorus_kg_metrics>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_kg_metrics.initialise(metrics, "metrics")
    }
}

@c @implementation public func chorus_kg_evaluate_tsv(_ kg: OpaquePointer!, _ path: UnsafePointer<CChar>!,
                                                   _ out: UnsafeMutablePointer<chorus_kg_metrics>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let g = try graph(kg)
        let o = try chorus_kg_metrics.output(out, "out")
        let (r, skipped) = try g.evaluate(tsv: try Check.path(path))
        var m = chorus_kg_metrics.defaults
        m.queries = UInt64(r.both.queries)
        m.skipped = UInt64(skipped)
        m.mrr = r.both.mrr
        m.hits_at_1 = r.both.hitsAt1; m.hits_at_3 = r.both.hitsAt3; m.hits_at_10 = r.both.hitsAt10
        chorus_kg_metrics.write(m, to: o.pointer, size: o.size)
    }
}

private func copyVector(_ v: [Float], _ out: UnsafeMutablePointer<Float>?, _ capacity: Int, _ outDim: UnsafeMutablePointer<Int>?) throws(ChorusError) {
    outDim?.pointee = v.count
    let o = try Check.notNull(out, "out")
    guard Check.capacity(capacity) >= v.count else { throw .bufferTooSmall("capacity \(capacity) < dimension \(v.count)") }
    o.update(from: v, count: v.count)
}

@c @implementation public func chorus_kg_entity_vector(_ kg: OpaquePointer!, _ name: UnsafePointer<CChar>!, _ out: UnsafeMutablePointer<Float>!,
                                                    _ capacity: Int, _ outDim: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try copyVector(try graph(kg).vector(entity: try Check.string(name, "name", maxBytes: Limits.maxNameBytes)), out, capacity, outDim)
    }
}

@c @implementation public func chorus_kg_relation_vector(_ kg: OpaquePointer!, _ name: UnsafePointer<CChar>!, _ out: UnsafeMutablePointer<Float>!,
                                                      _ capacity: Int, _ outDim: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try copyVector(try graph(kg).vector(relation: try Check.string(name, "name", maxBytes: Limits.maxNameBytes)), out, capacity, outDim)
    }
}

@c @implementation public func chorus_kg_save(_ kg: OpaquePointer!, _ path: UnsafePointer<CChar>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in try graph(kg).save(path: try Check.path(path)) }
}

@c @implementation public func chorus_kg_load(_ path: UnsafePointer<CChar>!, _ outKg: UnsafeMutablePointer<OpaquePointer?>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let out = try Check.notNull(outKg, "out_kg")
        out.pointee = nil
        out.pointee = Handles.make(try KnowledgeGraph.load(path: try Check.path(path)))
    }
}

@c @implementation public func chorus_engine_knowledge_graph(_ engine: OpaquePointer!, _ outKg: UnsafeMutablePointer<OpaquePointer?>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let out = try Check.notNull(outKg, "out_kg")
        out.pointee = nil
        out.pointee = Handles.make(try Handles.engine(engine).knowledgeGraph)
    }
}
