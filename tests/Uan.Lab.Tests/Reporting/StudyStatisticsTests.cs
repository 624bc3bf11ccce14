using Uan.Lab.Reporting;
using Uan.Lab.Training;

namespace Uan.Lab.Tests.Reporting;

public class StudentTTests
{
    // Two-sided 95 % critical values t(0.975, df) as printed in standard tables (to 4 decimals).
    [Theory]
    [InlineData(1, 12.7062)]
    [InlineData(2, 4.3027)]
    [InlineData(3, 3.1824)]
    [InlineData(4, 2.7764)]
    [InlineData(5, 2.5706)]
    [InlineData(9, 2.2622)]
    [InlineData(10, 2.2281)]
    [InlineData(20, 2.0860)]
    [InlineData(30, 2.0423)]
    [InlineData(120, 1.9799)]
    public void CriticalValuesMatchTheTables(int df, double tabulated) =>
        Assert.Equal(tabulated, StudentT.Critical95(df), 4);

    // One-sided 95 % and 99.5 % points from the same tables.
    [Theory]
    [InlineData(0.95, 1, 6.3138)]
    [InlineData(0.95, 5, 2.0150)]
    [InlineData(0.995, 2, 9.9248)]
    [InlineData(0.995, 10, 3.1693)]
    public void OtherQuantilesMatchTheTables(double p, int df, double tabulated) =>
        Assert.Equal(tabulated, StudentT.Quantile(p, df), 4);

    [Fact]
    public void LowerQuantilesAreTheNegatedUpperOnes()
    {
        Assert.Equal(-StudentT.Quantile(0.975, 7), StudentT.Quantile(0.025, 7), 12);
        Assert.Equal(0, StudentT.Quantile(0.5, 3));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.5)]
    [InlineData(1.0)]
    [InlineData(3.0)]
    [InlineData(-2.0)]
    [InlineData(40.0)]
    public void TailsAgreeWithTheClosedFormsForOneAndTwoDegrees(double t)
    {
        // df = 1 is the Cauchy distribution: P(T > t) = 1/2 − atan(t)/π.
        Assert.Equal(0.5 - Math.Atan(t) / Math.PI, StudentT.UpperTail(t, 1), 12);
        // df = 2: P(T > t) = 1/2 − t / (2 √(2 + t²)).
        Assert.Equal(0.5 - t / (2 * Math.Sqrt(2 + t * t)), StudentT.UpperTail(t, 2), 12);
    }

    [Fact]
    public void LargeDegreesApproachTheNormal() =>
        // Φ⁻¹(0.975) = 1.959964; t(0.975, 100000) is within 1e-4 of it.
        Assert.Equal(1.959964, StudentT.Critical95(100_000), 4);
}

public class PairedDifferenceTests
{
    [Fact]
    public void PairsBySeedAndMatchesAHandComputedInterval()
    {
        // Seed 4 only in the reference and seed 5 NaN in the arm: neither is paired.
        var arm = new Dictionary<int, double> { [3] = 0.90, [1] = 0.80, [2] = 0.85, [5] = double.NaN };
        var reference = new Dictionary<int, double> { [1] = 0.78, [2] = 0.80, [3] = 0.86, [4] = 0.50, [5] = 0.7 };
        var d = PairedDifference.Of(arm, reference);

        Assert.Equal([1, 2, 3], d.Seeds);
        Assert.Equal(0.02, d.Differences[0], 12);
        Assert.Equal(0.05, d.Differences[1], 12);
        Assert.Equal(0.04, d.Differences[2], 12);
        // By hand: mean 0.11/3; deviations -1/60, 1/75, 1/300; sum of squares 7/15000; sd = √(7/30000).
        double mean = 0.11 / 3, sd = Math.Sqrt(7.0 / 30000), half = 4.302652729911275 * sd / Math.Sqrt(3);
        Assert.Equal(mean, d.Mean, 12);
        Assert.Equal(sd, d.Std!.Value, 10);
        Assert.Equal(mean - half, d.Low!.Value, 9);
        Assert.Equal(mean + half, d.High!.Value, 9);
        Assert.Equal(-0.001279, d.Low!.Value, 6); // 0.036667 − 4.302653·0.0152753/√3
        Assert.Equal(Verdict.NotDecided, d.VerdictFor(claimedPositive: true));
        // n = 3: 4.3027·sd/√3 = 0.0379 ≥ 0.0367; n = 4: 3.1824·sd/2 = 0.0243 < 0.0367.
        Assert.Equal(4, d.SeedsNeeded());
    }

    [Theory]
    [InlineData(new[] { 1.0, 1.1, 0.9 }, true, Verdict.Supported)]
    [InlineData(new[] { 1.0, 1.1, 0.9 }, false, Verdict.Contradicted)]
    [InlineData(new[] { -1.0, -1.1, -0.9 }, false, Verdict.Supported)]
    [InlineData(new[] { -1.0, -1.1, -0.9 }, true, Verdict.Contradicted)]
    [InlineData(new[] { 1.0, 2.0, 3.0 }, true, Verdict.NotDecided)] // mean 2, half-width 4.3027/√3 = 2.48
    [InlineData(new[] { -1.0, 1.0 }, true, Verdict.NotDecided)]
    [InlineData(new[] { 5.0 }, true, Verdict.NeedsSeeds)]
    // Identical differences (steps to a threshold one validation interval apart in every seed): sd = 0, so the
    // t interval is [94, 94]; a zero-width interval says nothing about the spread and decides nothing.
    [InlineData(new[] { 94.0, 94.0 }, true, Verdict.NoSpread)]
    [InlineData(new[] { -94.0, -94.0, -94.0 }, false, Verdict.NoSpread)]
    [InlineData(new[] { 0.0, 0.0 }, true, Verdict.NoSpread)]
    // Equal but for the last bit: 0.1 + 0.2 is 0.30000000000000004 in doubles.
    [InlineData(new[] { 0.30000000000000004, 0.3, 0.30000000000000004 }, true, Verdict.NoSpread)]
    // A spread far below the values but above rounding still counts: sd = 1e-6 on values near 1.
    [InlineData(new[] { 1.000001, 1.0, 0.999999 }, true, Verdict.Supported)]
    [InlineData(new double[0], true, Verdict.NeedsSeeds)]
    public void VerdictFollowsTheSideOfTheInterval(double[] differences, bool claimedPositive, Verdict expected)
    {
        var d = new PairedDifference(Enumerable.Range(1, differences.Length).ToList(), differences);
        Assert.Equal(expected, d.VerdictFor(claimedPositive));
    }

    [Fact]
    public void SeedsNeededHasNoAnswerWithoutASpreadOrAMean()
    {
        Assert.Null(new PairedDifference([1], [3.0]).SeedsNeeded());
        Assert.Null(new PairedDifference([1, 2], [-1.0, 1.0]).SeedsNeeded()); // mean 0
        Assert.Null(new PairedDifference([1, 2], [2.0, 2.0]).SeedsNeeded()); // no spread to extrapolate from
        // A tiny effect against a large spread needs more than the search limit.
        Assert.Null(new PairedDifference([1, 2, 3], [-100.0, 100.001, 0.0]).SeedsNeeded());
    }
}

public class ConvergenceTests
{
    private static readonly ValPoint[] Curve =
    [
        new(400, 0.80, 0.5), new(100, 0.50, 1.0), new(200, 0.70, 0.8), // out of order on purpose
    ];

    [Fact]
    public void AreaIsTheTrapezoidOverTheSpan()
    {
        // (200 − 100)·(0.5 + 0.7)/2 + (400 − 200)·(0.7 + 0.8)/2 = 60 + 150 = 210 over 300 steps.
        Assert.Equal(0.7, Convergence.MeanAccuracy(Curve)!.Value, 12);
        Assert.Null(Convergence.MeanAccuracy([new ValPoint(5, 0.9, 0.1)]));
    }

    [Theory]
    [InlineData(0.5, 100L)]
    [InlineData(0.7, 200L)]
    [InlineData(0.75, 400L)]
    [InlineData(0.8, 400L)]
    [InlineData(0.81, null)]
    public void StepsToThresholdIsTheFirstPointAtOrAbove(double threshold, long? expected) =>
        Assert.Equal(expected, Convergence.StepsTo(Curve, threshold));

    [Fact]
    public void FirstCrossingCountsEvenWhenTheCurveFallsBackAfterwards()
    {
        ValPoint[] noisy = [new(10, 0.6, 1), new(20, 0.86, 1), new(30, 0.7, 1), new(40, 0.9, 1)];
        Assert.Equal(20L, Convergence.StepsTo(noisy, 0.85));
    }

    [Fact]
    public void QuarterMeansSplitTheStepsIntoFourEqualSpans()
    {
        // Last step 8: steps 1–2, 3–4, 5–6, 7–8 are the quarters; accuracy s/10 gives means .15, .35, .55, .75.
        var points = Enumerable.Range(1, 8).Reverse().Select(s => new ValPoint(s, s / 10.0, 0)).ToList();
        var q = Convergence.QuarterMeans(points)!;
        Assert.Equal([0.15, 0.35, 0.55, 0.75], q.Select(v => Math.Round(v, 12)));
        // Last step 12, points at 3, 6, 9, 12: ⌊4·2/12⌋ = 0, ⌊4·5/12⌋ = 1, ⌊4·8/12⌋ = 2, ⌊4·11/12⌋ = 3, one each.
        ValPoint[] four = [new(3, 0.1, 0), new(6, 0.2, 0), new(9, 0.4, 0), new(12, 0.8, 0)];
        Assert.Equal([0.1, 0.2, 0.4, 0.8], Convergence.QuarterMeans(four)!);
        // A quarter without a point gives no means.
        Assert.Null(Convergence.QuarterMeans([new ValPoint(1, 0.5, 0), new ValPoint(8, 0.9, 0)]));
        Assert.Null(Convergence.QuarterMeans([]));
    }

    [Fact]
    public void RunsWithoutValPointsFallBackToEpochEnds()
    {
        var run = new RunResults
        {
            Epochs = [new EpochMetrics { Epoch = 1, ValAccuracy = 0.6 }, new EpochMetrics { Epoch = 2, ValAccuracy = 0.8 }],
        };
        var points = Convergence.Points(run, stepsPerEpoch: 50);
        Assert.Equal([50L, 100L], points.Select(p => p.Step));
        Assert.Equal(0.7, Convergence.MeanAccuracy(points)!.Value, 12);
        Assert.Empty(Convergence.Points(run));
    }
}
