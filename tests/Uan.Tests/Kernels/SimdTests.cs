using System.Numerics;
using System.Runtime.Intrinsics;
using Uan.Kernels;
using static TorchSharp.torch;

namespace Uan.Tests.Kernels;

/// <summary>
/// The kernels' own float exp at both vector widths, against Math.Exp in double precision, and the vector wrappers'
/// reductions against plain loops.
/// </summary>
public class SimdTests
{
    /// <summary>Inputs over the range the kernels use (ℓ − max ℓ ≤ 0, down to the clamp) and a little above 0.</summary>
    static float[] Inputs()
    {
        var rng = new Random(7);
        var values = new List<float> { 0f, -0f, -1e-30f, -87f, -86.99f, -50f, 1f, 10f, 88f, -0.34657359f, 0.34657359f };
        for (int i = 0; i < 4096; i++) values.Add((float)(-87 * rng.NextDouble()));
        for (int i = 0; i < 512; i++) values.Add((float)(2 * rng.NextDouble() - 1));
        while (values.Count % Vector512<float>.Count != 0) values.Add(-3f);
        return values.ToArray();
    }

    static float[] Native(float[] x)
    {
        var y = new float[x.Length];
        int n = Vector<float>.Count;
        for (int i = 0; i < x.Length; i += n)
            NativeSimd<float>.ExpSingle(new Vector<float>(x, i)).CopyTo(y, i);
        return y;
    }

    static float[] Wide(float[] x)
    {
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i += Vector512<float>.Count)
            WideSimd<float>.ExpSingle(Vector512.Create(x.AsSpan(i, Vector512<float>.Count))).CopyTo(y, i);
        return y;
    }

    [Fact]
    public void ExpSingle_BothWidths_WithinOneUlpOfDoubleExp()
    {
        var x = Inputs();
        foreach (var (name, y) in new[] { ("Vector<T>", Native(x)), ("Vector512", Wide(x)) })
            for (int i = 0; i < x.Length; i++)
            {
                double expected = Math.Exp(x[i]);
                double ulp = MathF.BitIncrement((float)expected) - (float)expected;
                Assert.True(Math.Abs(y[i] - expected) <= ulp,
                    $"{name}: exp({x[i]:R}) = {y[i]:R}, expected {expected:R} (±1 ulp = {ulp:E2})");
            }
    }

    [Fact]
    public void ExpSingle_WidthsAgreeBitForBit_OnTheClampedRange()
    {
        // The 512-bit version applies 2^n with scalef instead of exponent bits: the same products, the same rounding.
        var x = Inputs();
        var native = Native(x);
        var wide = Wide(x);
        for (int i = 0; i < x.Length; i++)
            Assert.True(native[i] == wide[i], $"exp({x[i]:R}): Vector<T> {native[i]:R}, Vector512 {wide[i]:R}");
    }

    [Fact]
    public void ExpOfNonPositive_EqualsExp_BitForBit_OnNonPositiveArguments_AndKeepsNaN()
    {
        // The softmax exp drops only the upper clamp, which no argument ≤ 0 reaches; NaN must still come out NaN.
        var x = Inputs().Where(v => v <= 0).Append(-500f).Append(float.NaN).Append(float.NegativeInfinity).ToList();
        while (x.Count % Vector512<float>.Count != 0) x.Add(-1f);
        var full = Native(x.ToArray());
        for (int i = 0; i < x.Count; i += Vector512<float>.Count)
        {
            var native = new float[Vector512<float>.Count];
            var wide = new float[Vector512<float>.Count];
            for (int j = 0; j < native.Length; j += Vector<float>.Count)
                NativeSimd<float>.ExpSingle(new Vector<float>(x.ToArray(), i + j), false).CopyTo(native, j);
            WideSimd<float>.ExpSingle(Vector512.Create(x.ToArray().AsSpan(i, native.Length)), false).CopyTo(wide);
            for (int j = 0; j < native.Length; j++)
            {
                float arg = x[i + j];
                if (float.IsNaN(arg))
                {
                    Assert.True(float.IsNaN(native[j]) && float.IsNaN(wide[j]), $"exp(NaN): {native[j]}, {wide[j]}");
                    continue;
                }
                Assert.True(full[i + j] == native[j] && full[i + j] == wide[j],
                    $"exp({arg:R}): clamped {full[i + j]:R}, Vector<T> {native[j]:R}, Vector512 {wide[j]:R}");
            }
        }
    }

    [Theory]
    [InlineData(-500f, -87f)]
    [InlineData(500f, 88f)]
    public void ExpSingle_OutsideTheClamp_GivesTheClampValue(float beyond, float edge)
    {
        // Both widths clamp to [−87, 88]: e^−87 ≈ 1.6e−38 is still a normal float (never 0 or subnormal), and
        // e^88 ≈ 1.7e38 is finite, so a zero mask times it stays 0 (∞ · 0 would be NaN).
        var x = Enumerable.Repeat(beyond, Vector512<float>.Count).ToArray();
        float clamp = Native(Enumerable.Repeat(edge, Vector512<float>.Count).ToArray())[0];
        Assert.True(float.IsNormal(clamp));
        Assert.All(Native(x), v => Assert.Equal(clamp, v));
        Assert.All(Wide(x), v => Assert.Equal(clamp, v));
    }

    [Fact]
    public void LogSingle_WithinThreeUlpOfDoubleLog_AndSpecialValues()
    {
        var rng = new Random(5);
        var values = new List<float> { 1f, 2f, 3f, 0.5f, 1.41421356f, 1.4142137f, 0.70710677f, float.Epsilon, 1e-40f,
            float.MaxValue, 1e-30f, 1e30f };
        for (int i = 0; i < 4000; i++) values.Add((float)(1 + 4 * rng.NextDouble()));        // the kernels' range: Σ p ∈ [1, K]
        for (int i = 0; i < 4000; i++) values.Add((float)Math.Exp(rng.NextDouble() * 170 - 85));
        while (values.Count % Vector512<float>.Count != 0) values.Add(1f);
        var x = values.ToArray();
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i += Vector512<float>.Count)
            WideSimd<float>.LogSingle(Vector512.Create(x.AsSpan(i, Vector512<float>.Count))).CopyTo(y, i);
        for (int i = 0; i < x.Length; i++)
        {
            double expected = Math.Log(x[i]);
            float ef = (float)expected;
            double ulp = Math.Max(MathF.BitIncrement(MathF.Abs(ef)) - MathF.Abs(ef), float.Epsilon);
            Assert.True(Math.Abs(y[i] - expected) <= 3 * ulp,
                $"log({x[i]:R}) = {y[i]:R}, expected {expected:R} (±3 ulp = {3 * ulp:E2})");
        }
        var special = new[] { 0f, -0f, float.PositiveInfinity, -1f, float.NaN, -float.Epsilon, float.NegativeInfinity };
        var lanes = special.Concat(Enumerable.Repeat(1f, Vector512<float>.Count - special.Length)).ToArray();
        var r = new float[lanes.Length];
        WideSimd<float>.LogSingle(Vector512.Create(lanes)).CopyTo(r);
        Assert.Equal(float.NegativeInfinity, r[0]);
        Assert.Equal(float.NegativeInfinity, r[1]);
        Assert.Equal(float.PositiveInfinity, r[2]);
        Assert.True(float.IsNaN(r[3]) && float.IsNaN(r[4]) && float.IsNaN(r[5]) && float.IsNaN(r[6]));
        Assert.Equal(0f, r[7]);
    }

    [Fact]
    public void Sums_MatchPlainLoops()
    {
        var rng = new Random(3);
        var f = Enumerable.Range(0, Vector512<float>.Count).Select(_ => (float)rng.NextDouble() - 0.3f).ToArray();
        var d = Enumerable.Range(0, Vector512<double>.Count).Select(_ => rng.NextDouble() - 0.3).ToArray();
        Assert.Equal(f.Sum(v => (double)v), WideSimd<float>.Sum(new WideSimd<float>(Vector512.Create(f))), 1e-5);
        Assert.Equal(d.Sum(), WideSimd<double>.Sum(new WideSimd<double>(Vector512.Create(d))), 1e-12);
        var fn = f.Take(Vector<float>.Count).ToArray();
        Assert.Equal(fn.Sum(v => (double)v), NativeSimd<float>.Sum(new NativeSimd<float>(new Vector<float>(fn))), 1e-5);
    }

    [Fact]
    public unsafe void AddLanes_AddsEachLaneToItsOwnDouble_AtBothWidthsAndTypes()
    {
        var rng = new Random(5);
        float[] f = Enumerable.Range(0, Vector512<float>.Count).Select(_ => (float)rng.NextDouble() - 0.3f).ToArray();
        double[] d = Enumerable.Range(0, Vector512<double>.Count).Select(_ => rng.NextDouble() - 0.3).ToArray();
        double[] Start(int n) => Enumerable.Range(0, n).Select(i => 100.0 + i).ToArray();
        void Check(double[] start, double[] actual, IEnumerable<double> lanes, string what)
        {
            var expected = start.Zip(lanes, (a, b) => a + b).ToArray();
            Assert.True(expected.SequenceEqual(actual), $"{what}: [{string.Join(", ", actual)}], expected [{string.Join(", ", expected)}]");
        }
        var buf = Start(f.Length);
        fixed (double* p = buf) WideSimd<float>.AddLanes(p, new WideSimd<float>(Vector512.Create(f)));
        Check(Start(f.Length), buf, f.Select(v => (double)v), "Vector512<float>");
        buf = Start(d.Length);
        fixed (double* p = buf) WideSimd<double>.AddLanes(p, new WideSimd<double>(Vector512.Create(d)));
        Check(Start(d.Length), buf, d, "Vector512<double>");
        var fn = f.Take(Vector<float>.Count).ToArray();
        buf = Start(fn.Length);
        fixed (double* p = buf) NativeSimd<float>.AddLanes(p, new NativeSimd<float>(new Vector<float>(fn)));
        Check(Start(fn.Length), buf, fn.Select(v => (double)v), "Vector<float>");
        var dn = d.Take(Vector<double>.Count).ToArray();
        buf = Start(dn.Length);
        fixed (double* p = buf) NativeSimd<double>.AddLanes(p, new NativeSimd<double>(new Vector<double>(dn)));
        Check(Start(dn.Length), buf, dn, "Vector<double>");
    }

    [Theory]
    [InlineData(5, 2, 37)]     // runs with a tail (S = 37)
    [InlineData(9, 70, 1)]     // [N, C] in the channel-lanes layout, a part-filled last group
    public void MaxLogP_MatchesAPlainLoop_AtBothWidths(int n, int c, int s)
    {
        // K = 3, with the third component far from the data (at 60) in every odd channel.
        const int k = 3;
        var rng = new Random(11);
        var xs = Enumerable.Range(0, n * c * s).Select(_ => (float)(2 * rng.NextDouble() - 1)).ToArray();
        var mu = new double[k * c];
        var logLambda = new double[k * c];
        var var = new double[k * c];
        for (int j = 0; j < k; j++)
            for (int ch = 0; ch < c; ch++)
            {
                mu[j * c + ch] = j == 2 && ch % 2 == 1 ? 60 : j - 1 + 0.01 * ch;
                logLambda[j * c + ch] = -1.0 - 0.1 * ((j + ch) % 3);
                var[j * c + ch] = 0.3 + 0.2 * ((j * 7 + ch) % 4);
            }
        var m = MixtureKernel.Mixture.Paper(k, c, mu, logLambda, var, null, null);
        var expected = new double[c * k];
        Array.Fill(expected, double.NegativeInfinity);
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int e = 0; e < s; e++)
                {
                    double xv = xs[(i * c + ch) * s + e];
                    var l = new double[k];
                    for (int j = 0; j < k; j++)
                    {
                        int kc = j * c + ch;
                        l[j] = logLambda[kc] - 0.5 * Math.Log(var[kc]) - (xv - mu[kc]) * (xv - mu[kc]) / (2 * var[kc]);
                    }
                    double top = l.Max();
                    for (int j = 0; j < k; j++) expected[ch * k + j] = Math.Max(expected[ch * k + j], l[j] - top);
                }
        using var x = tensor(xs, new long[] { n, c, s });
        Assert.True(expected[1 * k + 2] < -1000);   // the far component
        foreach (bool wide in new[] { false, true })
        {
            using var width = Simd.Use(wide);
            var actual = Fused.MaxLogP(x, m);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-5 * (1 + Math.Abs(expected[i])),
                    $"{(wide ? "Vector512" : "Vector<T>")} [{i}]: {actual[i]:R} against {expected[i]:R}");
        }
    }

    [Fact]
    public async Task WidthAndKernelOverrides_HoldInTheirOwnFlow_AndDoNotLeakIntoConcurrentFlows()
    {
        bool defaultWide = Simd.Wide, defaultFused = UanKernels.IsEnabled;
        using var entered = new SemaphoreSlim(0);
        using var release = new SemaphoreSlim(0);
        var inside = Task.Run(async () =>
        {
            using var width = Simd.Use(!defaultWide);
            using var fused = UanKernels.Use(!defaultFused);
            entered.Release();
            await release.WaitAsync();
            // Still overridden after an await (the flow carries it), whatever thread resumed it.
            return (Simd.Wide, UanKernels.IsEnabled);
        });
        await entered.WaitAsync();
        // A concurrent flow sees the defaults while the other scope is open.
        var outside = await Task.Run(() => (Simd.Wide, UanKernels.IsEnabled));
        Assert.Equal((defaultWide, defaultFused), outside);
        release.Release();
        Assert.Equal((!defaultWide, !defaultFused), await inside);
        Assert.Equal((defaultWide, defaultFused), (Simd.Wide, UanKernels.IsEnabled));

        // Nested scopes restore the enclosing value, and disposing twice is harmless.
        var outer = Simd.Use(false);
        var inner = Simd.Use(true);
        Assert.True(Simd.Wide);
        inner.Dispose();
        inner.Dispose();
        Assert.False(Simd.Wide);
        outer.Dispose();
        Assert.Equal(defaultWide, Simd.Wide);
    }
}
