#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CBLAS
import ChorusCore

/// `chorus-bench kernels`: times the dense kernels on the ALS and scoring hot paths against
/// alternatives, so profiling findings come with numbers (see bench/README.md).
/// - `symv` (f x f Gram matrix times a vector, 4 per row per ALS sweep): ChorusCore's
///   `Kernels.symv` vs f dot products (its form before 1161bae) vs this file's column-accumulating
///   form (what it became) vs OpenBLAS `ssymv` / `sgemv`.
/// - `score` (one user against every item, ALSAgent.score): a `Kernels.dot` per item vs
///   `Kernels.gemv` (OpenBLAS `sgemv`).
enum KernelBench {
    static let options: Set<String> = ["factors", "items", "seconds"]
    static let help = """
        Usage: chorus-bench kernels [--factors 64] [--items 9724] [--seconds 0.5]

        Times each kernel variant for about --seconds and prints nanoseconds per call as JSON.
        """

    static func run(_ o: Options) throws(BenchError) {
        try o.check()
        let f = try o.int("factors", default: 64, minimum: 1)
        let n = try o.int("items", default: 9724, minimum: 1)
        let budget = Double(try o.float("seconds", default: 0.5))
        var rng = SeededRandom(seed: 7)
        let g = UnsafeMutablePointer<Float>.allocate(capacity: f * f)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: f)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: f)
        let items = UnsafeMutablePointer<Float>.allocate(capacity: n * f)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: n)
        for r in 0..<f { for c in 0...r { let v = rng.nextFloat(); g[r * f + c] = v; g[c * f + r] = v } }
        for i in 0..<f { x[i] = rng.nextFloat() }
        for i in 0..<(n * f) { items[i] = rng.nextFloat() - 0.5 }

        var results: [(String, Double, Float)] = []
        func time(_ name: String, _ body: () -> Void, check: () -> Float) {
            body()
            var calls = 0
            let start = BenchIO.now()
            var elapsed = 0.0
            repeat {
                for _ in 0..<64 { body() }
                calls += 64
                elapsed = BenchIO.now() - start
            } while elapsed < budget
            results.append((name, elapsed / Double(calls) * 1e9, check()))
        }
        let ySum = { () -> Float in var s: Float = 0; for i in 0..<f { s += y[i] }; return s }
        let scoreSum = { () -> Float in var s: Float = 0; for i in 0..<n { s += scores[i] }; return s }

        time("symv: Kernels.symv (the library's)", { Kernels.symv(g, x, y, f) }, check: ySum)
        time("symv: f dot products (Kernels.symv before 1161bae)", { rowDotSymv(g, x, y, f) }, check: ySum)
        time("symv: cblas_ssymv", {
            cblas_ssymv(CblasRowMajor, CblasUpper, Int32(f), 1, g, Int32(f), x, 1, 0, y, 1)
        }, check: ySum)
        time("symv: cblas_sgemv", {
            cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(f), Int32(f), 1, g, Int32(f), x, 1, 0, y, 1)
        }, check: ySum)
        time("score: Kernels.dot per item (ALSAgent.score before it used gemv)", {
            for i in 0..<n { scores[i] = Kernels.dot(x, items + i * f, f) }
        }, check: scoreSum)
        time("score: Kernels.gemv (cblas_sgemv)", { Kernels.gemv(items, m: n, k: f, x, into: scores) }, check: scoreSum)
        time("score: Kernels.rowDots (C, \(Kernels.usesAVX2 ? "AVX2+FMA" : "portable") path)", { Kernels.rowDots(items, m: n, k: f, x, into: scores) }, check: scoreSum)

        let rows = results.map { r in
            "    {\"kernel\": \(BenchIO.json(r.0)), \"ns_per_call\": \(BenchIO.json(r.1.rounded())), \"checksum\": \(r.2)}"
        }
        print("{\n  \"command\": \"kernels\", \"factors\": \(f), \"items\": \(n),\n  \"results\": [\n\(rows.joined(separator: ",\n"))\n  ]\n}")
    }

    /// y = G x as f dot products, each ending in a horizontal sum (Kernels.symv before 1161bae).
    static func rowDotSymv(_ g: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ f: Int) {
        for r in 0..<f { y[r] = Kernels.dot(g + r * f, x, f) }
    }
}
