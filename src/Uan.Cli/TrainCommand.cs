using System.CommandLine;
using System.Globalization;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary><c>uan train</c>: one run.</summary>
internal static class TrainCommand
{
    /// <summary>Epochs when --epochs is not given.</summary>
    public const int DefaultEpochs = 10;

    public static Command Create(Ui ui)
    {
        var run = new RunOptions();
        run.Epochs.WhenAbsent($"{DefaultEpochs}");
        run.Out.WhenAbsent("runs/train/DATASET-MODEL-LABEL-lrLR-sSEED");
        var norm = new Option<string>("--norm", "-n")
        { Description = $"Norm at the layer under study ({Norms.Accepted}; {Norms.Ranges})", DefaultValueFactory = _ => RunOptions.DefaultOtherNorm };
        var lr = new Option<double>("--lr") { Description = "Learning rate", DefaultValueFactory = _ => 1e-3 }
            .InRange(0, RunOptions.MaxLearningRate, minOpen: true);
        var seed = new Option<int>("--seed", "-s") { Description = "Seed", DefaultValueFactory = _ => 1 }.InRange(int.MinValue);
        var resume = new Option<bool>("--resume") { Description = "Continue the run in the output folder from its last checkpoint" };
        var command = new Command("train", "Train one model and write results.json and checkpoints into the output folder.");
        run.AddTo(command);
        command.Options.Add(norm);
        command.Options.Add(lr);
        command.Options.Add(seed);
        command.Options.Add(resume);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            var choice = NormChoice.Parse(p.GetValue(norm)!);
            var config = run.ToConfig(p, DefaultEpochs) with
            {
                Norm = choice.Spec, Label = choice.Label, LearningRate = p.GetValue(lr), Seed = p.GetValue(seed),
            };
            string dir = p.GetValue(run.Out) ?? Path.Combine("runs", "train",
                $"{config.Dataset}-{config.Model}-{ComparisonGrid.FolderName(choice.Label, config.LearningRate, config.Seed)}");
            var locator = UanCommand.Locator(p);
            Experiment.CheckModel(config);
            using var folder = OutputFolder.Claim(dir, "--out");
            using var stop = new CtrlC(ui);
            using var data = ExperimentData.Load(config, locator);
            ui.Info(Ui.SplitLine(data, config));
            ui.Info($"{config.Dataset}: {data.ImageSize}×{data.ImageSize}×{data.InChannels}, {data.NumClasses} classes; " +
                    $"{config.Model} with {choice.Display}");
            ui.Info($"lr {config.LearningRate.ToString(CultureInfo.InvariantCulture)}, {config.Epochs} epochs, batch {config.BatchSize}, seed {config.Seed}");
            ui.Info($"→ {dir}");
            var results = ui.WithProgress(1, tracker =>
            {
                tracker.RunStarting(0, config, p.GetValue(resume) ? "resume" : "new");
                var r = Experiment.Run(config, data, dir, p.GetValue(resume), tracker, m => tracker.Epoch(config, m), stop.Token);
                tracker.RunFinished(r);
                return r;
            });
            return Summarise(ui, results, dir, stop.StoppedExitCode);
        }));
        return command;
    }

    internal static int Summarise(Ui ui, RunResults results, string dir, int stoppedExitCode)
    {
        var last = results.Epochs.LastOrDefault();
        var best = results.Epochs.Where(m => m.IsBest).LastOrDefault();
        if (last is not null)
        {
            var inv = CultureInfo.InvariantCulture;
            string bestText = best is null ? "" : $", {Ui.Percent(best.TestAccuracy)} at epoch {best.Epoch} (best validation)";
            ui.Result(string.Create(inv, $"{results.Status}: {results.Epochs.Count}/{results.Config.Epochs} epochs in {results.TotalSeconds:F0} s"));
            ui.Result($"test accuracy {Ui.Percent(last.TestAccuracy)} at the last epoch{bestText}");
            ui.Result($"results in {dir}");
        }
        // The one place a run's failure is printed (the progress tracker does not repeat it).
        if (results.Message is not null)
            ui.Error(results.Status is "diverged" or "failed" ? $"[{Ui.Describe(results.Config)}] {results.Status}: {results.Message}" : results.Message);
        return results.Status switch { "completed" => 0, "stopped" => stoppedExitCode, _ => 1 };
    }
}
