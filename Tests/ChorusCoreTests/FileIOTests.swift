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
}
