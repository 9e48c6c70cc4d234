#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Testing
import ChorusCore
@testable import ChorusEval

/// A fresh temporary directory, removed (with its files) when the value is released.
final class TempDir {
    let path: String
    init() {
        var template = Array("/tmp/chorus-eval-test-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = String(cString: p!)
    }
    func write(_ name: String, _ bytes: [UInt8]) throws {
        let full = path + "/" + name
        let dir = String(full[..<full.lastIndex(of: "/")!])
        if !FileIO.exists(dir) { mkdir(dir, 0o755) }
        try FileIO.writeAtomically(path: full, bytes: bytes)
    }
    func write(_ name: String, _ text: String) throws { try write(name, Array(text.utf8)) }
    deinit {
        // Fixture trees are at most two levels deep.
        func removeTree(_ p: String) {
            if let d = opendir(p) {
                while let e = readdir(d) {
                    let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                    if name == "." || name == ".." { continue }
                    let child = p + "/" + name
                    if unlink(child) != 0 { removeTree(child) }
                }
                closedir(d)
            }
            rmdir(p)
        }
        removeTree(path)
    }
}

@Suite struct MovieLensTests {
    // ml-latest-small layout with CRLF, a quoted title with commas, a doubled quote, UTF-8
    // accents and a movie without genres.
    let ratingsCRLF = "userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,3,4.5,964981247\r\n2,29,0.5,1000\r\n"
    let moviesCRLF = """
        movieId,title,genres\r
        1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\r
        3,"American President, The (1995)",Comedy|Drama|Romance\r
        29,"City of Lost Children, The (Cité des enfants perdus, La) (1995)",Adventure|Drama\r
        7789,"11'09""01 - September 11 (2002)",Drama\r
        8,Unknown Thing (2001),(no genres listed)\r

        """

    @Test func latestSmallCRLF() throws {
        let dir = TempDir()
        try dir.write("ratings.csv", ratingsCRLF)
        try dir.write("movies.csv", moviesCRLF)
        let data = try MovieLens.load(dir.path)
        #expect(data.format == .latestSmall)
        #expect(data.interactions == [
            Interaction(user: 1, item: 1, weight: 4, timestamp: 964_982_703),
            Interaction(user: 1, item: 3, weight: 4.5, timestamp: 964_981_247),
            Interaction(user: 2, item: 29, weight: 0.5, timestamp: 1000),
        ])
        #expect(data.movies.count == 5)
        #expect(data.movies[1] == Movie(title: "Toy Story (1995)", genres: ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]))
        #expect(data.movies[3]?.title == "American President, The (1995)")
        #expect(data.movies[29]?.title == "City of Lost Children, The (Cité des enfants perdus, La) (1995)")
        #expect(data.movies[29]?.genres == ["Adventure", "Drama"])
        #expect(data.movies[7789]?.title == "11'09\"01 - September 11 (2002)")
        #expect(data.movies[8]?.genres == [])
        #expect(data.userCount == 2)
    }

    @Test func latestSmallLFWithoutFinalNewline() throws {
        let dir = TempDir()
        try dir.write("ratings.csv", "userId,movieId,rating,timestamp\n5,10,3,20\n6,10,2.5,21")
        try dir.write("movies.csv", "movieId,title,genres\n10,\"Comma, A (1999)\",Drama")
        let data = try MovieLens.load(dir.path)
        #expect(data.interactions.map(\.user) == [5, 6])
        #expect(data.interactions.map(\.weight) == [3, 2.5])
        #expect(data.movies[10] == Movie(title: "Comma, A (1999)", genres: ["Drama"]))
    }

    @Test func ml100kLatin1() throws {
        let dir = TempDir()
        try dir.write("u.data", "196\t242\t3\t881250949\n186\t302\t3\t891717742\n")
        try dir.write("u.genre", "unknown|0\nAction|1\nComedy|2\n\n")
        // "Misérables, Les (1995)" with é as the single latin-1 byte 0xE9 (invalid as UTF-8).
        var item = Array("242|Mis".utf8) + [0xE9] + Array("rables, Les (1995)|01-Jan-1995||http://x|0|1|1\n".utf8)
        item += Array("302|L.A. Confidential (1997)|01-Jan-1997||http://y|0|0|0\n".utf8)
        try dir.write("u.item", item)
        let data = try MovieLens.load(dir.path)
        #expect(data.format == .ml100k)
        #expect(data.interactions == [
            Interaction(user: 196, item: 242, weight: 3, timestamp: 881_250_949),
            Interaction(user: 186, item: 302, weight: 3, timestamp: 891_717_742),
        ])
        #expect(data.movies[242] == Movie(title: "Misérables, Les (1995)", genres: ["Action", "Comedy"]))
        #expect(data.movies[302]?.genres == [])
    }

    @Test func ml100kWithoutGenreFileUsesTheStandardNineteen() throws {
        let flags = [String](repeating: "0", count: 18).joined(separator: "|")
        let items = try MovieLens.parseUItem(Array("1|Toy Story (1995)|01-Jan-1995||u|1|\(flags)\r\n".utf8))
        #expect(items[1] == Movie(title: "Toy Story (1995)", genres: ["unknown"]))
    }

    @Test func parentDirectoryAndPreference() throws {
        let root = TempDir()
        try root.write("ml-latest-small/ratings.csv", ratingsCRLF)
        try root.write("ml-latest-small/movies.csv", moviesCRLF)
        try root.write("ml-100k/u.data", "1\t2\t3\t4\n")
        try root.write("ml-100k/u.item", "2|T (1990)|||u|" + [String](repeating: "0", count: 19).joined(separator: "|") + "\n")
        #expect(try MovieLens.locate(root.path).format == .latestSmall)
        #expect(try MovieLens.locate(root.path).directory == root.path + "/ml-latest-small")
        let d = try MovieLens.load(root.path, preferred: .ml100k)
        #expect(d.format == .ml100k)
        #expect(d.name == "ml-100k")
        #expect(d.interactions == [Interaction(user: 1, item: 2, weight: 3, timestamp: 4)])
        // A dataset directory of the other layout is an argument error, not a silent switch.
        #expect(throws: ChorusError.self) { try MovieLens.locate(root.path + "/ml-100k", preferred: .latestSmall) }
    }

    @Test func missingDatasetIsNotFound() throws {
        let dir = TempDir()
        #expect(throws: ChorusError.self) { try MovieLens.load(dir.path) }
        do { _ = try MovieLens.load(dir.path + "/nope"); Issue.record("expected an error") } catch {
            guard case .notFound = error else { Issue.record("expected .notFound, got \(error)"); return }
        }
        // ratings.csv without movies.csv: .notFound naming the missing file.
        try dir.write("ratings.csv", "userId,movieId,rating,timestamp\n")
        do { _ = try MovieLens.load(dir.path); Issue.record("expected an error") } catch {
            guard case .notFound(let m) = error else { Issue.record("expected .notFound, got \(error)"); return }
            #expect(m.contains("movies.csv"))
        }
    }

    /// The error for `bytes` parsed as ratings.csv, which must be `.format` mentioning `fragment`.
    func expectFormatError(_ text: String, _ fragment: String, parse: ([UInt8]) throws(ChorusError) -> Void) {
        do {
            try parse(Array(text.utf8))
            Issue.record("expected a format error containing '\(fragment)'")
        } catch {
            guard case .format(let m) = error else { Issue.record("expected .format, got \(error)"); return }
            #expect(m.contains(fragment), "message: \(m)")
        }
    }

    @Test func malformedLinesNameFileAndLine() {
        let ratings: ([UInt8]) throws(ChorusError) -> Void = { (b) throws(ChorusError) in _ = try MovieLens.parseRatingsCSV(b, path: "r.csv") }
        let movies: ([UInt8]) throws(ChorusError) -> Void = { (b) throws(ChorusError) in _ = try MovieLens.parseMoviesCSV(b, path: "m.csv") }
        let udata: ([UInt8]) throws(ChorusError) -> Void = { (b) throws(ChorusError) in _ = try MovieLens.parseUData(b, path: "u.data") }
        expectFormatError("userId,movieId,rating,timestamp\r\n1,2,3,4\r\n1,2,x,4\r\n", "r.csv:3: rating 'x'", parse: ratings)
        expectFormatError("userId,movieId,rating,timestamp\n1,2,3\n", "r.csv:2: expected 4 fields", parse: ratings)
        expectFormatError("userId,movieId,rating,timestamp\n1,2,0,5\n", "r.csv:2: rating 0.0 must be > 0", parse: ratings)
        expectFormatError("user,movie,rating,time\n", "r.csv:1: expected the header", parse: ratings)
        expectFormatError("", "r.csv:1: the file is empty", parse: ratings)
        expectFormatError("movieId,title,genres\n1,A, B (1990),Drama\n", "m.csv:2: expected 3 fields", parse: movies)
        expectFormatError("movieId,title,genres\n1,\"A (1990),Drama\n", "m.csv:2: unterminated", parse: movies)
        expectFormatError("movieId,title,genres\n1,\"A\" (1990),Drama\n", "m.csv:2: unexpected text after a closing quote", parse: movies)
        expectFormatError("movieId,title,genres\n1,A,Drama\n1,B,Drama\n", "m.csv:3: movieId 1 appears a second time", parse: movies)
        expectFormatError("1\t2\t3\t4\n\n1\t2\t3\n", "u.data:3: expected 4 fields", parse: udata)
        expectFormatError("1\t2\t3\tnow\n", "u.data:1: timestamp 'now'", parse: udata)
    }

    @Test func quotedFieldWithLineBreakKeepsLineNumbers() throws {
        // The record starting on line 2 spans two lines; the bad record after it is on line 4.
        let text = "movieId,title,genres\n1,\"Two\nLines\",Drama\n2,x\n"
        do {
            _ = try MovieLens.parseMoviesCSV(Array(text.utf8), path: "m.csv")
            Issue.record("expected an error")
        } catch {
            #expect(error == .format("m.csv:4: expected 3 fields (movieId,title,genres), found 2; quote titles that contain commas"))
        }
        let ok = try MovieLens.parseMoviesCSV(Array("movieId,title,genres\n1,\"Two\nLines\",Drama\n".utf8))
        #expect(ok[1]?.title == "Two\nLines")
    }
}

@Suite struct DemoCatalogueTests {
    /// examples/data/demo, found from this file's path (Tests/ChorusEvalTests/ -> repository root).
    static var demoDirectory: String {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/") + "/examples/data/demo"
    }

    @Test func shippedDemoCatalogueLoads() throws {
        let data = try MovieLens.load(Self.demoDirectory)
        #expect(data.format == .latestSmall)
        #expect(data.name == "demo")
        #expect(data.movies.count == 300)
        #expect(data.userCount == 200)
        #expect(data.interactions.count == 10_999)
        // Every rated movie has a catalogue entry with a title.
        #expect(data.interactions.allSatisfy { data.movies[$0.item] != nil })
        #expect(data.movies[50]?.title == "Usual Suspects, The (1995)")
    }
}
