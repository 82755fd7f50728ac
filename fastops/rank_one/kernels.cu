// fastops rank_one family: CUDA C kernels (loaded by gpu.py through cupy.RawModule).
//
// exp(x yᵀ) = I + φ(s) x yᵀ with s = yᵀx, φ(s) = expm1(s)/s (formulas.md section 2; the math is
// in BACKEND_INTERFACE.md). T (what is stored) is float or double; every scalar (dot products,
// s, φ, φ', the coefficients) and every per-element result is computed in double and rounded
// once to T. Batch entry b finds its operand rows through index maps (idx[b]; a null map is the
// identity), so a broadcast operand is read from its single copy.
//
// Launch shape ("groups"): tpr threads per batch entry (or per dense row), tpr a power of two
// <= 32 with several entries per 256-thread block (short vectors), or tpr == blockDim.x (one
// entry per block, long vectors). Blocks grid-stride over the entries with a loop bound uniform
// per block, so every thread reaches every fo_group_sums (inactive groups sum on a valid entry
// and do not write). Lane l of a group takes the elements j = l, l + tpr, ...: coalesced.
//
// Chains keep the vector in registers, NPT doubles per thread (element j = lane + i * tpr):
// shape "sub" (tpr <= 32, NPT = 8: k <= 256) and "block" (tpr = 256, NPT = 16: k <= 4096);
// beyond that shape "global" keeps it in a double scratch row per block. The chain backward
// stores each factor's input in the dxs / dys output slots as a double split into two T values
// (hi in dxs, lo = z - hi in dys: ~48 mantissa bits for float), then overwrites both with the
// gradients while walking the factors back.
//
// Header-free on purpose: NVRTC ships no C library headers; the libm device functions used here
// (expm1, exp, log, log1p, fabs, copysign, fma) are built in. Never --use_fast_math: expm1 / exp
// must be the accurate ones (never __expf) and NaN / inf must propagate.
//
// gpu.py compiles one module per (op, dtype) (see "Selection" at the end of this file).

#define FO_FULL_MASK 0xffffffffu
#define FO_MAX_THREADS 256
#define FO_LAUNCH __launch_bounds__(FO_MAX_THREADS)
#define FO_WARPS (FO_MAX_THREADS / 32)
// Register-resident elements per thread of the chain kernels (gpu.py _NPT reads these).
#define FO_NPT_SUB 8
#define FO_NPT_BLOCK 16
// |s| below which φ'(s) is its Taylor series Σ n s^(n−1)/(n+1)!, n = 1..FO_DPHI_TERMS
// (reference.py DPHI_TAYLOR_BELOW, DPHI_TERMS: the direct formula loses up to 7 bits at 1e-2).
#define FO_DPHI_TAYLOR_BELOW 1.0
#define FO_DPHI_TERMS 18
// s is recomputed as a compensated dot product (fo_dot2) where the plain sum's estimated
// error eps·Σ|x_j y_j|·(0.3 + 3/√k) passes this many eps, float64 only (cpu.py
// _COMPENSATE_ABOVE says where the estimate comes from).
#define FO_COMPENSATE_ABOVE 4.0
// An applied entry takes the eigen form where its estimated bound is 8x smaller (reference.py
// EIGEN_FORM_GAIN).
#define FO_EIGEN_FORM_GAIN 8.0
// ... which it can only be below t = −1.5 (cpu.py _EIGEN_FORM_T_BELOW).
#define FO_EIGEN_FORM_T_BELOW -1.0
#define FO_DBL_MAX 1.7976931348623157e308

// ---------------------------------------------------------------------------------------------
// Scalars (once per batch entry).

__device__ __forceinline__ bool fo_isnan(double v) { return v != v; }
__device__ __forceinline__ bool fo_isinf(double v) { return fabs(v) > FO_DBL_MAX; }
__device__ __forceinline__ bool fo_isfinite(double v) { return fabs(v) <= FO_DBL_MAX; }

// φ(s) = expm1(s)/s, exactly 1 at s = 0.
__device__ __forceinline__ double fo_phi(double s) { return s == 0.0 ? 1.0 : expm1(s) / s; }

// φ'(s) = (e^s − φ(s))/s; Taylor series for |s| < 1 (the direct formula cancels there).
__device__ __forceinline__ double fo_dphi(double s) {
  if (fabs(s) < FO_DPHI_TAYLOR_BELOW) {
    // n/(n+1)! from n = FO_DPHI_TERMS down to 1, by Horner
    double fact = 1.0;
    for (int n = 2; n <= FO_DPHI_TERMS + 1; ++n) fact *= n;  // (FO_DPHI_TERMS + 1)!
    double t = 0.0;
    for (int n = FO_DPHI_TERMS; n >= 1; --n) {
      t = (double)n / fact + s * t;
      fact /= (double)(n + 1);
    }
    return t;
  }
  return (exp(s) - fo_phi(s)) / s;
}

// Error-free transformations (fastops/_exact.py): s + e = a + b, p + e = a·b exactly.
__device__ __forceinline__ void fo_two_sum(double a, double b, double& s, double& e) {
  s = a + b;
  const double bb = s - a;
  e = (a - (s - bb)) + (b - bb);
}
__device__ __forceinline__ void fo_two_prod(double a, double b, double& p, double& e) {
  p = a * b;
  e = fma(a, b, -p);
}
// a·d − b·c to an ulp or two of its magnitude (Kahan).
__device__ __forceinline__ double fo_det2(double a, double b, double c, double d) {
  const double w = b * c;
  return fma(a, d, -w) + fma(-b, c, w);
}
// Σ x_j y_j as hi + lo, as if in twice double's precision (Ogita-Rump-Oishi Dot2), one thread.
template <typename T>
__device__ double fo_dot2(const T* __restrict__ xr, const T* __restrict__ yr, long long k,
                          double& lo) {
  double s = 0.0, c = 0.0;
  for (long long j = 0; j < k; ++j) {
    double p, ep, es;
    fo_two_prod((double)__ldg(xr + j), (double)__ldg(yr + j), p, ep);
    fo_two_sum(s, p, s, es);
    c += ep + es;
  }
  double hi;
  fo_two_sum(s, c, hi, lo);
  if (!fo_isfinite(hi)) lo = 0.0;
  return hi;
}
// (s, s_lo): the group's float64 sum s (m = Σ|x_j y_j|), or, float64 input whose bound calls
// for it, the compensated sum (every lane computes the same: the group stays uniform).
// Whether a float64 sum of k terms with Σ|terms| = m may err by more than FO_COMPENSATE_ABOVE
// eps (the estimate of cpu.py _needs_compensation).
template <typename T>
__device__ __forceinline__ bool fo_needs_compensation(double m, long long k) {
  return sizeof(T) == 8 && m * (0.3 + 3.0 / sqrt((double)k)) > FO_COMPENSATE_ABOVE &&
         fo_isfinite(m);
}
template <typename T>
__device__ __forceinline__ double fo_compensated(const T* __restrict__ xr,
                                                 const T* __restrict__ yr, long long k,
                                                 double s, double m, double& s_lo) {
  s_lo = 0.0;
  if (fo_needs_compensation<T>(m, k)) return fo_dot2(xr, yr, k, s_lo);
  return s;
}

// φ(s + lo), φ'(s + lo), e^(s + lo) to first order in lo.
__device__ __forceinline__ double fo_phi2(double s, double lo) {
  const double ph = fo_phi(s);
  return (lo != 0.0 && fo_isfinite(ph)) ? ph + fo_dphi(s) * lo : ph;
}
__device__ __forceinline__ double fo_exp2(double s, double lo) {
  const double e = exp(s);
  return (lo != 0.0 && fo_isfinite(e)) ? e + e * lo : e;
}
__device__ __forceinline__ double fo_dphi2(double s, double lo) {
  if (lo == 0.0 || fabs(s) < FO_DPHI_TAYLOR_BELOW || !fo_isfinite(exp(s))) return fo_dphi(s);
  return (fo_exp2(s, lo) - fo_phi2(s, lo)) / s;
}

// (g(s), g'(s)) at s + lo: (φ(s), φ'(s)) for E, (−φ(−s), φ'(−s)) for E⁻¹.
__device__ __forceinline__ void fo_factor(double s, double lo, int inverse, double& g,
                                          double& gp) {
  if (inverse) {
    g = -fo_phi2(-s, -lo);
    gp = fo_dphi2(-s, -lo);
  } else {
    g = fo_phi2(s, lo);
    gp = fo_dphi2(s, lo);
  }
}

// g(s)·a at s + lo: 0 when a == 0 (unless g is NaN), in log space where φ overflowed.
__device__ __forceinline__ double fo_coef(double s, double lo, double a, int inverse) {
  const double t = inverse ? -s : s;
  const double sign = inverse ? -1.0 : 1.0;
  const double ph = fo_phi2(t, inverse ? -lo : lo);
  if (a == 0.0 && !fo_isnan(ph)) return 0.0;
  double c = sign * ph * a;
  if (fo_isinf(ph) && fo_isfinite(t) && fo_isfinite(a)) {
    const double log_c = t - log(t) + log1p(-exp(-t)) + log(fabs(a));
    c = sign * copysign(exp(log_c), a);
  }
  return c;
}

// c·x with c·0 = 0 even for an infinite c.
__device__ __forceinline__ double fo_scaled(double c, double x) { return x != 0.0 ? c * x : 0.0; }

__device__ __forceinline__ long long fo_at(const long long* __restrict__ idx, long long b) {
  return idx ? idx[b] : b;
}

// Sum each of v[0..N) over aligned groups of tpr threads (see the header); every thread of the
// group gets the sums. All threads of the block must call it.
template <int N>
__device__ __forceinline__ void fo_group_sums(double (&v)[N], int tpr, double* sm) {
  const int w = tpr < 32 ? tpr : 32;
  for (int off = w >> 1; off > 0; off >>= 1) {
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] += __shfl_xor_sync(FO_FULL_MASK, v[i], off);
  }
  if (tpr > 32) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (lane == 0) {
#pragma unroll
      for (int i = 0; i < N; ++i) sm[warp * N + i] = v[i];
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < N; ++i) {
      double t = sm[i];
      for (int q = 1; q < nw; ++q) t += sm[q * N + i];
      v[i] = t;
    }
    __syncthreads();  // sm is reused by the next call
  }
}

// The group loop: f(b, active, lane) once per entry of the thread's group.
template <class F>
__device__ __forceinline__ void fo_groups(long long n, int tpr, F&& f) {
  const int gpb = blockDim.x / tpr;
  const int grp = threadIdx.x / tpr;
  const int lane = threadIdx.x - grp * tpr;
  const long long step = (long long)gridDim.x * gpb;
  for (long long base = (long long)blockIdx.x * gpb; base < n; base += step) {
    const long long b = base + grp;
    const bool active = b < n;
    f(active ? b : base, active, lane);
  }
}

// ---------------------------------------------------------------------------------------------
// logdet / dense.

// s[b] = yᵀx (correctly rounded: compensated where the plain sum's bound passes a quarter ulp);
// WRITE_PHI: phi[4b..4b+4) = (φ(s), s, s_lo, e^s), the dense matrix's scalars, instead.
template <typename T, bool WRITE_PHI>
__device__ __forceinline__ void dot_entries_body(const T* __restrict__ x,
                                                 const long long* __restrict__ ix,
                                                 const T* __restrict__ y,
                                                 const long long* __restrict__ iy, long long B,
                                                 long long k, int tpr, T* __restrict__ s_out,
                                                 double* __restrict__ phi_out) {
  __shared__ double sm[FO_WARPS * 2];
  fo_groups(B, tpr, [&](long long b, bool active, int lane) {
    const T* xr = x + fo_at(ix, b) * k;
    const T* yr = y + fo_at(iy, b) * k;
    double acc[2] = {0.0, 0.0};
    for (long long j = lane; j < k; j += tpr) {
      const double p = (double)__ldg(xr + j) * (double)__ldg(yr + j);
      acc[0] += p;
      acc[1] += fabs(p);
    }
    fo_group_sums<2>(acc, tpr, sm);
    if (active && lane == 0) {
      if constexpr (WRITE_PHI) {
        double lo;
        const double sv = fo_compensated(xr, yr, k, acc[0], acc[1], lo);
        phi_out[4 * b] = fo_phi2(sv, lo);
        phi_out[4 * b + 1] = sv;
        phi_out[4 * b + 2] = lo;
        phi_out[4 * b + 3] = fo_exp2(sv, lo);
      } else {
        double lo;
        s_out[b] = (T)(sizeof(T) == 8 && 4.0 * acc[1] * (double)k > fabs(acc[0])
                           ? fo_dot2(xr, yr, k, lo) : acc[0]);
      }
    }
  });
}

// E_ii = 1 + φ p_i, or where its bound is larger the same number as e^s − φ r_i with
// r_i = s − p_i in double-double (cpu.py _diagonal).
__device__ __forceinline__ double fo_diagonal(double xi, double yi, const double* __restrict__ sc) {
  double p, e;
  fo_two_prod(xi, yi, p, e);
  if (p == 0.0) return 1.0;
  const double ph = sc[0], sv = sc[1], lo = sc[2], es = sc[3];
  double r, r_e;
  fo_two_sum(sv, -p, r, r_e);
  r = r + (r_e + (lo - e));
  if (es + ph * fabs(r) < 1.0 + fabs(ph * p)) return es - ph * r;
  return 1.0 + ph * p;
}

// out[b, i, :] = δ_i + φ_b x_i y (0 where x_i y_j == 0), the diagonal by fo_diagonal: groups
// run over the B·k rows.
template <typename T>
__device__ __forceinline__ void dense_body(const T* __restrict__ x, const long long* __restrict__ ix,
                                           const T* __restrict__ y,
                                           const long long* __restrict__ iy,
                                           const double* __restrict__ phi, long long B,
                                           long long k, int tpr, T* __restrict__ out) {
  fo_groups(B * k, tpr, [&](long long r, bool active, int lane) {
    if (!active) return;
    const long long b = r / k;
    const long long i = r - b * k;
    const double xi = (double)__ldg(x + fo_at(ix, b) * k + i);
    const T* yr = y + fo_at(iy, b) * k;
    const double ph = __ldg(phi + 4 * b);
    T* o = out + r * k;
    for (long long j = lane; j < k; j += tpr) {
      const double t = xi * (double)__ldg(yr + j);
      const double e = t != 0.0 ? ph * t : 0.0;
      o[j] = (T)(j == i ? fo_diagonal(xi, (double)__ldg(yr + j), phi + 4 * b) : e);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// apply and its backward: one read of x, y, v (dz) for the dot products; the writes re-read the
// entry's rows from L1 / L2.

template <typename T>
__device__ __forceinline__ void apply_body(const T* __restrict__ x, const long long* __restrict__ ix,
                                           const T* __restrict__ y,
                                           const long long* __restrict__ iy,
                                           const T* __restrict__ v,
                                           const long long* __restrict__ iv, long long B,
                                           long long k, int tpr, int inverse,
                                           T* __restrict__ out) {
  __shared__ double sm[FO_WARPS * 7];
  fo_groups(B, tpr, [&](long long b, bool active, int lane) {
    const T* xr = x + fo_at(ix, b) * k;
    const T* yr = y + fo_at(iy, b) * k;
    const T* vr = v + fo_at(iv, b) * k;
    // s, a = yᵀv, Σ|x_j y_j|, |x|², |v|², xᵀv, Σ|y_j v_j| (for the compensation and the
    // eigen-form decisions, cpu.py _needs_compensation / _eigen_form_pays)
    double acc[7] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    for (long long j = lane; j < k; j += tpr) {
      const double xj = (double)__ldg(xr + j), yj = (double)__ldg(yr + j);
      const double vj = (double)__ldg(vr + j);
      const double p = xj * yj, q = vj * yj;
      acc[0] += p;
      acc[1] += q;
      acc[2] += fabs(p);
      acc[3] = fma(xj, xj, acc[3]);
      acc[4] = fma(vj, vj, acc[4]);
      acc[5] = fma(xj, vj, acc[5]);
      acc[6] += fabs(q);
    }
    fo_group_sums<7>(acc, tpr, sm);
    if (!active) return;
    double lo;
    const double sv = fo_compensated(xr, yr, k, acc[0], acc[2], lo);
    const double t = inverse ? -sv : sv, t_lo = inverse ? -lo : lo;
    const double ph = fo_phi2(t, t_lo);
    double a = acc[1];
    // a = yᵀv compensated where s was and a's own sum calls for it (cpu.py _apply_impl)
    if (fo_needs_compensation<T>(acc[2], k) && fo_needs_compensation<T>(acc[6], k)) {
      double a_lo;
      a = fo_dot2(yr, vr, k, a_lo);
    }
    const double c = fo_coef(sv, lo, a, inverse);
    const double nx = sqrt(acc[3]), nv = sqrt(acc[4]);
    T* o = out + b * k;
    for (long long j = lane; j < k; j += tpr) {
      o[j] = (T)((double)__ldg(vr + j) + fo_scaled(c, (double)__ldg(xr + j)));
    }
    if (t >= FO_EIGEN_FORM_T_BELOW || !fo_isfinite(c) || !fo_isfinite(ph)) return;
    // norm-wise: the eigen form's terms (divided by 1 + |φ| to stay finite at s ≈ 709)
    const double tau2 = a * a * acc[3] - 2.0 * a * sv * acc[5] + sv * sv * acc[4];
    const double scale = 1.0 / (1.0 + fabs(ph)), w = fabs(ph) * scale;
    const double estimate = fabs(scale + t * w) * nv + w * sqrt(fmax(tau2, 0.0));
    if (!(FO_EIGEN_FORM_GAIN * estimate < nv * scale + w * fabs(a) * nx)) return;
    // the eigen form e^t v_j + σ φ(t) τ_j, τ_j = Σ_l y_l (x_j v_l − x_l v_j), where its bound
    // is the smaller (O(k) per element: flagged entries only)
    double s_lo;
    const double s2 = fo_dot2(xr, yr, k, s_lo);
    const double t2 = inverse ? -s2 : s2, t2_lo = inverse ? -s_lo : s_lo;
    const double sign = inverse ? -1.0 : 1.0;
    const double ph2 = fo_phi2(t2, t2_lo), es2 = fo_exp2(t2, t2_lo);
    for (long long j = lane; j < k; j += tpr) {
      const double xj = (double)__ldg(xr + j), vj = (double)__ldg(vr + j);
      double tau = 0.0, tau_bound = 0.0;
      for (long long l = 0; l < k; ++l) {
        if (l == j) continue;
        const double d = (double)__ldg(yr + l) *
                         fo_det2(xj, (double)__ldg(xr + l), vj, (double)__ldg(vr + l));
        tau += d;
        tau_bound += fabs(d);
      }
      if (es2 * fabs(vj) + fabs(ph2) * tau_bound < fabs(vj) + fabs(fo_scaled(c, xj))) {
        o[j] = (T)(es2 * vj + sign * ph2 * tau);
      }
    }
  });
}

template <typename T>
__device__ __forceinline__ void apply_backward_body(
    const T* __restrict__ x, const long long* __restrict__ ix, const T* __restrict__ y,
    const long long* __restrict__ iy, const T* __restrict__ v, const long long* __restrict__ iv,
    const T* __restrict__ dz, const long long* __restrict__ idz, long long B, long long k, int tpr,
    int inverse, T* __restrict__ dx, T* __restrict__ dy, T* __restrict__ dv) {
  __shared__ double sm[FO_WARPS * 12];
  fo_groups(B, tpr, [&](long long b, bool active, int lane) {
    const T* xr = x + fo_at(ix, b) * k;
    const T* yr = y + fo_at(iy, b) * k;
    const T* vr = v + fo_at(iv, b) * k;
    const T* wr = dz + fo_at(idz, b) * k;
    // s, a = yᵀv, b = xᵀw, their Σ|terms| (compensation), then |x|², |y|², |v|², |w|², xᵀv,
    // yᵀw (the eigen-form decision, cpu.py _backward_careful)
    double acc[12] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    for (long long j = lane; j < k; j += tpr) {
      const double xj = (double)__ldg(xr + j), yj = (double)__ldg(yr + j);
      const double vj = (double)__ldg(vr + j), wj = (double)__ldg(wr + j);
      const double p = xj * yj, q = vj * yj, r = xj * wj;
      acc[0] += p;
      acc[1] += q;
      acc[2] += r;
      acc[3] += fabs(p);
      acc[4] += fabs(q);
      acc[5] += fabs(r);
      acc[6] = fma(xj, xj, acc[6]);
      acc[7] = fma(yj, yj, acc[7]);
      acc[8] = fma(vj, vj, acc[8]);
      acc[9] = fma(wj, wj, acc[9]);
      acc[10] = fma(xj, vj, acc[10]);
      acc[11] = fma(yj, wj, acc[11]);
    }
    fo_group_sums<12>(acc, tpr, sm);
    if (!active) return;
    double g, gp, lo, unused;
    const double sv = fo_compensated(xr, yr, k, acc[0], acc[3], lo);
    fo_factor(sv, lo, inverse, g, gp);
    // a and b compensated where their sums call for it (each gradient is proportional to one)
    const double a = fo_needs_compensation<T>(acc[4], k) ? fo_dot2(yr, vr, k, unused) : acc[1];
    const double bb = fo_needs_compensation<T>(acc[5], k) ? fo_dot2(xr, wr, k, unused) : acc[2];
    const double ga = g * a, gb = g * bb, gpab = gp * a * bb;
    const long long off = b * k;
    for (long long j = lane; j < k; j += tpr) {
      const double xj = (double)__ldg(xr + j), yj = (double)__ldg(yr + j);
      const double wj = (double)__ldg(wr + j);
      dx[off + j] = (T)(ga * wj + gpab * yj);
      dy[off + j] = (T)(gb * (double)__ldg(vr + j) + gpab * xj);
      dv[off + j] = (T)(wj + gb * yj);
    }
    const double t = inverse ? -sv : sv;
    if (t >= FO_EIGEN_FORM_T_BELOW || !fo_isfinite(g) || !fo_isfinite(gp) || !fo_isfinite(a) ||
        !fo_isfinite(bb))
      return;
    // norm-wise (cpu.py _backward_careful): does one gradient's other form pay?
    const double nx = sqrt(acc[6]), ny = sqrt(acc[7]), nv = sqrt(acc[8]), nw = sqrt(acc[9]);
    const double tau_n = sqrt(fmax(a * a * acc[6] - 2.0 * a * sv * acc[10] + sv * sv * acc[8], 0.0));
    const double taw_n =
        sqrt(fmax(bb * bb * acc[7] - 2.0 * bb * sv * acc[11] + sv * sv * acc[9], 0.0));
    const double ph0 = expm1(t) / t, es0 = exp(t), apb = fabs(gpab);
    if (!(FO_EIGEN_FORM_GAIN * (es0 * nw + ph0 * taw_n) < nw + fabs(gb) * ny ||
          FO_EIGEN_FORM_GAIN * fabs(a / t) * (es0 * fabs(bb) * ny + ph0 * taw_n) <
              fabs(ga) * nw + apb * ny ||
          FO_EIGEN_FORM_GAIN * fabs(bb / t) * (es0 * fabs(a) * nx + ph0 * tau_n) <
              fabs(gb) * nv + apb * nx))
      return;
    // the forms (a/t)(e^t b y − φ τ'), (b/t)(e^t a x − φ τ), e^t w + σ φ τ' (reference.py
    // _apply_vjp), element by element where their bound is the smaller
    double s_lo;
    const double s2 = fo_dot2(xr, yr, k, s_lo);
    const double t2 = inverse ? -s2 : s2, t2_lo = inverse ? -s_lo : s_lo;
    const double sign = inverse ? -1.0 : 1.0;
    const double ph2 = fo_phi2(t2, t2_lo), es2 = fo_exp2(t2, t2_lo);
    const double at = a / t2, bt = bb / t2;
    for (long long j = lane; j < k; j += tpr) {
      const double xj = (double)__ldg(xr + j), yj = (double)__ldg(yr + j);
      const double vj = (double)__ldg(vr + j), wj = (double)__ldg(wr + j);
      double tau = 0.0, tau_bound = 0.0, taw = 0.0, taw_bound = 0.0;
      for (long long l = 0; l < k; ++l) {
        if (l == j) continue;
        const double xl = (double)__ldg(xr + l), yl = (double)__ldg(yr + l);
        const double d = yl * fo_det2(xj, xl, vj, (double)__ldg(vr + l));
        const double e = xl * fo_det2(yj, yl, wj, (double)__ldg(wr + l));
        tau += d;
        tau_bound += fabs(d);
        taw += e;
        taw_bound += fabs(e);
      }
      if (fabs(at) * (es2 * fabs(bb * yj) + ph2 * taw_bound) < fabs(ga * wj) + apb * fabs(yj))
        dx[off + j] = (T)(at * (es2 * bb * yj - ph2 * taw));
      if (fabs(bt) * (es2 * fabs(a * xj) + ph2 * tau_bound) < fabs(gb * vj) + apb * fabs(xj))
        dy[off + j] = (T)(bt * (es2 * a * xj - ph2 * tau));
      if (es2 * fabs(wj) + ph2 * taw_bound < fabs(wj) + fabs(gb * yj))
        dv[off + j] = (T)(es2 * wj + sign * ph2 * taw);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Chains. The vector: NPT > 0 registers (element j = lane + i * tpr), NPT == 0 a double scratch
// row (shape "global": one group per block, row blockIdx.x).

template <int NPT>
struct FoVec {
  double r[NPT];
  __device__ __forceinline__ void bind(double*, long long) {}
  __device__ __forceinline__ double& at(int i, long long) { return r[i]; }
};
template <>
struct FoVec<0> {
  double* p;
  // The block's scratch row (shape "global" runs one group per block).
  __device__ __forceinline__ void bind(double* scratch, long long k) {
    p = scratch + (long long)blockIdx.x * k;
  }
  __device__ __forceinline__ double& at(int, long long j) { return p[j]; }
};

// Elements per thread: NPT, or enough for k when the vector lives in memory.
template <int NPT>
__device__ __forceinline__ int fo_count(long long k, int tpr) {
  return NPT > 0 ? NPT : (int)((k + tpr - 1) / tpr);
}

// z <- E z (or E⁻¹ z) for the factor (xr, yr); returns s, its low part in s_lo (0 unless
// compensated). All threads of the block call it.
template <typename T, int NPT>
__device__ __forceinline__ double fo_chain_step(const T* __restrict__ xr, const T* __restrict__ yr,
                                                FoVec<NPT>& z, long long k, int tpr, int lane,
                                                int inverse, double* sm, double& s_lo) {
  const int n = fo_count<NPT>(k, tpr);
  double acc[3] = {0.0, 0.0, 0.0};
#pragma unroll
  for (int i = 0; i < n; ++i) {
    const long long j = lane + (long long)i * tpr;
    if (j < k) {
      const double yj = (double)__ldg(yr + j);
      const double p = (double)__ldg(xr + j) * yj;
      acc[0] += p;
      acc[1] = fma(z.at(i, j), yj, acc[1]);
      acc[2] += fabs(p);
    }
  }
  fo_group_sums<3>(acc, tpr, sm);
  double lo;
  acc[0] = fo_compensated(xr, yr, k, acc[0], acc[2], lo);
  s_lo = lo;
  const double c = fo_coef(acc[0], lo, acc[1], inverse);
#pragma unroll
  for (int i = 0; i < n; ++i) {
    const long long j = lane + (long long)i * tpr;
    if (j < k) z.at(i, j) += fo_scaled(c, (double)__ldg(xr + j));
  }
  return acc[0];
}

template <typename T, int NPT>
__device__ __forceinline__ void chain_body(const T* __restrict__ xs, const long long* __restrict__ ixs,
                                           const T* __restrict__ ys,
                                           const long long* __restrict__ iys,
                                           const T* __restrict__ v,
                                           const long long* __restrict__ iv, long long B,
                                           long long L, long long k, int tpr, int inverse,
                                           T* __restrict__ out, double* __restrict__ logdet,
                                           double* scratch) {
  __shared__ double sm[FO_WARPS * 3];
  fo_groups(B, tpr, [&](long long b, bool active, int lane) {
    FoVec<NPT> z;
    z.bind(scratch, k);
    const int n = fo_count<NPT>(k, tpr);
    const T* vr = v + fo_at(iv, b) * k;
#pragma unroll
    for (int i = 0; i < n; ++i) {
      const long long j = lane + (long long)i * tpr;
      if (j < k) z.at(i, j) = (double)__ldg(vr + j);
    }
    const T* xb = xs + fo_at(ixs, b) * L * k;
    const T* yb = ys + fo_at(iys, b) * L * k;
    // logdet in double-double, rounded once (as cpu.py's chain: s_l of ±hundreds that
    // cancel would otherwise keep each rounded s_l's error)
    double ld = 0.0, ld_lo = 0.0;
    for (long long step = 0; step < L; ++step) {
      const long long layer = inverse ? L - 1 - step : step;
      double s_lo, err;
      const double s = fo_chain_step<T, NPT>(xb + layer * k, yb + layer * k, z, k, tpr, lane,
                                             inverse, sm, s_lo);
      fo_two_sum(ld, s, ld, err);
      ld_lo += err + s_lo;
    }
    ld += ld_lo;
    if (!active) return;
    T* o = out + b * k;
#pragma unroll
    for (int i = 0; i < n; ++i) {
      const long long j = lane + (long long)i * tpr;
      if (j < k) o[j] = (T)z.at(i, j);
    }
    if (lane == 0) logdet[b] = inverse ? -ld : ld;
  });
}

template <typename T, int NPT>
__device__ __forceinline__ void chain_backward_body(
    const T* __restrict__ xs, const long long* __restrict__ ixs, const T* __restrict__ ys,
    const long long* __restrict__ iys, const T* __restrict__ v, const long long* __restrict__ iv,
    const T* __restrict__ dz, const long long* __restrict__ idz, const double* __restrict__ dl,
    long long B, long long L, long long k, int tpr, int inverse, T* __restrict__ dxs,
    T* __restrict__ dys, T* __restrict__ dv, double* scratch) {
  __shared__ double sm[FO_WARPS * 4];
  fo_groups(B, tpr, [&](long long b, bool active, int lane) {
    FoVec<NPT> w;
    w.bind(scratch, k);
    const int n = fo_count<NPT>(k, tpr);
    const T* xb = xs + fo_at(ixs, b) * L * k;
    const T* yb = ys + fo_at(iys, b) * L * k;
    T* gx = dxs + b * L * k;  // this entry's slots: the trajectory, then the gradients
    T* gy = dys + b * L * k;
    const T* vr = v + fo_at(iv, b) * k;
#pragma unroll
    for (int i = 0; i < n; ++i) {
      const long long j = lane + (long long)i * tpr;
      if (j < k) w.at(i, j) = (double)__ldg(vr + j);
    }
    // Forward, keeping each factor's input as hi (dxs) + lo (dys).
    for (long long step = 0; step < L; ++step) {
      const long long layer = inverse ? L - 1 - step : step;
      if (active) {
#pragma unroll
        for (int i = 0; i < n; ++i) {
          const long long j = lane + (long long)i * tpr;
          if (j < k) {
            const double zj = w.at(i, j);
            const T hi = (T)zj;
            gx[layer * k + j] = hi;
            gy[layer * k + j] = (T)(zj - (double)hi);
          }
        }
      }
      double s_lo;
      fo_chain_step<T, NPT>(xb + layer * k, yb + layer * k, w, k, tpr, lane, inverse, sm, s_lo);
    }
    const T* wr = dz + fo_at(idz, b) * k;
#pragma unroll
    for (int i = 0; i < n; ++i) {
      const long long j = lane + (long long)i * tpr;
      if (j < k) w.at(i, j) = (double)__ldg(wr + j);
    }
    double sdl = dl ? dl[b] : 0.0;
    if (inverse) sdl = -sdl;
    // Backward over the factors in reverse order of application.
    for (long long step = L - 1; step >= 0; --step) {
      const long long layer = inverse ? L - 1 - step : step;
      const T* xr = xb + layer * k;
      const T* yr = yb + layer * k;
      T* ox = gx + layer * k;
      T* oy = gy + layer * k;
      double acc[4] = {0.0, 0.0, 0.0, 0.0};
#pragma unroll
      for (int i = 0; i < n; ++i) {
        const long long j = lane + (long long)i * tpr;
        if (j < k) {
          const double xj = (double)__ldg(xr + j), yj = (double)__ldg(yr + j);
          const double zj = active ? (double)ox[j] + (double)oy[j] : 0.0;
          const double p = xj * yj;
          acc[0] += p;
          acc[1] = fma(zj, yj, acc[1]);
          acc[2] = fma(xj, w.at(i, j), acc[2]);
          acc[3] += fabs(p);
        }
      }
      fo_group_sums<4>(acc, tpr, sm);
      double g, gp, lo;
      const double sv = fo_compensated(xr, yr, k, acc[0], acc[3], lo);
      fo_factor(sv, lo, inverse, g, gp);
      const double ga = g * acc[1], gb = g * acc[2], gpab = gp * acc[1] * acc[2] + sdl;
#pragma unroll
      for (int i = 0; i < n; ++i) {
        const long long j = lane + (long long)i * tpr;
        if (j < k) {
          const double xj = (double)__ldg(xr + j), yj = (double)__ldg(yr + j);
          const double wj = w.at(i, j);
          if (active) {
            const double zj = (double)ox[j] + (double)oy[j];
            ox[j] = (T)(ga * wj + gpab * yj);
            oy[j] = (T)(gb * zj + gpab * xj);
          }
          w.at(i, j) = wj + gb * yj;
        }
      }
    }
    if (!active) return;
    T* o = dv + b * k;
#pragma unroll
    for (int i = 0; i < n; ++i) {
      const long long j = lane + (long long)i * tpr;
      if (j < k) o[j] = (T)w.at(i, j);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// extern "C" entry points fastops_<op>[_<shape>]_<dtype>. The argument lists are the contract
// with gpu.py. Index maps (ix, iy, ...) and dl may be null.

#define FO_IDX const long long*

#define FO_RANK1_LOGDET(T, DT)                                                                   \
  extern "C" __global__ void FO_LAUNCH fastops_rank1_logdet_##DT(                                \
      const T* x, FO_IDX ix, const T* y, FO_IDX iy, long long B, long long k, int tpr, T* out) { \
    dot_entries_body<T, false>(x, ix, y, iy, B, k, tpr, out, nullptr);                           \
  }

#define FO_RANK1_DENSE(T, DT)                                                                    \
  extern "C" __global__ void FO_LAUNCH fastops_rank1_dense_phi_##DT(                             \
      const T* x, FO_IDX ix, const T* y, FO_IDX iy, long long B, long long k, int tpr,           \
      double* phi) {                                                                             \
    dot_entries_body<T, true>(x, ix, y, iy, B, k, tpr, nullptr, phi);                            \
  }                                                                                              \
  extern "C" __global__ void FO_LAUNCH fastops_rank1_dense_##DT(                                 \
      const T* x, FO_IDX ix, const T* y, FO_IDX iy, const double* phi, long long B, long long k, \
      int tpr, T* out) {                                                                         \
    dense_body<T>(x, ix, y, iy, phi, B, k, tpr, out);                                            \
  }

#define FO_RANK1_APPLY(T, DT)                                                                    \
  extern "C" __global__ void FO_LAUNCH fastops_rank1_apply_##DT(                                 \
      const T* x, FO_IDX ix, const T* y, FO_IDX iy, const T* v, FO_IDX iv, long long B,          \
      long long k, int tpr, int inverse, T* out) {                                               \
    apply_body<T>(x, ix, y, iy, v, iv, B, k, tpr, inverse, out);                                 \
  }

#define FO_RANK1_APPLY_BACKWARD(T, DT)                                                           \
  extern "C" __global__ void FO_LAUNCH fastops_rank1_apply_backward_##DT(                        \
      const T* x, FO_IDX ix, const T* y, FO_IDX iy, const T* v, FO_IDX iv, const T* dz,          \
      FO_IDX idz, long long B, long long k, int tpr, int inverse, T* dx, T* dy, T* dv) {         \
    apply_backward_body<T>(x, ix, y, iy, v, iv, dz, idz, B, k, tpr, inverse, dx, dy, dv);        \
  }

#define FO_RANK1_CHAIN_ONE(T, DT, SHAPE, NPT)                                                    \
  extern "C" __global__ void FO_LAUNCH fastops_rank1_chain_##SHAPE##_##DT(                       \
      const T* xs, FO_IDX ixs, const T* ys, FO_IDX iys, const T* v, FO_IDX iv, long long B,      \
      long long L, long long k, int tpr, int inverse, T* out, double* logdet, double* scratch) { \
    chain_body<T, NPT>(xs, ixs, ys, iys, v, iv, B, L, k, tpr, inverse, out, logdet, scratch);    \
  }
#define FO_RANK1_CHAIN(T, DT)                                                                    \
  FO_RANK1_CHAIN_ONE(T, DT, sub, FO_NPT_SUB)                                                     \
  FO_RANK1_CHAIN_ONE(T, DT, block, FO_NPT_BLOCK)                                                 \
  FO_RANK1_CHAIN_ONE(T, DT, global, 0)

#define FO_RANK1_CHAIN_BACKWARD_ONE(T, DT, SHAPE, NPT)                                           \
  extern "C" __global__ void FO_LAUNCH fastops_rank1_chain_backward_##SHAPE##_##DT(              \
      const T* xs, FO_IDX ixs, const T* ys, FO_IDX iys, const T* v, FO_IDX iv, const T* dz,      \
      FO_IDX idz, const double* dl, long long B, long long L, long long k, int tpr, int inverse,  \
      T* dxs, T* dys, T* dv, double* scratch) {                                                  \
    chain_backward_body<T, NPT>(xs, ixs, ys, iys, v, iv, dz, idz, dl, B, L, k, tpr, inverse,     \
                                dxs, dys, dv, scratch);                                          \
  }
#define FO_RANK1_CHAIN_BACKWARD(T, DT)                                                           \
  FO_RANK1_CHAIN_BACKWARD_ONE(T, DT, sub, FO_NPT_SUB)                                            \
  FO_RANK1_CHAIN_BACKWARD_ONE(T, DT, block, FO_NPT_BLOCK)                                        \
  FO_RANK1_CHAIN_BACKWARD_ONE(T, DT, global, 0)

// Selection. gpu.py compiles one module per (op, dtype) so that the first call of an op pays
// NVRTC for its own kernels only: it prepends "#define FASTOPS_SELECT 1",
// "#define FASTOPS_DTYPE_<DTYPE> 1" and "#define FASTOPS_OP_<OP> 1". Without FASTOPS_SELECT
// (e.g. the compile test) every op is built for every dtype.
#ifndef FASTOPS_SELECT
#define FASTOPS_DTYPE_FLOAT32 1
#define FASTOPS_DTYPE_FLOAT64 1
#define FASTOPS_OP_RANK1_LOGDET 1
#define FASTOPS_OP_RANK1_DENSE 1
#define FASTOPS_OP_RANK1_APPLY 1
#define FASTOPS_OP_RANK1_APPLY_BACKWARD 1
#define FASTOPS_OP_RANK1_CHAIN 1
#define FASTOPS_OP_RANK1_CHAIN_BACKWARD 1
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

#ifdef FASTOPS_OP_RANK1_LOGDET
FO_FOR_DTYPES(FO_RANK1_LOGDET)
#endif
#ifdef FASTOPS_OP_RANK1_DENSE
FO_FOR_DTYPES(FO_RANK1_DENSE)
#endif
#ifdef FASTOPS_OP_RANK1_APPLY
FO_FOR_DTYPES(FO_RANK1_APPLY)
#endif
#ifdef FASTOPS_OP_RANK1_APPLY_BACKWARD
FO_FOR_DTYPES(FO_RANK1_APPLY_BACKWARD)
#endif
#ifdef FASTOPS_OP_RANK1_CHAIN
FO_FOR_DTYPES(FO_RANK1_CHAIN)
#endif
#ifdef FASTOPS_OP_RANK1_CHAIN_BACKWARD
FO_FOR_DTYPES(FO_RANK1_CHAIN_BACKWARD)
#endif
