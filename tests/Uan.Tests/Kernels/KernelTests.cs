using TorchSharp;
using Uan.Kernels;
using Uan.Tests.Reference;
using static TorchSharp.torch;

namespace Uan.Tests.Kernels;

/// <summary>
/// The fused CPU kernels against the tensor-op path (the reference): forward values and every gradient, over odd
/// shapes, K = 1..5, ranks 2..5, float32 and float64; plus finite differences through the fused path, a second
/// backward with retain_graph and no-grad forwards.
/// </summary>
public class KernelTests
{
    /// <summary>Which transform a case exercises.</summary>
    public enum Op { Paper, PaperNll, BatchStats, BatchStatsEval, MixtureBatch, Nll }

    static readonly long[][] Shapes =
    {
        new long[] { 6, 1 },             // C = 1, 2-D: every row is a tail
        new long[] { 5, 3, 7 },
        new long[] { 4, 17, 5, 7 },      // C = 17, spatial 5×7
        new long[] { 3, 3, 1, 1 },       // spatial 1×1
        new long[] { 2, 3, 2, 5, 7 },    // 5-D
        new long[] { 9, 17 },
        new long[] { 16, 3, 33, 31 },    // large enough for the parallel split over channels × batch blocks
        // The channel-lanes layout ([N, C] read in place, a vector across channels) at every width and dtype:
        new long[] { 11, 16 },           // whole groups of lanes
        new long[] { 7, 70, 1, 1 },      // a part-filled last group (70 = 4·16 + 6 = 8·8 + 6 = 17·4 + 2)
        new long[] { 600, 64 },          // parallel: groups × blocks of rows
    };

    public static IEnumerable<object[]> Cases()
    {
        foreach (var op in Enum.GetValues<Op>())
            for (int i = 0; i < Shapes.Length; i++)
                foreach (bool f64 in new[] { false, true })
                    yield return new object[] { op, i, 1 + (i + (int)op) % 5, f64, (i + (int)op) % 2 == 0 };
    }

    /// <summary>Everything one run produces: output, a scalar summary of the other outputs and the leaves' gradients.</summary>
    sealed record Result(double[] Y, double[] Extra, Dictionary<string, double[]> Grads);

    static Result Run(Op op, Problem p, bool affine, bool fused, double[] upstream)
    {
        using var scope = NewDisposeScope();
        using var path = UanKernels.Use(fused);
        var leaves = new Dictionary<string, Tensor>
        {
            ["x"] = p.XTensor(true),
            ["mu"] = p.MuTensor(true),
            ["rho"] = p.RhoTensor(true),
            ["alpha"] = p.AlphaTensor(true),
        };
        var x = leaves["x"];
        var mu = leaves["mu"];
        var rho = leaves["rho"];
        var alpha = leaves["alpha"];
        Tensor? w = null, b = null;
        if (affine)
        {
            w = leaves["weight"] = T.Make(p.Weight, new long[] { p.C }, p.DType, true);
            b = leaves["bias"] = T.Make(p.Bias, new long[] { p.C }, p.DType, true);
        }
        const double eps = 1e-3;
        Tensor y;
        var extra = new List<Tensor>();
        switch (op)
        {
            case Op.Paper:
                y = UanFunctional.Paper(x, mu, rho, alpha, eps, w, b);
                break;
            case Op.PaperNll:
            {
                var (yn, nll) = UanFunctional.PaperWithLikelihood(x, mu, rho, alpha, eps, w, b);
                y = yn;
                extra.Add(nll);
                break;
            }
            case Op.BatchStats:
            {
                var (yb, moments) = UanFunctional.BatchStatsTrain(x, mu, rho, alpha, eps, w, b);
                y = yb;
                extra.AddRange(new[] { moments.Mean, moments.Var, moments.UnbiasedVar });
                break;
            }
            case Op.BatchStatsEval:
            {
                // Running statistics that want gradients too, to check every input of the eval node.
                Tensor rm, rv;
                using (no_grad())
                {
                    rm = (mu * 0.8 + 0.1).detach();
                    rv = (nn.functional.softplus(rho) + 0.3).detach();
                }
                leaves["runningMean"] = rm.requires_grad_(true);
                leaves["runningVar"] = rv.requires_grad_(true);
                y = UanFunctional.BatchStatsEval(x, mu, rho, alpha, rm, rv, eps, w, b);
                break;
            }
            case Op.MixtureBatch:
            {
                // As Mixture Normalization: the mixture is a constant (fitted without gradient).
                Tensor logLambda, variance;
                using (no_grad())
                    (logLambda, variance) = UanFunctional.MixtureFromParameters(rho, alpha, eps);
                leaves.Remove("mu");
                leaves.Remove("rho");
                leaves.Remove("alpha");
                var (ym, moments) = UanFunctional.MixtureBatchTransform(x, logLambda, mu.detach(), variance, eps, w, b);
                y = ym;
                extra.AddRange(new[] { moments.Mean, moments.Var, moments.UnbiasedVar });
                break;
            }
            case Op.Nll:
                // The clustering term alone (BatchStats mode's ClusterLoss); no output of its own.
                y = zeros(p.Shape, p.DType);
                extra.Add(UanFunctional.NegativeLogLikelihood(x, mu, rho, alpha, eps));
                leaves.Remove("weight");
                leaves.Remove("bias");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(op));
        }
        var loss = (y * T.Make(upstream, p.Shape, p.DType)).sum();
        if (op is Op.PaperNll or Op.Nll) loss = loss + 3.7 * extra[0];
        loss.backward();
        var grads = leaves.ToDictionary(kv => kv.Key, kv => T.Read(kv.Value.grad!));
        return new Result(T.Read(y), extra.SelectMany(T.Read).ToArray(), grads);
    }

    /// <summary>
    /// |fused − reference| ≤ tol·(|reference| + rms(reference)): relative per element, with the tensor's rms as
    /// the floor for entries that are sums which (nearly) cancel.
    /// </summary>
    static void Same(double[] expected, double[] actual, double tol, string what, double abs = 1e-300)
    {
        Assert.Equal(expected.Length, actual.Length);
        double rms = Math.Sqrt(expected.Select(v => v * v).DefaultIfEmpty(0).Average());
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (!(Math.Abs(a - e) <= tol * (Math.Abs(e) + rms) + abs))
                Assert.Fail($"{what}[{i}]: reference {e:R}, fused {a:R} (|diff| {Math.Abs(a - e):E2}, rms {rms:E2}).");
        }
    }

    static Problem InFloat64(Problem p) => new()
    {
        Shape = p.Shape, DType = ScalarType.Float64, X = p.X, Mu = p.Mu, Rho = p.Rho, Alpha = p.Alpha,
        Weight = p.Weight, Bias = p.Bias,
    };

    static double[] Upstream(int count, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => Problem.Gauss(rng)).ToArray();
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Fused_MatchesTensorOps(Op op, int shape, int k, bool f64, bool affine)
    {
        var dtype = f64 ? ScalarType.Float64 : ScalarType.Float32;
        var p = Problem.Random(Shapes[shape], k, dtype, 31 * shape + 7 * k + (f64 ? 1 : 0), xScale: 1.4, xShift: 0.2);
        var g = Upstream(p.X.Length, shape + k);
        // In float32 the tensor-op path's own rounding (up to ~1e-4 on dL/dx, where large terms cancel) exceeds the
        // fused kernel's, so both are held to the float64 tensor-op result on the same (float32-valued) data.
        var reference = Run(op, f64 ? p : InFloat64(p), affine, fused: false, g);
        double tol = f64 ? 1e-10 : 1e-5;
        // Both vector widths, whatever this machine prefers (Vector512 runs in software where not accelerated).
        foreach (bool wide in new[] { false, true })
        {
            using var width = Simd.Use(wide);
            var fused = Run(op, p, affine, fused: true, g);
            string at = wide ? " (Vector512)" : " (Vector<T>)";
            Same(reference.Y, fused.Y, tol, "y" + at);
            Same(reference.Extra, fused.Extra, tol, "extra" + at);
            foreach (var (name, grad) in reference.Grads)
                Same(grad, fused.Grads[name], tol, "d/d" + name + at);
        }
    }

    [Theory]
    [InlineData(new long[] { 512, 17 }, true)]           // [N, C]: runs of one element, too few channels for lanes
    [InlineData(new long[] { 512, 256 }, false)]         // [N, C] with channels filling the lanes: read in place
    [InlineData(new long[] { 64, 100, 1, 1 }, false)]    // at least four vectors of channels
    [InlineData(new long[] { 5, 3, 7 }, true)]           // 7 < one vector
    [InlineData(new long[] { 3, 3, 1, 1 }, true)]
    [InlineData(new long[] { 1, 256 }, false)]           // N = 1 is already one run per channel
    [InlineData(new long[] { 64, 128, 32, 32 }, false)]  // long runs
    [InlineData(new long[] { 2, 3, 2, 5, 7 }, false)]    // 70 elements: the masked tail is a small share
    public void ChannelRows_TakesShortRunsOnly(long[] shape, bool expected)
    {
        using var x = zeros(shape);
        Assert.Equal(expected, ChannelRows.Wanted(x));
    }

    [Fact]
    public void ChannelRows_LaysOutEachChannelAsOneRunAndRestores()
    {
        using var scope = NewDisposeScope();
        long n = 4, c = 3, h = 2, w = 3;
        var x = arange(n * c * h * w, ScalarType.Float64).reshape(n, c, h, w);
        var rows = ChannelRows.To(x);
        Assert.Equal(new long[] { 1, c, n * h * w }, rows.shape);
        Assert.True(rows.is_contiguous());
        var xv = x.data<double>().ToArray();
        var rv = rows.data<double>().ToArray();
        // rows[0, ch, i·S + j] = x[i, ch, j] (S = h·w), by index arithmetic on the flat buffers.
        long s = h * w;
        for (long i = 0; i < n; i++)
            for (long ch = 0; ch < c; ch++)
                for (long j = 0; j < s; j++)
                    Assert.Equal(xv[(i * c + ch) * s + j], rv[ch * n * s + i * s + j]);
        var back = ChannelRows.From(rows, x.shape);
        Assert.Equal(x.shape, back.shape);
        Assert.True(back.is_contiguous());
        Assert.Equal(xv, back.data<double>().ToArray());
    }

    [Fact]
    public void Fused_Paper_GradientsMatchFiniteDifferences()
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 3, 2, 3, 3 }, 3, ScalarType.Float64, 8080, xScale: 1.3);
        var g = Upstream(p.X.Length, 5);
        var result = Run(Op.Paper, p, affine: true, fused: true, g);
        var xs = (double[])p.X.Clone();
        var mu = (double[,])p.Mu.Clone();
        var rho = (double[,])p.Rho.Clone();
        var alpha = (double[,])p.Alpha.Clone();
        var w = (double[])p.Weight.Clone();
        var b = (double[])p.Bias.Clone();
        double Loss() => UanReference.Paper(xs, p.N, p.C, p.S, mu, rho, alpha, 1e-3, w, b)
            .Select((v, i) => v * g[i]).Sum();
        Same(UanReference.Paper(xs, p.N, p.C, p.S, mu, rho, alpha, 1e-3, w, b), result.Y, 1e-10, "y");
        Same(Fd(xs, Loss), result.Grads["x"], 1e-6, "x");
        Same(Fd(mu, Loss), result.Grads["mu"], 1e-6, "mu");
        Same(Fd(rho, Loss), result.Grads["rho"], 1e-6, "rho");
        Same(Fd(alpha, Loss), result.Grads["alpha"], 1e-6, "alpha");
        Same(Fd(w, Loss), result.Grads["weight"], 1e-6, "weight");
        Same(Fd(b, Loss), result.Grads["bias"], 1e-6, "bias");
    }

    [Fact]
    public void Fused_BatchStats_GradientsMatchFiniteDifferences()
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 4, 2, 3, 2 }, 3, ScalarType.Float64, 4040, xScale: 1.3);
        var g = Upstream(p.X.Length, 6);
        var result = Run(Op.BatchStats, p, affine: true, fused: true, g);
        var xs = (double[])p.X.Clone();
        var mu = (double[,])p.Mu.Clone();
        var rho = (double[,])p.Rho.Clone();
        var alpha = (double[,])p.Alpha.Clone();
        var w = (double[])p.Weight.Clone();
        var b = (double[])p.Bias.Clone();
        double Loss() => UanReference.BatchStatsTrain(xs, p.N, p.C, p.S, mu, rho, alpha, 1e-3, w, b).Y
            .Select((v, i) => v * g[i]).Sum();
        Same(UanReference.BatchStatsTrain(xs, p.N, p.C, p.S, mu, rho, alpha, 1e-3, w, b).Y, result.Y, 1e-10, "y");
        Same(Fd(xs, Loss), result.Grads["x"], 1e-6, "x");
        Same(Fd(mu, Loss), result.Grads["mu"], 1e-6, "mu");
        Same(Fd(rho, Loss), result.Grads["rho"], 1e-6, "rho");
        Same(Fd(alpha, Loss), result.Grads["alpha"], 1e-6, "alpha");
        Same(Fd(w, Loss), result.Grads["weight"], 1e-6, "weight");
        Same(Fd(b, Loss), result.Grads["bias"], 1e-6, "bias");
    }

    [Theory]
    [InlineData(Op.BatchStats, false)]
    [InlineData(Op.BatchStats, true)]
    [InlineData(Op.MixtureBatch, false)]
    [InlineData(Op.MixtureBatch, true)]
    public void Fused_BatchTransform_ComponentFarFromTheBatch_MatchesTheLogShiftedReference(Op op, bool f64)
    {
        // Component 1 sits far from every input: its τ underflows over the whole batch (log τ below −87 in float32,
        // −745 in float64), so unshifted τ-weighted moments would be 0/0. Both paths weigh that component's τ by
        // exp(−max log τ) (the fused one in a second statistics pass): the outputs, the component moments (which
        // feed the running statistics) and the gradients agree and are finite. The float32 distance keeps log τ
        // (−200 to −900) resolved to well under 1e-3 absolute, so the two paths' roundings stay comparable.
        var dtype = f64 ? ScalarType.Float64 : ScalarType.Float32;
        double tol = f64 ? 1e-10 : 1e-5;
        var p = Problem.Random(new long[] { 6, 3, 4, 5 }, 2, dtype, 77);
        for (int c = 0; c < p.C; c++) { p.Mu[1, c] = f64 ? 1000 : 12; p.Rho[1, c] = -2; }
        var g = Upstream(p.X.Length, 3);
        var reference = Run(op, p, affine: true, fused: false, g);
        var fused = Run(op, p, affine: true, fused: true, g);
        Assert.All(fused.Y, v => Assert.True(double.IsFinite(v)));
        Assert.All(fused.Extra, v => Assert.True(double.IsFinite(v)));
        Same(reference.Y, fused.Y, tol, "y");
        Same(reference.Extra, fused.Extra, tol, "moments");
        // A parameter gradient that is exactly 0 on one path (the far component's τ is 0 in float32) may be a
        // denormal on the other.
        foreach (var (name, grad) in reference.Grads) Same(grad, fused.Grads[name], tol, "d/d" + name, abs: 1e-30);
    }

    [Theory]
    [InlineData(Op.Paper)]
    [InlineData(Op.PaperNll)]
    [InlineData(Op.BatchStats)]
    [InlineData(Op.BatchStatsEval)]
    public void Fused_SecondBackwardWithRetainGraph_GivesTheSameGradients(Op op)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 4, 3, 5, 7 }, 3, ScalarType.Float64, 99);
        var x = p.XTensor(true);
        var mu = p.MuTensor(true);
        var rho = p.RhoTensor(true);
        var alpha = p.AlphaTensor(true);
        Tensor loss;
        switch (op)
        {
            case Op.Paper:
                loss = UanFunctional.Paper(x, mu, rho, alpha, 1e-3).square().sum();
                break;
            case Op.PaperNll:
                var (y, nll) = UanFunctional.PaperWithLikelihood(x, mu, rho, alpha, 1e-3);
                loss = y.square().sum() + nll;
                break;
            case Op.BatchStats:
                loss = UanFunctional.BatchStatsTrain(x, mu, rho, alpha, 1e-3).Output.square().sum();
                break;
            default:
                loss = UanFunctional.BatchStatsEval(x, mu, rho, alpha, mu.detach() * 0.5, rho.detach().exp(), 1e-3)
                    .square().sum();
                break;
        }
        Assert.True(UanKernels.IsEnabled);
        loss.backward(retain_graph: true);
        var first = new[] { x, mu, rho, alpha }.Select(t => T.Read(t.grad!)).ToArray();
        foreach (var t in new[] { x, mu, rho, alpha }) t.grad!.zero_();
        loss.backward();
        var second = new[] { x, mu, rho, alpha }.Select(t => T.Read(t.grad!)).ToArray();
        for (int i = 0; i < first.Length; i++) Same(first[i], second[i], 0, $"input {i}");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Fused_PaperWithLikelihood_BackwardThroughOneOutputOnly(bool throughY)
    {
        // The other output's gradient is missing; the node must treat it as zero (and not crash).
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 4, 3, 5 }, 2, ScalarType.Float64, 17);
        Tensor[] Grads(bool fused)
        {
            using var path = UanKernels.Use(fused);
            var x = p.XTensor(true);
            var mu = p.MuTensor(true);
            var (y, nll) = UanFunctional.PaperWithLikelihood(x, mu, p.RhoTensor(), p.AlphaTensor(), 1e-3);
            (throughY ? y.square().sum() : nll).backward();
            return new[] { x.grad!, mu.grad! };
        }
        var reference = Grads(false);
        var fused = Grads(true);
        Same(T.Read(reference[0]), T.Read(fused[0]), 1e-10, "x");
        Same(T.Read(reference[1]), T.Read(fused[1]), 1e-10, "mu");
    }

    [Fact]
    public void Fused_NoGradForward_MatchesAndHasNoGraph()
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 4, 3, 5, 7 }, 2, ScalarType.Float32, 123);
        using var layer = p.Layer(UanMode.Paper, affine: true);
        var expected = UanReference.Paper(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, 1e-3, p.Weight, p.Bias);
        foreach (bool train in new[] { true, false })
        {
            layer.train(train);
            using (no_grad())
            {
                var y = layer.forward(p.XTensor(true));
                Assert.False(y.requires_grad);
                T.Close(expected, y, 1e-5, "no-grad y");
            }
            var yg = layer.forward(p.XTensor());
            Assert.True(yg.requires_grad);    // the parameters still want gradients
            T.Close(expected, yg, 1e-5, "y");
        }
    }

    [Fact]
    public void Ineligible_Inputs_TakeTheTensorOpPath()
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 4, 3, 5, 6 }, 2, ScalarType.Float64, 5);
        var x = p.XTensor().transpose(2, 3);              // non-contiguous
        Assert.False(UanKernels.CanFuse(x));
        Assert.False(UanKernels.CanFuse(p.XTensor().to(ScalarType.Float16)));
        Assert.False(UanKernels.CanFuse(p.XTensor(), p.MuTensor().to(ScalarType.Float32)));
        Assert.True(UanKernels.CanFuse(p.XTensor(), p.MuTensor()));
        using (UanKernels.Use(false)) Assert.False(UanKernels.CanFuse(p.XTensor()));
        Assert.True(UanKernels.IsEnabled);
        var xc = x.contiguous();
        var expected = UanReference.Paper(T.Read(xc), 4, 3, 30, p.Mu, p.Rho, p.Alpha, 1e-3);
        T.Close(expected, UanFunctional.Paper(x, p.MuTensor(), p.RhoTensor(), p.AlphaTensor(), 1e-3).contiguous(),
            1e-10, "non-contiguous y");
    }

    static double[] Fd(double[] values, Func<double> loss)
    {
        const double h = 1e-6;
        var g = new double[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            double v = values[i];
            values[i] = v + h;
            double up = loss();
            values[i] = v - h;
            double down = loss();
            values[i] = v;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    static double[] Fd(double[,] values, Func<double> loss)
    {
        const double h = 1e-6;
        int r = values.GetLength(0), c = values.GetLength(1);
        var g = new double[r * c];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++)
            {
                double v = values[i, j];
                values[i, j] = v + h;
                double up = loss();
                values[i, j] = v - h;
                double down = loss();
                values[i, j] = v;
                g[i * c + j] = (up - down) / (2 * h);
            }
        return g;
    }
}
