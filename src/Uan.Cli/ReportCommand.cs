using System.CommandLine;
using Uan.Lab.Reporting;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary>
/// <c>uan report DIR</c>: rebuilds comparison.md, the learning curves and (for AdaMatch runs) the domain-adaptation
/// table and plot from existing results.json files. On a grid folder (one with the grid.json that <c>compare</c> and
/// <c>slurm</c> write) it first shows where every run of the grid stands: completed, running, stopped or missing.
/// </summary>
internal static class ReportCommand
{
    public static Command Create(Ui ui)
    {
        var dir = new Argument<string>("dir") { Description = "Folder searched recursively for results.json files" };
        var outDir = new Option<string?>("--out", "-o") { Description = "Where to write comparison.md and the PNGs" }.WhenAbsent("DIR");
        var study = new Option<bool>("--study")
        { Description = "DIR is a study folder (one folder per grid): also write verdicts.md, the paired per-seed tests of the paper's claims, and the study figures" };
        var command = new Command("report",
            "Rebuild the comparison tables and plots (classification and AdaMatch runs) from results.json files, without training; " +
            "on a grid folder (grid.json), first the state of every run of the grid (completed, running, stopped, missing).");
        command.Arguments.Add(dir);
        command.Options.Add(outDir);
        command.Options.Add(study);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            string runs = p.GetValue(dir)!;
            if (!Directory.Exists(runs)) throw new DirectoryNotFoundException($"no such folder: {runs}");
            string target = p.GetValue(outDir) ?? runs;
            string? incomplete = null;
            if (GridFile.Load(runs) is { } grid)
            {
                var status = GridStatus.Of(grid.RunsIn(runs));
                ui.Result(status.ToMarkdown());
                if (!status.AllFinished)
                {
                    incomplete = $"{status.Summary()}; the table shows the finished epochs of the runs that have any.";
                    if (!Directory.EnumerateFiles(runs, RunRecord.FileName, SearchOption.AllDirectories).Any())
                    {
                        ui.Result("no run of the grid has results yet: nothing to merge");
                        return 0;
                    }
                }
            }
            using var folder = OutputFolder.Claim(target, "--out");
            return p.GetValue(study) ? StudyReport(ui, runs, target) : Report(ui, runs, target, incomplete);
        }));
        return command;
    }

    /// <summary>Writes the report of <paramref name="runsDir"/> into <paramref name="outDir"/> and prints the table.</summary>
    internal static int Report(Ui ui, string runsDir, string outDir, string? incomplete = null)
    {
        var summary = ReportWriter.Write(runsDir, outDir, incomplete);
        return Show(ui, summary.Warnings, summary.RunCount == 0 && summary.AdaMatchRunCount == 0,
            $"no results.json under {runsDir}", summary.ComparisonPath, summary.PlotPaths);
    }

    /// <summary>
    /// <c>--study</c>: writes verdicts.md and the study figures of the study folder <paramref name="studyDir"/> into
    /// <paramref name="outDir"/>, and prints the verdicts.
    /// </summary>
    internal static int StudyReport(Ui ui, string studyDir, string outDir)
    {
        var summary = Uan.Lab.Reporting.StudyReport.Write(studyDir, outDir);
        return Show(ui, summary.Study.Warnings, summary.Study.UsedRuns.Count == 0 && summary.Study.InProgress.Count == 0,
            $"no results.json in the grid folders under {studyDir}", summary.VerdictsPath, summary.Figures);
    }

    /// <summary>
    /// The common tail of both reports: the warnings on stderr; then, when <paramref name="empty"/>,
    /// <paramref name="emptyMessage"/> and <see cref="UanCommand.BadInput"/>; else the Markdown file's text and one
    /// "written:" line per file written.
    /// </summary>
    static int Show(Ui ui, IEnumerable<string> warnings, bool empty, string emptyMessage, string markdownPath, IEnumerable<string> figures)
    {
        foreach (var w in warnings) ui.Error($"warning: {w}");
        if (empty)
        {
            ui.Error(emptyMessage);
            return UanCommand.BadInput;
        }
        ui.Result(File.ReadAllText(markdownPath));
        foreach (var path in figures.Prepend(markdownPath)) ui.Result($"written: {path}");
        return 0;
    }
}
