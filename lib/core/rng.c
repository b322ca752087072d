/* rng.c - counter-based random numbers: every draw is a pure function of
 * (key, stream, index), so results do not depend on thread count or call order. */
#include "core.h"

#include <math.h>

/* SplitMix64's finaliser: a strong 64-bit mixer. Applied to a combination of the three
 * coordinates, with a second round so that nearby counters decorrelate. */
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t sat__rng_u64(uint64_t key, uint64_t stream, uint64_t index) {
    uint64_t h = mix64(key + 0x9e3779b97f4a7c15ull);
    h = mix64(h ^ (stream * 0xd1b54a32d192ed03ull));
    return mix64(h ^ (index + 0x9e3779b97f4a7c15ull * (stream + 1)));
}

float sat__rng_uniform(uint64_t key, uint64_t stream, uint64_t index) {
    return (float)(sat__rng_u64(key, stream, index) >> 40) * (1.0f / 16777216.0f);
}

float sat__rng_normal(uint64_t key, uint64_t stream, uint64_t index) {
    double u1 = ((double)(sat__rng_u64(key, stream, 2 * index) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(sat__rng_u64(key, stream, 2 * index + 1) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
