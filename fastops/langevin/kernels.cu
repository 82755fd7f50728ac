// fastops langevin family: CUDA C kernels (loaded by gpu.py through cupy.RawModule, after the
// device library of fastops/random/kernels.cu, which gpu.py prepends with FO_LIBRARY_ONLY).
//
//   step         out = (x + c1 score) + c2 z, z the normals of the stream at positions p0 + i,
//                generated in registers: a thread per Philox block (4 float32 / 2 float64), 16-byte
//                loads and stores when x, score and out are all 16-byte aligned, grid-stride.
//                Every product and sum is an explicitly rounded intrinsic, as on the CPU, so
//                both backends compute the same bits from the same normals. out may be x.
//   mala_accept  a warp per chain: the two proposal squared norms summed in double (lanes
//                stride over the chain's d elements, then a xor butterfly), the Metropolis
//                decision, and the rejected chain's row of x copied over the proposal y.
//   gmm_score    G lanes per point, each holding up to FO_GMM_VPL of the point's coordinates
//                and score accumulators in registers ("reg"; G the smallest power of two with
//                d <= G * FO_GMM_VPL, so d = 2 is a thread per point and d = 64 four lanes), or,
//                for d > 32 * FO_GMM_VPL, 32 lanes reading x from and accumulating into out in
//                global memory ("wide"); one online softmax over the K components (the
//                distance of each component reduced across the G lanes with log2(G) shuffles),
//                so x is read once. Few lanes per point keep the shuffles few per FMA: with
//                G = min(32, pow2(d)) an H200 took 21 ms for n = 1e6, d = K = 64 (0.13x torch's
//                cdist + softmax + GEMM), the shuffles outnumbering the FMAs 5 to 2.
//
// Header-free (NVRTC ships no C library headers); never --use_fast_math.

#define FO_FULL_MASK 0xffffffffu
#define FO_THREADS 256
#define FO_LANGEVIN_LAUNCH __launch_bounds__(FO_THREADS)
#define FO_GMM_VPL 16

template <typename T> struct FoVec;
template <> struct FoVec<float> {
  typedef float4 type;
};
template <> struct FoVec<double> {
  typedef double2 type;
};

__device__ __forceinline__ float fo_axpy2(float x, float c1, float s, float c2, float z) {
  return __fadd_rn(__fadd_rn(x, __fmul_rn(c1, s)), __fmul_rn(c2, z));
}
__device__ __forceinline__ double fo_axpy2(double x, double c1, double s, double c2, double z) {
  return __dadd_rn(__dadd_rn(x, __dmul_rn(c1, s)), __dmul_rn(c2, z));
}

union FoPack4 {
  float4 v;
  float a[4];
};
union FoPack2 {
  double2 v;
  double a[2];
};
template <typename T> struct FoPack;
template <> struct FoPack<float> {
  typedef FoPack4 type;
};
template <> struct FoPack<double> {
  typedef FoPack2 type;
};

template <typename T>
__device__ __forceinline__ void fo_step(const T* x, const T* score, T* out, long long n,
                                        long long p0, T c1, T c2, FoStream st) {
  // Element i takes the normal at stream position p0 + i; a thread per block of the stream.
  const int V = FoValues<T>::V;
  typedef typename FoVec<T>::type VT;
  typedef typename FoPack<T>::type PT;
  const bool vec = p0 % V == 0 && ((reinterpret_cast<unsigned long long>(x) |
                                    reinterpret_cast<unsigned long long>(score) |
                                    reinterpret_cast<unsigned long long>(out)) & 15ULL) == 0;
  const long long first = p0 / V, last = (p0 + n - 1) / V;
  const long long step = (long long)gridDim.x * blockDim.x;
  for (long long j = first + (long long)blockIdx.x * blockDim.x + threadIdx.x; j <= last;
       j += step) {
    const FoValues<T> z = fo_normals<T>((fo_u64)j, st);
    const long long i0 = j * V - p0;
    if (vec && i0 + V <= n) {
      const long long q = i0 / V;
      PT xv, sv, ov;
      xv.v = __ldg(reinterpret_cast<const VT*>(x) + q);
      sv.v = __ldg(reinterpret_cast<const VT*>(score) + q);
#pragma unroll
      for (int l = 0; l < V; ++l) ov.a[l] = fo_axpy2(xv.a[l], c1, sv.a[l], c2, z.v[l]);
      reinterpret_cast<VT*>(out)[q] = ov.v;
    } else {
#pragma unroll
      for (int l = 0; l < V; ++l) {
        const long long i = i0 + l;
        if (i >= 0 && i < n) out[i] = fo_axpy2(x[i], c1, score[i], c2, z.v[l]);
      }
    }
  }
}

template <typename T>
__device__ __forceinline__ void fo_mala_accept(const T* x, T* y, const T* sx, const T* sy,
                                               const double* lp_x, const double* lp_y,
                                               const double* u, double half_h, double inv_2h,
                                               bool* accepted, long long n, long long d) {
  const int lane = threadIdx.x & 31;
  const long long warp = ((long long)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  const long long warps = ((long long)gridDim.x * blockDim.x) >> 5;
  for (long long c = warp; c < n; c += warps) {
    const long long off = c * d;
    double fwd = 0.0, bwd = 0.0;
    for (long long e = lane; e < d; e += 32) {
      const double xv = (double)x[off + e], yv = (double)y[off + e];
      const double f = yv - xv - half_h * (double)sx[off + e];
      const double b = xv - yv - half_h * (double)sy[off + e];
      fwd += f * f;
      bwd += b * b;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      fwd += __shfl_xor_sync(FO_FULL_MASK, fwd, o);
      bwd += __shfl_xor_sync(FO_FULL_MASK, bwd, o);
    }
    const double log_alpha = lp_y[c] - lp_x[c] + (fwd - bwd) * inv_2h;
    const double uc = u[c];
    const bool ok = uc > 0.0 ? log(uc) < log_alpha : log_alpha > -__longlong_as_double(0x7ff0000000000000LL);
    if (lane == 0) accepted[c] = ok;
    if (!ok)
      for (long long e = lane; e < d; e += 32) y[off + e] = x[off + e];
  }
}

// Sum over aligned groups of G lanes (G a power of two <= 32); every lane gets the sum.
template <typename A> __device__ __forceinline__ A fo_group_sum(A v, int G) {
  for (int o = G >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(FO_FULL_MASK, v, o);
  return v;
}

template <typename T, bool REG>
__device__ __forceinline__ void fo_gmm_score(const T* x, const T* means, const T* log_weights,
                                             T inv_2v, T inv_v, long long n, int d, int K, int G,
                                             T* out) {
  const T ninf = -(T)__longlong_as_double(0x7ff0000000000000LL);
  const int lane = threadIdx.x % G;
  const long long groups = ((long long)gridDim.x * blockDim.x) / G;
  const long long first = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / G;
  // All lanes of a warp run the same number of iterations (shuffles use the full mask); groups
  // past the last point compute on a clamped point and store nothing.
  const long long rounds = (n + groups - 1) / groups;
  for (long long r = 0; r < rounds; ++r) {
    const long long p = first + r * groups;
    const bool live = p < n;
    const long long off = (live ? p : n - 1) * (long long)d;
    T xr[REG ? FO_GMM_VPL : 1], acc[REG ? FO_GMM_VPL : 1];
    if (REG) {
#pragma unroll
      for (int t = 0; t < FO_GMM_VPL; ++t) {
        const int j = lane + t * G;
        xr[t] = j < d ? x[off + j] : T(0);
        acc[t] = T(0);
      }
    } else if (live) {
      for (int j = lane; j < d; j += G) out[off + j] = T(0);
    }
    T m = ninf, s = T(0);
    for (int k = 0; k < K; ++k) {
      const T* mu = means + (long long)k * d;
      T part = T(0);
      if (REG) {
#pragma unroll
        for (int t = 0; t < FO_GMM_VPL; ++t) {
          const int j = lane + t * G;
          const T diff = j < d ? xr[t] - __ldg(mu + j) : T(0);
          part += diff * diff;
        }
      } else {
        for (int j = lane; j < d; j += G) {
          const T diff = x[off + j] - __ldg(mu + j);
          part += diff * diff;
        }
      }
      const T logit = __ldg(log_weights + k) - fo_group_sum(part, G) * inv_2v;
      if (logit == ninf) continue;  // weight 0 (also keeps exp(-inf - -inf) out)
      T scale = T(1), e;
      if (logit > m) {  // a new maximum rescales what was summed (a NaN logit never is one)
        scale = exp(m - logit);
        m = logit;
        e = T(1);
      } else {
        e = exp(logit - m);  // NaN for a NaN logit: the point's score becomes NaN
      }
      s = s * scale + e;
      if (REG) {
#pragma unroll
        for (int t = 0; t < FO_GMM_VPL; ++t) {
          const int j = lane + t * G;
          if (j < d) acc[t] = acc[t] * scale + e * __ldg(mu + j);
        }
      } else if (live) {
        for (int j = lane; j < d; j += G) out[off + j] = out[off + j] * scale + e * __ldg(mu + j);
      }
    }
    if (!live) continue;
    const T inv_s = T(1) / s;
    if (REG) {
#pragma unroll
      for (int t = 0; t < FO_GMM_VPL; ++t) {
        const int j = lane + t * G;
        if (j < d) out[off + j] = (acc[t] * inv_s - xr[t]) * inv_v;
      }
    } else {
      for (int j = lane; j < d; j += G) out[off + j] = (out[off + j] * inv_s - x[off + j]) * inv_v;
    }
  }
}

#define FO_STEP(T, DT)                                                                             \
  extern "C" __global__ void FO_LANGEVIN_LAUNCH fastops_step_##DT(                                 \
      const T* x, const T* score, T* out, long long n, long long p0, T c1, T c2, fo_u32 k0,        \
      fo_u32 k1, fo_u32 s0, fo_u32 s1) {                                                           \
    const FoStream st = {k0, k1, s0, s1};                                                          \
    fo_step<T>(x, score, out, n, p0, c1, c2, st);                                                  \
  }

#define FO_MALA_ACCEPT(T, DT)                                                                      \
  extern "C" __global__ void FO_LANGEVIN_LAUNCH fastops_mala_accept_##DT(                          \
      const T* x, T* y, const T* sx, const T* sy, const double* lp_x, const double* lp_y,          \
      const double* u, double half_h, double inv_2h, bool* accepted, long long n, long long d) {   \
    fo_mala_accept<T>(x, y, sx, sy, lp_x, lp_y, u, half_h, inv_2h, accepted, n, d);                \
  }

#define FO_GMM_SCORE(T, DT)                                                                        \
  extern "C" __global__ void FO_LANGEVIN_LAUNCH fastops_gmm_score_reg_##DT(                        \
      const T* x, const T* means, const T* log_weights, T inv_2v, T inv_v, long long n, int d,     \
      int K, int G, T* out) {                                                                      \
    fo_gmm_score<T, true>(x, means, log_weights, inv_2v, inv_v, n, d, K, G, out);                  \
  }                                                                                                \
  extern "C" __global__ void FO_LANGEVIN_LAUNCH fastops_gmm_score_wide_##DT(                       \
      const T* x, const T* means, const T* log_weights, T inv_2v, T inv_v, long long n, int d,     \
      int K, int G, T* out) {                                                                      \
    fo_gmm_score<T, false>(x, means, log_weights, inv_2v, inv_v, n, d, K, G, out);                 \
  }

// ---------------------------------------------------------------------------------------------
// Selection: gpu.py prepends FASTOPS_SELECT, FASTOPS_DTYPE_<DT> and FASTOPS_OP_<OP>; without
// FASTOPS_SELECT (the nvcc test of the whole file) every kernel is compiled.
#ifndef FASTOPS_SELECT
#define FASTOPS_DTYPE_FLOAT32 1
#define FASTOPS_DTYPE_FLOAT64 1
#define FASTOPS_OP_STEP 1
#define FASTOPS_OP_MALA_ACCEPT 1
#define FASTOPS_OP_GMM_SCORE 1
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
#define FO_FOR_DTYPES(OPM) FO_IF_FLOAT32(OPM(float, float32)) FO_IF_FLOAT64(OPM(double, float64))

#ifdef FASTOPS_OP_STEP
FO_FOR_DTYPES(FO_STEP)
#endif
#ifdef FASTOPS_OP_MALA_ACCEPT
FO_FOR_DTYPES(FO_MALA_ACCEPT)
#endif
#ifdef FASTOPS_OP_GMM_SCORE
FO_FOR_DTYPES(FO_GMM_SCORE)
#endif
