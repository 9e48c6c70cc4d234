// Chorus C++ quickstart: g++ -std=c++17 -Iinclude quickstart.cpp -lchorus. Users 1-4 like items 10-14
// and users 5-8 items 20-24; each user has missed one item of their group, which should come first.
#include <cstdio>
#include <vector>
#include "chorus.hpp"

int main() try {
    std::vector<int64_t> users, items;
    for (int64_t u = 1; u <= 8; u++)  // user u misses item u % 5 of the group; each adds in its own order
        for (int64_t j = 0; j < 5; j++)
            if ((j + u) % 5 != u % 5) { users.push_back(u); items.push_back((u <= 4 ? 10 : 20) + (j + u) % 5); }

    chorus::engine engine;  // freed when it goes out of scope
    engine.add_interactions(users, items);
    chorus::fit_options params;
    params.factors = 2;  // a tiny data set wants a tiny model
    engine.fit(params);
    std::vector<chorus::user_recommendations> recs = engine.recommend({1}, 3);  // one list per user
    std::printf("top items for user %lld:\n", static_cast<long long>(recs[0].user));
    for (const chorus::recommended_item &r : recs[0].items)
        std::printf("  item %lld  score %.4f\n", static_cast<long long>(r.item), r.score);
    return 0;
} catch (const chorus::error &e) {
    std::fprintf(stderr, "%s: %s\n", e.status_name(), e.what());
    return 1;
}
