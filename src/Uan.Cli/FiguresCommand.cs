using System.CommandLine;
using Uan.Lab.Reporting;

namespace Uan.Cli;

/// <summary>
/// <c>uan figures DIR</c>: t-SNE, activation-distribution and gradient-variance figures from the snapshots and probe
/// files of one run folder or a comparison folder, without training.
/// </summary>
internal static class FiguresCommand
{
    public static Command Create(Ui ui)
    {
        var dir = new Argument<string>("dir") { Description = "A run folder, or a folder of runs, trained with --snapshots" };
        var outDir = new Option<string?>("--out", "-o") { Description = "Where to write the PNGs, figures.md and figures.json" }.WhenAbsent("DIR/figures");
        var points = new Option<int>("--tsne-points")
        { Description = "Points per t-SNE (exact t-SNE is O(N²) per iteration: 2,000 points take about 15 s on 2 cores)", DefaultValueFactory = _ => 2000 }.InRange(4, 100_000);
        var iterations = new Option<int>("--tsne-iterations") { Description = "t-SNE iterations", DefaultValueFactory = _ => 1000 }.InRange(1, 100_000);
        var perplexity = new Option<double>("--perplexity") { Description = "t-SNE perplexity", DefaultValueFactory = _ => 30 }.InRange(0, 10_000, minOpen: true);
        var channels = new Option<string?>("--channels") { Description = "conv2 channels of the activation figure, e.g. 4,12,28" }.WhenAbsent("the paper's");
        var command = new Command("figures", "Draw t-SNE, activation-distribution and gradient-variance figures from saved snapshots.");
        command.Arguments.Add(dir);
        foreach (var o in new Option[] { outDir, points, iterations, perplexity, channels }) command.Options.Add(o);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            string runs = p.GetValue(dir)!;
            if (!Directory.Exists(runs)) throw new DirectoryNotFoundException($"no such folder: {runs}");
            var channelList = p.GetValue(channels)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(s => int.TryParse(s, out var c) && c >= 0 ? c : throw new ArgumentException($"--channels: '{s}' is not a channel index"))
                .ToArray();
            var options = new FiguresOptions
            {
                TsnePoints = p.GetValue(points), TsneIterations = p.GetValue(iterations), Perplexity = p.GetValue(perplexity),
                Channels = channelList,
            };
            string target = p.GetValue(outDir) ?? Path.Combine(runs, "figures");
            using var folder = OutputFolder.Claim(target, "--out");
            var summary = FiguresWriter.Write(runs, target, options, ui.Info);
            foreach (var w in summary.Warnings) ui.Error($"warning: {w}");
            if (!summary.Written.Any(f => f.EndsWith(".png", StringComparison.Ordinal)))
            {
                ui.Error($"no snapshots or gradient probes under {runs} (train with --snapshots)");
                return UanCommand.BadInput;
            }
            foreach (var f in summary.Written) ui.Result($"written: {f}");
            return 0;
        }));
        return command;
    }
}
