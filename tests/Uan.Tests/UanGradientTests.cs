using TorchSharp;
using Uan.Tests.Reference;
using static TorchSharp.torch;

namespace Uan.Tests;

/// <summary>
/// Autograd gradients of loss = Σ y·g (g random) with respect to the input and every parameter, in float64, against
/// central finite differences of the plain-loop reference.
/// </summary>
public class UanGradientTests
{
    const double H = 1e-6;
    const double Tol = 1e-6;

    static long[] SmallShape(int rank) => rank switch
    {
        2 => new long[] { 5, 3 },
        3 => new long[] { 3, 2, 4 },
        4 => new long[] { 3, 2, 2, 2 },
        _ => throw new ArgumentOutOfRangeException(nameof(rank)),
    };

    public static IEnumerable<object[]> Cases()
    {
        foreach (var mode in new[] { UanMode.Paper, UanMode.BatchStats, UanMode.ReferenceCompat })
            foreach (int rank in new[] { 2, 3, 4 })
                foreach (bool affine in new[] { false, true })
                    yield return new object[] { mode, rank, rank == 3 ? 2 : 3, affine };
    }

    static double[] ReferenceOutput(UanMode mode, Problem p, double[] x, double[,] mu, double[,] rho,
        double[,] alpha, double[]? w, double[]? b)
    {
        switch (mode)
        {
            case UanMode.Paper:
                return UanReference.Paper(x, p.N, p.C, p.S, mu, rho, alpha, 1e-3, w, b);
            case UanMode.BatchStats:
                return UanReference.BatchStatsTrain(x, p.N, p.C, p.S, mu, rho, alpha, 1e-3, w, b).Y;
            default:
                var y = (double[])UanReference.ReferenceCompat(x, p.N, p.C, p.S, mu, rho, 1e-3).Y.Clone();
                for (int i = 0; i < y.Length; i++)
                {
                    int c = i / p.S % p.C;
                    if (w is not null) y[i] *= w[c];
                    if (b is not null) y[i] += b[c];
                }
                return y;
        }
    }

    static double[] FiniteDifference(double[] values, Func<double> loss)
    {
        var g = new double[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            double v = values[i];
            values[i] = v + H;
            double up = loss();
            values[i] = v - H;
            double down = loss();
            values[i] = v;
            g[i] = (up - down) / (2 * H);
        }
        return g;
    }

    static double[] FiniteDifference(double[,] values, Func<double> loss)
    {
        int r = values.GetLength(0), c = values.GetLength(1);
        var g = new double[r * c];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++)
            {
                double v = values[i, j];
                values[i, j] = v + H;
                double up = loss();
                values[i, j] = v - H;
                double down = loss();
                values[i, j] = v;
                g[i * c + j] = (up - down) / (2 * H);
            }
        return g;
    }

    static double[] GradOf(Tensor? grad, long count) => grad is null ? new double[count] : T.Read(grad);

    static void AssertGrad(double[] fd, double[] autograd, string what)
    {
        Assert.Equal(fd.Length, autograd.Length);
        double scale = 1 + fd.Select(Math.Abs).DefaultIfEmpty(0).Max();
        for (int i = 0; i < fd.Length; i++)
            if (!(Math.Abs(fd[i] - autograd[i]) <= Tol * (1 + Math.Abs(fd[i])) + 1e-8 * scale))
                Assert.Fail($"d loss / d {what}[{i}]: finite difference {fd[i]:R}, autograd {autograd[i]:R}.");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Gradients_MatchFiniteDifferences(UanMode mode, int rank, int k, bool affine)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(SmallShape(rank), k, ScalarType.Float64, 4242 + 100 * (int)mode + 10 * rank + k,
            xScale: 1.3);
        var rng = new Random(99 + rank);
        var upstream = Enumerable.Range(0, p.X.Length).Select(_ => Problem.Gauss(rng)).ToArray();

        using var layer = p.Layer(mode, affine);
        layer.train();
        var x = p.XTensor(requiresGrad: true);
        var y = layer.forward(x);
        y.backward(new[] { T.Make(upstream, p.Shape, p.DType) });

        var xs = (double[])p.X.Clone();
        var mu = (double[,])p.Mu.Clone();
        var rho = (double[,])p.Rho.Clone();
        var alpha = (double[,])p.Alpha.Clone();
        var w = affine ? (double[])p.Weight.Clone() : null;
        var b = affine ? (double[])p.Bias.Clone() : null;
        double Loss()
        {
            var yr = ReferenceOutput(mode, p, xs, mu, rho, alpha, w, b);
            double s = 0;
            for (int i = 0; i < yr.Length; i++) s += yr[i] * upstream[i];
            return s;
        }

        // The reference and the layer agree on the value itself before comparing slopes.
        T.Close(ReferenceOutput(mode, p, xs, mu, rho, alpha, w, b), y, 1e-10, "y");

        AssertGrad(FiniteDifference(xs, Loss), T.Read(x.grad!), "x");
        AssertGrad(FiniteDifference(mu, Loss), GradOf(layer.mu.grad, mu.Length), "mu");
        AssertGrad(FiniteDifference(rho, Loss), GradOf(layer.rho.grad, rho.Length), "rho");
        var fdAlpha = FiniteDifference(alpha, Loss);
        AssertGrad(fdAlpha, GradOf(layer.alpha.grad, alpha.Length), "alpha");
        if (mode == UanMode.ReferenceCompat)
            Assert.All(fdAlpha, v => Assert.Equal(0.0, v));   // λ ≡ 1: alpha has no effect
        else
            Assert.Contains(fdAlpha, v => Math.Abs(v) > 1e-6 || k == 1);
        if (affine)
        {
            AssertGrad(FiniteDifference(w!, Loss), T.Read(layer.weight!.grad!), "weight");
            AssertGrad(FiniteDifference(b!, Loss), T.Read(layer.bias!.grad!), "bias");
        }
    }

    [Fact]
    public void Functional_Paper_GradientsOfPlainTensors_MatchFiniteDifferences()
    {
        // The same check without the module: leaf tensors passed straight to UanFunctional.Paper.
        using var scope = NewDisposeScope();
        var p = Problem.Random(new long[] { 4, 2, 3 }, 3, ScalarType.Float64, 5150);
        var rng = new Random(7);
        var upstream = Enumerable.Range(0, p.X.Length).Select(_ => Problem.Gauss(rng)).ToArray();
        var x = p.XTensor(true);
        var mu = p.MuTensor(true);
        var rho = p.RhoTensor(true);
        var alpha = p.AlphaTensor(true);
        UanFunctional.Paper(x, mu, rho, alpha, 1e-3).backward(new[] { T.Make(upstream, p.Shape, p.DType) });

        var xs = (double[])p.X.Clone();
        var m = (double[,])p.Mu.Clone();
        var r = (double[,])p.Rho.Clone();
        var a = (double[,])p.Alpha.Clone();
        double Loss()
        {
            var yr = UanReference.Paper(xs, p.N, p.C, p.S, m, r, a, 1e-3);
            return yr.Select((v, i) => v * upstream[i]).Sum();
        }
        AssertGrad(FiniteDifference(xs, Loss), T.Read(x.grad!), "x");
        AssertGrad(FiniteDifference(m, Loss), T.Read(mu.grad!), "mu");
        AssertGrad(FiniteDifference(r, Loss), T.Read(rho.grad!), "rho");
        AssertGrad(FiniteDifference(a, Loss), T.Read(alpha.grad!), "alpha");
    }
}
