using System.Numerics;
using System.Runtime.CompilerServices;
using static Uan.Kernels.KernelMath;

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

    /// <summary>Vector partial sums go to double this often (in vectors), so float lanes sum few terms.</summary>
    const int FlushEvery = 32;

    /// <summary>Channel constants broadcast to vectors, plus per-element scratch of K vectors.</summary>
    struct Lanes<T> where T : unmanaged
    {
        public int K;
        public Vector<T>* Mu, Hiv, Cl, Center, Scale, Alpha, Beta, V, P, Tb;
        public Vector<T> W, B, Gz, Ref;
    }

    /// <summary>Number of vector slots a Lanes needs for K components.</summary>
    static int LaneSlots(int k) => 10 * k;

    static void Init<T>(ref Lanes<T> l, Vector<T>* block, Mixture m, long ch, double[]? alpha, double[]? beta,
        double[]? v, double gz, double[]? reference) where T : unmanaged, INumberBase<T>
    {
        l.Ref = new Vector<T>(T.CreateTruncating(reference?[ch] ?? 0));
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
            l.Mu[j] = new Vector<T>(T.CreateTruncating(m.Mu[kc]));
            l.Hiv[j] = new Vector<T>(T.CreateTruncating(0.5 / var));
            l.Cl[j] = new Vector<T>(T.CreateTruncating(m.LogLambda[kc] - 0.5 * Math.Log(var)));
            l.Center[j] = new Vector<T>(T.CreateTruncating(m.Center[kc]));
            l.Scale[j] = new Vector<T>(T.CreateTruncating(m.Scale[kc]));
            l.Alpha[j] = new Vector<T>(T.CreateTruncating(alpha?[kc] ?? 0));
            l.Beta[j] = new Vector<T>(T.CreateTruncating(beta?[kc] ?? 0));
            l.V[j] = new Vector<T>(T.CreateTruncating(v?[kc] ?? 0));
        }
        l.W = new Vector<T>(T.CreateTruncating(m.W?[ch] ?? 1.0));
        l.B = new Vector<T>(T.CreateTruncating(m.B?[ch] ?? 0.0));
        l.Gz = new Vector<T>(T.CreateTruncating(gz));
    }

    /// <summary>
    /// Writes p_k = exp(ℓ_k − max ℓ) into l.P and returns mask / Σ p (so τ_k = p_k · result, and padding lanes,
    /// mask 0, get τ = 0 and add nothing anywhere). mx and sum are max ℓ and Σ p.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector<T> Softmax<T>(Vector<T> xv, Vector<T> mask, ref Lanes<T> l, out Vector<T> mx, out Vector<T> sum)
        where T : unmanaged, INumberBase<T>
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
            mx = Vector.Max(mx, lj);
        }
        sum = Vector<T>.Zero;
        for (int j = 0; j < k; j++)
        {
            var pj = Exp(l.P[j] - mx);
            l.P[j] = pj;
            sum += pj;
        }
        return mask / sum;
    }

    /// <summary>One kind of pass: what it does with one vector of x (and g).</summary>
    interface IPass<T> where T : unmanaged
    {
        /// <summary>Vector accumulators per work item (summed into double slots).</summary>
        static abstract int Slots(int k);

        /// <summary>Processes one vector; returns the value to store (if the pass has an output).</summary>
        static abstract Vector<T> Apply(Vector<T> xv, Vector<T> gv, Vector<T> mask, ref Lanes<T> l, Vector<T>* acc,
            Vector<T>* max);
    }

    /// <summary>
    /// Runs a pass over all rows: full vectors in place, the tail of each row through the same code on a padded
    /// copy with a 0/1 mask. Returns the per-channel slot sums [C, slots] and (if asked) lane maxima [C, K].
    /// </summary>
    static (double[] Sums, double[]? Max) Sweep<T, TPass>(T* x, T* g, T* output, long n, long s, Mixture m,
        double[]? alpha, double[]? beta, double[]? v, double gz, bool withMax, double[]? reference = null)
        where T : unmanaged, INumberBase<T>
        where TPass : IPass<T>
    {
        int k = m.K;
        long c = m.C;
        int slots = TPass.Slots(k);
        int blocks = Blocks(c, n, n * c * s);
        var partial = new double[c * blocks * slots];
        var partialMax = withMax ? new double[c * blocks * k] : null;
        Run(c, n, blocks, n * c * s, (ch, b, n0, n1) =>
        {
            Vector<T>* block = stackalloc Vector<T>[LaneSlots(k)];
            var l = new Lanes<T>();
            Init(ref l, block, m, ch, alpha, beta, v, gz, reference);
            int accCount = Math.Max(slots, 1);
            Vector<T>* acc = stackalloc Vector<T>[accCount];
            Vector<T>* max = stackalloc Vector<T>[k];
            double* sums = stackalloc double[accCount];
            for (int j = 0; j < accCount; j++) { acc[j] = Vector<T>.Zero; sums[j] = 0; }
            var lowest = new Vector<T>(T.CreateTruncating(double.NegativeInfinity));
            for (int j = 0; j < k; j++) max[j] = lowest;
            int vn = Vector<T>.Count;
            T* tx = stackalloc T[vn];
            T* tg = stackalloc T[vn];
            T* tm = stackalloc T[vn];
            T* to = stackalloc T[vn];
            var one = Vector<T>.One;
            int count = 0;
            for (long row = n0; row < n1; row++)
            {
                long off = (row * c + ch) * s;
                T* xr = x + off;
                long i = 0;
                for (; i + vn <= s; i += vn)
                {
                    var gv = g != null ? Load(g + off + i) : Vector<T>.Zero;
                    var r = TPass.Apply(Load(xr + i), gv, one, ref l, acc, max);
                    if (output != null) Store(output + off + i, r);
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
                    var r = TPass.Apply(Load(tx), Load(tg), Load(tm), ref l, acc, max);
                    if (output != null)
                    {
                        Store(to, r);
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
                    for (int e = 0; e < vn; e++) mj = Math.Max(mj, double.CreateTruncating(max[j][e]));
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

    static void Flush<T>(Vector<T>* acc, double* sums, int slots) where T : unmanaged, INumberBase<T>
    {
        for (int j = 0; j < slots; j++)
        {
            sums[j] += Sum(acc[j]);
            acc[j] = Vector<T>.Zero;
        }
    }

    // ---- Forward: out = w·Σ τ_k r_k (x − m_k) + b; slot 0 = Σ log Σ_k exp ℓ_k (the log-likelihood, if kept).

    struct ForwardPass<T> : IPass<T> where T : unmanaged, INumberBase<T>
    {
        public static int Slots(int k) => 0;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<T> Apply(Vector<T> xv, Vector<T> gv, Vector<T> mask, ref Lanes<T> l, Vector<T>* acc,
            Vector<T>* max) => Output(xv, mask, ref l, out _, out _);
    }

    struct ForwardLogZPass<T> : IPass<T> where T : unmanaged, INumberBase<T>
    {
        public static int Slots(int k) => 1;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<T> Apply(Vector<T> xv, Vector<T> gv, Vector<T> mask, ref Lanes<T> l, Vector<T>* acc,
            Vector<T>* max)
        {
            var r = Output(xv, mask, ref l, out var mx, out var sum);
            acc[0] += (mx + Log(sum)) * mask;
            return r;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector<T> Output<T>(Vector<T> xv, Vector<T> mask, ref Lanes<T> l, out Vector<T> mx, out Vector<T> sum)
        where T : unmanaged, INumberBase<T>
    {
        var inv = Softmax(xv, Vector<T>.One, ref l, out mx, out sum);
        var num = Vector<T>.Zero;
        for (int j = 0; j < l.K; j++) num += l.P[j] * l.Scale[j] * (xv - l.Center[j]);
        return num * inv * l.W + l.B;
    }

    /// <summary>Forward pass; returns Σ log Σ_k λ_k N(x | μ_k, σ²_k) (without ½ log 2π) when withLogZ, else 0.</summary>
    public static double Forward<T>(T* x, T* y, long n, long s, Mixture m, bool withLogZ)
        where T : unmanaged, INumberBase<T>
    {
        if (!withLogZ)
        {
            Sweep<T, ForwardPass<T>>(x, null, y, n, s, m, null, null, null, 0, false);
            return 0;
        }
        var (sums, _) = Sweep<T, ForwardLogZPass<T>>(x, null, y, n, s, m, null, null, null, 0, false);
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
    static Vector<T> SoftmaxWithLog<T>(Vector<T> xv, Vector<T> mask, ref Lanes<T> l) where T : unmanaged, INumberBase<T>
    {
        int k = l.K;
        var mx = l.Cl[0] - l.Hiv[0] * (xv - l.Mu[0]) * (xv - l.Mu[0]);
        l.Tb[0] = mx;
        for (int j = 1; j < k; j++)
        {
            var d = xv - l.Mu[j];
            var lj = l.Cl[j] - l.Hiv[j] * d * d;
            l.Tb[j] = lj;
            mx = Vector.Max(mx, lj);
        }
        var sum = Vector<T>.Zero;
        for (int j = 0; j < k; j++)
        {
            var lp = l.Tb[j] - mx;
            l.Tb[j] = lp;
            var pj = Exp(lp);
            l.P[j] = pj;
            sum += pj;
        }
        return mask / sum;
    }

    /// <summary>Adds τ, τ d, τ d², τ² to the four accumulators at <paramref name="a"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void AddMoments<T>(Vector<T>* a, Vector<T> tau, Vector<T> d) where T : unmanaged, INumberBase<T>
    {
        var td = tau * d;
        a[0] += tau;
        a[1] += td;
        a[2] += td * d;
        a[3] += tau * tau;
    }

    struct StatsPass<T> : IPass<T> where T : unmanaged, INumberBase<T>
    {
        public static int Slots(int k) => 4 * k;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<T> Apply(Vector<T> xv, Vector<T> gv, Vector<T> mask, ref Lanes<T> l, Vector<T>* acc,
            Vector<T>* max)
        {
            var inv = SoftmaxWithLog(xv, mask, ref l);
            var inside = Vector.GreaterThan(mask, Vector<T>.Zero);
            for (int j = 0; j < l.K; j++)
            {
                AddMoments(acc + 4 * j, l.P[j] * inv, xv - l.Mu[j]);
                max[j] = Vector.ConditionalSelect(inside, Vector.Max(max[j], l.Tb[j]), max[j]);
            }
            return Vector<T>.Zero;
        }
    }

    struct ShiftedStatsPass<T> : IPass<T> where T : unmanaged, INumberBase<T>
    {
        public static int Slots(int k) => 4 * k;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<T> Apply(Vector<T> xv, Vector<T> gv, Vector<T> mask, ref Lanes<T> l, Vector<T>* acc,
            Vector<T>* max)
        {
            var inv = SoftmaxWithLog(xv, mask, ref l);
            // τ_k e^(−shift_k) = exp(log p_k − shift_k) / Σ p, ≤ 1 since shift_k is the batch maximum of log p_k.
            for (int j = 0; j < l.K; j++)
                AddMoments(acc + 4 * j, Exp(l.Tb[j] - l.Alpha[j]) * inv, xv - l.Mu[j]);
            return Vector<T>.Zero;
        }
    }

    /// <summary>
    /// The τ-weighted sums [C, 4K] (per channel, per k: Σ τ, Σ τ d, Σ τ d², Σ τ²; d = x − μ_k) and, [C, K], the
    /// largest log p_k = ℓ_k − max_j ℓ_j over the batch (within log K of the largest log τ_k).
    /// </summary>
    public static (double[] Sums, double[] MaxLogP) Stats<T>(T* x, long n, long s, Mixture m)
        where T : unmanaged, INumberBase<T>
    {
        var (sums, max) = Sweep<T, StatsPass<T>>(x, null, null, n, s, m, null, null, null, 0, true);
        return (sums, max!);
    }

    /// <summary>
    /// The sums of <see cref="Stats"/> with component k's τ weighed by exp(−shift[k, c]) ([K, C], ≤ 0), for
    /// components whose responsibilities underflow: the moments (ratios) are unchanged, and finite.
    /// </summary>
    public static double[] ShiftedStats<T>(T* x, long n, long s, Mixture m, double[] shift)
        where T : unmanaged, INumberBase<T> =>
        Sweep<T, ShiftedStatsPass<T>>(x, null, null, n, s, m, shift, null, null, 0, false).Sums;

    // ---- EM: per k, Σ τ, Σ τ d, Σ τ d² (d = x − μ_k); then Σ log Σ_k exp ℓ_k, Σ (x − ref), Σ (x − ref)².

    struct EmPass<T> : IPass<T> where T : unmanaged, INumberBase<T>
    {
        public static int Slots(int k) => 3 * k + 3;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<T> Apply(Vector<T> xv, Vector<T> gv, Vector<T> mask, ref Lanes<T> l, Vector<T>* acc,
            Vector<T>* max)
        {
            int k = l.K;
            var inv = Softmax(xv, mask, ref l, out var mx, out var sum);
            for (int j = 0; j < k; j++)
            {
                var tau = l.P[j] * inv;
                var d = xv - l.Mu[j];
                var td = tau * d;
                Vector<T>* a = acc + 3 * j;
                a[0] += tau;
                a[1] += td;
                a[2] += td * d;
            }
            acc[3 * k] += (mx + Log(sum)) * mask;
            var dx = (xv - l.Ref) * mask;
            acc[3 * k + 1] += dx;
            acc[3 * k + 2] += dx * dx;
            return Vector<T>.Zero;
        }
    }

    /// <summary>
    /// One EM E-step's sums, [C, 3K + 3]: per k Σ τ, Σ τ d, Σ τ d² (d = x − μ_k); then Σ log Σ_k exp ℓ_k and the
    /// channel's Σ (x − ref), Σ (x − ref)² (ref [C], a shift that keeps the variance sum well conditioned).
    /// </summary>
    public static double[] EmSums<T>(T* x, long n, long s, Mixture m, double[] reference)
        where T : unmanaged, INumberBase<T> =>
        Sweep<T, EmPass<T>>(x, null, null, n, s, m, null, null, null, 0, false, reference).Sums;

    // ---- Backward, first pass of the batch transform: per k, Σ gy τ and Σ gy τ c (c = x − m_k).

    struct OutputSumsPass<T> : IPass<T> where T : unmanaged, INumberBase<T>
    {
        public static int Slots(int k) => 2 * k;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<T> Apply(Vector<T> xv, Vector<T> gv, Vector<T> mask, ref Lanes<T> l, Vector<T>* acc,
            Vector<T>* max)
        {
            var inv = Softmax(xv, mask, ref l, out _, out _);
            var gy = gv * l.W * inv;
            for (int j = 0; j < l.K; j++)
            {
                var gt = gy * l.P[j];
                acc[2 * j] += gt;
                acc[2 * j + 1] += gt * (xv - l.Center[j]);
            }
            return Vector<T>.Zero;
        }
    }

    /// <summary>[C, 2K]: per k, Σ g·w·τ_k and Σ g·w·τ_k (x − m_k).</summary>
    public static double[] OutputSums<T>(T* x, T* g, long n, long s, Mixture m) where T : unmanaged, INumberBase<T> =>
        Sweep<T, OutputSumsPass<T>>(x, g, null, n, s, m, null, null, null, 0, false).Sums;

    // ---- Backward, main pass. With gy = g·w, h_k = r_k c_k, the loss sees τ_k through
    // T_k = gy h_k + α_k c_k + β_k (c_k² − v_k) (the α, β terms carry the batch statistics' dependence on τ; zero
    // for fixed statistics), so e_k = dL/dℓ_k = τ_k (T_k − Σ_j τ_j T_j + gz) (gz: the log-likelihood output), and
    // dL/dx = gy Σ τ_k r_k + Σ τ_k (α_k + 2 β_k c_k) − Σ e_k d_k / σ²_k.
    // Slots per k: A = Σ gy τ, F = Σ gy τ c, D = Σ e, B = Σ e d, E = Σ e d²; then Σ g and Σ g·y.

    const int PerK = 5;

    /// <summary>
    /// The main backward pass for fixed statistics (Paper, running): α = β = 0, so Σ_j τ_j T_j = gy·y and
    /// e_k = τ_k (gy (h_k − y) + gz).
    /// </summary>
    struct FixedBackwardPass<T> : IPass<T> where T : unmanaged, INumberBase<T>
    {
        public static int Slots(int k) => PerK * k + 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<T> Apply(Vector<T> xv, Vector<T> gv, Vector<T> mask, ref Lanes<T> l, Vector<T>* acc,
            Vector<T>* max)
        {
            int k = l.K;
            var inv = Softmax(xv, mask, ref l, out _, out _);
            var num = Vector<T>.Zero;
            for (int j = 0; j < k; j++)
            {
                var h = l.Scale[j] * (xv - l.Center[j]);
                l.Tb[j] = h;
                num += l.P[j] * h;
            }
            var y = num * inv;
            var gy = gv * l.W;
            acc[PerK * k] += gv;
            acc[PerK * k + 1] += gv * y;
            var gx = Vector<T>.Zero;
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
                Vector<T>* a = acc + PerK * j;
                a[0] += gt;
                a[1] += gt * c;
                a[2] += e;
                a[3] += ed;
                a[4] += ed * d;
            }
            return gx;
        }
    }

    struct BackwardPass<T> : IPass<T> where T : unmanaged, INumberBase<T>
    {
        public static int Slots(int k) => PerK * k + 2;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector<T> Apply(Vector<T> xv, Vector<T> gv, Vector<T> mask, ref Lanes<T> l, Vector<T>* acc,
            Vector<T>* max)
        {
            int k = l.K;
            var inv = Softmax(xv, mask, ref l, out _, out _);
            var gy = gv * l.W;
            var y = Vector<T>.Zero;
            var sbar = Vector<T>.Zero;
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
            acc[PerK * k] += gv;
            acc[PerK * k + 1] += gv * y;
            var two = Vector<T>.One + Vector<T>.One;
            var gx = Vector<T>.Zero;
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
                Vector<T>* a = acc + PerK * j;
                a[0] += gt;
                a[1] += gt * c;
                a[2] += e;
                a[3] += ed;
                a[4] += ed * d;
            }
            return gx;
        }
    }

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

    /// <summary>
    /// The main backward pass: writes dL/dx into gx (when not null) and returns the raw sums. alpha, beta, v are
    /// [K, C] (null: zero, the fixed-statistics case); gz is dL/d(Σ logZ), constant over elements.
    /// </summary>
    public static BackwardSums Backward<T>(T* x, T* g, T* gx, long n, long s, Mixture m, double[]? alpha,
        double[]? beta, double[]? v, double gz) where T : unmanaged, INumberBase<T> =>
        new(m.K, m.C, alpha is null && beta is null
            ? Sweep<T, FixedBackwardPass<T>>(x, g, gx, n, s, m, null, null, null, gz, false).Sums
            : Sweep<T, BackwardPass<T>>(x, g, gx, n, s, m, alpha, beta, v, gz, false).Sums);
}
