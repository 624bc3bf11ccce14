using Uan.Lab.Training;

namespace Uan.Cli.Tests;

/// <summary><c>uan report --study</c> on a small study folder written here.</summary>
public sealed class StudyReportCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-cli-study-" + Guid.NewGuid().ToString("N"));

    public StudyReportCliTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private void Run(string label, int seed, double test) =>
        new RunResults
        {
            Config = new RunConfig { Dataset = "fashion-mnist", Label = label, Norm = "bn", BatchSize = 64, Epochs = 1, Seed = seed },
            Epochs = [new EpochMetrics { Epoch = 1, ValAccuracy = 0.8, TestAccuracy = test }],
            Status = "completed",
        }.Save(Path.Combine(_dir, "grid-a", $"{label}-s{seed}"));

    [Fact]
    public void StudyFlagWritesTheVerdicts()
    {
        Run("BN", 1, 0.80); Run("BN", 2, 0.81);
        Run("UAN", 1, 0.82); Run("UAN", 2, 0.84);
        var out1 = Path.Combine(_dir, "out");
        var (code, output, err) = CliTests.Uan("report", "--study", _dir, "--out", out1);
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        Assert.Contains("# Verdicts on the paper's claims", output);
        // UAN − BN: +2, +3 points → mean 2.5, half-width 12.706·0.7071/√2 = 6.35.
        Assert.Contains("| 2 | batch 64, lr 0.001 | UAN − BN | test accuracy, last epoch | 2 | +2.50 [-3.85, +8.85] | not decided at this size |", output);
        Assert.Contains($"written: {Path.Combine(out1, "verdicts.md")}", output);
        Assert.True(File.Exists(Path.Combine(out1, "study-test-accuracy.png")));
        // Without --study the same folder gives the ordinary report.
        Assert.Equal(0, CliTests.Uan("report", _dir, "--out", Path.Combine(_dir, "plain")).Code);
        Assert.False(File.Exists(Path.Combine(_dir, "plain", "verdicts.md")));
    }

    [Fact]
    public void StudyWithoutRunsIsBadInput()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "empty-grid"));
        var (code, _, err) = CliTests.Uan("report", "--study", _dir, "--out", Path.Combine(_dir, "out"));
        Assert.Equal(2, code);
        Assert.Contains("no results.json", err);
    }
}
