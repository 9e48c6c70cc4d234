import ChorusCore

/// The embedding models. Complex-valued embeddings (ComplEx, RotatE entities) store a row as
/// `[re_0 ..< re_d, im_0 ..< im_d]`, the layout of the RotatE authors' code (`torch.chunk(x, 2)`).
public enum KGModelKind: String, Sendable, CaseIterable {
    /// Bordes et al. 2013: f = γ − ‖h + r − t‖ (L1 or L2).
    case transE = "transe"
    /// Yang et al. 2015: f = Σ h·r·t.
    case distMult = "distmult"
    /// Trouillon et al. 2016: f = Re(Σ h·r·conj(t)).
    case complEx = "complex"
    /// Sun et al. 2019: f = γ − Σ_k |h_k·e^{iθ_k} − t_k|, relations are phases only.
    case rotatE = "rotate"

    /// Looks a model up by name, case-insensitively.
    /// - Throws: `.invalidArgument` naming the known models.
    public init(name: String) throws(ChorusError) {
        guard let k = KGModelKind(rawValue: name.lowercased()) else {
            let known = KGModelKind.allCases.map(\.rawValue).joined(separator: ", ")
            throw .invalidArgument("unknown knowledge-graph model '\(name)' (known: \(known))")
        }
        self = k
    }

    /// Floats per entity row for embedding dimension `d` (complex models hold 2d).
    public func entityWidth(_ d: Int) -> Int { self == .complEx || self == .rotatE ? 2 * d : d }
    /// Floats per relation row (RotatE: d phases).
    public func relationWidth(_ d: Int) -> Int { self == .complEx ? 2 * d : d }

    /// Distance-based models score γ − distance; the others a plain product.
    public var usesMargin: Bool { self == .transE || self == .rotatE }

    var code: UInt8 {
        switch self { case .transE: 1; case .distMult: 2; case .complEx: 3; case .rotatE: 4 }
    }
    init?(code: UInt8) {
        switch code { case 1: self = .transE; case 2: self = .distMult; case 3: self = .complEx; case 4: self = .rotatE; default: return nil }
    }
}
