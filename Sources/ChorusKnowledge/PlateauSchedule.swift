import ChorusCore

/// A learning-rate schedule driven by validation checks (PyTorch's `ReduceLROnPlateau`, counted in
/// checks): once `patience` checks in a row fail to beat the best MRR so far by `minDelta`, the
/// learning rate decays; after `decays` decays the next such plateau ends training. Validation then
/// chooses the epochs and when the step comes, instead of a budget fixed in advance.
public struct PlateauSchedule: Sendable, Equatable {
    public enum Decision: Sendable, Equatable {
        case `continue`
        /// Multiply the learning rate by the decay factor from the next epoch on.
        case decayLearningRate
        case finish
    }

    /// Checks without a gain of `minDelta` that make a plateau (>= 1).
    public let patience: Int
    /// The MRR gain over the best check so far that counts as progress (>= 0).
    public let minDelta: Double
    /// Learning-rate decays before a plateau ends training (>= 0).
    public let decays: Int

    public private(set) var best = -Double.infinity
    public private(set) var stale = 0
    public private(set) var decayed = 0

    public init(patience: Int, minDelta: Double, decays: Int) throws(ChorusError) {
        guard patience >= 1 else { throw .invalidArgument("plateau patience must be at least 1 check, got \(patience)") }
        guard minDelta >= 0, minDelta.isFinite else { throw .invalidArgument("plateau delta must be a finite number >= 0, got \(minDelta)") }
        guard decays >= 0 else { throw .invalidArgument("plateau decays must be >= 0, got \(decays)") }
        self.patience = patience; self.minDelta = minDelta; self.decays = decays
    }

    /// Takes one check's validation MRR and says what training does next. A NaN check counts as no gain.
    public mutating func observe(mrr: Double) -> Decision {
        if mrr >= best + minDelta {   // false for NaN
            best = mrr; stale = 0
            return .continue
        }
        stale += 1
        guard stale >= patience else { return .continue }
        stale = 0
        guard decayed < decays else { return .finish }
        decayed += 1
        return .decayLearningRate
    }
}
