using TorchSharp;
using static TorchSharp.torch;

// Many tests here draw from torch's global generator (randn without a generator, k-means++ seeding), and some
// reseed it to compare two runs; in parallel, one class's draws land between another's manual_seed and its use.
// The whole assembly runs in about ten seconds, so it runs serially.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]

namespace Uan.Tests;

/// <summary>A random UAN problem: input, mixture parameters and affine, in doubles (already rounded to the dtype).</summary>
public sealed class Problem
{
    public required long[] Shape { get; init; }
    public required ScalarType DType { get; init; }
    public required double[] X { get; init; }
    public required double[,] Mu { get; init; }
    public required double[,] Rho { get; init; }
    public required double[,] Alpha { get; init; }
    public required double[] Weight { get; init; }
    public required double[] Bias { get; init; }
    public int N => (int)Shape[0];
    public int C => (int)Shape[1];
    public int S => (int)Shape.Skip(2).Aggregate(1L, (a, b) => a * b);
    public int K => Mu.GetLength(0);

    public static Problem Random(long[] shape, int k, ScalarType dtype, int seed, double xScale = 1.0,
        double xShift = 0.0)
    {
        var rng = new System.Random(seed);
        int c = (int)shape[1];
        long total = shape.Aggregate(1L, (a, b) => a * b);
        Func<double, double> round = dtype == ScalarType.Float32 ? v => (double)(float)v : v => v;
        var x = new double[total];
        for (int i = 0; i < total; i++) x[i] = round(xShift + xScale * Gauss(rng));
        var mu = new double[k, c];
        var rho = new double[k, c];
        var alpha = new double[k, c];
        for (int j = 0; j < k; j++)
            for (int ch = 0; ch < c; ch++)
            {
                mu[j, ch] = round(-1.5 + 3 * rng.NextDouble());
                rho[j, ch] = round(-1 + 2 * rng.NextDouble());
                alpha[j, ch] = round(Gauss(rng));
            }
        var w = new double[c];
        var b = new double[c];
        for (int ch = 0; ch < c; ch++)
        {
            w[ch] = round(0.5 + rng.NextDouble());
            b[ch] = round(Gauss(rng));
        }
        return new Problem { Shape = shape, DType = dtype, X = x, Mu = mu, Rho = rho, Alpha = alpha, Weight = w, Bias = b };
    }

    public static double Gauss(System.Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    public Tensor XTensor(bool requiresGrad = false) => T.Make(X, Shape, DType, requiresGrad);
    public Tensor MuTensor(bool requiresGrad = false) => T.Make(Mu, DType, requiresGrad);
    public Tensor RhoTensor(bool requiresGrad = false) => T.Make(Rho, DType, requiresGrad);
    public Tensor AlphaTensor(bool requiresGrad = false) => T.Make(Alpha, DType, requiresGrad);

    /// <summary>A layer with these parameters (Init = Uniform so nothing is re-initialised), in the problem's dtype.</summary>
    public UnsupervisedAdaptiveNorm Layer(UanMode mode, bool affine, double eps = 1e-3, double clusterLossWeight = 0)
    {
        var layer = new UnsupervisedAdaptiveNorm(C, new UanOptions
        {
            Components = K, Mode = mode, Eps = eps, Affine = affine, Init = UanInit.Uniform,
            ClusterLossWeight = clusterLossWeight,
        });
        if (DType != ScalarType.Float32) layer.to(DType);
        using (no_grad())
        {
            layer.mu.copy_(T.Make(Mu, DType));
            layer.rho.copy_(T.Make(Rho, DType));
            layer.alpha.copy_(T.Make(Alpha, DType));
            if (affine)
            {
                layer.weight!.copy_(T.Make(Weight, new long[] { C }, DType));
                layer.bias!.copy_(T.Make(Bias, new long[] { C }, DType));
            }
        }
        return layer;
    }
}

/// <summary>Tensor ↔ array conversion and comparisons.</summary>
public static class T
{
    public static Tensor Make(double[] data, long[] shape, ScalarType dtype, bool requiresGrad = false)
    {
        Tensor t = dtype == ScalarType.Float32
            ? tensor(data.Select(v => (float)v).ToArray(), shape)
            : tensor(data, shape, ScalarType.Float64);
        if (requiresGrad) t.requires_grad_(true);
        return t;
    }

    public static Tensor Make(double[,] data, ScalarType dtype, bool requiresGrad = false)
    {
        int r = data.GetLength(0), c = data.GetLength(1);
        var flat = new double[r * c];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++)
                flat[i * c + j] = data[i, j];
        return Make(flat, new long[] { r, c }, dtype, requiresGrad);
    }

    public static double[] Read(Tensor t) =>
        t.detach().to(ScalarType.Float64).contiguous().data<double>().ToArray();

    public static double[,] Read2(Tensor t)
    {
        Assert.Equal(2L, t.dim());
        var flat = Read(t);
        int r = (int)t.shape[0], c = (int)t.shape[1];
        var a = new double[r, c];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++)
                a[i, j] = flat[i * c + j];
        return a;
    }

    public static double[] Flatten(double[,] a) => a.Cast<double>().ToArray();

    /// <summary>Tolerance of a dtype for forward comparisons: |a − b| ≤ tol·(1 + |b|).</summary>
    public static double Tol(ScalarType dtype) => dtype == ScalarType.Float32 ? 1e-4 : 1e-10;

    public static void Close(double[] expected, double[] actual, double tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (!(Math.Abs(a - e) <= tol * (1 + Math.Abs(e))))
                Assert.Fail($"{what}[{i}]: expected {e:R}, got {a:R} (|diff| = {Math.Abs(a - e):E3}, tol {tol:E1}).");
        }
    }

    public static void Close(double[,] expected, double[,] actual, double tol, string what)
    {
        Assert.Equal(expected.GetLength(0), actual.GetLength(0));
        Assert.Equal(expected.GetLength(1), actual.GetLength(1));
        Close(Flatten(expected), Flatten(actual), tol, what);
    }

    public static void Close(double[] expected, Tensor actual, double tol, string what) =>
        Close(expected, Read(actual), tol, what);

    public static void Close(double[,] expected, Tensor actual, double tol, string what) =>
        Close(expected, Read2(actual), tol, what);

    public static long[] ShapeOfRank(int rank) => rank switch
    {
        2 => new long[] { 7, 3 },
        3 => new long[] { 4, 3, 5 },
        4 => new long[] { 3, 2, 4, 3 },
        5 => new long[] { 2, 2, 3, 2, 2 },
        _ => throw new ArgumentOutOfRangeException(nameof(rank)),
    };
}
