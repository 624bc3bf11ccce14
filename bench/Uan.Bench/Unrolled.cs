// Experiment: how much of the statistics pass is loop and memory overhead? A hand-unrolled K = 3 version for
// Vector512<float> (constants and accumulators in registers, no per-component loops) against the generic kernel.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using TorchSharp;
using Uan.Kernels;
using static TorchSharp.torch;

static unsafe class Unrolled
{
    public static void Run(long[] shape)
    {
        using var scope = NewDisposeScope();
        var x = randn(shape) * 1.5 + 0.3;
        int c = (int)shape[1];
        long n = shape[0], s = shape.Skip(2).Aggregate(1L, (a, b) => a * b);
        const int k = 3;
        var mu = Enumerable.Range(0, k * c).Select(i => (i / c - 1) * 1.0).ToArray();
        var ll = Enumerable.Repeat(Math.Log(1.0 / 3), k * c).ToArray();
        var vv = Enumerable.Repeat(0.8, k * c).ToArray();
        var m = MixtureKernel.Mixture.WithStatistics(k, c, mu, ll, vv, mu, vv, 1e-3, null, null);
        float* px = KernelMath.Ptr<float>(x);
        double Best(Action a)
        {
            double best = double.MaxValue;
            for (int i = 0; i < 21; i++)
            {
                var sw = Stopwatch.StartNew();
                a();
                best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
            }
            return best;
        }
        double[] generic = Fused.Stats(x, m);
        double[] mine = Stats3(px, n, c, s, mu, ll, vv);
        double worst = 0;
        for (int i = 0; i < generic.Length; i++) worst = Math.Max(worst, Math.Abs(generic[i] - mine[i]) / (1e-9 + Math.Abs(generic[i])));
        for (int r = 0; r < 3; r++)
            Console.WriteLine($"stats pass, K = 3: generic {Best(() => Fused.Stats(x, m)):F2} ms, unrolled {Best(() => Stats3(px, n, c, s, mu, ll, vv)):F2} ms (largest relative difference {worst:E1})");
    }

    static double[] Stats3(float* x, long n, int c, long s, double[] mu, double[] ll, double[] vv)
    {
        var result = new double[c * 12];
        Parallel.For(0, c, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (ch) =>
        {
            Vector512<float> C(double v) => Vector512.Create((float)v);
            var mu0 = C(mu[ch]); var mu1 = C(mu[c + ch]); var mu2 = C(mu[2 * c + ch]);
            var nh0 = C(-0.5 / vv[ch]); var nh1 = C(-0.5 / vv[c + ch]); var nh2 = C(-0.5 / vv[2 * c + ch]);
            var cl0 = C(ll[ch] - 0.5 * Math.Log(vv[ch])); var cl1 = C(ll[c + ch] - 0.5 * Math.Log(vv[c + ch]));
            var cl2 = C(ll[2 * c + ch] - 0.5 * Math.Log(vv[2 * c + ch]));
            double* acc = stackalloc double[12];
            for (int i = 0; i < 12; i++) acc[i] = 0;
            for (long row = 0; row < n; row++)
            {
                float* xr = x + (row * c + ch) * s;
                var w00 = Vector512<float>.Zero; var w01 = w00; var w02 = w00; var w03 = w00;
                var w10 = w00; var w11 = w00; var w12 = w00; var w13 = w00;
                var w20 = w00; var w21 = w00; var w22 = w00; var w23 = w00;
                for (long i = 0; i + 16 <= s; i += 16)
                {
                    var xv = Vector512.Load(xr + i);
                    var d0 = xv - mu0; var d1 = xv - mu1; var d2 = xv - mu2;
                    var l0 = Vector512.FusedMultiplyAdd(nh0 * d0, d0, cl0);
                    var l1 = Vector512.FusedMultiplyAdd(nh1 * d1, d1, cl1);
                    var l2 = Vector512.FusedMultiplyAdd(nh2 * d2, d2, cl2);
                    var mx = Vector512.MaxNative(Vector512.MaxNative(l0, l1), l2);
                    var p0 = WideSimd<float>.ExpSingle(l0 - mx, false);
                    var p1 = WideSimd<float>.ExpSingle(l1 - mx, false);
                    var p2 = WideSimd<float>.ExpSingle(l2 - mx, false);
                    var inv = Vector512<float>.One / (p0 + p1 + p2);
                    var t0 = p0 * inv; var t1 = p1 * inv; var t2 = p2 * inv;
                    var td0 = t0 * d0; var td1 = t1 * d1; var td2 = t2 * d2;
                    w00 += t0; w01 += td0; w02 = Vector512.FusedMultiplyAdd(td0, d0, w02); w03 = Vector512.FusedMultiplyAdd(t0, t0, w03);
                    w10 += t1; w11 += td1; w12 = Vector512.FusedMultiplyAdd(td1, d1, w12); w13 = Vector512.FusedMultiplyAdd(t1, t1, w13);
                    w20 += t2; w21 += td2; w22 = Vector512.FusedMultiplyAdd(td2, d2, w22); w23 = Vector512.FusedMultiplyAdd(t2, t2, w23);
                }
                // One row (s / 16 vectors, 64 at 32×32) per flush.
                acc[0] += Vector512.Sum(w00); acc[1] += Vector512.Sum(w01); acc[2] += Vector512.Sum(w02); acc[3] += Vector512.Sum(w03);
                acc[4] += Vector512.Sum(w10); acc[5] += Vector512.Sum(w11); acc[6] += Vector512.Sum(w12); acc[7] += Vector512.Sum(w13);
                acc[8] += Vector512.Sum(w20); acc[9] += Vector512.Sum(w21); acc[10] += Vector512.Sum(w22); acc[11] += Vector512.Sum(w23);
            }
            for (int i = 0; i < 12; i++) result[ch * 12 + i] = acc[i];
        });
        return result;
    }
}
