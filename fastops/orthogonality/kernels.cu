// fastops orthogonality family: CUDA C kernels (loaded by gpu.py through cupy.RawModule).
//
// The memory-bound passes around the GEMMs of the orthogonality penalties (see
// BACKEND_INTERFACE.md for the math). T (what is stored) is float or double; every sum is
// accumulated in double and every per-element result is computed in double and rounded once
// to T. Three launch shapes:
//   flat     gram_reduce: grid (B * nsplit), block b / nsplit walks its share (vectors
//            k = split * blockDim + tid, step nsplit * blockDim) of matrix b as one flat array
//            of m * m elements, in 16-byte vectors where the matrix is aligned.
//   columns  column_sqnorms, offdiag_correct, som_normalize_colnorms, som_backward_dot,
//            som_backward on (B, R, K) arrays: grid (B * col_blocks, rsplit), one thread per
//            column (consecutive threads on consecutive columns: coalesced), looping over the
//            rows [y * chunk, (y + 1) * chunk) of its batch entry. Reductions write one partial
//            per (b, y, column) to part (B, rsplit, K); gpu.py sums over rsplit with cupy.
//   rows     som_normalize, normalize_rows(_apply) on rows of length L: tpr threads per row (a
//            power of two <= 32 with several rows per block, or tpr == blockDim), grid-stride
//            over the rows in x, and gridDim.y splits of each row (thread g of a row takes
//            elements g, g + G, ... with g = y * tpr + lane, G = gridDim.y * tpr). Row sums
//            are written as one partial per (row, y) to part (rows, gridDim.y).
// Every reduction is deterministic: fixed per-thread order, xor butterflies (a + b == b + a, so
// every lane ends with the same bits) and per-warp partials merged in warp order; no atomics.
//
// Header-free on purpose: NVRTC (what CuPy compiles with) ships no C library headers; libm device
// functions (tanh, tanhf, sqrt, fma) are built in. Never compile with --use_fast_math: tanhf
// must be the accurate one and NaN / inf must propagate through IEEE arithmetic.
//
// gpu.py compiles one module per (op, dtype) (see "Selection" at the end of this file).

#define FO_FULL_MASK 0xffffffffu
// Largest block gpu.py launches, and at least 4 such blocks per SM: caps registers at 64 per
// thread (the double arithmetic needs more than the 32 that 8 blocks would allow).
#define FO_MAX_THREADS 256
#define FO_MIN_BLOCKS 4
#define FO_LAUNCH __launch_bounds__(FO_MAX_THREADS, FO_MIN_BLOCKS)
#define FO_WARPS (FO_MAX_THREADS / 32)

// gram_reduce's diag argument (gpu.py _DIAG maps the interface's strings to these).
#define FO_DIAG_KEEP 0
#define FO_DIAG_ZERO 1
#define FO_DIAG_MINUS_ONE 2

// ---------------------------------------------------------------------------------------------
// Scalar helpers.

// tanh(gamma * y) of the SOM, as double. float32: the product is rounded once to float and the
// accurate tanhf (<= 2 ulp) is used; float64: tanh of the double product. The forward passes
// (column norms, then Yhat) call this same function, so they agree bit for bit.
__device__ __forceinline__ double fo_act(float y, double gamma) {
  return (double)tanhf((float)(gamma * (double)y));
}
__device__ __forceinline__ double fo_act(double y, double gamma) { return tanh(gamma * y); }

// max(v, eps) that keeps a NaN v (as NumPy's maximum does): NaN columns / rows stay NaN.
__device__ __forceinline__ double fo_floor_eps(double v, double eps) { return v < eps ? eps : v; }

__device__ __forceinline__ long long fo_min(long long a, long long b) { return a < b ? a : b; }

// Sum v over aligned groups of tpr threads (tpr a power of two <= 32, or tpr == blockDim, a
// multiple of 32 up to FO_MAX_THREADS); every thread of the group gets the sum. All threads of
// the block must call it (shuffles use the full mask; tpr == blockDim has barriers).
__device__ __forceinline__ double fo_group_sum(double v, int tpr, double* sm) {
  const int w = tpr < 32 ? tpr : 32;
  for (int off = w >> 1; off > 0; off >>= 1) v += __shfl_xor_sync(FO_FULL_MASK, v, off);
  if (tpr > 32) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) sm[warp] = v;
    __syncthreads();
    v = sm[0];
    for (int i = 1; i < nw; ++i) v += sm[i];
    __syncthreads();  // sm is reused by the next call
  }
  return v;
}

template <typename T> union FoPack {
  uint4 u;
  T e[16 / sizeof(T)];
};

// ---------------------------------------------------------------------------------------------
// gram_reduce: flat shape. Element j of an m x m matrix is on the diagonal iff j % (m + 1) == 0.
// The vector loop keeps q = (first element of the vector) % (m + 1) up to date by adding the
// constant step (nt * V) % (m + 1), so no division runs per element. Within a vector, element
// e is diagonal iff q + e is 0 or m + 1 (q <= m and e <= V - 1 <= 3, and a vector exists only
// when m * m >= V, i.e. m >= 2, so q + e < 2 (m + 1)).

template <typename T, bool WRITE>
__device__ __forceinline__ void gram_reduce_body(T* __restrict__ gall, long long m, int diag,
                                                 const double* __restrict__ scale, int nsplit,
                                                 long long nb, double* __restrict__ part) {
  __shared__ double sm[FO_WARPS];
  constexpr int V = 16 / sizeof(T);
  const long long b = blockIdx.x / nsplit;
  const int split = (int)(blockIdx.x - b * nsplit);
  const long long N = m * m, mp1 = m + 1;
  T* __restrict__ g = gall + b * N;
  const double s = WRITE ? scale[b] : 0.0;
  const long long t = (long long)split * blockDim.x + threadIdx.x;
  const long long nt = (long long)nsplit * blockDim.x;
  double ss = 0.0, tot = 0.0;

  // One element: accumulate A's entry and return scale * A's entry rounded once to T.
  // minus_one on the diagonal: fma(s, x, -s) is s * (x - 1) with a single rounding.
  auto one = [&](T x, bool on_diag) -> T {
    const double v = (double)x;
    double a = v;
    if (on_diag && diag == FO_DIAG_MINUS_ONE) a = v - 1.0;
    if (on_diag && diag == FO_DIAG_ZERO) a = 0.0;
    ss = fma(a, a, ss);
    tot += a;
    if constexpr (WRITE) {
      return (T)((on_diag && diag == FO_DIAG_MINUS_ONE) ? fma(s, v, -s) : s * a);
    } else {
      return x;
    }
  };

  // 16-byte vectors need the matrix at an address that is a multiple of sizeof(T): then a scalar
  // head of < V elements reaches 16-byte alignment. Otherwise everything goes scalar.
  const unsigned long long ra = reinterpret_cast<unsigned long long>(g) & 15ull;
  long long head = (ra % sizeof(T)) == 0 ? (long long)(((16ull - ra) & 15ull) / sizeof(T)) : N;
  if (head > N) head = N;
  const long long nvec = (N - head) / V;
  const long long tail = head + nvec * V;

  auto scalar = [&](long long j) {
    const T w = one(WRITE ? g[j] : __ldg(g + j), j % mp1 == 0);
    if constexpr (WRITE) g[j] = w;
  };

  for (long long j = t; j < head; j += nt) scalar(j);
  if (t < nvec) {
    long long q = (head + t * V) % mp1;
    const long long qstep = (nt * V) % mp1;
#pragma unroll 2
    for (long long k = t; k < nvec; k += nt) {
      uint4* p = reinterpret_cast<uint4*>(g + head + k * V);
      FoPack<T> pk;
      pk.u = WRITE ? *p : __ldg(p);
#pragma unroll
      for (int e = 0; e < V; ++e) {
        const long long qe = q + e;
        pk.e[e] = one(pk.e[e], qe == 0 || qe == mp1);
      }
      if constexpr (WRITE) *p = pk.u;
      q += qstep;
      if (q >= mp1) q -= mp1;
    }
  }
  for (long long j = tail + t; j < N; j += nt) scalar(j);

  ss = fo_group_sum(ss, (int)blockDim.x, sm);
  tot = fo_group_sum(tot, (int)blockDim.x, sm);
  if (threadIdx.x == 0) {
    part[b * nsplit + split] = ss;           // part[0][b][split]
    part[(nb + b) * nsplit + split] = tot;   // part[1][b][split]
  }
}

// ---------------------------------------------------------------------------------------------
// Column shape on (B, R, K): this thread's batch entry, column and row range.

struct FoCol {
  long long b, i, r0, r1;
  bool active;
};

__device__ __forceinline__ FoCol fo_col(long long R, long long K, long long chunk,
                                        int col_blocks) {
  FoCol c;
  c.b = blockIdx.x / col_blocks;
  c.i = (long long)(blockIdx.x - c.b * col_blocks) * blockDim.x + threadIdx.x;
  c.active = c.i < K;
  c.r0 = (long long)blockIdx.y * chunk;
  c.r1 = fo_min(c.r0 + chunk, R);
  return c;
}

// c[b, i] partial: sum over the chunk's rows of W[b, r, i]^2.
template <typename T>
__device__ __forceinline__ void column_sqnorms_body(const T* __restrict__ w, long long d,
                                                    long long k, long long chunk, int col_blocks,
                                                    double* __restrict__ part) {
  const FoCol c = fo_col(d, k, chunk, col_blocks);
  if (!c.active) return;
  const T* p = w + (c.b * d + c.r0) * k + c.i;
  double acc = 0.0;
#pragma unroll 4
  for (long long r = c.r0; r < c.r1; ++r, p += k) {
    const double v = (double)__ldg(p);
    acc = fma(v, v, acc);
  }
  part[(c.b * gridDim.y + blockIdx.y) * k + c.i] = acc;
}

// grad[b, r, i] -= coef[b, i] * W[b, r, i]: fma rounds the double product-and-difference once.
template <typename T>
__device__ __forceinline__ void offdiag_correct_body(T* __restrict__ grad,
                                                     const T* __restrict__ w,
                                                     const double* __restrict__ coef, long long d,
                                                     long long k, long long chunk,
                                                     int col_blocks) {
  const FoCol c = fo_col(d, k, chunk, col_blocks);
  if (!c.active) return;
  const double cf = coef[c.b * k + c.i];
  const long long off = (c.b * d + c.r0) * k + c.i;
  T* pg = grad + off;
  const T* pw = w + off;
#pragma unroll 4
  for (long long r = c.r0; r < c.r1; ++r, pg += k, pw += k) {
    *pg = (T)fma(-cf, (double)__ldg(pw), (double)*pg);
  }
}

// som_normalize pass 1: partial of sum over rows a of tanh(gamma * Y[b, a, i])^2.
template <typename T>
__device__ __forceinline__ void som_colnorms_body(const T* __restrict__ y, double gamma,
                                                  long long n, long long k, long long chunk,
                                                  int col_blocks, double* __restrict__ part) {
  const FoCol c = fo_col(n, k, chunk, col_blocks);
  if (!c.active) return;
  const T* p = y + (c.b * n + c.r0) * k + c.i;
  double acc = 0.0;
#pragma unroll 4
  for (long long r = c.r0; r < c.r1; ++r, p += k) {
    const double v = fo_act(__ldg(p), gamma);
    acc = fma(v, v, acc);
  }
  part[(c.b * gridDim.y + blockIdx.y) * k + c.i] = acc;
}

// Ybar of som_backward (both passes use this function, so they agree).
__device__ __forceinline__ double fo_ybar(double yh, double p, double rs, double dg, double c1,
                                          double c2) {
  return c1 * (rs - yh) + c2 * (p - yh * dg);
}

// som_backward pass 1: partial of dot[b, i] = sum over rows a of Yhat * Ybar.
template <typename T>
__device__ __forceinline__ void som_backward_dot_body(
    const T* __restrict__ yhat, const T* __restrict__ pm, const double* __restrict__ rowsum,
    const double* __restrict__ diag, const double* __restrict__ c1,
    const double* __restrict__ c2, long long n, long long k, long long chunk, int col_blocks,
    double* __restrict__ part) {
  const FoCol c = fo_col(n, k, chunk, col_blocks);
  if (!c.active) return;
  const double c1b = c1[c.b], c2b = c2[c.b], dg = diag[c.b * k + c.i];
  const long long off = (c.b * n + c.r0) * k + c.i;
  const T* py = yhat + off;
  const T* pp = pm + off;
  const double* rs = rowsum + c.b * n;
  double acc = 0.0;
#pragma unroll 4
  for (long long r = c.r0; r < c.r1; ++r, py += k, pp += k) {
    const double yh = (double)__ldg(py);
    acc = fma(yh, fo_ybar(yh, (double)__ldg(pp), __ldg(rs + r), dg, c1b, c2b), acc);
  }
  part[(c.b * gridDim.y + blockIdx.y) * k + c.i] = acc;
}

// som_backward pass 2: dY into P's buffer (each element read, then written, by one thread).
// norms <= eps: 0 (dead column). A NaN norm fails that test and propagates through the formula.
template <typename T>
__device__ __forceinline__ void som_backward_body(
    const T* __restrict__ yhat, T* __restrict__ pm, const double* __restrict__ rowsum,
    const double* __restrict__ diag, const double* __restrict__ norms,
    const double* __restrict__ c1, const double* __restrict__ c2,
    const double* __restrict__ dot, double gamma, double eps, long long n, long long k,
    long long chunk, int col_blocks) {
  const FoCol c = fo_col(n, k, chunk, col_blocks);
  if (!c.active) return;
  const long long bi = c.b * k + c.i;
  const double c1b = c1[c.b], c2b = c2[c.b], dg = diag[bi], nrm = norms[bi], dt = dot[bi];
  const bool dead = nrm <= eps;
  const long long off = (c.b * n + c.r0) * k + c.i;
  const T* py = yhat + off;
  T* pp = pm + off;
  const double* rs = rowsum + c.b * n;
#pragma unroll 4
  for (long long r = c.r0; r < c.r1; ++r, py += k, pp += k) {
    double dy = 0.0;
    if (!dead) {
      const double yh = (double)__ldg(py);
      const double ybar = fo_ybar(yh, (double)*pp, __ldg(rs + r), dg, c1b, c2b);
      const double tbar = (ybar - yh * dt) / nrm;
      const double tt = yh * nrm;  // the tanh value
      dy = gamma * (1.0 - tt * tt) * tbar;
    }
    *pp = (T)dy;
  }
}

// ---------------------------------------------------------------------------------------------
// Row shape: f(row, active, g, G, lane) once per row of the thread's group; the loop bound is
// uniform per block, so every thread reaches every fo_group_sum (inactive rows sum zeros).

template <class F>
__device__ __forceinline__ void fo_rows(long long rows, int tpr, F&& f) {
  const int rpb = blockDim.x / tpr;
  const int sub = threadIdx.x / tpr;
  const int lane = threadIdx.x - sub * tpr;
  const long long g = (long long)blockIdx.y * tpr + lane;
  const long long G = (long long)gridDim.y * tpr;
  const long long step = (long long)gridDim.x * rpb;
  for (long long base = (long long)blockIdx.x * rpb; base < rows; base += step) {
    const long long row = base + sub;
    f(row, row < rows, g, G, lane);
  }
}

// som_normalize pass 2 on the rows (b, a) of length k: Yhat = tanh(gamma Y) / max(norm, eps),
// and the partial sums of the stored (rounded) Yhat into part[row][y].
template <typename T>
__device__ __forceinline__ void som_normalize_body(const T* __restrict__ y, double gamma,
                                                   const double* __restrict__ norms, double eps,
                                                   long long rows, long long n, long long k,
                                                   int tpr, T* __restrict__ yhat,
                                                   double* __restrict__ part) {
  __shared__ double sm[FO_WARPS];
  fo_rows(rows, tpr, [&](long long row, bool active, long long g, long long G, int lane) {
    double acc = 0.0;
    if (active) {
      const T* yr = y + row * k;
      T* hr = yhat + row * k;
      const double* nr = norms + (row / n) * k;
      for (long long j = g; j < k; j += G) {
        const T o = (T)(fo_act(__ldg(yr + j), gamma) / fo_floor_eps(__ldg(nr + j), eps));
        hr[j] = o;
        acc += (double)o;
      }
    }
    acc = fo_group_sum(acc, tpr, sm);
    if (active && lane == 0) part[row * gridDim.y + blockIdx.y] = acc;
  });
}

// normalize_rows. part null (gridDim.y == 1): the group has the whole row's sum of squares and
// writes norms[row] and Vn (the row is re-read from L1/L2). part given: only the partial sums
// of squares; gpu.py finishes the norms and launches normalize_rows_apply.
template <typename T>
__device__ __forceinline__ void normalize_rows_body(const T* __restrict__ v, double eps,
                                                    long long rows, long long c, int tpr,
                                                    double* __restrict__ norms,
                                                    T* __restrict__ vn,
                                                    double* __restrict__ part) {
  __shared__ double sm[FO_WARPS];
  fo_rows(rows, tpr, [&](long long row, bool active, long long g, long long G, int lane) {
    const T* vr = v + row * c;
    double acc = 0.0;
    if (active) {
      for (long long j = g; j < c; j += G) {
        const double x = (double)__ldg(vr + j);
        acc = fma(x, x, acc);
      }
    }
    acc = fo_group_sum(acc, tpr, sm);
    if (!active) return;
    if (part) {
      if (lane == 0) part[row * gridDim.y + blockIdx.y] = acc;
      return;
    }
    const double nrm = sqrt(acc);
    if (lane == 0) norms[row] = nrm;
    const double den = fo_floor_eps(nrm, eps);
    T* outr = vn + row * c;
    for (long long j = g; j < c; j += G) outr[j] = (T)((double)__ldg(vr + j) / den);
  });
}

template <typename T>
__device__ __forceinline__ void normalize_rows_apply_body(const T* __restrict__ v, double eps,
                                                          const double* __restrict__ norms,
                                                          long long rows, long long c, int tpr,
                                                          T* __restrict__ vn) {
  fo_rows(rows, tpr, [&](long long row, bool active, long long g, long long G, int) {
    if (!active) return;
    const double den = fo_floor_eps(norms[row], eps);
    const T* vr = v + row * c;
    T* outr = vn + row * c;
    for (long long j = g; j < c; j += G) outr[j] = (T)((double)__ldg(vr + j) / den);
  });
}

// ---------------------------------------------------------------------------------------------
// extern "C" entry points fastops_<op>[_<shape>]_<dtype>. The argument lists are the contract
// with gpu.py (same order there).

#define FO_GRAM_REDUCE(T, DT)                                                                    \
  extern "C" __global__ void FO_LAUNCH fastops_gram_reduce_##DT(                                 \
      T* g, long long m, int diag, const double* scale, int nsplit, long long nb, double* part) { \
    if (scale)                                                                                   \
      gram_reduce_body<T, true>(g, m, diag, scale, nsplit, nb, part);                            \
    else                                                                                         \
      gram_reduce_body<T, false>(g, m, diag, scale, nsplit, nb, part);                           \
  }

#define FO_COLUMN_SQNORMS(T, DT)                                                                 \
  extern "C" __global__ void FO_LAUNCH fastops_column_sqnorms_##DT(                              \
      const T* w, long long d, long long k, long long chunk, int col_blocks, double* part) {     \
    column_sqnorms_body<T>(w, d, k, chunk, col_blocks, part);                                    \
  }

#define FO_OFFDIAG_CORRECT(T, DT)                                                                \
  extern "C" __global__ void FO_LAUNCH fastops_offdiag_correct_##DT(                             \
      T* grad, const T* w, const double* coef, long long d, long long k, long long chunk,        \
      int col_blocks) {                                                                          \
    offdiag_correct_body<T>(grad, w, coef, d, k, chunk, col_blocks);                             \
  }

#define FO_SOM_NORMALIZE(T, DT)                                                                  \
  extern "C" __global__ void FO_LAUNCH fastops_som_normalize_colnorms_##DT(                      \
      const T* y, double gamma, long long n, long long k, long long chunk, int col_blocks,       \
      double* part) {                                                                            \
    som_colnorms_body<T>(y, gamma, n, k, chunk, col_blocks, part);                               \
  }                                                                                              \
  extern "C" __global__ void FO_LAUNCH fastops_som_normalize_##DT(                               \
      const T* y, double gamma, const double* norms, double eps, long long rows, long long n,    \
      long long k, int tpr, T* yhat, double* part) {                                             \
    som_normalize_body<T>(y, gamma, norms, eps, rows, n, k, tpr, yhat, part);                    \
  }

#define FO_SOM_BACKWARD(T, DT)                                                                   \
  extern "C" __global__ void FO_LAUNCH fastops_som_backward_dot_##DT(                            \
      const T* yhat, const T* p, const double* rowsum, const double* diag, const double* c1,     \
      const double* c2, long long n, long long k, long long chunk, int col_blocks,               \
      double* part) {                                                                            \
    som_backward_dot_body<T>(yhat, p, rowsum, diag, c1, c2, n, k, chunk, col_blocks, part);      \
  }                                                                                              \
  extern "C" __global__ void FO_LAUNCH fastops_som_backward_##DT(                                \
      const T* yhat, T* p, const double* rowsum, const double* diag, const double* norms,        \
      const double* c1, const double* c2, const double* dot, double gamma, double eps,           \
      long long n, long long k, long long chunk, int col_blocks) {                               \
    som_backward_body<T>(yhat, p, rowsum, diag, norms, c1, c2, dot, gamma, eps, n, k, chunk,     \
                         col_blocks);                                                            \
  }

#define FO_NORMALIZE_ROWS(T, DT)                                                                 \
  extern "C" __global__ void FO_LAUNCH fastops_normalize_rows_##DT(                              \
      const T* v, double eps, long long rows, long long c, int tpr, double* norms, T* vn,        \
      double* part) {                                                                            \
    normalize_rows_body<T>(v, eps, rows, c, tpr, norms, vn, part);                               \
  }                                                                                              \
  extern "C" __global__ void FO_LAUNCH fastops_normalize_rows_apply_##DT(                        \
      const T* v, double eps, const double* norms, long long rows, long long c, int tpr,         \
      T* vn) {                                                                                   \
    normalize_rows_apply_body<T>(v, eps, norms, rows, c, tpr, vn);                               \
  }

// Selection. gpu.py compiles one module per (op, dtype) so that the first call of an op pays
// NVRTC for its own one or two kernels only: it prepends "#define FASTOPS_SELECT 1",
// "#define FASTOPS_DTYPE_<DTYPE> 1" and "#define FASTOPS_OP_<OP> 1". Without FASTOPS_SELECT
// (e.g. the compile test) every op is built for every dtype.
#ifndef FASTOPS_SELECT
#define FASTOPS_DTYPE_FLOAT32 1
#define FASTOPS_DTYPE_FLOAT64 1
#define FASTOPS_OP_GRAM_REDUCE 1
#define FASTOPS_OP_COLUMN_SQNORMS 1
#define FASTOPS_OP_OFFDIAG_CORRECT 1
#define FASTOPS_OP_SOM_NORMALIZE 1
#define FASTOPS_OP_SOM_BACKWARD 1
#define FASTOPS_OP_NORMALIZE_ROWS 1
#endif

#ifdef FASTOPS_DTYPE_FLOAT32
#define FO_IF_FLOAT32(...) __VA_ARGS__
#else
#define FO_IF_FLOAT32(...)
#endif
#ifdef FASTOPS_DTYPE_FLOAT64
#define FO_IF_FLOAT64(...) __VA_ARGS__
#else
#define FO_IF_FLOAT64(...)
#endif

// OPM(T, DT) for each selected dtype: stored type, name suffix.
#define FO_FOR_DTYPES(OPM) FO_IF_FLOAT32(OPM(float, float32)) FO_IF_FLOAT64(OPM(double, float64))

#ifdef FASTOPS_OP_GRAM_REDUCE
FO_FOR_DTYPES(FO_GRAM_REDUCE)
#endif
#ifdef FASTOPS_OP_COLUMN_SQNORMS
FO_FOR_DTYPES(FO_COLUMN_SQNORMS)
#endif
#ifdef FASTOPS_OP_OFFDIAG_CORRECT
FO_FOR_DTYPES(FO_OFFDIAG_CORRECT)
#endif
#ifdef FASTOPS_OP_SOM_NORMALIZE
FO_FOR_DTYPES(FO_SOM_NORMALIZE)
#endif
#ifdef FASTOPS_OP_SOM_BACKWARD
FO_FOR_DTYPES(FO_SOM_BACKWARD)
#endif
#ifdef FASTOPS_OP_NORMALIZE_ROWS
FO_FOR_DTYPES(FO_NORMALIZE_ROWS)
#endif
