using TorchSharp;
using Uan.Tests.Reference;
using static TorchSharp.torch;

namespace Uan.Tests;

/// <summary>ReferenceCompat: the ≈31.6 gain of spec Part B §1.4 and the explicit moving-average write.</summary>
public class ReferenceCompatTests
{
    [Fact]
    public void RealisticConvBatch_IsGainTimesGate()
    {
        using var scope = NewDisposeScope();
        const double eps = 1e-3;
        torch.manual_seed(20240907);
        using var layer = new UnsupervisedAdaptiveNorm(8, new UanOptions { Components = 3, Mode = UanMode.ReferenceCompat });
        Assert.Equal(UanInit.Uniform, layer.Options.EffectiveInit);
        var mu = T.Read2(layer.mu);
        var rho = T.Read2(layer.rho);
        // The reference init: μ ~ U(−1, 1), rho ~ U(0.001, 0.01).
        Assert.All(T.Flatten(mu), v => Assert.InRange(v, -1, 1));
        Assert.All(T.Flatten(rho), v => Assert.InRange(v, 0.001, 0.01));

        var xT = randn(64, 8, 16, 16);
        layer.train();
        var y = T.Read(layer.forward(xT));
        var x = T.Read(xT);
        const int C = 8, S = 256;

        // Closed form: y ≈ x · Σ_k τ_k / sqrt(eps (1 + eps)), Σ_k τ_k = P / (P + eps), P = Σ_k exp(−½ (x − μ_k)² / (σ²_k + eps)).
        double gain = 1 / Math.Sqrt(eps * (1 + eps));
        var ratios = new List<double>();
        var gains = new List<double>();
        for (int i = 0; i < x.Length; i++)
        {
            if (Math.Abs(x[i]) < 0.05) continue;
            int c = i / S % C;
            double P = 0;
            for (int k = 0; k < 3; k++)
            {
                double d = x[i] - mu[k, c];
                P += Math.Exp(-0.5 * d * d / (UanReference.Softplus(rho[k, c]) + eps));
            }
            double predicted = x[i] * P / (P + eps) * gain;
            ratios.Add(y[i] / predicted);
            gains.Add(y[i] / x[i]);
        }
        ratios.Sort();
        gains.Sort();
        double median = ratios[ratios.Count / 2];
        Assert.True(Math.Abs(median - 1) < 1e-3, $"median y / closed form = {median:R}");
        double worst = ratios.Max(r => Math.Abs(r - 1));
        Assert.True(worst < 1e-2, $"largest relative error of the closed form = {worst:R}");
        double medianGain = gains[gains.Count / 2];
        Assert.InRange(medianGain, 31.4, 31.65);   // spec Part B §1.4: 31.59 at this shape

        // And the full formula of the reference, element by element.
        var r = UanReference.ReferenceCompat(x, 64, C, S, mu, rho, eps);
        T.Close(r.Y, y, 1e-4, "y");
    }

    [Theory]
    [InlineData(new long[] { 6, 3, 4, 4 }, 3, true, 0.1)]
    [InlineData(new long[] { 6, 3, 4, 4 }, 3, false, 0.1)]
    [InlineData(new long[] { 9, 3 }, 2, true, 0.1)]
    [InlineData(new long[] { 4, 2, 5 }, 4, true, 0.25)]
    public void ApplyReferenceUpdate_IsMovingAverageOfRecordedStatistics(long[] shape, int k, bool f64, double momentum)
    {
        using var scope = NewDisposeScope();
        var dtype = f64 ? ScalarType.Float64 : ScalarType.Float32;
        var p = Problem.Random(shape, k, dtype, 61 + k + (int)(100 * momentum), xScale: 1.2);
        using var layer = new UnsupervisedAdaptiveNorm(p.C, new UanOptions
        {
            Components = k, Mode = UanMode.ReferenceCompat, Momentum = momentum,
        });
        if (f64) layer.to(dtype);
        using (no_grad())
        {
            layer.mu.copy_(p.MuTensor());
            layer.rho.copy_(p.RhoTensor());
            layer.alpha.copy_(p.AlphaTensor());
        }
        Assert.False(layer.HasPendingReferenceUpdate);
        Assert.False(layer.ApplyReferenceUpdate());
        T.Close(p.Mu, layer.mu, 0, "mu untouched without a forward");

        layer.train();
        // A first forward on another batch: only the last forward's statistics are applied.
        layer.forward(p.XTensor() * 2 + 1);
        var y = layer.forward(p.XTensor());
        Assert.True(layer.HasPendingReferenceUpdate);
        // Forward does not write into the parameters.
        T.Close(p.Mu, layer.mu, 0, "mu after forward");
        T.Close(p.Rho, layer.rho, 0, "rho after forward");
        T.Close(p.Alpha, layer.alpha, 0, "alpha after forward");
        y.sum().backward();
        var muGrad = T.Read(layer.mu.grad!);

        Assert.True(layer.ApplyReferenceUpdate());
        Assert.False(layer.HasPendingReferenceUpdate);

        var r = UanReference.ReferenceCompat(p.X, p.N, p.C, p.S, p.Mu, p.Rho, 1e-3);
        var mu = new double[k, p.C];
        var rho = new double[k, p.C];
        var alpha = new double[k, p.C];
        for (int j = 0; j < k; j++)
            for (int c = 0; c < p.C; c++)
            {
                mu[j, c] = (1 - momentum) * p.Mu[j, c] + momentum * r.OutputMean[j, c];
                rho[j, c] = (1 - momentum) * p.Rho[j, c] + momentum * r.OutputVar[j, c];
                alpha[j, c] = (1 - momentum) * p.Alpha[j, c] + momentum * r.MeanResponsibility[j];
            }
        double tol = T.Tol(dtype);
        T.Close(mu, layer.mu, tol, "mu");
        T.Close(rho, layer.rho, tol, "rho");
        T.Close(alpha, layer.alpha, tol, "alpha");
        // The update is a parameter write only: the gradient taken at the pre-update values is kept.
        T.Close(muGrad, T.Read(layer.mu.grad!), 0, "mu.grad");

        // Nothing pending any more: a second call changes nothing.
        Assert.False(layer.ApplyReferenceUpdate());
        T.Close(mu, layer.mu, tol, "mu after a second call");
        T.Close(rho, layer.rho, tol, "rho after a second call");
        T.Close(alpha, layer.alpha, tol, "alpha after a second call");
    }

    [Fact]
    public void Eval_RecordsStatistics_OnlyWithCompatUpdateInEval()
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 5, 2, 3, 3 }, 2, ScalarType.Float64, 71);
        foreach (bool updateInEval in new[] { false, true })
        {
            using var layer = new UnsupervisedAdaptiveNorm(p.C, new UanOptions
            {
                Components = 2, Mode = UanMode.ReferenceCompat, CompatUpdateInEval = updateInEval,
            });
            layer.to(ScalarType.Float64);
            using (no_grad())
            {
                layer.mu.copy_(p.MuTensor());
                layer.rho.copy_(p.RhoTensor());
            }
            layer.eval();
            var y = layer.forward(p.XTensor());
            var r = UanReference.ReferenceCompat(p.X, p.N, p.C, p.S, p.Mu, p.Rho, 1e-3);
            T.Close(r.Y, y, 1e-10, "eval y");   // eval computes what training does (the reference has no eval branch)
            Assert.Equal(updateInEval, layer.HasPendingReferenceUpdate);
            Assert.Equal(updateInEval, layer.ApplyReferenceUpdate());
            if (updateInEval)
            {
                var mu = new double[2, p.C];
                for (int j = 0; j < 2; j++)
                    for (int c = 0; c < p.C; c++)
                        mu[j, c] = 0.9 * p.Mu[j, c] + 0.1 * r.OutputMean[j, c];
                T.Close(mu, layer.mu, 1e-10, "mu");
            }
            else
            {
                T.Close(p.Mu, layer.mu, 0, "mu");
            }
        }
    }

    [Theory]
    [InlineData(UanMode.Paper)]
    [InlineData(UanMode.BatchStats)]
    public void OtherModes_NeverHaveAPendingUpdate(UanMode mode)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 4, 3, 2, 2 }, 3, ScalarType.Float32, 81);
        using var layer = p.Layer(mode, affine: false);
        layer.train();
        layer.forward(p.XTensor()).sum().backward();
        layer.eval();
        layer.forward(p.XTensor());
        Assert.False(layer.HasPendingReferenceUpdate);
        Assert.False(layer.ApplyReferenceUpdate());
        T.Close(p.Mu, layer.mu, 0, "mu");
        T.Close(p.Rho, layer.rho, 0, "rho");
        T.Close(p.Alpha, layer.alpha, 0, "alpha");
    }
}
