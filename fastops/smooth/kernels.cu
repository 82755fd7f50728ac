// fastops smooth family: CUDA C kernels (loaded by gpu.py through cupy.RawModule).
//
// Every op is a row reduction (a per-row "state"), optionally followed by a second walk over the
// row that writes one value per element. The same op code runs in three launch shapes:
//   fastops_<op>_<dtype>          rows kernel: tpr threads per row, tpr a power of two <= 32
//                                 (sub-warp / warp per row, several rows per block) or
//                                 tpr == blockDim (one block per row); grid-stride over rows.
//   fastops_<op>_partial_<dtype>  few huge rows: grid (nsplit, rows), each block reduces its
//                                 share of a row and stores its state in part[row][split].
//   fastops_<op>_combine_<dtype>  per-row ops: merges the nsplit states of a row, writes it.
//   fastops_<op>_apply_<dtype>    per-element ops: every block of grid (nsplit, rows) merges the
//                                 row's states, then writes its share of the row.
//
// Header-free on purpose: NVRTC (what CuPy compiles with) ships no C library headers, so
// infinities and NaN come from bit patterns and float16 conversions from PTX cvt.
// Never compile with --use_fast_math: it flushes and reorders around inf/NaN and uses the
// approximate exp, and the -inf / NaN rules below depend on IEEE behaviour.
//
// gpu.py compiles one module per (op, dtype) (see "Selection" at the end of this file), so the
// first call of an op pays NVRTC for that op's two or three kernels only.

typedef unsigned short fo_half;  // raw IEEE binary16 bits (CuPy float16 storage)

#define FO_FULL_MASK 0xffffffffu
// Largest block gpu.py launches, and at least 2 such blocks per SM: caps registers at 64 per
// thread. Without the explicit minimum ptxas aimed at 40 registers and spilled in some kernels.
#define FO_MAX_THREADS 512
#define FO_MIN_BLOCKS 2
#define FO_LAUNCH __launch_bounds__(FO_MAX_THREADS, FO_MIN_BLOCKS)
#define FO_STATE_SLOTS 4  // accumulator slots per partial state in the part[] buffer

// ---------------------------------------------------------------------------------------------
// Element types: T is what is stored, A what we accumulate in (float32 for float16).

template <typename T> struct Ty;
template <> struct Ty<float> {
  typedef float A;
  static __device__ __forceinline__ float to_acc(float v) { return v; }
  static __device__ __forceinline__ float from_acc(float v) { return v; }
};
template <> struct Ty<double> {
  typedef double A;
  static __device__ __forceinline__ double to_acc(double v) { return v; }
  static __device__ __forceinline__ double from_acc(double v) { return v; }
};
template <> struct Ty<fo_half> {
  typedef float A;
  static __device__ __forceinline__ float to_acc(fo_half h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
  }
  static __device__ __forceinline__ fo_half from_acc(float f) {
    fo_half h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));  // round to nearest even, overflow -> inf
    return h;
  }
};

// Accurate libm versions (expf, log1pf, ...), never the __expf intrinsics: the float32 target is
// 2e-6 relative to a float64 reference.
__device__ __forceinline__ float fo_exp(float v) { return expf(v); }
__device__ __forceinline__ double fo_exp(double v) { return exp(v); }
__device__ __forceinline__ float fo_log(float v) { return logf(v); }
__device__ __forceinline__ double fo_log(double v) { return log(v); }
__device__ __forceinline__ float fo_log1p(float v) { return log1pf(v); }
__device__ __forceinline__ double fo_log1p(double v) { return log1p(v); }
__device__ __forceinline__ float fo_abs(float v) { return fabsf(v); }
__device__ __forceinline__ double fo_abs(double v) { return fabs(v); }
// A product that the compiler may not contract into an FMA. Used (1) for scale*(x - m), as on
// the CPU: m is the row max of x itself, so x - m is exact near the max and exp(scale*(x - m))
// of the maximal element is exactly 1 (scaling first, scale*x - max(scale*x), rounds scale*x to
// the ulp of |scale*x|: measured on an H200, float32 x ~ 300 at temperature 0.7 gave softmax
// errors of 5e-6 relative, over the 2e-6 target), and (2) inside state merges,
// whose two sides must be computed by the same expression so that merge(a, b) == merge(b, a)
// bit for bit and every lane of a butterfly reduction ends with the same state.
__device__ __forceinline__ float fo_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double fo_mul(double a, double b) { return __dmul_rn(a, b); }

template <typename A> struct Lim;
template <> struct Lim<float> {
  static __device__ __forceinline__ float inf() { return __int_as_float(0x7f800000); }
  static __device__ __forceinline__ float nan() { return __int_as_float(0x7fffffff); }
};
template <> struct Lim<double> {
  static __device__ __forceinline__ double inf() {
    return __longlong_as_double(0x7ff0000000000000LL);
  }
  static __device__ __forceinline__ double nan() {
    return __longlong_as_double(0x7ff8000000000000LL);
  }
};

// ---------------------------------------------------------------------------------------------
// Row walker: calls f(j, a[j], b[j], keep[j]) for the elements j = g, g + G, ... of one row
// (in units of 16-byte vectors where possible). With OUT, f's result is stored in o[j].
// b may be null (then f sees b[j] = 1), mk may be null (everything kept).
// 16-byte loads/stores need every array of the row at the same address modulo 16: then a
// scalar head of at most V-1 elements reaches alignment, the body moves V elements per access,
// and a scalar tail finishes. Otherwise the whole row goes element by element.
// Reads use __ldg (read-only, L1-cached): the write pass of the per-element ops re-reads a row
// the same threads just read, and for rows that fit, that second read hits L1/L2.

template <typename T> union Pack {
  uint4 u;
  T e[16 / sizeof(T)];
};

template <typename T, bool OUT, typename F>
__device__ __forceinline__ void walk(const T* __restrict__ a, const T* __restrict__ b,
                                     const unsigned char* __restrict__ mk, T* __restrict__ o,
                                     long long n, long long g, long long G, F&& f) {
  typedef typename Ty<T>::A A;
  constexpr int V = 16 / sizeof(T);
  const unsigned long long ra = reinterpret_cast<unsigned long long>(a) & 15ull;
  bool vec = (ra % sizeof(T)) == 0;
  if (b) vec = vec && ((reinterpret_cast<unsigned long long>(b) & 15ull) == ra);
  if constexpr (OUT) vec = vec && ((reinterpret_cast<unsigned long long>(o) & 15ull) == ra);
  long long head = vec ? (long long)(((16ull - ra) & 15ull) / sizeof(T)) : n;
  if (head > n) head = n;
  const long long nvec = (n - head) / V;
  const long long tail = head + nvec * V;

  auto scalar = [&](long long j) {
    const A av = Ty<T>::to_acc(__ldg(a + j));
    const A bv = b ? Ty<T>::to_acc(__ldg(b + j)) : A(1);
    const bool keep = mk ? (__ldg(mk + j) != 0) : true;
    const A r = f(j, av, bv, keep);
    if constexpr (OUT) o[j] = Ty<T>::from_acc(r);
  };

  for (long long j = g; j < head; j += G) scalar(j);
#pragma unroll 2
  for (long long k = g; k < nvec; k += G) {
    const long long j0 = head + k * V;
    Pack<T> pa, pb, po;
    pa.u = __ldg(reinterpret_cast<const uint4*>(a + j0));
    if (b) pb.u = __ldg(reinterpret_cast<const uint4*>(b + j0));
#pragma unroll
    for (int e = 0; e < V; ++e) {
      const A bv = b ? Ty<T>::to_acc(pb.e[e]) : A(1);
      const bool keep = mk ? (__ldg(mk + j0 + e) != 0) : true;
      const A r = f(j0 + e, Ty<T>::to_acc(pa.e[e]), bv, keep);
      if constexpr (OUT) po.e[e] = Ty<T>::from_acc(r);
    }
    if constexpr (OUT) *reinterpret_cast<uint4*>(o + j0) = po.u;
  }
  for (long long j = tail + g; j < n; j += G) scalar(j);
}

// ---------------------------------------------------------------------------------------------
// Row states. Each has init (the identity of merge), push (one element, in a thread's strided
// loop), merge (symmetric: see fo_mul), shfl_merge (butterfly step), store/load (partials).

// logsumexp state, weighted or not (w = 1 for lse / softmax):
//   m = max of the kept values, s = sum of w*exp(v - m) over kept v < m, c = sum of w over
//   kept v == m (the count when w = 1), f = sign bits of those w (1: some w > 0, 2: some w < 0;
//   only lse_weighted's +inf rule reads it).
// Keeping the maximal terms out of s is the dominant-term rule: lse = m + log1p(s + (c - 1))
// never forms 1 + tiny (SciPy gh-18295: [0, -40] must give logaddexp(0, -40) to 1 ulp).
// One exp per element: a new maximum rescales the old sum by exp(m_old - v), anything else adds
// exp(v - m). No exp ever sees (-inf) - (-inf) or inf - inf except for NaN-bound values: equal
// values (including two infinities) take the c branch. A NaN value (comparisons false) lands in
// s, and NaN then survives every later rescale and merge (NaN * 0 = NaN).
template <typename A> struct LseState {
  A m, s, c;
  int f;
  A k;  // the scale: terms are exp(k * (v - m)); k > 0, so m is also the max of k * v
  __device__ __forceinline__ void init(A scale) {
    k = scale;
    m = -Lim<A>::inf();
    s = A(0);
    c = A(0);
    f = 0;
  }
  static __device__ __forceinline__ int sign_bits(A w) {
    return (w > A(0) ? 1 : 0) | (w < A(0) ? 2 : 0);
  }
  __device__ __forceinline__ void push(A v, A w) {
    const bool up = v > m;
    const A e = fo_exp(fo_mul(k, up ? m - v : v - m));
    if (up) {
      s = (s + c) * e;  // the old maximal terms are now below the max
      c = w;
      f = sign_bits(w);
      m = v;
    } else if (v == m) {
      c += w;
      f |= sign_bits(w);
    } else {
      s += w * e;
    }
  }
  // A side whose max equals the merged max keeps (s, c); a side below it is rescaled and its
  // maximal terms join s. The equality test (not the exp) handles -inf == -inf and inf == inf.
  __device__ __forceinline__ void merge(const LseState& o) {
    const A mm = o.m > m ? o.m : m;  // m is never NaN (NaN values go to s)
    const bool eq1 = m == mm, eq2 = o.m == mm;
    const A s1 = eq1 ? s : fo_mul(s + c, fo_exp(fo_mul(k, m - mm)));
    const A s2 = eq2 ? o.s : fo_mul(o.s + o.c, fo_exp(fo_mul(k, o.m - mm)));
    const A c1 = eq1 ? c : A(0), c2 = eq2 ? o.c : A(0);
    f = (eq1 ? f : 0) | (eq2 ? o.f : 0);
    m = mm;
    s = s1 + s2;
    c = c1 + c2;
  }
  __device__ __forceinline__ void shfl_merge(int off) {
    LseState o;
    o.m = __shfl_xor_sync(FO_FULL_MASK, m, off);
    o.s = __shfl_xor_sync(FO_FULL_MASK, s, off);
    o.c = __shfl_xor_sync(FO_FULL_MASK, c, off);
    o.f = __shfl_xor_sync(FO_FULL_MASK, f, off);
    merge(o);
  }
  __device__ __forceinline__ void store(A* p) const {
    p[0] = m;
    p[1] = s;
    p[2] = c;
    p[3] = A(f);
  }
  __device__ __forceinline__ void load(const A* p) {
    m = p[0];
    s = p[1];
    c = p[2];
    f = int(p[3]);
  }
  // Row classes shared by lse / softmax / smooth_max_backward.
  __device__ __forceinline__ bool is_nan_row() const { return s != s; }
  __device__ __forceinline__ bool has_pos_inf() const { return m == Lim<A>::inf(); }
  __device__ __forceinline__ bool is_empty() const { return m == -Lim<A>::inf(); }
  // log(sum exp(v - m)) with the dominant-term rule.
  __device__ __forceinline__ A log_sum() const { return fo_log1p(s + (c - A(1))); }
};

// soft_argmax state: m = max, s = sum exp(v - m), t = sum j*exp(v - m) over kept j.
// The result is a ratio t/s, so no dominant-term split is needed. -inf values are skipped (their
// weight is exactly 0), which also keeps exp((-inf) - (-inf)) out of the sums.
template <typename A> struct ArgState {
  A m, s, t;
  A k;  // the scale, as in LseState
  __device__ __forceinline__ void init(A scale) {
    k = scale;
    m = -Lim<A>::inf();
    s = A(0);
    t = A(0);
  }
  __device__ __forceinline__ void push(A v, A j) {
    if (v == -Lim<A>::inf()) return;
    const bool up = v > m;
    // NaN for v == m == +inf: that row is NaN anyway
    const A e = fo_exp(fo_mul(k, up ? m - v : v - m));
    if (up) {
      s = s * e + A(1);
      t = t * e + j;
      m = v;
    } else {
      s += e;
      t += j * e;
    }
  }
  __device__ __forceinline__ void merge(const ArgState& o) {
    const A mm = o.m > m ? o.m : m;
    const A e1 = m == mm ? A(1) : fo_exp(fo_mul(k, m - mm));
    const A e2 = o.m == mm ? A(1) : fo_exp(fo_mul(k, o.m - mm));
    s = fo_mul(s, e1) + fo_mul(o.s, e2);
    t = fo_mul(t, e1) + fo_mul(o.t, e2);
    m = mm;
  }
  __device__ __forceinline__ void shfl_merge(int off) {
    ArgState o;
    o.m = __shfl_xor_sync(FO_FULL_MASK, m, off);
    o.s = __shfl_xor_sync(FO_FULL_MASK, s, off);
    o.t = __shfl_xor_sync(FO_FULL_MASK, t, off);
    merge(o);
  }
  __device__ __forceinline__ void store(A* p) const {
    p[0] = m;
    p[1] = s;
    p[2] = t;
  }
  __device__ __forceinline__ void load(const A* p) {
    m = p[0];
    s = p[1];
    t = p[2];
  }
  // Any kept +inf or NaN, or nothing finite kept: NaN.
  __device__ __forceinline__ bool is_defined() const {
    return m > -Lim<A>::inf() && m < Lim<A>::inf() && s == s;
  }
};

// softmax_backward state: one dot product / sum.
template <typename A> struct SumState {
  A d;
  __device__ __forceinline__ void init(A) { d = A(0); }
  __device__ __forceinline__ void merge(const SumState& o) { d = d + o.d; }
  __device__ __forceinline__ void shfl_merge(int off) {
    SumState o;
    o.d = __shfl_xor_sync(FO_FULL_MASK, d, off);
    merge(o);
  }
  __device__ __forceinline__ void store(A* p) const { p[0] = d; }
  __device__ __forceinline__ void load(const A* p) { d = p[0]; }
};

// lse_backward needs no row statistic (out and dout are given).
template <typename A> struct NoState {
  __device__ __forceinline__ void init(A) {}
  __device__ __forceinline__ void merge(const NoState&) {}
  __device__ __forceinline__ void shfl_merge(int) {}
  __device__ __forceinline__ void store(A*) const {}
  __device__ __forceinline__ void load(const A*) {}
};

// Reduce the states of a group of tpr threads; afterwards every thread of the group holds the
// merged state. tpr <= 32: xor butterfly inside aligned groups of tpr lanes (all 32 lanes of the
// warp take part, hence the full mask; idle groups carry identity states). tpr == blockDim:
// butterfly per warp, then every thread merges the per-warp states from shared memory in the
// same order, so all threads agree bit for bit.
template <class S>
__device__ __forceinline__ void group_reduce(S& st, int tpr, S* sm) {
  const int w = tpr < 32 ? tpr : 32;
  for (int off = w >> 1; off > 0; off >>= 1) st.shfl_merge(off);
  if (tpr > 32) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) sm[warp] = st;
    __syncthreads();
    st = sm[0];
    for (int i = 1; i < nw; ++i) st.merge(sm[i]);
    __syncthreads();  // sm is reused by the next row
  }
}

// ---------------------------------------------------------------------------------------------
// Where row `row` of a mask or b starts: masks and b broadcast over kept axes arrive as their
// distinct rows plus a row index (fastops._rows.RowLayout.broadcast_rows), read in place.
__device__ __forceinline__ long long fo_row_start(const long long* rows, long long row,
                                                  long long n) {
  return (rows ? __ldg(rows + row) : row) * n;
}
// Row `row` of a mask or b (null stays null: no mask, b = 1).
template <typename P>
__device__ __forceinline__ const P* fo_arg_row(const P* base, const long long* rows,
                                               long long row, long long n) {
  return base ? base + fo_row_start(rows, row, n) : base;
}

// ---------------------------------------------------------------------------------------------
// Results from a merged state, shared by the row ops below and the column ops further down.

// (1/scale) log sum exp(scale v): NaN, +inf, -inf (nothing kept or all -inf), else the
// dominant-term form, as the CPU's _lse_value.
template <typename A>
__device__ __forceinline__ A lse_value(const LseState<A>& st, A scale) {
  if (st.is_nan_row()) return Lim<A>::nan();
  if (st.has_pos_inf()) return Lim<A>::inf();
  if (st.is_empty()) return -Lim<A>::inf();
  return st.m + st.log_sum() * (A(1) / scale);
}

template <typename A>
__device__ __forceinline__ A soft_argmax_value(const ArgState<A>& st) {
  return st.is_defined() ? st.t / st.s : Lim<A>::nan();
}

// softmax / log_softmax of one element v of a row (column) with merged state st.
template <typename A> struct SoftmaxValue {
  A sc, m, sum, lsum, fill;
  bool lg, bad, empty;
  __device__ __forceinline__ SoftmaxValue(const LseState<A>& st, A scale, bool log_mode)
      : sc(scale), m(st.m), sum(st.s + st.c), lsum(st.log_sum()),
        fill(log_mode ? -Lim<A>::inf() : A(0)),  // masked elements, rows with nothing finite
        // A kept +inf makes a softmax row NaN; log_softmax takes SciPy's x - lse there: NaN at
        // the +inf elements, -inf at the others (z - lsum below, z = -inf or NaN).
        lg(log_mode), bad(st.is_nan_row() || (st.has_pos_inf() && !log_mode)),
        empty(st.is_empty()) {}
  __device__ __forceinline__ A operator()(A v, bool keep) const {
    // bad before empty: a NaN in an otherwise all -inf row makes it NaN
    if (!keep) return fill;
    if (bad) return Lim<A>::nan();
    if (empty) return fill;
    const A z = fo_mul(sc, v - m);  // exactly 0 at the max
    return lg ? z - lsum : fo_exp(z) / sum;
  }
};

// ---------------------------------------------------------------------------------------------
// Ops. stats() accumulates the thread's share (elements g, g + G, ...) of a row into a state;
// finish() uses the merged state: per-row ops write out[row] from thread g == 0, per-element
// ops walk the row again and write every element.

template <typename T> struct LseOp {
  typedef typename Ty<T>::A A;
  typedef LseState<A> State;
  // The scale the row states multiply differences by.
  __device__ __forceinline__ A state_scale() const { return scale; }
  const T* x;
  const unsigned char* mask;
  const long long* mask_rows;  // null: mask row r is row r (see fo_row_start)
  A scale;
  A* out;
  __device__ __forceinline__ void stats(State& st, long long row, long long n, long long g,
                                        long long G) const {
    const long long off = row * n;
    walk<T, false>(x + off, (const T*)0, fo_arg_row(mask, mask_rows, row, n), (T*)0, n, g, G,
                   [&](long long, A v, A, bool keep) {
                     if (keep) st.push(v, A(1));
                     return A(0);
                   });
  }
  __device__ __forceinline__ void finish(const State& st, long long row, long long, long long g,
                                         long long) const {
    if (g == 0) out[row] = lse_value(st, scale);
  }
};

// SciPy logsumexp(x, b, return_sign=True); b == 0 elements are skipped even when x is inf/NaN.
template <typename T> struct LseWeightedOp {
  typedef typename Ty<T>::A A;
  typedef LseState<A> State;
  // The scale the row states multiply differences by.
  __device__ __forceinline__ A state_scale() const { return A(1); }
  const T* x;
  const T* b;
  const long long* b_rows;
  const unsigned char* mask;
  const long long* mask_rows;  // null: mask row r is row r (see fo_row_start)
  A* out;
  A* sign;
  __device__ __forceinline__ void stats(State& st, long long row, long long n, long long g,
                                        long long G) const {
    const long long off = row * n;
    walk<T, false>(x + off, fo_arg_row(b, b_rows, row, n), fo_arg_row(mask, mask_rows, row, n),
                   (T*)0, n, g, G,
                   [&](long long, A v, A w, bool keep) {
                     if (keep && w != A(0)) st.push(v, w);  // a NaN w is kept and poisons c/s
                     return A(0);
                   });
  }
  __device__ __forceinline__ void finish(const State& st, long long row, long long, long long g,
                                         long long) const {
    if (g != 0) return;
    const A inf = Lim<A>::inf(), nan = Lim<A>::nan();
    A r, sg;
    if (st.s != st.s || st.c != st.c) {
      r = nan;
      sg = nan;
    } else if (st.m == inf) {  // the +inf terms decide: one sign -> (+inf, sign), mixed -> NaN
      r = st.f == 1 || st.f == 2 ? inf : nan;
      sg = st.f == 1 ? A(1) : (st.f == 2 ? A(-1) : nan);
    } else if (st.m == -inf) {  // nothing kept (x = -inf terms weigh 0): SciPy gives (-inf, 0)
      r = -inf;
      sg = A(0);
    } else {
      const A c = st.c, s = st.s;
      const A q = c != A(0) ? s / c : A(0);
      if (c != A(0) && q > A(-0.5)) {  // log1p is accurate and its argument stays > -1/2
        r = st.m + fo_log(fo_abs(c)) + fo_log1p(q);
        sg = c > A(0) ? A(1) : A(-1);
      } else {  // heavy cancellation (SciPy gh-22903): sum directly; 0 gives (-inf, 0)
        const A S = c + s;
        r = st.m + fo_log(fo_abs(S));
        sg = S > A(0) ? A(1) : (S < A(0) ? A(-1) : A(0));
      }
    }
    out[row] = r;
    sign[row] = sg;
  }
};

template <typename T> struct SoftArgmaxOp {
  typedef typename Ty<T>::A A;
  typedef ArgState<A> State;
  // The scale the row states multiply differences by.
  __device__ __forceinline__ A state_scale() const { return scale; }
  const T* x;
  const unsigned char* mask;
  const long long* mask_rows;  // null: mask row r is row r (see fo_row_start)
  A scale;
  A* out;
  __device__ __forceinline__ void stats(State& st, long long row, long long n, long long g,
                                        long long G) const {
    const long long off = row * n;
    walk<T, false>(x + off, (const T*)0, fo_arg_row(mask, mask_rows, row, n), (T*)0, n, g, G,
                   [&](long long j, A v, A, bool keep) {
                     if (keep) st.push(v, A(j));
                     return A(0);
                   });
  }
  __device__ __forceinline__ void finish(const State& st, long long row, long long, long long g,
                                         long long) const {
    if (g == 0) out[row] = soft_argmax_value(st);
  }
};

template <typename T> struct SoftmaxOp {
  typedef typename Ty<T>::A A;
  typedef LseState<A> State;
  // The scale the row states multiply differences by.
  __device__ __forceinline__ A state_scale() const { return scale; }
  const T* x;
  const unsigned char* mask;
  const long long* mask_rows;  // null: mask row r is row r (see fo_row_start)
  A scale;
  int log_mode;
  T* y;
  __device__ __forceinline__ void stats(State& st, long long row, long long n, long long g,
                                        long long G) const {
    const long long off = row * n;
    walk<T, false>(x + off, (const T*)0, fo_arg_row(mask, mask_rows, row, n), (T*)0, n, g, G,
                   [&](long long, A v, A, bool keep) {
                     if (keep) st.push(v, A(1));
                     return A(0);
                   });
  }
  __device__ __forceinline__ void finish(const State& st, long long row, long long n, long long g,
                                         long long G) const {
    const long long off = row * n;
    const SoftmaxValue<A> value(st, scale, log_mode != 0);
    walk<T, true>(x + off, (const T*)0, fo_arg_row(mask, mask_rows, row, n), y + off, n, g, G,
                  [&](long long, A v, A, bool keep) { return value(v, keep); });
  }
};

// dx = dout * softmax(scale * x): the gradient of smooth_max = (1/scale) lse(scale x).
template <typename T> struct SmoothMaxBackwardOp {
  typedef typename Ty<T>::A A;
  typedef LseState<A> State;
  // The scale the row states multiply differences by.
  __device__ __forceinline__ A state_scale() const { return scale; }
  const T* x;
  const unsigned char* mask;
  const long long* mask_rows;  // null: mask row r is row r (see fo_row_start)
  A scale;
  const A* dout;
  T* dx;
  __device__ __forceinline__ void stats(State& st, long long row, long long n, long long g,
                                        long long G) const {
    const long long off = row * n;
    walk<T, false>(x + off, (const T*)0, fo_arg_row(mask, mask_rows, row, n), (T*)0, n, g, G,
                   [&](long long, A v, A, bool keep) {
                     if (keep) st.push(v, A(1));
                     return A(0);
                   });
  }
  __device__ __forceinline__ void finish(const State& st, long long row, long long n, long long g,
                                         long long G) const {
    const long long off = row * n;
    const A sc = scale, m = st.m, gd = dout[row];
    const bool bad = st.is_nan_row() || st.has_pos_inf(), empty = st.is_empty();
    const A sum = st.s + st.c;
    walk<T, true>(x + off, (const T*)0, fo_arg_row(mask, mask_rows, row, n), dx + off, n, g, G,
                  [&](long long, A v, A, bool keep) {
                    if (!keep) return A(0);
                    if (bad) return Lim<A>::nan();  // before empty: NaN in an all -inf row
                    if (empty) return A(0);
                    return gd * (fo_exp(fo_mul(sc, v - m)) / sum);
                  });
  }
};

// dx = dout * scale * p * (j - y), p = softmax(scale * x), y = soft_argmax.
template <typename T> struct SoftArgmaxBackwardOp {
  typedef typename Ty<T>::A A;
  typedef ArgState<A> State;
  // The scale the row states multiply differences by.
  __device__ __forceinline__ A state_scale() const { return scale; }
  const T* x;
  const unsigned char* mask;
  const long long* mask_rows;  // null: mask row r is row r (see fo_row_start)
  A scale;
  const A* dout;
  T* dx;
  __device__ __forceinline__ void stats(State& st, long long row, long long n, long long g,
                                        long long G) const {
    const long long off = row * n;
    walk<T, false>(x + off, (const T*)0, fo_arg_row(mask, mask_rows, row, n), (T*)0, n, g, G,
                   [&](long long j, A v, A, bool keep) {
                     if (keep) st.push(v, A(j));
                     return A(0);
                   });
  }
  __device__ __forceinline__ void finish(const State& st, long long row, long long n, long long g,
                                         long long G) const {
    const long long off = row * n;
    const A sc = scale, m = st.m, s = st.s;
    // A NaN (s is NaN) or a kept +inf makes the row NaN, even when every other value is -inf.
    const bool bad = !(s == s) || st.m == Lim<A>::inf(), empty = st.m == -Lim<A>::inf();
    const A ymean = st.t / s, gs = dout[row] * sc;
    walk<T, true>(x + off, (const T*)0, fo_arg_row(mask, mask_rows, row, n), dx + off, n, g, G,
                  [&](long long j, A v, A, bool keep) {
                    if (!keep) return A(0);
                    if (bad) return Lim<A>::nan();  // before empty: NaN in an all -inf row
                    if (empty) return A(0);
                    const A p = fo_exp(fo_mul(sc, v - m)) / s;
                    return gs * p * (A(j) - ymean);
                  });
  }
};

// log_mode 0 (y = softmax):     dx = scale * y * (dy - sum_k y_k dy_k)
// log_mode 1 (y = log_softmax): dx = scale * (dy - exp(y) * sum_k dy_k), k with y_k > -inf
template <typename T> struct SoftmaxBackwardOp {
  typedef typename Ty<T>::A A;
  typedef SumState<A> State;
  // The scale the row states multiply differences by.
  __device__ __forceinline__ A state_scale() const { return scale; }
  const T* y;
  const T* dy;
  const unsigned char* mask;
  const long long* mask_rows;  // null: mask row r is row r (see fo_row_start)
  A scale;
  int log_mode;
  T* dx;
  __device__ __forceinline__ void stats(State& st, long long row, long long n, long long g,
                                        long long G) const {
    const long long off = row * n;
    const bool lg = log_mode != 0;
    const A ninf = -Lim<A>::inf();
    walk<T, false>(y + off, dy + off, fo_arg_row(mask, mask_rows, row, n), (T*)0, n, g, G,
                   [&](long long, A yv, A dyv, bool keep) {
                     if (lg) {
                       if (keep && yv > ninf) st.d += dyv;
                     } else if (keep) {
                       st.d += yv * dyv;
                     }
                     return A(0);
                   });
  }
  __device__ __forceinline__ void finish(const State& st, long long row, long long n, long long g,
                                         long long G) const {
    const long long off = row * n;
    const bool lg = log_mode != 0;
    const A sc = scale, d = st.d, ninf = -Lim<A>::inf();
    walk<T, true>(y + off, dy + off, fo_arg_row(mask, mask_rows, row, n), dx + off, n, g, G,
                  [&](long long, A yv, A dyv, bool keep) {
                    if (!keep) return A(0);
                    if (lg) return yv == ninf ? A(0) : sc * (dyv - fo_exp(yv) * d);
                    return sc * yv * (dyv - d);
                  });
  }
};

// dx = dout * b * exp(x - out); 0 where masked, b == 0, x == -inf or out == -inf.
template <typename T> struct LseBackwardOp {
  typedef typename Ty<T>::A A;
  typedef NoState<A> State;
  // The scale the row states multiply differences by.
  __device__ __forceinline__ A state_scale() const { return A(1); }
  const T* x;
  const T* b;  // may be null (b = 1)
  const long long* b_rows;
  const unsigned char* mask;
  const long long* mask_rows;  // null: mask row r is row r (see fo_row_start)
  const A* out;
  const A* dout;
  T* dx;
  __device__ __forceinline__ void stats(State&, long long, long long, long long, long long) const {}
  __device__ __forceinline__ void finish(const State&, long long row, long long n, long long g,
                                         long long G) const {
    const long long off = row * n;
    const A o = out[row], gd = dout[row], ninf = -Lim<A>::inf();
    walk<T, true>(x + off, fo_arg_row(b, b_rows, row, n), fo_arg_row(mask, mask_rows, row, n),
                  dx + off, n, g, G,
                  [&](long long, A xv, A bv, bool keep) {
                    if (!keep || bv == A(0) || xv == ninf || o == ninf) return A(0);
                    return gd * bv * fo_exp(xv - o);
                  });
  }
};

// ---------------------------------------------------------------------------------------------
// Launch-shape bodies.

// tpr threads per row (power of two <= 32, or == blockDim), blockDim / tpr rows per block,
// grid-stride over the rows (the loop bound is uniform per block, so every lane reaches the
// shuffles and barriers of every iteration; lanes past the last row carry identity states).
template <class Op>
__device__ __forceinline__ void rows_body(const Op& op, long long rows, long long n, int tpr) {
  typedef typename Op::State S;
  __shared__ S sm[32];
  const int rpb = blockDim.x / tpr;
  const int sub = threadIdx.x / tpr;
  const int g = threadIdx.x - sub * tpr;
  const long long step = (long long)gridDim.x * rpb;
  for (long long base = (long long)blockIdx.x * rpb; base < rows; base += step) {
    const long long row = base + sub;
    const bool active = row < rows;
    S st;
    st.init(op.state_scale());
    if (active) op.stats(st, row, n, g, tpr);
    group_reduce(st, tpr, sm);
    if (active) op.finish(st, row, n, g, tpr);
  }
}

// Grid (nsplit, rows): block blockIdx.x takes the vectors k = blockIdx.x * blockDim + tid
// (mod nsplit * blockDim) of row blockIdx.y, and stores its merged state.
template <class Op>
__device__ __forceinline__ void partial_body(const Op& op, long long n, typename Op::A* part) {
  typedef typename Op::State S;
  __shared__ S sm[32];
  const long long row = blockIdx.y;
  const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long G = (long long)gridDim.x * blockDim.x;
  S st;
  st.init(op.state_scale());
  op.stats(st, row, n, g, G);
  group_reduce(st, (int)blockDim.x, sm);
  if (threadIdx.x == 0) st.store(part + (row * gridDim.x + blockIdx.x) * FO_STATE_SLOTS);
}

// Grid (any, rows): each block merges the nsplit partial states of its row (strided over the
// threads, then a block reduction), then finishes the row with the blocks of grid.x splitting it.
template <class Op>
__device__ __forceinline__ void second_body(const Op& op, long long n, const typename Op::A* part,
                                            int nsplit) {
  typedef typename Op::State S;
  __shared__ S sm[32];
  const long long row = blockIdx.y;
  S st;
  st.init(op.state_scale());
  for (int k = threadIdx.x; k < nsplit; k += blockDim.x) {
    S o;
    o.load(part + (row * nsplit + k) * FO_STATE_SLOTS);
    st.merge(o);
  }
  group_reduce(st, (int)blockDim.x, sm);
  const long long g = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const long long G = (long long)gridDim.x * blockDim.x;
  op.finish(st, row, n, g, G);
}

// ---------------------------------------------------------------------------------------------
// Column ops: x viewed as a C-contiguous (outer, n, inner) array (gpu.py gets it from
// fastops._rows.column_view: axis 0 of a C array, a middle axis, axis -1 of an F array),
// reduced over n where it lies instead of copied into rows. push() takes element (o, k, i) at
// offset `at`; finish() writes column (o, i) = `col` (threadIdx.y == 0 for per-column results,
// every thread its share k = threadIdx.y, + blockDim.y, ... for per-element results).

template <typename T> struct LseColumns {
  typedef typename Ty<T>::A A;
  typedef LseState<A> State;
  const T* x;
  A scale;
  A* out;
  __device__ __forceinline__ A state_scale() const { return scale; }
  __device__ __forceinline__ void push(State& st, long long, long long at) const {
    st.push(Ty<T>::to_acc(__ldg(x + at)), A(1));
  }
  __device__ __forceinline__ void finish(const State& st, long long col, long long, long long,
                                         long long) const {
    if (threadIdx.y == 0) out[col] = lse_value(st, scale);
  }
};

template <typename T> struct SoftArgmaxColumns {
  typedef typename Ty<T>::A A;
  typedef ArgState<A> State;
  const T* x;
  A scale;
  A* out;
  __device__ __forceinline__ A state_scale() const { return scale; }
  __device__ __forceinline__ void push(State& st, long long k, long long at) const {
    st.push(Ty<T>::to_acc(__ldg(x + at)), A(k));
  }
  __device__ __forceinline__ void finish(const State& st, long long col, long long, long long,
                                         long long) const {
    if (threadIdx.y == 0) out[col] = soft_argmax_value(st);
  }
};

template <typename T> struct SoftmaxColumns {
  typedef typename Ty<T>::A A;
  typedef LseState<A> State;
  const T* x;
  A scale;
  int log_mode;
  T* y;
  __device__ __forceinline__ A state_scale() const { return scale; }
  __device__ __forceinline__ void push(State& st, long long, long long at) const {
    st.push(Ty<T>::to_acc(__ldg(x + at)), A(1));
  }
  __device__ __forceinline__ void finish(const State& st, long long, long long base, long long n,
                                         long long inner) const {
    const SoftmaxValue<A> value(st, scale, log_mode != 0);
    for (long long k = threadIdx.y; k < n; k += blockDim.y) {
      const long long at = base + k * inner;
      y[at] = Ty<T>::from_acc(value(Ty<T>::to_acc(__ldg(x + at)), true));
    }
  }
};

// A block takes tiles of FO_COL_TILE adjacent columns of one outer index: threadIdx.x picks the
// column (a warp reads FO_COL_TILE consecutive elements of a row of the tile: coalesced), and
// the blockDim.y threads of a column split the reduced axis (k = threadIdx.y, + blockDim.y, ...).
// Their states are merged in shared memory in a fixed order (thread y = 0 merges y = 1, 2, ...),
// so the result does not depend on timing. Grid-stride over the tiles; the loop bound is uniform
// per block, so every thread reaches every barrier.
#define FO_COL_TILE 32

template <class Op>
__device__ __forceinline__ void columns_body(const Op& op, long long outer, long long n,
                                             long long inner) {
  typedef typename Op::State S;
  __shared__ S sm[FO_MAX_THREADS];
  const long long per_outer = (inner + FO_COL_TILE - 1) / FO_COL_TILE;
  const long long tiles = outer * per_outer;
  const int slot = threadIdx.y * FO_COL_TILE + threadIdx.x;
  for (long long t = blockIdx.x; t < tiles; t += gridDim.x) {
    const long long o = t / per_outer;
    const long long i = (t - o * per_outer) * FO_COL_TILE + threadIdx.x;
    const bool active = i < inner;
    const long long base = o * n * inner + i;  // element (o, k, i) is at base + k * inner
    S st;
    st.init(op.state_scale());
    if (active) {
      for (long long k = threadIdx.y; k < n; k += blockDim.y) op.push(st, k, base + k * inner);
    }
    sm[slot] = st;
    __syncthreads();
    if (threadIdx.y == 0) {
      for (int r = 1; r < (int)blockDim.y; ++r) st.merge(sm[r * FO_COL_TILE + threadIdx.x]);
      sm[threadIdx.x] = st;
    }
    __syncthreads();
    st = sm[threadIdx.x];
    __syncthreads();  // sm is reused by the next tile
    if (active) op.finish(st, o * inner + i, base, n, inner);
  }
}

// ---------------------------------------------------------------------------------------------
// extern "C" entry points, so that profiles and get_function use fastops_<op>[_<shape>]_<dtype>.

#define FO_UNPACK(...) __VA_ARGS__

#define FO_ROWS_KERNEL(NAME, DT, OP, PARAMS, INIT)                                                 \
  extern "C" __global__ void FO_LAUNCH                                                             \
      fastops_##NAME##_##DT(FO_UNPACK PARAMS, long long rows, long long n, int tpr) {              \
    const OP op = {FO_UNPACK INIT};                                                                \
    rows_body(op, rows, n, tpr);                                                                   \
  }

#define FO_PARTIAL_KERNEL(NAME, DT, OP, PARAMS, INIT)                                              \
  extern "C" __global__ void FO_LAUNCH                                                             \
      fastops_##NAME##_partial_##DT(FO_UNPACK PARAMS, long long n, OP::A* part) {                  \
    const OP op = {FO_UNPACK INIT};                                                                \
    partial_body(op, n, part);                                                                     \
  }

#define FO_SECOND_KERNEL(NAME, SECOND, DT, OP, PARAMS, INIT)                                       \
  extern "C" __global__ void FO_LAUNCH                                                             \
      fastops_##NAME##_##SECOND##_##DT(FO_UNPACK PARAMS, long long n, const OP::A* part,           \
                                       int nsplit) {                                               \
    const OP op = {FO_UNPACK INIT};                                                                \
    second_body(op, n, part, nsplit);                                                              \
  }

#define FO_OP_KERNELS(NAME, SECOND, DT, OP, PARAMS, INIT)                                          \
  FO_ROWS_KERNEL(NAME, DT, OP, PARAMS, INIT)                                                       \
  FO_PARTIAL_KERNEL(NAME, DT, OP, PARAMS, INIT)                                                    \
  FO_SECOND_KERNEL(NAME, SECOND, DT, OP, PARAMS, INIT)

#define FO_COLUMNS_KERNEL(NAME, DT, OP, PARAMS, INIT)                                              \
  extern "C" __global__ void FO_LAUNCH fastops_##NAME##_columns_##DT(                              \
      FO_UNPACK PARAMS, long long outer, long long n, long long inner) {                           \
    const OP op = {FO_UNPACK INIT};                                                                \
    columns_body(op, outer, n, inner);                                                             \
  }

typedef const unsigned char* fo_mask_t;
typedef const long long* fo_rows_t;  // a row index of a mask or b (null: the identity)

// Selection. gpu.py compiles one module per (op, dtype) so that the first call of an op pays
// NVRTC for its own few kernels only: it prepends "#define FASTOPS_SELECT 1",
// "#define FASTOPS_DTYPE_<DTYPE> 1" and "#define FASTOPS_OP_<OP> 1". Without FASTOPS_SELECT
// (e.g. the compile test) every op is built for every dtype.
#ifndef FASTOPS_SELECT
#define FASTOPS_DTYPE_FLOAT16 1
#define FASTOPS_DTYPE_FLOAT32 1
#define FASTOPS_DTYPE_FLOAT64 1
#define FASTOPS_OP_LSE 1
#define FASTOPS_OP_LSE_WEIGHTED 1
#define FASTOPS_OP_SOFT_ARGMAX 1
#define FASTOPS_OP_SOFTMAX 1
#define FASTOPS_OP_SMOOTH_MAX_BACKWARD 1
#define FASTOPS_OP_SOFT_ARGMAX_BACKWARD 1
#define FASTOPS_OP_SOFTMAX_BACKWARD 1
#define FASTOPS_OP_LSE_BACKWARD 1
#endif

#ifdef FASTOPS_DTYPE_FLOAT16
#define FO_IF_FLOAT16(...) __VA_ARGS__
#else
#define FO_IF_FLOAT16(...)
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

// OPM(T, A, DT) for each selected dtype: stored type, accumulation type, name suffix.
#define FO_FOR_DTYPES(OPM)                                                                         \
  FO_IF_FLOAT16(OPM(fo_half, float, float16))                                                      \
  FO_IF_FLOAT32(OPM(float, float, float32))                                                        \
  FO_IF_FLOAT64(OPM(double, double, float64))

// The argument lists below are the contract with gpu.py (same order there), followed by the
// shape arguments of FO_ROWS_KERNEL / FO_PARTIAL_KERNEL / FO_SECOND_KERNEL.
#define FO_LSE(T, A, DT)                                                                           \
  FO_OP_KERNELS(lse, combine, DT, LseOp<T>,                                                        \
                (const T* x, fo_mask_t mask, fo_rows_t mask_rows, A scale, A* out),                \
                (x, mask, mask_rows, scale, out))                                                  \
  FO_COLUMNS_KERNEL(lse, DT, LseColumns<T>, (const T* x, A scale, A* out), (x, scale, out))
#define FO_LSE_WEIGHTED(T, A, DT)                                                                  \
  FO_OP_KERNELS(lse_weighted, combine, DT, LseWeightedOp<T>,                                       \
                (const T* x, const T* b, fo_rows_t b_rows, fo_mask_t mask, fo_rows_t mask_rows,    \
                 A* out, A* sign),                                                                 \
                (x, b, b_rows, mask, mask_rows, out, sign))
#define FO_SOFT_ARGMAX(T, A, DT)                                                                   \
  FO_OP_KERNELS(soft_argmax, combine, DT, SoftArgmaxOp<T>,                                         \
                (const T* x, fo_mask_t mask, fo_rows_t mask_rows, A scale, A* out),                \
                (x, mask, mask_rows, scale, out))                                                  \
  FO_COLUMNS_KERNEL(soft_argmax, DT, SoftArgmaxColumns<T>, (const T* x, A scale, A* out),          \
                    (x, scale, out))
#define FO_SOFTMAX(T, A, DT)                                                                       \
  FO_OP_KERNELS(softmax, apply, DT, SoftmaxOp<T>,                                                  \
                (const T* x, fo_mask_t mask, fo_rows_t mask_rows, A scale, int log_mode, T* y),    \
                (x, mask, mask_rows, scale, log_mode, y))                                          \
  FO_COLUMNS_KERNEL(softmax, DT, SoftmaxColumns<T>, (const T* x, A scale, int log_mode, T* y),     \
                    (x, scale, log_mode, y))
#define FO_SMOOTH_MAX_BACKWARD(T, A, DT)                                                           \
  FO_OP_KERNELS(smooth_max_backward, apply, DT, SmoothMaxBackwardOp<T>,                            \
                (const T* x, fo_mask_t mask, fo_rows_t mask_rows, A scale, const A* dout,          \
                 T* dx),                                                                           \
                (x, mask, mask_rows, scale, dout, dx))
#define FO_SOFT_ARGMAX_BACKWARD(T, A, DT)                                                          \
  FO_OP_KERNELS(soft_argmax_backward, apply, DT, SoftArgmaxBackwardOp<T>,                          \
                (const T* x, fo_mask_t mask, fo_rows_t mask_rows, A scale, const A* dout,          \
                 T* dx),                                                                           \
                (x, mask, mask_rows, scale, dout, dx))
#define FO_SOFTMAX_BACKWARD(T, A, DT)                                                              \
  FO_OP_KERNELS(softmax_backward, apply, DT, SoftmaxBackwardOp<T>,                                 \
                (const T* y, const T* dy, fo_mask_t mask, fo_rows_t mask_rows, A scale,            \
                 int log_mode, T* dx),                                                             \
                (y, dy, mask, mask_rows, scale, log_mode, dx))
// No row statistic: no partial kernel; the apply kernel alone splits huge rows.
#define FO_LSE_BACKWARD_ARGS(T, A)                                                                 \
  (const T* x, const T* b, fo_rows_t b_rows, fo_mask_t mask, fo_rows_t mask_rows,                  \
   const A* out, const A* dout, T* dx)
#define FO_LSE_BACKWARD(T, A, DT)                                                                  \
  FO_ROWS_KERNEL(lse_backward, DT, LseBackwardOp<T>, FO_LSE_BACKWARD_ARGS(T, A),                   \
                 (x, b, b_rows, mask, mask_rows, out, dout, dx))                                   \
  FO_SECOND_KERNEL(lse_backward, apply, DT, LseBackwardOp<T>, FO_LSE_BACKWARD_ARGS(T, A),          \
                   (x, b, b_rows, mask, mask_rows, out, dout, dx))

#ifdef FASTOPS_OP_LSE
FO_FOR_DTYPES(FO_LSE)
#endif
#ifdef FASTOPS_OP_LSE_WEIGHTED
FO_FOR_DTYPES(FO_LSE_WEIGHTED)
#endif
#ifdef FASTOPS_OP_SOFT_ARGMAX
FO_FOR_DTYPES(FO_SOFT_ARGMAX)
#endif
#ifdef FASTOPS_OP_SOFTMAX
FO_FOR_DTYPES(FO_SOFTMAX)
#endif
#ifdef FASTOPS_OP_SMOOTH_MAX_BACKWARD
FO_FOR_DTYPES(FO_SMOOTH_MAX_BACKWARD)
#endif
#ifdef FASTOPS_OP_SOFT_ARGMAX_BACKWARD
FO_FOR_DTYPES(FO_SOFT_ARGMAX_BACKWARD)
#endif
#ifdef FASTOPS_OP_SOFTMAX_BACKWARD
FO_FOR_DTYPES(FO_SOFTMAX_BACKWARD)
#endif
#ifdef FASTOPS_OP_LSE_BACKWARD
FO_FOR_DTYPES(FO_LSE_BACKWARD)
#endif
