import Synchronization

/// The library never prints: log lines go to a host-installed sink (the C ABI's log callback).
public enum Log {
    public enum Level: Int32, Sendable { case debug = 0, info = 1, warning = 2 }
    public typealias Sink = @Sendable (Level, String) -> Void

    private static let sink = Lock<Sink?>(nil)

    public static func setSink(_ s: Sink?) { sink.withLock { $0 = s } }

    public static func emit(_ level: Level, _ message: @autoclosure () -> String) {
        guard let s = sink.withLock({ $0 }) else { return }
        s(level, message())
    }
}

/// Elapsed wall time from the monotonic clock: the log lines that say where a long call's time
/// went (the fit's stages), the CLI's and benchmarks' timings.
public struct Stopwatch: Sendable {
    private let start = ContinuousClock.now
    public init() {}
    /// Seconds since the stopwatch was created.
    public var seconds: Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
    /// Whole milliseconds since the stopwatch was created.
    public var milliseconds: Int64 {
        let d = (ContinuousClock.now - start).components
        return d.seconds * 1000 + d.attoseconds / 1_000_000_000_000_000
    }
}
