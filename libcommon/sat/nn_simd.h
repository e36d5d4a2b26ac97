/* nn_simd.h — the one switch over every SIMD path of libsat.
 *
 * The vector kernels (AVX2/FMA in nn.c and nn_layers.c, AVX-512 in
 * nn_linear_rows, F16C in half.c and nn_linear_rows_f16) are compiled with
 * target attributes, so no -mavx2 is needed, and each asks here at run time
 * whether to take its vector path: the CPU must have the instructions and the
 * switch must be on.
 * Every such path has a portable C twin; the tests turn the switch off to
 * check those against the same references and gradients.
 */
#ifndef SAT_NN_SIMD_H
#define SAT_NN_SIMD_H

/* on = 0 forces the portable C paths everywhere; on = 1 (the default) lets
 * each kernel use what the CPU has.  Returns the previous setting.  Not
 * thread-safe: call it before starting threads. */
int nn_use_simd(int on);

/* Whether to take a vector path of each kind: the switch is on and the CPU
 * has the instructions. */
int nn_simd_avx2(void);   /* AVX2 and FMA */
int nn_simd_avx512(void); /* AVX-512F, besides AVX2 and FMA */
int nn_simd_f16c(void);   /* F16C, and AVX for the 256-bit stores */

#endif
