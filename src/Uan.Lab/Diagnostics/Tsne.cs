using System.Numerics;
using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Diagnostics;

/// <summary>Settings of <see cref="Tsne.Embed"/>; the defaults are van der Maaten's (and scikit-learn's exact method).</summary>
public sealed record TsneOptions
{
    /// <summary>Output dimensions.</summary>
    public int Dimensions { get; init; } = 2;
    /// <summary>Target perplexity of each point's conditional distribution (effective number of neighbours).</summary>
    public double Perplexity { get; init; } = 30;
    /// <summary>Gradient-descent iterations.</summary>
    public int Iterations { get; init; } = 1000;
    /// <summary>Step size; null = max(N / EarlyExaggeration / 4, 50), scikit-learn's "auto".</summary>
    public double? LearningRate { get; init; }
    /// <summary>Factor on P during the first <see cref="ExaggerationIterations"/> iterations.</summary>
    public double EarlyExaggeration { get; init; } = 12;
    /// <summary>Iterations with exaggerated P and momentum 0.5 (then 0.8).</summary>
    public int ExaggerationIterations { get; init; } = 250;
    /// <summary>Seed of the initial layout (N(0, 1e-4)).</summary>
    public int Seed { get; init; } = 0;
}

/// <summary>
/// Exact t-SNE (van der Maaten and Hinton, 2008): Gaussian affinities (distances on TorchSharp tensors) with a per-point bandwidth
/// found by binary search so that every conditional distribution has the requested perplexity, symmetrised; a
/// Student-t kernel in the embedding; gradient descent with momentum, per-coordinate gains and early exaggeration.
/// O(N²) time per iteration and O(N²) memory for P only (the iterations make one pass per point over arrays), meant
/// for up to a few thousand points (the figures use ≤ 2,000). Everything
/// is in float64 and deterministic for a seed.
/// </summary>
public static class Tsne
{
    /// <summary>Embeds the rows of <paramref name="x"/> ([N, D]) into [N, Dimensions] (float64).</summary>
    public static Tensor Embed(Tensor x, TsneOptions? options = null)
    {
        var o = options ?? new TsneOptions();
        if (x.dim() != 2) throw new ArgumentException($"t-SNE expects [N, D] rows, got shape [{string.Join(", ", x.shape)}]");
        long n = x.shape[0];
        if (n < 4) throw new ArgumentException($"t-SNE needs at least 4 points, got {n}");
        if (!(o.Perplexity > 0) || o.Perplexity >= n)
            throw new ArgumentException($"perplexity must be in (0, N) = (0, {n}), got {o.Perplexity}");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var p = JointProbabilities(x, o.Perplexity);
        double lr = o.LearningRate ?? Math.Max(n / o.EarlyExaggeration / 4, 50);
        using var gen = new Generator((ulong)(uint)o.Seed);
        var y0 = randn(new[] { n, (long)o.Dimensions }, ScalarType.Float64, generator: gen) * 1e-4;
        // The iterations run on arrays: P once as a flat row-major copy, the layout as one array per dimension.
        var pFlat = p.contiguous().data<double>().ToArray();
        int count = (int)n, dims = o.Dimensions;
        var start = y0.data<double>().ToArray();
        var y = new double[dims][];
        for (int d = 0; d < dims; d++)
        {
            y[d] = new double[count];
            for (int i = 0; i < count; i++) y[d][i] = start[i * dims + d];
        }
        var update = new double[dims][];
        var gains = new double[dims][];
        var grad = new double[dims][];
        for (int d = 0; d < dims; d++)
        {
            update[d] = new double[count];
            gains[d] = Enumerable.Repeat(1.0, count).ToArray();
            grad[d] = new double[count];
        }
        for (int it = 0; it < o.Iterations; it++)
        {
            bool early = it < o.ExaggerationIterations;
            GradientInto(pFlat, y, early ? o.EarlyExaggeration : 1, grad);
            double momentum = early ? 0.5 : 0.8;
            for (int d = 0; d < dims; d++)
                for (int i = 0; i < count; i++)
                {
                    // Delta-bar-delta gains: grow where the gradient keeps pushing against the last update, shrink
                    // otherwise.
                    double g = grad[d][i], u = update[d][i];
                    double gain = (g > 0) != (u > 0) ? gains[d][i] + 0.2 : gains[d][i] * 0.8;
                    gains[d][i] = gain = Math.Max(gain, 0.01);
                    update[d][i] = u = momentum * u - lr * gain * g;
                    y[d][i] += u;
                }
        }
        var result = new double[count * dims];
        for (int d = 0; d < dims; d++)
            for (int i = 0; i < count; i++) result[i * dims + d] = y[d][i];
        return tensor(result, new long[] { n, dims }, ScalarType.Float64).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="Gradient"/> of exaggeration·P without any N×N intermediate: for each i one pass over j gives
    /// A_i = Σ_j p_ij w_ij (y_i − y_j), R_i = Σ_j w_ij² (y_i − y_j) and Z_i = Σ_{j≠i} w_ij with w = (1 + ‖y_i − y_j‖²)⁻¹;
    /// since q_ij = w_ij / Z (Z = Σ_i Z_i), the gradient is 4 (exaggeration·A_i − R_i / Z). Vectorised over j, parallel
    /// over i; <paramref name="y"/> is one array per dimension, the result goes to <paramref name="grad"/> (same layout).
    /// </summary>
    public static void GradientInto(double[] p, double[][] y, double exaggeration, double[][] grad)
    {
        int n = y[0].Length, dims = y.Length, lanes = Vector<double>.Count;
        var z = new double[n];
        var repulsion = new double[dims][];
        for (int d = 0; d < dims; d++) repulsion[d] = new double[n];
        Parallel.For(0, n, i =>
        {
            Span<Vector<double>> diff = stackalloc Vector<double>[dims];
            Span<Vector<double>> av = stackalloc Vector<double>[dims];
            Span<Vector<double>> rv = stackalloc Vector<double>[dims];
            Span<double> a = stackalloc double[dims];
            Span<double> r = stackalloc double[dims];
            av.Clear(); rv.Clear(); a.Clear(); r.Clear();
            var zv = Vector<double>.Zero;
            double zi = 0;
            var row = p.AsSpan(i * n, n);
            int j = 0;
            for (; j + lanes <= n; j += lanes)
            {
                var dist = Vector<double>.Zero;
                for (int d = 0; d < dims; d++)
                {
                    diff[d] = new Vector<double>(y[d][i]) - new Vector<double>(y[d], j);
                    dist += diff[d] * diff[d];
                }
                var w = Vector<double>.One / (Vector<double>.One + dist);
                var pw = new Vector<double>(row.Slice(j, lanes)) * w;
                var ww = w * w;
                zv += w;
                for (int d = 0; d < dims; d++)
                {
                    av[d] += pw * diff[d];
                    rv[d] += ww * diff[d];
                }
            }
            for (; j < n; j++)
            {
                double dist = 0;
                for (int d = 0; d < dims; d++)
                {
                    double dd = y[d][i] - y[d][j];
                    dist += dd * dd;
                }
                double w = 1 / (1 + dist);
                zi += w;
                for (int d = 0; d < dims; d++)
                {
                    double dd = y[d][i] - y[d][j];
                    a[d] += row[j] * w * dd;
                    r[d] += w * w * dd;
                }
            }
            // j = i contributed w = 1 to Z (and nothing to A and R: p_ii = 0 and y_i − y_i = 0).
            z[i] = zi + Vector.Sum(zv) - 1;
            for (int d = 0; d < dims; d++)
            {
                grad[d][i] = a[d] + Vector.Sum(av[d]);                 // A_i; R_i waits for Z
                repulsion[d][i] = r[d] + Vector.Sum(rv[d]);
            }
        });
        double total = z.Sum();
        for (int d = 0; d < dims; d++)
            for (int i = 0; i < n; i++)
                grad[d][i] = 4 * (exaggeration * grad[d][i] - repulsion[d][i] / total);
    }

    /// <summary>
    /// The symmetrised affinities P = (P_{j|i} + P_{i|j}) / 2N ([N, N], float64, zero diagonal, sums to 1).
    /// </summary>
    public static Tensor JointProbabilities(Tensor x, double perplexity)
    {
        using var scope = NewDisposeScope();
        var conditional = ConditionalProbabilities(SquaredDistances(x.to(ScalarType.Float64)), perplexity);
        long n = conditional.shape[0];
        var p = (conditional + conditional.t()) / (2.0 * n);
        return ZeroDiagonal(p.clamp_min(1e-300)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Row-wise P_{j|i} ∝ exp(−β_i d²_ij) with each β_i found by bisection so that the entropy of row i equals
    /// log(perplexity) to 1e-10 nats (rows in parallel, each on its own array).
    /// </summary>
    public static Tensor ConditionalProbabilities(Tensor squaredDistances, double perplexity)
    {
        int n = (int)squaredDistances.shape[0];
        var d = squaredDistances.to(ScalarType.Float64).contiguous().data<double>().ToArray();
        var probs = new double[(long)n * n];
        double target = Math.Log(perplexity);
        Parallel.For(0, n, i =>
        {
            var row = d.AsSpan(i * n, n);
            var p = probs.AsSpan(i * n, n);
            // Distances relative to the nearest neighbour: the same distribution, and exp() cannot underflow to 0/0.
            double nearest = double.PositiveInfinity, sum = 0;
            for (int j = 0; j < n; j++)
                if (j != i) { nearest = Math.Min(nearest, row[j]); }
            for (int j = 0; j < n; j++)
                if (j != i) sum += row[j] - nearest;
            double lo = 0, hi = double.PositiveInfinity, beta = 1 / Math.Max(sum / n, 1e-12);
            for (int it = 0; it < 200; it++)
            {
                // H = log Z − Σ p·logit with logit = −β d0 (≤ 0, and 0 at the nearest neighbour, so Z ≥ 1).
                double z = 0, weighted = 0;
                for (int j = 0; j < n; j++)
                {
                    if (j == i) continue;
                    double logit = -beta * (row[j] - nearest);
                    double e = Math.Exp(logit);
                    p[j] = e;
                    z += e;
                    weighted += e * logit;
                }
                double entropy = Math.Log(z) - weighted / z;
                for (int j = 0; j < n; j++) p[j] /= z;
                p[i] = 0;
                if (Math.Abs(entropy - target) < 1e-10) break;
                if (entropy > target) lo = beta;                                 // too flat → increase β
                else hi = beta;
                beta = double.IsPositiveInfinity(hi) ? beta * 2 : (lo + hi) / 2;
            }
        });
        return tensor(probs, new long[] { n, n }, ScalarType.Float64);
    }

    /// <summary>Pairwise squared Euclidean distances of the rows ([N, N], exact zeros on the diagonal).</summary>
    public static Tensor SquaredDistances(Tensor x)
    {
        using var scope = NewDisposeScope();
        var sq = x.square().sum(1, keepdim: true);
        var d = (sq + sq.t() - 2 * x.mm(x.t())).clamp_min(0);
        return ZeroDiagonal(d).MoveToOuterDisposeScope();
    }

    /// <summary>∂KL(P‖Q)/∂y = 4 Σ_j (p_ij − q_ij)(1 + ‖y_i − y_j‖²)⁻¹ (y_i − y_j).</summary>
    public static Tensor Gradient(Tensor p, Tensor y)
    {
        using var scope = NewDisposeScope();
        var num = ZeroDiagonal((1 + SquaredDistances(y)).reciprocal());
        var q = (num / num.sum()).clamp_min(1e-300);
        var w = (p - q) * num;
        var grad = 4 * (w.sum(1, keepdim: true) * y - w.mm(y));
        return grad.MoveToOuterDisposeScope();
    }

    private static Tensor ZeroDiagonal(Tensor t) => t.masked_fill(eye(t.shape[0], dtype: ScalarType.Bool, device: t.device), 0);

    /// <summary>
    /// Leave-one-out k-nearest-neighbour accuracy of <paramref name="labels"/> in <paramref name="embedding"/>: each
    /// point is classified by the majority label of its k nearest other points (ties go to the label whose nearest
    /// member is closest). A number for "the classes form clusters" that does not depend on looking at the plot.
    /// </summary>
    public static double KnnAccuracy(Tensor embedding, IReadOnlyList<long> labels, int k = 5)
    {
        long n = embedding.shape[0];
        if (labels.Count != n) throw new ArgumentException($"{labels.Count} labels for {n} points");
        if (k < 1 || k >= n) throw new ArgumentException($"k must be in [1, {n - 1}], got {k}");
        using var scope = NewDisposeScope();
        var d = SquaredDistances(embedding.to(ScalarType.Float64));
        d = d + diag(full(n, double.PositiveInfinity, ScalarType.Float64));
        var nearest = d.topk(k, dim: 1, largest: false, sorted: true).indexes.data<long>().ToArray();
        int hits = 0;
        for (long i = 0; i < n; i++)
        {
            var votes = new Dictionary<long, (int Count, int FirstRank)>();
            for (int r = 0; r < k; r++)
            {
                long label = labels[(int)nearest[i * k + r]];
                votes[label] = votes.TryGetValue(label, out var v) ? (v.Count + 1, v.FirstRank) : (1, r);
            }
            long predicted = votes.OrderByDescending(kv => kv.Value.Count).ThenBy(kv => kv.Value.FirstRank).First().Key;
            if (predicted == labels[(int)i]) hits++;
        }
        return (double)hits / n;
    }
}
