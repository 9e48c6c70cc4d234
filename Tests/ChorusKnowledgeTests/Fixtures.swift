@testable import ChorusKnowledge
@testable import ChorusCore

/// A small graph with a learnable structure: 3 groups of 8 entities; `same_group` links every
/// ordered pair inside a group (an equivalence, so each member to itself too: otherwise TransE,
/// which must learn r = 0 for a symmetric relation, would always rank h itself first),
/// `member_of` links each member to its group's hub entity.
/// Every 7th `same_group` triple is held out for testing.
func clusterGraph() throws -> (TripleStore, test: [Triple], known: KnownTriples) {
    var train = TripleStore()
    var heldOut: [(String, String, String)] = []
    var k = 0
    for g in 0..<3 {
        for a in 0..<8 {
            try train.add(head: "e\(g)_\(a)", relation: "member_of", tail: "hub\(g)")
            for b in 0..<8 {
                k += 1
                if k % 7 == 0 { heldOut.append(("e\(g)_\(a)", "same_group", "e\(g)_\(b)")) }
                else { try train.add(head: "e\(g)_\(a)", relation: "same_group", tail: "e\(g)_\(b)") }
            }
        }
    }
    var test: [Triple] = []
    for (h, r, t) in heldOut {
        test.append(Triple(head: train.entities.id(of: h)!, relation: train.relations.id(of: r)!, tail: train.entities.id(of: t)!))
    }
    return (train, test, KnownTriples(store: train, extra: [test]))
}
