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
