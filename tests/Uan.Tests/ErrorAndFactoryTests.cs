using TorchSharp;
using Uan;
using static TorchSharp.torch;

public sealed class ErrorAndFactoryTests
{
    public static IEnumerable<object[]> Layers() => new[]
    {
        new object[] { "UnsupervisedAdaptiveNorm", (Func<long, nn.Module<Tensor, Tensor>>)(c => new UnsupervisedAdaptiveNorm(c)) },
        new object[] { "UnsupervisedAdaptiveNorm", (Func<long, nn.Module<Tensor, Tensor>>)(c => new UnsupervisedAdaptiveNorm(c, new UanOptions { Mode = UanMode.BatchStats })) },
        new object[] { "MixtureNorm", (Func<long, nn.Module<Tensor, Tensor>>)(c => new MixtureNorm(c)) },
    };

    [Theory]
    [MemberData(nameof(Layers))]
    public void BadInputShapesNameTheLayerAndBothShapes(string name, Func<long, nn.Module<Tensor, Tensor>> make)
    {
        using var scope = NewDisposeScope();
        var layer = make(4);
        var e1 = Assert.Throws<ArgumentException>(() => layer.forward(randn(4)));
        Assert.Contains(name, e1.Message);
        Assert.Contains("rank", e1.Message);
        Assert.Contains("[4]", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => layer.forward(randn(2, 3, 5, 5)));
        Assert.Contains(name, e2.Message);
        Assert.Contains("[N, 4, ...]", e2.Message);
        Assert.Contains("[2, 3, 5, 5]", e2.Message);
        var e3 = Assert.Throws<ArgumentException>(() => layer.forward(ones(2, 4, dtype: int64)));
        Assert.Contains("floating-point", e3.Message);
    }

    [Theory]
    [InlineData(0, 1e-3, 0.1, "K must be ≥ 1, got 0")]
    [InlineData(-2, 1e-3, 0.1, "got -2")]
    [InlineData(3, 0, 0.1, "eps must be a finite number > 0, got 0")]
    [InlineData(3, -1e-3, 0.1, "eps must be a finite number > 0, got -0.001")]
    [InlineData(3, double.NaN, 0.1, "eps must be")]
    [InlineData(3, 1e-3, -0.1, "momentum must be in [0, 1], got -0.1")]
    [InlineData(3, 1e-3, 1.5, "momentum must be in [0, 1], got 1.5")]
    public void BadOptionsAreRejectedByBothLayers(int k, double eps, double momentum, string fragment)
    {
        var e1 = Assert.Throws<ArgumentException>(() =>
            new UnsupervisedAdaptiveNorm(4, new UanOptions { Components = k, Eps = eps, Momentum = momentum }));
        Assert.Contains("UnsupervisedAdaptiveNorm", e1.Message);
        Assert.Contains(fragment, e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() =>
            new MixtureNorm(4, new MixtureNormOptions { Components = k, Eps = eps, Momentum = momentum }));
        Assert.Contains("MixtureNorm", e2.Message);
        Assert.Contains(fragment, e2.Message);
    }

    [Fact]
    public void OtherBadArgumentsAreRejected()
    {
        Assert.Contains("channels must be ≥ 1", Assert.Throws<ArgumentException>(() => new UnsupervisedAdaptiveNorm(0)).Message);
        Assert.Contains("ClusterLossWeight", Assert.Throws<ArgumentException>(() =>
            new UnsupervisedAdaptiveNorm(2, new UanOptions { ClusterLossWeight = -1 })).Message);
        Assert.Contains("EmIterations", Assert.Throws<ArgumentException>(() =>
            new MixtureNorm(2, new MixtureNormOptions { EmIterations = -1 })).Message);
    }

    [Fact]
    public void NonFiniteInputPropagatesWithoutThrowing()
    {
        using var scope = NewDisposeScope();
        var x = randn(4, 3, 2, 2);
        x[0, 0, 0, 0] = tensor(float.NaN);
        foreach (var spec in new[] { "uan:init=uniform", "uan:mode=batchstats,init=uniform", "bn" })
        {
            var y = Norms.Create(spec, 3).forward(x);
            Assert.True(y.isnan().any().item<bool>(), $"{spec}: NaN did not propagate");
        }
        // Mixture Normalization refuses NaN in training (its EM fit; see BadValueTests), and passes it through in eval.
        var mn = Norms.Create("mn:k=1", 3);
        mn.eval();
        Assert.True(mn.forward(x).isnan().any().item<bool>(), "mn (eval): NaN did not propagate");
    }

    [Theory]
    [InlineData("none", 0, typeof(TorchSharp.Modules.Identity))]
    [InlineData("bn", 2, typeof(TorchSharp.Modules.BatchNorm2d))]
    [InlineData("bn", 0, typeof(TorchSharp.Modules.BatchNorm1d))]
    [InlineData("bn:eps=1e-3,momentum=0.01", 3, typeof(TorchSharp.Modules.BatchNorm3d))]
    [InlineData("ln", 2, typeof(TorchSharp.Modules.GroupNorm))]
    [InlineData("gn:groups=2", 1, typeof(TorchSharp.Modules.GroupNorm))]
    [InlineData("in", 2, typeof(TorchSharp.Modules.InstanceNorm2d))]
    [InlineData("mn:k=2,iters=1", 2, typeof(MixtureNorm))]
    [InlineData("uan", 2, typeof(UnsupervisedAdaptiveNorm))]
    [InlineData("UAN:K=2,Mode=BatchStats", 1, typeof(UnsupervisedAdaptiveNorm))]
    public void FactoryBuildsEveryKindForTheGivenRank(string spec, int spatial, Type expected)
    {
        using var scope = NewDisposeScope();
        var m = Norms.Create(spec, 4, spatial);
        Assert.IsType(expected, m);
        var shape = new long[] { 3, 4 }.Concat(Enumerable.Repeat(5L, spatial)).ToArray();
        var x = randn(shape);
        var y = m.forward(x);
        Assert.Equal(shape, y.shape);
        if (spec != "none") Assert.True((y - x).abs().max().item<float>() > 1e-3, $"{spec} did nothing");
    }

    [Theory]
    [InlineData("ln", 1)]
    [InlineData("gn:groups=2", 2)]
    [InlineData("gn:groups=4", 4)]
    public void GroupAndLayerNormOnFlatInputsMatchAPlainLoop(string spec, int groups)
    {
        // [N, C] inputs, which TorchSharp's GroupNorm module refuses: statistics per sample over each group of
        // channels, biased variance, eps 1e-5, then the per-channel affine.
        using var scope = NewDisposeScope();
        const int n = 3, c = 4;
        var m = Norms.Create(spec, c, 0);
        using (no_grad())
        {
            m.named_parameters().Single(p => p.name == "weight").parameter.copy_(tensor(new[] { 1.5f, -0.5f, 2f, 0.25f }));
            m.named_parameters().Single(p => p.name == "bias").parameter.copy_(tensor(new[] { 0.1f, 0.2f, -0.3f, 0f }));
        }
        var x = randn(n, c, dtype: ScalarType.Float64);
        var y = m.to(ScalarType.Float64).forward(x);
        var xs = x.data<double>().ToArray();
        var ys = y.data<double>().ToArray();
        double[] w = { 1.5, -0.5, 2, 0.25 }, b = { 0.1, 0.2, -0.3, 0 };
        int per = c / groups;
        for (int i = 0; i < n; i++)
            for (int g = 0; g < groups; g++)
            {
                var v = Enumerable.Range(g * per, per).Select(ch => xs[i * c + ch]).ToArray();
                double mean = v.Average(), var = v.Select(a => (a - mean) * (a - mean)).Average();
                for (int ch = g * per; ch < (g + 1) * per; ch++)
                {
                    double expected = (xs[i * c + ch] - mean) / Math.Sqrt(var + 1e-5) * w[ch] + b[ch];
                    Assert.Equal(expected, ys[i * c + ch], 1e-6);
                }
            }
        Assert.Throws<ArgumentException>(() => m.forward(randn(2, 4, 3, dtype: ScalarType.Float64)));
    }

    [Theory]
    [InlineData("ln")]
    [InlineData("gn:groups=4")]
    [InlineData("bn")]
    [InlineData("in")]
    [InlineData("mn")]
    public void FactoryAffineStartsAtOneAndZero(string spec)
    {
        // TorchSharp's own GroupNorm leaves these uninitialised; freed NaN memory makes that visible at once.
        for (int i = 0; i < 20; i++)
        {
            using var scope = NewDisposeScope();
            full(1 << 16, float.NaN).Dispose();
            var norm = Norms.Create(spec, 128);
            var p = norm.named_parameters().ToDictionary(x => x.name, x => x.parameter);
            Assert.True(p["weight"].eq(1).all().item<bool>(), $"{spec}: weight is not all ones");
            Assert.True(p["bias"].eq(0).all().item<bool>(), $"{spec}: bias is not all zeros");
        }
    }

    [Fact]
    public void FactoryPassesOptionsThrough()
    {
        var u = (UnsupervisedAdaptiveNorm)Norms.Create("uan:k=5,mode=compat,eps=0.01,momentum=0.2,affine=true,cluster=0.1", 3);
        Assert.Equal(new UanOptions { Components = 5, Mode = UanMode.ReferenceCompat, Eps = 0.01, Momentum = 0.2,
            Affine = true, ClusterLossWeight = 0.1 }, u.Options);
        Assert.Equal(UanInit.Uniform, u.Options.EffectiveInit);
        var m = (MixtureNorm)Norms.Create("mn:k=4,iters=3,affine=false", 3);
        Assert.Equal(4, m.Options.Components);
        Assert.Equal(3, m.Options.EmIterations);
        Assert.Null(m.weight);
        Assert.Equal("uan:k=5,mode=compat", Norms.Parse(" uan : mode=compat , k=5 ").ToString().Replace(" ", ""));
    }

    [Theory]
    [InlineData("batchnorm", "Unknown norm 'batchnorm'")]
    [InlineData("", "Empty norm spec")]
    [InlineData("uan:q=3", "Unknown option 'q' for norm 'uan'")]
    [InlineData("uan:k", "expected key=value")]
    [InlineData("uan:k=three", "option k must be an integer in 1..64, got 'three'")]
    [InlineData("uan:mode=fast", "unknown UAN mode 'fast'. Accepted: paper, batchstats, compat")]
    [InlineData("uan:init=zero", "unknown UAN init 'zero'")]
    [InlineData("bn:affine=maybe", "option affine must be true or false")]
    [InlineData("gn:groups=3", "groups must divide the channel count 4, got 3")]
    [InlineData("none:eps=1", "Options of none: none")]
    public void BadSpecsSayWhatIsWrongAndWhatIsAccepted(string spec, string fragment)
    {
        var e = Assert.Throws<ArgumentException>(() => Norms.Create(spec, 4));
        Assert.Contains(fragment, e.Message);
        if (fragment.StartsWith("Unknown norm") || fragment.StartsWith("Empty"))
            foreach (var kind in new[] { "none", "bn", "ln", "gn", "in", "mn", "uan" }) Assert.Contains(kind, e.Message);
    }
}
