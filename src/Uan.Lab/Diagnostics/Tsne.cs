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
/// Exact t-SNE (van der Maaten and Hinton, 2008) on TorchSharp tensors: Gaussian affinities with a per-point bandwidth
/// found by binary search so that every conditional distribution has the requested perplexity, symmetrised; a
/// Student-t kernel in the embedding; gradient descent with momentum, per-coordinate gains and early exaggeration.
/// O(N²) memory and time per iteration, meant for up to a few thousand points (the figures use ≤ 2,000). Everything
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
        var y = randn(new[] { n, (long)o.Dimensions }, ScalarType.Float64, generator: gen) * 1e-4;
        var update = zeros_like(y);
        var gains = ones_like(y);
        for (int it = 0; it < o.Iterations; it++)
        {
            using var step = NewDisposeScope();
            bool early = it < o.ExaggerationIterations;
            var grad = Gradient(early ? p * o.EarlyExaggeration : p, y);
            // Delta-bar-delta gains: grow where the gradient keeps pushing against the last update, shrink otherwise.
            var flip = (grad > 0).logical_xor(update > 0);
            gains.copy_(where(flip, gains + 0.2, gains * 0.8).clamp_min(0.01));
            update.copy_(update * (early ? 0.5 : 0.8) - lr * gains * grad);
            y.add_(update);
        }
        return y.MoveToOuterDisposeScope();
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
    /// Row-wise P_{j|i} ∝ exp(−β_i d²_ij) with each β_i found by bisection (all rows at once) so that the entropy of
    /// row i equals log(perplexity) to 1e-10 nats.
    /// </summary>
    public static Tensor ConditionalProbabilities(Tensor squaredDistances, double perplexity)
    {
        using var scope = NewDisposeScope();
        long n = squaredDistances.shape[0];
        var d = squaredDistances.to(ScalarType.Float64);
        // Distances relative to each row's nearest neighbour: the same distribution, and exp() cannot underflow to 0/0.
        var offDiag = d + diag(full(n, double.PositiveInfinity, ScalarType.Float64));
        var d0 = offDiag - offDiag.amin(new long[] { 1 }, keepdim: true);
        double target = Math.Log(perplexity);
        var lo = zeros(n, 1, ScalarType.Float64);
        var hi = full(n, 1, double.PositiveInfinity, ScalarType.Float64);
        var beta = ones(n, 1, ScalarType.Float64) / d0.masked_fill(d0.isinf(), 0).mean(new long[] { 1 }, keepdim: true).clamp_min(1e-12);
        Tensor probs = d0;
        for (int i = 0; i < 200; i++)
        {
            var logits = -beta * d0;
            var logZ = logits.logsumexp(1, keepdim: true);
            probs = (logits - logZ).exp();
            var entropy = logZ - (probs * logits).nan_to_num(0).sum(1, keepdim: true);   // H = log Z − Σ p·logit
            var tooFlat = entropy > target;                                  // entropy too high → increase β
            lo = where(tooFlat, beta, lo);
            hi = where(tooFlat, hi, beta);
            beta = where(hi.isinf(), beta * 2, (lo + hi) / 2);
            if ((entropy - target).abs().max().item<double>() < 1e-10) break;
        }
        return probs.MoveToOuterDisposeScope();
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
