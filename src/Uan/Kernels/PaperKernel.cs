using System.Numerics;
using System.Runtime.CompilerServices;
using static Uan.Kernels.KernelMath;

namespace Uan.Kernels;

/// <summary>
/// Paper mode as two fused passes (forward, backward) over an [N, C, S] input. Per element, with d_k = x − μ_k:
/// ℓ_k = log λ_k − ½ log σ²_k − d_k²/(2σ²_k), τ = softmax_k ℓ, h_k = s_k d_k with s_k = λ_k^(−1/2) σ_k^(−1),
/// y = Σ_k τ_k h_k, out = w·y + b. The backward recomputes τ from x (nothing of size |x| is saved) and returns
/// dL/dx plus dL/d(μ, log λ, σ², w, b); the [K, C] chain to (mu, rho, alpha) stays with autograd outside.
/// </summary>
internal static unsafe class PaperKernel
{
    /// <summary>Per-(k, c) inputs in double, [K, C] row-major; affine [C] or null.</summary>
    internal sealed record Mixture(int K, double[] Mu, double[] LogLambda, double[] Var, double[]? W, double[]? B);

    // Vector accumulators per component in the backward: A = Σ gτ, F = Σ gτd, D = Σ e, B = Σ e d, E = Σ e d².
    const int PerK = 5;

    // Vector partial sums are flushed into double this often (in vectors), so float lanes only ever sum a few
    // dozen terms before the double accumulator takes over.
    const int FlushEvery = 32;

    /// <summary>Forward pass. Returns Σ log Σ_k λ_k N(x | μ_k, σ²_k) (without ½ log 2π) when withLogZ, else 0.</summary>
    public static double Forward<T>(T* x, T* y, long n, long c, long s, Mixture m, bool withLogZ)
        where T : unmanaged, INumberBase<T>
    {
        int k = m.K;
        int blocks = Blocks(c, n, n * c * s);
        var logZ = new double[c * blocks];
        Run(c, n, blocks, n * c * s, (ch, b, n0, n1) =>
        {
            Vector<T>* mu = stackalloc Vector<T>[k], hiv = stackalloc Vector<T>[k],
                cl = stackalloc Vector<T>[k], sc = stackalloc Vector<T>[k], l = stackalloc Vector<T>[k];
            Constants(m, ch, c, mu, hiv, cl, sc, out var w, out var bias);
            int vn = Vector<T>.Count;
            T* tx = stackalloc T[vn];
            T* ty = stackalloc T[vn];
            T* tm = stackalloc T[vn];
            double lz = 0;
            for (long row = n0; row < n1; row++)
            {
                T* xr = x + (row * c + ch) * s, yr = y + (row * c + ch) * s;
                var lzv = Vector<T>.Zero;
                long i = 0;
                int count = 0;
                for (; i + vn <= s; i += vn)
                {
                    var yv = ForwardVector(Load(xr + i), k, mu, hiv, cl, sc, l, withLogZ, out var z);
                    Store(yr + i, yv * w + bias);
                    if (withLogZ)
                    {
                        lzv += z;
                        if (++count == FlushEvery) { lz += Sum(lzv); lzv = Vector<T>.Zero; count = 0; }
                    }
                }
                if (i < s)
                {
                    // The tail goes through the same vector code on a zero-padded copy; a 0/1 mask keeps the
                    // padding out of the log-likelihood sum.
                    int rest = (int)(s - i);
                    for (int j = 0; j < vn; j++)
                    {
                        tx[j] = j < rest ? xr[i + j] : T.Zero;
                        tm[j] = j < rest ? T.One : T.Zero;
                    }
                    var yv = ForwardVector(Load(tx), k, mu, hiv, cl, sc, l, withLogZ, out var z);
                    Store(ty, yv * w + bias);
                    for (int j = 0; j < rest; j++) yr[i + j] = ty[j];
                    if (withLogZ) lzv += z * Load(tm);
                }
                if (withLogZ) lz += Sum(lzv);
            }
            logZ[ch * blocks + b] = lz;
        });
        double total = 0;
        foreach (var v in logZ) total += v;
        return total;
    }

    /// <summary>Gradients of one backward pass; arrays are [K, C] (or [C] for W, B).</summary>
    internal sealed record Gradients(double[] Mu, double[] LogLambda, double[] Var, double[] W, double[] B);

    /// <summary>
    /// Backward pass: writes dL/dx into gx (when not null) and returns the parameter gradients. g is dL/d out;
    /// gz is dL/d(Σ logZ) (0 when the log-likelihood output is unused), constant over elements.
    /// </summary>
    public static Gradients Backward<T>(T* x, T* g, T* gx, long n, long c, long s, Mixture m, double gz)
        where T : unmanaged, INumberBase<T>
    {
        int k = m.K;
        int blocks = Blocks(c, n, n * c * s);
        int slots = PerK * k + 2;
        var partial = new double[c * blocks * slots];
        Run(c, n, blocks, n * c * s, (ch, b, n0, n1) =>
        {
            Vector<T>* mu = stackalloc Vector<T>[k], hiv = stackalloc Vector<T>[k],
                cl = stackalloc Vector<T>[k], sc = stackalloc Vector<T>[k], p = stackalloc Vector<T>[k];
            Constants(m, ch, c, mu, hiv, cl, sc, out var w, out _);
            Vector<T>* acc = stackalloc Vector<T>[slots];
            double* sums = stackalloc double[slots];
            for (int j = 0; j < slots; j++) { acc[j] = Vector<T>.Zero; sums[j] = 0; }
            var gzv = new Vector<T>(T.CreateTruncating(gz));
            int vn = Vector<T>.Count;
            T* tx = stackalloc T[vn];
            T* tg = stackalloc T[vn];
            T* tgx = stackalloc T[vn];
            T* tm = stackalloc T[vn];
            int count = 0;
            for (long row = n0; row < n1; row++)
            {
                long off = (row * c + ch) * s;
                T* xr = x + off, gr = g + off;
                long i = 0;
                for (; i + vn <= s; i += vn)
                {
                    var gxv = BackwardVector(Load(xr + i), Load(gr + i), gzv, k, w, mu, hiv, cl, sc, p, acc);
                    if (gx != null) Store(gx + off + i, gxv);
                    if (++count == FlushEvery) { Flush(acc, sums, slots); count = 0; }
                }
                if (i < s)
                {
                    int rest = (int)(s - i);
                    for (int j = 0; j < vn; j++)
                    {
                        tx[j] = j < rest ? xr[i + j] : T.Zero;
                        tg[j] = j < rest ? gr[i + j] : T.Zero;
                        tm[j] = j < rest ? T.One : T.Zero;
                    }
                    // Padding lanes carry g = 0 and gz = 0, so they add nothing to any sum.
                    var gxv = BackwardVector(Load(tx), Load(tg), gzv * Load(tm), k, w, mu, hiv, cl, sc, p, acc);
                    Store(tgx, gxv);
                    if (gx != null)
                        for (int j = 0; j < rest; j++) gx[off + i + j] = tgx[j];
                    if (++count == FlushEvery) { Flush(acc, sums, slots); count = 0; }
                }
            }
            Flush(acc, sums, slots);
            var dst = partial.AsSpan((ch * blocks + b) * slots, slots);
            for (int j = 0; j < slots; j++) dst[j] = sums[j];
        });

        var gMu = new double[k * c];
        var gLogLambda = new double[k * c];
        var gVar = new double[k * c];
        var gW = new double[c];
        var gB = new double[c];
        for (long ch = 0; ch < c; ch++)
        {
            var tot = new double[slots];
            for (int b = 0; b < blocks; b++)
                for (int j = 0; j < slots; j++)
                    tot[j] += partial[(ch * blocks + b) * slots + j];
            for (int j = 0; j < k; j++)
            {
                long kc = j * c + ch;
                double iv = 1 / m.Var[kc];
                double sk = Math.Exp(-0.5 * m.LogLambda[kc]) * Math.Sqrt(iv);
                double a = tot[j * PerK], f = tot[j * PerK + 1], d = tot[j * PerK + 2],
                    bb = tot[j * PerK + 3], e = tot[j * PerK + 4];
                // The kernel accumulates with gy = g·w; A and F already include w.
                gMu[kc] = -sk * a + bb * iv;
                gLogLambda[kc] = -0.5 * sk * f + d;
                gVar[kc] = -0.5 * sk * f * iv + 0.5 * (e * iv - d) * iv;
            }
            gB[ch] = tot[PerK * k];
            gW[ch] = tot[PerK * k + 1];
        }
        return new Gradients(gMu, gLogLambda, gVar, gW, gB);
    }

    static void Flush<T>(Vector<T>* acc, double* sums, int slots) where T : unmanaged, INumberBase<T>
    {
        for (int j = 0; j < slots; j++)
        {
            sums[j] += Sum(acc[j]);
            acc[j] = Vector<T>.Zero;
        }
    }

    /// <summary>
    /// Broadcasts channel ch's constants: μ_k, 1/(2σ²_k), log λ_k − ½ log σ²_k and s_k = exp(−½ log λ_k)/σ_k,
    /// computed in double then rounded once to T; and the affine w, b (1, 0 when absent).
    /// </summary>
    static void Constants<T>(Mixture m, long ch, long c, Vector<T>* mu, Vector<T>* hiv, Vector<T>* cl,
        Vector<T>* sc, out Vector<T> w, out Vector<T> b) where T : unmanaged, INumberBase<T>
    {
        for (int j = 0; j < m.K; j++)
        {
            long kc = j * c + ch;
            double v = m.Var[kc];
            mu[j] = new Vector<T>(T.CreateTruncating(m.Mu[kc]));
            hiv[j] = new Vector<T>(T.CreateTruncating(0.5 / v));
            cl[j] = new Vector<T>(T.CreateTruncating(m.LogLambda[kc] - 0.5 * Math.Log(v)));
            sc[j] = new Vector<T>(T.CreateTruncating(Math.Exp(-0.5 * m.LogLambda[kc]) / Math.Sqrt(v)));
        }
        w = new Vector<T>(T.CreateTruncating(m.W?[ch] ?? 1.0));
        b = new Vector<T>(T.CreateTruncating(m.B?[ch] ?? 0.0));
    }

    /// <summary>y = Σ τ_k s_k d_k for one vector of x; z = log Σ_k exp ℓ_k when asked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector<T> ForwardVector<T>(Vector<T> xv, int k, Vector<T>* mu, Vector<T>* hiv, Vector<T>* cl,
        Vector<T>* sc, Vector<T>* l, bool withLogZ, out Vector<T> z) where T : unmanaged, INumberBase<T>
    {
        var d0 = xv - mu[0];
        var mx = cl[0] - hiv[0] * d0 * d0;
        l[0] = mx;
        for (int j = 1; j < k; j++)
        {
            var d = xv - mu[j];
            var lj = cl[j] - hiv[j] * d * d;
            l[j] = lj;
            mx = Vector.Max(mx, lj);
        }
        var sum = Vector<T>.Zero;
        var num = Vector<T>.Zero;
        for (int j = 0; j < k; j++)
        {
            var pj = Exp(l[j] - mx);
            sum += pj;
            num += pj * sc[j] * (xv - mu[j]);
        }
        z = withLogZ ? mx + Log(sum) : Vector<T>.Zero;
        return num / sum;
    }

    /// <summary>
    /// One vector of the backward: returns dL/dx and adds this vector's terms to the accumulators. With gy = g·w,
    /// e_k = dL/dℓ_k = τ_k (gy (h_k − y) + gz), dL/dx = gy Σ τ_k s_k − Σ e_k d_k / σ²_k.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector<T> BackwardVector<T>(Vector<T> xv, Vector<T> gv, Vector<T> gzv, int k, Vector<T> w,
        Vector<T>* mu, Vector<T>* hiv, Vector<T>* cl, Vector<T>* sc, Vector<T>* p, Vector<T>* acc)
        where T : unmanaged, INumberBase<T>
    {
        var d0 = xv - mu[0];
        var mx = cl[0] - hiv[0] * d0 * d0;
        p[0] = mx;
        for (int j = 1; j < k; j++)
        {
            var d = xv - mu[j];
            var lj = cl[j] - hiv[j] * d * d;
            p[j] = lj;
            mx = Vector.Max(mx, lj);
        }
        var sum = Vector<T>.Zero;
        var num = Vector<T>.Zero;
        for (int j = 0; j < k; j++)
        {
            var pj = Exp(p[j] - mx);
            p[j] = pj;
            sum += pj;
            num += pj * sc[j] * (xv - mu[j]);
        }
        var inv = Vector<T>.One / sum;
        var y = num * inv;
        var gy = gv * w;
        acc[PerK * k] += gv;
        acc[PerK * k + 1] += gv * y;
        var two = new Vector<T>(T.CreateTruncating(2));
        var gxv = Vector<T>.Zero;
        for (int j = 0; j < k; j++)
        {
            var tau = p[j] * inv;
            var d = xv - mu[j];
            var h = sc[j] * d;
            var gt = gy * tau;
            var e = tau * (gy * (h - y) + gzv);
            var ed = e * d;
            // 1/σ²_k = 2 · hiv_k.
            gxv += gt * sc[j] - two * hiv[j] * ed;
            Vector<T>* a = acc + PerK * j;
            a[0] += gt;
            a[1] += gt * d;
            a[2] += e;
            a[3] += ed;
            a[4] += ed * d;
        }
        return gxv;
    }
}
