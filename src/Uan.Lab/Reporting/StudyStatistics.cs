using Uan.Lab.Training;

namespace Uan.Lab.Reporting;

/// <summary>
/// Student's t distribution, computed here (no statistics package): the tail from the regularized incomplete beta
/// function, the quantile by bisection on the tail.
/// </summary>
public static class StudentT
{
    /// <summary>P(T &gt; <paramref name="t"/>) for <paramref name="df"/> degrees of freedom (df &gt; 0).</summary>
    public static double UpperTail(double t, double df)
    {
        if (!(df > 0)) throw new ArgumentOutOfRangeException(nameof(df), df, "degrees of freedom must be > 0");
        if (double.IsNaN(t)) return double.NaN;
        if (double.IsPositiveInfinity(t)) return 0;
        if (double.IsNegativeInfinity(t)) return 1;
        // P(|T| > |t|) = I_{df/(df+t²)}(df/2, 1/2).
        double twoSided = RegularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
        return t >= 0 ? twoSided / 2 : 1 - twoSided / 2;
    }

    /// <summary>The value q with P(T ≤ q) = <paramref name="p"/>, for 0 &lt; p &lt; 1.</summary>
    public static double Quantile(double p, double df)
    {
        if (!(p > 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, "must lie in (0, 1)");
        if (p < 0.5) return -Quantile(1 - p, df);
        if (p == 0.5) return 0;
        double tail = 1 - p;
        double lo = 0, hi = 1;
        while (UpperTail(hi, df) > tail) { lo = hi; hi *= 2; }
        for (int i = 0; i < 200 && hi - lo > 1e-13 * Math.Max(1, hi); i++)
        {
            double mid = (lo + hi) / 2;
            if (UpperTail(mid, df) > tail) lo = mid; else hi = mid;
        }
        return (lo + hi) / 2;
    }

    /// <summary>The two-sided 95 % critical value t(0.975, df).</summary>
    public static double Critical95(int df) => Quantile(0.975, df);

    /// <summary>I_x(a, b), by the continued fraction (modified Lentz), using the symmetry for x beyond the mean.</summary>
    internal static double RegularizedIncompleteBeta(double x, double a, double b)
    {
        if (x <= 0) return 0;
        if (x >= 1) return 1;
        double lnFront = LogGamma(a + b) - LogGamma(a) - LogGamma(b) + a * Math.Log(x) + b * Math.Log(1 - x);
        if (x < (a + 1) / (a + b + 2)) return Math.Exp(lnFront) * BetaFraction(x, a, b) / a;
        return 1 - Math.Exp(lnFront) * BetaFraction(1 - x, b, a) / b;
    }

    private static double BetaFraction(double x, double a, double b)
    {
        const double tiny = 1e-300, eps = 1e-16;
        double qab = a + b, qap = a + 1, qam = a - 1;
        double c = 1, d = 1 - qab * x / qap;
        if (Math.Abs(d) < tiny) d = tiny;
        d = 1 / d;
        double h = d;
        for (int m = 1; m <= 10_000; m++)
        {
            int m2 = 2 * m;
            double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d; h *= d * c;
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
            d = 1 + aa * d; if (Math.Abs(d) < tiny) d = tiny;
            c = 1 + aa / c; if (Math.Abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = d * c;
            h *= delta;
            if (Math.Abs(delta - 1) < eps) break;
        }
        return h;
    }

    /// <summary>ln Γ(x) for x &gt; 0 (Lanczos, g = 7, 9 terms; relative error about 1e-15).</summary>
    internal static double LogGamma(double x)
    {
        if (x < 0.5) return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        ReadOnlySpan<double> g =
        [
            0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
            12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
        ];
        x -= 1;
        double sum = g[0];
        for (int i = 1; i < g.Length; i++) sum += g[i] / (x + i);
        double t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }
}

/// <summary>What a paired comparison says about a claimed direction.</summary>
public enum Verdict
{
    /// <summary>Fewer than 2 paired seeds: no interval can be formed.</summary>
    NeedsSeeds,
    /// <summary>The 95 % interval excludes 0 on the claimed side.</summary>
    Supported,
    /// <summary>The 95 % interval excludes 0 on the opposite side.</summary>
    Contradicted,
    /// <summary>The 95 % interval contains 0.</summary>
    NotDecided,
    /// <summary>
    /// Every paired difference is the same: the interval has zero width, which says nothing about the spread, so
    /// nothing is decided. Quantised metrics do this with few seeds (steps to an accuracy, known only to the
    /// validation interval, often differ by exactly one interval in every seed).
    /// </summary>
    NoSpread,
}

/// <summary>
/// Per-seed differences arm − reference (runs paired by seed), their mean, sample standard deviation and 95 %
/// confidence interval for the mean difference (Student t with n − 1 degrees of freedom).
/// </summary>
/// <param name="Seeds">The seeds both arms have, ascending.</param>
/// <param name="Differences">arm − reference for each of <paramref name="Seeds"/>.</param>
public sealed record PairedDifference(IReadOnlyList<int> Seeds, IReadOnlyList<double> Differences)
{
    /// <summary>Most seeds <see cref="SeedsNeeded"/> looks for.</summary>
    public const int MaxSeeds = 10_000;

    /// <summary>Paired seeds.</summary>
    public int Count => Differences.Count;

    /// <summary>Mean difference (NaN with no pair).</summary>
    public double Mean => Count == 0 ? double.NaN : Differences.Average();

    /// <summary>Sample standard deviation (n − 1) of the differences, or null with fewer than 2.</summary>
    public double? Std
    {
        get
        {
            if (Count < 2) return null;
            double mean = Mean;
            return Math.Sqrt(Differences.Sum(d => (d - mean) * (d - mean)) / (Count - 1));
        }
    }

    /// <summary>Half-width t(0.975, n − 1)·sd/√n of the 95 % interval, or null with fewer than 2 pairs.</summary>
    public double? HalfWidth => Std is { } s ? StudentT.Critical95(Count - 1) * s / Math.Sqrt(Count) : null;

    /// <summary>
    /// True when there are at least 2 pairs and they all differ by the same amount, to within rounding
    /// (sd ≤ 10⁻⁹ · the largest |difference|): the values the differences come from are doubles, so equal
    /// differences may carry a last-bit spread.
    /// </summary>
    public bool NoSpread => Std is { } sd && sd <= 1e-9 * Differences.Max(Math.Abs);

    /// <summary>Lower end of the 95 % interval, or null.</summary>
    public double? Low => HalfWidth is { } h ? Mean - h : null;

    /// <summary>Upper end of the 95 % interval, or null.</summary>
    public double? High => HalfWidth is { } h ? Mean + h : null;

    /// <summary>
    /// The pairs of two arms' per-seed values: only seeds where both have a finite value, ascending.
    /// </summary>
    public static PairedDifference Of(IReadOnlyDictionary<int, double> arm, IReadOnlyDictionary<int, double> reference)
    {
        var seeds = arm.Keys.Where(s => reference.ContainsKey(s) && double.IsFinite(arm[s]) && double.IsFinite(reference[s]))
            .Order().ToList();
        return new PairedDifference(seeds, seeds.Select(s => arm[s] - reference[s]).ToList());
    }

    /// <summary>
    /// The verdict for a claim that the difference is positive (<paramref name="claimedPositive"/>) or negative.
    /// </summary>
    public Verdict VerdictFor(bool claimedPositive)
    {
        if (Low is not { } low || High is not { } high) return Verdict.NeedsSeeds;
        if (NoSpread) return Verdict.NoSpread;
        if (low > 0) return claimedPositive ? Verdict.Supported : Verdict.Contradicted;
        if (high < 0) return claimedPositive ? Verdict.Contradicted : Verdict.Supported;
        return Verdict.NotDecided;
    }

    /// <summary>
    /// An estimate of the seeds a decision would need if the observed mean and spread held: the smallest n ≥ 2 with
    /// t(0.975, n − 1)·sd/√n &lt; |mean|. Null with fewer than 2 pairs, with a zero mean or a zero spread
    /// (<see cref="Verdict.NoSpread"/>), or beyond <see cref="MaxSeeds"/>.
    /// </summary>
    public int? SeedsNeeded()
    {
        if (Std is not { } sd) return null;
        double effect = Math.Abs(Mean);
        if (effect == 0 || NoSpread) return null;
        for (int n = 2; n <= MaxSeeds; n++)
            if (StudentT.Critical95(n - 1) * sd / Math.Sqrt(n) < effect) return n;
        return null;
    }
}

/// <summary>Convergence measures on a run's validation curve (<see cref="EpochMetrics.ValPoints"/>).</summary>
public static class Convergence
{
    /// <summary>
    /// The validation points of <paramref name="run"/> in step order: the within-epoch points where recorded, else
    /// one point per epoch at its last step (epoch × steps per epoch when <paramref name="stepsPerEpoch"/> is known).
    /// </summary>
    public static IReadOnlyList<ValPoint> Points(RunResults run, long? stepsPerEpoch = null)
    {
        var points = new List<ValPoint>();
        foreach (var e in run.Epochs)
        {
            if (e.ValPoints is { Count: > 0 } vp) points.AddRange(vp);
            else if (stepsPerEpoch is { } s) points.Add(new ValPoint(e.Epoch * s, e.ValAccuracy, e.ValLoss));
        }
        return points.OrderBy(p => p.Step).ToList();
    }

    /// <summary>The first step whose validation accuracy is at least <paramref name="threshold"/>, or null if none.</summary>
    public static long? StepsTo(IReadOnlyList<ValPoint> points, double threshold)
    {
        foreach (var p in points.OrderBy(p => p.Step))
            if (p.Accuracy >= threshold) return p.Step;
        return null;
    }

    /// <summary>
    /// Mean validation accuracy in each quarter of training: a point at step s of a run whose last point is at step T
    /// belongs to quarter ⌊4(s − 1)/T⌋ + 1. Null when a quarter has no point (fewer than 4 points, or a gap).
    /// </summary>
    public static double[]? QuarterMeans(IReadOnlyList<ValPoint> points)
    {
        if (points.Count == 0) return null;
        long last = points.Max(p => p.Step);
        if (last < 4) return null;
        var sums = new double[4];
        var counts = new int[4];
        foreach (var p in points)
        {
            int q = (int)Math.Clamp((p.Step - 1) * 4 / last, 0, 3);
            sums[q] += p.Accuracy;
            counts[q]++;
        }
        if (counts.Any(c => c == 0)) return null;
        return [.. sums.Select((v, i) => v / counts[i])];
    }

    /// <summary>
    /// The area under the validation-accuracy curve by the trapezoid rule between the first and the last point,
    /// divided by that span of steps: the mean validation accuracy over training. Null with fewer than 2 points.
    /// </summary>
    public static double? MeanAccuracy(IReadOnlyList<ValPoint> points)
    {
        var p = points.OrderBy(v => v.Step).ToList();
        if (p.Count < 2 || p[^1].Step == p[0].Step) return null;
        double area = 0;
        for (int i = 1; i < p.Count; i++)
            area += (p[i].Step - p[i - 1].Step) * (p[i].Accuracy + p[i - 1].Accuracy) / 2;
        return area / (p[^1].Step - p[0].Step);
    }
}
