using TorchSharp;
using Uan;
using static TorchSharp.torch;

public sealed class MixtureNormTests
{
    static double MaxAbs(Tensor a, Tensor b) => (a - b).abs().max().to(float64).item<double>();

    [Fact]
    public void EmNeverDecreasesTheBatchLikelihood()
    {
        using var scope = NewDisposeScope();
        manual_seed(1);
        // Three channels of different shapes: skewed, trimodal, heavy-tailed.
        var rows = stack(new[]
        {
            randn(2000, dtype: float64).exp(),
            cat(new[] { randn(700, dtype: float64) - 4, randn(600, dtype: float64) * 0.3, randn(700, dtype: float64) * 2 + 5 }),
            randn(2000, dtype: float64) / (rand(2000, dtype: float64) + 0.05),
        });
        var mixture = MixtureEm.KMeansPlusPlus(rows, 3);
        var history = new List<double[]>();
        for (int i = 0; i < 25; i++)
        {
            var (next, ll) = MixtureEm.Step(rows, mixture);
            history.Add(ll.data<double>().ToArray());
            mixture = next;
        }
        for (int i = 1; i < history.Count; i++)
            for (int c = 0; c < 3; c++)
                Assert.True(history[i][c] >= history[i - 1][c] - 1e-9,
                    $"channel {c}: log-likelihood fell from {history[i - 1][c]} to {history[i][c]} at step {i}");
        // And it actually improves on the seeding.
        for (int c = 0; c < 3; c++) Assert.True(history[^1][c] > history[0][c] + 1e-3);
    }

    [Fact]
    public void EmFindsBothModesOfABimodalChannel()
    {
        using var scope = NewDisposeScope();
        manual_seed(7);
        var x = cat(new[] { randn(3000, dtype: float64) - 5, randn(1000, dtype: float64) * 0.5 + 5 });
        var rows = x[randperm(4000)].unsqueeze(0);
        var fit = MixtureEm.Fit(rows, MixtureEm.KMeansPlusPlus(rows, 2), 30);
        var order = fit.Means[.., 0].argsort();
        var means = fit.Means[.., 0][order].data<double>().ToArray();
        var weights = fit.Weights[.., 0][order].data<double>().ToArray();
        var vars = fit.Variances[.., 0][order].data<double>().ToArray();
        Assert.InRange(means[0], -5.1, -4.9);
        Assert.InRange(means[1], 4.95, 5.05);
        Assert.InRange(weights[0], 0.72, 0.78);
        Assert.InRange(vars[0], 0.9, 1.1);
        Assert.InRange(vars[1], 0.2, 0.3);
    }

    [Fact]
    public void WithOneComponentMixtureNormIsBatchNorm()
    {
        using var scope = NewDisposeScope();
        manual_seed(3);
        var mn = new MixtureNorm(5, new MixtureNormOptions { Components = 1, Eps = 1e-5, Momentum = 0.1 });
        var bn = nn.BatchNorm2d(5, eps: 1e-5, momentum: 0.1);
        using (no_grad())
        {
            var w = rand(5) + 0.5; var b = randn(5);
            mn.weight!.copy_(w); mn.bias!.copy_(b);
            bn.weight.copy_(w); bn.bias!.copy_(b);
        }
        for (int step = 0; step < 3; step++)
        {
            var x = randn(8, 5, 6, 7) * 3 + 1;
            var xa = x.clone().requires_grad_(true);
            var xb = x.clone().requires_grad_(true);
            var ya = mn.forward(xa);
            var yb = bn.forward(xb);
            Assert.True(MaxAbs(ya, yb) < 1e-4, $"train output differs by {MaxAbs(ya, yb)}");
            var g = randn_like(ya);
            (ya * g).sum().backward();
            (yb * g).sum().backward();
            Assert.True(MaxAbs(xa.grad!, xb.grad!) < 1e-4, $"input gradient differs by {MaxAbs(xa.grad!, xb.grad!)}");
        }
        Assert.True(MaxAbs(mn.running_mean[0], bn.running_mean!) < 1e-5);
        Assert.True(MaxAbs(mn.running_var[0], bn.running_var!) < 1e-4);
        mn.eval(); bn.eval();
        var t = randn(4, 5, 3, 3);
        Assert.True(MaxAbs(mn.forward(t), bn.forward(t)) < 1e-4);
    }

    [Fact]
    public void EvalUsesRunningStatisticsAndIsBatchIndependent()
    {
        using var scope = NewDisposeScope();
        manual_seed(5);
        var mn = new MixtureNorm(4, new MixtureNormOptions { Components = 2 });
        for (int i = 0; i < 5; i++) mn.forward(randn(16, 4, 5, 5) * 2 + 1);
        var runningBefore = mn.running_mean.clone();
        mn.eval();
        var a = randn(6, 4, 5, 5);
        var whole = mn.forward(a);
        var firstHalf = mn.forward(a[..3]);
        Assert.True(MaxAbs(whole[..3], firstHalf) < 1e-6, "eval output depends on the rest of the batch");
        Assert.True(MaxAbs(runningBefore, mn.running_mean) == 0, "eval changed the running statistics");

        // Differs from the training-mode output on the same batch (which uses batch statistics).
        mn.train();
        var trainOut = mn.forward(a);
        Assert.True(MaxAbs(trainOut, whole) > 1e-3);
    }

    [Fact]
    public void TrainingOutputUsesTheFittedMixtureAndTheWeightedBatchStatistics()
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        var mn = new MixtureNorm(3, new MixtureNormOptions { Components = 2, Affine = false, EmIterations = 3 });
        var x = cat(new[] { randn(10, 3, 4, 4) - 3, randn(10, 3, 4, 4) + 3 }).to(float64);
        mn.to(float64);
        var y = mn.forward(x);
        // The first batch replaces the placeholder mixture, so the buffers hold this batch's EM result.
        var logW = mn.mixture_weight.log();
        var tau = UanFunctional.Responsibilities(x, logW, mn.mixture_mean, mn.mixture_var, out _);
        // Independent weighted statistics per component and channel, over N and space.
        var xs = x.unsqueeze(0);
        var dims = new long[] { 1, 3, 4 };
        var s = tau.sum(dims, keepdim: true);
        var m = (tau * xs).sum(dims, keepdim: true) / s;
        var v = (tau * (xs - m).square()).sum(dims, keepdim: true) / s;
        var expected = (tau / UanFunctional.View(mn.mixture_weight, 4).sqrt() * (xs - m) / (v + 1e-3).sqrt()).sum(dim: 0);
        Assert.True(MaxAbs(y, expected) < 1e-10);
        // Both modes found: component means far apart in every channel.
        var sep = (mn.mixture_mean[0] - mn.mixture_mean[1]).abs();
        Assert.True(sep.min().to(float64).item<double>() > 4);
    }
}
