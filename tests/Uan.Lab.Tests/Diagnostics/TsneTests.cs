using TorchSharp;
using Uan.Lab.Diagnostics;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Diagnostics;

public class TsneTests
{
    // Three Gaussian blobs in 10-D, 40 points each, centres 10 apart, unit spread.
    private static (Tensor X, long[] Labels) Blobs(int seed = 5)
    {
        var gen = new Generator((ulong)seed);
        var centres = randn(new long[] { 3, 10 }, ScalarType.Float64, generator: gen) * 10;
        var labels = Enumerable.Range(0, 120).Select(i => (long)(i % 3)).ToArray();
        var x = centres.index_select(0, tensor(labels)) + randn(new long[] { 120, 10 }, ScalarType.Float64, generator: gen);
        return (x, labels);
    }

    [Fact]
    public void EveryConditionalDistributionHasThePerplexityAsked()
    {
        var (x, _) = Blobs();
        var p = Tsne.ConditionalProbabilities(Tsne.SquaredDistances(x), 15);
        var rows = p.data<double>().ToArray();
        for (int i = 0; i < 120; i++)
        {
            double sum = 0, h = 0;
            for (int j = 0; j < 120; j++)
            {
                double v = rows[i * 120 + j];
                if (i == j) Assert.Equal(0, v);
                sum += v;
                if (v > 0) h -= v * Math.Log(v);
            }
            Assert.Equal(1, sum, 10);
            Assert.Equal(Math.Log(15), h, 8);          // perplexity = exp(H)
        }
        var joint = Tsne.JointProbabilities(x, 15);
        Assert.Equal(1, joint.sum().item<double>(), 10);
        Assert.True(joint.allclose(joint.t(), rtol: 0, atol: 1e-15));
    }

    [Fact]
    public void GradientMatchesFiniteDifferencesOfTheKlDivergence()
    {
        var (x, _) = Blobs();
        var p = Tsne.JointProbabilities(x.narrow(0, 0, 12), 4);
        var y = randn(new long[] { 12, 2 }, ScalarType.Float64, generator: new Generator(3));
        double Kl(Tensor yy)
        {
            var num = (1 + Tsne.SquaredDistances(yy)).reciprocal() * (1 - eye(12, dtype: ScalarType.Float64));
            var q = num / num.sum();
            var mask = p > 0;
            return (p.masked_select(mask) * (p.masked_select(mask) / q.masked_select(mask)).log()).sum().item<double>();
        }
        var grad = Tsne.Gradient(p, y).data<double>().ToArray();
        for (int i = 0; i < 24; i += 5)
        {
            var plus = y.clone(); plus.view(-1)[i] += 1e-6;
            var minus = y.clone(); minus.view(-1)[i] -= 1e-6;
            Assert.Equal((Kl(plus) - Kl(minus)) / 2e-6, grad[i], 6);
        }
    }

    [Theory]
    [InlineData(37, 2, 1.0)]     // 37: a vector tail on every row
    [InlineData(40, 3, 12.0)]    // three dimensions, early exaggeration
    public void ArrayGradientMatchesTheTensorGradient(int n, int dims, double exaggeration)
    {
        using var scope = NewDisposeScope();
        var x = randn(new long[] { n, 5 }, ScalarType.Float64, generator: new Generator(11));
        var p = Tsne.JointProbabilities(x, 6);
        var y = randn(new long[] { n, dims }, ScalarType.Float64, generator: new Generator(12)) * 3;
        var expected = Tsne.Gradient(p * exaggeration, y).data<double>().ToArray();
        var yv = y.data<double>().ToArray();
        var columns = Enumerable.Range(0, dims).Select(d => Enumerable.Range(0, n).Select(i => yv[i * dims + d]).ToArray()).ToArray();
        var grad = Enumerable.Range(0, dims).Select(_ => new double[n]).ToArray();
        Tsne.GradientInto(p.contiguous().data<double>().ToArray(), columns, exaggeration, grad);
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < n; i++)
            for (int d = 0; d < dims; d++)
                Assert.True(Math.Abs(expected[i * dims + d] - grad[d][i]) <= 1e-12 * scale,
                    $"point {i}, dim {d}: tensor {expected[i * dims + d]:R}, arrays {grad[d][i]:R}");
    }

    [Fact]
    public void SeparatesWellSeparatedBlobsDeterministically()
    {
        var (x, labels) = Blobs();
        var options = new TsneOptions { Perplexity = 20, Iterations = 400, Seed = 11 };
        var a = Tsne.Embed(x, options);
        var b = Tsne.Embed(x, options);
        Assert.Equal(new long[] { 120, 2 }, a.shape);
        Assert.Equal(a.data<double>().ToArray(), b.data<double>().ToArray());
        Assert.True(Tsne.KnnAccuracy(a, labels) >= 0.95, $"kNN accuracy {Tsne.KnnAccuracy(a, labels)}");
        Assert.False(a.allclose(Tsne.Embed(x, options with { Seed = 12 })));
    }

    [Fact]
    public void KnnAccuracyOnAHandMadeLayout()
    {
        // Two tight clusters on a line, one point of class 1 sitting inside cluster 0.
        var pts = tensor(new double[] { 0, 0.1, 0.2, 0.3, 10, 10.1, 10.2, 10.3, 0.15 }).reshape(9, 1);
        long[] labels = [0, 0, 0, 0, 1, 1, 1, 1, 1];
        // With k = 3 every point but the intruder is classified correctly.
        Assert.Equal(8.0 / 9, Tsne.KnnAccuracy(pts, labels, k: 3), 12);
        Assert.Throws<ArgumentException>(() => Tsne.KnnAccuracy(pts, labels, k: 9));
    }
}
