using System.CommandLine;
using System.Globalization;
using Uan.Lab;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary>
/// <c>uan compare</c>: the paper's grid (norms × learning rates × seeds), then the table and the learning curves.
/// With no options it is the main job: the embedded MNIST subset, the shallow CNN, BN vs MN vs UAN at conv2.
/// With <c>--shard I/N</c> (or inside a Slurm array task) it trains only run indexes i with i mod N = I, and writes
/// the merged table only once every run of the grid is finished.
/// </summary>
internal static class CompareCommand
{
    /// <summary>Norms of the main job: the paper's three, conv2 only (the other layers keep Keras-style BN).</summary>
    public static readonly string[] DefaultNorms = ["BN=bn:eps=1e-3,momentum=0.1", "MN=mn:k=3", "UAN=uan:k=3"];

    /// <summary>Main job: epochs, batch and training images, sized to finish in under 10 minutes on 2 cores (see the README).</summary>
    public const int DefaultEpochs = 3, DefaultBatch = 64, DefaultTrainLimit = 0;

    public static Command Create(Ui ui)
    {
        var options = new GridOptions();
        var shardOption = new Option<string?>("--shard")
        {
            Description = "Train only this share of the grid: I/N (0 ≤ I < N) trains run indexes i with i mod N = I",
        }.WhenAbsent($"the whole grid; in a Slurm array task, {GridShard.SlurmTaskId} of the array's size");
        var dryRun = new Option<bool>("--dry-run") { Description = "List the grid's runs, their state and this shard's share, write grid.json, train nothing" };
        var command = new Command("compare",
            "Train a grid of norms × learning rates × seeds, then write comparison.md and learning-curve PNGs. " +
            "Runs already completed in the output folder are kept and unfinished ones resumed.");
        options.AddTo(command);
        command.Options.Add(shardOption);
        command.Options.Add(dryRun);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            GridShard? shard = null;
            string? source = null;
            if (p.GetValue(shardOption) is { } text) (shard, source) = (GridShard.Parse(text), "--shard");
            else if (GridShard.FromEnvironment(System.Environment.GetEnvironmentVariable, out var env) is { } fromEnv) (shard, source) = (fromEnv, env);
            var grid = options.Build(p);
            string dir = grid.Directory;
            var baseConfig = grid.BaseConfig;
            if (shard is { } s)
            {
                var mine = s.RunsOf(grid.Runs.Count);
                ui.Info($"shard {s} (from {source}): " + (mine.Count == 0
                    ? $"no run of the grid's {grid.Runs.Count}"
                    : $"run{(mine.Count > 1 ? "s" : "")} {string.Join(", ", mine.Select(i => i + 1))} of {grid.Runs.Count}"));
            }

            using var folder = OutputFolder.Claim(dir, "--out");
            grid.WriteFile(mustMatch: shard is not null);
            if (p.GetValue(dryRun))
            {
                ui.Result(grid.Status().ToMarkdown(shard?.Count).TrimEnd());
                return 0;
            }
            using var stop = new CtrlC(ui);
            var locator = UanCommand.Locator(p);
            // Loaded before the first line, which states the split; the grid trains every run on it.
            using var data = ExperimentData.Load(baseConfig, locator);
            ui.Info(Ui.SplitLine(data, baseConfig));
            ui.InfoWrapped($"comparing {string.Join(", ", grid.Norms.Select(c => c.Display))} on {baseConfig.Dataset} with {baseConfig.Model}");
            ui.Info(string.Create(CultureInfo.InvariantCulture,
                $"lr {string.Join(", ", grid.LearningRates)}; seeds {string.Join(", ", grid.Seeds)}; {baseConfig.Epochs} epochs, batch {baseConfig.BatchSize}; " +
                $"{grid.Runs.Count} runs"));
            ui.Info($"→ {dir}");
            var held = new HashSet<int>();
            var results = ui.WithProgress(shard?.RunsOf(grid.Runs.Count).Count ?? grid.Runs.Count, tracker =>
            {
                var all = grid.Run(locator,
                    (i, config, state) =>
                    {
                        if (state == "held")
                        {
                            held.Add(i);
                            state = $"held by {RunFolder.DescribeHolder(grid.Runs[i].RunDir)}";
                        }
                        tracker.RunStarting(i, config, state);
                    },
                    tracker,
                    (config, m) => tracker.Epoch(config, m),
                    stop.Token,
                    shard,
                    data);
                tracker.GridFinished(all.Count);
                return all;
            });
            foreach (var r in results) if (r.Status is "diverged" or "failed") ui.Error($"[{Ui.Describe(r.Config)}] {r.Status}: {r.Message}");
            if (stop.Token.IsCancellationRequested)
            {
                ui.Error($"stopped; run the same command again to continue the grid in {dir}");
                return stop.StoppedExitCode;
            }
            int total = shard?.RunsOf(grid.Runs.Count).Count ?? grid.Runs.Count;
            if (held.Count > 0)
                ui.Info($"{held.Count} of {total} runs were held by other processes and skipped; run the same command again once they finish");
            if (shard is not null)
            {
                // The merged table is the whole grid's: only the shard that finds every run finished writes it.
                var status = grid.Status();
                if (!status.AllFinished)
                {
                    int open = grid.Runs.Count - status.Count("completed");
                    ui.Info($"this shard's runs are done; {open} of the grid's {grid.Runs.Count} runs are not finished yet " +
                            $"({status.Count("running")} running, {status.Count("stopped")} stopped, {status.Count("missing")} missing): " +
                            $"comparison.md is written by the shard that finishes last, or by 'uan report {dir}'");
                    return 0;
                }
                ui.Info($"every run of the grid is finished: writing the merged report");
                return ReportCommand.Report(ui, dir, dir);
            }
            // Nothing of this grid is finished yet: no table to write.
            if (held.Count > 0 && results.Count == 0) return 0;
            return ReportCommand.Report(ui, dir, dir);
        }));
        return command;
    }
}
