// fastops random family: CUDA C of the Philox4x32-10 generator (loaded by gpu.py through
// cupy.RawModule), and the device library that fastops/langevin/kernels.cu builds on.
//
// The arithmetic is fastops/random/reference.py's, operation for operation: integer range
// reductions, Horner polynomials whose every product and sum is an explicitly rounded
// intrinsic (__fmul_rn, __fadd_rn, ...: nvcc would otherwise contract a*b + c into one fused
// multiply-add, whose single rounding differs from the CPU's two), IEEE division and square
// root. So uniforms and normals are the same bits as on the CPU. The polynomial coefficients are
// the reference's float32 / float64 values written as hex literals (the nvcc test checks them).
//
// Counter layout (STREAM_VERSION 1): the value at position i of (seed, stream) comes from block
// j = i / E (E = 4 float32 values or 2 float64 values), key (seed lo, seed hi), counter
// (j lo, j hi, stream lo, stream hi).
//
// Header-free on purpose: NVRTC ships no C library headers. Never --use_fast_math.
//
// With FO_LIBRARY_ONLY defined (the langevin module prepends this file so), only the device
// functions are compiled; gpu.py otherwise compiles one module per (op, dtype) ("Selection").

#ifndef FO_RANDOM_LIBRARY
#define FO_RANDOM_LIBRARY 1

typedef unsigned int fo_u32;
typedef unsigned long long fo_u64;

struct FoWords {
  fo_u32 w0, w1, w2, w3;
};

#define FO_PHILOX_M0 0xD2511F53u
#define FO_PHILOX_M1 0xCD9E8D57u
#define FO_PHILOX_W0 0x9E3779B9u
#define FO_PHILOX_W1 0xBB67AE85u

__device__ __forceinline__ FoWords fo_philox(fo_u32 c0, fo_u32 c1, fo_u32 c2, fo_u32 c3,
                                             fo_u32 k0, fo_u32 k1) {
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    const fo_u32 hi0 = __umulhi(FO_PHILOX_M0, c0), lo0 = FO_PHILOX_M0 * c0;
    const fo_u32 hi1 = __umulhi(FO_PHILOX_M1, c2), lo1 = FO_PHILOX_M1 * c2;
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
    k0 += FO_PHILOX_W0;
    k1 += FO_PHILOX_W1;
  }
  FoWords w = {c0, c1, c2, c3};
  return w;
}

// The key and the stream half of the counter.
struct FoStream {
  fo_u32 k0, k1, s0, s1;
};

__device__ __forceinline__ FoWords fo_block(fo_u64 j, const FoStream& st) {
  return fo_philox((fo_u32)j, (fo_u32)(j >> 32), st.s0, st.s1, st.k0, st.k1);
}

// ---------------------------------------------------------------------------------------------
// Uniforms in [0, 1): exact, so any rounding mode gives the same bits.

__device__ __forceinline__ float fo_uniform32(fo_u32 w) {
  return __fmul_rn(__uint2float_rn(w >> 8), 0x1p-24f);
}
__device__ __forceinline__ double fo_uniform64(fo_u32 hi, fo_u32 lo) {
  return __dmul_rn(__dadd_rn(__dmul_rn((double)(hi >> 5), 67108864.0), (double)(lo >> 6)),
                   0x1p-53);
}

// ---------------------------------------------------------------------------------------------
// ln(k 2^-24), k in [1, 2^24] / ln(k 2^-53), k in [1, 2^53]: exponent from the bits of (float)k,
// mantissa m in [sqrt(1/2), sqrt(2)), ln m = 2z + z w P(w), z = (m - 1)/(m + 1), w = z^2.

__device__ __forceinline__ float fo_log_count32(int k) {
  const int bits = __float_as_int(__int2float_rn(k));
  int e = (bits >> 23) - 127;
  float m = __int_as_float((bits & 0x7FFFFF) | 0x3F800000);
  const bool big = m > 0x1.6a09e6p+0f;
  m = big ? __fmul_rn(m, 0.5f) : m;
  e = (big ? e + 1 : e) - 24;
  const float z = __fdiv_rn(__fsub_rn(m, 1.0f), __fadd_rn(m, 1.0f));
  const float w = __fmul_rn(z, z);
  float p = 0x1.745d18p-3f;
  p = __fadd_rn(__fmul_rn(p, w), 0x1.c71c72p-3f);
  p = __fadd_rn(__fmul_rn(p, w), 0x1.24924ap-2f);
  p = __fadd_rn(__fmul_rn(p, w), 0x1.99999ap-2f);
  p = __fadd_rn(__fmul_rn(p, w), 0x1.555556p-1f);
  const float lnm = __fadd_rn(__fmul_rn(z, 2.0f), __fmul_rn(z, __fmul_rn(w, p)));
  const float ef = __int2float_rn(e);
  return __fadd_rn(__fmul_rn(ef, 0x1.63p-1f), __fadd_rn(__fmul_rn(ef, -0x1.bd0106p-13f), lnm));
}

__device__ __forceinline__ double fo_log_count64(long long k) {
  const long long bits = __double_as_longlong(__ll2double_rn(k));
  long long e = (bits >> 52) - 1023;
  double m = __longlong_as_double((bits & 0xFFFFFFFFFFFFFLL) | 0x3FF0000000000000LL);
  const bool big = m > 0x1.6a09e667f3bcdp+0;
  m = big ? __dmul_rn(m, 0.5) : m;
  e = (big ? e + 1 : e) - 53;
  const double z = __ddiv_rn(__dsub_rn(m, 1.0), __dadd_rn(m, 1.0));
  const double w = __dmul_rn(z, z);
  double p = 0x1.8618618618618p-4;
  p = __dadd_rn(__dmul_rn(p, w), 0x1.af286bca1af28p-4);
  p = __dadd_rn(__dmul_rn(p, w), 0x1.e1e1e1e1e1e1ep-4);
  p = __dadd_rn(__dmul_rn(p, w), 0x1.1111111111111p-3);
  p = __dadd_rn(__dmul_rn(p, w), 0x1.3b13b13b13b14p-3);
  p = __dadd_rn(__dmul_rn(p, w), 0x1.745d1745d1746p-3);
  p = __dadd_rn(__dmul_rn(p, w), 0x1.c71c71c71c71cp-3);
  p = __dadd_rn(__dmul_rn(p, w), 0x1.2492492492492p-2);
  p = __dadd_rn(__dmul_rn(p, w), 0x1.999999999999ap-2);
  p = __dadd_rn(__dmul_rn(p, w), 0x1.5555555555555p-1);
  const double lnm = __dadd_rn(__dmul_rn(z, 2.0), __dmul_rn(z, __dmul_rn(w, p)));
  const double ef = __ll2double_rn(e);
  return __dadd_rn(__dmul_rn(ef, 0x1.62e42feep-1),
                   __dadd_rn(__dmul_rn(ef, 0x1.a39ef35793c76p-33), lnm));
}

// ---------------------------------------------------------------------------------------------
// (cos, sin) of 2 pi k 2^-b: the nearest quarter turn n (halves up) by integer arithmetic, the
// rest f in [-1/2, 1/2) exactly, sin(pi f / 2) = f S(f^2), cos(pi f / 2) = C(f^2), then the
// quadrant n & 3: (c, s), (-s, c), (-c, -s), (s, -c) (exact sign factors, as on the CPU).

template <typename A>
__device__ __forceinline__ void fo_quadrant(int q, A c, A s, A* cos_t, A* sin_t);
template <>
__device__ __forceinline__ void fo_quadrant<float>(int q, float c, float s, float* cos_t,
                                                   float* sin_t) {
  const bool odd = (q & 1) != 0;
  const float cs = (float)(1 - 2 * ((q ^ (q >> 1)) & 1)), ss = (float)(1 - 2 * ((q >> 1) & 1));
  *cos_t = __fmul_rn(odd ? s : c, cs);
  *sin_t = __fmul_rn(odd ? c : s, ss);
}
template <>
__device__ __forceinline__ void fo_quadrant<double>(int q, double c, double s, double* cos_t,
                                                    double* sin_t) {
  const bool odd = (q & 1) != 0;
  const double cs = (double)(1 - 2 * ((q ^ (q >> 1)) & 1)), ss = (double)(1 - 2 * ((q >> 1) & 1));
  *cos_t = __dmul_rn(odd ? s : c, cs);
  *sin_t = __dmul_rn(odd ? c : s, ss);
}

__device__ __forceinline__ void fo_sincos_turns32(int k, float* cos_t, float* sin_t) {
  const int n = (k + (1 << 21)) >> 22;
  const float f = __fmul_rn(__int2float_rn(k - (n << 22)), 0x1p-22f);
  const float w = __fmul_rn(f, f);
  float s = 0x1.507834p-13f;
  s = __fadd_rn(__fmul_rn(s, w), -0x1.32d2ccp-8f);
  s = __fadd_rn(__fmul_rn(s, w), 0x1.466bc6p-4f);
  s = __fadd_rn(__fmul_rn(s, w), -0x1.4abbcep-1f);
  s = __fadd_rn(__fmul_rn(s, w), 0x1.921fb6p+0f);
  s = __fmul_rn(f, s);
  float c = -0x1.a6d1f2p-16f;
  c = __fadd_rn(__fmul_rn(c, w), 0x1.e1f506p-11f);
  c = __fadd_rn(__fmul_rn(c, w), -0x1.55d3c8p-6f);
  c = __fadd_rn(__fmul_rn(c, w), 0x1.03c1f0p-2f);
  c = __fadd_rn(__fmul_rn(c, w), -0x1.3bd3ccp+0f);
  c = __fadd_rn(__fmul_rn(c, w), 0x1p+0f);
  fo_quadrant<float>(n & 3, c, s, cos_t, sin_t);
}

__device__ __forceinline__ void fo_sincos_turns64(long long k, double* cos_t, double* sin_t) {
  const long long n = (k + (1LL << 50)) >> 51;
  const double f = __dmul_rn(__ll2double_rn(k - (n << 51)), 0x1p-51);
  const double w = __dmul_rn(f, f);
  double s = 0x1.aaec32af93355p-38;
  s = __dadd_rn(__dmul_rn(s, w), -0x1.6fadb9f155740p-31);
  s = __dadd_rn(__dmul_rn(s, w), 0x1.e8f434d018d5fp-25);
  s = __dadd_rn(__dmul_rn(s, w), -0x1.e3074fde8871cp-19);
  s = __dadd_rn(__dmul_rn(s, w), 0x1.50783487ee77fp-13);
  s = __dadd_rn(__dmul_rn(s, w), -0x1.32d2cce62bd84p-8);
  s = __dadd_rn(__dmul_rn(s, w), 0x1.466bc6775aae1p-4);
  s = __dadd_rn(__dmul_rn(s, w), -0x1.4abbce625be52p-1);
  s = __dadd_rn(__dmul_rn(s, w), 0x1.921fb54442d18p+0);
  s = __dmul_rn(f, s);
  double c = -0x1.2a0c591af8310p-41;
  c = __dadd_rn(__dmul_rn(c, w), 0x1.20c62c2f2d7f1p-34);
  c = __dadd_rn(__dmul_rn(c, w), -0x1.b6e24f44b128bp-28);
  c = __dadd_rn(__dmul_rn(c, w), 0x1.f9d38a3763cbep-22);
  c = __dadd_rn(__dmul_rn(c, w), -0x1.a6d1f2a204a89p-16);
  c = __dadd_rn(__dmul_rn(c, w), 0x1.e1f506891bab8p-11);
  c = __dadd_rn(__dmul_rn(c, w), -0x1.55d3c7e3cbff9p-6);
  c = __dadd_rn(__dmul_rn(c, w), 0x1.03c1f081b5ac3p-2);
  c = __dadd_rn(__dmul_rn(c, w), -0x1.3bd3cc9be45dep+0);
  c = __dadd_rn(__dmul_rn(c, w), 0x1p+0);
  fo_quadrant<double>((int)(n & 3), c, s, cos_t, sin_t);
}

// ---------------------------------------------------------------------------------------------
// Box-Muller: the pair of words (a, b) -> two float32 normals; a block -> two float64 normals.

__device__ __forceinline__ void fo_box_muller32(fo_u32 a, fo_u32 b, float* z0, float* z1) {
  const float r = __fsqrt_rn(__fmul_rn(fo_log_count32((int)(a >> 8) + 1), -2.0f));
  float c, s;
  fo_sincos_turns32((int)(b >> 8), &c, &s);
  *z0 = __fmul_rn(r, c);
  *z1 = __fmul_rn(r, s);
}

__device__ __forceinline__ void fo_box_muller64(const FoWords& w, double* z0, double* z1) {
  const long long k1 = (long long)(w.w0 >> 5) * 67108864LL + (long long)(w.w1 >> 6) + 1;
  const long long k2 = (long long)(w.w2 >> 5) * 67108864LL + (long long)(w.w3 >> 6);
  const double r = __dsqrt_rn(__dmul_rn(fo_log_count64(k1), -2.0));
  double c, s;
  fo_sincos_turns64(k2, &c, &s);
  *z0 = __dmul_rn(r, c);
  *z1 = __dmul_rn(r, s);
}

// The values of block j: V = 4 (float32) or 2 (float64) of them.
template <typename T> struct FoValues;
template <> struct FoValues<float> {
  static constexpr int V = 4;
  float v[4];
};
template <> struct FoValues<double> {
  static constexpr int V = 2;
  double v[2];
};

template <typename T> __device__ __forceinline__ FoValues<T> fo_normals(fo_u64 j, const FoStream& st);
template <>
__device__ __forceinline__ FoValues<float> fo_normals<float>(fo_u64 j, const FoStream& st) {
  const FoWords w = fo_block(j, st);
  FoValues<float> r;
  fo_box_muller32(w.w0, w.w1, &r.v[0], &r.v[1]);
  fo_box_muller32(w.w2, w.w3, &r.v[2], &r.v[3]);
  return r;
}
template <>
__device__ __forceinline__ FoValues<double> fo_normals<double>(fo_u64 j, const FoStream& st) {
  const FoWords w = fo_block(j, st);
  FoValues<double> r;
  fo_box_muller64(w, &r.v[0], &r.v[1]);
  return r;
}

template <typename T> __device__ __forceinline__ FoValues<T> fo_uniforms(fo_u64 j, const FoStream& st);
template <>
__device__ __forceinline__ FoValues<float> fo_uniforms<float>(fo_u64 j, const FoStream& st) {
  const FoWords w = fo_block(j, st);
  FoValues<float> r;
  r.v[0] = fo_uniform32(w.w0);
  r.v[1] = fo_uniform32(w.w1);
  r.v[2] = fo_uniform32(w.w2);
  r.v[3] = fo_uniform32(w.w3);
  return r;
}
template <>
__device__ __forceinline__ FoValues<double> fo_uniforms<double>(fo_u64 j, const FoStream& st) {
  const FoWords w = fo_block(j, st);
  FoValues<double> r;
  r.v[0] = fo_uniform64(w.w0, w.w1);
  r.v[1] = fo_uniform64(w.w2, w.w3);
  return r;
}

#endif  // FO_RANDOM_LIBRARY

#ifndef FO_LIBRARY_ONLY
// ---------------------------------------------------------------------------------------------
// Kernels. fill: out[p] = value at position offset + p, p < n; a thread per block of the
// stream (grid-stride), blocks j = offset / V ... (offset + n - 1) / V.

#define FO_MAX_THREADS 256
#define FO_LAUNCH __launch_bounds__(FO_MAX_THREADS)

template <typename T, bool NORMAL>
__device__ __forceinline__ void fo_fill(T* out, long long n, long long offset, FoStream st) {
  const int V = FoValues<T>::V;
  if (n <= 0) return;
  const long long first = offset / V, last = (offset + n - 1) / V;
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long j = first + (long long)blockIdx.x * blockDim.x + threadIdx.x; j <= last;
       j += step) {
    const FoValues<T> r = NORMAL ? fo_normals<T>((fo_u64)j, st) : fo_uniforms<T>((fo_u64)j, st);
    const long long p0 = j * V - offset;
#pragma unroll
    for (int l = 0; l < V; ++l) {
      const long long p = p0 + l;
      if (p >= 0 && p < n) out[p] = r.v[l];
    }
  }
}

#define FO_FILL(T, DT)                                                                             \
  extern "C" __global__ void FO_LAUNCH fastops_fill_uniform_##DT(T* out, long long n, long long offset, \
                                                            fo_u32 k0, fo_u32 k1, fo_u32 s0,      \
                                                            fo_u32 s1) {                           \
    const FoStream st = {k0, k1, s0, s1};                                                          \
    fo_fill<T, false>(out, n, offset, st);                                                         \
  }                                                                                                \
  extern "C" __global__ void FO_LAUNCH fastops_fill_normal_##DT(T* out, long long n, long long offset,  \
                                                           fo_u32 k0, fo_u32 k1, fo_u32 s0,       \
                                                           fo_u32 s1) {                            \
    const FoStream st = {k0, k1, s0, s1};                                                          \
    fo_fill<T, true>(out, n, offset, st);                                                          \
  }

// The raw block function over n (counter, key) pairs.
#define FO_PHILOX_KERNEL                                                                           \
extern "C" __global__ void FO_LAUNCH fastops_philox4x32_uint32(const fo_u32* counter,              \
                                                               const fo_u32* key, fo_u32* out,     \
                                                               long long n) {                      \
  const long long step = (long long)gridDim.x * blockDim.x;                                        \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {         \
    const FoWords w = fo_philox(counter[4 * i], counter[4 * i + 1], counter[4 * i + 2],            \
                                counter[4 * i + 3], key[2 * i], key[2 * i + 1]);                   \
    out[4 * i] = w.w0;                                                                             \
    out[4 * i + 1] = w.w1;                                                                         \
    out[4 * i + 2] = w.w2;                                                                         \
    out[4 * i + 3] = w.w3;                                                                         \
  }                                                                                                \
}

// ---------------------------------------------------------------------------------------------
// Selection: gpu.py prepends FASTOPS_SELECT, FASTOPS_DTYPE_<DT> and FASTOPS_OP_<OP>; without
// FASTOPS_SELECT (the nvcc test of the whole file) every kernel is compiled.
#ifndef FASTOPS_SELECT
#define FASTOPS_DTYPE_FLOAT32 1
#define FASTOPS_DTYPE_FLOAT64 1
#define FASTOPS_DTYPE_UINT32 1
#define FASTOPS_OP_FILL 1
#define FASTOPS_OP_PHILOX4X32 1
#endif

#if defined(FASTOPS_OP_PHILOX4X32) && defined(FASTOPS_DTYPE_UINT32)
FO_PHILOX_KERNEL
#endif

#ifdef FASTOPS_OP_FILL
#ifdef FASTOPS_DTYPE_FLOAT32
FO_FILL(float, float32)
#endif
#ifdef FASTOPS_DTYPE_FLOAT64
FO_FILL(double, float64)
#endif
#endif

#endif  // FO_LIBRARY_ONLY
