/* test_nn_layers.c — the decoder's layers (nn_layers.c): each forward
 * against its definition and each backward against central finite
 * differences, every test with the SIMD paths and again with the portable C
 * paths only (nn_use_simd); and that the switch reaches the vector paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "gradient_check.h"
#include "sat/half.h"
#include "sat/nn_layers.h"
#include "sat/nn_simd.h"
#include "sat/rng.h"

typedef struct {
    int n, in, out, ldx;
    float *x, *W, *b, *y, *r;
} linear_case;

static double linear_loss(void *p)
{
    linear_case *c = p;
    nn_linear_forward(c->y, c->out, c->x, c->ldx, c->W, c->b, c->n, c->in, c->out);
    return weighted_sum(c->y, c->r, (size_t)c->n * c->out);
}

static void test_linear_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 1);
    linear_case c = { .n = 3, .in = 5, .out = 4, .ldx = 7 };
    float x[3 * 7], W[5 * 4], b[4], y[3 * 4], r[3 * 4];
    float dx[3 * 7] = { 0 }, dW[5 * 4] = { 0 }, db[4] = { 0 };
    c.x = x, c.W = W, c.b = b, c.y = y, c.r = r;
    fill_random(x, 21, -1, 1, &rng);
    fill_random(W, 20, -1, 1, &rng);
    fill_random(b, 4, -1, 1, &rng);
    fill_random(r, 12, -1, 1, &rng);
    linear_loss(&c);
    /* forward against the definition */
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            double s = b[j];
            for (int k = 0; k < 5; k++) s += (double)x[i * 7 + k] * W[k * 4 + j];
            assert_true(fabs(s - y[i * 4 + j]) < 1e-5);
        }
    nn_linear_backward(dx, 7, dW, db, r, 4, x, 7, W, 3, 5, 4);
    check_gradient("x", linear_loss, &c, x, dx, 21, 100, 0, &rng);
    check_gradient("W", linear_loss, &c, W, dW, 20, 100, 0, &rng);
    check_gradient("b", linear_loss, &c, b, db, 4, 100, 0, &rng);
    for (int i = 0; i < 3; i++) /* the stride gap receives nothing */
        assert_true(dx[i * 7 + 5] == 0 && dx[i * 7 + 6] == 0);
}

/* nn_linear_rows: the definition, and a row's bits whatever the other rows
 * (7 rows: with AVX2 a tile of 4 and one of 3; 61 columns: with AVX-512 a
 * 48-wide tile and a masked one of 13, with AVX2 two 24-wide tiles, an
 * 8-wide one and a scalar tail; 300 products: blocks of 256 and 44).  */
static void test_linear_rows(void **state)
{
    (void)state;
    enum { N = 7, IN = 300, OUT = 61, LDX = 303 };
    sat_rng rng;
    sat_rng_seed(&rng, 2);
    float x[N * LDX], W[IN * OUT], b[OUT], y[N * OUT], one[OUT], plain[N * OUT];
    fill_random(x, N * LDX, -1, 1, &rng);
    fill_random(W, IN * OUT, -1, 1, &rng);
    fill_random(b, OUT, -1, 1, &rng);
    nn_linear_rows(y, OUT, x, LDX, W, b, N, IN, OUT);
    nn_linear_rows(plain, OUT, x, LDX, W, NULL, N, IN, OUT);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < OUT; j++) {
            double s = 0;
            for (int k = 0; k < IN; k++) s += (double)x[i * LDX + k] * W[k * OUT + j];
            assert_true(fabs(s - plain[i * OUT + j]) < 1e-5);
            assert_true(y[i * OUT + j] == b[j] + plain[i * OUT + j]);
        }
        nn_linear_rows(one, OUT, x + i * LDX, LDX, W, b, 1, IN, OUT);
        assert_memory_equal(one, y + i * OUT, sizeof one);
    }
}

/* nn_linear_rows_dx: dx += dy·Wᵀ against the definition, added to what dx
 * held, the stride gap untouched; with AVX-512, a row's bits whatever the
 * other rows (9 rows: tiles of 4, 4 and 1; 13 rows of W: tiles of 4 and
 * single rows; 2055 columns: slices of 1024, 1024 and 7, the last a scalar
 * tail). */
static void test_linear_rows_dx(void **state)
{
    (void)state;
    enum { N = 9, IN = 13, OUT = 2055, LDX = 15 };
    sat_rng rng;
    sat_rng_seed(&rng, 13);
    static float dy[N * OUT], W[IN * OUT], dx0[N * LDX], dx[N * LDX], one[LDX];
    fill_random(dy, N * OUT, -1, 1, &rng);
    fill_random(W, IN * OUT, -1, 1, &rng);
    fill_random(dx0, N * LDX, -1, 1, &rng);
    memcpy(dx, dx0, sizeof dx);
    nn_linear_rows_dx(dx, LDX, dy, OUT, W, N, IN, OUT);
    for (int r = 0; r < N; r++) {
        for (int i = 0; i < IN; i++) {
            double s = dx0[r * LDX + i];
            for (int j = 0; j < OUT; j++) s += (double)dy[r * OUT + j] * W[i * OUT + j];
            assert_true(fabs(s - dx[r * LDX + i]) < 1e-4);
        }
        for (int i = IN; i < LDX; i++) assert_true(dx[r * LDX + i] == dx0[r * LDX + i]);
        if (!nn_simd_avx512()) continue; /* OpenBLAS's rows may depend on each other */
        memcpy(one, dx0 + r * LDX, sizeof one);
        nn_linear_rows_dx(one, LDX, dy + r * OUT, OUT, W, 1, IN, OUT);
        assert_memory_equal(one, dx + r * LDX, sizeof one);
    }
}

/* nn_linear_rows_f16: the bits of nn_linear_rows on the weights converted,
 * from f16 bits at any alignment (one byte off here), with the vector paths
 * and without (9 rows: tiles of 8 and 1 with AVX-512; 109 columns: 48-wide
 * tiles and a masked one of 13 with AVX-512, with AVX2 24, 8 and a tail). */
static void test_linear_rows_f16(void **state)
{
    (void)state;
    enum { N = 9, IN = 300, OUT = 109 };
    sat_rng rng;
    sat_rng_seed(&rng, 5);
    static float x[N * IN], W[IN * OUT], b[OUT], want[N * OUT], got[N * OUT];
    static unsigned char bytes[2 * IN * OUT + 1];
    fill_random(x, N * IN, -1, 1, &rng);
    fill_random(W, IN * OUT, -1, 1, &rng);
    fill_random(b, OUT, -1, 1, &rng);
    for (int i = 0; i < IN * OUT; i++) {
        uint16_t h = sat_f32_to_f16(W[i]);
        W[i] = sat_f16_to_f32(h);
        memcpy(bytes + 1 + 2 * i, &h, sizeof h);
    }
    for (int simd = 1; simd >= 0; simd--) {
        int was = nn_use_simd(simd);
        for (int n = 1; n <= N; n += N - 1) {
            nn_linear_rows(want, OUT, x, IN, W, b, n, IN, OUT);
            nn_linear_rows_f16(got, OUT, x, IN, bytes + 1, b, n, IN, OUT);
            assert_memory_equal(got, want, (size_t)n * OUT * sizeof(float));
        }
        nn_use_simd(was);
    }
}

enum { AN = 3, AL = 4, AA = 19, AIMG = 2 }; /* A = 19: the 8-wide path twice and a tail */

typedef struct {
    float proj[AIMG * AL * AA], q[AN * AA], v[AA], e[AN * AL], r[AN * AL];
    int img[AN];
} attention_case;

static double attention_loss(void *p)
{
    attention_case *c = p;
    nn_attention_forward(c->e, c->proj, c->img, c->q, c->v, AN, AL, AA);
    return weighted_sum(c->e, c->r, AN * AL);
}

static void test_attention_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 2);
    attention_case c = { .img = { 0, 0, 1 } };
    fill_random(c.proj, AIMG * AL * AA, -2, 2, &rng);
    fill_random(c.q, AN * AA, -2, 2, &rng);
    fill_random(c.v, AA, -1, 1, &rng);
    fill_random(c.r, AN * AL, -1, 1, &rng);
    c.proj[5] = 12.0f; /* beyond the tanh approximation's clamp */
    attention_loss(&c);
    for (int n = 0; n < AN; n++)
        for (int i = 0; i < AL; i++) {
            double s = 0;
            for (int k = 0; k < AA; k++)
                s += c.v[k] * tanh((double)c.proj[(c.img[n] * AL + i) * AA + k] + c.q[n * AA + k]);
            assert_true(fabs(s - c.e[n * AL + i]) < 1e-5);
        }
    float dproj[AIMG * AL * AA] = { 0 }, dq[AN * AA] = { 0 }, dv[AA] = { 0 };
    nn_attention_backward(dproj, dq, dv, c.r, c.proj, c.img, c.q, c.v, AN, AL, AA);
    check_gradient("proj", attention_loss, &c, c.proj, dproj, AIMG * AL * AA, 1000, 0, &rng);
    check_gradient("q", attention_loss, &c, c.q, dq, AN * AA, 1000, 0, &rng);
    check_gradient("v", attention_loss, &c, c.v, dv, AA, 1000, 0, &rng);
}

typedef struct {
    float x[12], y[12], r[12];
} softmax_case;

static double softmax_loss(void *p)
{
    softmax_case *c = p;
    nn_softmax_forward(c->x, 3, 4, 1.0f, c->y);
    return weighted_sum(c->y, c->r, 12);
}

static void test_softmax_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 3);
    softmax_case c;
    fill_random(c.x, 12, -3, 3, &rng);
    fill_random(c.r, 12, -1, 1, &rng);
    softmax_loss(&c);
    for (int n = 0; n < 3; n++) {
        double s = 0;
        for (int i = 0; i < 4; i++) s += c.y[n * 4 + i];
        assert_true(fabs(s - 1) < 1e-6);
    }
    float dx[12];
    nn_softmax_backward(dx, c.r, c.y, 3, 4);
    check_gradient("x", softmax_loss, &c, c.x, dx, 12, 100, 0, &rng);
}

enum { CN = 3, CL = 5, CD = 6 };

typedef struct {
    float alpha[CN * CL], feats[2 * CL * CD], z[CN * CD], r[CN * CD];
    int img[CN];
} context_case;

static double context_loss(void *p)
{
    context_case *c = p;
    nn_context_forward(c->z, c->alpha, c->feats, c->img, CN, CL, CD);
    return weighted_sum(c->z, c->r, CN * CD);
}

static void test_context_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 4);
    context_case c = { .img = { 1, 1, 0 } };
    fill_random(c.alpha, CN * CL, 0, 1, &rng);
    fill_random(c.feats, 2 * CL * CD, -1, 1, &rng);
    fill_random(c.r, CN * CD, -1, 1, &rng);
    context_loss(&c);
    for (int n = 0; n < CN; n++)
        for (int d = 0; d < CD; d++) {
            double s = 0;
            for (int i = 0; i < CL; i++) s += c.alpha[n * CL + i] * c.feats[(c.img[n] * CL + i) * CD + d];
            assert_true(fabs(s - c.z[n * CD + d]) < 1e-5);
        }
    float dalpha[CN * CL] = { 0 };
    nn_context_backward(dalpha, c.r, c.feats, c.img, CN, CL, CD);
    check_gradient("alpha", context_loss, &c, c.alpha, dalpha, CN * CL, 100, 0, &rng);
}

enum { GN = 3, GH = 4, GD = 5, GLD = 8 };

typedef struct {
    float h[GN * GH], w[GH], b[1], z[GN * GD], beta[GN], zhat[GN * GLD], r[GN * GLD];
} gate_case;

static double gate_loss(void *p)
{
    gate_case *c = p;
    nn_gate_forward(c->beta, c->zhat, GLD, c->h, c->w, c->b, c->z, GN, GH, GD);
    double s = 0;
    for (int n = 0; n < GN; n++) s += weighted_sum(c->zhat + n * GLD, c->r + n * GLD, GD);
    return s;
}

static void test_gate_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 5);
    gate_case c;
    fill_random(c.h, GN * GH, -1, 1, &rng);
    fill_random(c.w, GH, -1, 1, &rng);
    fill_random(c.b, 1, -1, 1, &rng);
    fill_random(c.z, GN * GD, -1, 1, &rng);
    fill_random(c.r, GN * GLD, -1, 1, &rng);
    gate_loss(&c);
    for (int n = 0; n < GN; n++) {
        double s = c.b[0];
        for (int j = 0; j < GH; j++) s += c.h[n * GH + j] * c.w[j];
        assert_true(fabs(1 / (1 + exp(-s)) - c.beta[n]) < 1e-6);
    }
    float dh[GN * GH] = { 0 }, dw[GH] = { 0 }, db[1] = { 0 }, dz[GN * GD] = { 0 };
    nn_gate_backward(dh, dw, db, dz, c.r, GLD, c.beta, c.h, c.w, c.z, GN, GH, GD);
    check_gradient("h", gate_loss, &c, c.h, dh, GN * GH, 100, 0, &rng);
    check_gradient("w", gate_loss, &c, c.w, dw, GH, 100, 0, &rng);
    check_gradient("b", gate_loss, &c, c.b, db, 1, 100, 0, &rng);
    check_gradient("z", gate_loss, &c, c.z, dz, GN * GD, 100, 0, &rng);
}

enum { LN = 2, LH = 11 }; /* 3H = 33 and H = 11: vector path and tail */

typedef struct {
    float pre[LN * 4 * LH], c_prev[LN * LH], gates[LN * 4 * LH], c[LN * LH], h[LN * LH];
    float rh[LN * LH], rc[LN * LH];
} lstm_case;

static double lstm_loss(void *p)
{
    lstm_case *k = p;
    memcpy(k->gates, k->pre, sizeof k->pre);
    nn_lstm_forward(k->gates, k->c, k->h, k->c_prev, LN, LH);
    return weighted_sum(k->h, k->rh, LN * LH) + weighted_sum(k->c, k->rc, LN * LH);
}

static void test_lstm_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 6);
    lstm_case k;
    fill_random(k.pre, LN * 4 * LH, -2, 2, &rng);
    fill_random(k.c_prev, LN * LH, -1, 1, &rng);
    fill_random(k.rh, LN * LH, -1, 1, &rng);
    fill_random(k.rc, LN * LH, -1, 1, &rng);
    lstm_loss(&k);
    for (int n = 0; n < LN; n++) /* against the equations */
        for (int j = 0; j < LH; j++) {
            const float *p = k.pre + n * 4 * LH;
            double i = 1 / (1 + exp(-p[j])), f = 1 / (1 + exp(-p[LH + j]));
            double o = 1 / (1 + exp(-p[2 * LH + j])), g = tanh(p[3 * LH + j]);
            double c = f * k.c_prev[n * LH + j] + i * g;
            assert_true(fabs(c - k.c[n * LH + j]) < 1e-6);
            assert_true(fabs(o * tanh(c) - k.h[n * LH + j]) < 1e-6);
        }
    float dgates[LN * 4 * LH], dc[LN * LH];
    memcpy(dc, k.rc, sizeof dc);
    nn_lstm_backward(dgates, dc, k.rh, dc, k.gates, k.c, k.c_prev, LN, LH); /* dc_prev in place */
    check_gradient("gates", lstm_loss, &k, k.pre, dgates, LN * 4 * LH, 100, 0, &rng);
    check_gradient("c_prev", lstm_loss, &k, k.c_prev, dc, LN * LH, 100, 0, &rng);
}

typedef struct {
    float logits[3 * 7], probs[3 * 7];
    double row_loss[3];
    int target[3];
} xent_case;

static double xent_loss(void *p)
{
    xent_case *c = p;
    memcpy(c->probs, c->logits, sizeof c->logits);
    return nn_softmax_xent_forward(c->probs, c->target, 3, 7, c->row_loss);
}

static void test_softmax_xent_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 7);
    xent_case c = { .target = { 2, -1, 6 } };
    fill_random(c.logits, 21, -3, 3, &rng);
    double loss = xent_loss(&c);
    double want = 0;
    for (int n = 0; n < 3; n += 2) {
        double z = 0;
        for (int i = 0; i < 7; i++) z += exp(c.logits[n * 7 + i]);
        want += log(z) - c.logits[n * 7 + c.target[n]];
    }
    assert_true(fabs(loss - want) < 1e-5);
    assert_true(c.row_loss[1] == 0 && c.row_loss[0] + c.row_loss[2] == loss); /* each row's term */
    float d[21];
    nn_softmax_xent_backward(d, c.probs, c.target, 1.0f, 3, 7);
    for (int i = 0; i < 7; i++) assert_true(d[7 + i] == 0); /* skipped row */
    check_gradient("logits", xent_loss, &c, c.logits, d, 21, 100, 0, &rng);
}


/* y += x·W: on rows holding b, the same bits as nn_linear_forward with b
 * (one GEMM either way), and the definition. */
static void test_linear_add(void **state)
{
    (void)state;
    enum { N = 5, IN = 9, OUT = 13, LDX = 11, LDY = 15 };
    sat_rng rng;
    sat_rng_seed(&rng, 8);
    float x[N * LDX], W[IN * OUT], b[OUT], y[N * LDY], want[N * LDY];
    fill_random(x, N * LDX, -1, 1, &rng);
    fill_random(W, IN * OUT, -1, 1, &rng);
    fill_random(b, OUT, -1, 1, &rng);
    fill_random(y, N * LDY, -1, 1, &rng);
    memcpy(want, y, sizeof y);
    for (int i = 0; i < N; i++) memcpy(y + i * LDY, b, sizeof b);
    nn_linear_add(y, LDY, x, LDX, W, N, IN, OUT);
    nn_linear_forward(want, LDY, x, LDX, W, b, N, IN, OUT);
    assert_memory_equal(y, want, sizeof y); /* the gaps between rows too */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < OUT; j++) {
            double s = b[j];
            for (int k = 0; k < IN; k++) s += (double)x[i * LDX + k] * W[k * OUT + j];
            assert_true(fabs(s - y[i * LDY + j]) < 1e-5);
        }
}

typedef struct {
    float x[37], y[37], r[37];
} tanh_case;

static double tanh_loss(void *p)
{
    tanh_case *c = p;
    nn_tanh_forward(c->y, c->x, 37);
    return weighted_sum(c->y, c->r, 37);
}

/* 37 = four blocks of 8 and a tail; inputs past the vector path's clamp. */
static void test_tanh_layer(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 9);
    tanh_case c;
    fill_random(c.x, 37, -4, 4, &rng);
    fill_random(c.r, 37, -1, 1, &rng);
    c.x[3] = 9.0f, c.x[12] = -30.0f;
    tanh_loss(&c);
    for (int i = 0; i < 37; i++) assert_true(fabs(tanh((double)c.x[i]) - c.y[i]) < 1e-6);
    float dx[37];
    nn_tanh_backward(dx, c.r, c.y, 37);
    check_gradient("x", tanh_loss, &c, c.x, dx, 37, 100, 0, &rng);
    memcpy(dx, c.r, sizeof dx);
    nn_tanh_backward(dx, dx, c.y, 37); /* in place */
    for (int i = 0; i < 37; i++) assert_true(dx[i] == c.r[i] * (1.0f - c.y[i] * c.y[i]));
}

static void test_log_softmax(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 10);
    float x[3 * 11], y[3 * 11];
    fill_random(x, 3 * 11, -5, 5, &rng);
    x[4] = 200; /* large logits must not overflow */
    memcpy(y, x, sizeof x);
    nn_log_softmax_forward(y, 3, 11);
    for (int r = 0; r < 3; r++) {
        double max = -INFINITY, sum = 0;
        for (int i = 0; i < 11; i++) max = fmax(max, x[r * 11 + i]);
        for (int i = 0; i < 11; i++) sum += exp(x[r * 11 + i] - max);
        for (int i = 0; i < 11; i++)
            assert_true(fabs(x[r * 11 + i] - max - log(sum) - y[r * 11 + i]) < 1e-5);
    }
}

static void test_softmax(void **state)
{
    (void)state;
    sat_rng rng;
    sat_rng_seed(&rng, 11);
    static const float betas[] = {-2.0f, 0.5f, 1.0f}; /* beta 1 last */
    enum { ROWS = 3, N = 1001 };
    static float in[ROWS * N], out[ROWS * N];
    fill_random(in, ROWS * N, -20, 20, &rng);
    in[5] = 1000; /* large logits must not overflow */
    for (int b = 0; b < 3; b++) {
        nn_softmax_forward(in, ROWS, N, betas[b], out);
        for (int r = 0; r < ROWS; r++) {
            const float *x = in + (size_t)r * N;
            double max = -INFINITY, sum = 0, got_sum = 0;
            for (int i = 0; i < N; i++) max = fmax(max, betas[b] * (double)x[i]);
            for (int i = 0; i < N; i++) sum += exp(betas[b] * (double)x[i] - max);
            for (int i = 0; i < N; i++) {
                double want = exp(betas[b] * (double)x[i] - max) / sum;
                assert_float_equal(out[(size_t)r * N + i], want, 1e-6 + 1e-4 * want);
                got_sum += out[(size_t)r * N + i];
            }
            assert_float_equal(got_sum, 1.0, 1e-5);
        }
    }
    assert_float_equal(out[5], 1.0, 1e-6); /* beta 1: the 1000 logit wins */
    nn_softmax_forward(in, ROWS, N, 1.0f, in); /* in place */
    assert_float_equal(in[5], 1.0, 1e-6);
}

/* The switch reaches the vector paths: off, the tanh is tanhf's to the bit;
 * on, with AVX2, it is the rational approximation, which differs somewhere.
 * nn_linear_rows gives the same bits either way (one FMA chain per element). */
static void test_simd_switch(void **state)
{
    (void)state;
    enum { N = 1000, ROWS = 3, IN = 70, OUT = 61 };
    sat_rng rng;
    sat_rng_seed(&rng, 12);
    static float x[N], y[N], a[ROWS * IN], W[IN * OUT], on[ROWS * OUT], off[ROWS * OUT];
    fill_random(x, N, -5, 5, &rng);
    fill_random(a, ROWS * IN, -1, 1, &rng);
    fill_random(W, IN * OUT, -1, 1, &rng);
    assert_int_equal(nn_use_simd(0), 1);
    assert_false(nn_simd_avx2() || nn_simd_avx512() || nn_simd_f16c());
    nn_tanh_forward(y, x, N);
    for (int i = 0; i < N; i++) assert_true(y[i] == tanhf(x[i]));
    nn_linear_rows(off, OUT, a, IN, W, NULL, ROWS, IN, OUT);
    assert_int_equal(nn_use_simd(1), 0);
    nn_linear_rows(on, OUT, a, IN, W, NULL, ROWS, IN, OUT);
    assert_memory_equal(on, off, sizeof on);
    assert_int_equal(nn_simd_avx2(), __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
    if (!nn_simd_avx2()) return; /* nothing else to tell apart */
    nn_tanh_forward(y, x, N);
    int differ = 0;
    for (int i = 0; i < N; i++) differ += y[i] != tanhf(x[i]);
    assert_true(differ > 0);
}

int main(void)
{
    const struct CMUnitTest layers[] = {
        cmocka_unit_test(test_linear_layer),
        cmocka_unit_test(test_linear_add),
        cmocka_unit_test(test_linear_rows),
        cmocka_unit_test(test_linear_rows_f16),
        cmocka_unit_test(test_linear_rows_dx),
        cmocka_unit_test(test_tanh_layer),
        cmocka_unit_test(test_attention_layer),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_softmax_layer),
        cmocka_unit_test(test_log_softmax),
        cmocka_unit_test(test_context_layer),
        cmocka_unit_test(test_gate_layer),
        cmocka_unit_test(test_lstm_layer),
        cmocka_unit_test(test_softmax_xent_layer),
    };
    const struct CMUnitTest switch_tests[] = {
        cmocka_unit_test(test_simd_switch),
    };
    return run_tests_simd_on_and_off(layers) + cmocka_run_group_tests(switch_tests, NULL, NULL);
}
