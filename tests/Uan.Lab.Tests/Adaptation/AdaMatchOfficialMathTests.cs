using TorchSharp;
using Uan.Lab.Adaptation;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Adaptation;

/// <summary>
/// The official AdaMatch's pieces against double-precision references written from google-research/adamatch's
/// definitions (domain_adaptation/adamatch.py, objax's ExponentialMovingAverage / MovingAverage / EMA module) in plain
/// loops.
/// </summary>
public class AdaMatchOfficialMathTests
{
    const double Eps = 1e-6;

    internal static double[] Softmax(double[] v)
    {
        double m = v.Max();
        var ex = v.Select(x => Math.Exp(x - m)).ToArray();
        double s = ex.Sum();
        return ex.Select(x => x / s).ToArray();
    }

    internal static double[][] Rows(Tensor t)
    {
        var flat = t.detach().to(ScalarType.Float64).data<double>().ToArray();
        int rows = (int)t.shape[0], cols = (int)t.shape[1];
        return Enumerable.Range(0, rows).Select(i => flat.Skip(i * cols).Take(cols).ToArray()).ToArray();
    }

    internal static double[] Vec(Tensor t) => t.detach().to(ScalarType.Float64).data<double>().ToArray();

    /// <summary>normalise₁(p · (ε + s) / (ε + t)) per row.</summary>
    internal static double[][] AlignReference(double[][] p, double[] s, double[] t) =>
        p.Select(r =>
        {
            var a = r.Select((v, j) => v * (Eps + s[j]) / (Eps + t[j])).ToArray();
            double n = a.Sum();
            return a.Select(v => v / n).ToArray();
        }).ToArray();

    /// <summary>objax's ExponentialMovingAverage (momentum 0.999) and MovingAverage (128 rows), both starting at 1/C.</summary>
    internal sealed class TrackerReference(int classes)
    {
        public double[] Source { get; } = Enumerable.Repeat(1.0 / classes, classes).ToArray();
        public List<double[]> Window { get; } = Enumerable.Range(0, 128).Select(_ => Enumerable.Repeat(1.0 / classes, classes).ToArray()).ToList();

        public (double[] Source, double[] Target) Update(double[] s, double[] t)
        {
            for (int j = 0; j < s.Length; j++) Source[j] += (Source[j] - s[j]) * (0.999 - 1);
            Window.RemoveAt(0);
            Window.Add(t.ToArray());
            var mean = new double[t.Length];
            foreach (var row in Window) for (int j = 0; j < t.Length; j++) mean[j] += row[j] / Window.Count;
            return (Source.ToArray(), mean);
        }
    }

    [Fact]
    public void AlignmentToMovingAveragesMatchesTheLoopAndGivesDistributions()
    {
        using var scope = NewDisposeScope();
        manual_seed(21);
        var p = softmax(randn(6, 5, ScalarType.Float64) * 2, 1);
        var s = softmax(randn(5, ScalarType.Float64), 0);
        var t = softmax(randn(5, ScalarType.Float64), 0);
        var aligned = Rows(AdaMatchMath.AlignToAverages(p, s, t));
        var expected = AlignReference(Rows(p), Vec(s), Vec(t));
        for (int i = 0; i < 6; i++)
        {
            for (int j = 0; j < 5; j++) Assert.Equal(expected[i][j], aligned[i][j], 12);
            Assert.Equal(1.0, aligned[i].Sum(), 12);
        }
    }

    [Theory]
    [InlineData(AdaMatchVariants.Official)]
    [InlineData(AdaMatchVariants.Keras)]
    [InlineData(AdaMatchVariants.Compat)]
    public void AClassWhoseProbabilityUnderflowsGivesFiniteAlignedLabels(string variant)
    {
        using var scope = NewDisposeScope();
        // Class 2 has probability exactly 0 in every target and source row, and class 0 in the target average: without
        // ε the ratio would be 0/0 (NaN) or x/0 (inf).
        var target = tensor(new[,] { { 0.5, 0.5, 0.0 }, { 0.0, 1.0, 0.0 } }, ScalarType.Float32);
        var source = tensor(new[,] { { 0.9, 0.1, 0.0 }, { 0.8, 0.2, 0.0 } }, ScalarType.Float32);
        Tensor aligned = variant == AdaMatchVariants.Official
            ? AdaMatchMath.AlignToAverages(target, tensor(new[] { 0.85f, 0.15f, 0f }), tensor(new[] { 0f, 0.75f, 0f }))
            : AdaMatchMath.AlignDistribution(source, target, compat: variant == AdaMatchVariants.Compat);
        Assert.True(aligned.isfinite().all().item<bool>(), variant);
        var rows = Rows(aligned);
        if (variant == AdaMatchVariants.Compat)
        {
            // The ratio of the element means is 1; rows are L2-normalised.
            foreach (var (r, p) in rows.Zip(Rows(target)))
            {
                double n = Math.Sqrt(p.Sum(v => v * v));
                for (int j = 0; j < 3; j++) Assert.Equal(p[j] / n, r[j], 6);
            }
            return;
        }
        double[] s = variant == AdaMatchVariants.Official ? [0.85, 0.15, 0] : [0.85, 0.15, 0];
        double[] t = variant == AdaMatchVariants.Official ? [0, 0.75, 0] : [0.25, 0.75, 0];
        var expected = AlignReference(Rows(target), s, t);
        for (int i = 0; i < 2; i++) for (int j = 0; j < 3; j++) Assert.Equal(expected[i][j], rows[i][j], 5);
    }

    [Fact]
    public void MovingClassDistributionsFollowObjaxOverMoreStepsThanTheWindow()
    {
        using var scope = NewDisposeScope();
        manual_seed(22);
        const int c = 4;
        using var tracker = new ClassDistributionTracker(c, ScalarType.Float64);
        var reference = new TrackerReference(c);
        for (int step = 0; step < 131; step++)
        {
            using var inner = NewDisposeScope();
            var s = softmax(randn(c, ScalarType.Float64), 0);
            var t = softmax(randn(c, ScalarType.Float64) * 3, 0);
            var (gotS, gotT) = tracker.Update(s, t);
            var (wantS, wantT) = reference.Update(Vec(s), Vec(t));
            for (int j = 0; j < c; j++)
            {
                Assert.Equal(wantS[j], Vec(gotS)[j], 12);
                Assert.Equal(wantT[j], Vec(gotT)[j], 12);
            }
        }
        // After 131 steps the first three batches have left the window: its mean is the mean of the last 128 alone.
        Assert.DoesNotContain(reference.Window, r => r.All(v => v == 0.25));
    }

    [Fact]
    public void OfficialLossMatchesADoublePrecisionLoopOverSeveralSteps()
    {
        using var scope = NewDisposeScope();
        manual_seed(23);
        const int bs = 3, bt = 5, c = 4;
        const double tau = 0.9;
        using var tracker = new ClassDistributionTracker(c, ScalarType.Float64);
        var reference = new TrackerReference(c);
        for (int step = 0; step < 4; step++)
        {
            var all = randn(2 * bs + 2 * bt, c, ScalarType.Float64) * 2;
            var sourceOnly = randn(2 * bs, c, ScalarType.Float64) * 2;
            var lambda = rand(2 * bs, c, ScalarType.Float64);
            var labels = randint(c, [bs], dtype: ScalarType.Int64);
            double mu = 0.25 * step;
            var loss = AdaMatchMath.ComputeOfficial(all, sourceOnly, labels, mu, tracker, tau, lambda);

            double[][] z = Rows(all), zb = Rows(sourceOnly), l = Rows(lambda);
            long[] y = labels.data<long>().ToArray();
            // Line 68: logit_sx += (logit_bn_x − logit_sx)·U.
            var src = Enumerable.Range(0, 2 * bs).Select(i => Enumerable.Range(0, c).Select(j => z[i][j] + (zb[i][j] - z[i][j]) * l[i][j]).ToArray()).ToArray();
            double Ce(long k, double[] logits) => -Math.Log(Softmax(logits)[k]);
            double xe = 0.5 * (Enumerable.Range(0, bs).Average(i => Ce(y[i], src[i])) + Enumerable.Range(0, bs).Average(i => Ce(y[i], src[bs + i])));
            var ps = Enumerable.Range(0, bs).Select(i => Softmax(src[i])).ToArray();
            var pt = Enumerable.Range(0, bt).Select(i => Softmax(z[2 * bs + i])).ToArray();
            double threshold = tau * ps.Average(r => r.Max());
            var (avgS, avgT) = reference.Update(Enumerable.Range(0, c).Select(j => ps.Average(r => r[j])).ToArray(),
                Enumerable.Range(0, c).Select(j => pt.Average(r => r[j])).ToArray());
            var pseudo = AlignReference(pt, avgS, avgT);
            var mask = pseudo.Select(r => r.Max() >= threshold ? 1.0 : 0.0).ToArray();
            var hard = pseudo.Select(r => (long)Array.IndexOf(r, r.Max())).ToArray();
            double xeu = Enumerable.Range(0, bt).Average(i => mask[i] * Ce(hard[i], z[2 * bs + bt + i]));

            Assert.Equal(xe, loss.Source.item<double>(), 10);
            Assert.Equal(xeu, loss.Target.item<double>(), 10);
            Assert.Equal(xe + mu * xeu, loss.Total.item<double>(), 10);
            Assert.Equal(mask, Vec(loss.Mask));
            var got = Rows(loss.PseudoLabels);
            for (int i = 0; i < bt; i++) for (int j = 0; j < c; j++) Assert.Equal(pseudo[i][j], got[i][j], 10);
        }
    }

    [Fact]
    public void OfficialPseudoLabelsCarryNoGradientAndBothSourcePassesGetOne()
    {
        using var scope = NewDisposeScope();
        manual_seed(24);
        const int bs = 2, bt = 3;
        var all = randn(2 * bs + 2 * bt, 4).requires_grad_();
        var sourceOnly = randn(2 * bs, 4).requires_grad_();
        using var tracker = new ClassDistributionTracker(4);
        var loss = AdaMatchMath.ComputeOfficial(all, sourceOnly, tensor(new long[] { 1, 2 }), 1, tracker, tau: 0);
        loss.Total.backward();
        Assert.Equal(0, all.grad!.narrow(0, 2 * bs, bt).abs().sum().item<float>());
        Assert.True(all.grad!.narrow(0, 2 * bs + bt, bt).abs().sum().item<float>() > 0);
        Assert.True(all.grad!.narrow(0, 0, 2 * bs).abs().sum().item<float>() > 0);
        Assert.True(sourceOnly.grad!.abs().sum().item<float>() > 0);
    }

    [Fact]
    public void WeightDecayCoversConvolutionAndDenseKernelsOnly()
    {
        using var scope = NewDisposeScope();
        manual_seed(25);
        var model = nn.Sequential(("conv", nn.Conv2d(3, 16, 3, bias: true)), ("bn", nn.BatchNorm2d(16)), ("fc", nn.Linear(16, 4)));
        using (no_grad())
            foreach (var p in model.parameters()) p.copy_(randn(p.shape));
        var penalty = AdaMatchMath.WeightDecayPenalty(AdaMatchMath.DecayedWeights(model)).item<float>();
        // objax's '.w' variables: the conv and dense kernels (dimension ≥ 2 here), not biases or BatchNorm's γ, β.
        double expected = 0;
        foreach (var (name, p) in model.named_parameters())
            if (name.EndsWith(".weight") && p.dim() >= 2)
                foreach (var v in Vec(p.flatten())) expected += 0.5 * v * v;
        Assert.Equal(expected, penalty, 2);
        Assert.Equal(2, AdaMatchMath.DecayedWeights(model).Count);
        Assert.Equal(0.001, AdaMatchMath.OfficialWeightDecay);
    }

    [Fact]
    public void WeightEmaAveragesParametersAndRunningStatisticsWithObjaxDebias()
    {
        using var scope = NewDisposeScope();
        manual_seed(26);
        var model = nn.Sequential(("fc", nn.Linear(3, 2)), ("bn", nn.BatchNorm1d(2)));
        using var ema = new WeightEma(model);
        var names = ema.Names.ToList();
        Assert.Equal(new[] { "fc.weight", "fc.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var" }, names);
        var state = model.state_dict();
        var m = names.ToDictionary(n => n, n => new double[state[n].numel()]);
        for (int step = 1; step <= 5; step++)
        {
            model.train();
            using (no_grad()) model.call(randn(4, 3));     // moves the running statistics and num_batches_tracked
            using (no_grad())
                foreach (var p in model.parameters()) p.add_(randn(p.shape));
            ema.Update();
            foreach (var n in names)
            {
                var v = Vec(state[n].flatten());
                for (int k = 0; k < v.Length; k++) m[n][k] += (1 - 0.999) * (v[k] - m[n][k]);
            }
        }
        double debias = 1 / (1 - (1 - 1e-6) * Math.Pow(0.999, 5));
        var live = names.ToDictionary(n => n, n => Vec(state[n].flatten()));
        long tracked = state["bn.num_batches_tracked"].item<long>();
        using (ema.Swap())
        {
            foreach (var n in names)
            {
                var got = Vec(state[n].flatten());
                for (int k = 0; k < got.Length; k++) Assert.Equal(m[n][k] * debias, got[k], 5);
            }
            Assert.Equal(tracked, state["bn.num_batches_tracked"].item<long>());
        }
        foreach (var n in names) Assert.Equal(live[n], Vec(state[n].flatten()));
    }
}
