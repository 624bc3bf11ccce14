using Uan.Lab.Diagnostics;
using System.CommandLine;
using TorchSharp;
using System.Globalization;
using Spectre.Console;
using Uan.Lab.Adaptation;
using Uan.Lab.Reporting;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary>
/// <c>uan adapt</c>: AdaMatch domain adaptation (spec Part B §4.3), labelled source → unlabelled target. Defaults are
/// sized for a CPU; <c>--paper</c> starts from the reference configuration and any option given explicitly still
/// overrides it.
/// </summary>
internal static class AdaptCommand
{
    public static Command Create(Ui ui)
    {
        var cpu = new AdaMatchConfig();
        var paper = AdaMatchConfig.Paper;
        var source = new Option<string>("--source") { Description = "Labelled source dataset", DefaultValueFactory = _ => cpu.Source };
        var target = new Option<string>("--target")
        { Description = "Unlabelled target dataset: any 10-class 3×32×32 dataset by name (syndigits, mnistm-like, svhn)", DefaultValueFactory = _ => cpu.Target };
        var model = new Option<string>("--model", "-m")
        { Description = "wrn-16-2 or wrn-28-2 (any wrn-D-K)" }.WhenAbsent($"{cpu.Model}; with --paper {paper.Model}");
        var norm = new Option<string>("--norm", "-n")
        { Description = $"Norm inside the network ({Norms.Accepted}; {Norms.Ranges})" }.WhenAbsent($"{cpu.Norm}; with --paper {paper.Norm}, Keras BatchNorm");
        var inputNorm = new Option<string?>("--input-norm")
        { Description = "Norm on the raw 0–255 input (the paper's AdaMatch+UAN: uan:k=2)" }.WhenAbsent("none, the network scales the input by 1/255");
        var epochs = new Option<int>("--epochs", "-e") { Description = "Epochs" }.InRange(1, RunOptions.MaxEpochs).WhenAbsent($"{cpu.Epochs}; with --paper {paper.Epochs}");
        var steps = new Option<int>("--steps-per-epoch")
        { Description = "Steps per epoch, capped by the shorter stream; 0 = the whole zipped stream" }.InRange(0).WhenAbsent($"{cpu.StepsPerEpoch}; with --paper 0");
        var sourceBatch = new Option<int>("--source-batch") { Description = "Source images per step" }.InRange(1, RunOptions.MaxBatch).WhenAbsent($"{cpu.SourceBatch}; with --paper {paper.SourceBatch}");
        var multiplier = new Option<int>("--target-multiplier") { Description = "Target images per step = multiplier × source batch" }.InRange(1, 64).WhenAbsent($"{cpu.TargetMultiplier}");
        var lr = new Option<double>("--lr") { Description = "Initial Adam learning rate of the cosine decay to 25%" }
            .InRange(0, RunOptions.MaxLearningRate, minOpen: true).WhenAbsent(string.Create(CultureInfo.InvariantCulture, $"{cpu.LearningRate}; with --paper {paper.LearningRate}"));
        var horizon = new Option<long?>("--horizon") { Description = "Steps T of the lr decay and the warm-up" }.InRange(1).WhenAbsent("the whole run");
        var seed = new Option<int>("--seed", "-s") { Description = "Seed", DefaultValueFactory = _ => 1 }.InRange(int.MinValue);
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads" }.InRange(1, RunOptions.MaxThreads).WhenAbsent("libtorch's choice");
        var device = new Option<string>("--device") { Description = "Torch device: cpu, cuda or cuda:N (when this machine has it)", DefaultValueFactory = _ => "cpu" };
        var variant = new Option<string>("--variant")
        {
            Description = "AdaMatch variant: official (google-research/adamatch: train-mode source pass with statistics restored, " +
                          "moving class distributions, hard pseudo-labels, ½ source loss, weight decay 0.001, EMA of the weights evaluated), " +
                          "keras (the Keras example) or compat (keras with the reference notebook's deviations)",
            DefaultValueFactory = _ => cpu.Variant,
        };
        var compat = new Option<bool>("--compat") { Description = "Alias of --variant compat" };
        var paperOption = new Option<bool>("--paper") { Description = "The paper's configuration: WRN-28-2, batch 64 + 192, Keras BatchNorm, lr 0.03 cosine, 100 full epochs (GPU-sized)" };
        var noFlip = new Option<bool>("--no-weak-flip") { Description = "No weak augmentation (the reference flips, which mirrors digits)" };
        var sourceLimit = new Option<int?>("--source-limit") { Description = "Use a stratified subset of this many source training images" }.InRange(1).WhenAbsent("all");
        var targetLimit = new Option<int?>("--target-limit") { Description = "Use a subset of this many target training images" }.InRange(1).WhenAbsent("all");
        var testLimit = new Option<int?>("--test-limit") { Description = "Use a stratified subset of this many images of each test set" }.InRange(1).WhenAbsent("all");
        var timeSteps = new Option<int?>("--time-steps") { Description = "Only time this many training steps on random images of the configured sizes, then exit" }.InRange(1).WhenAbsent("train");
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its last checkpoint" };
        var probe = new Option<bool>("--probe") { Description = "At each epoch end, record the gradient variance (the paper's d Σlogits/dθ) on a fixed source and target batch into gradient-probe.json, for uan figures" };
        var stepLog = new Option<bool>("--step-log") { Description = "Write every step's losses, mean |logit| of the train- and eval-mode source passes and gradient norm to steps.csv in the run folder" };
        var output = new Option<string?>("--out", "-o") { Description = "Output folder" }.WhenAbsent("runs/adapt/SOURCE-TARGET-MODEL-NORM-sSEED");

        var command = new Command("adapt", "Domain adaptation with AdaMatch (source → target); writes results.json and a checkpoint per epoch.");
        foreach (var o in new Option[] { source, target, model, norm, inputNorm, epochs, steps, sourceBatch, multiplier, lr, horizon, seed,
                     threads, device, variant, compat, paperOption, noFlip, sourceLimit, targetLimit, testLimit, timeSteps, resume, probe, stepLog, output })
            command.Options.Add(o);

        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            T Pick<T>(Option<T> option, T fallback) => p.GetResult(option) is null ? fallback : p.GetValue(option)!;
            var baseConfig = p.GetValue(paperOption) ? paper : cpu;
            int stepsValue = Pick(steps, baseConfig.StepsPerEpoch ?? 0);
            var config = baseConfig with
            {
                Source = p.GetValue(source)!.Trim().ToLowerInvariant(),
                Target = p.GetValue(target)!.Trim().ToLowerInvariant(),
                Model = Pick(model, baseConfig.Model).Trim().ToLowerInvariant(),
                Norm = Pick(norm, baseConfig.Norm),
                InputNorm = p.GetValue(inputNorm),
                Epochs = Pick(epochs, baseConfig.Epochs),
                StepsPerEpoch = stepsValue == 0 ? null : stepsValue,
                SourceBatch = Pick(sourceBatch, baseConfig.SourceBatch),
                TargetMultiplier = Pick(multiplier, baseConfig.TargetMultiplier),
                LearningRate = Pick(lr, baseConfig.LearningRate),
                HorizonSteps = p.GetValue(horizon),
                Seed = p.GetValue(seed),
                Threads = p.GetValue(threads),
                Device = p.GetValue(device)!,
                Variant = VariantOf(p.GetValue(variant)!, p.GetResult(variant) is { Implicit: false }, p.GetValue(compat)),
                WeakFlip = !p.GetValue(noFlip),
                SourceLimit = p.GetValue(sourceLimit),
                TargetLimit = p.GetValue(targetLimit),
                TestLimit = p.GetValue(testLimit),
            };
            config.Validate();
            foreach (var (name, id) in new[] { ("--source", config.Source), ("--target", config.Target) })
                if (!Lab.Data.DataLocator.KnownIds.Contains(id))
                    throw new ArgumentException($"{name}: unknown dataset '{id}'; accepted: {string.Join(", ", Lab.Data.DataLocator.KnownIds)}");
            Devices.Resolve(config.Device, "--device");
            // Built once before any data is read, so a norm that does not fit the network fails now.
            using (torch.no_grad()) AdaMatchTrainer.CreateModel(config).Dispose();
            var inv = CultureInfo.InvariantCulture;

            if (p.GetValue(timeSteps) is int n)
            {
                ui.Info($"timing {n} steps of {config.Model} ({config.Norm}{(config.InputNorm is null ? "" : ", input " + config.InputNorm)}), " +
                        $"batch {config.SourceBatch} + {config.TargetBatch} (forward 1 on {2 * (config.SourceBatch + config.TargetBatch)} images)");
                var times = AdaMatchTrainer.MeasureStepSeconds(config, n);
                var sorted = times.OrderBy(t => t).ToArray();
                ui.Result(string.Create(inv,
                    $"{config.Model} batch {config.SourceBatch}+{config.TargetBatch}, {Lab.Training.EnvironmentInfo.Capture().TorchThreads} threads: " +
                    $"mean {times.Average():F3} s/step, median {sorted[sorted.Length / 2]:F3}, min {sorted[0]:F3}, max {sorted[^1]:F3} over {n} steps"));
                return 0;
            }

            string label = config.InputNorm is null ? Short(config.Norm) : $"{Short(config.Norm)}+in-{Short(config.InputNorm)}";
            string dir = p.GetValue(output) ?? Path.Combine("runs", "adapt",
                $"{config.Source}-{config.Target}-{config.Model}-{label}{(config.Official ? "" : "-" + config.Variant)}-s{config.Seed}");
            ui.Info($"AdaMatch ({config.Variant}) {config.Source} → {config.Target}: {config.Model}, norm {config.Norm}, input " +
                    (config.InputNorm ?? "×1/255") + string.Create(inv,
                        $", batch {config.SourceBatch} + {config.TargetBatch}, lr {config.LearningRate} cosine to {config.LrAlpha:P0}, {config.Epochs} epochs, seed {config.Seed} → {dir}"));
            ui.Info(config.WeakFlip
                ? "weak augmentation: random horizontal flip (as the reference; it mirrors digits, --no-weak-flip turns it off); strong: RandAugment, 2 ops at magnitude 0.5"
                : "weak augmentation: none (--no-weak-flip); strong: RandAugment, 2 ops at magnitude 0.5");
            if (config.Compat)
                ui.Result("compat: reference-notebook deviations active: " + string.Join("; ", AdaMatchConfig.CompatNotes));

            using var folder = OutputFolder.Claim(dir, "--out");
            using var stop = new CtrlC(ui);
            using var data = AdaMatchData.Load(config, UanCommand.Locator(p));
            ui.Info($"data: {data.SourceTrain.Count} source + {data.TargetTrain.Count} target training images, " +
                    $"{data.SourceTest.Count} + {data.TargetTest.Count} test images, {data.ImageSize}×{data.ImageSize}×{data.Channels}");
            using var trainer = new AdaMatchTrainer(config, data, dir);
            ui.Info($"{trainer.StepsPerEpoch} steps per epoch, horizon T = {trainer.HorizonSteps} steps, " +
                    $"{ModelCount(trainer)} parameters");
            if (p.GetValue(probe))
            {
                // Kept whole and rewritten after each epoch; on resume the earlier epochs' records stay.
                string logPath = Path.Combine(dir, GradientProbeLog.FileName);
                var records = p.GetValue(resume) && File.Exists(logPath) ? GradientProbeLog.Load(logPath).ToList() : [];
                trainer.EpochProbe = (epoch, model, src, tgt) =>
                {
                    records.RemoveAll(r => r.Epoch >= epoch);
                    foreach (var (domain, batch) in new[] { ("source", src), ("target", tgt) })
                        records.Add(GradientProbeRecord.From(epoch, domain, GradientProbe.Measure(model, batch, null)));
                    GradientProbeLog.Save(dir, records);
                };
            }
            trainer.EpochFinished += m =>
            {
                if (ui.Quiet) return;
                var line = EpochLine(config, m);
                if (ui.Interactive) AnsiConsole.MarkupLine(Markup.Escape(line));
                else ui.Out.WriteLine(line);
            };
            trainer.LogSteps = p.GetValue(stepLog);
            var results = RunWithProgress(ui, trainer, p.GetValue(resume), stop.Token);
            return Summarise(ui, results, dir, stop.StoppedExitCode);
        }));
        return command;
    }

    /// <summary>The variant of --variant, with --compat as an alias of --variant compat; a contradiction is an error.</summary>
    internal static string VariantOf(string given, bool explicitlyGiven, bool compatFlag)
    {
        var v = given.Trim().ToLowerInvariant();
        if (!AdaMatchVariants.All.Contains(v))
            throw new ArgumentException($"--variant: unknown variant '{given}'; accepted: {string.Join(", ", AdaMatchVariants.All)}");
        if (!compatFlag) return v;
        if (explicitlyGiven && v != AdaMatchVariants.Compat)
            throw new ArgumentException($"--compat is an alias of --variant compat and contradicts --variant {v}; give one of them");
        return AdaMatchVariants.Compat;
    }

    static string Short(string spec) => Lab.Models.InputNorms.Kind(spec);

    static long ModelCount(AdaMatchTrainer t) => Lab.Models.ModelFactory.CountParameters(t.Model);

    /// <summary>An epoch's log: three lines of at most 80 columns (time and schedule; losses; test accuracies).</summary>
    internal static string EpochLine(AdaMatchConfig c, AdaMatchEpoch m) => string.Create(CultureInfo.InvariantCulture,
        $"epoch {m.Epoch}/{c.Epochs}: {m.TrainSeconds + m.EvalSeconds:F0} s, {m.SecondsPerStep:F2} s/step, lr {m.LearningRate:G3}, μ {m.Warmup:F2}\n" +
        $"  loss {m.TrainLoss:F4} (source {m.SourceLoss:F4}, target {m.TargetLoss:F4}), mask {m.MaskRate:P0}\n" +
        $"  source test acc {m.SourceTest.Accuracy:P2} (F1 {m.SourceTest.F1:P2}), " +
        $"target {m.TargetTest.Accuracy:P2} (F1 {m.TargetTest.F1:P2})");

    static AdaMatchResults RunWithProgress(Ui ui, AdaMatchTrainer trainer, bool resume, CancellationToken token)
    {
        if (!ui.Interactive) return trainer.Run(resume, null, token);
        AdaMatchResults results = null!;
        Ui.NewProgress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn { Width = 16 }, new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("adamatch", maxValue: trainer.Config.Epochs);
                var refresh = new Ui.Throttle(ctx);
                trainer.EpochFinished += _ => refresh.Refresh(now: true);
                var progress = new SyncProgress<TrainProgress>(p =>
                {
                    if (p.Phase == "train") task.Value = p.Epoch - 1 + (double)p.Step / p.Steps;
                    task.Description = Markup.Escape(p.Phase == "train"
                        ? string.Create(CultureInfo.InvariantCulture, $"e{p.Epoch}/{p.Epochs} loss {p.Loss:F3} src acc {p.Accuracy:P0} {p.ImagesPerSecond:F0} img/s")
                        : $"e{p.Epoch}/{p.Epochs} {p.Phase} {p.Step}/{p.Steps}");
                    refresh.Refresh();
                });
                results = trainer.Run(resume, progress, token);
                task.StopTask();
            });
        return results;
    }

    static int Summarise(Ui ui, AdaMatchResults results, string dir, int stoppedExitCode)
    {
        var inv = CultureInfo.InvariantCulture;
        var last = results.Epochs.LastOrDefault();
        if (last is not null)
        {
            ui.Result(string.Create(inv,
                $"{results.Status}: {results.Epochs.Count}/{results.Config.Epochs} epochs in {results.TotalSeconds:F0} s; " +
                $"ours ({results.Config.Model}, {(results.Config.InputNorm is null ? "no input norm" : "input " + results.Config.InputNorm)}): " +
                $"{results.Config.Source} (source) acc {last.SourceTest.Accuracy * 100:F2} P {last.SourceTest.Precision * 100:F2} R {last.SourceTest.Recall * 100:F2} F1 {last.SourceTest.F1 * 100:F2}; " +
                $"{results.Config.Target} (target) acc {last.TargetTest.Accuracy * 100:F2} P {last.TargetTest.Precision * 100:F2} R {last.TargetTest.Recall * 100:F2} F1 {last.TargetTest.F1 * 100:F2} " +
                $"(macro P/R/F1, %); results in {dir}"));
            foreach (var line in PaperLines(results.Config)) ui.Result(line);
        }
        if (results.Message is not null) ui.Error(results.Message);
        return results.Status switch { "completed" => 0, "stopped" => stoppedExitCode, _ => 1 };
    }

    /// <summary>The paper's published MNIST → SVHN rows, labelled as the paper's, for comparison with ours.</summary>
    internal static IEnumerable<string> PaperLines(AdaMatchConfig config)
    {
        var inv = CultureInfo.InvariantCulture;
        yield return "paper's published numbers (WRN-28-2, 100 epochs, MNIST → SVHN; P/R/F1 averaging unknown), %:";
        foreach (var r in PaperResults.AdaMatchRows)
            yield return string.Create(inv, $"  paper: {r.Row,-30} acc {r.Accuracy,6:F2}  P {r.Precision,6:F2}  R {r.Recall,6:F2}  F1 {r.F1,6:F2}");
        if (config.Target != "svhn")
            yield return $"  (this run's target is {config.Target}, not SVHN: the paper's target rows are not directly comparable)";
    }
}
