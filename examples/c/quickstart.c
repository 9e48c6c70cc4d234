/* Chorus quickstart: cc -std=c99 -Iinclude quickstart.c -lchorus. Users 1-4 like items 10-14 and
 * users 5-8 items 20-24; each user has missed one item of their group, which should come first. */
#include <stdio.h>
#include "chorus.h"

#define TRY(call) do { chorus_status s_ = (call); if (s_ != CHORUS_OK) { \
    fprintf(stderr, "%s: %s: %s\n", #call, chorus_status_name(s_), chorus_last_error()); \
    chorus_engine_free(engine); return 1; } } while (0)

int main(void) {
    chorus_engine *engine = NULL;
    chorus_fit_params params;
    int64_t users[40], items[40], user = 1, rec_items[3];
    float rec_scores[3];
    size_t n = 0, i;
    int64_t u, j;
    for (u = 1; u <= 8; u++) /* user u misses item u % 5 of the group; each adds in its own order */
        for (j = 0; j < 5; j++)
            if ((j + u) % 5 != u % 5) { users[n] = u; items[n] = (u <= 4 ? 10 : 20) + (j + u) % 5; n++; }

    TRY(chorus_engine_create(NULL, &engine));
    TRY(chorus_engine_add_interactions(engine, users, items, NULL, NULL, n));
    TRY(chorus_fit_params_init(&params));
    params.factors = 2; /* a tiny data set wants a tiny model */
    TRY(chorus_engine_fit(engine, &params));
    TRY(chorus_engine_recommend(engine, &user, 1, 3, NULL, rec_items, rec_scores, 3, NULL, 0, NULL));
    printf("top items for user %lld:\n", (long long)user);
    for (i = 0; i < 3 && rec_items[i] != CHORUS_NO_ITEM; i++)
        printf("  item %lld  score %.4f\n", (long long)rec_items[i], rec_scores[i]);
    chorus_engine_free(engine);
    return 0;
}
