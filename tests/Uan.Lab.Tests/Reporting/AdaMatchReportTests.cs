using System.Globalization;
using Uan.Lab.Adaptation;
using Uan.Lab.Reporting;
using Uan.Lab.Tests.Data;
using Uan.Lab.Training;

namespace Uan.Lab.Tests.Reporting;

/// <summary>Synthetic AdaMatch run folders with test metrics chosen so the table's numbers can be worked out by hand.</summary>
internal static class SyntheticAdaMatch
{
    /// <summary>Test metrics of one finished epoch: source and target accuracy and macro F1 (fractions).</summary>
    public readonly record struct Metrics(double SourceAcc, double SourceF1, double TargetAcc, double TargetF1,
        double SecondsPerStep = 1);

    public static AdaMatchConfig Config(int seed, string? inputNorm = null) =>
        new() { Epochs = 2, StepsPerEpoch = 50, SourceBatch = 16, Seed = seed, Threads = seed, InputNorm = inputNorm };

    public static void Write(string dir, AdaMatchConfig config, IReadOnlyList<Metrics> epochs, string status = "completed") =>
        new AdaMatchResults
        {
            Config = config,
            StepsPerEpoch = config.StepsPerEpoch ?? 100,
            HorizonSteps = config.Epochs * (config.StepsPerEpoch ?? 100),
            Status = status,
            Epochs = epochs.Select((m, i) => new AdaMatchEpoch
            {
                Epoch = i + 1,
                SourceTest = new DomainMetrics { Accuracy = m.SourceAcc, F1 = m.SourceF1, Count = 100 },
                TargetTest = new DomainMetrics { Accuracy = m.TargetAcc, F1 = m.TargetF1, Count = 100 },
                SecondsPerStep = m.SecondsPerStep,
            }).ToList(),
        }.Save(dir);

    /// <summary>
    /// Two seeds of the default AdaMatch (last epoch: source 80 / 90 %, F1 70 / 80 %, target 20 / 30 %, F1 10 / 20 %;
    /// seconds per step 1 then 2, and 2.5 then 3.5), one seed with UAN on the input, and one broken AdaMatch file.
    /// </summary>
    public static void WriteSet(string root)
    {
        Write(Path.Combine(root, "adapt", "AdaMatch-s1"), Config(1),
            [new(0.50, 0.40, 0.10, 0.05, 1.0), new(0.80, 0.70, 0.20, 0.10, 2.0)]);
        Write(Path.Combine(root, "adapt", "AdaMatch-s2"), Config(2) with { Device = "cuda" },
            [new(0.60, 0.50, 0.15, 0.05, 2.5), new(0.90, 0.80, 0.30, 0.20, 3.5)]);
        Write(Path.Combine(root, "adapt", "AdaMatch+UAN-s1"), Config(1, "uan:k=2"),
            [new(0.30, 0.20, 0.08, 0.04), new(0.614, 0.571, 0.095, 0.077)]);
        Directory.CreateDirectory(Path.Combine(root, "adapt", "broken"));
        File.WriteAllText(Path.Combine(root, "adapt", "broken", RunRecord.FileName),
            "{ \"kind\": \"adamatch\", \"config\": { \"epochs\": \"many\" } }");
    }

    /// <summary>"85.0 ± 7.1": mean and sample standard deviation of percentages, computed here independently.</summary>
    public static string MeanStd(params double[] percents)
    {
        double mean = percents.Sum() / percents.Length;
        double std = Math.Sqrt(percents.Sum(p => (p - mean) * (p - mean)) / (percents.Length - 1));
        return string.Create(CultureInfo.InvariantCulture, $"{mean:F1} ± {std:F1}");
    }
}

public class AdaMatchTableTests
{
    [Fact]
    public void GroupsSeedsAndComputesMeanAndSampleStdAtTheLastEpoch()
    {
        using var tmp = new TempDir();
        SyntheticAdaMatch.WriteSet(tmp.Path);
        var runs = RunCollection.Load(tmp.Path);

        Assert.Empty(runs.Runs);
        Assert.Equal(3, runs.AdaMatchRuns.Count);
        var warning = Assert.Single(runs.Warnings);
        Assert.Contains(Path.Combine("adapt", "broken", RunRecord.FileName), warning);
        Assert.Contains("AdaMatch results file", warning);

        var table = AdaMatchTable.Build(runs);
        Assert.Empty(table.Warnings);
        Assert.Equal(["AdaMatch", "AdaMatch + UAN (input uan:k=2)"], table.Rows.Select(r => r.Label));
        Assert.Equal([2, 1], table.Groups.Select(g => g.Runs.Count));
        Assert.Equal([1, 2], table.Groups[0].Runs.Select(r => r.Results.Config.Seed));

        var plain = table.Rows[0];
        Assert.Equal(0.85, plain.SourceAccuracy!.Value.Mean, 12);
        Assert.Equal(Math.Sqrt(0.005), plain.SourceAccuracy!.Value.Std!.Value, 12);   // (0.05² + 0.05²) / 1
        Assert.Equal([100L], plain.Steps);                                              // 2 epochs × 50 steps
        Assert.Equal(
        [
            "AdaMatch", "mnist → syndigits", "wrn-16-2", "100", "n=2",
            SyntheticAdaMatch.MeanStd(80, 90), SyntheticAdaMatch.MeanStd(70, 80),
            SyntheticAdaMatch.MeanStd(20, 30), SyntheticAdaMatch.MeanStd(10, 20),
            "2.25", "",                                                                 // (1.5 + 3.0) / 2 s per step
        ], plain.Cells());
        Assert.Equal("85.0 ± 7.1", plain.Cells()[5]);

        // One seed: the mean alone.
        Assert.Equal(["61.4", "57.1", "9.5", "7.7"], table.Rows[1].Cells().Skip(5).Take(4));
    }

    [Fact]
    public void PaperRowsComeFromThePublishedDataAndAreLabelledAsThePapers()
    {
        Assert.Equal(2, AdaMatchTable.PaperRows.Count);
        foreach (var row in AdaMatchTable.PaperRows)
        {
            Assert.StartsWith("the paper, MNIST → SVHN, 100 epochs: AdaMatch", row.Label);
            Assert.Contains(row.SourceMetrics, PaperResults.AdaMatchRows);
            Assert.Contains(row.TargetMetrics, PaperResults.AdaMatchRows);
            Assert.Equal(row.SourceMetrics.NormFamily, row.TargetMetrics.NormFamily);
            Assert.Equal(("mnist", "svhn"), (row.SourceMetrics.Dataset, row.TargetMetrics.Dataset));
            Assert.All(row.Cells().Where(c => c is not ("—" or "")), c => Assert.Matches(@"^\*.+\*$", c));
        }
        Assert.EndsWith(": AdaMatch", AdaMatchTable.PaperRows[0].Label);
        Assert.EndsWith(": AdaMatch + UAN", AdaMatchTable.PaperRows[1].Label);

        var md = AdaMatchTable.Build(RunCollection.FromRuns("/runs", [])).ToMarkdown();
        foreach (var paper in PaperResults.AdaMatchRows)
        {
            string published = paper.Accuracy.ToString("F2", CultureInfo.InvariantCulture);
            Assert.Contains($"*{published}*", md);
        }
        Assert.Contains("| *the paper, MNIST → SVHN, 100 epochs: AdaMatch* | *mnist → svhn* | *wrn-28-2* |", md);
        Assert.Contains("§5.1.7", md);
        Assert.Contains("scikit-learn-style macro", md);
    }

    [Fact]
    public void RunsStoppedAtDifferentEpochsAreReadAtTheirOwnLastEpochWithAWarning()
    {
        using var tmp = new TempDir();
        var config = SyntheticAdaMatch.Config(1) with { Epochs = 3 };
        SyntheticAdaMatch.Write(tmp.File("s1"), config, [new(0.1, 0.1, 0.1, 0.1), new(0.8, 0.8, 0.2, 0.2)], "stopped");
        SyntheticAdaMatch.Write(tmp.File("s2"), config with { Seed = 2 },
            [new(0.1, 0.1, 0.1, 0.1), new(0.2, 0.2, 0.2, 0.2), new(0.9, 0.9, 0.3, 0.3)]);
        SyntheticAdaMatch.Write(tmp.File("s3"), config with { Seed = 3 }, [], "running");

        var runs = RunCollection.Load(tmp.Path);
        var unfinished = Assert.Single(runs.Warnings);
        Assert.Contains($"…/{Path.GetFileName(tmp.Path)}/s3", unfinished);
        Assert.Contains("no finished epoch yet (status running)", unfinished);

        var table = AdaMatchTable.Build(runs);
        var warning = Assert.Single(table.Warnings);
        Assert.Contains("different epochs", warning);
        Assert.Contains("s1: epoch 2", warning);
        Assert.Contains("s2: epoch 3", warning);

        var cells = Assert.Single(table.Rows).Cells();
        Assert.Equal("100–150", cells[3]);
        Assert.Equal("n=3", cells[4]);
        Assert.Equal(SyntheticAdaMatch.MeanStd(80, 90) + " (n=2)", cells[5]);
        Assert.Equal("1 running, 1 stopped", cells[10]);
    }

    [Fact]
    public void GroupsWithTheSameLabelAreToldApartByTheFieldsThatDiffer()
    {
        using var tmp = new TempDir();
        SyntheticAdaMatch.Write(tmp.File("a"), SyntheticAdaMatch.Config(1) with { LearningRate = 0.03 }, [new(0.8, 0.8, 0.2, 0.2)]);
        SyntheticAdaMatch.Write(tmp.File("b"), SyntheticAdaMatch.Config(1) with { LearningRate = 0.003 }, [new(0.8, 0.8, 0.2, 0.2)]);
        SyntheticAdaMatch.Write(tmp.File("c"), SyntheticAdaMatch.Config(1) with { Norm = "mn" }, [new(0.8, 0.8, 0.2, 0.2)]);

        var labels = AdaMatchTable.Build(RunCollection.Load(tmp.Path)).Rows.Select(r => r.Label).ToList();
        Assert.Equal(3, labels.Distinct().Count());
        Assert.Contains("AdaMatch, learningRate=0.03", labels);
        Assert.Contains("AdaMatch, learningRate=0.003", labels);
        Assert.Contains("AdaMatch + MN (norm mn)", labels);
    }

    [Fact]
    public void ReportHasTheAdaptationSectionTablePaperRowsAndPlot()
    {
        using var tmp = new TempDir();
        var runsDir = tmp.File("runs");
        SyntheticAdaMatch.WriteSet(runsDir);
        SyntheticRuns.WriteGrid(runsDir, "cifar10");
        var outDir = tmp.File("report");

        var summary = ReportWriter.Write(runsDir, outDir);
        Assert.Equal(12, summary.RunCount);
        Assert.Equal(3, summary.AdaMatchRunCount);
        Assert.Equal(2, summary.Adaptation.Rows.Count);
        Assert.Contains(summary.Warnings, w => w.Contains(Path.Combine("adapt", "broken", RunRecord.FileName)));

        var md = File.ReadAllText(summary.ComparisonPath);
        int classification = md.IndexOf("## cifar10 / shallow-cnn", StringComparison.Ordinal);
        int adaptation = md.IndexOf("## Domain adaptation (AdaMatch)", StringComparison.Ordinal);
        int used = md.IndexOf("## Runs used", StringComparison.Ordinal);
        Assert.True(classification >= 0 && adaptation > classification && used > adaptation);
        var section = md[adaptation..used];
        Assert.Contains($"| AdaMatch | mnist → syndigits | wrn-16-2 | 100 | n=2 | {SyntheticAdaMatch.MeanStd(80, 90)} |", section);
        Assert.Contains("| AdaMatch + UAN (input uan:k=2) |", section);
        Assert.Contains("| *the paper, MNIST → SVHN, 100 epochs: AdaMatch* |", section);
        Assert.Contains("| *the paper, MNIST → SVHN, 100 epochs: AdaMatch + UAN* |", section);
        Assert.Contains("SynDigits stands in for SVHN", section);
        Assert.Contains("](adaptation-accuracy.png)", section);
        Assert.Contains("`" + Path.Combine("adapt", "AdaMatch-s2") + "`", md[used..]);

        var png = Assert.Single(summary.PlotPaths, p => Path.GetFileName(p) == AdaMatchTable.PlotFileName);
        Assert.Equal(outDir, Path.GetDirectoryName(png));
        var bytes = File.ReadAllBytes(png);
        Assert.Equal(ReportWriterTests.PngSignature, bytes.Take(8));
        Assert.True(bytes.Length > 10_000, $"{png}: only {bytes.Length} bytes");
        Assert.Equal(3, summary.PlotPaths.Count);                                       // + cifar10's two curves
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));
    }

    [Fact]
    public void AdaMatchOnlyFolderGetsAReportWithoutClassificationTables()
    {
        using var tmp = new TempDir();
        SyntheticAdaMatch.WriteSet(tmp.Path);
        var summary = ReportWriter.Write(tmp.Path, tmp.File("report"));
        Assert.Equal((0, 3), (summary.RunCount, summary.AdaMatchRunCount));
        var md = File.ReadAllText(summary.ComparisonPath);
        Assert.Contains("no classification run", md);
        Assert.DoesNotContain("No readable results.json", md);
        Assert.DoesNotContain("### Best validation so far", md);
        Assert.Contains("## Domain adaptation (AdaMatch)", md);
        Assert.Equal([tmp.File("report", AdaMatchTable.PlotFileName)], summary.PlotPaths);
    }

    [Fact]
    public void AClassificationOnlyFolderHasNoAdaptationSection()
    {
        using var tmp = new TempDir();
        SyntheticRuns.WriteGrid(tmp.File("runs"));
        var summary = ReportWriter.Write(tmp.File("runs"), tmp.File("report"));
        Assert.Equal((12, 0), (summary.RunCount, summary.AdaMatchRunCount));
        Assert.Empty(summary.Adaptation.Rows);
        Assert.Empty(summary.Warnings);
        var md = File.ReadAllText(summary.ComparisonPath);
        Assert.DoesNotContain("AdaMatch", md);
        Assert.DoesNotContain("Domain adaptation", md);
        Assert.Contains("12 run(s) in 4 group(s). Accuracies in %", md);
        Assert.Equal(2, summary.PlotPaths.Count);
        Assert.False(File.Exists(tmp.File("report", AdaMatchTable.PlotFileName)));
    }
}
