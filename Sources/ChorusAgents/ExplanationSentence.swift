/// The English words of an explanation: a sentence from the shares and reasons an `Explainer`
/// computed, and the query words an item's text matches. Kept apart from the ranking code: another
/// language is another type like this one.
struct ExplanationSentence {
    /// Agent names, in the order of the shares.
    let agents: [String]
    /// An item's text, if it has one (its label is the text's first sentence).
    let label: (Int64) -> String?
    /// The host id of a model item index.
    let itemId: (Int32) -> Int64

    /// "Toy Story" is recommended by session (73%), ...; it often comes next after "Aladdin"; ...
    /// The leading agents (at most three, each with at least 5%), their own reasons (at most two),
    /// else the most similar history item, then the matched query words.
    func sentence(item: Int64, shares: [Float], reasons: [AgentReason?], because: Int64?, matched: [String]) -> String {
        var parts: [String] = []
        let ranked = shares.indices.filter { shares[$0] >= 0.05 }.sorted { shares[$0] > shares[$1] }
        let agentsText = ranked.prefix(3).map { "\(agents[$0]) (\(Int((shares[$0] * 100).rounded()))%)" }.joined(separator: ", ")
        parts.append("\(name(item)) is recommended" + (agentsText.isEmpty ? "" : " by " + agentsText))
        let told = ranked.compactMap { reasons[$0] }.prefix(2)
        for r in told { parts.append(phrase(r)) }
        if told.isEmpty, let b = because { parts.append("it is similar to \(name(b)), which you interacted with") }
        if !matched.isEmpty { parts.append("it matches your request for " + matched.map { "\"\($0)\"" }.joined(separator: ", ")) }
        return parts.joined(separator: "; ") + "."
    }

    /// An agent's reason with the item it rests on named in place of "%@".
    func phrase(_ r: AgentReason) -> String {
        guard let j = r.becauseItem else { return r.phrase }
        return r.phrase.replacingFirst("%@", with: name(itemId(j)))
    }

    /// An item as the sentence names it: the first sentence of its text in quotes (at most 60
    /// characters), else "item <id>".
    func name(_ id: Int64) -> String {
        guard let text = label(id) else { return "item \(id)" }
        let cut = text.split(separator: ".", maxSplits: 1).first.map(String.init) ?? text
        return "\"\(cut.count > 60 ? String(cut.prefix(57)) + "..." : cut)\""
    }

    /// The words of `query` that `text` contains, in query order, without function words.
    static func matchedTerms(query: String, text: String) -> [String] {
        guard !text.isEmpty else { return [] }
        let words = Set(Self.words(text))
        var matched: [String] = []
        for w in Self.words(query) where words.contains(w) && !stopWords.contains(w) && !matched.contains(w) { matched.append(w) }
        return matched
    }

    /// Lower-cased runs of letters and digits.
    static func words(_ text: String) -> [String] {
        var out: [String] = [], current = ""
        for ch in text.lowercased() {
            if ch.isLetter || ch.isNumber { current.append(ch) } else if !current.isEmpty { out.append(current); current = "" }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// English function words that never count as a match.
    static let stopWords: Set<String> = [
        "a", "an", "the", "and", "or", "of", "for", "to", "in", "on", "with", "at", "by", "from", "is", "it", "i",
        "me", "my", "we", "you", "your", "that", "this", "some", "something", "want", "like", "about", "as", "be",
    ]
}

extension String {
    /// `self` with the first occurrence of `target` replaced (Foundation-free).
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let r = range(of: target) else { return self }
        return self[..<r.lowerBound] + replacement + self[r.upperBound...]
    }

    /// The range of the first occurrence of `target`, comparing Unicode scalars.
    func range(of target: String) -> Range<String.Index>? {
        guard !target.isEmpty else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) { return i..<index(i, offsetBy: target.count) }
            i = index(after: i)
        }
        return nil
    }
}
