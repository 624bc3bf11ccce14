using TorchSharp;
using Uan.Tests.Reference;
using static TorchSharp.torch;

namespace Uan.Tests;

/// <summary>Forward outputs of the module and of the functional API against the plain-loop reference.</summary>
public class UanForwardTests
{
    public static IEnumerable<object[]> Cases()
    {
        foreach (int rank in new[] { 2, 3, 4, 5 })
            foreach (int k in new[] { 1, 2, 3, 4 })
                foreach (bool f64 in new[] { false, true })
                    foreach (bool affine in new[] { false, true })
                        yield return new object[] { rank, k, f64, affine };
    }

    static ScalarType D(bool f64) => f64 ? ScalarType.Float64 : ScalarType.Float32;

    static int Seed(int rank, int k, bool f64, bool affine) => 1000 * rank + 10 * k + (f64 ? 5 : 0) + (affine ? 1 : 0);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Paper_Module_MatchesReference(int rank, int k, bool f64, bool affine)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(T.ShapeOfRank(rank), k, D(f64), Seed(rank, k, f64, affine));
        using var layer = p.Layer(UanMode.Paper, affine);
        var expected = UanReference.Paper(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, 1e-3,
            affine ? p.Weight : null, affine ? p.Bias : null);

        layer.train();
        var yTrain = layer.forward(p.XTensor());
        Assert.Equal(p.Shape, yTrain.shape);
        Assert.Equal(p.DType, yTrain.dtype);
        T.Close(expected, yTrain, T.Tol(p.DType), "train y");

        layer.eval();
        T.Close(expected, layer.forward(p.XTensor()), T.Tol(p.DType), "eval y");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BatchStats_Train_Module_MatchesReference(int rank, int k, bool f64, bool affine)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(T.ShapeOfRank(rank), k, D(f64), Seed(rank, k, f64, affine) + 7);
        using var layer = p.Layer(UanMode.BatchStats, affine);
        var (expected, mean, _) = UanReference.BatchStatsTrain(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, 1e-3,
            affine ? p.Weight : null, affine ? p.Bias : null);

        layer.train();
        var y = layer.forward(p.XTensor());
        Assert.Equal(p.Shape, y.shape);
        Assert.Equal(p.DType, y.dtype);
        T.Close(expected, y, T.Tol(p.DType), "y");

        // running_mean starts at 0 and moves by momentum 0.1 toward the batch's τ-weighted means.
        var expectedRunning = new double[k, p.C];
        for (int j = 0; j < k; j++)
            for (int c = 0; c < p.C; c++)
                expectedRunning[j, c] = 0.1 * mean[j, c];
        T.Close(expectedRunning, layer.running_mean!, T.Tol(p.DType), "running_mean");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void BatchStats_Eval_Module_UsesGivenRunningStats(int rank, int k, bool f64, bool affine)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(T.ShapeOfRank(rank), k, D(f64), Seed(rank, k, f64, affine) + 13);
        var rng = new Random(Seed(rank, k, f64, affine));
        var rm = new double[k, p.C];
        var rv = new double[k, p.C];
        for (int j = 0; j < k; j++)
            for (int c = 0; c < p.C; c++)
            {
                rm[j, c] = f64 ? Problem.Gauss(rng) : (float)Problem.Gauss(rng);
                rv[j, c] = f64 ? 0.2 + 2 * rng.NextDouble() : (float)(0.2 + 2 * rng.NextDouble());
            }
        using var layer = p.Layer(UanMode.BatchStats, affine);
        using (no_grad())
        {
            layer.running_mean!.copy_(T.Make(rm, p.DType));
            layer.running_var!.copy_(T.Make(rv, p.DType));
        }
        layer.eval();
        var expected = UanReference.BatchStatsEval(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, rm, rv, 1e-3,
            affine ? p.Weight : null, affine ? p.Bias : null);
        var y = layer.forward(p.XTensor());
        Assert.Equal(p.Shape, y.shape);
        T.Close(expected, y, T.Tol(p.DType), "eval y");
        // Eval does not touch the running statistics.
        T.Close(rm, layer.running_mean!, 0, "running_mean");
        T.Close(rv, layer.running_var!, 0, "running_var");
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ReferenceCompat_Module_MatchesReference(int rank, int k, bool f64, bool affine)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(T.ShapeOfRank(rank), k, D(f64), Seed(rank, k, f64, affine) + 21);
        using var layer = p.Layer(UanMode.ReferenceCompat, affine);
        var r = UanReference.ReferenceCompat(p.X, p.N, p.C, p.S, p.Mu, p.Rho, 1e-3);
        var expected = (double[])r.Y.Clone();
        if (affine)
            for (int i = 0; i < expected.Length; i++)
            {
                int c = i / p.S % p.C;
                expected[i] = expected[i] * p.Weight[c] + p.Bias[c];
            }

        layer.train();
        var y = layer.forward(p.XTensor());
        Assert.Equal(p.Shape, y.shape);
        Assert.Equal(p.DType, y.dtype);
        T.Close(expected, y, T.Tol(p.DType), "y");
    }

    [Theory]
    [InlineData(2, 3)]
    [InlineData(4, 1)]
    [InlineData(4, 4)]
    [InlineData(5, 2)]
    public void Functional_Float64_MatchesReference(int rank, int k)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(T.ShapeOfRank(rank), k, ScalarType.Float64, 77 + rank * 10 + k);
        var x = p.XTensor();
        var w = T.Make(p.Weight, new long[] { p.C }, p.DType);
        var b = T.Make(p.Bias, new long[] { p.C }, p.DType);
        const double eps = 2e-3;   // a non-default eps, so a hard-coded 1e-3 would show

        T.Close(UanReference.Paper(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, eps, p.Weight, p.Bias),
            UanFunctional.Paper(x, p.MuTensor(), p.RhoTensor(), p.AlphaTensor(), eps, w, b), 1e-10, "Paper");

        var (yb, mean, var) = UanReference.BatchStatsTrain(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, eps);
        var (ybT, moments) = UanFunctional.BatchStatsTrain(x, p.MuTensor(), p.RhoTensor(), p.AlphaTensor(), eps);
        T.Close(yb, ybT, 1e-10, "BatchStatsTrain");
        T.Close(mean, moments.Mean, 1e-10, "moments.Mean");
        T.Close(var, moments.Var, 1e-10, "moments.Var");

        var ye = UanReference.BatchStatsEval(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, mean, var, eps, p.Weight, p.Bias);
        T.Close(ye, UanFunctional.BatchStatsEval(x, p.MuTensor(), p.RhoTensor(), p.AlphaTensor(),
            T.Make(mean, p.DType), T.Make(var, p.DType), eps, w, b), 1e-10, "BatchStatsEval");

        var rc = UanReference.ReferenceCompat(p.X, p.N, p.C, p.S, p.Mu, p.Rho, eps);
        var (yc, stats) = UanFunctional.ReferenceCompat(x, p.MuTensor(), p.RhoTensor(), eps);
        T.Close(rc.Y, yc, 1e-10, "ReferenceCompat");
        T.Close(rc.OutputMean, stats.OutputMean, 1e-10, "OutputMean");
        T.Close(rc.OutputVar, stats.OutputVar, 1e-10, "OutputVar");
        T.Close(rc.MeanResponsibility, stats.MeanResponsibility, 1e-10, "MeanResponsibility");
    }

    [Theory]
    [InlineData(2, 1, true)]
    [InlineData(3, 3, false)]
    [InlineData(4, 2, true)]
    [InlineData(4, 4, false)]
    public void NegativeLogLikelihood_MatchesReference(int rank, int k, bool f64)
    {
        using var scope = NewDisposeScope();
        var p = Problem.Random(T.ShapeOfRank(rank), k, D(f64), 300 + rank * 10 + k, xScale: 1.5, xShift: 0.3);
        double expected = UanReference.NegativeLogLikelihood(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, 1e-3);
        var nll = UanFunctional.NegativeLogLikelihood(p.XTensor(), p.MuTensor(), p.RhoTensor(), p.AlphaTensor(), 1e-3);
        Assert.Equal(0L, nll.dim());
        T.Close(new[] { expected }, nll, T.Tol(p.DType), "nll");

        var (y, nll2) = UanFunctional.PaperWithLikelihood(p.XTensor(), p.MuTensor(), p.RhoTensor(), p.AlphaTensor(), 1e-3);
        T.Close(new[] { expected }, nll2, T.Tol(p.DType), "PaperWithLikelihood nll");
        T.Close(UanReference.Paper(p.X, p.N, p.C, p.S, p.Mu, p.Rho, p.Alpha, 1e-3), y, T.Tol(p.DType),
            "PaperWithLikelihood y");

        // The module records the same term in training when ClusterLossWeight > 0, in both Paper and BatchStats.
        foreach (var mode in new[] { UanMode.Paper, UanMode.BatchStats })
        {
            using var layer = p.Layer(mode, affine: false, clusterLossWeight: 0.5);
            layer.train();
            layer.forward(p.XTensor());
            Assert.NotNull(layer.ClusterLoss);
            T.Close(new[] { expected }, layer.ClusterLoss!, T.Tol(p.DType), $"{mode} ClusterLoss");
            layer.eval();
            layer.forward(p.XTensor());
            Assert.Null(layer.ClusterLoss);
        }
    }
}
