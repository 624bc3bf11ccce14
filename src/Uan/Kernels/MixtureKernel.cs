using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static Uan.Kernels.KernelMath;
using Mixture = Uan.Kernels.MixtureKernel.Mixture;

namespace Uan.Kernels;

/// <summary>
/// The fused passes shared by every UAN / Mixture Normalization transform, over an [N, C, S] input. Per element,
/// with d_k = x − μ_k and c_k = x − m_k:
/// ℓ_k = log λ_k − ½ log σ²_k − d_k²/(2σ²_k), τ = softmax_k ℓ, y = Σ_k τ_k r_k c_k, out = w·y + b,
/// where (μ, σ², log λ) is the mixture that gives the responsibilities and (m_k, r_k) the centre and scale each
/// component normalises with: Paper uses m = μ, r = λ^(−1/2) σ^(−1); the batch / running transforms use their
/// component statistics, r = λ^(−1/2) (v + eps)^(−1/2). Nothing of size |x| is kept between passes: each pass
/// recomputes τ from x (K exps per element), which costs less than writing and re-reading K·|x| values.
/// Work is split over channels × batch blocks; every item sums into its own slot (double, flushed from vector
/// lanes every few dozen vectors) and the slots are added afterwards, so no locks.
/// </summary>
internal static unsafe class MixtureKernel
{
    /// <summary>
    /// Per-(k, c) constants in double, [K, C] row-major: responsibility mixture (Mu, LogLambda, Var), output centre
    /// and scale, optional affine [C].
    /// </summary>
    internal sealed record Mixture(int K, long C, double[] Mu, double[] LogLambda, double[] Var, double[] Center,
        double[] Scale, double[]? W, double[]? B)
    {
        /// <summary>Paper mode: centre μ, scale λ^(−1/2) σ^(−1).</summary>
        public static Mixture Paper(int k, long c, double[] mu, double[] logLambda, double[] variance, double[]? w,
            double[]? b)
        {
            var scale = new double[k * c];
            for (int i = 0; i < scale.Length; i++) scale[i] = Math.Exp(-0.5 * logLambda[i]) / Math.Sqrt(variance[i]);
            return new Mixture(k, c, mu, logLambda, variance, mu, scale, w, b);
        }

        /// <summary>Given component statistics: centre m, scale λ^(−1/2) (v + eps)^(−1/2).</summary>
        public static Mixture WithStatistics(int k, long c, double[] mu, double[] logLambda, double[] variance,
            double[] mean, double[] var, double eps, double[]? w, double[]? b)
        {
            var scale = new double[k * c];
            for (int i = 0; i < scale.Length; i++) scale[i] = Math.Exp(-0.5 * logLambda[i]) / Math.Sqrt(var[i] + eps);
            return new Mixture(k, c, mu, logLambda, variance, mean, scale, w, b);
        }
    }

    /// <summary>Slots per component in the main backward pass (see <see cref="MixtureKernel{T, TV}"/>).</summary>
    internal const int PerK = 5;

    /// <summary>Raw sums of the main backward pass, [C, 5K + 2] (see the slot layout above).</summary>
    internal sealed record BackwardSums(int K, long C, double[] Sums)
    {
        int Slots => PerK * K + 2;
        public double A(int k, long c) => Sums[c * Slots + PerK * k];
        public double F(int k, long c) => Sums[c * Slots + PerK * k + 1];
        public double D(int k, long c) => Sums[c * Slots + PerK * k + 2];
        public double B(int k, long c) => Sums[c * Slots + PerK * k + 3];
        public double E(int k, long c) => Sums[c * Slots + PerK * k + 4];
        public double G(long c) => Sums[c * Slots + PerK * K];
        public double GY(long c) => Sums[c * Slots + PerK * K + 1];
    }


    // ---- Entry points: each runs the pass at the vector width in use (Simd.Wide).

    /// <summary>Forward pass; returns Σ log Σ_k λ_k N(x | μ_k, σ²_k) (without ½ log 2π) when withLogZ, else 0.</summary>
    public static double Forward<T>(T* x, T* y, long n, long s, Mixture m, bool withLogZ)
        where T : unmanaged, INumberBase<T> => Simd.Wide
        ? MixtureKernel<T, WideSimd<T>>.Forward(x, y, n, s, m, withLogZ)
        : MixtureKernel<T, NativeSimd<T>>.Forward(x, y, n, s, m, withLogZ);

    /// <summary>
    /// The τ-weighted sums [C, 4K] (per channel, per k: Σ τ, Σ τ d, Σ τ d², Σ τ²; d = x − μ_k) and, [C, K], the
    /// largest log p_k = ℓ_k − max_j ℓ_j over the batch (within log K of the largest log τ_k).
    /// </summary>
    public static (double[] Sums, double[] MaxLogP) Stats<T>(T* x, long n, long s, Mixture m)
        where T : unmanaged, INumberBase<T> => Simd.Wide
        ? MixtureKernel<T, WideSimd<T>>.Stats(x, n, s, m)
        : MixtureKernel<T, NativeSimd<T>>.Stats(x, n, s, m);

    /// <summary>
    /// The sums of <see cref="Stats"/> with component k's τ weighed by exp(−shift[k, c]) ([K, C], ≤ 0), for
    /// components whose responsibilities underflow: the moments (ratios) are unchanged, and finite.
    /// </summary>
    public static double[] ShiftedStats<T>(T* x, long n, long s, Mixture m, double[] shift)
        where T : unmanaged, INumberBase<T> => Simd.Wide
        ? MixtureKernel<T, WideSimd<T>>.ShiftedStats(x, n, s, m, shift)
        : MixtureKernel<T, NativeSimd<T>>.ShiftedStats(x, n, s, m, shift);

    /// <summary>
    /// One EM E-step's sums, [C, 3K + 3]: per k Σ τ, Σ τ d, Σ τ d² (d = x − μ_k); then Σ log Σ_k exp ℓ_k and the
    /// channel's Σ (x − ref), Σ (x − ref)² (ref [C], a shift that keeps the variance sum well conditioned).
    /// </summary>
    public static double[] EmSums<T>(T* x, long n, long s, Mixture m, double[] reference)
        where T : unmanaged, INumberBase<T> => Simd.Wide
        ? MixtureKernel<T, WideSimd<T>>.EmSums(x, n, s, m, reference)
        : MixtureKernel<T, NativeSimd<T>>.EmSums(x, n, s, m, reference);

    /// <summary>[C, 2K]: per k, Σ g·w·τ_k and Σ g·w·τ_k (x − m_k).</summary>
    public static double[] OutputSums<T>(T* x, T* g, long n, long s, Mixture m) where T : unmanaged, INumberBase<T> =>
        Simd.Wide
            ? MixtureKernel<T, WideSimd<T>>.OutputSums(x, g, n, s, m)
            : MixtureKernel<T, NativeSimd<T>>.OutputSums(x, g, n, s, m);

    /// <summary>
    /// The main backward pass: writes dL/dx into gx (when not null) and returns the raw sums. alpha, beta, v are
    /// [K, C] (null: zero, the fixed-statistics case); gz is dL/d(Σ logZ), constant over elements.
    /// </summary>
    public static BackwardSums Backward<T>(T* x, T* g, T* gx, long n, long s, Mixture m, double[]? alpha,
        double[]? beta, double[]? v, double gz) where T : unmanaged, INumberBase<T> =>
        new(m.K, m.C, Simd.Wide
            ? MixtureKernel<T, WideSimd<T>>.Backward(x, g, gx, n, s, m, alpha, beta, v, gz)
            : MixtureKernel<T, NativeSimd<T>>.Backward(x, g, gx, n, s, m, alpha, beta, v, gz));
}

/// <summary>
/// The passes of <see cref="MixtureKernel"/> for element type T on vectors TV: one instantiation per
/// vector width, each specialised by the JIT.
/// </summary>
internal static unsafe class MixtureKernel<T, TV>
    where T : unmanaged, INumberBase<T>
    where TV : unmanaged, ISimd<TV, T>
{
    /// <summary>Vector partial sums go to double this often (in vectors), so float lanes sum few terms.</summary>
    const int FlushEvery = 32;

    /// <summary>Channel constants broadcast to vectors, plus per-element scratch of K vectors.</summary>
    struct Lanes
    {
        public int K;
        public TV* Mu, Hiv, Cl, Center, Scale, Alpha, Beta, V, P, Tb;
        public TV W, B, Gz, Ref;
    }

    /// <summary>Number of vector slots a Lanes needs for K components.</summary>
    static int LaneSlots(int k) => 10 * k;

    static void Init(ref Lanes l, TV* block, Mixture m, long ch, double[]? alpha, double[]? beta,
        double[]? v, double gz, double[]? reference)
    {
        l.Ref = TV.Create(T.CreateTruncating(reference?[ch] ?? 0));
        int k = m.K;
        long c = m.C;
        l.K = k;
        l.Mu = block; l.Hiv = block + k; l.Cl = block + 2 * k; l.Center = block + 3 * k; l.Scale = block + 4 * k;
        l.Alpha = block + 5 * k; l.Beta = block + 6 * k; l.V = block + 7 * k; l.P = block + 8 * k; l.Tb = block + 9 * k;
        for (int j = 0; j < k; j++)
        {
            long kc = j * c + ch;
            double var = m.Var[kc];
            // Constants are formed in double and rounded to T once.
            l.Mu[j] = TV.Create(T.CreateTruncating(m.Mu[kc]));
            l.Hiv[j] = TV.Create(T.CreateTruncating(0.5 / var));
            l.Cl[j] = TV.Create(T.CreateTruncating(m.LogLambda[kc] - 0.5 * Math.Log(var)));
            l.Center[j] = TV.Create(T.CreateTruncating(m.Center[kc]));
            l.Scale[j] = TV.Create(T.CreateTruncating(m.Scale[kc]));
            l.Alpha[j] = TV.Create(T.CreateTruncating(alpha?[kc] ?? 0));
            l.Beta[j] = TV.Create(T.CreateTruncating(beta?[kc] ?? 0));
            l.V[j] = TV.Create(T.CreateTruncating(v?[kc] ?? 0));
        }
        l.W = TV.Create(T.CreateTruncating(m.W?[ch] ?? 1.0));
        l.B = TV.Create(T.CreateTruncating(m.B?[ch] ?? 0.0));
        l.Gz = TV.Create(T.CreateTruncating(gz));
    }

    /// <summary>
    /// Writes p_k = exp(ℓ_k − max ℓ) into l.P and returns mask / Σ p (so τ_k = p_k · result, and padding lanes,
    /// mask 0, get τ = 0 and add nothing anywhere). mx and sum are max ℓ and Σ p.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV Softmax(TV xv, TV mask, ref Lanes l, out TV mx, out TV sum)
    {
        int k = l.K;
        var d0 = xv - l.Mu[0];
        mx = l.Cl[0] - l.Hiv[0] * d0 * d0;
        l.P[0] = mx;
        for (int j = 1; j < k; j++)
        {
            var d = xv - l.Mu[j];
            var lj = l.Cl[j] - l.Hiv[j] * d * d;
            l.P[j] = lj;
            mx = TV.Max(mx, lj);
        }
        sum = TV.Zero;
        for (int j = 0; j < k; j++)
        {
            var pj = TV.Exp(l.P[j] - mx);
            l.P[j] = pj;
            sum += pj;
        }
        return mask / sum;
    }

    /// <summary>One kind of pass: what it does with one vector of x (and g).</summary>
    interface IPass
    {
        /// <summary>Vector accumulators per work item (summed into double slots).</summary>
        static abstract int Slots(int k);

        /// <summary>Processes one vector; returns the value to store (if the pass has an output).</summary>
        static abstract TV Apply(TV xv, TV gv, TV mask, ref Lanes l, TV* acc,
            TV* max);
    }

    /// <summary>
    /// Runs a pass over all rows: full vectors in place, the tail of each row through the same code on a padded
    /// copy with a 0/1 mask. Returns the per-channel slot sums [C, slots] and (if asked) lane maxima [C, K].
    /// </summary>
    static (double[] Sums, double[]? Max) Sweep<TPass>(T* x, T* g, T* output, long n, long s, Mixture m,
        double[]? alpha, double[]? beta, double[]? v, double gz, bool withMax, double[]? reference = null)
        where TPass : IPass
    {
        int k = m.K;
        long c = m.C;
        int slots = TPass.Slots(k);
        int blocks = Blocks(c, n, n * c * s);
        var partial = new double[c * blocks * slots];
        var partialMax = withMax ? new double[c * blocks * k] : null;
        // Straight to optimised code: at tier 0 the vector wrappers are calls, not instructions, and a layer's
        // kernels are called too few times (once per step) to be promoted before a short run has ended.
        Run(c, n, blocks, n * c * s, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (ch, b, n0, n1) =>
        {
            TV* block = stackalloc TV[LaneSlots(k)];
            var l = new Lanes();
            Init(ref l, block, m, ch, alpha, beta, v, gz, reference);
            int accCount = Math.Max(slots, 1);
            TV* acc = stackalloc TV[accCount];
            TV* max = stackalloc TV[k];
            double* sums = stackalloc double[accCount];
            for (int j = 0; j < accCount; j++) { acc[j] = TV.Zero; sums[j] = 0; }
            var lowest = TV.Create(T.CreateTruncating(double.NegativeInfinity));
            for (int j = 0; j < k; j++) max[j] = lowest;
            int vn = TV.Count;
            T* tx = stackalloc T[vn];
            T* tg = stackalloc T[vn];
            T* tm = stackalloc T[vn];
            T* to = stackalloc T[vn];
            var one = TV.One;
            int count = 0;
            for (long row = n0; row < n1; row++)
            {
                long off = (row * c + ch) * s;
                T* xr = x + off;
                long i = 0;
                for (; i + vn <= s; i += vn)
                {
                    var gv = g != null ? TV.Load(g + off + i) : TV.Zero;
                    var r = TPass.Apply(TV.Load(xr + i), gv, one, ref l, acc, max);
                    if (output != null) TV.Store(output + off + i, r);
                    if (slots > 0 && ++count == FlushEvery) { Flush(acc, sums, slots); count = 0; }
                }
                if (i < s)
                {
                    int rest = (int)(s - i);
                    for (int j = 0; j < vn; j++)
                    {
                        bool inside = j < rest;
                        tx[j] = inside ? xr[i + j] : T.Zero;
                        tg[j] = inside && g != null ? g[off + i + j] : T.Zero;
                        tm[j] = inside ? T.One : T.Zero;
                    }
                    var r = TPass.Apply(TV.Load(tx), TV.Load(tg), TV.Load(tm), ref l, acc, max);
                    if (output != null)
                    {
                        TV.Store(to, r);
                        for (int j = 0; j < rest; j++) output[off + i + j] = to[j];
                    }
                    if (slots > 0 && ++count == FlushEvery) { Flush(acc, sums, slots); count = 0; }
                }
            }
            if (slots > 0) Flush(acc, sums, slots);
            var dst = partial.AsSpan((int)((ch * blocks + b) * slots), slots);
            for (int j = 0; j < slots; j++) dst[j] = sums[j];
            if (partialMax is not null)
                for (int j = 0; j < k; j++)
                {
                    double mj = double.NegativeInfinity;
                    for (int e = 0; e < vn; e++) mj = Math.Max(mj, TV.Lane(max[j], e));
                    partialMax[(ch * blocks + b) * k + j] = mj;
                }
        });

        var total = new double[c * slots];
        var totalMax = withMax ? new double[c * k] : null;
        for (long ch = 0; ch < c; ch++)
            for (int b = 0; b < blocks; b++)
            {
                if (totalMax is not null && b == 0)
                    for (int j = 0; j < k; j++) totalMax[ch * k + j] = double.NegativeInfinity;
                for (int j = 0; j < slots; j++) total[ch * slots + j] += partial[(ch * blocks + b) * slots + j];
                if (totalMax is not null)
                    for (int j = 0; j < k; j++)
                        totalMax[ch * k + j] = Math.Max(totalMax[ch * k + j], partialMax![(ch * blocks + b) * k + j]);
            }
        return (total, totalMax);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Flush(TV* acc, double* sums, int slots)
    {
        for (int j = 0; j < slots; j++)
        {
            sums[j] += TV.Sum(acc[j]);
            acc[j] = TV.Zero;
        }
    }

    // ---- Forward: out = w·Σ τ_k r_k (x − m_k) + b; slot 0 = Σ log Σ_k exp ℓ_k (the log-likelihood, if kept).

    struct ForwardPass : IPass
    {
        public static int Slots(int k) => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply(TV xv, TV gv, TV mask, ref Lanes l, TV* acc,
            TV* max) => Output(xv, mask, ref l, out _, out _);
    }

    struct ForwardLogZPass : IPass
    {
        public static int Slots(int k) => 1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply(TV xv, TV gv, TV mask, ref Lanes l, TV* acc,
            TV* max)
        {
            var r = Output(xv, mask, ref l, out var mx, out var sum);
            acc[0] += (mx + TV.Log(sum)) * mask;
            return r;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV Output(TV xv, TV mask, ref Lanes l, out TV mx, out TV sum)
    {
        var inv = Softmax(xv, TV.One, ref l, out mx, out sum);
        var num = TV.Zero;
        for (int j = 0; j < l.K; j++) num += l.P[j] * l.Scale[j] * (xv - l.Center[j]);
        return num * inv * l.W + l.B;
    }

    /// <summary>Forward pass; returns Σ log Σ_k λ_k N(x | μ_k, σ²_k) (without ½ log 2π) when withLogZ, else 0.</summary>
    public static double Forward(T* x, T* y, long n, long s, Mixture m, bool withLogZ)
    {
        if (!withLogZ)
        {
            Sweep<ForwardPass>(x, null, y, n, s, m, null, null, null, 0, false);
            return 0;
        }
        var (sums, _) = Sweep<ForwardLogZPass>(x, null, y, n, s, m, null, null, null, 0, false);
        return sums.Sum();
    }

    // ---- Batch statistics: per k, W = Σ τ, P = Σ τ d, Q = Σ τ d², R = Σ τ² (d = x − μ_k), and max log p_k.
    // The sums weigh τ_k by exp(−shift_k) (shift_k from l.Alpha, ≤ 0, zero unless component k's τ underflows over
    // the whole batch). The moments are ratios, so the factor cancels; without it a component far from every input
    // has τ = 0 in float32 everywhere and 0/0 moments.

    /// <summary>
    /// Like <see cref="Softmax"/>, and also writes log p_k = ℓ_k − max ℓ into l.Tb, which the exp may have
    /// flushed to zero.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static TV SoftmaxWithLog(TV xv, TV mask, ref Lanes l)
    {
        int k = l.K;
        var mx = l.Cl[0] - l.Hiv[0] * (xv - l.Mu[0]) * (xv - l.Mu[0]);
        l.Tb[0] = mx;
        for (int j = 1; j < k; j++)
        {
            var d = xv - l.Mu[j];
            var lj = l.Cl[j] - l.Hiv[j] * d * d;
            l.Tb[j] = lj;
            mx = TV.Max(mx, lj);
        }
        var sum = TV.Zero;
        for (int j = 0; j < k; j++)
        {
            var lp = l.Tb[j] - mx;
            l.Tb[j] = lp;
            var pj = TV.Exp(lp);
            l.P[j] = pj;
            sum += pj;
        }
        return mask / sum;
    }

    /// <summary>Adds τ, τ d, τ d², τ² to the four accumulators at <paramref name="a"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AddMoments(TV* a, TV tau, TV d)
    {
        var td = tau * d;
        a[0] += tau;
        a[1] += td;
        a[2] += td * d;
        a[3] += tau * tau;
    }

    struct StatsPass : IPass
    {
        public static int Slots(int k) => 4 * k;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply(TV xv, TV gv, TV mask, ref Lanes l, TV* acc,
            TV* max)
        {
            var inv = SoftmaxWithLog(xv, mask, ref l);
            for (int j = 0; j < l.K; j++)
            {
                AddMoments(acc + 4 * j, l.P[j] * inv, xv - l.Mu[j]);
                max[j] = TV.MaxWhere(mask, max[j], l.Tb[j]);
            }
            return TV.Zero;
        }
    }

    struct ShiftedStatsPass : IPass
    {
        public static int Slots(int k) => 4 * k;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply(TV xv, TV gv, TV mask, ref Lanes l, TV* acc,
            TV* max)
        {
            var inv = SoftmaxWithLog(xv, mask, ref l);
            // τ_k e^(−shift_k) = exp(log p_k − shift_k) / Σ p, ≤ 1 since shift_k is the batch maximum of log p_k.
            for (int j = 0; j < l.K; j++)
                AddMoments(acc + 4 * j, TV.Exp(l.Tb[j] - l.Alpha[j]) * inv, xv - l.Mu[j]);
            return TV.Zero;
        }
    }

    /// <summary>
    /// The τ-weighted sums [C, 4K] (per channel, per k: Σ τ, Σ τ d, Σ τ d², Σ τ²; d = x − μ_k) and, [C, K], the
    /// largest log p_k = ℓ_k − max_j ℓ_j over the batch (within log K of the largest log τ_k).
    /// </summary>
    public static (double[] Sums, double[] MaxLogP) Stats(T* x, long n, long s, Mixture m)
    {
        var (sums, max) = Sweep<StatsPass>(x, null, null, n, s, m, null, null, null, 0, true);
        return (sums, max!);
    }

    /// <summary>
    /// The sums of <see cref="Stats"/> with component k's τ weighed by exp(−shift[k, c]) ([K, C], ≤ 0), for
    /// components whose responsibilities underflow: the moments (ratios) are unchanged, and finite.
    /// </summary>
    public static double[] ShiftedStats(T* x, long n, long s, Mixture m, double[] shift)
        =>
        Sweep<ShiftedStatsPass>(x, null, null, n, s, m, shift, null, null, 0, false).Sums;

    // ---- EM: per k, Σ τ, Σ τ d, Σ τ d² (d = x − μ_k); then Σ log Σ_k exp ℓ_k, Σ (x − ref), Σ (x − ref)².

    struct EmPass : IPass
    {
        public static int Slots(int k) => 3 * k + 3;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply(TV xv, TV gv, TV mask, ref Lanes l, TV* acc,
            TV* max)
        {
            int k = l.K;
            var inv = Softmax(xv, mask, ref l, out var mx, out var sum);
            for (int j = 0; j < k; j++)
            {
                var tau = l.P[j] * inv;
                var d = xv - l.Mu[j];
                var td = tau * d;
                TV* a = acc + 3 * j;
                a[0] += tau;
                a[1] += td;
                a[2] += td * d;
            }
            acc[3 * k] += (mx + TV.Log(sum)) * mask;
            var dx = (xv - l.Ref) * mask;
            acc[3 * k + 1] += dx;
            acc[3 * k + 2] += dx * dx;
            return TV.Zero;
        }
    }

    /// <summary>
    /// One EM E-step's sums, [C, 3K + 3]: per k Σ τ, Σ τ d, Σ τ d² (d = x − μ_k); then Σ log Σ_k exp ℓ_k and the
    /// channel's Σ (x − ref), Σ (x − ref)² (ref [C], a shift that keeps the variance sum well conditioned).
    /// </summary>
    public static double[] EmSums(T* x, long n, long s, Mixture m, double[] reference)
        =>
        Sweep<EmPass>(x, null, null, n, s, m, null, null, null, 0, false, reference).Sums;

    // ---- Backward, first pass of the batch transform: per k, Σ gy τ and Σ gy τ c (c = x − m_k).

    struct OutputSumsPass : IPass
    {
        public static int Slots(int k) => 2 * k;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply(TV xv, TV gv, TV mask, ref Lanes l, TV* acc,
            TV* max)
        {
            var inv = Softmax(xv, mask, ref l, out _, out _);
            var gy = gv * l.W * inv;
            for (int j = 0; j < l.K; j++)
            {
                var gt = gy * l.P[j];
                acc[2 * j] += gt;
                acc[2 * j + 1] += gt * (xv - l.Center[j]);
            }
            return TV.Zero;
        }
    }

    /// <summary>[C, 2K]: per k, Σ g·w·τ_k and Σ g·w·τ_k (x − m_k).</summary>
    public static double[] OutputSums(T* x, T* g, long n, long s, Mixture m) =>
        Sweep<OutputSumsPass>(x, g, null, n, s, m, null, null, null, 0, false).Sums;

    // ---- Backward, main pass. With gy = g·w, h_k = r_k c_k, the loss sees τ_k through
    // T_k = gy h_k + α_k c_k + β_k (c_k² − v_k) (the α, β terms carry the batch statistics' dependence on τ; zero
    // for fixed statistics), so e_k = dL/dℓ_k = τ_k (T_k − Σ_j τ_j T_j + gz) (gz: the log-likelihood output), and
    // dL/dx = gy Σ τ_k r_k + Σ τ_k (α_k + 2 β_k c_k) − Σ e_k d_k / σ²_k.
    // Slots per k: A = Σ gy τ, F = Σ gy τ c, D = Σ e, B = Σ e d, E = Σ e d²; then Σ g and Σ g·y.

    /// <summary>
    /// The main backward pass for fixed statistics (Paper, running): α = β = 0, so Σ_j τ_j T_j = gy·y and
    /// e_k = τ_k (gy (h_k − y) + gz).
    /// </summary>
    struct FixedBackwardPass : IPass
    {
        public static int Slots(int k) => MixtureKernel.PerK * k + 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply(TV xv, TV gv, TV mask, ref Lanes l, TV* acc,
            TV* max)
        {
            int k = l.K;
            var inv = Softmax(xv, mask, ref l, out _, out _);
            var num = TV.Zero;
            for (int j = 0; j < k; j++)
            {
                var h = l.Scale[j] * (xv - l.Center[j]);
                l.Tb[j] = h;
                num += l.P[j] * h;
            }
            var y = num * inv;
            var gy = gv * l.W;
            acc[MixtureKernel.PerK * k] += gv;
            acc[MixtureKernel.PerK * k + 1] += gv * y;
            var gx = TV.Zero;
            for (int j = 0; j < k; j++)
            {
                var tau = l.P[j] * inv;
                var c = xv - l.Center[j];
                var d = xv - l.Mu[j];
                var gt = gy * tau;
                var e = gt * (l.Tb[j] - y) + tau * l.Gz;
                var ed = e * d;
                // 1/σ²_k = 2 · hiv_k.
                gx += gt * l.Scale[j] - (l.Hiv[j] + l.Hiv[j]) * ed;
                TV* a = acc + MixtureKernel.PerK * j;
                a[0] += gt;
                a[1] += gt * c;
                a[2] += e;
                a[3] += ed;
                a[4] += ed * d;
            }
            return gx;
        }
    }

    struct BackwardPass : IPass
    {
        public static int Slots(int k) => MixtureKernel.PerK * k + 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static TV Apply(TV xv, TV gv, TV mask, ref Lanes l, TV* acc,
            TV* max)
        {
            int k = l.K;
            var inv = Softmax(xv, mask, ref l, out _, out _);
            var gy = gv * l.W;
            var y = TV.Zero;
            var sbar = TV.Zero;
            for (int j = 0; j < k; j++)
            {
                var tau = l.P[j] * inv;
                l.P[j] = tau;
                var c = xv - l.Center[j];
                var h = l.Scale[j] * c;
                y += tau * h;
                var t = gy * h + l.Alpha[j] * c + l.Beta[j] * (c * c - l.V[j]);
                l.Tb[j] = t;
                sbar += tau * t;
            }
            acc[MixtureKernel.PerK * k] += gv;
            acc[MixtureKernel.PerK * k + 1] += gv * y;
            var two = TV.One + TV.One;
            var gx = TV.Zero;
            var shift = l.Gz - sbar;
            for (int j = 0; j < k; j++)
            {
                var tau = l.P[j];
                var c = xv - l.Center[j];
                var d = xv - l.Mu[j];
                var e = tau * (l.Tb[j] + shift);
                var ed = e * d;
                var gt = gy * tau;
                // 1/σ²_k = 2 · hiv_k.
                gx += tau * (gy * l.Scale[j] + l.Alpha[j] + two * l.Beta[j] * c) - two * l.Hiv[j] * ed;
                TV* a = acc + MixtureKernel.PerK * j;
                a[0] += gt;
                a[1] += gt * c;
                a[2] += e;
                a[3] += ed;
                a[4] += ed * d;
            }
            return gx;
        }
    }

    /// <summary>
    /// The main backward pass: writes dL/dx into gx (when not null) and returns the raw sums. alpha, beta, v are
    /// [K, C] (null: zero, the fixed-statistics case); gz is dL/d(Σ logZ), constant over elements.
    /// </summary>
    public static double[] Backward(T* x, T* g, T* gx, long n, long s, Mixture m, double[]? alpha,
        double[]? beta, double[]? v, double gz) =>
        alpha is null && beta is null
            ? Sweep<FixedBackwardPass>(x, g, gx, n, s, m, null, null, null, gz, false).Sums
            : Sweep<BackwardPass>(x, g, gx, n, s, m, alpha, beta, v, gz, false).Sums;
}
