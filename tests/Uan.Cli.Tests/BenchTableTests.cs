using System.Globalization;
using Uan.Lab.Performance;

namespace Uan.Cli.Tests;

/// <summary>The bench tables: a ratio column that is the ratio of the columns printed, and a warning where two estimates of one ratio disagree.</summary>
public class BenchTableTests
{
    private static string[] Cells(string line) => line.Split('|', StringSplitOptions.TrimEntries)[1..^1];

    private static double Number(string cell) => double.Parse(cell.TrimEnd('×'), CultureInfo.InvariantCulture);

    [Theory]
    [InlineData(12.34, 6.16)]     // printed 12.3 / 6.2 = 1.98, not 12.34 / 6.16 = 2.00
    [InlineData(0.96, 0.94)]      // printed 1.0 / 0.9 = 1.11, not 1.02
    [InlineData(250.05, 99.95)]
    public void TheStepRatioIsTheRatioOfThePrintedTimes(double ms, double bn)
    {
        string table = SpeedTable.Steps([new StepRow("shallow-cnn 64x1x28x28", "uan:k=3", ms, bn, ms / bn)]);
        var row = table.Split('\n').Single(l => l.StartsWith("| shallow-cnn", StringComparison.Ordinal));
        var c = Cells(row);
        double printed = Number(c[2]) / Number(c[3]);
        Assert.Equal(printed.ToString("F2", CultureInfo.InvariantCulture) + "×", c[4]);
    }

    [Fact]
    public void AStepWhoseMedianRatioDisagreesWithTheTimesIsFlaggedWithBothNumbers()
    {
        string table = SpeedTable.Steps(
        [
            new StepRow("shallow-cnn 64x1x28x28", "uan:k=3", 10.0, 5.0, 2.1),    // 2.00 vs 2.10: steady
            new StepRow("shallow-cnn 64x1x28x28", "mn:k=3", 10.0, 5.0, 29.0),    // 2.00 vs 29.00: not
        ]);
        var warnings = table.Split('\n').Where(l => l.StartsWith("Warning:", StringComparison.Ordinal)).ToList();
        var warning = Assert.Single(warnings);
        Assert.Contains("mn:k=3", warning);
        Assert.Contains("2.00×", warning);
        Assert.Contains("29.00×", warning);
    }

    [Fact]
    public void ANormWhoseMedianAndBestRatiosDisagreeIsFlaggedWithBothNumbers()
    {
        string table = SpeedTable.Norms(
        [
            new SpeedRow("64x128x32x32", "BatchNorm", true, true, 10, 10, 1, 1, null, null),
            new SpeedRow("64x128x32x32", "UAN Paper K=3", true, true, 19.1, 10, 1.91, 29.0, null, null),
            new SpeedRow("64x128x32x32", "LayerNorm", true, true, 11, 10, 1.10, 1.05, null, null),
        ]);
        var warning = Assert.Single(table.Split('\n'), l => l.StartsWith("Warning:", StringComparison.Ordinal));
        Assert.Contains("UAN Paper K=3 (fused) at 64x128x32x32", warning);
        Assert.Contains("1.91×", warning);
        Assert.Contains("29.00×", warning);
    }

    [Theory]
    [InlineData(1.0, 1.5, false)]
    [InlineData(1.5, 1.0, false)]
    [InlineData(1.0, 1.51, true)]
    [InlineData(1.91, 29.0, true)]
    [InlineData(29.0, 1.91, true)]
    [InlineData(double.NaN, 1.0, true)]
    [InlineData(1.0, double.PositiveInfinity, true)]
    [InlineData(0.0, 1.0, true)]
    public void UnstableMeansTheTwoEstimatesDifferByMoreThanHalfEitherWay(double a, double b, bool unstable) =>
        Assert.Equal(unstable, SpeedTable.Unstable(a, b));
}
