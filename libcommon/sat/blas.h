/* blas.h — OpenBLAS's kernels chosen for this CPU.
 *
 * OpenBLAS built for many CPUs (Debian's DYNAMIC_ARCH library) picks its
 * kernels at load time by the CPU's model number.  Releases before 0.3.25
 * fall back to their slowest x86-64 kernels ("Prescott", SSE3) on Intel
 * models they do not know (OpenBLAS issue 4267), e.g. Emerald Rapids
 * (family 6, model 207), where Debian 12's 0.3.21 runs sgemm at a fifth of
 * the speed of its AVX-512 kernels.  sat_blas_init, called by sat_init
 * before any BLAS call, then chooses the kernels by the CPU's features, as
 * OPENBLAS_CORETYPE would; a user's own OPENBLAS_CORETYPE is left alone.
 *
 * It also leaves OpenBLAS with one thread, its others stopped, unless
 * OPENBLAS_NUM_THREADS or OMP_NUM_THREADS says otherwise: a program that
 * wants more asks with sat_blas_threads.
 */
#ifndef SAT_BLAS_H
#define SAT_BLAS_H

void sat_blas_init(void);
/* OpenBLAS's threads: n.  Nothing when it has n already, because
 * openblas_set_num_threads starts its stopped threads again even for the
 * number it has, and they spin (sched_yield) for a tenth of a second. */
void sat_blas_threads(int n);
/* The kernels in use ("SkylakeX", "Haswell", ...; "none" without OpenBLAS). */
const char *sat_blas_core(void);

#endif
