import ChorusCore
import ChorusEval

/// Prints a fit's progress callback as one line per stage, appending the overall percentage as it
/// passes each tenth and ending the line with the stage's wall time:
///
///       validation  23% 30% 40%  (1.92 s)
///       blend       45%  (0.31 s)
///       training    75% 80% 90% 100%  (2.41 s)
///
/// Works the same on a terminal and in a log file (no carriage returns). The engine calls back on
/// the fitting thread, one call at a time. `toStderr`: on stderr (the replay's progress), so that
/// stdout keeps only the report.
final class FitProgress {
    private var stage: String?
    private var stageClock = Stopwatch()
    private var lastShown = -1
    private let indent: String
    private let toStderr: Bool

    init(indent: String = "  ", toStderr: Bool = false) { self.indent = indent; self.toStderr = toStderr }

    /// The callback to hand to `Engine.fit`; never cancels.
    var callback: (String, Double) -> Bool {
        { [self] name, fraction in
            self.report(name, fraction)
            return false
        }
    }

    func report(_ name: String, _ fraction: Double) {
        if name == "start" { return }
        if name != stage {
            finish()
            if name == "done" { return }
            stage = name
            stageClock = Stopwatch()
            lastShown = -1
            Console.put(indent + TextFormat.pad(name, 11), toStderr: toStderr)
        }
        let percent = max(0, min(100, Int((fraction * 100).rounded(.down))))
        if lastShown < 0 || percent / 10 > lastShown / 10 {
            Console.put(" \(percent)%", toStderr: toStderr)
            lastShown = percent
        }
    }

    /// Ends the current stage's line (also called when the fit ends or fails).
    func finish() {
        guard stage != nil else { return }
        Console.put("  (\(TextFormat.seconds(stageClock.seconds)))\n", toStderr: toStderr)
        stage = nil
    }
}
