/* libFuzzer's entry points that the chorus-fuzz harnesses call (Tests/fuzz/README.md). They exist
 * only in the instrumented build (-sanitize=fuzzer, -D CHORUS_FUZZ); the plain build never calls them. */
#ifndef CHORUS_FUZZ_H
#define CHORUS_FUZZ_H
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's own mutator, for a custom mutator to delegate to. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);


#endif
