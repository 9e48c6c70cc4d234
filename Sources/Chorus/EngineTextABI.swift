#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CChorus
import ChorusAgents
import ChorusCore

// Item and user texts of an engine: validate -> convert -> Engine.setTexts -> map errors.

private func setTexts(_ kind: TextCatalogue.Kind, _ engine: OpaquePointer?, _ ids: UnsafePointer<Int64>?, _ idsName: String,
                      _ texts: UnsafePointer<UnsafePointer<CChar>?>?, _ n: Int,
                      _ params: UnsafePointer<chorus_texts_params>? = nil) throws(ChorusError) {
    let e = try Handles.engine(engine)
    let idp = try Check.notNull(ids, idsName), tp = try Check.notNull(texts, "texts")
    let n = try Check.count(n, "n")
    guard n > 0 else { throw .invalidArgument("n is 0: nothing to set") }
    let c = try chorus_texts_params.read(params)
    var progress: ((Double) -> Bool)? = nil
    if let fn = c.progress {
        let user = c.progress_user_data
        progress = { fraction in "encoding".withCString { fn($0, fraction, user) != 0 } }
    }
    try e.setTexts(kind, ids: Array(UnsafeBufferPointer(start: idp, count: n)), texts: try Check.strings(tp, n, "texts", maxBytes: Limits.maxTextBytes),
                   threads: Int(c.threads), progress: progress)
}

@c @implementation public func chorus_texts_params_init(_ params: UnsafeMutablePointer<chorus_texts_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_texts_params.initialise(params, "params")
    }
}

@c @implementation public func chorus_engine_set_item_texts_ex(_ engine: OpaquePointer!, _ itemIds: UnsafePointer<Int64>!,
                                                            _ texts: UnsafePointer<UnsafePointer<CChar>?>!, _ n: Int,
                                                            _ params: UnsafePointer<chorus_texts_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in try setTexts(.item, engine, itemIds, "item_ids", texts, n, params) }
}

@c @implementation public func chorus_engine_set_user_texts_ex(_ engine: OpaquePointer!, _ userIds: UnsafePointer<Int64>!,
                                                            _ texts: UnsafePointer<UnsafePointer<CChar>?>!, _ n: Int,
                                                            _ params: UnsafePointer<chorus_texts_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in try setTexts(.user, engine, userIds, "user_ids", texts, n, params) }
}

@c @implementation public func chorus_engine_set_item_texts(_ engine: OpaquePointer!, _ itemIds: UnsafePointer<Int64>!,
                                                         _ texts: UnsafePointer<UnsafePointer<CChar>?>!, _ n: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in try setTexts(.item, engine, itemIds, "item_ids", texts, n) }
}

@c @implementation public func chorus_engine_set_user_texts(_ engine: OpaquePointer!, _ userIds: UnsafePointer<Int64>!,
                                                         _ texts: UnsafePointer<UnsafePointer<CChar>?>!, _ n: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in try setTexts(.user, engine, userIds, "user_ids", texts, n) }
}

@c @implementation public func chorus_engine_encoder_name(_ engine: OpaquePointer!, _ outName: UnsafeMutablePointer<UnsafePointer<CChar>?>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let out = try Check.notNull(outName, "out_name")
        out.pointee = InternedCStrings.cString(try e.encoder().reason)
    }
}

@c @implementation public func chorus_engine_add_item_facts(_ engine: OpaquePointer!, _ itemIds: UnsafePointer<Int64>!,
                                                         _ relations: UnsafePointer<UnsafePointer<CChar>?>!,
                                                         _ entities: UnsafePointer<UnsafePointer<CChar>?>!, _ n: Int,
                                                         _ outAdded: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let ids = try Check.notNull(itemIds, "item_ids"), r = try Check.notNull(relations, "relations")
        let en = try Check.notNull(entities, "entities")
        let n = try Check.count(n, "n")
        guard n > 0 else { throw .invalidArgument("n is 0: nothing to add") }
        let added = try e.addItemFacts(items: Array(UnsafeBufferPointer(start: ids, count: n)),
                                       relations: try Check.strings(r, n, "relations", maxBytes: Limits.maxNameBytes),
                                       entities: try Check.strings(en, n, "entities", maxBytes: Limits.maxNameBytes))
        outAdded?.pointee = added
    }
}
