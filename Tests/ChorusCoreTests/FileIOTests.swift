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
