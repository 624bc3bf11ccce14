using Uan.Lab.Reporting;
using Uan.Lab.Tests.Data;
using Uan.Lab.Training;

namespace Uan.Lab.Tests.Reporting;

/// <summary>
/// A fake study with numbers chosen so each verdict can be worked out by hand. Every run has 4 epochs whose validation
/// accuracy rises, so the best-validation epoch is the last one; the test accuracy of epoch e is
/// base + shift + 0.01·e, with the per-seed shift below.
/// </summary>
internal static class FakeStudy
{
    /// <summary>Test accuracy at epoch 4 before the seed shift (fractions).</summary>
    public static readonly Dictionary<(string Arm, int Batch), double> Final = new()
    {
        [("BN", 64)] = 0.80, [("UAN", 64)] = 0.82, [("MN", 64)] = 0.83, [("GN", 64)] = 0.79, [("UAN-Compat", 64)] = 0.77,
        [("BN", 8)] = 0.75, [("UAN", 8)] = 0.81,
    };

    /// <summary>UAN's extra shift per seed: UAN − BN = +1.9, +2.0, +2.1 points (mean 2, sd 0.1).</summary>
    public static double UanShift(int seed) => (seed - 2) * 0.001;

    /// <summary>MN's shift per seed: −2, 0, +2 points, a spread that leaves UAN − MN undecided.</summary>
    public static double MnShift(int seed) => seed switch { 1 => -0.02, 2 => 0.0, _ => 0.02 };

    public static void WriteRun(string dir, string arm, int batch, double lr, int seed, string status = "completed",
        int epochs = 4)
    {
        double shift = arm switch { "UAN" => UanShift(seed), "MN" => MnShift(seed), _ => 0 } + 0.003 * seed;
        double final = Final[(arm, batch)];
        var list = Enumerable.Range(1, epochs).Select(e => new EpochMetrics
        {
            Epoch = e,
            ValAccuracy = 0.6 + 0.05 * e,
            TestAccuracy = final + shift + 0.01 * (e - 4),
            TrainSeconds = 100 + seed,
            EvalSeconds = 20,
            LoadAverage = arm == "BN" ? 2.0 + e : 1.0,
            // Validation at steps 100·k (two per epoch): BN 0.55 + 0.05·k, UAN one point behind (0.50 + 0.05·k).
            ValPoints =
            [
                new ValPoint(200 * e - 100, (arm == "UAN" ? 0.50 : 0.55) + 0.05 * (2 * e - 1) + 0.001 * seed, 0.5),
                new ValPoint(200 * e, (arm == "UAN" ? 0.50 : 0.55) + 0.05 * (2 * e) + 0.001 * seed, 0.5),
            ],
            Gradient = new GradientSummary(50, arm == "UAN" ? 5 + 0.01 * seed : 6 + 0.5 * seed, 1e-4, 1e-5),
        }).ToList();
        new RunResults
        {
            Config = new RunConfig
            {
                Dataset = "fashion-mnist", Model = "shallow-cnn", Label = arm, Norm = arm.ToLowerInvariant(),
                LearningRate = lr, BatchSize = batch, Epochs = 4, Seed = seed,
            },
            Epochs = list,
            Status = status,
            TotalSeconds = 600 + 60 * seed,
            Environment = new EnvironmentInfo { ProcessorCount = 2 },
        }.Save(Path.Combine(dir, FormattableString.Invariant($"{arm}-lr{lr}-s{seed}")));
    }

    /// <summary>
    /// Grid g-b64 at lr 0.001: BN, UAN, MN seeds 1–3, GN seed 1 only, UAN-Compat seeds 1–2; at lr 0.005: BN seeds 1–2,
    /// UAN seed 1. Grid g-b8: BN and UAN seeds 1–3, and a BN seed 4 still running.
    /// </summary>
    public static void Write(string root)
    {
        string b64 = Path.Combine(root, "g-b64"), b8 = Path.Combine(root, "g-b8");
        foreach (var arm in new[] { "BN", "UAN", "MN" })
            for (int s = 1; s <= 3; s++) WriteRun(b64, arm, 64, 0.001, s);
        WriteRun(b64, "GN", 64, 0.001, 1);
        for (int s = 1; s <= 2; s++) WriteRun(b64, "UAN-Compat", 64, 0.001, s);
        for (int s = 1; s <= 2; s++) WriteRun(b64, "BN", 64, 0.005, s);
        WriteRun(b64, "UAN", 64, 0.005, 1);
        foreach (var arm in new[] { "BN", "UAN" })
            for (int s = 1; s <= 3; s++) WriteRun(b8, arm, 8, 0.001, s);
        WriteRun(b8, "BN", 8, 0.001, 4, status: "running", epochs: 2);
    }
}

public class StudyReportTests
{
    private static string Row(string markdown, params string[] parts) =>
        markdown.Split('\n').SingleOrDefault(l => parts.All(p => l.Contains(p, StringComparison.Ordinal)))
        ?? throw new Xunit.Sdk.XunitException($"no single line with {string.Join(" & ", parts)} in:\n{markdown}");

    /// <summary>
    /// The paper's UAN − BN gaps at epoch 100 (its README tables): lr 0.001 CIFAR-10 87.97 − 86.90 = +1.07,
    /// CIFAR-100 61.10 − 59.82 = +1.28, Tiny ImageNet 39.71 − 37.17 = +2.54; lr 0.005 +1.84, +4.00, +2.92.
    /// </summary>
    [Theory]
    [InlineData(0.001, -5.61, 5.57, "by +1.07 (CIFAR-10), +1.28 (CIFAR-100) and +2.54 (Tiny ImageNet) points",
        "[-5.61, +5.57], every one lies inside it: these runs neither show nor rule out that the layer as coded explains them.")]
    [InlineData(0.001, -1.0, 1.2, "by +1.07 (CIFAR-10)",
        "[-1.00, +1.20], +1.07 lies inside it, +1.28 lies above it, +2.54 lies above it: on this data the layer as coded gives no gain over BN as large as +1.28 or +2.54, and +1.07 is neither shown nor ruled out.")]
    [InlineData(0.001, -3.0, -0.5, "(Tiny ImageNet) points",
        "every one lies above it: the layer as coded gives no gain of the published size over BN here, so on this data it does not explain them.")]
    [InlineData(0.001, 3.0, 4.0, "at lr 0.001 put them",
        "every one lies below it: the layer as coded gains more than that over BN here, so it could explain them.")]
    [InlineData(0.005, 1.0, 3.0, "by +1.84 (CIFAR-10), +4.00 (CIFAR-100) and +2.92 (Tiny ImageNet) points",
        "+1.84 lies inside it, +4.00 lies above it, +2.92 lies inside it: on this data the layer as coded gives no gain over BN as large as +4.00, and +1.84 and +2.92 are neither shown nor ruled out.")]
    [InlineData(0.001, 1.1, 2.0, "by +1.07 (CIFAR-10)",
        "+1.07 lies below it, +1.28 lies inside it, +2.54 lies above it: on this data the layer as coded gives no gain over BN as large as +2.54, and +1.28 is neither shown nor ruled out, while it gains more than +1.07.")]
    [InlineData(0.001, 1.1, 1.2, "by +1.07 (CIFAR-10)",
        "+1.07 lies below it, +1.28 lies above it, +2.54 lies above it: on this data the layer as coded gives no gain over BN as large as +1.28 or +2.54, while it gains more than +1.07.")]
    public void PublishedGapsAreSetBesideTheCompatInterval(double lr, double low, double high, string gaps, string verdict)
    {
        string s = StudyReport.PublishedGaps(lr, low, high)!;
        Assert.Contains(gaps, s);
        Assert.EndsWith(verdict, s);
    }

    [Fact]
    public void NoPublishedGapsAtALearningRateThePaperDidNotUse() => Assert.Null(StudyReport.PublishedGaps(0.002, -1, 1));

    [Fact]
    public void VerdictsOfAConstructedStudyMatchHandComputedValues()
    {
        using var tmp = new TempDir();
        FakeStudy.Write(tmp.Path);
        var out1 = Path.Combine(tmp.Path, "out");
        var summary = StudyReport.Write(tmp.Path, out1);
        var md = File.ReadAllText(summary.VerdictsPath);

        // The study's grids, used runs and the run in progress.
        Assert.Equal(["g-b64", "g-b8"], summary.Study.Grids);
        Assert.Equal(3 * 3 + 1 + 2 + 2 + 1 + 6, summary.Study.UsedRuns.Count);
        Assert.Contains("g-b8/BN-lr0.001-s4 (status running, 2 of 4 epochs)", md);
        Assert.DoesNotContain(tmp.Path, md);

        // Claim 2, UAN − BN at the last epoch: +1.9, +2.0, +2.1 → mean 2.00, half-width 4.3027·0.1/√3 = 0.248.
        var last = Row(md, "| 2 | batch 64, lr 0.001 | UAN − BN | test accuracy, last epoch |");
        Assert.Contains("| 3 | +2.00 [+1.75, +2.25] | **supported** | decided |", last);
        Assert.Contains("| **UAN − BN** | test accuracy, best-validation epoch | s1 +1.90, s2 +2.00, s3 +2.10 |", md);
        // UAN − MN: MN is 1 point higher with per-seed shifts −2, 0, +2 against UAN's −0.1, 0, +0.1:
        // differences −1 + 1.9, −1, −1 − 1.9 = +0.9, −1.0, −2.9: mean −1.00, sd 1.9, half 4.3027·1.9/√3 = 4.72.
        var mn = Row(md, "| 2 | batch 64, lr 0.001 | UAN − MN | test accuracy, last epoch |");
        Assert.Contains("| 3 | -1.00 [-5.72, +3.72] | not decided at this size |", mn);
        // Seeds for a decision: smallest n with t(n−1)·1.9/√n < 1: n = 17 (2.1199·1.9/4.123 = 0.977), n = 16 gives 1.012.
        Assert.Contains("| ≈ 17 |", mn);
        // lr 0.005 has UAN seed 1 only: one pair, 0.82 − 0.80 − 0.001.
        Assert.Contains("| 1 | +1.90 | needs ≥ 2 seeds (has 1) | — |",
            Row(md, "| 2 | batch 64, lr 0.005 | UAN − BN | test accuracy, last epoch |"));
        // GN has one seed: a context row without an interval.
        Assert.Contains("needs ≥ 2 seeds (has 1)", Row(md, "| GN − BN | test accuracy, last epoch |"));

        // Claim 1: UAN's curve is BN's one validation point (100 steps) later, every seed: BN reaches 80 % at
        // k = 5 (0.80 + 0.001·s), UAN at k = 6: +100 in every seed, and the area is 5 points lower in every seed. No
        // spread: the interval has zero width, which decides nothing (Verdict.NoSpread).
        const string noSpread = "| not decided (no spread: every seed differs by the same amount) | more, to see a spread |";
        Assert.Contains("| 3 | +100 [+100, +100] " + noSpread,
            Row(md, "| 1 | batch 64, lr 0.001 | UAN − BN | validation steps to 80 % |"));
        Assert.Contains("| 3 | +100 [+100, +100] " + noSpread,
            Row(md, "| 1 | batch 64, lr 0.001 | UAN − BN | validation steps to 85 % |"));
        Assert.Contains("| 3 | -5.00 [-5.00, -5.00] " + noSpread,
            Row(md, "| 1 | batch 64, lr 0.001 | UAN − BN | validation accuracy, area under the curve / steps |"));
        // Arm table: steps to 80 % and 85 %, and the area: BN's mean over k = 1..8 of 0.55 + 0.05·k + 0.001·s,
        // trapezoid = (first + last)/2 for a straight line = 0.775 + 0.001·s → 77.70 ± 0.10.
        Assert.Contains("| BN | 1, 2, 3 | 500 ± 0 | 600 ± 0 | 77.70 ± 0.10 |", md);

        // Claim 3: UAN's mean gradient variance 5 + 0.01·s against BN's 6 + 0.5·s: differences −1.49, −1.98, −2.47.
        Assert.Contains("| 3 | -1.980 [-3.197, -0.763] | **supported** | decided |",
            Row(md, "| 3 | batch 64, lr 0.001 | UAN − BN | gradient variance, mean over tensors, epoch average |"));

        // Claim 4 has no runs yet.
        Assert.Contains("No runs yet: no finished AdaMatch run in this study folder.", md);

        // Batch size: BN loses 5 points from b64 to b8, UAN 1 point (same seed shifts at both sizes).
        Assert.Contains("| 3 | -5.00 [-5.00, -5.00] " + noSpread,
            Row(md, "| batch | fashion-mnist, lr 0.001 | BN b8 − BN b64 | test accuracy, last epoch |"));
        Assert.Contains("| 3 | +4.00 [+4.00, +4.00] " + noSpread,
            Row(md, "| batch | fashion-mnist, lr 0.001 | UAN (b8 − b64) − BN (b8 − b64) | test accuracy, last epoch |"));

        // UAN-Compat: 3 points below BN for both seeds (no spread), 5 points below UAN with −0.1, 0 seed shifts.
        Assert.Contains("UAN-Compat, the authors' layer as coded, differs from BN by the same amount in every seed, which decides " +
                        "nothing (-3.00 points, 95 % CI [-3.00, -3.00], 2 seeds) " +
                        "and trains worse than UAN Paper (-4.95 points, 95 % CI [-5.59, -4.31], 2 seeds)", md);
        // ... and the published UAN − BN gaps at lr 0.001 (all positive) lie above its interval [−3, −3].
        Assert.Contains("Beside the UAN-Compat − BN interval here, [-3.00, -3.00], every one lies above it: the layer as " +
                        "coded gives no gain of the published size over BN here", md);

        // Length: BN's validation points 0.55 + 0.05·k + 0.001·s at steps 100·k, k = 1..8; the quarters hold k = 1–2,
        // 3–4, 5–6, 7–8, so Q1 = 0.625 + 0.001·s (62.70 ± 0.10 over seeds 1–3) and each quarter is 10 points above the last.
        Assert.Contains("| BN | 1, 2, 3 | 62.70 ± 0.10 | 72.70 ± 0.10 | 82.70 ± 0.10 | 92.70 ± 0.10 | 10.00 ± 0.00 | 10.00 ± 0.00 |", md);
        Assert.Contains("| UAN | 1, 2, 3 | 57.70 ± 0.10 | 67.70 ± 0.10 |", md);
        Assert.Contains("Across the arms' means, Q4 − Q3 lies between +10.00 and +10.00 points; Q2 − Q1 between +10.00 and +10.00.", md);

        // Wall times: BN at b64 lr 0.001 runs 11, 12, 13 min; load 3–6 at the epoch ends.
        Assert.Contains("| batch 64, lr 0.001 | BN | 3 | 12.0 ± 1.0 | 122.0 | 4.5 (3.0–6.0) |", md);

        // The figures exist and are linked.
        // No AdaMatch run in this study: no adaptation figure.
        Assert.False(File.Exists(Path.Combine(out1, StudyFigures.AdaptationFile)));
        foreach (var f in new[] { StudyFigures.TestAccuracyFile, StudyFigures.ValidationFile, StudyFigures.GradientFile, StudyFigures.BatchSizeFile })
        {
            Assert.True(File.Exists(Path.Combine(out1, f)), f);
            Assert.Contains($"]({f})", md);
        }

        // A second report over the same files gives the same Markdown, byte for byte.
        var out2 = Path.Combine(tmp.Path, "out2");
        var again = StudyReport.Write(tmp.Path, out2);
        Assert.Equal(File.ReadAllBytes(summary.VerdictsPath), File.ReadAllBytes(again.VerdictsPath));
    }

    [Fact]
    public void AStudyWithoutRunsSaysSoForEveryClaim()
    {
        using var tmp = new TempDir();
        Directory.CreateDirectory(Path.Combine(tmp.Path, "empty-grid"));
        var (md, comparisons) = StudyReport.Markdown(Study.Load(tmp.Path), []);
        Assert.Empty(comparisons);
        Assert.Contains("No comparison can be made yet", md);
        Assert.Contains("No runs yet: no finished AdaMatch run", md);
        Assert.Contains("No runs yet: no learning rate has finished runs at two batch sizes.", md);
        Assert.Contains("No finished UAN-Compat run yet.", md);
    }

    [Theory]
    [InlineData(1.234, 2, "+1.23")]
    [InlineData(-1.236, 2, "-1.24")]
    [InlineData(-0.001, 2, "0.00")]
    [InlineData(0.0, 0, "0")]
    [InlineData(-94.0, 0, "-94")]
    public void SignedNumbersCarryTheirSignExceptZero(double v, int decimals, string expected) =>
        Assert.Equal(expected, StudyReport.Signed(v, decimals));
}

public class AdaptationVerdictTests
{
    internal static void WriteAdaMatch(string dir, string? inputNorm, int seed, double target, string status = "completed") =>
        new Uan.Lab.Adaptation.AdaMatchResults
        {
            Config = new Uan.Lab.Adaptation.AdaMatchConfig { Epochs = 1, StepsPerEpoch = 20, Seed = seed, InputNorm = inputNorm },
            StepsPerEpoch = 20, HorizonSteps = 20, Status = status,
            Epochs =
            [
                new Uan.Lab.Adaptation.AdaMatchEpoch
                {
                    Epoch = 1,
                    SourceTest = new Uan.Lab.Adaptation.DomainMetrics { Accuracy = 0.9, F1 = 0.9 },
                    TargetTest = new Uan.Lab.Adaptation.DomainMetrics { Accuracy = target, F1 = target },
                    TrainSeconds = 60 * seed, EvalSeconds = 6, LoadAverage = 2 + seed,
                },
            ],
        }.Save(Path.Combine(dir, $"{inputNorm switch { null => "AdaMatch", "std" => "AdaMatch+Std", _ => "AdaMatch+UAN" }}-s{seed}"));

    [Fact]
    public void GridBIsComparedWithPlainAdaMatchBySeed()
    {
        using var tmp = new TempDir();
        string grid = tmp.File("grid-b");
        // Target accuracy: AdaMatch 20, 22, 24 %; + UAN 25, 26, 30 %: differences +5, +4, +6 → mean 5, sd 1,
        // half-width 4.3027/√3 = 2.484. A fourth UAN seed still running is not used.
        double[] plain = [0.20, 0.22, 0.24], uan = [0.25, 0.26, 0.30];
        for (int s = 1; s <= 3; s++)
        {
            WriteAdaMatch(grid, null, s, plain[s - 1]);
            WriteAdaMatch(grid, "uan:k=2", s, uan[s - 1]);
        }
        WriteAdaMatch(grid, "uan:k=2", 4, 0.99, status: "running");
        var study = Study.Load(tmp.Path);
        var (md, comparisons) = StudyReport.Markdown(study, []);

        var c = Assert.Single(comparisons);
        Assert.Equal(("4", "AdaMatch + UAN (input uan:k=2)", "AdaMatch", true), (c.Claim, c.Arm, c.Reference, c.IsClaim));
        Assert.Equal(Verdict.Supported, c.Verdict);
        Assert.Contains("| 4 | grid-b | AdaMatch + UAN (input uan:k=2) − AdaMatch | target test accuracy, last epoch | 3 | " +
                        "+5.00 [+2.52, +7.48] | **supported** | decided |", md);
        Assert.Contains("| AdaMatch | 1, 2, 3 | 90.00 ± 0.00 | 22.00 ± 2.00 |", md);
        Assert.Contains("grid-b/AdaMatch+UAN-s4 (status running, 1 of 1 epochs)", md);
        // Wall times: seeds 1–3 take 66, 126, 186 s (no TotalSeconds, so the epochs' sum): 2.1 ± 1.0 min, 126.0 s
        // per epoch, load 3, 4, 5 at the epoch ends.
        Assert.Contains("| grid-b | AdaMatch | 3 | 2.1 ± 1.0 | 126.0 | 4.0 (3.0–5.0) |", md);
        Assert.Contains("| grid-b | AdaMatch + UAN (input uan:k=2) | 3 | 2.1 ± 1.0 | 126.0 | 4.0 (3.0–5.0) |", md);
        Assert.DoesNotContain("No runs yet: no finished AdaMatch run", md);

        // The adaptation figure exists for a study with AdaMatch runs, and is linked.
        var summary = StudyReport.Write(tmp.Path, tmp.File("out"));
        Assert.Contains(summary.Figures, f => Path.GetFileName(f) == StudyFigures.AdaptationFile);
        Assert.Contains($"]({StudyFigures.AdaptationFile})", File.ReadAllText(summary.VerdictsPath));
    }

    [Fact]
    public void UanOnTheInputIsAlsoComparedWithTheStandardisationControl()
    {
        using var tmp = new TempDir();
        string grid = tmp.File("grid-b");
        // Target accuracy: AdaMatch 20, 22, 24 %; + std 24, 27, 28 %; + UAN 25, 26, 30 %.
        double[] plain = [0.20, 0.22, 0.24], std = [0.24, 0.27, 0.28], uan = [0.25, 0.26, 0.30];
        for (int s = 1; s <= 3; s++)
        {
            WriteAdaMatch(grid, null, s, plain[s - 1]);
            WriteAdaMatch(grid, "std", s, std[s - 1]);
            WriteAdaMatch(grid, "uan:k=2", s, uan[s - 1]);
        }
        var (md, comparisons) = StudyReport.Markdown(Study.Load(tmp.Path), []);

        Assert.Equal([("AdaMatch + STD (input std)", "AdaMatch", false), ("AdaMatch + UAN (input uan:k=2)", "AdaMatch", true),
                         ("AdaMatch + UAN (input uan:k=2)", "AdaMatch + STD (input std)", true)],
            comparisons.Select(c => (c.Arm, c.Reference, c.IsClaim)));
        // UAN − std: +1, −1, +2 → mean 0.667, sd 1.528, half-width 4.3027·1.528/√3 = 3.795: not decided; a claim row,
        // so it is in the summary too.
        Assert.Contains("| 4 | grid-b | AdaMatch + UAN (input uan:k=2) − AdaMatch + STD (input std) | target test accuracy, last epoch | 3 | " +
                        "+0.67 [-3.13, +4.46] | not decided at this size |", md);
        // std − AdaMatch: +4, +5, +4 → mean 4.33, half-width 1.434: a context row, higher than AdaMatch.
        Assert.Contains("| AdaMatch + STD (input std) − AdaMatch | target test accuracy, last epoch | s1 +4.00, s2 +5.00, s3 +4.00 | " +
                        "+4.33 [+2.90, +5.77] | higher than AdaMatch |", md);
    }
}

public class ValidationCurveTests
{
    [Fact]
    public void RunsWithValidationPointsGetAValidationFigureLinkedFromTheReport()
    {
        using var tmp = new TempDir();
        FakeStudy.Write(tmp.Path);
        var summary = ReportWriter.Write(Path.Combine(tmp.Path, "g-b64"), tmp.File("report"));
        var name = LearningCurves.FilePrefix("fashion-mnist", "shallow-cnn") + LearningCurves.ValidationSuffix + ".png";
        var png = Assert.Single(summary.PlotPaths, p => Path.GetFileName(p) == name);
        Assert.Equal((byte)0x89, File.ReadAllBytes(png)[0]);
        Assert.Contains($"]({name})", File.ReadAllText(summary.ComparisonPath));
    }

    [Fact]
    public void RunsWithoutValidationPointsGetNone()
    {
        using var tmp = new TempDir();
        SyntheticRuns.WriteGrid(tmp.Path);
        var summary = ReportWriter.Write(tmp.Path, tmp.File("report"));
        Assert.DoesNotContain(summary.PlotPaths, p => p.EndsWith(LearningCurves.ValidationSuffix + ".png", StringComparison.Ordinal));
        // Nor, without training points (results files from before them), a per-step figure.
        Assert.DoesNotContain(summary.PlotPaths, p => p.EndsWith(LearningCurves.StepsSuffix + ".png", StringComparison.Ordinal));
    }

    [Fact]
    public void RunsWithTrainingPointsGetAPerStepFigureLinkedFromTheReport()
    {
        using var tmp = new TempDir();
        FakeStudy.Write(tmp.Path);
        var grid = Path.Combine(tmp.Path, "g-b64");
        foreach (var file in Directory.GetFiles(grid, RunRecord.FileName, SearchOption.AllDirectories))
        {
            var run = RunResults.Load(file);
            var epochs = run.Epochs.Select(m => m with
            {
                TrainPoints = [.. Enumerable.Range(1, 4).Select(k => new TrainPoint(200 * (m.Epoch - 1) + 50 * k, 2.0 / (m.Epoch + k), 0.5))],
            }).ToList();
            (run with { Epochs = epochs }).Save(Path.GetDirectoryName(file)!);
        }
        var summary = ReportWriter.Write(grid, tmp.File("report"));
        var name = LearningCurves.FilePrefix("fashion-mnist", "shallow-cnn") + LearningCurves.StepsSuffix + ".png";
        var png = Assert.Single(summary.PlotPaths, p => Path.GetFileName(p) == name);
        Assert.Equal((byte)0x89, File.ReadAllBytes(png)[0]);
        Assert.Contains($"]({name})", File.ReadAllText(summary.ComparisonPath));
    }

    [Theory]
    [InlineData(0, "0")]
    [InlineData(750, "750")]
    [InlineData(1000, "1k")]
    [InlineData(2500, "2.5k")]
    [InlineData(12000, "12k")]
    [InlineData(187_500, "187.5k")]
    [InlineData(1_200_000, "1.2M")]
    public void StepTicksAreShortAndReadable(double step, string label) => Assert.Equal(label, LearningCurves.StepLabel(step));
}
