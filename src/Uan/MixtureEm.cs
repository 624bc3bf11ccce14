using Uan.Kernels;
using static TorchSharp.torch;

namespace Uan;

/// <summary>A per-channel univariate Gaussian mixture: weights λ, means μ and variances σ², each [K, C].</summary>
public sealed record GaussianMixture(Tensor Weights, Tensor Means, Tensor Variances) : IDisposable
{
    /// <summary>Number of components K.</summary>
    public long Components => Weights.shape[0];

    /// <inheritdoc/>
    public void Dispose()
    {
        Weights.Dispose();
        Means.Dispose();
        Variances.Dispose();
    }
}

/// <summary>
/// Expectation-maximisation for K-component univariate Gaussian mixtures, one per channel, vectorised over
/// channels (docs/modes.md). Data is given as rows [C, M]: the M values of each channel. All functions run without
/// gradient; the results are constants for the normalisation that follows.
/// </summary>
public static class MixtureEm
{
    /// <summary>Relative variance floor: σ²_k ≥ VarianceFloor × the channel's batch variance (plus a tiny absolute).</summary>
    public const double VarianceFloor = 1e-3;

    /// <summary>Largest number of values per channel that k-means++ seeding looks at (a random subsample).</summary>
    public const int SeedingSample = 4096;

    /// <summary>
    /// k-means++-style start: per channel, the first centre uniformly at random and each further one with
    /// probability proportional to the squared distance to the nearest chosen centre; variances = the channel's
    /// variance, weights uniform. Randomness comes from <paramref name="generator"/> (or torch's global one).
    /// </summary>
    public static GaussianMixture KMeansPlusPlus(Tensor rows, int k, Generator? generator = null)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        long c = rows.shape[0], m = rows.shape[1];
        var sample = rows;
        if (m > SeedingSample)
        {
            var pick = randperm(m, generator: generator, device: rows.device)[..SeedingSample];
            sample = rows.index_select(1, pick);
        }
        long ms = sample.shape[1];
        var centres = new List<Tensor>();
        var first = randint(ms, new long[] { c, 1 }, generator: generator, device: rows.device);
        centres.Add(sample.gather(1, first));                                   // [C, 1]
        var d2 = (sample - centres[0]).square();
        for (int j = 1; j < k; j++)
        {
            // Rows whose points all coincide with a centre get uniform weights instead of an all-zero row.
            var w = d2 + (d2.sum(dim: 1, keepdim: true) <= 0).to(d2.dtype);
            var next = multinomial(w, 1, generator: generator);
            var centre = sample.gather(1, next);
            centres.Add(centre);
            d2 = minimum(d2, (sample - centre).square());
        }
        var means = cat(centres, 1).t().contiguous();                            // [K, C]
        var variance = rows.var(1, unbiased: false).unsqueeze(0).expand(k, c).contiguous();
        var floor = VarianceFloorOf(rows);
        var weights = full(k, c, 1.0 / k, dtype: rows.dtype, device: rows.device);
        return new GaussianMixture(weights.MoveToOuterDisposeScope(), means.MoveToOuterDisposeScope(),
            maximum(variance, floor).MoveToOuterDisposeScope());
    }

    /// <summary>
    /// One EM iteration from <paramref name="start"/>. Returns the updated mixture and the mean log-likelihood per
    /// value of <paramref name="rows"/> under <paramref name="start"/> (so a sequence of calls traces the
    /// likelihood before each step). A component whose responsibility mass vanishes keeps its previous values.
    /// </summary>
    public static (GaussianMixture Mixture, Tensor LogLikelihood) Step(Tensor rows, GaussianMixture start)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        // Rows [C, M] are the [N, C, S] layout of the fused kernels with N = 1.
        if (rows.dim() == 2 && FusedEm.CanFuse(rows, start))
        {
            var (fm, fll) = FusedEm.Step(rows.unsqueeze(0), start);
            return (new GaussianMixture(fm.Weights.MoveToOuterDisposeScope(), fm.Means.MoveToOuterDisposeScope(),
                fm.Variances.MoveToOuterDisposeScope()), fll.MoveToOuterDisposeScope());
        }
        long m = rows.shape[1];
        var x = rows.unsqueeze(0);                                               // [1, C, M]
        var mean = start.Means.unsqueeze(2);
        var variance = start.Variances.unsqueeze(2);
        var logits = start.Weights.log().unsqueeze(2) - 0.5 * (2 * Math.PI * variance).log()
                     - (x - mean).square() / (2 * variance);                     // [K, C, M]
        var logZ = logits.logsumexp(0, keepdim: true);
        var tau = (logits - logZ).exp();
        var logLik = logZ.squeeze(0).mean(new long[] { 1 });                     // [C]

        var s = tau.sum(dim: 2);                                                 // [K, C]
        var alive = s > 1e-8 * m;
        var sSafe = s.clamp_min(1e-30);
        var newMean = (tau * x).sum(dim: 2) / sSafe;
        var newVar = (tau * (x - newMean.unsqueeze(2)).square()).sum(dim: 2) / sSafe;
        newVar = maximum(newVar, VarianceFloorOf(rows));
        var newWeight = where(alive, s / m, start.Weights);
        newWeight = newWeight / newWeight.sum(dim: 0, keepdim: true);
        var result = new GaussianMixture(
            newWeight.MoveToOuterDisposeScope(),
            where(alive, newMean, start.Means).MoveToOuterDisposeScope(),
            where(alive, newVar, start.Variances).MoveToOuterDisposeScope());
        return (result, logLik.MoveToOuterDisposeScope());
    }

    /// <summary>Runs <paramref name="iterations"/> EM steps from <paramref name="start"/> (which stays untouched).</summary>
    public static GaussianMixture Fit(Tensor rows, GaussianMixture start, int iterations)
    {
        var current = start;
        for (int i = 0; i < iterations; i++)
        {
            var (next, ll) = Step(rows, current);
            ll.Dispose();
            if (!ReferenceEquals(current, start)) current.Dispose();
            current = next;
        }
        if (ReferenceEquals(current, start))
            return new GaussianMixture(start.Weights.clone(), start.Means.clone(), start.Variances.clone());
        return current;
    }

    /// <summary>
    /// <see cref="Fit"/> on an input laid out [N, C, ...] (not rows): the fused kernel reads it in place, which
    /// saves the transposed copy. Falls back to rows when the kernel cannot take x.
    /// </summary>
    internal static GaussianMixture FitInput(Tensor x, GaussianMixture start, int iterations)
    {
        // Short spatial runs waste the kernel's vector lanes; rows [C, N·S] are one long run per channel.
        if (!FusedEm.CanFuse(x, start) || Kernels.ChannelRows.Wanted(x))
            return Fit(ToRows(x).to(start.Means.dtype), start, iterations);
        using var _ = no_grad();
        var current = start;
        for (int i = 0; i < iterations; i++)
        {
            var next = FusedEm.Advance(x, current);
            if (!ReferenceEquals(current, start)) current.Dispose();
            current = next;
        }
        if (ReferenceEquals(current, start))
            return new GaussianMixture(start.Weights.clone(), start.Means.clone(), start.Variances.clone());
        return current;
    }

    /// <summary>An input [N, C, ...] as rows [C, N·spatial], detached.</summary>
    /// <remarks>
    /// Always contiguous: for a 2-D input the reshape is a view of the transpose, and the fused EM only takes
    /// contiguous rows.
    /// </remarks>
    public static Tensor ToRows(Tensor x) => x.detach().transpose(0, 1).reshape(x.shape[1], -1).contiguous();

    static Tensor VarianceFloorOf(Tensor rows) =>
        (rows.var(1, unbiased: false) * VarianceFloor + 1e-12).unsqueeze(0);
}
