using TorchSharp;
using Uan;
using static TorchSharp.torch;

/// <summary>
/// Bad values reaching the factory or the layers: out-of-range or repeated spec options, a K too large for a stack
/// buffer, empty batches, and NaN / inf / huge values in the batch that initialises UAN or feeds Mixture
/// Normalization's EM.
/// </summary>
public sealed class BadValueTests
{
    [Theory]
    [InlineData("bn:eps=-1", "eps must be a number in (0, 1], got '-1'")]
    [InlineData("ln:eps=-1", "eps must be a number in (0, 1], got '-1'")]
    [InlineData("in:eps=0", "eps must be a number in (0, 1]")]
    [InlineData("gn:eps=Infinity", "eps must be a number in (0, 1]")]
    [InlineData("uan:eps=2", "eps must be a number in (0, 1], got '2'")]
    [InlineData("bn:momentum=5", "momentum must be a number in [0, 1], got '5'")]
    [InlineData("mn:momentum=NaN", "momentum must be a number in [0, 1]")]
    [InlineData("uan:k=2048", "k must be an integer in 1..64, got '2048'")]
    [InlineData("mn:k=0", "k must be an integer in 1..64, got '0'")]
    [InlineData("mn:iters=-1", "iters must be an integer in 0..100")]
    [InlineData("gn:groups=0", "groups must be an integer ≥ 1")]
    [InlineData("uan:cluster=-0.5", "cluster must be a number in [0, 1000]")]
    [InlineData("uan:k=3,k=4", "gives option k twice (3 and 4)")]
    [InlineData("bn:eps=1e-3,EPS=1e-3", "gives option eps twice")]
    public void OutOfRangeAndRepeatedOptionsAreRefusedByParseAndCreate(string spec, string fragment)
    {
        Assert.Contains(fragment, Assert.Throws<ArgumentException>(() => Norms.Parse(spec)).Message);
        Assert.Contains(fragment, Assert.Throws<ArgumentException>(() => Norms.Create(spec, 4)).Message);
    }

    [Fact]
    public void CreateChecksASpecBuiltWithoutParse()
    {
        var spec = new NormSpec("bn", new Dictionary<string, string> { ["eps"] = "-1" });
        Assert.Contains("eps must be a number in (0, 1]", Assert.Throws<ArgumentException>(() => Norms.Create(spec, 4)).Message);
        var unknown = new NormSpec("uan", new Dictionary<string, string> { ["groups"] = "2" });
        Assert.Contains("Unknown option 'groups'", Assert.Throws<ArgumentException>(() => Norms.Create(unknown, 4)).Message);
    }

    [Theory]
    [InlineData("bn:eps=1,momentum=0")]
    [InlineData("bn:momentum=1")]
    [InlineData("uan:k=64,cluster=1000")]
    [InlineData("mn:k=1,iters=0")]
    [InlineData("gn:groups=4")]
    public void TheEndsOfEveryRangeAreAccepted(string spec)
    {
        using var scope = NewDisposeScope();
        var y = Norms.Create(spec, 4).forward(randn(3, 4, 2, 2));
        Assert.Equal(new long[] { 3, 4, 2, 2 }, y.shape);
    }

    [Theory]
    [InlineData(UanMode.Paper, 2)]
    [InlineData(UanMode.Paper, 0)]
    [InlineData(UanMode.BatchStats, 2)]
    public void AKOfThousandsRunsWithoutOverflowingTheStack(UanMode mode, int spatial)
    {
        // Before: the kernels' per-item scratch (about 4 KiB per component) was stack-allocated, and K = 2048 ended
        // the process with "Stack overflow.". Compared with K copies of one component, which is K = 1 exactly.
        using var scope = NewDisposeScope();
        const int k = 2048;
        var shape = new long[] { 4, 16 }.Concat(Enumerable.Repeat(3L, spatial)).ToArray();
        var x = randn(shape).requires_grad_();
        var big = new UnsupervisedAdaptiveNorm(16, new UanOptions { Components = k, Mode = mode, Init = UanInit.Uniform });
        var one = new UnsupervisedAdaptiveNorm(16, new UanOptions { Components = 1, Mode = mode, Init = UanInit.Uniform });
        using (no_grad())
        {
            one.mu.copy_(big.mu[..1]);
            one.rho.copy_(big.rho[..1]);
            big.mu.copy_(big.mu[..1].expand(k, 16));
            big.rho.copy_(big.rho[..1].expand(k, 16));
            big.alpha.zero_();
            one.alpha.zero_();
        }
        var y = big.forward(x);
        y.sum().backward();
        Assert.True(y.isfinite().all().item<bool>());
        Assert.True(x.grad!.isfinite().all().item<bool>());
        // K equal components, each with weight 1/K and the scale λ^(−1/2) = √K: √K times the output of K = 1.
        var expected = one.forward(x.detach()) * Math.Sqrt(k);
        double err = (y.detach() - expected).abs().max().item<float>() / expected.abs().max().item<float>();
        Assert.True(err < 1e-3, $"relative difference {err}");
    }

    [Fact]
    public void MixtureNormWithAThousandComponentsRunsToo()
    {
        // The EM passes share the kernels' scratch; K = 1000 needs about 2 MiB of it per work item.
        using var scope = NewDisposeScope();
        manual_seed(2);
        var mn = new MixtureNorm(16, new MixtureNormOptions { Components = 1000, EmIterations = 1 });
        var x = randn(4, 16, 3, 3);
        var y = mn.forward(x);
        Assert.True(y.isfinite().all().item<bool>());
        Assert.Equal(1000, mn.mixture_mean.shape[0]);
    }

    public static IEnumerable<object[]> Layers() => new[]
    {
        new object[] { "UnsupervisedAdaptiveNorm", (Func<nn.Module<Tensor, Tensor>>)(() => new UnsupervisedAdaptiveNorm(4)) },
        new object[] { "UnsupervisedAdaptiveNorm", (Func<nn.Module<Tensor, Tensor>>)(() => new UnsupervisedAdaptiveNorm(4, new UanOptions { Mode = UanMode.BatchStats })) },
        new object[] { "MixtureNorm", (Func<nn.Module<Tensor, Tensor>>)(() => new MixtureNorm(4)) },
    };

    [Theory]
    [MemberData(nameof(Layers))]
    public void AnEmptyBatchIsRefusedNamingTheLayer(string name, Func<nn.Module<Tensor, Tensor>> make)
    {
        using var scope = NewDisposeScope();
        foreach (var train in new[] { true, false })
            foreach (var shape in new[] { new long[] { 0, 4, 3, 3 }, new long[] { 2, 4, 0, 3 }, new long[] { 0, 4 } })
            {
                var layer = make();
                layer.train(train);
                var e = Assert.Throws<ArgumentException>(() => layer.forward(zeros(shape)));
                Assert.Contains(name, e.Message);
                Assert.Contains("empty", e.Message);
                Assert.Contains("[" + string.Join(", ", shape) + "]", e.Message);
            }
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void MixtureNormRefusesNonFiniteTrainingInputAndKeepsItsState(float bad)
    {
        using var scope = NewDisposeScope();
        var mn = new MixtureNorm(4);
        var x = randn(8, 4, 3, 3);
        x[3, 2, 1, 1] = tensor(bad);
        var e = Assert.Throws<ArgumentException>(() => mn.forward(x));
        Assert.Contains("MixtureNorm", e.Message);
        Assert.Contains("NaN or infinite", e.Message);
        Assert.Equal(0L, mn.initialized.item<long>());
        Assert.True(mn.mixture_mean.isfinite().all().item<bool>());
        // The same batch without the bad value trains.
        x[3, 2, 1, 1] = tensor(0f);
        Assert.True(mn.forward(x).isfinite().all().item<bool>());
        Assert.Equal(1L, mn.initialized.item<long>());
    }

    /// <summary>The data initialisation recomputed independently: per channel from its finite values, in double.</summary>
    static (double[,] Mu, double[,] Var) ExpectedInit(double[] x, int n, int c, int s, int k, double eps)
    {
        var mu = new double[k, c];
        var variance = new double[k, c];
        for (int ch = 0; ch < c; ch++)
        {
            var v = new List<double>();
            for (int i = 0; i < n; i++)
                for (int p = 0; p < s; p++)
                    if (double.IsFinite(x[(i * c + ch) * s + p])) v.Add(x[(i * c + ch) * s + p]);
            v.Sort();
            double mean = v.Sum() / v.Count;
            double var = v.Sum(a => (a - mean) * (a - mean)) / v.Count;
            for (int j = 0; j < k; j++)
            {
                mu[j, ch] = v[(int)Math.Round((j + 0.5) / k * (v.Count - 1))];
                variance[j, ch] = Math.Max(var / k, eps + 1e-6);       // σ² = softplus(rho) + eps ≥ eps + 1e-6
            }
        }
        return (mu, variance);
    }

    [Fact]
    public void DataInitUsesOnlyTheFiniteValuesOfEachChannel()
    {
        using var scope = NewDisposeScope();
        const int n = 6, c = 3, s = 25, k = 3;
        var rng = new Random(7);
        var xs = new double[n * c * s];
        for (int i = 0; i < xs.Length; i++) xs[i] = (i % c + 1) * 3 * (rng.NextDouble() - 0.3) + i % c;
        // Channel 0 gets NaN, channel 1 ±inf, channel 2 stays clean.
        foreach (int i in new[] { 0, 7, 40 }) xs[(i / s * c + 0) * s + i % s] = double.NaN;
        foreach (int i in new[] { 3, 90 }) xs[(i / s * c + 1) * s + i % s] = i == 3 ? double.PositiveInfinity : double.NegativeInfinity;
        var uan = new UnsupervisedAdaptiveNorm(c, new UanOptions { Components = k });
        uan.to(float64);
        uan.forward(tensor(xs, new long[] { n, c, 5, 5 }));

        var (mu, variance) = ExpectedInit(xs, n, c, s, k, 1e-3);
        var got = uan.mu.data<double>().ToArray();
        var (weights, _, gotVar) = uan.GetMixture();
        var gv = gotVar.data<double>().ToArray();
        for (int j = 0; j < k; j++)
            for (int ch = 0; ch < c; ch++)
            {
                Assert.Equal(mu[j, ch], got[j * c + ch], 12);
                Assert.Equal(variance[j, ch], gv[j * c + ch], 9);
            }
        Assert.True(weights.isfinite().all().item<bool>());
        Assert.True(uan.rho.isfinite().all().item<bool>() && uan.alpha.isfinite().all().item<bool>());
    }

    [Fact]
    public void NonFiniteValuesAddedToABatchDoNotChangeTheInit()
    {
        // The same batch with extra positions holding NaN / ±inf in every channel gives the same parameters.
        using var scope = NewDisposeScope();
        manual_seed(11);
        var clean = randn(8, 4, 10) * 3 + 1;
        var bad = full(8, 4, 3, float.NaN);
        bad[.., .., 1] = tensor(float.PositiveInfinity);
        bad[.., .., 2] = tensor(float.NegativeInfinity);
        var a = new UnsupervisedAdaptiveNorm(4, new UanOptions { Components = 3 });
        var b = new UnsupervisedAdaptiveNorm(4, new UanOptions { Components = 3 });
        a.forward(clean);
        b.forward(cat(new[] { clean, bad }, 2));
        Assert.Equal(0, (a.mu - b.mu).abs().max().item<float>());
        Assert.Equal(0, (a.rho - b.rho).abs().max().item<float>());
        Assert.Equal(0, (a.alpha - b.alpha).abs().max().item<float>());
    }

    [Fact]
    public void HugeValuesGiveFiniteClampedParameters()
    {
        // ±1e30 is finite in float32, but its square is not (nor, summed, in every double computation).
        using var scope = NewDisposeScope();
        var x = randn(8, 2, 4, 4);
        x[0, 0, 0, 0] = tensor(1e30f);
        x[1, 0, 2, 2] = tensor(-1e30f);
        x[.., 1] = tensor(3e38f);                      // a constant channel at float32's edge
        var uan = new UnsupervisedAdaptiveNorm(2, new UanOptions { Components = 3 });
        uan.forward(x);
        Assert.True(uan.mu.isfinite().all().item<bool>());
        Assert.True(uan.rho.isfinite().all().item<bool>());
        Assert.True(uan.alpha.isfinite().all().item<bool>());
        var (_, means, variances) = uan.GetMixture();
        // Channel 0: variance ≈ 2e60 / 128 / K, clamped; channel 1: constant, so the floor; means clamped to 1e30.
        Assert.Equal(UnsupervisedAdaptiveNorm.MaxInitialValue, variances[0, 0].item<float>(), 1e24);
        Assert.Equal(1e-3 + UnsupervisedAdaptiveNorm.MinInitialExcessVariance, variances[0, 1].item<float>(), 1e-7);
        Assert.Equal(UnsupervisedAdaptiveNorm.MaxInitialValue, means[1, 1].item<float>(), 1e24);
    }

    [Fact]
    public void AChannelWithoutFiniteValuesKeepsThePlaceholderMixture()
    {
        using var scope = NewDisposeScope();
        var x = randn(4, 2, 3, 3);
        x[.., 1] = tensor(float.NaN);
        var uan = new UnsupervisedAdaptiveNorm(2, new UanOptions { Components = 3 });
        uan.forward(x);
        Assert.Equal(1L, uan.initialized.item<long>());
        var (weights, means, variances) = uan.GetMixture();
        Assert.Equal(new[] { -1f, 0f, 1f }, means[.., 1].data<float>().ToArray());
        Assert.True((variances[.., 1] - 1).abs().max().item<float>() < 1e-5);
        Assert.True((weights[.., 1] - 1.0 / 3).abs().max().item<float>() < 1e-6);
        // Channel 0 was initialised from its data: its means are quantiles of it, not the placeholder.
        Assert.NotEqual(-1f, means[0, 0].item<float>());
    }
}
