/* conv_direct.c - stride-1 convolution without a column matrix (implicit GEMM), on CPUs with AVX-512
 * or AVX2.
 *
 * The im2col path writes a column matrix nine times the size of the input for a 3x3
 * convolution, and the GEMM then packs it again: for the narrow layers of small-image
 * networks (16-64 channels) that traffic costs more than the multiply-adds. Here a tile of
 * 16 output channels x 16 output pixels of one example is summed in 16 AVX-512
 * registers, reading each needed input row straight from the image with a masked load
 * (lanes that fall into the padding load nothing and stay zero). Only the weights are
 * packed, once per call, into panels of 16 output channels.
 *
 * The input gradient of a stride-1 convolution is itself a stride-1 convolution: of dY
 * with the weights transposed (in <-> out channels) and flipped, padded by k - 1 - pad.
 * It runs through the same tiles with the weights packed that way.
 *
 * Weight gradients (stride 1) are sums over pixels: 4 output channels x 4 column-matrix
 * rows (input channel, tap) at a time, 16 pixels per vector, the column values again read
 * straight from the image with masked loads, summed across lanes at the end of a stretch
 * of examples.
 *
 * Every output element is summed by one tile in a fixed order whatever the thread count,
 * so results do not depend on it. */
#include "kernels/kernels.h"

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SAT_HAVE_DIRECT 1
#endif

#define TILE 16
/* Kernel sizes up to this use the direct path (the weight gradient's per-tile tables live
 * on the stack). */
#define DIRECT_MAX_K 7
/* Pixels summed in registers before the lanes are added up (weight gradients). */
#define WEIGHTS_STRETCH_PIXELS 1024

/* For one vector of up to 16 consecutive output pixels and one kernel tap (ki, kj): which
 * lanes read which input element. Each run of lanes on one output row reads consecutive
 * elements (the stride is 1): one masked load per run, lane l at base + l within an input
 * channel plane. The forward and input-gradient passes build them once per call for every
 * pixel block (they do not depend on the example); the weight gradient keeps a table of
 * them for the whole image. */
typedef struct tap {
    int32_t runs;                /* masked loads; 0: nothing to read */
    uint16_t mask[TILE];
    int32_t base[TILE];
} tap;

/* The weight gradient's table holds the same for rows of 8 pixels or more, where a vector
 * spans at most three rows: compact, so that a whole image's table stays in L1 (a full
 * tap per entry made the 32x32 weight gradient 20% slower). */
#define WTAP_RUNS 3
typedef struct wtap {
    int32_t base[WTAP_RUNS];
    uint16_t mask[WTAP_RUNS];
    int16_t runs;
} wtap;

static int64_t round_tile(int64_t v) { return (v + TILE - 1) / TILE * TILE; }

/* Lowered only while a test or benchmark runs another CPU's kernels or the im2col path. */
static int direct_cap = SAT_SIMD_AVX512;

void sat__conv_direct_select(int level) { direct_cap = level; }

int sat__conv_direct_available(void) {
#ifdef SAT_HAVE_DIRECT
    __builtin_cpu_init();
    const int cpu = __builtin_cpu_supports("avx512f")                                     ? SAT_SIMD_AVX512
                    : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? SAT_SIMD_AVX2
                                                                                      : SAT_SIMD_BASE;
    return cpu < direct_cap ? cpu : direct_cap;
#else
    return SAT_SIMD_BASE;
#endif
}

/* Where the direct kernels win was measured per layer shape (batch 128, one thread, against
 * im2col + GEMM):
 * - forward at stride 1: resnet20's 3x3 layers 1.8-2.5x faster (small-cnn's stride-2
 *   layers, read through gathers, were up to 2x slower, so strided layers stay im2col);
 * - the input gradient when it has at least 16 channels to fill a tile (a 1-channel input
 *   gradient ran 5x slower);
 * - weight gradients only for short columns, c_in k k <= 320: 16 -> 16 channels 1.6x
 *   faster, 32 -> 32 equal, 64 -> 64 and madry-cnn's 32 -> 64 5x5 1.4x slower. */
#define DIRECT_WEIGHTS_MAX_ROWS 320

int sat__conv_direct_fits(const sat_conv_geom *g, int which) {
    if (!g->direct || g->k > DIRECT_MAX_K || g->stride != 1) return 0;
    /* tap offsets within a plane are 32-bit */
    if (((int64_t)g->h_in + 2 * g->k) * ((int64_t)g->w_in + 2 * g->k) >= INT32_MAX) return 0;
    /* The AVX2 input gradient only where its output rows hold whole 16-pixel vectors: on
     * narrower images (resnet20's 8x8, madry-cnn's 14x14) its masked loads made it 6-13%
     * slower than im2col + BLIS zen3, while its forward pass still won or tied
     * (tests/bench/conv_paths, docs/performance.md). */
    if (which == SAT_CONV_DIRECT_DATA)
        return g->pad <= g->k - 1 && g->c_in >= TILE && (g->direct == SAT_SIMD_AVX512 || g->w_in >= TILE);
    /* Weight gradients also want rows of 8 pixels or more: a vector then spans at most three
     * rows (the compact table's limit). */
    if (which == SAT_CONV_DIRECT_WEIGHTS)
        return g->direct == SAT_SIMD_AVX512 && g->w_out >= 8 &&
               (int64_t)g->c_in * g->k * g->k <= DIRECT_WEIGHTS_MAX_ROWS;
    return 1;
}

int64_t sat__conv_direct_weights_scratch(const sat_conv_geom *g) {
    const int64_t vecs = ((int64_t)g->h_out * g->w_out + TILE - 1) / TILE;
    const int64_t bytes = vecs * g->k * g->k * (int64_t)sizeof(wtap);
    return (bytes + (int64_t)sizeof(float) - 1) / (int64_t)sizeof(float);
}

/* Floats of packed weights for the forward pass, and with backward also for the input
 * gradient's (the larger of the two). */
static int64_t packed_floats(const sat_conv_geom *g, int backward) {
    const int64_t kk = (int64_t)g->k * g->k;
    const int64_t fwd = round_tile(g->c_out) * g->c_in * kk, bwd = round_tile(g->c_in) * g->c_out * kk;
    return backward && bwd > fwd ? bwd : fwd;
}

/* Floats for a call's tap table: every pixel block's k * k taps of the pass's output plane
 * (the input gradient's output is the input plane). */
static int64_t taps_floats(const sat_conv_geom *g, int backward) {
    const int64_t out = (int64_t)g->h_out * g->w_out, in = (int64_t)g->h_in * g->w_in;
    const int64_t plane = backward && in > out ? in : out;
    const int64_t bytes = (plane + TILE - 1) / TILE * g->k * g->k * (int64_t)sizeof(tap);
    return (bytes + (int64_t)sizeof(float) - 1) / (int64_t)sizeof(float);
}

/* The tap table starts after the larger packing, wherever the workspace was sized for. */
int64_t sat__conv_direct_workspace(const sat_conv_geom *g, int backward) {
    return packed_floats(g, 1) + taps_floats(g, backward);
}

#ifdef SAT_HAVE_DIRECT
/* Weights [c_out, c_in, k, k] as panels of 16 output channels: ap[(panel * K + t) * 16 + i]
 * = W[panel * 16 + i][t] with t = (c * k + ki) * k + kj; rows past c_out are zero. With
 * `transpose`, the panels are of input channels and t runs over (o, ki, kj) of the flipped
 * kernel: the weights of the input-gradient convolution. */
static void pack_weights(const sat_conv_geom *g, const float *w, int transpose, float *ap) {
    const int64_t k = g->k, kk = k * k;
    const int64_t rows = transpose ? g->c_in : g->c_out, inner = transpose ? g->c_out : g->c_in;
    const int64_t K = inner * kk;
    for (int64_t r0 = 0; r0 < rows; r0 += TILE) {
        float *panel = ap + r0 * K;
        for (int64_t t = 0; t < K; t++) {
            const int64_t c = t / kk, kij = t % kk, ki = kij / k, kj = kij % k;
            for (int64_t i = 0; i < TILE; i++) {
                const int64_t r = r0 + i;
                float v = 0.0f;
                if (r < rows)
                    v = transpose ? w[((c * g->c_in + r) * k + (k - 1 - ki)) * k + (k - 1 - kj)]
                                  : w[(r * g->c_in + c) * kk + kij];
                panel[t * TILE + i] = v;
            }
        }
    }
}

/* The shape one tile pass runs over: input [cin, h, w] -> output [cout, ho, wo], stride 1. */
typedef struct direct_shape {
    int64_t cin, h, w, cout, k, pad, ho, wo;
} direct_shape;

static direct_shape forward_shape(const sat_conv_geom *g) {
    const direct_shape s = {g->c_in, g->h_in, g->w_in, g->c_out, g->k, g->pad, g->h_out, g->w_out};
    return s;
}

typedef struct direct_job {
    direct_shape s;
    const float *x;  /* [n, cin, h, w] */
    const float *ap; /* packed weights, K = cin * k * k per panel */
    const float *bias;
    float *y;        /* [n, cout, ho, wo] */
    int level;       /* SAT_SIMD_AVX512 or SAT_SIMD_AVX2: which tile runs */
    int64_t blocks;  /* pixel blocks per example */
    tap *taps;       /* [blocks][k * k]: the same for every example, built once per call */
} direct_job;

/* Lanes of block q0.. (nq of them) and tap (ki, kj). */
static void tap_setup(const direct_shape *s, int64_t q0, int64_t nq, int64_t ki, int64_t kj, tap *t) {
    t->runs = 0;
    for (int64_t j = 0; j < nq;) {
        const int64_t q = q0 + j, oh = q / s->wo, ow0 = q % s->wo;
        int64_t len = s->wo - ow0;
        if (len > nq - j) len = nq - j;
        const int64_t ih = oh - s->pad + ki, iw0 = ow0 - s->pad + kj;
        if (ih >= 0 && ih < s->h) {
            int64_t lo = iw0 < 0 ? -iw0 : 0, hi = s->w - iw0 < len ? s->w - iw0 : len;
            if (lo < hi) {
                t->mask[t->runs] = (uint16_t)((((1u << (hi - lo)) - 1u) << (j + lo)) & 0xffffu);
                t->base[t->runs] = (int32_t)(ih * s->w + iw0 - j);
                t->runs++;
            }
        }
        j += len;
    }
}

/* One 16 x 16 tile: output channels o0.. of example e, pixels q0.. (nq). */
__attribute__((target("avx512f"))) static void direct_tile(const direct_job *jb, const tap *taps, int64_t e,
                                                          int64_t o0, int64_t q0, int64_t nq) {
    const direct_shape *s = &jb->s;
    const int64_t kk = s->k * s->k, plane = s->h * s->w, K = s->cin * kk;
    const float *x = jb->x + e * s->cin * plane;
    const float *a0 = jb->ap + o0 * K;
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    __m512 c8 = c0, c9 = c0, c10 = c0, c11 = c0, c12 = c0, c13 = c0, c14 = c0, c15 = c0;
    for (int64_t kij = 0; kij < kk; kij++) {
        const tap *t = &taps[kij];
        if (!t->runs) continue; /* the tap falls into the padding for every lane */
        const float *a = a0 + kij * TILE;
        /* Pointer arithmetic through uintptr_t: a run's base may lie before the plane; the
         * masked-off lanes are never read. */
        const uintptr_t xb = (uintptr_t)x;
        for (int64_t c = 0; c < s->cin; c++, a += kk * TILE) {
            const uintptr_t xc = xb + (uintptr_t)(c * plane) * sizeof(float);
            __m512 b = _mm512_maskz_loadu_ps(t->mask[0], (const void *)(xc + (uintptr_t)t->base[0] * sizeof(float)));
            for (int32_t r = 1; r < t->runs; r++)
                b = _mm512_mask_loadu_ps(b, t->mask[r], (const void *)(xc + (uintptr_t)t->base[r] * sizeof(float)));
#define SAT_TILE_ROW(i) c##i = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b, c##i);
            SAT_TILE_ROW(0) SAT_TILE_ROW(1) SAT_TILE_ROW(2) SAT_TILE_ROW(3)
            SAT_TILE_ROW(4) SAT_TILE_ROW(5) SAT_TILE_ROW(6) SAT_TILE_ROW(7)
            SAT_TILE_ROW(8) SAT_TILE_ROW(9) SAT_TILE_ROW(10) SAT_TILE_ROW(11)
            SAT_TILE_ROW(12) SAT_TILE_ROW(13) SAT_TILE_ROW(14) SAT_TILE_ROW(15)
#undef SAT_TILE_ROW
        }
    }
    const __m512 acc[TILE] = {c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11, c12, c13, c14, c15};
    const int64_t p = s->ho * s->wo;
    float *y = jb->y + (e * s->cout + o0) * p + q0;
    const __mmask16 store = (__mmask16)(nq >= TILE ? 0xffffu : (1u << nq) - 1u);
    for (int64_t i = 0; i < TILE && o0 + i < s->cout; i++) {
        __m512 v = acc[i];
        if (jb->bias) v = _mm512_add_ps(v, _mm512_set1_ps(jb->bias[o0 + i]));
        _mm512_mask_storeu_ps(y + i * p, store, v);
    }
}

/* The same tile on CPUs with AVX2 but not AVX-512. Its 16 registers hold 6 output channels
 * x 16 pixels (two 8-lane halves), so a panel of 16 channels takes three passes (6, 6 and
 * 4 rows) over the same input rows. AVX2 has no mask registers: each run's 16-bit mask
 * becomes two lane masks for vmaskmovps, which, like the AVX-512 masked load, reads
 * nothing in the masked-off lanes; the runs cover disjoint lanes, so their loads are or-ed.
 * Every output element is summed in the same order as by the AVX-512 tile: the same bits. */
#define AVX2_ROWS 6

/* Lane l of the result is all ones when bit l of bits8 is set. */
__attribute__((target("avx2,fma"))) static inline __m256i lane_mask(unsigned bits8) {
    const __m256i lane = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits8), lane), lane);
}

/* Output channels o0 .. o0 + rows - 1 (within one panel) of example e, pixels q0.. (nq);
 * rows is a constant at each call, so the unused accumulators vanish. */
__attribute__((target("avx2,fma"), always_inline)) static inline void tile_rows_avx2(const direct_job *jb,
                                                                                   const tap *taps, int64_t e,
                                                                                   int64_t o0, int rows,
                                                                                   int64_t q0, int64_t nq) {
    const direct_shape *s = &jb->s;
    const int64_t kk = s->k * s->k, plane = s->h * s->w, K = s->cin * kk;
    const float *a0 = jb->ap + (o0 - o0 % TILE) * K + o0 % TILE;
    const uintptr_t xb = (uintptr_t)(jb->x + e * s->cin * plane);
    const __m256 zero = _mm256_setzero_ps();
    __m256 l0 = zero, h0 = zero, l1 = zero, h1 = zero, l2 = zero, h2 = zero;
    __m256 l3 = zero, h3 = zero, l4 = zero, h4 = zero, l5 = zero, h5 = zero;
    for (int64_t kij = 0; kij < kk; kij++) {
        const tap *t = &taps[kij];
        if (!t->runs) continue;
        /* Most taps of a wide image read 16 consecutive inputs: plain loads, which are faster. */
        const int whole = t->runs == 1 && t->mask[0] == 0xffffu;
        __m256i lo[TILE], hi[TILE];
        for (int32_t r = 0; !whole && r < t->runs; r++) {
            lo[r] = lane_mask(t->mask[r] & 0xffu);
            hi[r] = lane_mask((unsigned)t->mask[r] >> 8);
        }
        const float *a = a0 + kij * TILE;
        for (int64_t c = 0; c < s->cin; c++, a += kk * TILE) {
            const uintptr_t xc = xb + (uintptr_t)(c * plane) * sizeof(float);
            __m256 bl = zero, bh = zero;
            if (whole) {
                const float *at = (const float *)(xc + (uintptr_t)t->base[0] * sizeof(float));
                bl = _mm256_loadu_ps(at);
                bh = _mm256_loadu_ps(at + 8);
            } else {
                for (int32_t r = 0; r < t->runs; r++) {
                    const uintptr_t at = xc + (uintptr_t)t->base[r] * sizeof(float);
                    bl = _mm256_or_ps(bl, _mm256_maskload_ps((const float *)at, lo[r]));
                    bh = _mm256_or_ps(bh, _mm256_maskload_ps((const float *)(at + 8 * sizeof(float)), hi[r]));
                }
            }
#define SAT_TILE_ROW(i)                                                                                \
    if (rows > i) {                                                                                    \
        const __m256 wi = _mm256_broadcast_ss(a + i);                                                  \
        l##i = _mm256_fmadd_ps(wi, bl, l##i);                                                          \
        h##i = _mm256_fmadd_ps(wi, bh, h##i);                                                          \
    }
            SAT_TILE_ROW(0) SAT_TILE_ROW(1) SAT_TILE_ROW(2) SAT_TILE_ROW(3) SAT_TILE_ROW(4) SAT_TILE_ROW(5)
#undef SAT_TILE_ROW
        }
    }
    const __m256 acc_lo[AVX2_ROWS] = {l0, l1, l2, l3, l4, l5}, acc_hi[AVX2_ROWS] = {h0, h1, h2, h3, h4, h5};
    const int64_t p = s->ho * s->wo;
    float *y = jb->y + (e * s->cout + o0) * p + q0;
    const unsigned store = nq >= TILE ? 0xffffu : (1u << nq) - 1u;
    const __m256i store_lo = lane_mask(store & 0xffu), store_hi = lane_mask(store >> 8);
    for (int i = 0; i < rows && o0 + i < s->cout; i++) {
        __m256 vl = acc_lo[i], vh = acc_hi[i];
        if (jb->bias) {
            const __m256 bi = _mm256_set1_ps(jb->bias[o0 + i]);
            vl = _mm256_add_ps(vl, bi);
            vh = _mm256_add_ps(vh, bi);
        }
        if (nq >= TILE) {
            _mm256_storeu_ps(y + i * p, vl);
            _mm256_storeu_ps(y + i * p + 8, vh);
        } else {
            _mm256_maskstore_ps(y + i * p, store_lo, vl);
            if (nq > 8) _mm256_maskstore_ps(y + i * p + 8, store_hi, vh);
        }
    }
}

__attribute__((target("avx2,fma"))) static void direct_tile_avx2(const direct_job *jb, const tap *taps, int64_t e,
                                                                int64_t o0, int64_t q0, int64_t nq) {
    tile_rows_avx2(jb, taps, e, o0, AVX2_ROWS, q0, nq);
    if (o0 + AVX2_ROWS < jb->s.cout) tile_rows_avx2(jb, taps, e, o0 + AVX2_ROWS, AVX2_ROWS, q0, nq);
    if (o0 + 2 * AVX2_ROWS < jb->s.cout) tile_rows_avx2(jb, taps, e, o0 + 2 * AVX2_ROWS, TILE - 2 * AVX2_ROWS, q0, nq);
}

/* Units are (example, pixel block) pairs; a range of them is one thread's share. */
static void direct_range(void *arg, int64_t u0, int64_t u1) {
    const direct_job *jb = arg;
    const direct_shape *s = &jb->s;
    const int64_t p = s->ho * s->wo, kk = s->k * s->k;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t e = u / jb->blocks, b = u % jb->blocks, q0 = b * TILE;
        const int64_t nq = p - q0 < TILE ? p - q0 : TILE;
        for (int64_t o0 = 0; o0 < s->cout; o0 += TILE) {
            if (jb->level == SAT_SIMD_AVX512)
                direct_tile(jb, jb->taps + b * kk, e, o0, q0, nq);
            else
                direct_tile_avx2(jb, jb->taps + b * kk, e, o0, q0, nq);
        }
    }
}

/* ws: the packed weights, then room for the tap table (sat__conv_direct_workspace). */
static void direct_run(const sat_context *ctx, direct_job *jb, int64_t n, float *ws, const sat_conv_geom *g) {
    const direct_shape *s = &jb->s;
    const int64_t p = s->ho * s->wo, kk = s->k * s->k;
    jb->blocks = (p + TILE - 1) / TILE;
    /* The taps depend on the pixel block only: once per call, not once per example. */
    jb->taps = (tap *)(void *)(ws + packed_floats(g, 1));
    for (int64_t b = 0; b < jb->blocks; b++) {
        const int64_t q0 = b * TILE, nq = p - q0 < TILE ? p - q0 : TILE;
        for (int64_t ki = 0; ki < s->k; ki++)
            for (int64_t kj = 0; kj < s->k; kj++) tap_setup(s, q0, nq, ki, kj, &jb->taps[b * kk + ki * s->k + kj]);
    }
    const int64_t units = n * jb->blocks;
    /* Small layers stay on the calling thread: a hand-off costs more than it saves. */
    const double flops =
        2.0 * (double)units * TILE * (double)round_tile(jb->s.cout) * (double)(jb->s.cin * jb->s.k * jb->s.k);
    if (!ctx || ctx->num_threads <= 1 || units < 2 || flops < 4.0e6)
        direct_range(jb, 0, units);
    else
        sat__parallel_for(ctx, units, direct_range, jb);
}
#endif

void sat__conv_direct_forward(const sat_context *ctx, const sat_conv_geom *g, const float *x, const float *w,
                              const float *b, float *y, int64_t n, float *ws) {
#ifdef SAT_HAVE_DIRECT
    pack_weights(g, w, 0, ws);
    direct_job jb = {forward_shape(g), x, ws, b, y, g->direct, 0, NULL};
    direct_run(ctx, &jb, n, ws, g);
#else
    (void)ctx, (void)g, (void)x, (void)w, (void)b, (void)y, (void)n, (void)ws;
#endif
}

void sat__conv_direct_backward_data(const sat_context *ctx, const sat_conv_geom *g, const float *dy,
                                    const float *w, float *dx, int64_t n, float *ws) {
#ifdef SAT_HAVE_DIRECT
    pack_weights(g, w, 1, ws);
    direct_job jb = {{g->c_out, g->h_out, g->w_out, g->c_in, g->k, g->k - 1 - g->pad, g->h_in, g->w_in},
                     dy, ws, NULL, dx, g->direct, 0, NULL};
    direct_run(ctx, &jb, n, ws, g);
#else
    (void)ctx, (void)g, (void)dy, (void)w, (void)dx, (void)n, (void)ws;
#endif
}

#ifdef SAT_HAVE_DIRECT
/* The taps of every 16-pixel vector v and tap kij of the forward convolution, at
 * tab[v * k * k + kij]; w_out >= 8 (sat__conv_direct_fits), so three runs are enough. */
static void wtap_table(const sat_conv_geom *g, wtap *tab) {
    const direct_shape s = forward_shape(g);
    const int64_t p = s.ho * s.wo, kk = s.k * s.k;
    for (int64_t q0 = 0; q0 < p; q0 += TILE) {
        for (int64_t kij = 0; kij < kk; kij++) {
            tap t;
            tap_setup(&s, q0, p - q0 < TILE ? p - q0 : TILE, kij / s.k, kij % s.k, &t);
            wtap *w = &tab[q0 / TILE * kk + kij];
            w->runs = (int16_t)t.runs;
            for (int32_t r = 0; r < t.runs; r++) {
                w->base[r] = t.base[r];
                w->mask[r] = t.mask[r];
            }
        }
    }
}

/* Adds to dw the 4 x 4 block at output channels o0.., column rows t0.. summed over the
 * examples [e0, e1). */
__attribute__((target("avx512f"))) static void weights_tile(const sat_conv_geom *g, const wtap *tab,
                                                           const float *x, const float *dy, float *dw,
                                                           int64_t o0, int64_t t0, int64_t e0, int64_t e1) {
    const int64_t kk = (int64_t)g->k * g->k, K = g->c_in * kk, p = (int64_t)g->h_out * g->w_out;
    const int64_t plane = (int64_t)g->h_in * g->w_in, vecs = (p + TILE - 1) / TILE;
    int64_t coff[4], kij[4];
    int ok[4], rows = 0;
    for (int j = 0; j < 4; j++) {
        ok[j] = t0 + j < K;
        coff[j] = ok[j] ? (t0 + j) / kk * plane : 0;
        kij[j] = ok[j] ? (t0 + j) % kk : 0;
    }
    while (rows < 4 && o0 + rows < g->c_out) rows++;
    /* Named accumulators: as an array the compiler keeps them on the stack. */
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    __m512 a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    const wtap *tp[4];
    for (int64_t e = e0; e < e1; e++) {
        const float *dye = dy + (e * g->c_out + o0) * p;
        const uintptr_t xe = (uintptr_t)(x + e * g->c_in * plane);
        for (int64_t v = 0; v < vecs; v++) {
            const __mmask16 mq = (__mmask16)(p - v * TILE >= TILE ? 0xffffu : (1u << (p - v * TILE)) - 1u);
            const __m512 zero = _mm512_setzero_ps();
            const __m512 d0 = _mm512_maskz_loadu_ps(mq, dye + v * TILE);
            const __m512 d1 = rows > 1 ? _mm512_maskz_loadu_ps(mq, dye + p + v * TILE) : zero;
            const __m512 d2 = rows > 2 ? _mm512_maskz_loadu_ps(mq, dye + 2 * p + v * TILE) : zero;
            const __m512 d3 = rows > 3 ? _mm512_maskz_loadu_ps(mq, dye + 3 * p + v * TILE) : zero;
            for (int j = 0; j < 4; j++) tp[j] = &tab[v * kk + kij[j]];
#define SAT_XLOAD(j)                                                                                   \
    __m512 x##j = zero;                                                                                \
    if (ok[j])                                                                                         \
        for (int r = 0; r < tp[j]->runs; r++)                                                          \
            x##j = _mm512_mask_loadu_ps(x##j, tp[j]->mask[r],                                          \
                                        (const void *)(xe + (uintptr_t)(coff[j] + tp[j]->base[r]) * 4u));
            SAT_XLOAD(0) SAT_XLOAD(1) SAT_XLOAD(2) SAT_XLOAD(3)
#undef SAT_XLOAD
#define SAT_FMA_ROW(i)                                                                                 \
    a##i##0 = _mm512_fmadd_ps(d##i, x0, a##i##0);                                                      \
    a##i##1 = _mm512_fmadd_ps(d##i, x1, a##i##1);                                                      \
    a##i##2 = _mm512_fmadd_ps(d##i, x2, a##i##2);                                                      \
    a##i##3 = _mm512_fmadd_ps(d##i, x3, a##i##3);
            SAT_FMA_ROW(0) SAT_FMA_ROW(1) SAT_FMA_ROW(2) SAT_FMA_ROW(3)
#undef SAT_FMA_ROW
        }
    }
    const __m512 acc[4][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}, {a20, a21, a22, a23}, {a30, a31, a32, a33}};
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < 4; j++)
            if (ok[j]) dw[(o0 + i) * K + t0 + j] += _mm512_reduce_add_ps(acc[i][j]);
}
#endif

void sat__conv_direct_weights(const sat_conv_geom *g, const float *x, const float *dy, float *dw, int64_t e0,
                              int64_t e1, float *scratch) {
    const int64_t K = (int64_t)g->c_in * g->k * g->k, p = (int64_t)g->h_out * g->w_out;
    memset(dw, 0, (size_t)(g->c_out * K) * sizeof *dw);
#ifdef SAT_HAVE_DIRECT
    wtap *tab = (wtap *)(void *)scratch;
    wtap_table(g, tab);
    int64_t stretch = WEIGHTS_STRETCH_PIXELS / (p > 0 ? p : 1);
    if (stretch < 1) stretch = 1;
    for (int64_t es = e0; es < e1; es += stretch) {
        const int64_t ee = e1 - es < stretch ? e1 : es + stretch;
        for (int64_t o0 = 0; o0 < g->c_out; o0 += 4)
            for (int64_t t0 = 0; t0 < K; t0 += 4) weights_tile(g, tab, x, dy, dw, o0, t0, es, ee);
    }
#else
    (void)x, (void)dy, (void)e0, (void)e1, (void)scratch, (void)p;
#endif
}
