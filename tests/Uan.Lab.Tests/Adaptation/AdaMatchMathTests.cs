using TorchSharp;
using Uan.Lab.Adaptation;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Adaptation;

public class AdaMatchMathTests
{
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static readonly double[,] SourceProbs = { { 0.7, 0.2, 0.1 }, { 0.6, 0.3, 0.1 } };
    static readonly double[,] TargetProbs = { { 0.2, 0.5, 0.3 }, { 0.1, 0.6, 0.3 }, { 0.3, 0.3, 0.4 } };

    static Tensor T(double[,] a) => tensor(a, ScalarType.Float64);

    static double[,] ToArray(Tensor t)
    {
        var flat = t.to(ScalarType.Float64).data<double>().ToArray();
        int rows = (int)t.shape[0], cols = (int)t.shape[1];
        var r = new double[rows, cols];
        for (int i = 0; i < rows; i++) for (int j = 0; j < cols; j++) r[i, j] = flat[i * cols + j];
        return r;
    }

    static double[] ColumnMeans(double[,] a)
    {
        int rows = a.GetLength(0), cols = a.GetLength(1);
        var m = new double[cols];
        for (int j = 0; j < cols; j++) { for (int i = 0; i < rows; i++) m[j] += a[i, j]; m[j] /= rows; }
        return m;
    }

    [Fact]
    public void AlignmentRescalesByTheClassMarginalsAndRenormalisesEachRow()
    {
        using var scope = NewDisposeScope();
        var aligned = ToArray(AdaMatchMath.AlignDistribution(T(SourceProbs), T(TargetProbs)));
        // Hand: source marginal (0.65, 0.25, 0.1), target marginal (0.2, 1.4/3, 1/3); ratio per class, ε = 1e-6 on both sides.
        const double e = 1e-6;
        double[] ratio = { (0.65 + e) / (0.2 + e), (0.25 + e) / (1.4 / 3 + e), (0.1 + e) / (1.0 / 3 + e) };
        for (int i = 0; i < 3; i++)
        {
            double sum = 0;
            for (int j = 0; j < 3; j++) sum += TargetProbs[i, j] * ratio[j];
            for (int j = 0; j < 3; j++) Assert.Equal(TargetProbs[i, j] * ratio[j] / sum, aligned[i, j], 12);
            Assert.Equal(1.0, aligned[i, 0] + aligned[i, 1] + aligned[i, 2], 12);
        }
        // The batch marginal moves toward the source's.
        double[] src = ColumnMeans(SourceProbs), before = ColumnMeans(TargetProbs), after = ColumnMeans(aligned);
        double Distance(double[] a) => a.Zip(src, (x, y) => Math.Abs(x - y)).Sum();
        Assert.True(Distance(after) < 0.5 * Distance(before), $"{Distance(after)} vs {Distance(before)}");
    }

    [Fact]
    public void CompatAlignmentIsTheL2NormalisedTargetProbabilities()
    {
        using var scope = NewDisposeScope();
        var p = T(TargetProbs);
        var compat = AdaMatchMath.AlignDistribution(T(SourceProbs), p, compat: true);
        var expected = p / p.square().sum(dim: 1, keepdim: true).sqrt();
        Assert.True(compat.allclose(expected, rtol: 1e-12, atol: 1e-12));
        // Not a distribution: the rows sum to more than one.
        Assert.True(compat.sum(dim: 1).min().item<double>() > 1.1);
    }

    [Fact]
    public void RelativeConfidenceMaskOnAHandExample()
    {
        using var scope = NewDisposeScope();
        // Row maxima of the source: 0.7 and 0.6, mean 0.65; threshold 0.9 · 0.65 = 0.585.
        var pseudo = T(new[,] { { 0.6, 0.3, 0.1 }, { 0.5, 0.4, 0.1 }, { 0.2, 0.59, 0.21 }, { 0.58, 0.4, 0.02 } });
        var mask = AdaMatchMath.RelativeConfidenceMask(T(SourceProbs), pseudo, 0.9);
        Assert.Equal(new double[] { 1, 0, 1, 0 }, mask.data<double>().ToArray());
        Assert.Equal(new double[] { 1, 1, 1, 1 }, AdaMatchMath.RelativeConfidenceMask(T(SourceProbs), pseudo, 0.5).data<double>().ToArray());
    }

    [Fact]
    public void WarmupEndpoints()
    {
        Assert.Equal(0, AdaMatchMath.WarmupWeight(0, 1000), 12);
        Assert.Equal(0.5, AdaMatchMath.WarmupWeight(250, 1000), 12);
        Assert.Equal(1, AdaMatchMath.WarmupWeight(500, 1000), 12);
        Assert.Equal(1, AdaMatchMath.WarmupWeight(1000, 1000), 12);
        Assert.Equal(1, AdaMatchMath.WarmupWeight(5000, 1000), 12);
    }

    [Fact]
    public void CosineDecayEndpointsAndFloor()
    {
        // The reference: CosineDecay(0.03, T = 9370, alpha = 0.25), floor 0.0075.
        Assert.Equal(0.03, AdaMatchMath.CosineDecay(0, 0.03, 9370, 0.25), 12);
        Assert.Equal(0.03 * (0.75 * 0.5 + 0.25), AdaMatchMath.CosineDecay(4685, 0.03, 9370, 0.25), 12);
        Assert.Equal(0.0075, AdaMatchMath.CosineDecay(9370, 0.03, 9370, 0.25), 12);
        Assert.Equal(0.0075, AdaMatchMath.CosineDecay(38200, 0.03, 9370, 0.25), 12);
    }

    [Fact]
    public void InterpolationUsesLambdaPerElementAndIsSeeded()
    {
        using var scope = NewDisposeScope();
        var a = ones(4, 3);
        var b = zeros(4, 3);
        Assert.True(AdaMatchMath.InterpolateLogits(a, b, full(4, 3, 0.25f)).allclose(full(4, 3, 0.25f)));
        using var g1 = new Generator(5);
        using var g2 = new Generator(5);
        var l1 = AdaMatchMath.InterpolateLogits(a, b, g1);
        var l2 = AdaMatchMath.InterpolateLogits(a, b, g2);
        Assert.True(Same(l1, l2));
        Assert.True(l1.unique().Item1.shape[0] == 12, "λ must differ per sample and class");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LossMatchesADoublePrecisionLoop(bool compat)
    {
        using var scope = NewDisposeScope();
        manual_seed(11);
        const int bs = 3, bt = 4, c = 5;
        var train = randn(2 * bs + 2 * bt, c, ScalarType.Float64) * 2;
        var eval = randn(2 * bs, c, ScalarType.Float64) * 2;
        var lambda = rand(2 * bs, c, ScalarType.Float64);
        var labels = tensor(new long[] { 0, 3, 4 });
        const double mu = 0.7, tau = 0.9;
        var loss = AdaMatchMath.Compute(train, eval, labels, mu, tau, compat, lambda);

        double[,] z = ToArray(train), e = ToArray(eval), l = ToArray(lambda);
        long[] y = { 0, 3, 4 };
        double[] Softmax(double[] v) { double m = v.Max(); var ex = v.Select(x => Math.Exp(x - m)).ToArray(); double s = ex.Sum(); return ex.Select(x => x / s).ToArray(); }
        double[] Row(double[,] a, int i) => Enumerable.Range(0, c).Select(j => a[i, j]).ToArray();
        double Ce(double[] target, double[] logits) { var p = Softmax(logits); return -target.Zip(p, (t, q) => t * Math.Log(q)).Sum(); }
        double[] OneHot(long k) => Enumerable.Range(0, c).Select(j => j == k ? 1.0 : 0.0).ToArray();

        var src = Enumerable.Range(0, 2 * bs).Select(i => Enumerable.Range(0, c).Select(j => l[i, j] * z[i, j] + (1 - l[i, j]) * e[i, j]).ToArray()).ToArray();
        double sourceLoss = Enumerable.Range(0, bs).Average(i => Ce(OneHot(y[i]), src[i])) + Enumerable.Range(0, bs).Average(i => Ce(OneHot(y[i]), src[bs + i]));
        var ps = Enumerable.Range(0, bs).Select(i => Softmax(src[i])).ToArray();
        var pt = Enumerable.Range(0, bt).Select(i => Softmax(Row(z, 2 * bs + i))).ToArray();
        double[][] pseudo;
        if (compat)
        {
            double ratio = (ps.SelectMany(r => r).Average() + 1e-6) / (pt.SelectMany(r => r).Average() + 1e-6);
            pseudo = pt.Select(r => { var s = r.Select(v => v * ratio).ToArray(); double n = Math.Sqrt(s.Sum(v => v * v)); return s.Select(v => v / n).ToArray(); }).ToArray();
        }
        else
        {
            var ratio = Enumerable.Range(0, c).Select(j => (ps.Average(r => r[j]) + 1e-6) / (pt.Average(r => r[j]) + 1e-6)).ToArray();
            pseudo = pt.Select(r => { var s = r.Select((v, j) => v * ratio[j]).ToArray(); double n = s.Sum(); return s.Select(v => v / n).ToArray(); }).ToArray();
        }
        double threshold = tau * ps.Average(r => r.Max());
        var mask = pseudo.Select(r => r.Max() >= threshold ? 1.0 : 0.0).ToArray();
        double targetLoss = Enumerable.Range(0, bt).Average(i => mask[i] * Ce(pseudo[i], Row(z, 2 * bs + bt + i)));

        Assert.Equal(sourceLoss, loss.Source.item<double>(), 10);
        Assert.Equal(targetLoss, loss.Target.item<double>(), 10);
        Assert.Equal(sourceLoss + mu * targetLoss, loss.Total.item<double>(), 10);
        Assert.Equal(mask, loss.Mask.data<double>().ToArray());
    }

    [Fact]
    public void PseudoLabelsCarryNoGradient()
    {
        using var scope = NewDisposeScope();
        manual_seed(12);
        const int bs = 2, bt = 3;
        var train = randn(2 * bs + 2 * bt, 4).requires_grad_();
        var eval = randn(2 * bs, 4).requires_grad_();
        var loss = AdaMatchMath.Compute(train, eval, tensor(new long[] { 1, 2 }), warmup: 1, tau: 0);
        loss.Total.backward();
        var grad = train.grad!;
        Assert.Equal(0, grad.narrow(0, 2 * bs, bt).abs().sum().item<float>());             // weak target: only via ỹ
        Assert.True(grad.narrow(0, 2 * bs + bt, bt).abs().sum().item<float>() > 0);         // strong target
        Assert.True(grad.narrow(0, 0, 2 * bs).abs().sum().item<float>() > 0);               // source, train pass
        Assert.True(eval.grad!.abs().sum().item<float>() > 0);                              // source, eval pass
    }
}
