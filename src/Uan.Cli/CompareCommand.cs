using System.CommandLine;
using System.Globalization;
using Uan.Lab;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary>
/// <c>uan compare</c>: the paper's grid (norms × learning rates × seeds), then the table and the learning curves.
/// With no options it is the main job: the embedded MNIST subset, the shallow CNN, BN vs MN vs UAN at conv2.
/// </summary>
internal static class CompareCommand
{
    /// <summary>Norms of the main job: the paper's three, conv2 only (the other layers keep Keras-style BN).</summary>
    public static readonly string[] DefaultNorms = ["BN=bn:eps=1e-3,momentum=0.1", "MN=mn:k=3", "UAN=uan:k=3"];

    /// <summary>Main job: epochs, batch and training images, sized to finish in under 10 minutes on 2 cores (see the README).</summary>
    public const int DefaultEpochs = 3, DefaultBatch = 64, DefaultTrainLimit = 0;

    public static Command Create(Ui ui)
    {
        var run = new RunOptions(DefaultBatch, DefaultTrainLimit);
        run.Epochs.WhenAbsent($"{DefaultEpochs}");
        run.Out.WhenAbsent("runs/compare-DATASET-MODEL");
        var norms = new Option<string[]>("--norm", "-n")
        {
            Description = $"Norm to compare, as LABEL=spec or spec; repeat for several ({Norms.Ranges})",
            AllowMultipleArgumentsPerToken = true,
        }.WhenAbsent(string.Join(" ", DefaultNorms));
        var lrs = new Option<string[]>("--lr")
        {
            Description = $"Learning rates; repeat or list; each {OptionChecks.NumberRange(0, RunOptions.MaxLearningRate, minOpen: true)}",
            AllowMultipleArgumentsPerToken = true,
        }.WhenAbsent("0.001");
        var seeds = new Option<int[]>("--seed", "-s") { Description = "Seeds; repeat or list", AllowMultipleArgumentsPerToken = true }
            .InRange(int.MinValue).WhenAbsent("1");
        var command = new Command("compare",
            "Train a grid of norms × learning rates × seeds, then write comparison.md and learning-curve PNGs. " +
            "Runs already completed in the output folder are kept and unfinished ones resumed.");
        run.AddTo(command);
        command.Options.Add(norms);
        command.Options.Add(lrs);
        command.Options.Add(seeds);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            var choices = (p.GetValue(norms) is { Length: > 0 } n ? n : DefaultNorms).Select(NormChoice.Parse).ToArray();
            var rates = (p.GetValue(lrs) is { Length: > 0 } l ? l : ["0.001"])
                .SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                .Select(s => OptionChecks.Number(s, 0, RunOptions.MaxLearningRate, minOpen: true)
                             ?? throw new ArgumentException($"--lr must be {OptionChecks.NumberRange(0, RunOptions.MaxLearningRate, minOpen: true)}, got '{s}'"))
                .ToArray();
            if (rates.Length == 0) throw new ArgumentException("--lr needs at least one learning rate");
            var seedList = p.GetValue(seeds) is { Length: > 0 } s2 ? s2 : [1];
            var baseConfig = run.ToConfig(p, DefaultEpochs);
            string dir = p.GetValue(run.Out) ?? Path.Combine("runs", $"compare-{baseConfig.Dataset}-{baseConfig.Model}");
            var grid = new ComparisonGrid(baseConfig, choices, rates, seedList, dir);
            foreach (var (config, _) in grid.Runs.DistinctBy(r => r.Config.Norm))
                Experiment.CheckModel(config);

            using var folder = OutputFolder.Claim(dir, "--out");
            using var stop = new CtrlC(ui);
            var locator = UanCommand.Locator(p);
            // Loaded before the first line, which states the split; the grid trains every run on it.
            using var data = ExperimentData.Load(baseConfig, locator);
            ui.Info(Ui.SplitLine(data, baseConfig));
            ui.InfoWrapped($"comparing {string.Join(", ", choices.Select(c => c.Display))} on {baseConfig.Dataset} with {baseConfig.Model}");
            ui.Info(string.Create(CultureInfo.InvariantCulture,
                $"lr {string.Join(", ", rates)}; seeds {string.Join(", ", seedList)}; {baseConfig.Epochs} epochs, batch {baseConfig.BatchSize}; " +
                $"{grid.Runs.Count} runs"));
            ui.Info($"→ {dir}");
            var held = new HashSet<int>();
            var results = ui.WithProgress(grid.Runs.Count, tracker =>
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
                    stop.Token, data);
                tracker.GridFinished(all.Count);
                return all;
            });
            foreach (var r in results) if (r.Status is "diverged" or "failed") ui.Error($"[{Ui.Describe(r.Config)}] {r.Status}: {r.Message}");
            if (stop.Token.IsCancellationRequested)
            {
                ui.Error($"stopped; run the same command again to continue the grid in {dir}");
                return stop.StoppedExitCode;
            }
            if (held.Count > 0)
            {
                ui.Info($"{held.Count} of {grid.Runs.Count} runs were held by other processes and skipped; run the same command again once they finish");
                // Nothing of this grid is finished yet: no table to write.
                if (results.Count == 0) return 0;
            }
            return ReportCommand.Report(ui, dir, dir);
        }));
        return command;
    }
}
