using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Uan.Lab.Models;
using Uan.Lab.Training;

namespace Uan.Lab.Reporting;

/// <summary>A per-run quantity the verdicts compare.</summary>
/// <param name="Name">Name in tables ("test accuracy, last epoch").</param>
/// <param name="Unit">Unit of the displayed values and differences ("points", "steps", "").</param>
/// <param name="HigherIsBetter">True when a larger value is the better one.</param>
/// <param name="Value">The run's value (as stored: accuracies as fractions), or null when it has none.</param>
/// <param name="Scale">Display factor (100 for accuracies).</param>
/// <param name="Decimals">Decimals shown.</param>
public sealed record StudyMetric(string Name, string Unit, bool HigherIsBetter, Func<RunResults, double?> Value,
    double Scale, int Decimals)
{
    /// <summary>A value after <see cref="Scale"/>, invariant culture.</summary>
    public string Show(double v) => (v * Scale).ToString("F" + Decimals, CultureInfo.InvariantCulture);

    /// <summary>A difference after <see cref="Scale"/> with its sign ("+1.20", "-0.35", "0.00").</summary>
    public string Signed(double d) => StudyReport.Signed(d * Scale, Decimals);
}

/// <summary>One paired comparison of the verdicts: an arm against a reference on one metric.</summary>
/// <param name="Claim">Claim id ("1", "2", "3", "4", "batch").</param>
/// <param name="Where">Sub-grid (or grid) the arms belong to.</param>
/// <param name="Arm">The arm compared ("UAN", or "UAN (b8 − b64) − BN (b8 − b64)").</param>
/// <param name="Reference">The reference arm.</param>
/// <param name="Metric">The metric.</param>
/// <param name="IsClaim">True for the comparison that tests the paper's statement; false for context rows.</param>
/// <param name="ClaimedPositive">True when the statement says arm − reference &gt; 0.</param>
/// <param name="Pairs">The per-seed differences.</param>
public sealed record StudyComparison(string Claim, string Where, string Arm, string Reference, StudyMetric Metric,
    bool IsClaim, bool ClaimedPositive, PairedDifference Pairs)
{
    /// <summary>The verdict for the claimed direction.</summary>
    public Verdict Verdict => Pairs.VerdictFor(ClaimedPositive);

    /// <summary>"supported", "contradicted", "not decided at this size", "needs ≥ 2 seeds (has n)"; context rows say
    /// on which side of 0 the interval lies instead.</summary>
    public string VerdictText => Verdict switch
    {
        Verdict.NeedsSeeds => $"needs ≥ 2 seeds (has {Pairs.Count})",
        Verdict.NotDecided => "not decided at this size",
        Verdict.NoSpread => "not decided (no spread: every seed differs by the same amount)",
        _ when IsClaim => Verdict == Verdict.Supported ? "**supported**" : "**contradicted**",
        _ => Pairs.Low > 0 ? $"higher than {Reference}" : $"lower than {Reference}",
    };

    /// <summary>Seeds a decision would need, as an estimate from the observed spread, or why there is none.</summary>
    public string SeedsText => Verdict switch
    {
        Verdict.Supported or Verdict.Contradicted => "decided",
        Verdict.NeedsSeeds => "—",
        Verdict.NoSpread => "more, to see a spread",
        _ => Pairs.SeedsNeeded() is { } n ? $"≈ {n}"
            : Pairs.Mean == 0 ? "none (no mean difference)" : $"> {PairedDifference.MaxSeeds}",
    };

    /// <summary>"+1.20 [-0.50, +2.90]", or the mean alone with fewer than 2 pairs, or "—" with none.</summary>
    public string DifferenceText => Pairs.Count == 0 ? "—"
        : Pairs.Low is { } lo && Pairs.High is { } hi
            ? $"{Metric.Signed(Pairs.Mean)} [{Metric.Signed(lo)}, {Metric.Signed(hi)}]"
            : Metric.Signed(Pairs.Mean);

    /// <summary>"s1 +1.20, s2 -0.30".</summary>
    public string PerSeedText => Pairs.Count == 0 ? "—"
        : string.Join(", ", Pairs.Seeds.Select((s, i) => $"s{s} {Metric.Signed(Pairs.Differences[i])}"));
}

/// <summary>What <see cref="StudyReport.Write"/> produced.</summary>
/// <param name="VerdictsPath">Path of verdicts.md.</param>
/// <param name="Figures">PNG paths written.</param>
/// <param name="Comparisons">Every paired comparison, in the order of the report.</param>
/// <param name="Study">The study read.</param>
public sealed record StudyReportSummary(string VerdictsPath, IReadOnlyList<string> Figures,
    IReadOnlyList<StudyComparison> Comparisons, Study Study);

/// <summary>
/// The study's verdicts on the paper's claims (<c>uan report --study DIR</c>): for each claim, the paper's statement,
/// the comparison that tests it, mean ± std per arm, the per-seed paired difference to the reference with its 95 %
/// Student-t interval, and a verdict; wall times with the machine's load; figures. Deterministic: the same files give
/// the same Markdown, byte for byte.
/// </summary>
public static class StudyReport
{
    /// <summary>Name of the Markdown file.</summary>
    public const string FileName = "verdicts.md";

    /// <summary>Label of the reference arm.</summary>
    public const string Bn = "BN";
    /// <summary>Label of UAN in Paper mode, the arm the claims are about.</summary>
    public const string Uan = "UAN";
    /// <summary>Label of Mixture Normalization.</summary>
    public const string Mn = "MN";
    /// <summary>Label of UAN in Compat mode (the authors' layer as coded).</summary>
    public const string Compat = "UAN-Compat";

    /// <summary>Validation accuracies whose first crossing claim 1 measures.</summary>
    public static readonly IReadOnlyList<double> Thresholds = [0.80, 0.85];

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>First step at which validation accuracy reaches <paramref name="threshold"/>.</summary>
    public static StudyMetric StepsTo(double threshold) => new(
        string.Create(Inv, $"validation steps to {100 * threshold:0.#} %"), "steps", false,
        r => Convergence.StepsTo(Convergence.Points(r), threshold), 1, 0);

    /// <summary>Trapezoid area under the validation-accuracy curve divided by its span of steps.</summary>
    public static readonly StudyMetric ValidationArea = new("validation accuracy, area under the curve / steps", "points", true,
        r => Convergence.MeanAccuracy(Convergence.Points(r)), 100, 2);

    /// <summary>Test accuracy of the last epoch.</summary>
    public static readonly StudyMetric TestLast = new("test accuracy, last epoch", "points", true,
        r => r.Epochs.Count == 0 ? null : r.Epochs[^1].TestAccuracy, 100, 2);

    /// <summary>Test accuracy of the best-validation epoch (ties keep the earlier one).</summary>
    public static readonly StudyMetric TestBestVal = new("test accuracy, best-validation epoch", "points", true,
        r => r.Epochs.Count == 0 ? null : r.BestValTestAccuracyAt(r.Epochs[^1].Epoch), 100, 2);

    /// <summary>The probe's gradient variance (paper's definition), mean over tensors, averaged over epochs.</summary>
    public static readonly StudyMetric GradientMean = new("gradient variance, mean over tensors, epoch average", "", false,
        r => EpochAverage(r, g => g.PaperMean), 1, 3);

    /// <summary>The probe's gradient variance (paper's definition), max over tensors, averaged over epochs.</summary>
    public static readonly StudyMetric GradientMax = new("gradient variance, max over tensors, epoch average", "", false,
        r => EpochAverage(r, g => g.PaperMax), 1, 2);

    /// <summary>Mean validation accuracy in quarter <paramref name="q"/> (1–4) of training (<see cref="Convergence.QuarterMeans"/>).</summary>
    public static StudyMetric ValidationQuarter(int q) => new(
        string.Create(Inv, $"validation, quarter {q}"), "points", true,
        r => QuartersOf(r)?[q - 1], 100, 2);

    /// <summary>Change of the quarter means from quarter <paramref name="q"/> − 1 to <paramref name="q"/> (points).</summary>
    public static StudyMetric ValidationQuarterChange(int q) => new(
        string.Create(Inv, $"Q{q} − Q{q - 1} (points)"), "", true,
        r => QuartersOf(r) is { } m ? m[q - 1] - m[q - 2] : null, 100, 2);

    // The six quarter metrics of the Length section read the same four means; compute them once per run.
    private static readonly ConditionalWeakTable<RunResults, StrongBox<double[]?>> QuarterCache = new();

    private static double[]? QuartersOf(RunResults r) =>
        QuarterCache.GetValue(r, run => new(Convergence.QuarterMeans(Convergence.Points(run)))).Value;

    private static double? EpochAverage(RunResults r, Func<GradientSummary, double> value)
    {
        var values = r.Epochs.Where(e => e.Gradient is not null).Select(e => value(e.Gradient!)).Where(double.IsFinite).ToList();
        return values.Count == 0 ? null : values.Average();
    }

    /// <summary>"+1.20", "-0.35", and "0.00" when the rounded value is zero.</summary>
    public static string Signed(double v, int decimals)
    {
        var s = v.ToString("F" + decimals, Inv);
        if (s.TrimStart('-').Trim('0', '.').Length == 0) return s.TrimStart('-');
        return s.StartsWith('-') ? s : "+" + s;
    }

    /// <summary>Reads the study under <paramref name="studyDir"/> and writes verdicts.md and the figures into <paramref name="outDir"/>.</summary>
    public static StudyReportSummary Write(string studyDir, string outDir)
    {
        var study = Study.Load(studyDir);
        Directory.CreateDirectory(outDir);
        var figures = StudyFigures.Save(study, outDir);
        var (markdown, comparisons) = Markdown(study, figures.Select(Path.GetFileName).ToList()!);
        var path = Path.Combine(outDir, FileName);
        AtomicFile.WriteAllBytes(path, new UTF8Encoding(false).GetBytes(markdown));
        return new StudyReportSummary(path, figures, comparisons, study);
    }

    /// <summary>The Markdown of the verdicts and every comparison made, in report order.</summary>
    public static (string Markdown, IReadOnlyList<StudyComparison> Comparisons) Markdown(Study study, IReadOnlyList<string> figureFiles)
    {
        var all = new List<StudyComparison>();
        var body = new StringBuilder();

        Claim(body, all, "1", "UAN learns faster",
            "“This adaptive feature of UAN enhances gradient stability, resulting in faster learning” (Faye et al. 2024, abstract).",
            "validation accuracy is measured every third of an epoch (`valPoints`). Per run: the first step at which it " +
            "reaches 80 % and 85 % (fewer is faster; a pair where either run never reached the level is left out), and " +
            "the trapezoid area under the validation-accuracy curve between its first and last point divided by that " +
            "span of steps, i.e. the mean validation accuracy over training (larger is faster). The claim: UAN − BN < 0 " +
            "steps and > 0 area, within each sub-grid.",
            study, [.. Thresholds.Select(StepsTo), ValidationArea], [Bn]);
        Claim(body, all, "2", "UAN beats BN and MN in classification",
            "“UAN outperforms the classical methods by adapting to the target task and is effective in classification” " +
            "(Faye et al. 2024, abstract); the paper's shallow-CNN tables put UAN above BN and MN on CIFAR-10, CIFAR-100 " +
            "and Tiny ImageNet.",
            "test accuracy at the last epoch, and at the epoch of best validation accuracy (the protocol the paper " +
            "most likely reports). The claim: UAN − BN > 0 and UAN − MN > 0.",
            study, [TestLast, TestBestVal], [Bn, Mn]);
        Claim(body, all, "3", "Gradients are more stable with UAN",
            "“enhances gradient stability” (Faye et al. 2024, abstract); the paper shows gradient variances as its evidence.",
            "the probe at every epoch end gives the variance of each parameter tensor's gradient of Σ logits (the paper's " +
            "definition) on a fixed training batch; the mean and the max over tensors, averaged over the epochs. Lower " +
            "is more stable. The claim: UAN − BN < 0.",
            study, [GradientMean, GradientMax], [Bn]);
        AdaptationClaim(body, all, study);
        BatchStatement(body, all, study);
        CompatSection(body, study);
        Length(body, study);
        WallTimes(body, study);

        var md = new StringBuilder();
        md.Append("# Verdicts on the paper's claims\n\n");
        md.Append("Made by `uan report --study ").Append(RunCollection.DisplayPath(study.Root)).Append("` from the `results.json` of the ")
            .Append(study.UsedRuns.Count).Append(" finished run(s) in `").Append(RunCollection.DisplayPath(study.Root))
            .Append("` (grids: ").Append(study.Grids.Count == 0 ? "none" : string.Join(", ", study.Grids.Select(g => $"`{g}`")))
            .Append("); runs still in progress are not used. Every number is recomputed from those files.\n\n");
        md.Append("How to read: each comparison pairs the runs of two arms by seed and takes arm − reference per seed. ")
            .Append("The interval is the 95 % confidence interval of the mean difference, Student t with n − 1 degrees of ")
            .Append("freedom. Verdict: **supported** when it excludes 0 on the side the paper claims, **contradicted** when it ")
            .Append("excludes 0 on the other side, *not decided at this size* when it contains 0; with fewer than 2 paired ")
            .Append("seeds there is no interval, and when every seed differs by the same amount (steps to an accuracy are ")
            .Append("known only to the validation interval, so this happens) the interval has zero width and decides ")
            .Append("nothing. \"Seeds for a decision\" estimates, from the observed mean and spread, the ")
            .Append("smallest n with t(0.975, n − 1)·sd/√n < |mean difference|: how many seeds would decide if the ")
            .Append("spread stayed as observed. Accuracy differences are in percentage points.\n\n");
        md.Append("## Summary\n\n");
        var claims = all.Where(c => c.IsClaim).ToList();
        if (claims.Count == 0) md.Append("No comparison can be made yet: no sub-grid has both arms of a claim.\n\n");
        else
        {
            md.Append("| claim | where | comparison | metric | seeds | difference [95 % CI] | verdict | seeds for a decision |\n")
                .Append("|---|---|---|---|---|---|---|---|\n");
            foreach (var c in claims)
                md.Append($"| {c.Claim} | {c.Where} | {c.Arm} − {c.Reference} | {c.Metric.Name} | {c.Pairs.Count} | {c.DifferenceText} | {c.VerdictText} | {c.SeedsText} |\n");
            md.Append('\n');
        }
        md.Append(body);

        if (figureFiles.Count > 0)
        {
            md.Append("## Figures\n\n");
            foreach (var f in figureFiles) md.Append("![").Append(Path.GetFileNameWithoutExtension(f)).Append("](").Append(f).Append(")\n\n");
        }
        md.Append("## Runs\n\n");
        md.Append("Used (").Append(study.UsedRuns.Count).Append("): ")
            .Append(study.UsedRuns.Count == 0 ? "none" : string.Join(", ", study.UsedRuns.Select(r => $"`{r}`"))).Append(".\n\n");
        md.Append("In progress, not used (").Append(study.InProgress.Count).Append("): ")
            .Append(study.InProgress.Count == 0 ? "none" : string.Join(", ", study.InProgress)).Append(".\n");
        if (study.Warnings.Count > 0)
        {
            md.Append("\n## Warnings\n\n");
            foreach (var w in study.Warnings) md.Append("- ").Append(w).Append('\n');
        }
        return (md.ToString(), all);
    }

    private static void Claim(StringBuilder md, List<StudyComparison> all, string id, string title, string statement,
        string test, Study study, IReadOnlyList<StudyMetric> metrics, IReadOnlyList<string> references)
    {
        md.Append("## Claim ").Append(id).Append(": ").Append(title).Append("\n\n");
        md.Append("The paper: ").Append(statement).Append("\n\n");
        md.Append("The test: ").Append(test).Append(" Other arms are compared with BN for context: their rows say on which side of 0 the interval lies, not a verdict.\n\n");
        if (study.SubGrids.Count == 0) { md.Append("No finished classification run yet.\n\n"); return; }
        foreach (var sub in study.SubGrids)
        {
            md.Append("### ").Append(sub.Title).Append("\n\n");
            ArmTable(md, sub.Arms, metrics);
            var rows = new List<StudyComparison>();
            var absent = new[] { Uan }.Concat(references).Where(l => sub.Arm(l) is null).ToList();
            if (absent.Count > 0)
                md.Append("No finished ").Append(string.Join(" or ", absent)).Append(" run in this sub-grid: ")
                    .Append(sub.Arm(Uan) is null || references.All(r => sub.Arm(r) is null) ? "no claim comparison here.\n\n" : "the claim comparisons with it are missing.\n\n");
            foreach (var metric in metrics)
            {
                foreach (var reference in references)
                {
                    var r = sub.Arm(reference);
                    var uan = sub.Arm(Uan);
                    if (r is null || uan is null) continue;
                    rows.Add(Compare(id, sub.Short, uan, r, metric, isClaim: true));
                }
                var bn = sub.Arm(Bn);
                if (bn is null) continue;
                foreach (var arm in sub.Arms.Where(a => a != bn && !string.Equals(a.Label, Uan, StringComparison.OrdinalIgnoreCase)))
                    rows.Add(Compare(id, sub.Short, arm, bn, metric, isClaim: false));
            }
            if (rows.Count > 0) PairTable(md, rows);
            all.AddRange(rows);
        }
    }

    private static StudyComparison Compare(string claim, string where, StudyArm arm, StudyArm reference, StudyMetric metric,
        bool isClaim) =>
        new(claim, where, arm.Label, reference.Label, metric, isClaim, metric.HigherIsBetter,
            PairedDifference.Of(arm.Values(metric.Value), reference.Values(metric.Value)));

    private static void ArmTable(StringBuilder md, IReadOnlyList<StudyArm> arms, IReadOnlyList<StudyMetric> metrics)
    {
        md.Append("| arm | seeds |");
        foreach (var m in metrics) md.Append(' ').Append(m.Name).Append(m.Unit.Length > 0 ? $" ({Unit(m)})" : "").Append(" |");
        md.Append('\n').Append("|---|---|").Append(string.Concat(metrics.Select(_ => "---|"))).Append('\n');
        foreach (var arm in arms)
        {
            md.Append("| ").Append(arm.Label).Append(" | ").Append(string.Join(", ", arm.Seeds)).Append(" |");
            foreach (var m in metrics)
            {
                var values = arm.Values(m.Value);
                var stat = SeedStat.Of(values.Values.ToList());
                md.Append(' ').Append(stat is { } s ? s.Format(m.Scale, "F" + m.Decimals) : "—");
                int missing = arm.Runs.Count - values.Count;
                if (missing > 0)
                    md.Append(" (").Append(missing).Append(" of ").Append(arm.Runs.Count)
                        .Append(m.Unit == "steps" ? " never reached)" : " without a value)");
                md.Append(" |");
            }
            md.Append('\n');
        }
        md.Append('\n');
    }

    private static string Unit(StudyMetric m) => m.Unit == "points" ? "%" : m.Unit;

    private static void PairTable(StringBuilder md, IReadOnlyList<StudyComparison> rows)
    {
        md.Append("| comparison | metric | per-seed difference | mean [95 % CI] | verdict | seeds for a decision |\n")
            .Append("|---|---|---|---|---|---|\n");
        foreach (var c in rows)
            md.Append(c.IsClaim ? $"| **{c.Arm} − {c.Reference}** |" : $"| {c.Arm} − {c.Reference} |")
                .Append($" {c.Metric.Name} | {c.PerSeedText} | {c.DifferenceText} | {c.VerdictText} | {c.SeedsText} |\n");
        md.Append('\n');
    }

    private static void AdaptationClaim(StringBuilder md, List<StudyComparison> all, Study study)
    {
        md.Append("## Claim 4: UAN helps domain adaptation\n\n");
        md.Append("The paper: UAN “is effective in … domain adaptation” (Faye et al. 2024, abstract); its AdaMatch + UAN ")
            .Append("reaches 33.40 % on SVHN against AdaMatch's 25.08 % (the paper's numbers, MNIST → SVHN, WRN-28-2).\n\n");
        md.Append("The test (grid B): target test accuracy at each run's last epoch, arm − AdaMatch per seed; the claim: ")
            .Append("> 0 for the arms with UAN. The control: plain AdaMatch feeds x/255, while UAN on the input roughly ")
            .Append("standardises each channel, so where the grid has a fixed per-channel standardisation arm (input ")
            .Append("`std`), each UAN arm is also compared with it (UAN − standardisation > 0 if UAN helps beyond ")
            .Append("standardising). Source accuracy is shown for context.\n\n");
        if (study.AdaMatch.Count == 0)
        {
            md.Append("No runs yet: no finished AdaMatch run in this study folder.\n\n");
            return;
        }
        var target = new StudyMetric("target test accuracy, last epoch", "points", true, _ => null, 100, 2);
        foreach (var (grid, _, table) in study.AdaMatch)
        {
            md.Append("### ").Append(grid).Append("\n\n");
            md.Append("| arm | seeds | source test accuracy (%) | target test accuracy (%) |\n|---|---|---|---|\n");
            var values = new Dictionary<string, SortedDictionary<int, double>>();
            foreach (var g in table.Groups)
            {
                var t = new SortedDictionary<int, double>();
                var s = new List<double>();
                foreach (var r in g.Runs)
                    if (r.LastEpoch is { } e)
                    {
                        t.TryAdd(r.Results.Config.Seed, e.TargetTest.Accuracy);
                        s.Add(e.SourceTest.Accuracy);
                    }
                values[g.Label] = t;
                md.Append($"| {g.Label} | {string.Join(", ", g.Runs.Select(r => r.Results.Config.Seed))} | ")
                    .Append(SeedStat.Of(s) is { } ss ? ss.Format() : "—").Append(" | ")
                    .Append(SeedStat.Of(t.Values.ToList()) is { } ts ? ts.Format() : "—").Append(" |\n");
            }
            md.Append('\n');
            if (!values.TryGetValue("AdaMatch", out var reference))
            {
                md.Append("No paired comparison: no plain AdaMatch arm in this grid.\n\n");
                continue;
            }
            var rows = table.Groups.Where(g => g.Label != "AdaMatch")
                .Select(g => new StudyComparison("4", grid, g.Label, "AdaMatch", target,
                    StudyAdaMatchGrid.IsUanArm(g), true, PairedDifference.Of(values[g.Label], reference)))
                .ToList();
            if (table.Groups.FirstOrDefault(g => g.Key.InputNorm is { } input && InputNorms.IsStandardize(input)) is { } std)
                rows.AddRange(table.Groups.Where(StudyAdaMatchGrid.IsUanArm)
                    .Select(g => new StudyComparison("4", grid, g.Label, std.Label, target, true, true,
                        PairedDifference.Of(values[g.Label], values[std.Label]))));
            if (rows.Count > 0) PairTable(md, rows);
            all.AddRange(rows);
        }
    }

    private static void BatchStatement(StringBuilder md, List<StudyComparison> all, Study study)
    {
        md.Append("## The batch-size statement: BN depends on the mini-batch\n\n");
        md.Append("The paper: BN's drawbacks include “its dependence on mini-batch size” (Faye et al. 2024, abstract), which ")
            .Append("UAN is proposed to overcome.\n\n");
        md.Append("The test: the same arms at a small and a large batch, same learning rate and epochs (so the small batch ")
            .Append("takes proportionally more steps). Per seed, the change small − large of the test accuracy; the ")
            .Append("statement: BN's change < 0, and UAN's change − BN's change > 0 (UAN loses less than BN at the small ")
            .Append("batch). GN, which has no batch statistics, is context.\n\n");
        var pairs = study.SubGrids
            .GroupBy(s => (s.Dataset, s.Model, s.LearningRate))
            .Where(g => g.Select(s => s.BatchSize).Distinct().Count() >= 2)
            .ToList();
        if (pairs.Count == 0)
        {
            md.Append("No runs yet: no learning rate has finished runs at two batch sizes.\n\n");
            return;
        }
        foreach (var g in pairs)
        {
            var small = g.OrderBy(s => s.BatchSize).First();
            var large = g.OrderByDescending(s => s.BatchSize).First();
            string where = string.Create(Inv, $"{g.Key.Dataset}, lr {g.Key.LearningRate:G}");
            string change = string.Create(Inv, $"(b{small.BatchSize} − b{large.BatchSize})");
            md.Append("### ").Append(string.Create(Inv,
                $"{g.Key.Dataset} / {g.Key.Model}, lr {g.Key.LearningRate:G}: batch {small.BatchSize} against batch {large.BatchSize}")).Append("\n\n");
            var labels = small.Arms.Select(a => a.Label).Where(l => large.Arm(l) is not null).ToList();
            if (labels.Count == 0) { md.Append("No arm has finished runs at both batch sizes yet.\n\n"); continue; }
            var metrics = new[] { TestLast, TestBestVal };
            md.Append(string.Create(Inv, $"| arm | metric | batch {small.BatchSize} (%) | batch {large.BatchSize} (%) |\n|---|---|---|---|\n"));
            foreach (var l in labels)
                foreach (var m in metrics)
                    md.Append($"| {l} | {m.Name} | {Stat(small.Arm(l)!, m)} | {Stat(large.Arm(l)!, m)} |\n");
            md.Append('\n');
            var rows = new List<StudyComparison>();
            foreach (var m in metrics)
            {
                var changes = labels.ToDictionary(l => l, l => Changes(small.Arm(l)!, large.Arm(l)!, m));
                foreach (var l in labels)
                {
                    bool isBn = string.Equals(l, Bn, StringComparison.OrdinalIgnoreCase);
                    var own = new PairedDifference(changes[l].Keys.ToList(), changes[l].Values.ToList());
                    rows.Add(new StudyComparison("batch", where, $"{l} b{small.BatchSize}", $"{l} b{large.BatchSize}", m,
                        isBn, false, own));
                }
                var bn = labels.FirstOrDefault(l => string.Equals(l, Bn, StringComparison.OrdinalIgnoreCase));
                if (bn is null) continue;
                foreach (var l in labels.Where(l => l != bn))
                    rows.Add(new StudyComparison("batch", where, $"{l} {change}", $"{bn} {change}", m,
                        string.Equals(l, Uan, StringComparison.OrdinalIgnoreCase), true,
                        PairedDifference.Of(changes[l], changes[bn])));
            }
            PairTable(md, rows);
            all.AddRange(rows);
        }
    }

    private static string Stat(StudyArm arm, StudyMetric m) =>
        SeedStat.Of(arm.Values(m.Value).Values.ToList()) is { } s ? s.Format(m.Scale, "F" + m.Decimals) : "—";

    private static SortedDictionary<int, double> Changes(StudyArm small, StudyArm large, StudyMetric m)
    {
        var d = PairedDifference.Of(small.Values(m.Value), large.Values(m.Value));
        var map = new SortedDictionary<int, double>();
        for (int i = 0; i < d.Count; i++) map[d.Seeds[i]] = d.Differences[i];
        return map;
    }

    /// <summary>
    /// One sentence per sub-grid with a UAN-Compat arm, from the numbers: does the authors' layer as coded train better
    /// or worse than BN and than UAN Paper (test accuracy at the best-validation epoch, paired by seed).
    /// </summary>
    public static IReadOnlyList<string> CompatSentences(Study study)
    {
        var sentences = new List<string>();
        foreach (var sub in study.SubGrids)
        {
            var compat = sub.Arm(Compat);
            if (compat is null) continue;
            var parts = new List<string>();
            string? published = null;
            foreach (var (label, name) in new[] { (Bn, "BN"), (Uan, "UAN Paper") })
            {
                var reference = sub.Arm(label);
                if (reference is null) { parts.Add($"has no {name} run to compare with"); continue; }
                var d = PairedDifference.Of(compat.Values(TestBestVal.Value), reference.Values(TestBestVal.Value));
                if (d.Count < 2) { parts.Add($"needs ≥ 2 seeds paired with {name} (has {d.Count})"); continue; }
                if (label == Bn) published = PublishedGaps(sub.LearningRate, 100 * d.Low!.Value, 100 * d.High!.Value);
                string numbers = $"{TestBestVal.Signed(d.Mean)} points, 95 % CI [{TestBestVal.Signed(d.Low!.Value)}, {TestBestVal.Signed(d.High!.Value)}], {d.Count} seeds";
                parts.Add(d.VerdictFor(claimedPositive: true) switch
                {
                    Verdict.Supported => $"trains better than {name} ({numbers})",
                    Verdict.Contradicted => $"trains worse than {name} ({numbers})",
                    Verdict.NoSpread => $"differs from {name} by the same amount in every seed, which decides nothing ({numbers})",
                    _ => $"is not distinguishable from {name} at this size ({numbers})",
                });
            }
            sentences.Add($"{sub.Short}: UAN-Compat, the authors' layer as coded, {parts[0]} and {parts[1]}, in test accuracy at the best-validation epoch."
                + (published is null ? "" : " " + published));
        }
        return sentences;
    }

    /// <summary>
    /// Could the layer as coded explain the published tables? The paper's "UAN" rows were trained with that layer, so
    /// its published UAN − BN gaps (shallow CNN, same learning rate, epoch 100) are set beside this sub-grid's
    /// UAN-Compat − BN interval [<paramref name="low"/>, <paramref name="high"/>] (points): a gap above the interval is a
    /// gain the coded layer does not give here, one inside it is neither shown nor ruled out, one below it is smaller
    /// than the gain it gives here. Null when the paper has no rows at this learning rate.
    /// </summary>
    internal static string? PublishedGaps(double learningRate, double low, double high)
    {
        var gaps = PaperResults.ShallowCnnRows
            .Where(r => r.NormFamily == "UAN" && Math.Abs(r.LearningRate - learningRate) < 1e-12)
            .Select(u => (u.Dataset, Gap: u.Acc100 - PaperResults.ShallowCnnRows.Single(b => b.NormFamily == "BN"
                && b.Dataset == u.Dataset && b.LearningRate == u.LearningRate).Acc100))
            .ToList();
        if (gaps.Count == 0) return null;
        static string Where(double g, double lo, double hi) => g > hi ? "above" : g < lo ? "below" : "inside";
        var places = gaps.Select(g => Where(g.Gap, low, high)).ToList();
        // "a", "a and b", "a, b and c" (or "or" for the last).
        static string Series(IReadOnlyList<string> items, string last) =>
            items.Count == 1 ? items[0] : string.Join(", ", items.SkipLast(1)) + $" {last} " + items[^1];
        string Listed(string place) =>
            Series([.. gaps.Where((_, i) => places[i] == place).Select(g => Signed(g.Gap, 2))], place == "above" ? "or" : "and");
        string named = Series([.. gaps.Select(g => $"{Signed(g.Gap, 2)} ({DatasetTitle(g.Dataset)})")], "and");
        string lie = places.Distinct().Count() == 1
            ? (gaps.Count == 1 ? "it lies " : "every one lies ") + places[0] + " it"
            : string.Join(", ", gaps.Select((g, i) => $"{Signed(g.Gap, 2)} lies {places[i]} it"));
        string conclusion = places.All(p => p == "above")
            ? "the layer as coded gives no gain of the published size over BN here, so on this data it does not explain them"
            : places.All(p => p == "below")
                ? "the layer as coded gains more than that over BN here, so it could explain them"
                : places.Contains("above")
                    ? "on this data the layer as coded gives no gain over BN as large as " + Listed("above")
                      + (places.Contains("inside")
                          ? $", and {Listed("inside")} " + (places.Count(p => p == "inside") == 1 ? "is" : "are") + " neither shown nor ruled out"
                          : "")
                      + (places.Contains("below") ? $", while it gains more than {Listed("below")}" : "")
                    : "these runs neither show nor rule out that the layer as coded explains them";
        return string.Create(CultureInfo.InvariantCulture,
            $"The paper's \"UAN\" rows were trained with this layer: its shallow-CNN tables at lr {learningRate:G} put them above BN at epoch 100 by {named} points (the paper's numbers, one run each, on other datasets). ") +
            string.Create(CultureInfo.InvariantCulture,
                $"Beside the UAN-Compat − BN interval here, [{Signed(low, 2)}, {Signed(high, 2)}], {lie}: {conclusion}.");
    }

    private static string DatasetTitle(string dataset) => dataset switch
    {
        "cifar10" => "CIFAR-10", "cifar100" => "CIFAR-100", "tiny-imagenet" => "Tiny ImageNet", _ => dataset,
    };

    private static void CompatSection(StringBuilder md, Study study)
    {
        md.Append("## The authors' layer as coded (UAN-Compat)\n\n");
        var sentences = CompatSentences(study);
        if (sentences.Count == 0) md.Append("No finished UAN-Compat run yet.\n\n");
        foreach (var s in sentences) md.Append(s).Append("\n\n");
    }

    /// <summary>
    /// Is the run long enough? Mean validation accuracy per quarter of training per arm, and the quarter-to-quarter
    /// changes; a curve has flattened when its last quarter gains little on the third, compared with what the second
    /// gained on the first.
    /// </summary>
    private static void Length(StringBuilder md, Study study)
    {
        md.Append("## Length: do the validation curves flatten?\n\n");
        md.Append("Per run, the mean validation accuracy in each quarter of its training steps (Q1 … Q4, from the points ")
            .Append("measured every third of an epoch), and the change from one quarter to the next; mean ± std over seeds. ")
            .Append("A curve has flattened when Q4 − Q3 is small beside Q2 − Q1.\n\n");
        if (study.SubGrids.Count == 0) { md.Append("No finished classification run yet.\n\n"); return; }
        StudyMetric[] metrics = [.. Enumerable.Range(1, 4).Select(ValidationQuarter), ValidationQuarterChange(2), ValidationQuarterChange(4)];
        foreach (var sub in study.SubGrids)
        {
            md.Append("### ").Append(sub.Title).Append("\n\n");
            ArmTable(md, sub.Arms, metrics);
            double[] Means(StudyMetric m) => [.. sub.Arms.Select(a => SeedStat.Of(a.Values(m.Value).Values.ToList()))
                .Where(x => x is not null).Select(x => 100 * x!.Value.Mean)];
            var early = Means(metrics[4]);
            var late = Means(metrics[5]);
            if (early.Length == 0 || late.Length == 0) continue;
            md.Append(string.Create(Inv,
                $"Across the arms' means, Q4 − Q3 lies between {Signed(late.Min(), 2)} and {Signed(late.Max(), 2)} points; Q2 − Q1 between {Signed(early.Min(), 2)} and {Signed(early.Max(), 2)}.\n\n"));
        }
    }

    private static void WallTimes(StringBuilder md, Study study)
    {
        md.Append("## Wall times and the machine's load\n\n");
        if (study.SubGrids.Count == 0 && study.AdaMatch.Count == 0) { md.Append("No finished run yet.\n\n"); return; }
        int processors = study.SubGrids.SelectMany(s => s.Arms).SelectMany(a => a.Runs).Select(r => r.Results.Environment)
            .Concat(study.AdaMatch.SelectMany(g => g.Runs.AdaMatchRuns).Select(r => r.Results.Environment))
            .Select(e => e.ProcessorCount).DefaultIfEmpty(0).Max();
        md.Append("Per run: the wall time from start to end (mean ± std over seeds), the seconds per epoch (training and ")
            .Append("evaluation; an AdaMatch epoch is its steps per epoch), and the machine's 1-minute load average at the ")
            .Append("epoch ends (mean over all epochs of the arm, min–max; — where the results files predate it). The machine ")
            .Append("has ").Append(processors).Append(" logical processors and is shared: times are comparable only at similar load.\n\n");
        md.Append("| sub-grid | arm | runs | minutes per run | seconds per epoch | load average |\n|---|---|---|---|---|---|\n");
        // One row per arm: each run's record (its TotalSeconds, else the sum of its epochs) and its epochs' seconds
        // (training and evaluation) and load averages.
        void Row(string where, string label, IReadOnlyList<(RunRecord Record, List<(double Seconds, double? Load)> Epochs)> runs)
        {
            var minutes = runs.Select(r => (r.Record.TotalSeconds > 0 ? r.Record.TotalSeconds : r.Epochs.Sum(e => e.Seconds)) / 60).ToList();
            var epochs = runs.SelectMany(r => r.Epochs).ToList();
            var load = epochs.Select(e => e.Load).OfType<double>().ToList();
            md.Append($"| {where} | {label} | {runs.Count} | ")
                .Append(SeedStat.Of(minutes) is { } m ? m.Format(1, "F1") : "—").Append(" | ")
                .Append(epochs.Count == 0 ? "—" : epochs.Average(e => e.Seconds).ToString("F1", Inv)).Append(" | ")
                .Append(load.Count == 0 ? "—" : string.Create(Inv, $"{load.Average():F1} ({load.Min():F1}–{load.Max():F1})"))
                .Append(" |\n");
        }
        foreach (var sub in study.SubGrids)
            foreach (var arm in sub.Arms)
                Row(sub.Short, arm.Label, arm.Runs.Select(r => ((RunRecord)r.Results,
                    r.Results.Epochs.Select(e => (e.TrainSeconds + e.EvalSeconds, e.LoadAverage)).ToList())).ToList());
        foreach (var (grid, _, table) in study.AdaMatch)
            foreach (var g in table.Groups)
                Row(grid, g.Label, g.Runs.Select(r => ((RunRecord)r.Results,
                    r.Results.Epochs.Select(e => (e.TrainSeconds + e.EvalSeconds, e.LoadAverage)).ToList())).ToList());
        md.Append('\n');
    }
}
