import ChorusCore

/// User-to-user similarity: the cosine of the user vectors of the model's first factor agent (ALS,
/// else BPR). Its own file so serving's request path stays untouched.
extension ServingSnapshot {
    /// The user vectors similarity reads: the first factor agent's, and the rows of users it has one for.
    func userVectors() throws(ChorusError) -> (vectors: FloatMatrix, users: Int) {
        guard let agent = model.agents.lazy.compactMap({ $0 as? FactorAgent }).first else {
            throw .invalidArgument("the fitted model has no agent with user vectors: similar users need als or bpr "
                                   + "(agents: \(model.agentNames.joined(separator: ", ")))")
        }
        return (agent.userFactors, min(agent.userFactors.rows, model.users.count))
    }

    /// The k users most similar to each given user into caller buffers (`users.count * k` entries):
    /// cosine of user vectors, best first, the user itself excluded; a user without a direction (a zero
    /// vector) is at cosine 0 from everyone. Slots past the candidates hold id -1 and score -infinity.
    /// - Parameters:
    ///   - allow: when set, only these users are candidates (ids the model does not know are ignored).
    ///   - deny: never these users (unknown ids are ignored).
    /// - Throws: `.notFound` for a user the model has no vector for; `.invalidArgument` for k outside
    ///   1 ... the users with vectors, or a model without a factor agent.
    func similarUsers(users: UnsafeBufferPointer<Int64>, k: Int, allow: Set<Int64>?, deny: Set<Int64>,
                      outIds: UnsafeMutablePointer<Int64>, outScores: UnsafeMutablePointer<Float>) throws(ChorusError) {
        let (vectors, nUsers) = try userVectors()
        guard k >= 1, k <= nUsers else {
            throw .invalidArgument("k = \(k) is not in 1...\(nUsers) (the users with vectors in the fitted model)")
        }
        var query = [Int](repeating: 0, count: users.count)
        for (q, id) in users.enumerated() {
            guard let u = model.users.index(of: id), Int(u) < nUsers else {
                throw .notFound("user \(id) has no vector in the fitted model")
            }
            query[q] = Int(u)
        }
        // Norms once per call, shared by every query row; a zero vector gets cosine 0.
        let f = vectors.cols
        var inverseNorm = [Float](repeating: 0, count: nUsers)
        for u in 0..<nUsers {
            let r = vectors.row(u)
            let n = Kernels.dot(r, r, f).squareRoot()
            if n > 0 && n.isFinite { inverseNorm[u] = 1 / n }
        }
        var blocked: [Bool]? = nil
        if allow != nil || !deny.isEmpty {
            var b = [Bool](repeating: allow != nil, count: nUsers)
            if let allow { for id in allow { if let u = model.users.index(of: id), Int(u) < nUsers { b[Int(u)] = false } } }
            for id in deny { if let u = model.users.index(of: id), Int(u) < nUsers { b[Int(u)] = true } }
            blocked = b
        }
        var scores = [Float](repeating: 0, count: nUsers)
        for (q, qu) in query.enumerated() {
            scores.withUnsafeMutableBufferPointer { s in
                Kernels.rowDots(vectors.base, m: nUsers, k: f, vectors.row(qu), into: s.baseAddress!)
            }
            let scale = inverseNorm[qu]
            for u in 0..<nUsers { scores[u] *= scale * inverseNorm[u] }
            scores[qu] = -.infinity
            if let blocked { for u in 0..<nUsers where blocked[u] { scores[u] = -.infinity } }
            let top = scores.withUnsafeBufferPointer { TopK.select($0, k: k) }
            for slot in 0..<k {
                let o = q * k + slot
                if slot < top.count { outIds[o] = model.users.ids[Int(top[slot].index)]; outScores[o] = top[slot].score }
                else { outIds[o] = -1; outScores[o] = -.infinity }
            }
        }
    }
}
