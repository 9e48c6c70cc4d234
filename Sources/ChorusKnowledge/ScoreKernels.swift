#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import ChorusCore
import CKernels

/// Every model is scored as f(q, x): a query q built from the anchor entity and the relation,
/// against a candidate entity x. Tail prediction uses q = φ(h, r), head prediction q = ψ(r, t):
///
/// | model    | q (tail side)  | q (head side)      | f(q, x)                     |
/// | TransE   | h + r          | t − r              | γ − ‖q − x‖₁ or ‖q − x‖₂     |
/// | DistMult | h ∘ r          | r ∘ t              | q · x                       |
/// | ComplEx  | h ∘ r          | conj(r) ∘ t        | Re(q) · Re(x) + Im(q) · Im(x) |
/// | RotatE   | h ∘ e^{iθ}     | e^{−iθ} ∘ t        | γ − Σ_k |q_k − x_k|          |
///
/// The head-side forms are exact rewrites (|h∘r − t| = |h − conj(r)∘t| for |r| = 1, and
/// Re(h r conj(t)) = Re(h conj(conj(r) t))); the RotatE authors' code uses the same ones. One
/// query then serves every negative of a sample, and the whole entity table at evaluation.
enum ScoreKernels {
    enum Comparison { case l1, l2, dot, modulus }

    @inline(__always) static func comparison(_ kind: KGModelKind, norm: Int) -> Comparison {
        switch kind {
        case .transE: norm == 2 ? .l2 : .l1
        case .distMult, .complEx: .dot
        case .rotatE: .modulus
        }
    }

    /// q for a (anchor, relation) pair; `tailSide` true means the anchor is the head.
    /// `phaseScale` = π / embedding range (RotatE's relation-to-phase factor).
    @inline(__always)
    static func query(_ kind: KGModelKind, anchor a: UnsafePointer<Float>, relation r: UnsafePointer<Float>,
                      tailSide: Bool, d: Int, phaseScale: Float, out q: UnsafeMutablePointer<Float>) {
        switch kind {
        case .transE:
            if tailSide { for i in 0..<d { q[i] = a[i] + r[i] } } else { for i in 0..<d { q[i] = a[i] - r[i] } }
        case .distMult:
            for i in 0..<d { q[i] = a[i] * r[i] }
        case .complEx:
            let ar = a, ai = a + d, rr = r, ri = r + d
            if tailSide {
                for i in 0..<d { q[i] = ar[i] * rr[i] - ai[i] * ri[i]; q[d + i] = ar[i] * ri[i] + ai[i] * rr[i] }
            } else {
                for i in 0..<d { q[i] = rr[i] * ar[i] + ri[i] * ai[i]; q[d + i] = rr[i] * ai[i] - ri[i] * ar[i] }
            }
        case .rotatE:
            let ar = a, ai = a + d
            for i in 0..<d {
                let theta = r[i] * phaseScale
                let c = cosf(theta), s = sinf(theta)
                if tailSide { q[i] = ar[i] * c - ai[i] * s; q[d + i] = ar[i] * s + ai[i] * c }
                else { q[i] = ar[i] * c + ai[i] * s; q[d + i] = ai[i] * c - ar[i] * s }
            }
        }
    }

    /// Back-propagates dL/dq into the anchor's and the relation's gradient rows (accumulating).
    /// `q` must be the query computed from the same anchor and relation.
    @inline(__always)
    static func queryBackward(_ kind: KGModelKind, anchor a: UnsafePointer<Float>, relation r: UnsafePointer<Float>,
                              query q: UnsafePointer<Float>, gradQuery g: UnsafePointer<Float>, tailSide: Bool, d: Int,
                              phaseScale: Float, gradAnchor ga: UnsafeMutablePointer<Float>, gradRelation gr: UnsafeMutablePointer<Float>) {
        switch kind {
        case .transE:
            for i in 0..<d { ga[i] += g[i] }
            if tailSide { for i in 0..<d { gr[i] += g[i] } } else { for i in 0..<d { gr[i] -= g[i] } }
        case .distMult:
            for i in 0..<d { ga[i] += g[i] * r[i]; gr[i] += g[i] * a[i] }
        case .complEx:
            let ar = a, ai = a + d, rr = r, ri = r + d, gre = g, gim = g + d
            if tailSide {   // q = a r
                for i in 0..<d {
                    ga[i] += gre[i] * rr[i] + gim[i] * ri[i]; ga[d + i] += -gre[i] * ri[i] + gim[i] * rr[i]
                    gr[i] += gre[i] * ar[i] + gim[i] * ai[i]; gr[d + i] += -gre[i] * ai[i] + gim[i] * ar[i]
                }
            } else {        // q = conj(r) a
                for i in 0..<d {
                    ga[i] += gre[i] * rr[i] - gim[i] * ri[i]; ga[d + i] += gre[i] * ri[i] + gim[i] * rr[i]
                    gr[i] += gre[i] * ar[i] + gim[i] * ai[i]; gr[d + i] += gre[i] * ai[i] - gim[i] * ar[i]
                }
            }
        case .rotatE:
            let gre = g, gim = g + d
            for i in 0..<d {
                let theta = r[i] * phaseScale
                let c = cosf(theta), s = sinf(theta)
                if tailSide {   // q = a e^{iθ}: dq/dθ = (−q_im, q_re)
                    ga[i] += gre[i] * c + gim[i] * s; ga[d + i] += -gre[i] * s + gim[i] * c
                    gr[i] += (gim[i] * q[i] - gre[i] * q[d + i]) * phaseScale
                } else {        // q = e^{−iθ} a: dq/dθ = (q_im, −q_re)
                    ga[i] += gre[i] * c - gim[i] * s; ga[d + i] += gre[i] * s + gim[i] * c
                    gr[i] += (gre[i] * q[d + i] - gim[i] * q[i]) * phaseScale
                }
            }
        }
    }

    /// f(q, x). `w` is the row width (d, or 2d for complex rows).
    @inline(__always)
    static func score(_ cmp: Comparison, q: UnsafePointer<Float>, x: UnsafePointer<Float>, w: Int, gamma: Float) -> Float {
        switch cmp {
        case .dot: return Kernels.dot(q, x, w)
        case .l1: return gamma - l1(q, x, w)
        case .l2: return gamma - l2sq(q, x, w).squareRoot()
        case .modulus: return gamma - modulusSum(q, x, w / 2)
        }
    }

    /// Adds c · ∂f/∂q to `gq`, for a score computed as `score(cmp, q, x)`.
    @inline(__always)
    static func scoreBackward(_ cmp: Comparison, q: UnsafePointer<Float>, x: UnsafePointer<Float>, w: Int, coefficient c: Float,
                              gradQuery gq: UnsafeMutablePointer<Float>) {
        switch cmp {
        case .dot: Kernels.axpy(c, x, gq, w)
        // The distances depend on q − x only: ∂f/∂q = −∂f/∂x.
        default: distanceBackward(cmp, q: q, x: x, w: w, coefficient: -c, grad: gq)
        }
    }

    /// Adds c · ∂f/∂q to `gq` and c · ∂f/∂x to `gx` (RotatE: one |u_k| for both).
    @inline(__always)
    static func pairBackward(_ cmp: Comparison, q: UnsafePointer<Float>, x: UnsafePointer<Float>, w: Int, coefficient c: Float,
                             gradQuery gq: UnsafeMutablePointer<Float>, gradCandidate gx: UnsafeMutablePointer<Float>) {
        switch cmp {
        case .modulus: ck_modulus_axpy2(c, q, x, gq, gx, w / 2)
        default:
            scoreBackward(cmp, q: q, x: x, w: w, coefficient: c, gradQuery: gq)
            candidateBackward(cmp, q: q, x: x, w: w, coefficient: c, gradCandidate: gx)
        }
    }

    /// Adds c · ∂f/∂x to `gx`: the candidate's side of `scoreBackward`.
    @inline(__always)
    static func candidateBackward(_ cmp: Comparison, q: UnsafePointer<Float>, x: UnsafePointer<Float>, w: Int, coefficient c: Float,
                                  gradCandidate gx: UnsafeMutablePointer<Float>) {
        switch cmp {
        case .dot: Kernels.axpy(c, q, gx, w)
        default: distanceBackward(cmp, q: q, x: x, w: w, coefficient: c, grad: gx)
        }
    }

    /// Adds c · ∂f/∂x for the distance scores f = γ − D(q − x): c · sign(q − x) (L1; the
    /// subgradient 0 at a tie), c · (q − x) / ‖q − x‖ (L2), c · u_k / |u_k| per complex component
    /// u = q − x (RotatE's modulus; 0 at a zero modulus).
    @inline(__always)
    static func distanceBackward(_ cmp: Comparison, q: UnsafePointer<Float>, x: UnsafePointer<Float>, w: Int, coefficient c: Float,
                                 grad g: UnsafeMutablePointer<Float>) {
        switch cmp {
        case .dot: return
        case .l1:
            ck_l1_sign_axpy(c, q, x, g, w)
        case .l2:
            let n = l2sq(q, x, w).squareRoot()
            guard n > 0 else { return }
            let k = c / n
            for i in 0..<w { g[i] += (q[i] - x[i]) * k }
        case .modulus:
            ck_modulus_axpy(c, q, x, g, w / 2)
        }
    }

    /// Σ|a − b| (the C kernel: AVX2 when the CPU has it).
    @inline(__always) static func l1(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        ck_l1_distance(a, b, n)
    }

    @inline(__always) static func l2sq(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        while i + 8 <= n {
            let v = ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self) - rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            acc += v * v
            i += 8
        }
        var s = acc.sum()
        while i < n { let v = a[i] - b[i]; s += v * v; i += 1 }
        return s
    }

    /// Σ_k |q_k − x_k| over d complex components (re block then im block; the C kernel).
    @inline(__always) static func modulusSum(_ q: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ d: Int) -> Float {
        ck_modulus_sum(q, x, d)
    }
}
