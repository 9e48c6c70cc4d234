import Glibc

/// Scratch files for the entry points that take a path: one per name and process, in /dev/shm
/// when it exists (no disk I/O per execution), removed at exit.
enum Scratch {
    nonisolated(unsafe) private static var made: [String] = []

    static let directory: String = {
        var st = stat()
        if stat("/dev/shm", &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, access("/dev/shm", W_OK) == 0 { return "/dev/shm" }
        return "/tmp"
    }()

    static func path(_ name: String) -> String {
        let p = "\(directory)/chorus-fuzz-\(getpid())-\(name)"
        if !made.contains(p) {
            if made.isEmpty { atexit { Scratch.removeAll() } }
            made.append(p)
        }
        return p
    }

    /// Writes `bytes` to the scratch file `name` (replacing it) and returns its path.
    @discardableResult
    static func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = path(name)
        let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot create the scratch file \(p)")
        var done = 0
        bytes.withUnsafeBytes { b in
            while done < b.count {
                let n = Glibc.write(fd, b.baseAddress! + done, b.count - done)
                precondition(n > 0, "cannot write the scratch file \(p)")
                done += n
            }
        }
        close(fd)
        return p
    }

    static func removeAll() {
        for p in made { unlink(p); unlink(p + ".tmp") }
    }
}
