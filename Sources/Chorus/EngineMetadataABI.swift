import CChorus
import ChorusAgents
import ChorusCore

// Host metadata of an engine (named byte strings kept in the snapshot): validate -> copy -> core.

@c @implementation public func chorus_engine_set_metadata(_ engine: OpaquePointer!, _ key: UnsafePointer<CChar>!,
                                                       _ value: UnsafeRawPointer!, _ length: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let name = try Check.string(key, "key", maxBytes: Limits.maxNameBytes)
        let n = try Check.count(length, "length")
        guard n <= Limits.maxMetadataBytes else {
            throw .invalidArgument("length = \(n) is over the \(Limits.maxMetadataBytes)-byte limit (CHORUS_MAX_METADATA_BYTES)")
        }
        var bytes: [UInt8] = []
        if n > 0 { bytes = Array(UnsafeRawBufferPointer(start: try Check.notNull(value, "value"), count: n)) }
        try e.setMetadata(name, bytes)
    }
}

@c @implementation public func chorus_engine_metadata(_ engine: OpaquePointer!, _ key: UnsafePointer<CChar>!,
                                                   _ buffer: UnsafeMutableRawPointer!, _ capacity: Int,
                                                   _ outLength: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e = try Handles.engine(engine)
        let out = try Check.notNull(outLength, "out_length")
        out.pointee = 0
        let name = try Check.string(key, "key", maxBytes: Limits.maxNameBytes)
        let capacity = Check.capacity(capacity)
        guard buffer != nil || capacity == 0 else { throw .invalidArgument("buffer is NULL with capacity \(capacity)") }
        guard let value = e.metadata(name) else { throw .notFound("no metadata under key '\(name)'") }
        out.pointee = value.count
        guard capacity >= value.count else {
            throw .bufferTooSmall("metadata '\(name)' is \(value.count) bytes; capacity is \(capacity)")
        }
        if let buffer { value.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: value.count) } }
    }
}
