import CChorus
import ChorusAgents
import ChorusCore

// The public structs of chorus.h start with `uint32_t struct_size` and only grow at the end, so a
// caller built against an older header passes a smaller struct (libgit2's versioned options). The
// library never touches a byte past the caller's struct_size:
// - an input struct is read as the caller's first struct_size bytes over the defaults its `_init`
//   writes, so the fields an older header lacks take their defaults;
// - an output struct is filled as a whole local value, and only its first struct_size bytes are
//   copied back.

/// A public struct of chorus.h that begins with `uint32_t struct_size` and only grows at the end.
protocol SizedStruct {
    /// Its C name, for messages.
    static var cName: String { get }
    /// The value its `_init` writes (struct_size = the current size).
    static var defaults: Self { get }
    /// The smallest struct_size accepted (include/chorus.h, "Conventions"): for an input struct,
    /// struct_size and the field after it; for an output struct, its first published layout.
    static var minimumSize: Int { get }
    /// Its size in the first header that published it (0.1.0). The exported one-argument `_init`
    /// writes exactly this many bytes, forever: a binary built against that header calls it with a
    /// struct of that size. When a struct grows this becomes the offset of its first new field, and
    /// the header maps `<name>_init(p)` to `<name>_init_sized(p, sizeof(<name>))` (see
    /// chorus_explanation).
    static var firstLayoutSize: Int { get }
}

extension SizedStruct {
    static var currentSize: Int { MemoryLayout<Self>.size }

    /// The caller's struct_size, checked against minimumSize ... currentSize. Reads the 4 bytes of
    /// struct_size only: a struct from an older header may be shorter than `Self`.
    static func size(of p: UnsafeRawPointer) throws(ChorusError) -> Int {
        try checked(Int(p.load(as: UInt32.self)))
    }

    static func checked(_ size: Int) throws(ChorusError) -> Int {
        guard size >= minimumSize, size <= currentSize else {
            throw .invalidArgument("\(cName).struct_size is \(size); this library accepts \(minimumSize)...\(currentSize) "
                + "(sizeof(\(cName)) in this chorus.h or an older one): set it with the struct's _init function")
        }
        // Every size a header ever published (a sizeof, or a field's end before a pointer) is a
        // multiple of the struct's alignment; any other size would end inside an 8-byte field and
        // copy half a pointer (the api fuzz harness found a progress callback called at 0xaa90).
        guard size % MemoryLayout<Self>.alignment == 0 else {
            throw .invalidArgument("\(cName).struct_size is \(size), not a multiple of \(MemoryLayout<Self>.alignment) "
                + "(no chorus.h ever had that size): set it with the struct's _init function")
        }
        return size
    }

    /// An input struct: the caller's first struct_size bytes over `defaults`; NULL = `defaults`.
    static func read(_ p: UnsafePointer<Self>?) throws(ChorusError) -> Self {
        var value = defaults
        guard let p else { return value }
        let n = try size(of: p)
        withUnsafeMutableBytes(of: &value) { $0.baseAddress!.copyMemory(from: p, byteCount: n) }
        return value
    }

    /// Copies the first `size` bytes of `value` to `p` (an output struct, or an `_init`), with
    /// struct_size set to `size`.
    static func write(_ value: Self, to p: UnsafeMutablePointer<Self>, size: Int) {
        var value = value
        withUnsafeMutableBytes(of: &value) { raw in
            raw.storeBytes(of: UInt32(size), toByteOffset: 0, as: UInt32.self)
            UnsafeMutableRawPointer(p).copyMemory(from: raw.baseAddress!, byteCount: size)
        }
    }

    /// An output struct: the caller's pointer (required) and its checked struct_size.
    static func output(_ p: UnsafeMutablePointer<Self>?, _ name: String) throws(ChorusError) -> (pointer: UnsafeMutablePointer<Self>, size: Int) {
        let p = try Check.notNull(p, name)
        return (p, try size(of: p))
    }

    /// An `_init`: `defaults`, cut to `size` bytes (the one-argument `_init`: the first published
    /// layout; `<name>_init_sized`: the caller's sizeof, checked).
    static func initialise(_ p: UnsafeMutablePointer<Self>?, _ name: String, size: Int? = nil) throws(ChorusError) {
        let p = try Check.notNull(p, name)
        var n = firstLayoutSize
        if let size { n = try checked(size) }
        write(defaults, to: p, size: n)
    }

    /// Whether a struct of `size` bytes holds the field `key` whole.
    static func has<Field>(_ key: KeyPath<Self, Field>, size: Int) -> Bool {
        MemoryLayout<Self>.offset(of: key)! + MemoryLayout<Field>.size <= size
    }
}

/// The smallest input struct: struct_size and the 4-byte field after it (every input struct has one).
private let inputMinimumSize = 8

extension chorus_engine_params: SizedStruct {
    static let cName = "chorus_engine_params"
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        p.popularity_half_life_seconds = EngineConfig().popularityHalfLifeSeconds
        p.encoder_path = nil
        return p
    }
    static var minimumSize: Int { inputMinimumSize }
    static var firstLayoutSize: Int { currentSize }  // not grown since 0.1.0
}

extension chorus_fit_params: SizedStruct {
    static let cName = "chorus_fit_params"
    static var defaults: Self {
        let d = FitParameters()
        var p = Self()
        p.struct_size = UInt32(currentSize)
        p.factors = UInt32(d.factors)
        p.regularization = d.regularization
        p.alpha = d.alpha
        p.iterations = UInt32(d.iterations)
        p.threads = 0
        p.seed = d.seed
        p.validation_fraction = d.validationFraction
        p.agents = nil
        p.bpr_epochs = UInt32(d.bprEpochs)
        return p
    }
    static var minimumSize: Int { inputMinimumSize }
    /// Grown in 0.3.0 (agents, bpr_epochs): the 0.1.0/0.2.0 layout ends at `agents`.
    static var firstLayoutSize: Int { MemoryLayout<Self>.offset(of: \.agents)! }
}

extension chorus_recommend_params: SizedStruct {
    static let cName = "chorus_recommend_params"
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        return p
    }
    static var minimumSize: Int { inputMinimumSize }
    /// Grown in 0.3.0 (request_ids): the 0.1.0 layout ends at `request_ids`.
    static var firstLayoutSize: Int { MemoryLayout<Self>.offset(of: \.request_ids)! }
}

extension chorus_encoder_params: SizedStruct {
    static let cName = "chorus_encoder_params"
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        return p
    }
    static var minimumSize: Int { inputMinimumSize }
    static var firstLayoutSize: Int { currentSize }  // not grown since 0.1.0
}

extension chorus_kg_train_params: SizedStruct {
    static let cName = "chorus_kg_train_params"
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        return p
    }
    static var minimumSize: Int { inputMinimumSize }
    static var firstLayoutSize: Int { currentSize }  // not grown since 0.1.0
}

extension chorus_texts_params: SizedStruct {
    static let cName = "chorus_texts_params"
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        return p
    }
    static var minimumSize: Int { inputMinimumSize }
    static var firstLayoutSize: Int { currentSize }  // new in 0.3.0
}

extension chorus_engine_stats: SizedStruct {
    static let cName = "chorus_engine_stats"
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        return p
    }
    static var minimumSize: Int { firstLayoutSize }
    static var firstLayoutSize: Int { currentSize }  // not grown since 0.1.0
}

extension chorus_kg_metrics: SizedStruct {
    static let cName = "chorus_kg_metrics"
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        return p
    }
    static var minimumSize: Int { firstLayoutSize }
    static var firstLayoutSize: Int { currentSize }  // not grown since 0.1.0
}

extension chorus_explanation: SizedStruct {
    static let cName = "chorus_explanation"
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        p.because_item = -1
        return p
    }
    static var minimumSize: Int { firstLayoutSize }
    /// The 0.1.0 layout ends before `sentence` (grown since: sentence, sentence_length, agent_count,
    /// agent_names).
    static var firstLayoutSize: Int { MemoryLayout<Self>.offset(of: \Self.sentence)! }
}

extension chorus_feedback_params: SizedStruct {
    static let cName = "chorus_feedback_params"
    static var defaults: Self {
        let d = FeedbackRewards()
        var p = Self()
        p.struct_size = UInt32(currentSize)
        p.impression = d.impression; p.click = d.click; p.add_to_cart = d.addToCart; p.purchase = d.purchase
        p.rating = d.rating; p.skip = d.skip; p.dismiss = d.dismiss
        return p
    }
    static var minimumSize: Int { inputMinimumSize }
    static var firstLayoutSize: Int { currentSize }  // not grown since it was added; its _init is a macro over _init_sized from the start
}

extension chorus_learning_params: SizedStruct {
    static let cName = "chorus_learning_params"
    static var defaults: Self {
        var p = Self()
        p.struct_size = UInt32(currentSize)
        p.mode = LearningOptions.Mode.off.rawValue
        p.seed = LearningOptions().seed
        return p
    }
    static var minimumSize: Int { inputMinimumSize }
    // New in 0.3.0 and grown (privacy) before 0.3.0 shipped; its _init is a macro over _init_sized
    // from the start, and the function of that name writes the layout before the privacy fields.
    static var firstLayoutSize: Int { MemoryLayout<Self>.offset(of: \.noise_multiplier)! }
}

extension chorus_merge_params: SizedStruct {
    static let cName = "chorus_merge_params"
    static var defaults: Self {
        let d = MergeParameters()
        var p = Self()
        p.struct_size = UInt32(currentSize)
        p.delta = d.delta
        p.seed = d.seed
        return p
    }
    static var minimumSize: Int { inputMinimumSize }
    static var firstLayoutSize: Int { currentSize }  // new in 0.3.0; its _init is a macro over _init_sized from the start
}
