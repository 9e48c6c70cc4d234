#if canImport(Glibc)
import Glibc
#endif
import ChorusCore

// Two builds of one target (Tests/fuzz/README.md):
//  - CHORUS_FUZZ=1 with `--sanitize=fuzzer --sanitize=address` (make fuzz-build): libFuzzer's own
//    main drives the harness named by $CHORUS_FUZZ_TARGET through LLVMFuzzerTestOneInput (and the
//    custom mutator); libFuzzer's flags are the command line.
//  - the plain build (swift build, make test): a driver that lists the harnesses, writes the seed
//    corpora, and replays files or corpus directories through a harness (regressions, crashes).

#if CHORUS_FUZZ
import CChorusFuzz

nonisolated(unsafe) var selected: Harness? = nil

func selectHarness() -> Harness {
    if let h = selected { return h }
    guard let name = getenv("CHORUS_FUZZ_TARGET").map({ String(cString: $0) }), let h = Harness(rawValue: name) else {
        let names = Harness.allCases.map(\.rawValue).joined(separator: ", ")
        printError("chorus-fuzz: set CHORUS_FUZZ_TARGET to one of: \(names)")
        exit(2)
    }
    selected = h
    return h
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size == 0 ? [] : Array(UnsafeBufferPointer(start: data!, count: size))
    selectHarness().run(bytes)
    return 0
}

@_cdecl("LLVMFuzzerCustomMutator")
public func fuzzCustomMutator(_ data: UnsafeMutablePointer<UInt8>?, _ size: Int, _ maxSize: Int, _ seed: UInt32) -> Int {
    guard let data else { return 0 }
    guard selectHarness().isSnapshot else { return LLVMFuzzerMutate(data, size, maxSize) }
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    SnapshotMutator.mutate(&bytes, maxSize: maxSize, seed: seed) { buffer, limit in
        let n = buffer.count
        buffer += [UInt8](repeating: 0, count: max(0, limit - n))
        let m = buffer.withUnsafeMutableBufferPointer { LLVMFuzzerMutate($0.baseAddress!, n, limit) }
        buffer.removeLast(buffer.count - m)
    }
    bytes.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: $0.count) }
    return bytes.count
}

#else

@main
enum ReplayMain {
    static let usage = """
        usage: chorus-fuzz list
               chorus-fuzz seeds DIR                    write the seed corpora (DIR/<harness>/...)
               chorus-fuzz replay HARNESS PATH...       run files, or every file of directories, through HARNESS
               chorus-fuzz replay-all DIR               run DIR/<harness>/* through each harness
               chorus-fuzz check-mutator SNAPSHOT N     N snapshot mutations of a file: checksums kept valid
        """

    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        guard let command = args.first else { printError(usage); exit(2) }
        switch command {
        case "list":
            for h in Harness.allCases { print(h.rawValue, h.maxLength) }
        case "seeds" where args.count == 2:
            Seeds.write(to: args[1])
        case "replay" where args.count >= 3:
            guard let h = Harness(rawValue: args[1]) else { printError("unknown harness '\(args[1])'"); exit(2) }
            let n = replay(h, Array(args[2...]))
            print("\(h.rawValue): \(n) inputs replayed")
        case "replay-all" where args.count == 2:
            for h in Harness.allCases {
                let n = replay(h, [args[1] + "/" + h.rawValue])
                guard n > 0 else { printError("\(h.rawValue): no inputs in \(args[1])/\(h.rawValue)"); exit(1) }
                print("\(h.rawValue): \(n) inputs replayed")
            }
        case "check-mutator" where args.count == 3:
            checkMutator(path: args[1], rounds: Int(args[2]) ?? 1000)
        default:
            printError(usage)
            exit(2)
        }
    }

    /// Runs every file of `paths` (files, or directories' regular files, sorted) through `h`.
    static func replay(_ h: Harness, _ paths: [String]) -> Int {
        var n = 0
        for path in paths {
            for file in files(path) {
                guard let bytes = readFile(file) else { printError("cannot read \(file)"); exit(1) }
                h.run(bytes)
                n += 1
            }
        }
        return n
    }

    /// Mutates a snapshot `rounds` times (chained, as a fuzzing run does) with a stand-in for
    /// libFuzzer's byte mutator, and checks that the mutations meant to keep the container intact
    /// do: most results must pass `Snapshot.decode`'s checks.
    static func checkMutator(path: String, rounds: Int) {
        guard let original = readFile(path), (try? Snapshot.decode(original)) != nil else {
            printError("\(path) is not an intact snapshot"); exit(1)
        }
        var intact = 0, current = original
        var rng = SeededRandom(seed: 7)
        for round in 0..<rounds {
            SnapshotMutator.mutate(&current, maxSize: original.count * 2, seed: UInt32(truncatingIfNeeded: round)) { buffer, limit in
                // Flip a byte, drop one, or insert one: what LLVMFuzzerMutate does, reduced.
                switch rng.nextInt(below: 3) {
                case 0 where !buffer.isEmpty: buffer[rng.nextInt(below: buffer.count)] ^= UInt8(1 + rng.nextInt(below: 255))
                case 1 where !buffer.isEmpty: buffer.remove(at: rng.nextInt(below: buffer.count))
                default: if buffer.count < limit { buffer.insert(UInt8(rng.nextInt(below: 256)), at: rng.nextInt(below: buffer.count + 1)) }
                }
            }
            if (try? Snapshot.decode(current)) != nil { intact += 1 } else { current = original }
        }
        print("\(intact) of \(rounds) mutations kept the container intact")
        // One mutation in 16 changes raw bytes on purpose, and some tag changes make a tag repeat.
        guard intact * 10 >= rounds * 8 else { printError("the snapshot mutator breaks the container too often"); exit(1) }
    }
}

#endif

func files(_ path: String) -> [String] {
    var st = stat()
    guard stat(path, &st) == 0 else { printError("no such file or directory: \(path)"); exit(1) }
    guard (st.st_mode & S_IFMT) == S_IFDIR else { return [path] }
    guard let dir = opendir(path) else { return [] }
    defer { closedir(dir) }
    var out: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name.hasPrefix(".") { continue }
        var fst = stat()
        let full = path + "/" + name
        if stat(full, &fst) == 0, (fst.st_mode & S_IFMT) == S_IFREG { out.append(full) }
    }
    return out.sorted()
}

func readFile(_ path: String) -> [UInt8]? {
    guard let f = fopen(path, "rb") else { return nil }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n > 0 { out += buffer[0..<n] }
        if n < buffer.count { break }
    }
    return out
}

/// A line on standard error (fd 2: no shared `FILE *` from Swift 6 code).
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { b in _ = write(2, b.baseAddress, b.count) }
}
