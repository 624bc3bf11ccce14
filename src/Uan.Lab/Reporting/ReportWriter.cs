using System.Text;

namespace Uan.Lab.Reporting;

/// <summary>What <see cref="ReportWriter.Write"/> produced.</summary>
/// <param name="ComparisonPath">Path of <c>comparison.md</c>.</param>
/// <param name="PlotPaths">Paths of the PNGs written.</param>
/// <param name="RunCount">Classification runs read.</param>
/// <param name="GroupCount">Classification groups (rows) formed.</param>
/// <param name="Warnings">Files skipped and other oddities, one message each.</param>
/// <param name="BestValSoFar">The table under <see cref="AccuracyProtocol.BestValSoFar"/>.</param>
/// <param name="LastEpoch">The table under <see cref="AccuracyProtocol.LastEpoch"/>.</param>
/// <param name="AdaMatchRunCount">AdaMatch runs read.</param>
/// <param name="Adaptation">The domain-adaptation table (no rows without AdaMatch runs).</param>
public sealed record ReportSummary(
    string ComparisonPath, IReadOnlyList<string> PlotPaths, int RunCount, int GroupCount,
    IReadOnlyList<string> Warnings, ComparisonTable BestValSoFar, ComparisonTable LastEpoch,
    int AdaMatchRunCount, AdaMatchTable Adaptation);

/// <summary>
/// The report behind <c>uan report DIR</c>: tables in Markdown plus learning-curve PNGs, and for AdaMatch runs a
/// domain-adaptation table and plot.
/// </summary>
public static class ReportWriter
{
    /// <summary>Name of the Markdown file written into the output folder.</summary>
    public const string ComparisonFileName = "comparison.md";

    /// <summary>
    /// Reads every run under <paramref name="runsDir"/> and writes <c>comparison.md</c> (both protocols, the paper's
    /// table for reference, the AdaMatch table when there are AdaMatch runs, the run folders used, and any skipped
    /// files) and the PNGs into <paramref name="outDir"/>.
    /// </summary>
    /// <remarks>
    /// <paramref name="incomplete"/>, when not null, is written as a paragraph under the heading: what a grid still
    /// lacks, so that a merged table of a half-finished grid says so.
    /// </remarks>
    public static ReportSummary Write(string runsDir, string outDir, string? incomplete = null)
    {
        var runs = RunCollection.Load(runsDir);
        Directory.CreateDirectory(outDir);
        var best = ComparisonTable.Build(runs, AccuracyProtocol.BestValSoFar);
        var last = ComparisonTable.Build(runs, AccuracyProtocol.LastEpoch);
        var curves = new LearningCurves(runs).Save(outDir);
        var adaptation = AdaMatchTable.Build(runs);
        var adaptationPlot = runs.AdaMatchRuns.Count > 0 ? adaptation.SavePlot(outDir) : null;
        IReadOnlyList<string> plots = adaptationPlot is null ? curves : [.. curves, adaptationPlot];
        IReadOnlyList<string> warnings = [.. runs.Warnings, .. adaptation.Warnings];

        var md = new StringBuilder();
        md.Append("# UAN comparison report\n\n");
        if (incomplete is not null) md.Append("**Incomplete grid**: ").Append(incomplete.Trim()).Append("\n\n");
        md.Append("Runs read from `").Append(RunCollection.DisplayPath(runs.Root)).Append("`: ");
        if (runs.Runs.Count > 0 || runs.AdaMatchRuns.Count == 0)
            md.Append(runs.Runs.Count).Append(" run(s) in ")
                .Append(runs.Groups.Count).Append(" group(s). Accuracies in %, mean ± sample std over seeds (the mean ")
                .Append("alone for one seed); the 25/50/75/100 % columns are at epoch max(1, round(p·E)) of the E ")
                .Append("configured epochs, listed in the epochs column. F1 macro is the mean over seeds, at the last ")
                .Append("finished epoch under the same protocol. Train acc (last) is the training accuracy of the last epoch ")
                .Append("(train mode, augmented batches): how well each network fits, independent of eval-mode statistics.\n\n");
        else
            md.Append("no classification run.\n\n");
        if (runs.AdaMatchRuns.Count > 0)
            md.Append("AdaMatch runs: ").Append(runs.AdaMatchRuns.Count).Append(" run(s) in ").Append(adaptation.Rows.Count)
                .Append(" group(s), in the domain-adaptation section below.\n\n");
        if (runs.Runs.Count == 0 && runs.AdaMatchRuns.Count == 0) md.Append("No readable results.json was found.\n\n");

        foreach (var (dataset, model) in runs.Experiments)
        {
            md.Append("## ").Append(dataset).Append(" / ").Append(model).Append("\n\n");
            md.Append("### Best validation so far (default)\n\n")
                .Append(ComparisonTable.Describe(AccuracyProtocol.BestValSoFar)).Append("\n\n")
                .Append(best.ToMarkdown(dataset, model)).Append('\n');
            md.Append("### Last epoch\n\n")
                .Append(ComparisonTable.Describe(AccuracyProtocol.LastEpoch)).Append("\n\n")
                .Append(last.ToMarkdown(dataset, model)).Append('\n');
            md.Append(ComparisonTable.PaperMarkdown(dataset, model)).Append('\n');
            foreach (var png in plots.Where(p => Path.GetFileName(p)
                         .StartsWith(LearningCurves.FilePrefix(dataset, model), StringComparison.Ordinal)))
                md.Append("![").Append(Path.GetFileNameWithoutExtension(png)).Append("](")
                    .Append(Path.GetFileName(png)).Append(")\n\n");
        }

        if (runs.AdaMatchRuns.Count > 0)
        {
            md.Append("## Domain adaptation (AdaMatch)\n\n");
            md.Append(adaptation.ToMarkdown()).Append('\n');
            if (adaptationPlot is not null)
                md.Append("![").Append(Path.GetFileNameWithoutExtension(adaptationPlot)).Append("](")
                    .Append(Path.GetFileName(adaptationPlot)).Append(")\n\n");
        }

        var folders = runs.Runs.Select(r => r.Directory).Concat(runs.AdaMatchRuns.Select(r => r.Directory))
            .Order(StringComparer.Ordinal).ToList();
        md.Append("## Runs used\n\n");
        md.Append("Run folders used (relative to the runs folder): ")
            .Append(folders.Count == 0 ? "none" : string.Join(", ",
                folders.Select(d => "`" + Path.GetRelativePath(runs.Root, d) + "`")))
            .Append("\n");
        if (warnings.Count > 0)
        {
            md.Append("\n## Warnings\n\n");
            foreach (var w in warnings) md.Append("- ").Append(w).Append('\n');
        }

        var path = Path.Combine(outDir, ComparisonFileName);
        AtomicFile.WriteAllBytes(path, new UTF8Encoding(false).GetBytes(md.ToString()));
        return new ReportSummary(path, plots, runs.Runs.Count, runs.Groups.Count, warnings, best, last,
            runs.AdaMatchRuns.Count, adaptation);
    }
}
