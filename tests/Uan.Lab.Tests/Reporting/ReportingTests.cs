using Uan.Lab.Reporting;
using Uan.Lab.Tests.Data;
using Uan.Lab.Training;

namespace Uan.Lab.Tests.Reporting;

/// <summary>Synthetic run folders with accuracies chosen so every expected number can be worked out by hand.</summary>
internal static class SyntheticRuns
{
    public static readonly int[] Seeds = [1, 2, 3];

    /// <summary>Per-seed offset of the test accuracy: -3, -1, +4 points, so the mean offset is 0.</summary>
    public static readonly double[] SeedOffset = [-0.03, -0.01, 0.04];

    /// <summary>Test accuracy at epoch 0 before the +5 points per epoch (fractions).</summary>
    public static double Base(string norm, double lr) => (norm, lr) switch
    {
        ("bn", 0.001) => 0.60,
        ("bn", 0.005) => 0.55,
        ("uan:k=3", 0.001) => 0.65,
        ("uan:k=3", 0.005) => 0.62,
        _ => throw new ArgumentException(norm),
    };

    /// <summary>
    /// 2 norms × 2 learning rates × 3 seeds, 4 epochs each. Validation accuracy rises every epoch, so both protocols
    /// select the epoch itself and the test accuracy is Base + 0.05·epoch + SeedOffset[seed].
    /// </summary>
    public static void WriteGrid(string root, string dataset = "cifar10", int epochs = 4)
    {
        foreach (var norm in new[] { "uan:k=3", "bn" })
            foreach (var lr in new[] { 0.005, 0.001 })
                for (int s = 0; s < Seeds.Length; s++)
                {
                    var config = new RunConfig
                    {
                        Dataset = dataset, Model = "shallow-cnn", Norm = norm, LearningRate = lr, Epochs = epochs,
                        Seed = Seeds[s],
                    };
                    var epochsList = Enumerable.Range(1, epochs).Select(e => new EpochMetrics
                    {
                        Epoch = e,
                        TrainLoss = 2.0 / e + s * 0.1,
                        ValAccuracy = 0.5 + 0.01 * e,
                        TestAccuracy = Base(norm, lr) + 0.05 * e + SeedOffset[s],
                        TestF1 = 0.5 + 0.01 * e + 0.01 * s,
                        TrainSeconds = 10 + s,
                        EvalSeconds = 2,
                    }).ToList();
                    Write(Path.Combine(root, dataset, FormattableString.Invariant($"{norm.Replace(':', '_')}-lr{lr}-s{Seeds[s]}")), config,
                        epochsList);
                }
    }

    public static void Write(string dir, RunConfig config, List<EpochMetrics> epochs, string status = "completed") =>
        new RunResults { Config = config, Epochs = epochs, Status = status }.Save(dir);
}

public class EpochMappingTests
{
    [Theory]
    [InlineData(4, new[] { 1, 2, 3, 4 })]
    [InlineData(10, new[] { 3, 5, 8, 10 })] // 2.5 and 7.5 round up
    [InlineData(3, new[] { 1, 2, 2, 3 })] // 0.75 → 1, 1.5 → 2, 2.25 → 2
    [InlineData(1, new[] { 1, 1, 1, 1 })] // never epoch 0
    [InlineData(100, new[] { 25, 50, 75, 100 })]
    public void CheckpointsAreRoundedFractionsOfTheConfiguredEpochs(int epochs, int[] expected) =>
        Assert.Equal(expected, ComparisonTable.CheckpointEpochs(epochs));
}

public class ComparisonTableTests
{
    [Fact]
    public void MeanAndSampleStdOverSeedsMatchHandComputedValues()
    {
        using var tmp = new TempDir();
        SyntheticRuns.WriteGrid(tmp.Path);
        var runs = RunCollection.Load(tmp.Path);
        Assert.Empty(runs.Warnings);
        Assert.Equal(12, runs.Runs.Count);
        Assert.Equal(4, runs.Groups.Count);

        var table = ComparisonTable.Build(runs);
        Assert.Equal(AccuracyProtocol.BestValSoFar, table.Protocol);
        // BN before UAN, then by learning rate, regardless of the order the folders were written in.
        Assert.Equal(["bn 0.001", "bn 0.005", "uan:k=3 0.001", "uan:k=3 0.005"],
            table.Rows.Select(r => $"{r.Label} {r.LearningRate}"));
        Assert.Equal(["BN", "BN", "UAN", "UAN"], table.Rows.Select(r => r.NormFamily));

        // bn, lr 0.001, epoch 4: 0.60 + 0.20 + (-0.03, -0.01, +0.04) = 0.77, 0.79, 0.84.
        double mean = (0.77 + 0.79 + 0.84) / 3;                                         // 0.80
        double std = Math.Sqrt((Math.Pow(0.77 - mean, 2) + Math.Pow(0.79 - mean, 2) + Math.Pow(0.84 - mean, 2)) / 2);
        var bn1 = table.Rows[0];
        Assert.Equal(3, bn1.Seeds);
        Assert.Equal([1, 2, 3, 4], bn1.CheckpointEpochs);
        var at100 = bn1.Accuracy[3]!.Value;
        Assert.Equal(mean, at100.Mean, 12);
        Assert.Equal(std, at100.Std!.Value, 12);
        Assert.Equal(3, at100.Count);
        Assert.Equal("80.00 ± 3.61", at100.Format());

        // uan, lr 0.005, epoch 1 (25 % of 4): 0.62 + 0.05 = 0.67 mean, same spread.
        var uan2 = table.Rows[3];
        Assert.Equal(0.67, uan2.Accuracy[0]!.Value.Mean, 12);
        Assert.Equal(std, uan2.Accuracy[0]!.Value.Std!.Value, 12);

        var cells = bn1.Cells();
        Assert.Equal(ComparisonTable.Header.Count, cells.Count);
        Assert.Equal("n=3", cells[2]);
        Assert.Equal("4 (1, 2, 3, 4)", cells[3]);
        Assert.Equal(["65.00 ± 3.61", "70.00 ± 3.61", "75.00 ± 3.61", "80.00 ± 3.61"], cells.Skip(4).Take(4));
        // F1 at the last epoch: 0.54, 0.55, 0.56 → 55.00; seconds per epoch: 12, 13, 14 → 13.0.
        Assert.Equal("55.00", cells[8]);
        Assert.Matches(@"^\d+\.\d\d( ± \d+\.\d\d)?$", cells[9]);     // train accuracy of the last epoch
        Assert.Equal("13.0", cells[10]);
        Assert.Equal("", cells[11]);

        var md = table.ToMarkdown("cifar10", "shallow-cnn");
        Assert.Contains("| bn | 0.001 | n=3 | 4 (1, 2, 3, 4) | 65.00 ± 3.61 |", md);
        Assert.StartsWith("| norm | lr | seeds |", md);
    }

    [Fact]
    public void OneSeedShowsTheMeanOnlyAndNotCompletedRunsAreFlagged()
    {
        using var tmp = new TempDir();
        var config = new RunConfig { Dataset = "mnist", Norm = "mn", Label = "MN", LearningRate = 0.005, Epochs = 10 };
        var epochs = Enumerable.Range(1, 7).Select(e => new EpochMetrics
            { Epoch = e, ValAccuracy = e, TestAccuracy = 0.9 + e / 1000.0 }).ToList();
        SyntheticRuns.Write(tmp.File("a"), config, epochs, status: "stopped");

        var row = Assert.Single(ComparisonTable.Build(RunCollection.Load(tmp.Path)).Rows);
        var cells = row.Cells();
        Assert.Equal("n=1", cells[2]);
        Assert.Equal("10 (3, 5, 8, 10)", cells[3]);
        Assert.Equal(["90.30", "90.50", "—", "—"], cells.Skip(4).Take(4)); // epochs 8 and 10 not reached
        Assert.Equal("1 stopped", row.Status);
    }

    [Fact]
    public void BestValidationSoFarKeepsTheEarlyPeaksTestAccuracy()
    {
        // Validation peaks at epoch 2; the test accuracy keeps rising. Under the paper's protocol the later columns
        // must still show epoch 2's test accuracy (and its F1), not the last epoch's.
        var epochs = new List<EpochMetrics>
        {
            new() { Epoch = 1, ValAccuracy = 0.50, TestAccuracy = 0.40, TestF1 = 0.30 },
            new() { Epoch = 2, ValAccuracy = 0.90, TestAccuracy = 0.60, TestF1 = 0.55 },
            new() { Epoch = 3, ValAccuracy = 0.60, TestAccuracy = 0.70, TestF1 = 0.65 },
            new() { Epoch = 4, ValAccuracy = 0.90, TestAccuracy = 0.80, TestF1 = 0.75 }, // a tie keeps epoch 2
        };
        using var tmp = new TempDir();
        SyntheticRuns.Write(tmp.File("peak"), new RunConfig { Dataset = "cifar10", Epochs = 4 }, epochs);
        var runs = RunCollection.Load(tmp.Path);

        var best = Assert.Single(ComparisonTable.Build(runs, AccuracyProtocol.BestValSoFar).Rows);
        Assert.Equal([0.40, 0.60, 0.60, 0.60], best.Accuracy.Select(a => a!.Value.Mean));
        Assert.Equal(0.55, best.FinalF1!.Value.Mean, 12);

        var last = Assert.Single(ComparisonTable.Build(runs, AccuracyProtocol.LastEpoch).Rows);
        Assert.Equal([0.40, 0.60, 0.70, 0.80], last.Accuracy.Select(a => a!.Value.Mean));
        Assert.Equal(0.75, last.FinalF1!.Value.Mean, 12);

        // The table's own selection agrees with the schema's definition of the protocol at every epoch.
        var results = runs.Runs[0].Results;
        for (int e = 1; e <= 5; e++)
            Assert.Equal(results.BestValTestAccuracyAt(e),
                ComparisonTable.SelectEpoch(results, e, AccuracyProtocol.BestValSoFar)?.TestAccuracy);
    }

    [Fact]
    public void RowsFollowTheFamilyOrderThenLearningRate()
    {
        using var tmp = new TempDir();
        var specs = new (string? Label, string Norm, string? InputNorm, double Lr)[]
        {
            ("UAN-2", "uan", null, 0.005), (null, "gn:groups=8", null, 0.001), ("MN", "mn", null, 0.001),
            (null, "uan:k=3", null, 0.001), ("BN", "bn", null, 0.005), ("BN", "bn", null, 0.001),
            (null, "bn", "uan:k=10", 0.1),
        };
        for (int i = 0; i < specs.Length; i++)
            SyntheticRuns.Write(tmp.File($"r{i}"), new RunConfig
            {
                Label = specs[i].Label, Norm = specs[i].Norm, InputNorm = specs[i].InputNorm,
                LearningRate = specs[i].Lr, Epochs = 1,
            }, [new EpochMetrics { Epoch = 1, TestAccuracy = 0.5 }]);

        var rows = ComparisonTable.Build(RunCollection.Load(tmp.Path)).Rows;
        Assert.Equal(["BN 0.001", "BN 0.005", "MN 0.001", "uan:k=3 0.001", "UAN-2 0.005", "bn (input uan:k=10) 0.1",
                "gn:groups=8 0.001"],
            rows.Select(r => $"{r.Label} {r.LearningRate}"));
        Assert.Equal(["BN", "BN", "MN", "UAN", "UAN", "UAN", "GN"], rows.Select(r => r.NormFamily));
    }
}

public class RunCollectionTests
{
    [Fact]
    public void CorruptAndEmptyResultFilesAreSkippedAndReported()
    {
        using var tmp = new TempDir();
        SyntheticRuns.WriteGrid(tmp.Path);
        Directory.CreateDirectory(tmp.File("broken", "deep"));
        File.WriteAllText(tmp.File("broken", "deep", RunResults.FileName), "{ \"config\": { \"dataset\": ");
        Directory.CreateDirectory(tmp.File("empty"));
        File.WriteAllText(tmp.File("empty", RunResults.FileName), "");

        var runs = RunCollection.Load(tmp.Path);
        Assert.Equal(12, runs.Runs.Count);
        Assert.Equal(2, runs.Warnings.Count);
        Assert.Contains(runs.Warnings, w => w.Contains(Path.Combine("broken", "deep", RunResults.FileName)));
        Assert.Contains(runs.Warnings, w => w.Contains(Path.Combine("empty", RunResults.FileName)));

        var summary = ReportWriter.Write(tmp.Path, tmp.File("report"));
        Assert.Equal(2, summary.Warnings.Count);
        var md = File.ReadAllText(summary.ComparisonPath);
        Assert.Contains("## Warnings", md);
        Assert.Contains(Path.Combine("broken", "deep", RunResults.FileName), md);
        // A committed report names no absolute path of the machine it was made on (the temporary folder is not under
        // the current one, so it is shown by its name).
        Assert.DoesNotContain(tmp.Path, md);
        Assert.Contains("Runs read from `…/" + Path.GetFileName(tmp.Path) + "`", md);
        Assert.Contains("…/" + Path.GetFileName(tmp.Path) + "/broken/deep/" + RunResults.FileName, md);
    }

    [Fact]
    public void DisplayPathIsRelativeUnderTheCurrentFolderAndNeverAbsolute()
    {
        var here = Directory.GetCurrentDirectory();
        Assert.Equal("runs/grid", RunCollection.DisplayPath(Path.Combine(here, "runs", "grid")));
        Assert.Equal("runs/grid", RunCollection.DisplayPath(Path.Combine("runs", "grid")));
        var elsewhere = Path.Combine(Path.GetPathRoot(here)!, "elsewhere-" + Guid.NewGuid().ToString("N"), "a", "b");
        Assert.Equal("…/b", RunCollection.DisplayPath(elsewhere));
    }

    [Fact]
    public void AMissingRootIsAnError() =>
        Assert.Throws<DirectoryNotFoundException>(() =>
            RunCollection.Load(Path.Combine(Path.GetTempPath(), "uan-no-such-" + Guid.NewGuid().ToString("N"))));
}

public class PaperResultsTests
{
    [Fact]
    public void LookupReturnsOnlyWhatTheSpecLists()
    {
        var cifar10 = PaperResults.Find("cifar10", "shallow-cnn")!;
        Assert.Equal(6, cifar10.AccuracyRows.Count);
        var bn1 = cifar10.AccuracyRows.Single(r => r.Row == "BN-1");
        Assert.Equal(("BN", 0.001), (bn1.NormFamily, bn1.LearningRate));
        Assert.Equal([84.34, 86.49, 86.41, 86.90], bn1.Accuracies);
        Assert.Equal(0.005, cifar10.AccuracyRows.Single(r => r.Row == "UAN-2").LearningRate);
        Assert.Contains("Faye et al. 2024", cifar10.Source);

        Assert.Equal(6, PaperResults.Find("TINY-IMAGENET", "shallow-cnn")!.AccuracyRows.Count);
        Assert.Equal(69.65, PaperResults.Find("cifar100", "densenet100")!.MetricRows.Single(r => r.NormFamily == "UAN")
            .Accuracy);
        Assert.Equal(3, PaperResults.Find("cifar100", "densenet40")!.MetricRows.Count);
        Assert.Equal(2, PaperResults.Find("svhn", PaperResults.AdaMatch)!.MetricRows.Count);
        Assert.Null(PaperResults.Find("mnist", "shallow-cnn"));
        Assert.Null(PaperResults.Find("cifar10", "densenet40"));
    }
}

public class ReportWriterTests
{
    internal static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    [Fact]
    public void WritesTablesPaperReferenceAndPlots()
    {
        using var tmp = new TempDir();
        var runsDir = tmp.File("runs");
        SyntheticRuns.WriteGrid(runsDir, "cifar10");
        SyntheticRuns.WriteGrid(runsDir, "mnist", epochs: 3);
        var outDir = tmp.File("report");

        var summary = ReportWriter.Write(runsDir, outDir);
        Assert.Equal(24, summary.RunCount);
        Assert.Equal(8, summary.GroupCount);
        Assert.Empty(summary.Warnings);

        var md = File.ReadAllText(summary.ComparisonPath);
        Assert.Equal(Path.Combine(outDir, "comparison.md"), summary.ComparisonPath);
        int cifar = md.IndexOf("## cifar10 / shallow-cnn", StringComparison.Ordinal);
        int mnist = md.IndexOf("## mnist / shallow-cnn", StringComparison.Ordinal);
        Assert.True(cifar >= 0 && mnist > cifar);
        var cifarSection = md[cifar..mnist];
        var mnistSection = md[mnist..];

        Assert.Contains("### Best validation so far", cifarSection);
        Assert.Contains("### Last epoch", cifarSection);
        Assert.Contains("Paper (Faye et al. 2024), for reference — not produced here", cifarSection);
        Assert.Contains("| BN-1 | 0.001 | 84.34 | 86.49 | 86.41 | 86.90 |", cifarSection);
        Assert.DoesNotContain("for reference — not produced here", mnistSection);
        Assert.Contains("reports no numbers for mnist / shallow-cnn", mnistSection);
        Assert.Contains("| bn | 0.001 | n=3 | 3 (1, 2, 2, 3) |", mnistSection);
        Assert.Contains("Run folders used", md);
        Assert.Contains("`" + Path.Combine("cifar10", "bn-lr0.001-s1") + "`", md);

        Assert.Equal(4, summary.PlotPaths.Count);
        foreach (var png in summary.PlotPaths)
        {
            Assert.Equal(outDir, Path.GetDirectoryName(png));
            var bytes = File.ReadAllBytes(png);
            Assert.Equal(PngSignature, bytes.Take(8));
            Assert.True(bytes.Length > 10_000, $"{png}: only {bytes.Length} bytes");
            Assert.Contains($"]({Path.GetFileName(png)})", md);
        }
        Assert.Contains(summary.PlotPaths, p => Path.GetFileName(p) == "cifar10_shallow-cnn_test-accuracy.png");
        Assert.Contains(summary.PlotPaths, p => Path.GetFileName(p) == "mnist_shallow-cnn_train-loss.png");
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));
    }

    [Fact]
    public void CurvesAverageSeedsWithAMinMaxBand()
    {
        using var tmp = new TempDir();
        SyntheticRuns.WriteGrid(tmp.Path);
        var group = RunCollection.Load(tmp.Path).Groups[0]; // bn, lr 0.001
        var s = LearningCurves.Aggregate(group, m => m.TestAccuracy);
        Assert.Equal([1.0, 2, 3, 4], s.Epochs);
        Assert.Equal(0.65, s.Mean[0], 12);
        Assert.Equal(0.62, s.Min[0], 12);
        Assert.Equal(0.69, s.Max[0], 12);
    }
}

public class NamesTests
{
    [Theory]
    [InlineData("uan:k=3", "uan-k=3")]
    [InlineData("UAN-BatchStats", "UAN-BatchStats")]
    [InlineData("a b/c\\d*e?f\"g<h>i|j", "a-b-c-d-e-f-g-h-i-j")]
    [InlineData("mn:k=3,iters=2", "mn-k=3,iters=2")]
    public void FileNamesAreTheSameAndValidOnEveryOs(string label, string expected)
    {
        Assert.Equal(expected, Uan.Lab.Reporting.PanelGrid.FileSafe(label));
        // Windows' reserved characters, whatever the OS these tests run on.
        Assert.DoesNotContain(Uan.Lab.Reporting.PanelGrid.FileSafe(label), c => "<>:\"/\\|?*".Contains(c) || char.IsControl(c));
    }

    [Theory]
    [InlineData("uan:k=3", "uan:k=3")]
    [InlineData("UAN=uan:k=3", "UAN (uan:k=3)")]
    [InlineData("uan:k=3,eps=0.01", "uan:eps=0.01,k=3")]
    [InlineData("bn", "BN (bn)")]
    public void ANormIsShownWithoutSayingTheSameThingTwice(string text, string shown) =>
        Assert.Equal(shown, Uan.Lab.Training.NormChoice.Parse(text).Display);
}
