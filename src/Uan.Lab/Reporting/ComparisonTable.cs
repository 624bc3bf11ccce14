using System.Globalization;
using System.Text;
using Uan.Lab.Training;

namespace Uan.Lab.Reporting;

/// <summary>Which epoch's test accuracy stands for "accuracy at epoch e".</summary>
public enum AccuracyProtocol
{
    /// <summary>
    /// Test accuracy of the best-validation epoch among epochs 1..e (ties keep the earlier epoch): what the paper most
    /// likely reports, since its numbers come from the best-validation checkpoint (spec Part B §4.1).
    /// </summary>
    BestValSoFar,

    /// <summary>Test accuracy of epoch e itself.</summary>
    LastEpoch,
}

/// <summary>Mean over seeds of one quantity, with the sample standard deviation when there are two or more.</summary>
/// <param name="Mean">Mean over the runs that have a value.</param>
/// <param name="Std">Sample standard deviation (n − 1 denominator), or null for a single value.</param>
/// <param name="Count">How many runs contributed.</param>
public readonly record struct SeedStat(double Mean, double? Std, int Count)
{
    /// <summary>The statistic of <paramref name="values"/>, or null when there are none.</summary>
    public static SeedStat? Of(IReadOnlyCollection<double> values)
    {
        if (values.Count == 0) return null;
        double mean = values.Average();
        if (values.Count == 1) return new SeedStat(mean, null, 1);
        double ss = values.Sum(v => (v - mean) * (v - mean));
        return new SeedStat(mean, Math.Sqrt(ss / (values.Count - 1)), values.Count);
    }

    /// <summary>"84.34 ± 0.52" (or "84.34" for one value) after multiplying by <paramref name="scale"/>.</summary>
    public string Format(double scale = 100, string format = "F2")
    {
        var mean = (Mean * scale).ToString(format, CultureInfo.InvariantCulture);
        return Std is { } s ? $"{mean} ± {(s * scale).ToString(format, CultureInfo.InvariantCulture)}" : mean;
    }

    /// <summary>
    /// A table cell: "—" when <paramref name="stat"/> is null, otherwise <see cref="Format"/> in % with
    /// <paramref name="format"/>, followed by "(n=k)" when fewer than the group's <paramref name="runs"/> contributed.
    /// </summary>
    public static string Cell(SeedStat? stat, int runs, string format = "F2") =>
        stat is { } s ? s.Format(100, format) + (s.Count < runs ? $" (n={s.Count})" : "") : "—";
}

/// <summary>One row of the comparison: a group of runs differing only by seed.</summary>
/// <param name="Dataset">Dataset id.</param>
/// <param name="Model">Model id.</param>
/// <param name="Label">Row label (see <see cref="RunGroupKey.LabelOf"/>).</param>
/// <param name="NormFamily">BN, MN, UAN, ...</param>
/// <param name="LearningRate">Learning rate.</param>
/// <param name="Seeds">Number of runs in the group.</param>
/// <param name="Epochs">Configured epochs (the largest when the runs disagree).</param>
/// <param name="CheckpointEpochs">Epochs at 25/50/75/100 % of <paramref name="Epochs"/>.</param>
/// <param name="Accuracy">Test accuracy (fraction) at each checkpoint, over the runs that reached it; null if none.</param>
/// <param name="FinalF1">Macro F1 (fraction) of the epoch the protocol selects at each run's last finished epoch.</param>
/// <param name="FinalTrainAccuracy">Training accuracy (fraction, train mode, augmented batches) of each run's last
/// finished epoch: how well the network fits, free of eval-mode statistics.</param>
/// <param name="SecondsPerEpoch">Mean wall seconds per epoch (training + evaluation), or null with no epochs.</param>
/// <param name="Status">Counts of runs that are not "completed" ("1 running"), or empty.</param>
/// <param name="RunDirectories">The run folders of the group.</param>
public sealed record ComparisonRow(
    string Dataset, string Model, string Label, string NormFamily, double LearningRate,
    int Seeds, int Epochs, IReadOnlyList<int> CheckpointEpochs, IReadOnlyList<SeedStat?> Accuracy,
    SeedStat? FinalF1, SeedStat? FinalTrainAccuracy, double? SecondsPerEpoch, string Status, IReadOnlyList<string> RunDirectories)
{
    /// <summary>The row as display strings, in the order of <see cref="ComparisonTable.Header"/>.</summary>
    public IReadOnlyList<string> Cells()
    {
        var cells = new List<string>
        {
            Label,
            LearningRate.ToString("G", CultureInfo.InvariantCulture),
            $"n={Seeds}",
            $"{Epochs} ({string.Join(", ", CheckpointEpochs)})",
        };
        foreach (var a in Accuracy) cells.Add(SeedStat.Cell(a, Seeds));
        cells.Add(FinalF1 is { } f ? (f.Mean * 100).ToString("F2", CultureInfo.InvariantCulture) : "—");
        cells.Add(FinalTrainAccuracy is { } ta ? ta.Format() : "—");
        cells.Add(SecondsPerEpoch is { } t ? t.ToString("F1", CultureInfo.InvariantCulture) : "—");
        cells.Add(Status);
        return cells;
    }
}

/// <summary>
/// Test accuracy at 25/50/75/100 % of the configured epochs for every group of runs, as mean ± sample std over seeds,
/// under one <see cref="AccuracyProtocol"/>; rendered as GitHub Markdown or as plain rows.
/// </summary>
public sealed class ComparisonTable
{
    private ComparisonTable(AccuracyProtocol protocol, IReadOnlyList<ComparisonRow> rows)
    {
        Protocol = protocol;
        Rows = rows;
    }

    /// <summary>The fractions of training the table reports, matching the paper's 25/50/75/100 of 100 epochs.</summary>
    public static IReadOnlyList<double> Fractions { get; } = [0.25, 0.5, 0.75, 1.0];

    /// <summary>Column names of <see cref="ComparisonRow.Cells"/>.</summary>
    public static IReadOnlyList<string> Header { get; } =
        ["norm", "lr", "seeds", "epochs (25/50/75/100 %)", "25 %", "50 %", "75 %", "100 %", "F1 macro", "train acc (last)", "s/epoch", "status"];

    /// <summary>The protocol the accuracies follow.</summary>
    public AccuracyProtocol Protocol { get; }

    /// <summary>Rows in the order of <see cref="RunCollection.Groups"/>.</summary>
    public IReadOnlyList<ComparisonRow> Rows { get; }

    /// <summary>
    /// The epoch at <paramref name="fraction"/> of <paramref name="epochs"/>: max(1, round(p·E)), halves rounded up,
    /// so E = 10 gives 3, 5, 8, 10 and E = 3 gives 1, 2, 2, 3.
    /// </summary>
    public static int EpochAt(double fraction, int epochs) =>
        Math.Max(1, (int)Math.Round(fraction * epochs, MidpointRounding.AwayFromZero));

    /// <summary>The epochs at <see cref="Fractions"/> of <paramref name="epochs"/>.</summary>
    public static IReadOnlyList<int> CheckpointEpochs(int epochs) => Fractions.Select(p => EpochAt(p, epochs)).ToList();

    /// <summary>
    /// The epoch whose test numbers stand for epoch <paramref name="epoch"/> under <paramref name="protocol"/>, or null
    /// if the run has not reached it. For <see cref="AccuracyProtocol.BestValSoFar"/> this is the same selection as
    /// <see cref="RunResults.BestValTestAccuracyAt"/>.
    /// </summary>
    public static EpochMetrics? SelectEpoch(RunResults run, int epoch, AccuracyProtocol protocol)
    {
        if (run.Epochs.All(m => m.Epoch != epoch)) return null;
        if (protocol == AccuracyProtocol.LastEpoch) return run.Epochs.First(m => m.Epoch == epoch);
        EpochMetrics? best = null;
        foreach (var m in run.Epochs)
        {
            if (m.Epoch > epoch) break;
            if (best is null || m.ValAccuracy > best.ValAccuracy) best = m;
        }
        return best;
    }

    /// <summary>Test accuracy (fraction) standing for <paramref name="epoch"/>, or null if not reached.</summary>
    public static double? TestAccuracyAt(RunResults run, int epoch, AccuracyProtocol protocol) =>
        protocol == AccuracyProtocol.BestValSoFar
            ? run.BestValTestAccuracyAt(epoch)
            : SelectEpoch(run, epoch, protocol)?.TestAccuracy;

    /// <summary>One sentence saying how the accuracy columns were obtained.</summary>
    public static string Describe(AccuracyProtocol protocol) => protocol switch
    {
        AccuracyProtocol.BestValSoFar =>
            "Test accuracy (%) of the best-validation epoch so far (the paper's probable protocol).",
        AccuracyProtocol.LastEpoch => "Test accuracy (%) of the epoch itself.",
        _ => throw new ArgumentOutOfRangeException(nameof(protocol)),
    };

    /// <summary>Builds the table over every group of <paramref name="runs"/>.</summary>
    public static ComparisonTable Build(RunCollection runs, AccuracyProtocol protocol = AccuracyProtocol.BestValSoFar)
    {
        var rows = new List<ComparisonRow>();
        foreach (var group in runs.Groups)
        {
            int epochs = group.Runs.Max(r => r.Results.Config.Epochs);
            var accuracy = new List<SeedStat?>();
            foreach (var p in Fractions)
            {
                // Each run is read at its own configured length, so a group with mixed lengths still compares like
                // fractions of training.
                var values = group.Runs
                    .Select(r => TestAccuracyAt(r.Results, EpochAt(p, r.Results.Config.Epochs), protocol))
                    .OfType<double>().ToList();
                accuracy.Add(SeedStat.Of(values));
            }

            var f1 = group.Runs.Where(r => r.Results.Epochs.Count > 0)
                .Select(r => SelectEpoch(r.Results, r.Results.Epochs[^1].Epoch, protocol)?.TestF1)
                .OfType<double>().ToList();
            var trainAcc = group.Runs.Where(r => r.Results.Epochs.Count > 0)
                .Select(r => r.Results.Epochs[^1].TrainAccuracy).ToList();
            var seconds = group.Runs.Where(r => r.Results.Epochs.Count > 0)
                .Select(r => r.Results.Epochs.Average(m => m.TrainSeconds + m.EvalSeconds)).ToList();
            var status = StatusSummary(group.Runs.Select(r => r.Results.Status));

            rows.Add(new ComparisonRow(group.Key.Dataset, group.Key.Model, group.Key.Label, group.NormFamily,
                group.Key.LearningRate, group.Runs.Count, epochs, CheckpointEpochs(epochs), accuracy,
                SeedStat.Of(f1), SeedStat.Of(trainAcc), seconds.Count > 0 ? seconds.Average() : null, status,
                group.Runs.Select(r => r.Directory).ToList()));
        }
        return new ComparisonTable(protocol, rows);
    }

    /// <summary>The distinct (dataset, model) pairs, in row order.</summary>
    public IReadOnlyList<(string Dataset, string Model)> Experiments =>
        Rows.Select(r => (r.Dataset, r.Model)).Distinct().ToList();

    /// <summary>The rows of one experiment as a GitHub Markdown table (without heading or paper table).</summary>
    public string ToMarkdown(string dataset, string model)
    {
        var rows = Rows.Where(r => r.Dataset == dataset && r.Model == model).Select(r => r.Cells()).ToList();
        return MarkdownTable(Header, rows);
    }

    /// <summary>
    /// Every experiment: a heading, the protocol, this table and, below it, the paper's table for the same dataset and
    /// model (or a line saying the paper has none).
    /// </summary>
    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        foreach (var (dataset, model) in Experiments)
        {
            sb.Append("### ").Append(dataset).Append(" / ").Append(model).Append("\n\n");
            sb.Append(Describe(Protocol)).Append(" Mean ± sample std over seeds.\n\n");
            sb.Append(ToMarkdown(dataset, model)).Append('\n');
            sb.Append(PaperMarkdown(dataset, model));
        }
        return sb.ToString();
    }

    /// <summary>
    /// The paper's numbers for <paramref name="dataset"/> / <paramref name="model"/>, labelled as reference only, or one
    /// line saying the paper reports none.
    /// </summary>
    public static string PaperMarkdown(string dataset, string model)
    {
        var paper = PaperResults.Find(dataset, model);
        if (paper is null)
            return $"The paper (Faye et al. 2024) reports no numbers for {dataset} / {model}.\n";

        var sb = new StringBuilder();
        sb.Append("**Paper (Faye et al. 2024), for reference — not produced here**\n\n");
        if (paper.AccuracyRows.Count > 0)
            sb.Append(MarkdownTable(["model", "lr", "25", "50", "75", "100"],
                paper.AccuracyRows.Select(r => (IReadOnlyList<string>)
                    [r.Row, r.LearningRate.ToString("G", CultureInfo.InvariantCulture), .. r.Accuracies.Select(F2)])));
        if (paper.MetricRows.Count > 0)
            sb.Append(MarkdownTable(["model", "loss", "accuracy", "precision", "recall", "F1"],
                paper.MetricRows.Select(r => (IReadOnlyList<string>)
                [
                    r.Row, r.Loss?.ToString("F4", CultureInfo.InvariantCulture) ?? "—",
                    F2(r.Accuracy), F2(r.Precision), F2(r.Recall), F2(r.F1),
                ])));
        sb.Append('\n');
        foreach (var note in paper.Notes) sb.Append("- ").Append(note).Append('\n');
        sb.Append("- Source: ").Append(paper.Source).Append(".\n");
        return sb.ToString();
    }

    /// <summary>How many runs are not "completed", by status ("1 running, 2 stopped"), or empty when all are.</summary>
    internal static string StatusSummary(IEnumerable<string> statuses) => string.Join(", ", statuses
        .Where(s => !string.Equals(s, "completed", StringComparison.Ordinal))
        .GroupBy(s => s, StringComparer.Ordinal)
        .OrderBy(g => g.Key, StringComparer.Ordinal)
        .Select(g => $"{g.Count()} {g.Key}"));

    private static string F2(double v) => v.ToString("F2", CultureInfo.InvariantCulture);

    /// <summary>A GitHub table; pipes inside cells are escaped so labels cannot break the layout.</summary>
    internal static string MarkdownTable(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        static string Escape(string s) => s.Replace("|", "\\|", StringComparison.Ordinal).Replace('\n', ' ');
        var sb = new StringBuilder();
        sb.Append("| ").AppendJoin(" | ", header.Select(Escape)).Append(" |\n");
        sb.Append('|').AppendJoin("|", header.Select(_ => "---")).Append("|\n");
        foreach (var row in rows) sb.Append("| ").AppendJoin(" | ", row.Select(Escape)).Append(" |\n");
        return sb.ToString();
    }
}
