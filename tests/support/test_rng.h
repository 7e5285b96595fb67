/* test_rng.h — the integer kernels' tests' deterministic generator (xorshift64, a state per test
 * file so that each file's draws do not depend on the others) and the operand draws they share:
 * values mostly uniform, one in six at an end of their range, where the kernels' sums and
 * saturations are tested. Header only: test_hqrt_standalone builds without tests/support's
 * library. */
#ifndef HQ_TEST_RNG_H
#define HQ_TEST_RNG_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t test_rng_next(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (uint32_t)(*state >> 11);
}

/* A value in [lo, hi], inclusive; the width is computed in 64 bits, so a range of 2^31 values
 * does not overflow. */
static inline int32_t test_rng_range(uint64_t *state, int32_t lo, int32_t hi)
{
    return (int32_t)((int64_t)lo +
                     (int64_t)(test_rng_next(state) % (uint32_t)((int64_t)hi - lo + 1)));
}

/* n weight codes in [-wmax - 1, wmax] (wmax 127 for 8-bit weights, 7 for 4-bit). */
static inline void test_rng_weights(uint64_t *state, int8_t *w, size_t n, int32_t wmax)
{
    for (size_t i = 0; i < n; i++)
        w[i] = (int8_t)(test_rng_next(state) % 6 ? test_rng_range(state, -wmax - 1, wmax)
                        : test_rng_next(state) % 2 ? -wmax - 1
                                                   : wmax);
}

/* n 8-bit activation codes. */
static inline void test_rng_codes(uint64_t *state, uint8_t *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = test_rng_next(state) % 6 ? (uint8_t)test_rng_next(state)
                                        : (test_rng_next(state) % 2 ? 0 : 255);
}

#endif
