import CChorus
import ChorusCore

// Library-wide entry points: version, errors, struct sizes, logging.

/// "MAJOR.MINOR.PATCH", built from the header's macros: the top-level VERSION file is the one
/// version source, and the tests check chorus.h's macros against it.
nonisolated(unsafe) private let versionString: UnsafePointer<CChar> =
    UnsafePointer(strdupSwift("\(CHORUS_VERSION_MAJOR).\(CHORUS_VERSION_MINOR).\(CHORUS_VERSION_PATCH)"))

@c @implementation public func chorus_version() -> UnsafePointer<CChar>! {
    versionString
}

@c @implementation public func chorus_version_number() -> UInt32 {
    UInt32(CHORUS_VERSION_MAJOR * 10000 + CHORUS_VERSION_MINOR * 100 + CHORUS_VERSION_PATCH)
}

@c @implementation public func chorus_last_error() -> UnsafePointer<CChar>! {
    ErrorState.current
}

private let statusNames: [chorus_status: StaticString] = [
    0: "CHORUS_OK", -1: "CHORUS_ERR_INVALID_ARGUMENT", -2: "CHORUS_ERR_NOT_FOUND", -3: "CHORUS_ERR_BUFFER_TOO_SMALL",
    -4: "CHORUS_ERR_NOT_FITTED", -5: "CHORUS_ERR_IO", -6: "CHORUS_ERR_FORMAT", -7: "CHORUS_ERR_UNSUPPORTED_VERSION",
    -8: "CHORUS_ERR_CANCELLED", -9: "CHORUS_ERR_OUT_OF_MEMORY", -10: "CHORUS_ERR_INTERNAL",
]
private let unknownStatus: StaticString = "CHORUS_UNKNOWN_STATUS"

@c @implementation public func chorus_status_name(_ status: chorus_status) -> UnsafePointer<CChar>! {
    let s = statusNames[status] ?? unknownStatus
    return UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

@c @implementation public func chorus_struct_size(_ structName: UnsafePointer<CChar>!) -> Int {
    guard let structName else { return 0 }
    switch String(cString: structName) {
    case "chorus_engine_params": return MemoryLayout<chorus_engine_params>.size
    case "chorus_fit_params": return MemoryLayout<chorus_fit_params>.size
    case "chorus_recommend_params": return MemoryLayout<chorus_recommend_params>.size
    case "chorus_engine_stats": return MemoryLayout<chorus_engine_stats>.size
    case "chorus_encoder_params": return MemoryLayout<chorus_encoder_params>.size
    case "chorus_explanation": return MemoryLayout<chorus_explanation>.size
    case "chorus_feedback_params": return MemoryLayout<chorus_feedback_params>.size
    case "chorus_kg_train_params": return MemoryLayout<chorus_kg_train_params>.size
    case "chorus_kg_metrics": return MemoryLayout<chorus_kg_metrics>.size
    case "chorus_texts_params": return MemoryLayout<chorus_texts_params>.size
    case "chorus_learning_params": return MemoryLayout<chorus_learning_params>.size
    case "chorus_slate_row": return MemoryLayout<chorus_slate_row>.size
    case "chorus_merge_params": return MemoryLayout<chorus_merge_params>.size
    default: return 0
    }
}

@c @implementation public func chorus_set_log_callback(_ callback: chorus_log_fn!, _ userData: UnsafeMutableRawPointer!) -> chorus_status {
    abiCall(#function) { () throws(ChorusError) in
        guard let callback else { Log.setSink(nil); return }
        let box = SendableBox((callback, userData))
        Log.setSink { level, message in
            message.withCString { box.value.0(level.rawValue, $0, box.value.1) }
        }
    }
}
