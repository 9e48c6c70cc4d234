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

    /// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the
    /// directory. A crash at any point leaves either the old file or the new one under `path`; on
    /// every failure the temporary file is removed.
    /// - Throws: `.io` when the directory is missing, `path` exists as anything but a regular file,
    ///   or the disk refuses.
    public static func writeAtomically(path: String, bytes: [UInt8]) throws(ChorusError) {
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
        let tmp = "\(path).tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max) & 0xffff_ffff)"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 { throw errnoError("cannot create '\(tmp)'", path: tmp) }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        var written = 0
        let writeError: ChorusError? = bytes.withUnsafeBytes { raw -> ChorusError? in
            while written < raw.count {
                let n = write(fd, raw.baseAddress! + written, raw.count - written)
                if n < 0 {
                    if errno == EINTR { continue }
                    return errnoError("cannot write '\(tmp)'", path: tmp)
                }
                written += n
            }
            return nil
        }
        if let e = writeError { close(fd); throw e }
        if fsync(fd) != 0 { let e = errnoError("cannot fsync '\(tmp)'", path: tmp); close(fd); throw e }
        if close(fd) != 0 { throw errnoError("cannot close '\(tmp)'", path: tmp) }
        if rename(tmp, path) != 0 { throw errnoError("cannot rename '\(tmp)' to '\(path)'", path: path) }
        ok = true
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
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
