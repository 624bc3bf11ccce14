using TorchSharp;
using Uan.Tests.Reference;
using static TorchSharp.torch;

namespace Uan.Tests;

/// <summary>Special cases with a closed form or a TorchSharp equivalent.</summary>
public class UanIdentityTests
{
    [Theory]
    [InlineData(2, false)]
    [InlineData(4, false)]
    [InlineData(4, true)]
    [InlineData(5, true)]
    public void Paper_K1_IsStandardisationByTheLearnedComponent(int rank, bool f64)
    {
        using var scope = NewDisposeScope();
        var dtype = f64 ? ScalarType.Float64 : ScalarType.Float32;
        var p = Problem.Random(T.ShapeOfRank(rank), 1, dtype, 11 + rank);
        using var layer = p.Layer(UanMode.Paper, affine: false, eps: 1e-2);
        var y = T.Read(layer.forward(p.XTensor()));
        // λ = softmax over a single component = 1 whatever alpha is.
        for (int i = 0; i < p.X.Length; i++)
        {
            int c = i / p.S % p.C;
            double expected = (p.X[i] - p.Mu[0, c]) / Math.Sqrt(Math.Log(1 + Math.Exp(p.Rho[0, c])) + 1e-2);
            Assert.True(Math.Abs(y[i] - expected) <= T.Tol(dtype) * (1 + Math.Abs(expected)),
                $"y[{i}] = {y[i]:R}, expected (x − μ)/σ = {expected:R}");
        }
    }

    [Theory]
    [InlineData(2, 1e-3, false)]
    [InlineData(3, 1e-5, false)]
    [InlineData(4, 1e-3, false)]
    [InlineData(4, 1e-1, true)]
    [InlineData(5, 1e-3, true)]
    public void BatchStats_K1_Training_EqualsBatchNorm(int rank, double eps, bool f64)
    {
        using var scope = NewDisposeScope();
        var dtype = f64 ? ScalarType.Float64 : ScalarType.Float32;
        var shape = T.ShapeOfRank(rank);
        shape[0] += 3;
        var p = Problem.Random(shape, 1, dtype, 21 + rank, xScale: 2.0, xShift: 0.7);
        using var layer = p.Layer(UanMode.BatchStats, affine: false, eps: eps);
        layer.train();
        var runningMean = zeros(p.C, dtype: dtype);
        var runningVar = ones(p.C, dtype: dtype);
        double tol = f64 ? 1e-10 : 1e-5;

        // Two steps with two different batches, so the momentum recursion is exercised too.
        for (int step = 0; step < 2; step++)
        {
            var x = step == 0 ? p.XTensor() : p.XTensor() * 0.5 - 0.3;
            var expected = nn.functional.batch_norm(x, runningMean, runningVar, weight: null, bias: null,
                training: true, momentum: 0.1, eps: eps);
            var y = layer.forward(x);
            T.Close(T.Read(expected), y, tol, $"step {step} y");
            T.Close(T.Read(runningMean), T.Read(layer.running_mean!.reshape(-1)), tol, $"step {step} running_mean");
            T.Close(T.Read(runningVar), T.Read(layer.running_var!.reshape(-1)), tol, $"step {step} running_var");
        }
        // The running statistics did move (so the comparison above is not between two untouched buffers).
        Assert.Contains(T.Read(runningVar), v => Math.Abs(v - 1) > 1e-3);
    }

    [Fact]
    public void BatchStats_K1_Affine_EqualsBatchNorm2dWithAffine()
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 6, 3, 4, 4 }, 1, ScalarType.Float64, 31);
        using var layer = p.Layer(UanMode.BatchStats, affine: true, eps: 1e-4);
        using var bn = nn.BatchNorm2d(p.C, eps: 1e-4, momentum: 0.1, affine: true, dtype: ScalarType.Float64);
        using (no_grad())
        {
            bn.weight!.copy_(T.Make(p.Weight, new long[] { p.C }, p.DType));
            bn.bias!.copy_(T.Make(p.Bias, new long[] { p.C }, p.DType));
        }
        layer.train();
        bn.train();
        T.Close(T.Read(bn.forward(p.XTensor())), layer.forward(p.XTensor()), 1e-10, "train y");
        T.Close(T.Read(bn.running_mean!), T.Read(layer.running_mean!.reshape(-1)), 1e-12, "running_mean");
        T.Close(T.Read(bn.running_var!), T.Read(layer.running_var!.reshape(-1)), 1e-12, "running_var");

        // Eval with the running statistics is BatchNorm's eval.
        layer.eval();
        bn.eval();
        var x2 = p.XTensor() * 1.7 + 0.4;
        T.Close(T.Read(bn.forward(x2)), layer.forward(x2), 1e-10, "eval y");
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 3)]
    [InlineData(4, 4)]
    public void Responsibilities_SumToOneOverComponents_AndMatchReference(int rank, int k)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(T.ShapeOfRank(rank), k, ScalarType.Float64, 41 + k, xScale: 3);
        var logLambda = p.AlphaTensor().log_softmax(0);
        var variance = nn.functional.softplus(p.RhoTensor()) + 1e-3;
        var tau = UanFunctional.Responsibilities(p.XTensor(), logLambda, p.MuTensor(), variance, out var logZ);
        Assert.Equal(new[] { (long)k }.Concat(p.Shape).ToArray(), tau.shape);
        Assert.Equal(p.Shape, logZ.shape);

        var sum = T.Read(tau.sum(dim: 0));
        Assert.All(sum, v => Assert.True(Math.Abs(v - 1) < 1e-12, $"Σ_k τ_k = {v:R}"));
        Assert.True(tau.min().item<double>() >= 0);

        var expected = UanReference.Responsibilities(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, 1e-3);
        var actual = T.Read(tau);
        for (int j = 0; j < k; j++)
            T.Close(expected[j], actual.Skip(j * p.X.Length).Take(p.X.Length).ToArray(), 1e-10, $"τ_{j}");

        // logZ is the log mixture density without the ½ log 2π constant.
        double nll = UanReference.NegativeLogLikelihood(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, 1e-3);
        double meanLogZ = T.Read(logZ).Average();
        Assert.True(Math.Abs(-meanLogZ + 0.5 * Math.Log(2 * Math.PI) - nll) < 1e-10);
    }

    [Fact]
    public void Paper_IsBatchIndependent()
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 5, 3, 4 }, 3, ScalarType.Float64, 51);
        using var layer = p.Layer(UanMode.Paper, affine: true);
        layer.train();
        var x = p.XTensor();
        var full = layer.forward(x);
        for (long n = 0; n < p.N; n++)
        {
            var one = layer.forward(x.narrow(0, n, 1));
            T.Close(T.Read(full.narrow(0, n, 1)), one, 1e-12, $"sample {n}");
        }
    }
}
