using TorchSharp;
using Uan;
using static TorchSharp.torch;

/// <summary>Train/eval semantics, initialisation, persistence and dtype moves of the layers.</summary>
public sealed class ModuleBehaviourTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("uan-state-").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static double MaxAbs(Tensor a, Tensor b) => (a - b).abs().max().to(float64).item<double>();

    [Fact]
    public void PaperModeIsTheSameFunctionInTrainAndEval()
    {
        using var scope = NewDisposeScope();
        manual_seed(2);
        var uan = new UnsupervisedAdaptiveNorm(6, new UanOptions { Components = 3 });
        var x = randn(10, 6, 4, 4);
        uan.forward(x);                                   // data init happens here
        var train = uan.forward(x);
        uan.eval();
        var eval = uan.forward(x);
        Assert.Equal(0, MaxAbs(train, eval));
        // Batch independent: one sample alone gives the same output.
        Assert.Equal(0, MaxAbs(eval[..1], uan.forward(x[..1])), 6);
    }

    [Fact]
    public void BatchStatsUsesRunningStatisticsInEval()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var uan = new UnsupervisedAdaptiveNorm(4, new UanOptions { Mode = UanMode.BatchStats, Components = 2 });
        var before = uan.running_mean!.clone();
        for (int i = 0; i < 4; i++) uan.forward(randn(16, 4, 5, 5) * 2 + 3);
        Assert.True(MaxAbs(before, uan.running_mean!) > 0.5, "training did not move the running means");
        var running = uan.running_mean!.clone();
        uan.eval();
        var x = randn(6, 4, 5, 5) * 2 + 3;
        var whole = uan.forward(x);
        Assert.True(MaxAbs(whole[..2], uan.forward(x[..2])) < 1e-6, "eval output depends on the batch");
        Assert.Equal(0, MaxAbs(running, uan.running_mean!));
        uan.train();
        Assert.True(MaxAbs(whole, uan.forward(x)) > 1e-3, "training output should use batch statistics");
    }

    [Fact]
    public void DataInitPlacesMeansAtQuantilesAndVarianceOverK()
    {
        using var scope = NewDisposeScope();
        // Channel 0: the values 0..999 spread over N and space; channel 1: a constant shift of them.
        var v = arange(1000, dtype: float64).reshape(10, 1, 10, 10);
        var x = cat(new[] { v, v + 5000 }, 1);
        var uan = new UnsupervisedAdaptiveNorm(2, new UanOptions { Components = 4 });
        uan.to(float64);
        Assert.Equal(0L, uan.initialized.item<long>());
        uan.forward(x);
        Assert.Equal(1L, uan.initialized.item<long>());
        var mu = uan.mu.data<double>().ToArray();       // [K, C] row-major
        double[] q = { 125, 375, 624, 874 };             // round((k + 0.5)/4 · 999)
        for (int k = 0; k < 4; k++)
        {
            Assert.Equal(q[k], mu[2 * k], 6);
            Assert.Equal(q[k] + 5000, mu[2 * k + 1], 6);
        }
        var (weights, _, variances) = uan.GetMixture();
        double batchVar = (1000.0 * 1000 - 1) / 12;      // population variance of 0..999
        Assert.True(MaxAbs(variances, full_like(variances, batchVar / 4)) < 1e-6 * batchVar);
        Assert.True(MaxAbs(weights, full_like(weights, 0.25)) < 1e-12);
    }

    [Fact]
    public void DataInitHappensOnceAndSurvivesSaveAndLoad()
    {
        using var scope = NewDisposeScope();
        manual_seed(4);
        var a = new UnsupervisedAdaptiveNorm(3);
        a.forward(randn(8, 3, 4, 4) * 5 + 10);
        var muAfterInit = a.mu.clone();
        a.forward(randn(8, 3, 4, 4) - 20);               // a very different batch: no re-initialisation
        Assert.Equal(0, MaxAbs(muAfterInit, a.mu));

        var path = Path.Combine(_dir, "uan.dat");
        a.save(path);
        var b = new UnsupervisedAdaptiveNorm(3);
        b.load(path);
        Assert.Equal(1L, b.initialized.item<long>());
        b.forward(randn(8, 3, 4, 4) - 20);
        Assert.Equal(0, MaxAbs(muAfterInit, b.mu));

        // Without the loaded state the same forward does initialise (so the check above can fail).
        var c = new UnsupervisedAdaptiveNorm(3);
        var muFresh = c.mu.clone();
        c.forward(randn(8, 3, 4, 4) - 20);
        Assert.True(MaxAbs(muFresh, c.mu) > 1);
    }

    public static IEnumerable<object[]> Specs() => new[]
    {
        new object[] { "uan" }, new object[] { "uan:mode=batchstats,affine=true" }, new object[] { "uan:mode=compat" },
        new object[] { "mn:k=2" }, new object[] { "uan:k=1,init=uniform" },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void StateDictRoundTripGivesIdenticalOutputs(string spec)
    {
        using var scope = NewDisposeScope();
        manual_seed(6);
        var a = Norms.Create(spec, 5);
        for (int i = 0; i < 3; i++) a.forward(randn(8, 5, 3, 3) * 2 + 1);
        if (a is UnsupervisedAdaptiveNorm u) u.ApplyReferenceUpdate();
        a.eval();
        var path = Path.Combine(_dir, "state.dat");
        a.save(path);
        var b = Norms.Create(spec, 5);
        b.load(path);
        b.eval();
        var x = randn(4, 5, 3, 3);
        Assert.Equal(0, MaxAbs(a.forward(x), b.forward(x)));
        Assert.Equal(a.state_dict().Keys.OrderBy(k => k), b.state_dict().Keys.OrderBy(k => k));
    }

    [Fact]
    public void StateDictUsesTheDocumentedNames()
    {
        using var scope = NewDisposeScope();
        var paper = new UnsupervisedAdaptiveNorm(3, new UanOptions { Components = 2 });
        Assert.Equal(new[] { "alpha", "initialized", "mu", "rho" }, paper.state_dict().Keys.OrderBy(k => k));
        var batch = new UnsupervisedAdaptiveNorm(3, new UanOptions { Mode = UanMode.BatchStats, Affine = true });
        Assert.Equal(new[] { "alpha", "bias", "initialized", "mu", "rho", "running_mean", "running_var", "weight" },
            batch.state_dict().Keys.OrderBy(k => k));
        Assert.Equal(new long[] { 3, 3 }, batch.mu.shape);
        Assert.Equal(new long[] { 3 }, batch.weight!.shape);
        Assert.Equal(new[] { "alpha", "mu", "rho" }, paper.named_parameters().Select(p => p.name).OrderBy(n => n));
    }

    [Theory]
    [InlineData("uan")]
    [InlineData("uan:mode=batchstats")]
    [InlineData("uan:mode=compat")]
    [InlineData("mn")]
    public void MovesToFloat64(string spec)
    {
        using var scope = NewDisposeScope();
        manual_seed(8);
        var m = Norms.Create(spec, 4);
        m.forward(randn(6, 4, 3, 3));                        // initialise in float32
        m.eval();
        var x = randn(6, 4, 3, 3);
        var y32 = m.forward(x);
        m.to(float64);
        Assert.All(m.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));
        if (m is UnsupervisedAdaptiveNorm u) Assert.Equal(ScalarType.Float64, u.mu.dtype);
        var y64 = m.forward(x.to(float64));
        Assert.Equal(ScalarType.Float64, y64.dtype);
        Assert.True(MaxAbs(y32.to(float64), y64) < 1e-4 * (1 + y64.abs().max().item<double>()));
        // Training steps in float64 work too (running buffers were converted).
        m.train();
        var yt = m.forward(x.to(float64).requires_grad_(true));
        yt.sum().backward();
    }

    [Fact]
    public void ClusterTermIsTheMixtureNegativeLogLikelihoodAndTrainable()
    {
        using var scope = NewDisposeScope();
        manual_seed(9);
        var uan = new UnsupervisedAdaptiveNorm(3, new UanOptions { ClusterLossWeight = 0.5, Init = UanInit.Uniform });
        var x = cat(new[] { randn(32, 3, 4, 4) - 2, randn(32, 3, 4, 4) + 2 });
        uan.forward(x);
        Assert.NotNull(uan.ClusterLoss);
        var expected = UanFunctional.NegativeLogLikelihood(x, uan.mu, uan.rho, uan.alpha, uan.Options.Eps);
        Assert.Equal(expected.item<float>(), uan.ClusterLoss!.item<float>(), 5);
        var opt = optim.Adam(uan.parameters(), 0.05);
        double first = uan.ClusterLoss.item<float>();
        for (int i = 0; i < 50; i++)
        {
            opt.zero_grad();
            uan.forward(x);
            uan.ClusterLoss!.backward();
            opt.step();
        }
        uan.forward(x);
        Assert.True(uan.ClusterLoss!.item<float>() < first - 0.1, "descending the cluster term did not fit the mixture");
        uan.eval();
        uan.forward(x);
        Assert.Null(uan.ClusterLoss);
        Assert.Null(new UnsupervisedAdaptiveNorm(3).ClusterLoss);
    }
}
