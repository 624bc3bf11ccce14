using System.CommandLine;
using System.Globalization;
using Uan.Lab.Data;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary>
/// The options that define a comparison grid (the run options, <c>--norm</c>, <c>--lr</c>, <c>--seed</c>), shared by
/// <c>compare</c> and <c>slurm</c>, the grid they make, and the <c>compare</c> arguments that make it again.
/// </summary>
internal sealed class GridOptions
{
    public RunOptions Run { get; } = CompareRunOptions();

    public Option<string[]> Norms { get; } = new Option<string[]>("--norm", "-n")
    {
        Description = $"Norm to compare, as LABEL=spec or spec; repeat for several ({Uan.Norms.Ranges})",
        AllowMultipleArgumentsPerToken = true,
    }.WhenAbsent(string.Join(" ", CompareCommand.DefaultNorms));

    public Option<string[]> LearningRates { get; } = new Option<string[]>("--lr")
    {
        Description = $"Learning rates; repeat or list; each {OptionChecks.NumberRange(0, RunOptions.MaxLearningRate, minOpen: true)}",
        AllowMultipleArgumentsPerToken = true,
    }.WhenAbsent("0.001");

    public Option<int[]> Seeds { get; } = new Option<int[]>("--seed", "-s") { Description = "Seeds; repeat or list", AllowMultipleArgumentsPerToken = true }
        .InRange(int.MinValue).WhenAbsent("1");

    private static RunOptions CompareRunOptions()
    {
        var run = new RunOptions(CompareCommand.DefaultBatch, CompareCommand.DefaultTrainLimit);
        run.Epochs.WhenAbsent($"{CompareCommand.DefaultEpochs}");
        run.Out.WhenAbsent("runs/compare-DATASET-MODEL");
        return run;
    }

    public void AddTo(Command command)
    {
        Run.AddTo(command);
        command.Options.Add(Norms);
        command.Options.Add(LearningRates);
        command.Options.Add(Seeds);
    }

    /// <summary>
    /// The grid the options describe, in <c>--out</c> (default runs/compare-DATASET-MODEL). Every norm is checked
    /// against the model before anything is read. <paramref name="threads"/> replaces an absent <c>--threads</c>.
    /// </summary>
    public ComparisonGrid Build(ParseResult p, int? threads = null)
    {
        var choices = (p.GetValue(Norms) is { Length: > 0 } n ? n : CompareCommand.DefaultNorms).Select(NormChoice.Parse).ToArray();
        var rates = (p.GetValue(LearningRates) is { Length: > 0 } l ? l : ["0.001"])
            .SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(s => OptionChecks.Number(s, 0, RunOptions.MaxLearningRate, minOpen: true)
                         ?? throw new ArgumentException($"--lr must be {OptionChecks.NumberRange(0, RunOptions.MaxLearningRate, minOpen: true)}, got '{s}'"))
            .ToArray();
        if (rates.Length == 0) throw new ArgumentException("--lr needs at least one learning rate");
        var seedList = p.GetValue(Seeds) is { Length: > 0 } s2 ? s2 : [1];
        var baseConfig = Run.ToConfig(p, CompareCommand.DefaultEpochs);
        if (baseConfig.Threads is null && threads is not null) baseConfig = baseConfig with { Threads = threads };
        string dir = p.GetValue(Run.Out) ?? Path.Combine("runs", $"compare-{baseConfig.Dataset}-{baseConfig.Model}");
        var grid = new ComparisonGrid(baseConfig, choices, rates, seedList, dir);
        foreach (var (config, _) in grid.Runs.DistinctBy(r => r.Config.Norm))
            Experiment.CheckModel(config);
        return grid;
    }

    /// <summary>
    /// The <c>compare</c> arguments (after the command name) that make <paramref name="grid"/> again, every setting
    /// explicit, with the grid folder and the data folder as given (callers pass absolute paths).
    /// </summary>
    public static IReadOnlyList<string> CompareArguments(ComparisonGrid grid, string outDir, string dataDir)
    {
        var c = grid.BaseConfig;
        var a = new List<string> { "--data-dir", dataDir, "--dataset", c.Dataset, "--model", c.Model, "--epochs", I(c.Epochs), "--batch-size", I(c.BatchSize) };
        if (c.Subset is int subset) a.AddRange(["--subset", I(subset)]);
        else a.AddRange(["--train-limit", I(c.TrainLimit ?? 0)]);
        if (c.TestLimit is int test) a.AddRange(["--test-limit", I(test)]);
        a.AddRange(["--val-fraction", D(c.ValidationFraction)]);
        if (c.ValEvery is int every) a.AddRange(["--val-every", I(every)]);
        if (c.Probe) a.Add("--probe");
        if (c.ImageSize is int size) a.AddRange(["--image-size", I(size)]);
        if (!c.Augment) a.Add("--no-augment");
        a.AddRange(["--optimizer", c.Optimizer, "--weight-decay", D(c.WeightDecay)]);
        if (c.InputNorm is not null) a.AddRange(["--input-norm", c.InputNorm]);
        if (c.OtherNorm is not null) a.AddRange(["--other-norm", c.OtherNorm]);
        a.AddRange(["--device", c.Device]);
        if (c.Threads is int threads) a.AddRange(["--threads", I(threads)]);
        if (c.Snapshots) a.Add("--snapshots");
        foreach (var norm in grid.Norms)
            a.AddRange(["--norm", norm.Label == NormChoice.Parse(norm.Spec).Label ? norm.Spec : $"{norm.Label}={norm.Spec}"]);
        a.AddRange(["--lr", string.Join(",", grid.LearningRates.Select(D))]);
        foreach (int seed in grid.Seeds) a.Add($"--seed={I(seed)}");
        a.AddRange(["--out", outDir]);
        return a;
    }

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);
    private static string D(double v) => v.ToString("R", CultureInfo.InvariantCulture);

    /// <summary>The data folder the command would read (its <c>--data-dir</c>, the environment, or the default), absolute.</summary>
    public static string DataDir(ParseResult p) => new DataLocator(p.GetValue(UanCommand.DataDir)).DataDir;
}
