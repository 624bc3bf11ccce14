using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;
using Uan.Lab.Adaptation;
using Uan.Lab.Training;

namespace Uan.Lab.Reporting;

/// <summary>AdaMatch runs that differ only by seed, threads and device.</summary>
/// <param name="Key">The configuration the runs share, with seed, threads and device blanked (see <see cref="KeyOf"/>).</param>
/// <param name="Label">Row label: <see cref="LabelOf"/>, extended when another group would have the same row name.</param>
/// <param name="Runs">The runs, ordered by seed, then folder.</param>
public sealed record AdaMatchGroup(AdaMatchConfig Key, string Label, IReadOnlyList<LoadedAdaMatchRun> Runs)
{
    /// <summary>The grouping key of <paramref name="config"/>: the configuration without seed, threads and device.</summary>
    public static AdaMatchConfig KeyOf(AdaMatchConfig config) => config with { Seed = 0, Threads = null, Device = "" };

    /// <summary>
    /// "AdaMatch" for the default network (no input norm, the default BatchNorm), otherwise "AdaMatch + " the norm
    /// family under study (of the input norm when there is one, else of the norm) and the specs that differ from the
    /// default: "AdaMatch + UAN (input uan:k=2)", "AdaMatch + MN (norm mn)"; a variant other than official is named
    /// after "AdaMatch": "AdaMatch [keras] + UAN (input uan:k=2)".
    /// </summary>
    public static string LabelOf(AdaMatchConfig config)
    {
        bool hasInput = !string.IsNullOrWhiteSpace(config.InputNorm);
        bool defaultNorm = string.Equals(config.Norm.Trim(), DefaultNorm, StringComparison.Ordinal);
        // The variant is named unless it is the default (official), so keras and official runs never share a label.
        string name = config.Official ? "AdaMatch" : $"AdaMatch [{config.Variant}]";
        if (!hasInput && defaultNorm) return name;
        var parts = new List<string>();
        if (hasInput) parts.Add($"input {config.InputNorm!.Trim()}");
        if (!defaultNorm) parts.Add($"norm {config.Norm.Trim()}");
        return $"{name} + {RunGroupKey.FamilyOf(hasInput ? config.InputNorm! : config.Norm)} ({string.Join(", ", parts)})";
    }

    private static readonly string DefaultNorm = new AdaMatchConfig().Norm;
}

/// <summary>
/// One row of the domain-adaptation table: a group of AdaMatch runs, each read at its own last finished epoch.
/// </summary>
/// <param name="Label">Row label (see <see cref="AdaMatchGroup.Label"/>).</param>
/// <param name="Source">Source dataset id.</param>
/// <param name="Target">Target dataset id.</param>
/// <param name="Model">Model id.</param>
/// <param name="Steps">The distinct numbers of training steps done (last finished epoch × steps per epoch), ascending;
/// more than one when the runs stopped at different epochs, empty when none finished an epoch.</param>
/// <param name="Seeds">Number of runs in the group.</param>
/// <param name="SourceAccuracy">Source test accuracy (fraction) over the runs with a finished epoch.</param>
/// <param name="SourceF1">Source test macro F1 (fraction).</param>
/// <param name="TargetAccuracy">Target test accuracy (fraction).</param>
/// <param name="TargetF1">Target test macro F1 (fraction).</param>
/// <param name="SecondsPerStep">Mean wall seconds per training step, or null with no finished epoch.</param>
/// <param name="Status">Counts of runs that are not "completed" ("1 running"), or empty.</param>
/// <param name="RunDirectories">The run folders of the group.</param>
public sealed record AdaMatchRow(
    string Label, string Source, string Target, string Model, IReadOnlyList<long> Steps, int Seeds,
    SeedStat? SourceAccuracy, SeedStat? SourceF1, SeedStat? TargetAccuracy, SeedStat? TargetF1,
    double? SecondsPerStep, string Status, IReadOnlyList<string> RunDirectories)
{
    /// <summary>The row as display strings, in the order of <see cref="AdaMatchTable.Header"/>.</summary>
    public IReadOnlyList<string> Cells() =>
    [
        Label,
        $"{Source} → {Target}",
        Model,
        Steps.Count == 0 ? "—" : Steps.Count == 1 ? Integer(Steps[0]) : $"{Integer(Steps[0])}–{Integer(Steps[^1])}",
        $"n={Seeds}",
        SeedStat.Cell(SourceAccuracy, Seeds, "F1"),
        SeedStat.Cell(SourceF1, Seeds, "F1"),
        SeedStat.Cell(TargetAccuracy, Seeds, "F1"),
        SeedStat.Cell(TargetF1, Seeds, "F1"),
        SecondsPerStep is { } t ? t.ToString("F2", CultureInfo.InvariantCulture) : "—",
        Status,
    ];

    private static string Integer(long v) => v.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// The paper's published AdaMatch numbers for one setup (<see cref="PaperResults.AdaMatchRows"/>), in the columns of
/// the domain-adaptation table.
/// </summary>
/// <param name="Label">"the paper, MNIST → SVHN, 100 epochs: AdaMatch + UAN".</param>
/// <param name="Model">The paper's network (WRN-28-2).</param>
/// <param name="SourceMetrics">The published source-domain row.</param>
/// <param name="TargetMetrics">The published target-domain row.</param>
public sealed record AdaMatchPaperRow(string Label, string Model, PaperMetricsRow SourceMetrics, PaperMetricsRow TargetMetrics)
{
    /// <summary>The row as display strings (italic, numbers as published), in the order of <see cref="AdaMatchTable.Header"/>.</summary>
    public IReadOnlyList<string> Cells() =>
    [
        Italic(Label),
        Italic($"{SourceMetrics.Dataset} → {TargetMetrics.Dataset}"),
        Italic(Model),
        "—",
        "—",
        Italic(F2(SourceMetrics.Accuracy)),
        Italic(F2(SourceMetrics.F1)),
        Italic(F2(TargetMetrics.Accuracy)),
        Italic(F2(TargetMetrics.F1)),
        "—",
        "",
    ];

    private static string Italic(string s) => $"*{s}*";
    private static string F2(double v) => v.ToString("F2", CultureInfo.InvariantCulture);
}

/// <summary>
/// The domain-adaptation table of <c>uan report</c>: AdaMatch runs grouped across seeds (configurations equal except
/// seed, threads and device), each read at its last finished epoch, as mean ± sample std over seeds; the paper's
/// published rows beside them; and a plot of source and target test accuracy against training steps.
/// </summary>
public sealed class AdaMatchTable
{
    private AdaMatchTable(IReadOnlyList<AdaMatchGroup> groups, IReadOnlyList<AdaMatchRow> rows, IReadOnlyList<string> warnings)
    {
        Groups = groups;
        Rows = rows;
        Warnings = warnings;
    }

    /// <summary>File name of the accuracy plot written by <see cref="SavePlot"/>.</summary>
    public const string PlotFileName = "adaptation-accuracy.png";

    /// <summary>Column names of <see cref="AdaMatchRow.Cells"/> and <see cref="AdaMatchPaperRow.Cells"/>.</summary>
    public static IReadOnlyList<string> Header { get; } =
    [
        "run", "source → target", "model", "steps", "seeds", "source test acc", "source macro F1", "target test acc",
        "target macro F1", "s/step", "status",
    ];

    /// <summary>Groups ordered by source, target, model, then label (plain AdaMatch first).</summary>
    public IReadOnlyList<AdaMatchGroup> Groups { get; }
    /// <summary>One row per group, in group order.</summary>
    public IReadOnlyList<AdaMatchRow> Rows { get; }
    /// <summary>Oddities found while building the rows (runs of a group at different epochs, repeated seeds).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>
    /// The paper's AdaMatch rows (<see cref="PaperResults.AdaMatchRows"/>), one per published setup: its source
    /// row (the dataset of <see cref="AdaMatchConfig.Paper"/>'s source) beside its target row.
    /// </summary>
    public static IReadOnlyList<AdaMatchPaperRow> PaperRows { get; } = BuildPaperRows();

    private static List<AdaMatchPaperRow> BuildPaperRows()
    {
        var paper = AdaMatchConfig.Paper;
        bool IsSource(PaperMetricsRow r) => string.Equals(r.Dataset, paper.Source, StringComparison.OrdinalIgnoreCase);
        var rows = new List<AdaMatchPaperRow>();
        foreach (var setup in PaperResults.AdaMatchRows.GroupBy(r => r.NormFamily))
        {
            var source = setup.Single(IsSource);
            var target = setup.Single(r => !IsSource(r));
            string name = setup.Key == "BN" ? "AdaMatch" : $"AdaMatch + {setup.Key}";
            rows.Add(new AdaMatchPaperRow(
                string.Create(CultureInfo.InvariantCulture,
                    $"the paper, {source.Dataset.ToUpperInvariant()} → {target.Dataset.ToUpperInvariant()}, {paper.Epochs} epochs: {name}"),
                paper.Model, source, target));
        }
        return rows;
    }

    /// <summary>Groups the AdaMatch runs of <paramref name="runs"/> and computes one row per group.</summary>
    public static AdaMatchTable Build(RunCollection runs)
    {
        var warnings = new List<string>();
        var keyed = runs.AdaMatchRuns
            .GroupBy(r => AdaMatchGroup.KeyOf(r.Results.Config))
            .Select(g => (Key: g.Key, Label: AdaMatchGroup.LabelOf(g.Key),
                Runs: g.OrderBy(r => r.Results.Config.Seed).ThenBy(r => r.Directory, StringComparer.Ordinal).ToList()))
            .OrderBy(g => g.Key.Source, StringComparer.Ordinal)
            .ThenBy(g => g.Key.Target, StringComparer.Ordinal)
            .ThenBy(g => g.Key.Model, StringComparer.Ordinal)
            .ThenBy(g => g.Label == "AdaMatch" ? 0 : 1)
            .ThenBy(g => g.Label, StringComparer.Ordinal)
            .ToList();
        var labels = Disambiguate(keyed.Select(g => (g.Key, g.Label)).ToList());
        var groups = keyed.Select((g, i) => new AdaMatchGroup(g.Key, labels[i], g.Runs)).ToList();

        var rows = new List<AdaMatchRow>();
        foreach (var group in groups)
        {
            string Relative(LoadedAdaMatchRun r) => Path.GetRelativePath(runs.Root, r.Directory);
            var finished = group.Runs.Where(r => r.LastEpoch is not null).ToList();
            SeedStat? Stat(Func<AdaMatchEpoch, double> value) => SeedStat.Of(finished.Select(r => value(r.LastEpoch!)).ToList());

            if (finished.Select(r => r.LastEpoch!.Epoch).Distinct().Count() > 1)
                warnings.Add($"{group.Label}: runs stopped at different epochs ({string.Join(", ",
                    finished.Select(r => $"{Relative(r)}: epoch {r.LastEpoch!.Epoch}"))}); each is read at its own last finished epoch");
            foreach (var dup in group.Runs.GroupBy(r => r.Results.Config.Seed).Where(g => g.Count() > 1))
                warnings.Add($"AdaMatch {group.Label}, seed {dup.Key}: {dup.Count()} runs ({string.Join(", ",
                    dup.Select(Relative))}); all are averaged as separate repeats");

            var seconds = finished.Select(r => r.Results.Epochs.Average(m => m.SecondsPerStep)).ToList();
            rows.Add(new AdaMatchRow(group.Label, group.Key.Source, group.Key.Target, group.Key.Model,
                finished.Select(r => r.StepsAt(r.LastEpoch!.Epoch)).Distinct().Order().ToList(), group.Runs.Count,
                Stat(m => m.SourceTest.Accuracy), Stat(m => m.SourceTest.F1),
                Stat(m => m.TargetTest.Accuracy), Stat(m => m.TargetTest.F1),
                seconds.Count > 0 ? seconds.Average() : null,
                ComparisonTable.StatusSummary(group.Runs.Select(r => r.Results.Status)),
                group.Runs.Select(r => r.Directory).ToList()));
        }
        return new AdaMatchTable(groups, rows, warnings);
    }

    /// <summary>
    /// Labels for <paramref name="groups"/> (in order): each group's own label, followed by the configuration fields
    /// that tell it apart when another group of the same source, target and model has the same label
    /// ("AdaMatch, learningRate=0.003").
    /// </summary>
    private static List<string> Disambiguate(IReadOnlyList<(AdaMatchConfig Key, string Label)> groups)
    {
        var labels = groups.Select(g => g.Label).ToList();
        var clashes = Enumerable.Range(0, groups.Count)
            .GroupBy(i => (groups[i].Label, groups[i].Key.Source, groups[i].Key.Target, groups[i].Key.Model))
            .Where(g => g.Count() > 1);
        foreach (var clash in clashes)
        {
            var fields = clash.ToDictionary(i => i, i => Fields(groups[i].Key));
            var names = fields.Values.SelectMany(f => f.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
            var differing = names.Where(n => fields.Values.Select(f => f.GetValueOrDefault(n, "null")).Distinct().Count() > 1).ToList();
            foreach (var i in clash)
                labels[i] += ", " + string.Join(", ", differing.Select(n => $"{n}={fields[i].GetValueOrDefault(n, "null")}"));
        }
        return labels;
    }

    /// <summary>The configuration's JSON fields as written to results.json, without the derived target batch.</summary>
    private static Dictionary<string, string> Fields(AdaMatchConfig config)
    {
        var derived = RunRecord.Json.PropertyNamingPolicy!.ConvertName(nameof(AdaMatchConfig.TargetBatch));
        return JsonSerializer.SerializeToElement(config, RunRecord.Json).EnumerateObject()
            .Where(p => p.Name != derived)
            .ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.GetRawText());
    }

    /// <summary>
    /// The table (our rows, then the paper's in italics) as GitHub Markdown, followed by notes on how to read it.
    /// </summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append(ComparisonTable.MarkdownTable(Header, Rows.Select(r => r.Cells()).Concat(PaperRows.Select(r => r.Cells()))));
        sb.Append('\n');
        sb.Append("- Ours: test accuracy and macro F1 in % at each run's last finished epoch, mean ± sample std over ")
            .Append("seeds (the mean alone for one seed; \"(n=k)\" when only k runs have a finished epoch); steps = that ")
            .Append("epoch × the steps per epoch; s/step is the mean wall time of a training step. Runs are grouped when ")
            .Append("their configurations differ only in seed, threads and device.\n");
        sb.Append("- Rows in italics are the paper's published numbers, for reference — not produced here. Its ")
            .Append("precision/recall/F1 are not standard macro metrics (spec Part B §5.1.7), ")
            .Append("while ours are scikit-learn-style macro (per-class, then the mean), so the F1 columns do not compare ")
            .Append("one-to-one.\n");
        var paperTargets = PaperRows.Select(r => r.TargetMetrics.Dataset).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var otherTargets = Rows.Select(r => r.Target)
            .Where(t => !paperTargets.Contains(t, StringComparer.OrdinalIgnoreCase))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        sb.Append("- Our target is whatever each run names in the source → target column");
        if (otherTargets.Count > 0)
        {
            sb.Append(": ").Append(string.Join(", ", otherTargets)).Append(", not ")
                .Append(string.Join(", ", paperTargets.Select(t => t.ToUpperInvariant())));
            if (otherTargets.Contains("syndigits", StringComparer.OrdinalIgnoreCase))
                sb.Append(" (SynDigits stands in for SVHN here)");
            sb.Append(", so the paper's target columns are a reference, not a like-for-like comparison");
        }
        sb.Append(".\n");
        if (PaperResults.Find(PaperRows[0].TargetMetrics.Dataset, PaperResults.AdaMatch) is { } paper)
        {
            foreach (var note in paper.Notes) sb.Append("- The paper: ").Append(note).Append('\n');
            sb.Append("- Source: ").Append(paper.Source).Append(".\n");
        }
        return sb.ToString();
    }

    private sealed record Panel(string Title, Func<AdaMatchEpoch, double> Value, Func<AdaMatchConfig, string> Dataset);

    private static readonly Panel[] Panels =
    [
        new("source", m => m.SourceTest.Accuracy, c => c.Source),
        new("target", m => m.TargetTest.Accuracy, c => c.Target),
    ];

    /// <summary>
    /// The mean, min and max over the runs of <paramref name="group"/> of <paramref name="value"/> (a fraction, shown
    /// in %) at each number of training steps reached (epoch × steps per epoch).
    /// </summary>
    public static CurveSeries Aggregate(AdaMatchGroup group, Func<AdaMatchEpoch, double> value) =>
        LearningCurves.Aggregate(group.Runs.SelectMany(r =>
            r.Results.Epochs.Select(m => ((double)r.StepsAt(m.Epoch), 100 * value(m)))));

    /// <summary>
    /// Writes <see cref="PlotFileName"/> into <paramref name="dir"/> (via a temporary file and a rename): source and
    /// target test accuracy (%) against training steps, one line per group (mean over seeds, min–max band with
    /// several seeds). Returns its path, or null when no run has finished an epoch.
    /// </summary>
    public string? SavePlot(string dir, int panelWidth = 640, int panelHeight = 480)
    {
        if (!Groups.Any(g => g.Runs.Any(r => r.LastEpoch is not null))) return null;
        bool oneSetup = Groups.Select(g => (g.Key.Source, g.Key.Target, g.Key.Model)).Distinct().Count() == 1;
        var plots = new List<Plot?>();
        foreach (var panel in Panels)
        {
            var plot = new Plot();
            var palette = new ScottPlot.Palettes.Category10();
            for (int i = 0; i < Groups.Count; i++)
            {
                var group = Groups[i];
                var series = Aggregate(group, panel.Value);
                if (series.Epochs.Length == 0) continue;
                string legend = oneSetup ? group.Label
                    : $"{group.Label}, {group.Key.Source} → {group.Key.Target}, {group.Key.Model}";
                LearningCurves.AddCurve(plot, series, palette.GetColor(i), $"{legend} (n={group.Runs.Count})",
                    band: group.Runs.Count > 1);
            }
            var datasets = Groups.Select(g => panel.Dataset(g.Key)).Distinct(StringComparer.Ordinal).ToList();
            plot.Title(datasets.Count == 1 ? $"{panel.Title} ({datasets[0]}): test accuracy" : $"{panel.Title}: test accuracy");
            plot.XLabel("training steps");
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
            plot.YLabel("test accuracy (%)");
            plot.ShowLegend(Edge.Bottom); // below the axes: the curves of short runs cross anywhere
            plots.Add(plot);
        }
        bool several = Groups.Any(g => g.Runs.Count > 1);
        var path = Path.Combine(dir, PlotFileName);
        PanelGrid.Save(path, PanelGrid.Render(plots, 2, panelWidth, panelHeight,
            "AdaMatch: test accuracy against training steps" + (several ? " (mean over seeds, band = min–max)" : "")));
        return path;
    }
}
