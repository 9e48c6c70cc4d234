import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import ChorusCore

@Suite struct FileIOTests {
    func tempDir() -> String {
        var template = Array("/tmp/chorus-test-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
    }

    @Test func atomicWriteThenRead() throws {
        let dir = tempDir()
        let path = dir + "/file.bin"
        try FileIO.writeAtomically(path: path, bytes: [1, 2, 3])
        try FileIO.writeAtomically(path: path, bytes: [4, 5])  // replaces
        #expect(try FileIO.readAll(path: path) == [4, 5])
        unlink(path); rmdir(dir)
    }

    /// Only regular files are read or replaced: a FIFO would block the reader forever, /dev/zero
    /// would be read until memory ran out, and a save over a device node or FIFO would replace it.
    @Test func onlyRegularFilesAreReadOrReplaced() throws {
        let dir = tempDir()
        let fifo = dir + "/pipe"
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(throws: ChorusError.io("'\(fifo)' is not a regular file (a pipe, socket or device); only regular files are read")) {
            try FileIO.readAll(path: fifo)
        }
        #expect(throws: ChorusError.io("'/dev/zero' is not a regular file (a pipe, socket or device); only regular files are read")) {
            try FileIO.readAll(path: "/dev/zero")
        }
        #expect(throws: ChorusError.io("'\(fifo)' exists and is not a regular file (a device, pipe or socket); it is not replaced")) {
            try FileIO.writeAtomically(path: fifo, bytes: [1, 2])
        }
        var st = stat()
        #expect(stat(fifo, &st) == 0 && (st.st_mode & S_IFMT) == S_IFIFO, "the FIFO is still a FIFO")
        // No temporary file is left behind by the refused save.
        guard let d = opendir(dir) else { Issue.record("cannot list \(dir)"); return }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(d)
        #expect(names == ["pipe"])
        unlink(fifo); rmdir(dir)
    }

    @Test func errorsNameTheProblem() throws {
        let dir = tempDir()
        #expect(throws: ChorusError.io("'\(dir)' is a directory; give a file path")) { try FileIO.writeAtomically(path: dir, bytes: [1]) }
        #expect(throws: ChorusError.self) { try FileIO.writeAtomically(path: dir + "/missing/x.bin", bytes: [1]) }
        #expect(throws: ChorusError.io("'\(dir)' is a directory, not a file")) { try FileIO.readAll(path: dir) }
        do { _ = try FileIO.readAll(path: dir + "/nope"); Issue.record("expected an error") } catch {
            guard case .notFound = error else { Issue.record("expected notFound, got \(error)"); return }
        }
        rmdir(dir)
    }

    func entries(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(d)
        return names.sorted()
    }

    /// The pid of a process that has run and been reaped: no process has it now (until reused).
    func deadPid() -> pid_t {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { free(argv[0]) }
        #expect(posix_spawn(&pid, "/bin/true", nil, nil, argv, nil) == 0)
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        return pid
    }

    @Test func temporaryNamesAreRecognisedExactly() {
        #expect(FileIO.temporaryOwner("m.chorus.tmp-123-456", base: "m.chorus") == 123)
        #expect(FileIO.temporaryOwner("m.chorus.tmp-123-", base: "m.chorus") == nil)
        #expect(FileIO.temporaryOwner("m.chorus.tmp-123", base: "m.chorus") == nil)
        #expect(FileIO.temporaryOwner("m.chorus.tmp-12a-4", base: "m.chorus") == nil)
        #expect(FileIO.temporaryOwner("m.chorus.tmp-0-4", base: "m.chorus") == nil)
        #expect(FileIO.temporaryOwner("m.chorus.tmp-1-4.bak", base: "m.chorus") == nil)
        #expect(FileIO.temporaryOwner("x.m.chorus.tmp-1-4", base: "m.chorus") == nil)
        #expect(FileIO.temporaryOwner("m.chorus2.tmp-1-4", base: "m.chorus") == nil)
        #expect(FileIO.temporaryOwner("m.chorus.tmp-99999999999999999999-4", base: "m.chorus") == nil)
    }

    /// A save removes the temporary files of writers that died (a killed save), and only those: not
    /// a live process's (this one's, pid 1's), not names of another form or of another target.
    @Test(arguments: [true, false]) func aSaveRemovesTheTemporariesOfDeadWriters(anonymous: Bool) throws {
        let dir = tempDir()
        let path = dir + "/model.chorus"
        let dead = deadPid()
        let stale = ["model.chorus.tmp-\(dead)-1234", "model.chorus.tmp-\(dead)-99"]
        let kept = ["model.chorus.tmp-\(getpid())-77", "model.chorus.tmp-1-5", "model.chorus.tmp-\(dead)-12x",
                    "model.chorus.tmp-\(dead)", "other.chorus.tmp-\(dead)-1", "model.chorus.bak"]
        for name in stale + kept { try FileIO.writeAtomically(path: dir + "/" + name, bytes: [9, 9, 9]) }
        #expect(entries(dir) == (stale + kept).sorted())
        try FileIO.writeAtomically(path: path, bytes: [1, 2, 3], anonymousTemporary: anonymous)
        #expect(entries(dir) == (kept + ["model.chorus"]).sorted())
        #expect(try FileIO.readAll(path: path) == [1, 2, 3])
        for name in kept + ["model.chorus"] { unlink(dir + "/" + name) }
        rmdir(dir)
    }

    /// Both ways of writing (anonymous temporary file, named one) replace the target whole and
    /// leave nothing beside it.
    @Test(arguments: [true, false]) func bothTemporaryKindsLeaveOnlyTheTarget(anonymous: Bool) throws {
        let dir = tempDir()
        let path = dir + "/f.bin"
        let big = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try FileIO.writeAtomically(path: path, bytes: big, anonymousTemporary: anonymous)
        #expect(try FileIO.readAll(path: path) == big)
        try FileIO.writeAtomically(path: path, bytes: [7], anonymousTemporary: anonymous)
        #expect(try FileIO.readAll(path: path) == [7])
        #expect(entries(dir) == ["f.bin"])
        // A relative path's temporary files go to "." (no chdir here: tests run in parallel).
        #expect(FileIO.directoryOf("g.bin") == "." && FileIO.directoryOf("/g.bin") == "/")
        unlink(dir + "/f.bin"); rmdir(dir)
    }

    /// A refused save names the file and leaves no temporary file.
    @Test func aFailedSaveNamesItsFileAndLeavesNothing() throws {
        let dir = tempDir()
        // The target's name is taken by a directory: nothing is written, the error names it.
        #expect(mkdir(dir + "/m.chorus", 0o755) == 0)
        #expect(throws: ChorusError.io("'\(dir)/m.chorus' is a directory; give a file path")) {
            try FileIO.writeAtomically(path: dir + "/m.chorus", bytes: [1])
        }
        // The directory is missing: the error names the target and its directory.
        #expect(throws: ChorusError.io("the directory '\(dir)/none' of '\(dir)/none/m.chorus' does not exist")) {
            try FileIO.writeAtomically(path: dir + "/none/m.chorus", bytes: [1])
        }
        #expect(entries(dir) == ["m.chorus"])
        rmdir(dir + "/m.chorus"); rmdir(dir)
    }
}
