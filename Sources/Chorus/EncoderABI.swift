#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CChorus
import ChorusCore
import ChorusText

// The text encoder's C entry points: validate -> convert -> call ChorusText -> map errors.

/// What a chorus_encoder handle points to: the encoder, its description as a C string, its threads.
final class EncoderBox: @unchecked Sendable {
    let encoder: SentenceEncoder
    let name: UnsafeMutablePointer<CChar>
    let threads: Int
    init(_ choice: TextEncoders.Choice, threads: Int) {
        encoder = choice.encoder
        name = strdupSwift(choice.reason)
        self.threads = threads
    }
    deinit { name.deallocate() }
}

@c @implementation public func chorus_encoder_params_init(_ params: UnsafeMutablePointer<chorus_encoder_params>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        try chorus_encoder_params.initialise(params, "params")
    }
}

@c @implementation public func chorus_encoder_create(_ params: UnsafePointer<chorus_encoder_params>!, _ outEncoder: UnsafeMutablePointer<OpaquePointer?>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let out = try Check.notNull(outEncoder, "out_encoder")
        out.pointee = nil
        var path: String? = nil, require = false, threads = 0
        if let params {
            let c = try chorus_encoder_params.read(params)
            guard c.flags & ~UInt32(CHORUS_ENCODER_REQUIRE_MODEL) == 0 else { throw .invalidArgument("unknown bits in flags: \(c.flags)") }
            guard c.threads <= 1024 else { throw .invalidArgument("threads must be in 0...1024, got \(c.threads)") }
            path = try c.model_path.map { (p) throws(ChorusError) in try Check.path(p, "model_path") }
            require = c.flags & UInt32(CHORUS_ENCODER_REQUIRE_MODEL) != 0
            threads = Int(c.threads)
        }
        let choice = try TextEncoders.load(path: path, requireModel: require)
        Log.emit(choice.isFallback ? .warning : .info, choice.reason)
        out.pointee = Handles.make(EncoderBox(choice, threads: threads > 0 ? threads : Parallel.cpuCount))
    }
}

@c @implementation public func chorus_encoder_free(_ encoder: OpaquePointer!) {
    Handles.release(encoder, as: EncoderBox.self, "encoder")
}

@c @implementation public func chorus_encoder_dim(_ encoder: OpaquePointer!, _ outDim: UnsafeMutablePointer<Int>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e: EncoderBox = try Handles.object(encoder, "encoder")
        try Check.notNull(outDim, "out_dim").pointee = e.encoder.dimension
    }
}

@c @implementation public func chorus_encoder_name(_ encoder: OpaquePointer!, _ outName: UnsafeMutablePointer<UnsafePointer<CChar>?>!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e: EncoderBox = try Handles.object(encoder, "encoder")
        try Check.notNull(outName, "out_name").pointee = UnsafePointer(e.name)
    }
}

@c @implementation public func chorus_encoder_encode(_ encoder: OpaquePointer!, _ texts: UnsafePointer<UnsafePointer<CChar>?>!, _ n: Int,
                                                  _ out: UnsafeMutablePointer<Float>!, _ capacity: Int) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        let e: EncoderBox = try Handles.object(encoder, "encoder")
        let t = try Check.notNull(texts, "texts"), o = try Check.notNull(out, "out")
        let n = try Check.count(n, "n")
        guard n > 0 else { throw .invalidArgument("n is 0: nothing to encode") }
        let needed = try Check.product(n, e.encoder.dimension, "n * dim")
        guard Check.capacity(capacity) >= needed else { throw .bufferTooSmall("capacity \(capacity) < n * dim = \(needed)") }
        let strings = try Check.strings(t, n, "texts", maxBytes: Limits.maxTextBytes)
        let vectors = try e.encoder.encode(strings, threads: e.threads)
        o.update(from: vectors, count: needed)
    }
}
