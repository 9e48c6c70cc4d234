#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// File access without Foundation: whole-file reads and crash-safe atomic writes.
public enum FileIO {
    /// Reads a whole regular file. Anything else (a directory, a pipe, a device such as /dev/zero)
    /// is refused before a byte is read, without blocking, and so is a file larger than this
    /// machine's memory; at most the size `fstat` reported is read.
    /// - Throws: `.notFound` for a missing path, `.io` for what is not a readable regular file,
    ///   `.outOfMemory` for a file larger than the machine's memory.
    public static func readAll(path: String) throws(ChorusError) -> [UInt8] {
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw errnoError("cannot open '\(path)'", path: path) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw errnoError("cannot stat '\(path)'", path: path) }
        let kind = st.st_mode & S_IFMT
        if kind == S_IFDIR { throw .io("'\(path)' is a directory, not a file") }
        guard kind == S_IFREG else { throw .io("'\(path)' is not a regular file (a pipe, socket or device); only regular files are read") }
        let size = Int(st.st_size)
        let memory = Int(sysconf(Int32(_SC_PHYS_PAGES))).multipliedReportingOverflow(by: Int(sysconf(Int32(_SC_PAGESIZE))))
        guard size >= 0, memory.overflow || memory.partialValue <= 0 || size <= memory.partialValue else {
            throw .outOfMemory("'\(path)' holds \(size) bytes, more than this machine's memory")
        }
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw errnoError("cannot read '\(path)'", path: path)
            }
            if n == 0 { throw .io("'\(path)' shrank while it was read (\(done) of \(size) bytes)") }
            done += n
        }
        return out
    }

    /// Creates `path` as a directory if it does not exist yet (its parent must exist).
    /// - Throws: `.io` when it cannot be created or exists as something else.
    public static func makeDirectory(_ path: String) throws(ChorusError) {
        var st = stat()
        if stat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFDIR else { throw .io("'\(path)' exists and is not a directory") }
            return
        }
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { throw errnoError("cannot create directory '\(path)'", path: path) }
    }

    /// Writes `bytes` to `path` atomically: the bytes go to a temporary file in the same directory,
    /// which is fsynced and renamed over `path`, then the directory is fsynced. A crash at any point
    /// leaves either the old file or the new one under `path`, never a mix.
    ///
    /// Temporary files, and what a killed writer leaves behind:
    /// - Where the file system supports it (ext4, xfs, btrfs, tmpfs), the temporary file is
    ///   anonymous (`O_TMPFILE`): it has no name while it is written, so a process killed then
    ///   leaves nothing behind (the kernel frees the inode). Once written and fsynced it is linked
    ///   as `<path>.tmp-<pid>-<random>` (`linkat` through `/proc/self/fd`) and renamed over `path`.
    /// - Elsewhere (or without `/proc`) the temporary file is created under that name from the
    ///   start.
    /// - So a writer killed (`kill -9`, power loss) while its temporary file has a name leaves
    ///   `<path>.tmp-<pid>-<random>` behind. Every save of `path` first removes those whose `<pid>`
    ///   is not a live process on this machine (`kill(pid, 0)` fails with `ESRCH`): they belong to
    ///   writers that died. Temporary files of a live process (this one's other threads included)
    ///   are left alone; a reused pid only delays the cleanup to a later save. Only names of exactly
    ///   that form, beside `path`, are touched. (On a directory shared between machines a pid may
    ///   be another machine's: the worst case is that writer's save failing at its rename, with an
    ///   error, never a damaged file.)
    /// - On every failure of this call its own temporary file is removed, and the error names the
    ///   file and the step that failed.
    /// - Throws: `.io` when the directory is missing, `path` exists as anything but a regular file,
    ///   or the disk refuses.
    public static func writeAtomically(path: String, bytes: [UInt8]) throws(ChorusError) {
        try writeAtomically(path: path, bytes: bytes, anonymousTemporary: true)
    }

    /// `anonymousTemporary: false` skips `O_TMPFILE` (the tests' way to exercise the named path).
    static func writeAtomically(path: String, bytes: [UInt8], anonymousTemporary: Bool) throws(ChorusError) {
        if path.isEmpty { throw .invalidArgument("the path is empty") }
        var st = stat()
        if stat(path, &st) == 0 {
            // Replacing a device node or a FIFO with a regular file would break whatever used it.
            if (st.st_mode & S_IFMT) == S_IFDIR { throw .io("'\(path)' is a directory; give a file path") }
            guard (st.st_mode & S_IFMT) == S_IFREG else {
                throw .io("'\(path)' exists and is not a regular file (a device, pipe or socket); it is not replaced")
            }
        }
        let dir = directoryOf(path)
        if stat(dir, &st) != 0 || (st.st_mode & S_IFMT) != S_IFDIR {
            throw .io("the directory '\(dir)' of '\(path)' does not exist")
        }
        removeStaleTemporaries(of: path)
        let tmp = "\(path)\(temporaryMarker)\(getpid())-\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff)"

        // The bytes into an anonymous file when the file system has them, else into `tmp`.
        var named = false
        var fd: Int32 = -1
        if anonymousTemporary {
            #if canImport(Glibc)
            fd = open(dir, __O_TMPFILE | O_WRONLY | O_CLOEXEC, 0o644)
            #else
            fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0o644)
            #endif
            // EOPNOTSUPP / EISDIR / EINVAL: not supported here; fall back to a named file.
        }
        if fd < 0 {
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd < 0 { throw errnoError("cannot create the temporary file '\(tmp)' for '\(path)'", path: tmp) }
            named = true
        }
        var renamed = false
        defer {
            if !renamed && named { unlink(tmp) }
        }
        let target = named ? "the temporary file '\(tmp)'" : "the temporary file (anonymous) for '\(path)'"
        var written = 0
        let writeError: ChorusError? = bytes.withUnsafeBytes { raw -> ChorusError? in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errnoError("cannot write \(target)", path: tmp)
                }
                written += n
            }
            return nil
        }
        if let e = writeError { close(fd); throw e }
        if fsync(fd) != 0 { let e = errnoError("cannot fsync \(target)", path: tmp); close(fd); throw e }
        if !named {
            // Give the anonymous file its temporary name (rename cannot take a descriptor).
            if linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) != 0 {
                let code = errno
                let e = errnoError("cannot link the temporary file for '\(path)' as '\(tmp)'", path: tmp)
                close(fd)
                if code == ENOENT || code == EPERM || code == EXDEV {
                    // No /proc (or it is not allowed): write the bytes again through a named file.
                    try writeAtomically(path: path, bytes: bytes, anonymousTemporary: false)
                    return
                }
                throw e
            }
            named = true
        }
        if close(fd) != 0 { throw errnoError("cannot close the temporary file '\(tmp)'", path: tmp) }
        if rename(tmp, path) != 0 { throw errnoError("cannot rename '\(tmp)' to '\(path)'", path: path) }
        renamed = true
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// What follows a target's name in its temporary files' names: `<path>.tmp-<pid>-<random>`.
    static let temporaryMarker = ".tmp-"

    /// The pid in `name` when it is a temporary file of `base` (`<base>.tmp-<pid>-<digits>`), else nil.
    static func temporaryOwner(_ name: String, base: String) -> pid_t? {
        let prefix = base + temporaryMarker
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.utf8.dropFirst(prefix.utf8.count)
        guard let dash = rest.firstIndex(of: UInt8(ascii: "-")) else { return nil }
        let pidPart = rest[..<dash], randomPart = rest[rest.index(after: dash)...]
        func allDigits(_ s: Substring.UTF8View) -> Bool {
            !s.isEmpty && s.count <= 20 && s.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
        guard allDigits(pidPart), allDigits(randomPart), let pid = Int32(String(Substring(pidPart))), pid > 0 else {
            return nil
        }
        return pid
    }

    /// Removes the temporary files beside `path` left by writers that no longer run (see
    /// `writeAtomically`). Best effort: what cannot be listed or removed stays. Returns how many
    /// were removed.
    @discardableResult
    static func removeStaleTemporaries(of path: String) -> Int {
        let dir = directoryOf(path)
        let base = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        guard let d = opendir(dir) else { return 0 }
        var stale: [String] = []
        let me = getpid()
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard let pid = temporaryOwner(name, base: base), pid != me else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { stale.append(name) }
        }
        closedir(d)
        var removed = 0
        for name in stale where unlink(dir == "/" ? "/" + name : dir + "/" + name) == 0 { removed += 1 }
        return removed
    }

    /// True when `path` names an existing regular file or directory.
    public static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = String(path[..<slash])
        return dir.isEmpty ? "/" : dir
    }

    static func errnoError(_ what: String, path: String) -> ChorusError {
        let code = errno
        let reason = String(cString: strerror(code))
        if code == ENOENT { return .notFound("\(what): \(reason)") }
        if code == ENOMEM { return .outOfMemory("\(what): \(reason)") }
        return .io("\(what): \(reason)")
    }
}
