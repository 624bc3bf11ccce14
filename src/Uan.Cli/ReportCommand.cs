using System.CommandLine;
using Uan.Lab.Reporting;

namespace Uan.Cli;

/// <summary>
/// <c>uan report DIR</c>: rebuilds comparison.md, the learning curves and (for AdaMatch runs) the domain-adaptation
/// table and plot from existing results.json files.
/// </summary>
internal static class ReportCommand
{
    public static Command Create(Ui ui)
    {
        var dir = new Argument<string>("dir") { Description = "Folder searched recursively for results.json files" };
        var outDir = new Option<string?>("--out", "-o") { Description = "Where to write comparison.md and the PNGs" }.WhenAbsent("DIR");
        var command = new Command("report", "Rebuild the comparison tables and plots (classification and AdaMatch runs) from results.json files, without training.");
        command.Arguments.Add(dir);
        command.Options.Add(outDir);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            string runs = p.GetValue(dir)!;
            if (!Directory.Exists(runs)) throw new DirectoryNotFoundException($"no such folder: {runs}");
            string target = p.GetValue(outDir) ?? runs;
            using var folder = OutputFolder.Claim(target, "--out");
            return Report(ui, runs, target);
        }));
        return command;
    }

    /// <summary>Writes the report of <paramref name="runsDir"/> into <paramref name="outDir"/> and prints the table.</summary>
    internal static int Report(Ui ui, string runsDir, string outDir)
    {
        var summary = ReportWriter.Write(runsDir, outDir);
        foreach (var w in summary.Warnings) ui.Error($"warning: {w}");
        if (summary.RunCount == 0 && summary.AdaMatchRunCount == 0)
        {
            ui.Error($"no results.json under {runsDir}");
            return UanCommand.BadInput;
        }
        ui.Result(File.ReadAllText(summary.ComparisonPath));
        ui.Result($"written: {summary.ComparisonPath}");
        foreach (var png in summary.PlotPaths) ui.Result($"written: {png}");
        return 0;
    }
}
