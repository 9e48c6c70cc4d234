import ChorusCore

/// One movie of a MovieLens catalogue.
public struct Movie: Sendable, Equatable {
    public var title: String
    public var genres: [String]
    public init(title: String, genres: [String]) { self.title = title; self.genres = genres }
}

/// The two MovieLens file layouts the loaders read.
public enum MovieLensFormat: String, Sendable, CaseIterable {
    /// `ratings.csv` (`userId,movieId,rating,timestamp`) and `movies.csv` (`movieId,title,genres`):
    /// UTF-8, one header row, CRLF or LF, RFC 4180 quoting. The layout of ml-latest-small, ml-25m
    /// and the project's own demo catalogue (`examples/data/demo`).
    case latestSmall = "ml-latest-small"
    /// `u.data` (tab-separated `user item rating timestamp`), `u.item` (latin-1, `|`-separated,
    /// 24 fields), `u.genre` (`name|index`): the 1998 ml-100k release.
    case ml100k = "ml-100k"

    /// The file whose presence identifies the layout.
    public var ratingsFile: String { self == .latestSmall ? "ratings.csv" : "u.data" }
    public var moviesFile: String { self == .latestSmall ? "movies.csv" : "u.item" }
}

/// A loaded MovieLens dataset: every rating as an `Interaction` (weight = rating, in file order)
/// and the movie catalogue.
public struct MovieLensData: Sendable {
    public var format: MovieLensFormat
    /// The directory the files were read from.
    public var directory: String
    public var interactions: [Interaction]
    public var movies: [Int64: Movie]

    /// A short name: the directory's last path component (`ml-latest-small`, `demo`, ...).
    public var name: String {
        let trimmed = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        if let slash = trimmed.lastIndex(of: "/") { return String(trimmed[trimmed.index(after: slash)...]) }
        return trimmed
    }

    public var userCount: Int { Set(interactions.map(\.user)).count }
    public var ratedItemCount: Int { Set(interactions.map(\.item)).count }
}

/// Loaders for the MovieLens datasets (GroupLens Research; Harper & Konstan 2015).
public enum MovieLens {
    /// The 19 ml-100k genres in flag order, used when `u.genre` is absent.
    public static let ml100kGenres = [
        "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
        "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
    ]

    /// What the content agent reads about a movie: its title and genres as one sentence, such as
    /// "Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy."
    public static func itemText(_ movie: Movie) -> String {
        let genres = movie.genres.filter { $0 != "(no genres listed)" && $0 != "unknown" && !$0.isEmpty }
        return genres.isEmpty ? movie.title : "\(movie.title). Genres: \(genres.joined(separator: ", "))."
    }

    /// What the catalogue says about each movie as knowledge-graph facts: (movie, "genre", g) for
    /// each genre and (movie, "decade", "1990s") from the year in the title.
    public static func itemFacts(_ movies: [Int64: Movie], only: Set<Int64>? = nil) -> (items: [Int64], relations: [String], entities: [String]) {
        var items: [Int64] = [], relations: [String] = [], entities: [String] = []
        for id in movies.keys.sorted() where only?.contains(id) ?? true {
            let m = movies[id]!
            for g in m.genres where g != "(no genres listed)" && g != "unknown" && !g.isEmpty {
                items.append(id); relations.append("genre"); entities.append(g)
            }
            if let year = year(of: m.title) { items.append(id); relations.append("decade"); entities.append("\(year / 10 * 10)s") }
        }
        return (items, relations, entities)
    }

    /// The release year at the end of a MovieLens title, "Toy Story (1995)" -> 1995.
    static func year(of title: String) -> Int? {
        var t = Substring(title)
        while t.last == " " { t.removeLast() }
        guard t.hasSuffix(")"), t.count >= 6 else { return nil }
        let digits = t.dropLast().suffix(4)
        guard t.dropLast(5).hasSuffix("("), let y = Int(digits), y >= 1800, y <= 2100 else { return nil }
        return y
    }

    /// The layout of the dataset directly inside `directory`, or nil when neither `ratings.csv`
    /// nor `u.data` is there.
    public static func detect(directory: String) -> MovieLensFormat? {
        if FileIO.exists(join(directory, "ratings.csv")) { return .latestSmall }
        if FileIO.exists(join(directory, "u.data")) { return .ml100k }
        return nil
    }

    /// Finds a dataset from a path that is either a dataset directory or a parent holding
    /// `ml-latest-small/` or `ml-100k/` (such as the shared `data/` folder).
    ///
    /// - Parameters:
    ///   - path: the dataset directory or its parent.
    ///   - preferred: the dataset wanted. With a parent directory, its sub-directory is used
    ///     (default: `ml-latest-small`, else `ml-100k`); with a dataset directory, its layout must match.
    /// - Returns: the dataset directory and its layout.
    /// - Throws: `.notFound` when no dataset is there, `.invalidArgument` when `path` holds a
    ///   dataset of the other layout than `preferred`.
    public static func locate(_ path: String, preferred: MovieLensFormat? = nil) throws(ChorusError) -> (directory: String, format: MovieLensFormat) {
        guard FileIO.exists(path) else { throw .notFound("no such directory: '\(path)'") }
        if let found = detect(directory: path) {
            if let preferred, preferred != found {
                // A parent may hold data files and sub-directories; prefer the asked-for sub-directory.
                let sub = join(path, preferred.rawValue)
                if detect(directory: sub) == preferred { return (sub, preferred) }
                throw .invalidArgument("'\(path)' holds a dataset in the \(found.rawValue) layout (\(found.ratingsFile)), not \(preferred.rawValue)")
            }
            return (path, found)
        }
        let candidates = preferred.map { [$0] } ?? [.latestSmall, .ml100k]
        for c in candidates {
            let sub = join(path, c.rawValue)
            if let found = detect(directory: sub) {
                guard found == c else {
                    throw .invalidArgument("'\(sub)' holds \(found.ratingsFile), not the \(c.rawValue) layout")
                }
                return (sub, c)
            }
        }
        let wanted = candidates.map { "\($0.rawValue)/\($0.ratingsFile)" }.joined(separator: " or ")
        throw .notFound("no MovieLens dataset in '\(path)': expected ratings.csv or u.data there, or \(wanted) below it")
    }

    /// Loads the dataset at `path` (a dataset directory or its parent; see `locate`).
    /// - Throws: `.notFound` for a missing dataset or file, `.format("file:line: ...")` for a
    ///   malformed line, `.io` for an unreadable file.
    public static func load(_ path: String, preferred: MovieLensFormat? = nil) throws(ChorusError) -> MovieLensData {
        let (dir, format) = try locate(path, preferred: preferred)
        switch format {
        case .latestSmall:
            let ratingsPath = join(dir, "ratings.csv"), moviesPath = join(dir, "movies.csv")
            let ratings = try parseRatingsCSV(try read(ratingsPath), path: ratingsPath)
            let movies = try parseMoviesCSV(try read(moviesPath), path: moviesPath)
            return MovieLensData(format: format, directory: dir, interactions: ratings, movies: movies)
        case .ml100k:
            let dataPath = join(dir, "u.data"), itemPath = join(dir, "u.item"), genrePath = join(dir, "u.genre")
            let ratings = try parseUData(try read(dataPath), path: dataPath)
            let genres = FileIO.exists(genrePath) ? try parseUGenre(try read(genrePath), path: genrePath) : ml100kGenres
            let movies = try parseUItem(try read(itemPath), genres: genres, path: itemPath)
            return MovieLensData(format: format, directory: dir, interactions: ratings, movies: movies)
        }
    }

    // MARK: ml-latest-small layout

    /// Parses `ratings.csv`: the header `userId,movieId,rating,timestamp`, then one rating a line.
    /// - Throws: `.format("path:line: ...")` naming the first malformed line.
    public static func parseRatingsCSV(_ bytes: [UInt8], path: String = "ratings.csv") throws(ChorusError) -> [Interaction] {
        var out: [Interaction] = []
        out.reserveCapacity(bytes.count / 24)
        var sawHeader = false
        try TextParsing.forEachCSVRecord(bytes, path: path) { (r) throws(ChorusError) in
            if !sawHeader {
                sawHeader = true
                let header = r.fields.map { TextParsing.utf8($0) }
                guard header == ["userId", "movieId", "rating", "timestamp"] else {
                    throw .format("\(path):\(r.line): expected the header 'userId,movieId,rating,timestamp', found '\(header.joined(separator: ","))'")
                }
                return
            }
            out.append(try rating(r.fields, line: r.line, path: path))
        }
        if !sawHeader { throw .format("\(path):1: the file is empty (expected the header 'userId,movieId,rating,timestamp')") }
        return out
    }

    /// Parses `movies.csv`: the header `movieId,title,genres`, then one movie a line; titles with
    /// commas are double-quoted; genres are `|`-separated, `(no genres listed)` meaning none.
    /// - Throws: `.format("path:line: ...")` for a malformed line or a movie id given twice.
    public static func parseMoviesCSV(_ bytes: [UInt8], path: String = "movies.csv") throws(ChorusError) -> [Int64: Movie] {
        var out: [Int64: Movie] = [:]
        var sawHeader = false
        try TextParsing.forEachCSVRecord(bytes, path: path) { (r) throws(ChorusError) in
            if !sawHeader {
                sawHeader = true
                let header = r.fields.map { TextParsing.utf8($0) }
                guard header == ["movieId", "title", "genres"] else {
                    throw .format("\(path):\(r.line): expected the header 'movieId,title,genres', found '\(header.joined(separator: ","))'")
                }
                return
            }
            guard r.fields.count == 3 else {
                throw .format("\(path):\(r.line): expected 3 fields (movieId,title,genres), found \(r.fields.count); quote titles that contain commas")
            }
            guard let id = TextParsing.int64(r.fields[0]) else {
                throw .format("\(path):\(r.line): movieId \(TextParsing.excerpt(r.fields[0])) is not an integer")
            }
            let genreText = TextParsing.utf8(r.fields[2])
            let genres = genreText == "(no genres listed)" || genreText.isEmpty
                ? [] : genreText.split(separator: "|", omittingEmptySubsequences: true).map(String.init)
            guard out.updateValue(Movie(title: TextParsing.utf8(r.fields[1]), genres: genres), forKey: id) == nil else {
                throw .format("\(path):\(r.line): movieId \(id) appears a second time")
            }
        }
        if !sawHeader { throw .format("\(path):1: the file is empty (expected the header 'movieId,title,genres')") }
        return out
    }

    // MARK: ml-100k layout

    /// Parses `u.data`: tab-separated `user item rating timestamp`, no header.
    /// - Throws: `.format("path:line: ...")` naming the first malformed line.
    public static func parseUData(_ bytes: [UInt8], path: String = "u.data") throws(ChorusError) -> [Interaction] {
        var out: [Interaction] = []
        out.reserveCapacity(bytes.count / 20)
        try TextParsing.forEachLine(bytes) { (line, text) throws(ChorusError) in
            out.append(try rating(TextParsing.split(text, separator: UInt8(ascii: "\t")), line: line, path: path))
        }
        return out
    }

    /// Parses `u.genre`: `name|index` lines (indices 0 ..< count, any order), blank lines ignored.
    /// - Returns: the genre names in index order.
    public static func parseUGenre(_ bytes: [UInt8], path: String = "u.genre") throws(ChorusError) -> [String] {
        var byIndex: [Int: String] = [:]
        try TextParsing.forEachLine(bytes) { (line, text) throws(ChorusError) in
            let f = TextParsing.split(text, separator: UInt8(ascii: "|"))
            guard f.count == 2, let index = TextParsing.int64(f[1]), index >= 0, index < 1000 else {
                throw .format("\(path):\(line): expected 'name|index', found \(TextParsing.excerpt(text))")
            }
            guard byIndex.updateValue(TextParsing.latin1(f[0]), forKey: Int(index)) == nil else {
                throw .format("\(path):\(line): genre index \(index) appears a second time")
            }
        }
        var out: [String] = []
        for i in 0..<byIndex.count {
            guard let name = byIndex[i] else { throw .format("\(path): genre indices are not 0..<\(byIndex.count) (\(i) is missing)") }
            out.append(name)
        }
        return out
    }

    /// Parses `u.item` (ISO-8859-1): `id|title|release date|video release date|IMDb URL|` and
    /// then one 0/1 flag per genre, in `genres` order.
    /// - Throws: `.format("path:line: ...")` for a wrong field count, id or flag.
    public static func parseUItem(_ bytes: [UInt8], genres: [String] = ml100kGenres, path: String = "u.item") throws(ChorusError) -> [Int64: Movie] {
        var out: [Int64: Movie] = [:]
        let expected = 5 + genres.count
        try TextParsing.forEachLine(bytes) { (line, text) throws(ChorusError) in
            let f = TextParsing.split(text, separator: UInt8(ascii: "|"))
            guard f.count == expected else {
                throw .format("\(path):\(line): expected \(expected) '|'-separated fields (5 + \(genres.count) genre flags), found \(f.count)")
            }
            guard let id = TextParsing.int64(f[0]) else {
                throw .format("\(path):\(line): movie id \(TextParsing.excerpt(f[0])) is not an integer")
            }
            var g: [String] = []
            for (j, flag) in f[5...].enumerated() {
                switch TextParsing.utf8(flag) {
                case "1": g.append(genres[j])
                case "0": break
                default: throw .format("\(path):\(line): genre flag \(j + 1) is \(TextParsing.excerpt(flag)), expected 0 or 1")
                }
            }
            guard out.updateValue(Movie(title: TextParsing.latin1(f[1]), genres: g), forKey: id) == nil else {
                throw .format("\(path):\(line): movie id \(id) appears a second time")
            }
        }
        return out
    }

    // MARK: helpers

    /// One `user, item, rating, timestamp` row (both layouts).
    static func rating(_ f: [ArraySlice<UInt8>], line: Int, path: String) throws(ChorusError) -> Interaction {
        guard f.count == 4 else {
            throw .format("\(path):\(line): expected 4 fields (user, item, rating, timestamp), found \(f.count)")
        }
        guard let user = TextParsing.int64(f[0]) else { throw .format("\(path):\(line): user id \(TextParsing.excerpt(f[0])) is not an integer") }
        guard let item = TextParsing.int64(f[1]) else { throw .format("\(path):\(line): item id \(TextParsing.excerpt(f[1])) is not an integer") }
        guard let value = TextParsing.float(f[2]), value.isFinite else {
            throw .format("\(path):\(line): rating \(TextParsing.excerpt(f[2])) is not a number")
        }
        guard value > 0 else { throw .format("\(path):\(line): rating \(value) must be > 0") }
        guard let ts = TextParsing.int64(f[3]) else { throw .format("\(path):\(line): timestamp \(TextParsing.excerpt(f[3])) is not an integer") }
        return Interaction(user: user, item: item, weight: value, timestamp: ts)
    }

    static func read(_ path: String) throws(ChorusError) -> [UInt8] {
        do {
            return try FileIO.readAll(path: path)
        } catch .notFound {
            throw .notFound("missing dataset file '\(path)'")
        }
    }

    static func join(_ dir: String, _ name: String) -> String {
        dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }
}
