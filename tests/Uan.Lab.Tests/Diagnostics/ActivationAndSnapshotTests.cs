using TorchSharp;
using Uan.Lab.Diagnostics;
using Uan.Lab.Models;
using Uan.Lab.Reporting;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Diagnostics;

public sealed class ActivationAndSnapshotTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-fig-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
    }

    private static UnsupervisedAdaptiveNorm HandSetUan()
    {
        var layer = new UnsupervisedAdaptiveNorm(2, new UanOptions { Components = 3, Eps = 1e-3 });
        using (no_grad())
        {
            layer.mu.copy_(tensor(new float[] { -2, 0.5f, 0, 1, 3, 4 }).reshape(3, 2));
            layer.rho.copy_(tensor(new float[] { 0.2f, -1, 1, 0, -0.5f, 2 }).reshape(3, 2));
            layer.alpha.copy_(tensor(new float[] { 0, 1, 1, -1, 0.5f, 0 }).reshape(3, 2));
        }
        return layer;
    }

    private static double Trapezoid(Func<double, double> f, double lo, double hi, int steps = 200_000)
    {
        double h = (hi - lo) / steps, sum = (f(lo) + f(hi)) / 2;
        for (int i = 1; i < steps; i++) sum += f(lo + i * h);
        return sum * h;
    }

    [Fact]
    public void UanComponentsAreReadAsSoftmaxSoftplusAndMu()
    {
        var mixtures = ActivationDistributions.ReadMixtures(HandSetUan())!;
        Assert.Equal(2, mixtures.Length);
        double[,] mu = { { -2, 0.5 }, { 0, 1 }, { 3, 4 } }, rho = { { 0.2, -1 }, { 1, 0 }, { -0.5, 2 } }, alpha = { { 0, 1 }, { 1, -1 }, { 0.5, 0 } };
        for (int c = 0; c < 2; c++)
        {
            double z = Enumerable.Range(0, 3).Sum(k => Math.Exp(alpha[k, c]));
            for (int k = 0; k < 3; k++)
            {
                Assert.Equal(Math.Exp(alpha[k, c]) / z, mixtures[c].Weights[k], 6);
                Assert.Equal(mu[k, c], mixtures[c].Means[k], 6);
                Assert.Equal(Math.Log(1 + Math.Exp(rho[k, c])) + 1e-3, mixtures[c].Variances[k], 6);
            }
            Assert.Equal(1, Trapezoid(mixtures[c].Density, -60, 60), 6);
        }
    }

    [Fact]
    public void MixtureNormComponentsAreItsRunningMixture()
    {
        var layer = new MixtureNorm(2, new MixtureNormOptions { Components = 2 });
        using (no_grad())
        {
            layer.mixture_weight.copy_(tensor(new float[] { 0.25f, 0.6f, 0.75f, 0.4f }).reshape(2, 2));
            layer.mixture_mean.copy_(tensor(new float[] { -1, 2, 1.5f, 5 }).reshape(2, 2));
            layer.mixture_var.copy_(tensor(new float[] { 0.5f, 2, 1, 0.25f }).reshape(2, 2));
        }
        var m = ActivationDistributions.ReadMixtures(layer)!;
        Assert.Equal(new[] { 0.25, 0.75 }, m[0].Weights);
        Assert.Equal(new[] { 2.0, 5.0 }, m[1].Means);
        Assert.Equal(new[] { 2.0, 0.25 }, m[1].Variances);
        foreach (var c in m) Assert.Equal(1, Trapezoid(c.Density, -40, 40), 6);
        Assert.Null(ActivationDistributions.ReadMixtures(nn.BatchNorm2d(2)));
    }

    [Fact]
    public void ActivationFigureOfThreeNormsIsWritten()
    {
        var rows = new List<ActivationSet>();
        foreach (var (label, norm) in new[] { ("BN", "bn"), ("MN", "mn:k=3"), ("UAN", "uan:k=3") })
        {
            manual_seed(1);
            using var model = new ShallowCnn(1, 10, 28, norm);
            model.train();
            model.call(randn(16, 1, 28, 28));          // one training forward: initialises the MN / UAN mixtures
            var set = ActivationDistributions.Collect(model, randn(8, 1, 28, 28), label, maxValuesPerChannel: 500);
            Assert.True(model.training);
            Assert.Equal(128, set.Channels.Length);
            Assert.All(set.Values, v => Assert.Equal(500, v.Length));
            Assert.Equal(norm == "bn", set.Mixtures[0] is null);
            rows.Add(set);
        }
        var path = Path.Combine(_dir, "activations.png");
        PanelGrid.Save(path, ActivationDistributions.Render(rows, [4, 12, 28]));
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 5000);
        Assert.Equal((byte)0x89, bytes[0]);
    }

    [Fact]
    public void SnapshotsRoundTripExactly()
    {
        var rng = new Random(4);
        var features = Enumerable.Range(0, 7 * 5).Select(_ => (float)(rng.NextDouble() * 10 - 5)).Append(float.Epsilon).Skip(1).ToArray();
        var snap = new FeatureSnapshot(3, 8, "UAN", "uan:k=3", [5, 9, 11, 20, 33, 40, 41], [0, 1, 2, 0, 1, 2, 1], 5, features, 9216, 0.93);
        var path = SnapshotFiles.FeaturesPath(_dir, 3);
        SnapshotFiles.Save(path, snap);
        var back = SnapshotFiles.LoadFeatures(path);
        Assert.Equal((snap.Epoch, snap.Epochs, snap.Label, snap.Norm, snap.Dimensions, snap.OriginalDimensions, snap.RetainedVariance),
            (back.Epoch, back.Epochs, back.Label, back.Norm, back.Dimensions, back.OriginalDimensions, back.RetainedVariance));
        Assert.Equal(snap.Indices, back.Indices);
        Assert.Equal(snap.Labels, back.Labels);
        Assert.Equal(snap.Features.Select(BitConverter.SingleToInt32Bits), back.Features.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal([path], SnapshotFiles.FeatureFiles(_dir));

        var set = new ActivationSet("MN", "mn:k=2", [4, 12], [[1.5f, -2.25f, 3e-8f], [0f, 7f]],
            [new ChannelMixture([0.3, 0.7], [-1, 1], [0.5, 2]), null]);
        var apath = SnapshotFiles.ActivationsPath(_dir, 8);
        SnapshotFiles.Save(apath, 8, set);
        var (epoch, a) = SnapshotFiles.LoadActivations(apath);
        Assert.Equal(8, epoch);
        Assert.Equal((set.Label, set.Norm), (a.Label, a.Norm));
        Assert.Equal(set.Channels, a.Channels);
        for (int i = 0; i < 2; i++) Assert.Equal(set.Values[i], a.Values[i]);
        Assert.Equal(set.Mixtures[0]!.Weights, a.Mixtures[0]!.Weights);
        Assert.Equal(set.Mixtures[0]!.Means, a.Mixtures[0]!.Means);
        Assert.Equal(set.Mixtures[0]!.Variances, a.Mixtures[0]!.Variances);
        Assert.Null(a.Mixtures[1]);
        Assert.Throws<InvalidDataException>(() => SnapshotFiles.LoadFeatures(apath));
    }

    [Theory]
    [InlineData(100, new[] { 25, 50, 75, 100 })]
    [InlineData(10, new[] { 3, 5, 8, 10 })]
    [InlineData(2, new[] { 1, 2 })]
    [InlineData(1, new[] { 1 })]
    public void SnapshotEpochsAreAtQuartersOfTheRun(int epochs, int[] expected) =>
        Assert.Equal(expected, SnapshotRecorder.SnapshotEpochs(epochs));

    [Fact]
    public void PcaReductionKeepsPairwiseDistancesWhenTheRankFits()
    {
        var x = randn(new long[] { 20, 6 }, ScalarType.Float32, generator: new Generator(2)).mm(randn(new long[] { 6, 40 }, generator: new Generator(3)));
        var (reduced, retained) = SnapshotRecorder.ReduceDimensions(x, 10);
        Assert.Equal(new long[] { 20, 10 }, reduced.shape);
        Assert.Equal(1, retained, 5);
        var d0 = Tsne.SquaredDistances(x.to(ScalarType.Float64));
        var d1 = Tsne.SquaredDistances(reduced.to(ScalarType.Float64));
        Assert.True(d0.allclose(d1, rtol: 1e-3, atol: 1e-2 * d0.max().item<double>() * 1e-2));
    }
}
