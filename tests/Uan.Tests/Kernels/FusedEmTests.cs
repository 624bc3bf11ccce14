using TorchSharp;
using Uan.Kernels;
using static TorchSharp.torch;

namespace Uan.Tests.Kernels;

/// <summary>The fused EM step and the fused Mixture Normalization layer against the tensor-op path.</summary>
public class FusedEmTests
{
    static void Same(Tensor expected, Tensor actual, double tol, string what)
    {
        var e = T.Read(expected);
        var a = T.Read(actual);
        Assert.Equal(e.Length, a.Length);
        double rms = Math.Sqrt(e.Select(v => v * v).DefaultIfEmpty(0).Average());
        for (int i = 0; i < e.Length; i++)
            if (!(Math.Abs(a[i] - e[i]) <= tol * (Math.Abs(e[i]) + rms) + 1e-300))
                Assert.Fail($"{what}[{i}]: reference {e[i]:R}, fused {a[i]:R} (rms {rms:E2}).");
    }

    [Theory]
    [InlineData(new long[] { 7, 3 })]          // 2-D: the transpose's reshape is only a view
    [InlineData(new long[] { 4, 3, 2, 5 })]
    public void ToRows_IsContiguousChannelRows(long[] shape)
    {
        using var scope = NewDisposeScope();
        long n = shape[0], c = shape[1], s = shape.Skip(2).Aggregate(1L, (a, b) => a * b);
        var x = arange(shape.Aggregate(1L, (a, b) => a * b), ScalarType.Float64).reshape(shape);
        var rows = MixtureEm.ToRows(x);
        // The fused EM takes only contiguous rows; a strided view silently sent EM to the tensor-op path.
        Assert.True(rows.is_contiguous());
        Assert.Equal(new[] { c, n * s }, rows.shape);
        var xv = x.data<double>().ToArray();
        var rv = rows.data<double>().ToArray();
        for (long i = 0; i < n; i++)
            for (long ch = 0; ch < c; ch++)
                for (long j = 0; j < s; j++)
                    Assert.Equal(xv[(i * c + ch) * s + j], rv[ch * n * s + i * s + j]);
    }

    static Tensor Rows(int c, int m, ScalarType dtype, int seed)
    {
        var g = new Generator((ulong)seed);
        // Bimodal channels with different offsets and scales.
        var a = randn(c, m, dtype: ScalarType.Float64, generator: g);
        var side = (rand(c, m, dtype: ScalarType.Float64, generator: g) > 0.6).to(ScalarType.Float64);
        var shift = arange(c, dtype: ScalarType.Float64).unsqueeze(1) * 0.7 - 1;
        return (a * (0.5 + side) + side * 3 + shift).to(dtype);
    }

    [Theory]
    [InlineData(1, 1, 50, false)]
    [InlineData(2, 3, 37, false)]
    [InlineData(3, 17, 200, true)]
    [InlineData(5, 3, 1001, true)]
    [InlineData(3, 4, 20000, false)]   // parallel split
    public void Step_MatchesTensorOps(int k, int c, int m, bool f64)
    {
        using var scope = NewDisposeScope();
        var dtype = f64 ? ScalarType.Float64 : ScalarType.Float32;
        var rows = Rows(c, m, dtype, 10 * k + c);
        GaussianMixture start;
        using (UanKernels.Use(false)) start = MixtureEm.KMeansPlusPlus(rows, k, new Generator(5));
        double tol = f64 ? 1e-10 : 1e-5;
        // Both vector widths, whatever this machine prefers.
        foreach (bool wide in new[] { false, true })
        {
            using var width = Simd.Use(wide);
            string at = wide ? "Vector512" : "Vector<T>";
            var current = start;
            for (int i = 0; i < 3; i++)
            {
                // The reference runs in float64 on the same values: the float32 tensor-op path's own rounding in the
                // two-pass variance is larger than the fused kernel's (double accumulators).
                var start64 = new GaussianMixture(current.Weights.to(float64), current.Means.to(float64),
                    current.Variances.to(float64));
                (GaussianMixture Mixture, Tensor LogLikelihood) reference;
                using (UanKernels.Use(false)) reference = MixtureEm.Step(rows.to(float64), start64);
                var fused = MixtureEm.Step(rows, current);
                Assert.Equal(dtype, fused.Mixture.Means.dtype);
                Same(reference.LogLikelihood, fused.LogLikelihood, tol, $"{at} step {i} log-likelihood");
                Same(reference.Mixture.Weights, fused.Mixture.Weights, tol, $"{at} step {i} weights");
                Same(reference.Mixture.Means, fused.Mixture.Means, tol, $"{at} step {i} means");
                Same(reference.Mixture.Variances, fused.Mixture.Variances, tol, $"{at} step {i} variances");
                current = fused.Mixture;
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Advance_WithoutTheLikelihood_GivesTheSameMixtureAsStep(bool f64)
    {
        using var scope = NewDisposeScope();
        var dtype = f64 ? ScalarType.Float64 : ScalarType.Float32;
        var x = Rows(5, 4000, dtype, 3).view(5, 40, 100).transpose(0, 1).contiguous();   // [N, C, S]
        GaussianMixture start;
        using (UanKernels.Use(false)) start = MixtureEm.KMeansPlusPlus(MixtureEm.ToRows(x), 3, new Generator(2));
        foreach (bool wide in new[] { false, true })
        {
            using var width = Simd.Use(wide);
            var (stepped, _) = FusedEm.Step(x, start);
            var advanced = FusedEm.Advance(x, start);
            // Same sums apart from the skipped log-likelihood slot: bit for bit.
            Assert.Equal(T.Read(stepped.Weights), T.Read(advanced.Weights));
            Assert.Equal(T.Read(stepped.Means), T.Read(advanced.Means));
            Assert.Equal(T.Read(stepped.Variances), T.Read(advanced.Variances));
        }
    }

    [Theory]
    [InlineData(70, 300, false)]    // [N, C] in the channel-lanes layout, a part-filled last group
    [InlineData(64, 900, true)]     // whole groups, parallel
    public void Step_OnChannelLanes_MatchesTensorOps(int c, int n, bool f64)
    {
        using var scope = NewDisposeScope();
        var dtype = f64 ? ScalarType.Float64 : ScalarType.Float32;
        var x = Rows(c, n, dtype, c + n).transpose(0, 1).contiguous();   // [N, C]: read in place, across channels
        var rows64 = MixtureEm.ToRows(x).to(float64);
        GaussianMixture start;
        using (UanKernels.Use(false)) start = MixtureEm.KMeansPlusPlus(MixtureEm.ToRows(x), 3, new Generator(4));
        var start64 = new GaussianMixture(start.Weights.to(float64), start.Means.to(float64), start.Variances.to(float64));
        (GaussianMixture Mixture, Tensor LogLikelihood) reference;
        using (UanKernels.Use(false)) reference = MixtureEm.Step(rows64, start64);
        double tol = f64 ? 1e-10 : 1e-5;
        foreach (bool wide in new[] { false, true })
        {
            using var width = Simd.Use(wide);
            Assert.True(KernelMath.ChannelLanes(c, 1, Simd.Lanes(f64)));
            var (fused, logLik) = FusedEm.Step(x, start);
            string at = wide ? "Vector512" : "Vector<T>";
            Same(reference.LogLikelihood, logLik, tol, $"{at} log-likelihood");
            Same(reference.Mixture.Weights, fused.Weights, tol, $"{at} weights");
            Same(reference.Mixture.Means, fused.Means, tol, $"{at} means");
            Same(reference.Mixture.Variances, fused.Variances, tol, $"{at} variances");
        }
    }

    [Fact]
    public void Step_DeadComponentKeepsItsValues()
    {
        using var scope = NewDisposeScope();
        var rows = Rows(3, 300, ScalarType.Float64, 1);
        var start = new GaussianMixture(full(2, 3, 0.5, dtype: float64),
            tensor(new double[] { 0, 0, 0, 500, 500, 500 }, new long[] { 2, 3 }, float64),
            full(2, 3, 1.0, dtype: float64));
        (GaussianMixture Mixture, Tensor LogLikelihood) reference;
        using (UanKernels.Use(false)) reference = MixtureEm.Step(rows, start);
        var fused = MixtureEm.Step(rows, start);
        Assert.Equal(500.0, fused.Mixture.Means[1, 0].item<double>());
        Same(reference.Mixture.Weights, fused.Mixture.Weights, 1e-10, "weights");
        Same(reference.Mixture.Means, fused.Mixture.Means, 1e-10, "means");
        Same(reference.Mixture.Variances, fused.Mixture.Variances, 1e-10, "variances");
        Same(reference.LogLikelihood, fused.LogLikelihood, 1e-10, "log-likelihood");
    }

    [Theory]
    [InlineData(false, 2, 3)]
    [InlineData(true, 4, 1)]
    [InlineData(true, 2, 2)]
    public void MixtureNorm_TrainAndEval_MatchesTensorOps(bool f64, int rank, int k)
    {
        using var scope = NewDisposeScope();
        var dtype = f64 ? ScalarType.Float64 : ScalarType.Float32;
        long[] shape = rank == 2 ? new long[] { 40, 5 } : new long[] { 6, 3, 5, 7 };
        var g = new Generator(11);
        var batches = Enumerable.Range(0, 3)
            .Select(_ => (randn(shape, dtype: float64, generator: g) * 1.3 + 0.4).to(dtype)).ToArray();
        var up = randn(shape, dtype: float64, generator: g).to(dtype);

        (double[] Y, double[] Gx, double[] Gw, double[] Buffers, double[] Eval) Train(bool fused)
        {
            using var path = UanKernels.Use(fused);
            manual_seed(3);   // the k-means++ seeding draws from torch's global generator
            using var layer = new MixtureNorm(shape[1], new MixtureNormOptions { Components = k, EmIterations = 2 });
            if (f64) layer.to(float64);
            layer.train();
            Tensor y = null!, x = null!;
            foreach (var b in batches)
            {
                x = b.clone().requires_grad_(true);
                layer.zero_grad();
                y = layer.forward(x);
                (y * up).sum().backward();
            }
            var buffers = new[] { layer.mixture_weight, layer.mixture_mean, layer.mixture_var, layer.running_mean,
                layer.running_var }.SelectMany(T.Read).ToArray();
            layer.eval();
            var eval = T.Read(layer.forward(batches[0]));
            return (T.Read(y), T.Read(x.grad!), T.Read(layer.weight!.grad!), buffers, eval);
        }
        var r = Train(false);
        var f = Train(true);
        double tol = f64 ? 1e-9 : 2e-4;
        Check(r.Y, f.Y, "y");
        Check(r.Gx, f.Gx, "dx");
        Check(r.Gw, f.Gw, "dweight");
        Check(r.Buffers, f.Buffers, "buffers");
        Check(r.Eval, f.Eval, "eval y");

        void Check(double[] e, double[] a, string what) =>
            Same(tensor(e, float64), tensor(a, float64), tol, what);
    }
}
