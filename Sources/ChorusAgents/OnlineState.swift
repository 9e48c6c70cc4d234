import ChorusCore
import Synchronization

/// What the engine learns between fits, beside the immutable published model: the home of live
/// feedback. The online-learning work puts here per-user fold-in vectors, per-item counts and the
/// coordinator's running statistics; today it holds only which model it applies to.
///
/// Synchronisation: its own lock, never held together with the engine's state lock, and held only
/// to read or apply a small update. Everything here is relative to one published model (fold-in
/// vectors live in that model's factor space), so publishing a new model starts a new generation
/// and drops what was learned against the old one (`rebase`); a reader that took its snapshot of
/// the old model ignores state whose generation is not its own.
public final class OnlineState: Sendable {
    private struct Storage {
        /// The publication this state belongs to (0: no model yet).
        var generation: UInt64 = 0
    }
    private let storage = Lock(Storage())

    init() {}

    /// The publication the state applies to.
    public var generation: UInt64 { storage.withLock { $0.generation } }

    /// Starts over for a newly published model.
    func rebase(to generation: UInt64) {
        storage.withLock { $0 = Storage(generation: generation) }
    }
}
