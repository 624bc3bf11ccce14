using Uan.Lab.Data;
using Uan.Lab.Models;

namespace Uan.Lab.Training;

/// <summary>A norm under comparison: a short label for tables and its spec string.</summary>
public sealed record NormChoice(string Label, string Spec)
{
    /// <summary>
    /// Parses <c>LABEL=spec</c> or a bare spec (<c>uan:k=3</c>); a bare spec gets <see cref="DefaultLabel"/>.
    /// The spec is validated by <see cref="Norms.Parse"/>.
    /// </summary>
    public static NormChoice Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int eq = text.IndexOf('='), colon = text.IndexOf(':');
        bool labelled = eq > 0 && (colon < 0 || eq < colon);
        string label = labelled ? text[..eq].Trim() : "";
        string spec = labelled ? text[(eq + 1)..].Trim() : text.Trim();
        var parsed = Norms.Parse(spec);
        return new NormChoice(label.Length > 0 ? label : DefaultLabel(parsed), spec);
    }

    /// <summary>The label, and the spec in parentheses unless the label is the spec itself ("UAN (uan:k=3)", "uan:k=3").</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Display => Label == Spec || Label == Norms.Parse(Spec).ToString() ? Label : $"{Label} ({Spec})";

    /// <summary>BN, MN, UAN for bare kinds; UAN-BatchStats / UAN-Compat for the other UAN modes; else the spec.</summary>
    public static string DefaultLabel(NormSpec spec)
    {
        if (spec.Options.Count == 0) return spec.Kind.ToUpperInvariant();
        if (spec.Kind == "uan" && spec.Options.Count == 1 && spec.Options.TryGetValue("mode", out var mode))
            return mode switch { "batchstats" => "UAN-BatchStats", "compat" => "UAN-Compat", _ => "UAN" };
        return spec.ToString();
    }
}

/// <summary>
/// Runs one configured training end to end: loads the data, builds the model from <see cref="ModelFactory"/>,
/// trains into a run folder (resuming when asked), returns the results.
/// </summary>
public static class Experiment
{
    /// <summary>The model a config asks for, sized for the data.</summary>
    public static Func<TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor>> ModelFor(RunConfig config, ExperimentData data)
    {
        CheckInputNorm(config);
        return () => ModelFactory.Create(config.Model, data.InChannels, data.NumClasses, data.ImageSize, config.Norm, config.InputNorm, config.OtherNorm);
    }

    /// <summary>
    /// Refuses the input norm <c>std</c> (<see cref="InputNorms.Standardize"/>) in classification training: its
    /// statistics come from the source training set, which only the AdaMatch trainer sets
    /// (<see cref="InputStandardization.SetFrom"/>); a model built here would fail at its first forward pass.
    /// </summary>
    static void CheckInputNorm(RunConfig config)
    {
        if (config.InputNorm is { } input && InputNorms.IsStandardize(input))
            throw new ArgumentException($"input norm '{input}' (fixed per-channel standardisation) is for domain adaptation " +
                                        "(uan adapt --input-norm std), which sets it from the source training set; classification " +
                                        "training takes a norm spec as input norm (bn, uan:k=10, ...)", nameof(config));
    }

    /// <summary>
    /// Builds (and drops) the model <paramref name="config"/> asks for, at the shape its dataset is known to have
    /// (<see cref="DataLocator.KnownShape"/>), so that a norm that does not fit the model (gn:groups not dividing a
    /// layer's channels, an input norm on too few channels, a model refusing the image size) fails before any data
    /// is read. Throws <see cref="ArgumentException"/>; does nothing for a dataset of unknown shape.
    /// </summary>
    public static void CheckModel(RunConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        CheckInputNorm(config);
        if (DataLocator.KnownShape(config.Dataset) is not var (channels, classes, size)) return;
        using var _ = TorchSharp.torch.no_grad();
        ModelFactory.Create(config.Model, channels, classes, config.ImageSize ?? size, config.Norm, config.InputNorm,
            config.OtherNorm).Dispose();
    }

    /// <summary>Trains <paramref name="config"/> in <paramref name="runDir"/> on already loaded data.</summary>
    public static RunResults Run(RunConfig config, ExperimentData data, string runDir, bool resume,
        IProgress<TrainProgress>? progress = null, Action<EpochMetrics>? epochFinished = null, CancellationToken cancel = default)
    {
        using var trainer = new Trainer(config, data, ModelFor(config, data), runDir);
        if (epochFinished is not null) trainer.EpochFinished += epochFinished;
        return trainer.Run(resume, progress, cancel);
    }
}

/// <summary>
/// The paper's comparison grid: norms × learning rates × seeds on one dataset and model. Each run has its own folder
/// under the grid folder (<c>LABEL-lrX-sN</c>); a completed run is kept, an unfinished one is resumed, so a killed
/// grid continues where it stopped; a diverged run is a result and is kept too. A run whose folder another process
/// holds (<see cref="RunFolder"/>) is skipped, so several processes can work through one grid. All runs share the
/// loaded data.
/// </summary>
public sealed class ComparisonGrid
{
    /// <summary>Creates a grid from a base config (its Norm, Label, LearningRate and Seed are replaced per run).</summary>
    public ComparisonGrid(RunConfig baseConfig, IReadOnlyList<NormChoice> norms, IReadOnlyList<double> learningRates,
        IReadOnlyList<int> seeds, string directory)
    {
        if (norms.Count == 0) throw new ArgumentException("a comparison needs at least one norm");
        if (learningRates.Count == 0) throw new ArgumentException("a comparison needs at least one learning rate");
        if (seeds.Count == 0) throw new ArgumentException("a comparison needs at least one seed");
        var dup = norms.GroupBy(n => n.Label).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"two norms share the label '{dup.Key}'; give each a distinct LABEL=spec");
        var dupLr = learningRates.GroupBy(l => l).FirstOrDefault(g => g.Count() > 1);
        if (dupLr is not null) throw new ArgumentException($"learning rate {dupLr.Key.ToString(System.Globalization.CultureInfo.InvariantCulture)} is given twice");
        var dupSeed = seeds.GroupBy(x => x).FirstOrDefault(g => g.Count() > 1);
        if (dupSeed is not null) throw new ArgumentException($"seed {dupSeed.Key} is given twice");
        BaseConfig = baseConfig;
        Directory = directory;
        Norms = norms.ToArray();
        LearningRates = learningRates.ToArray();
        Seeds = seeds.ToArray();
        // The order is part of the grid's contract (shard i mod N trains run i): learning rate outermost, then norm,
        // then seed, each in the order given; see IndexOf.
        Runs = (from lr in learningRates
                from norm in norms
                from seed in seeds
                select (baseConfig with { Norm = norm.Spec, Label = norm.Label, LearningRate = lr, Seed = seed },
                        Path.Combine(directory, FolderName(norm.Label, lr, seed)))).ToArray();
    }

    /// <summary>The norms, in the order given.</summary>
    public IReadOnlyList<NormChoice> Norms { get; }
    /// <summary>The learning rates, in the order given.</summary>
    public IReadOnlyList<double> LearningRates { get; }
    /// <summary>The seeds, in the order given.</summary>
    public IReadOnlyList<int> Seeds { get; }

    /// <summary>
    /// The place of (learning rate, norm, seed) — each given by its position in its list — in <see cref="Runs"/>:
    /// (lr × norms + norm) × seeds + seed. The same on every machine and call for the same options.
    /// </summary>
    public int IndexOf(int learningRate, int norm, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(learningRate);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(learningRate, LearningRates.Count);
        ArgumentOutOfRangeException.ThrowIfNegative(norm);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(norm, Norms.Count);
        ArgumentOutOfRangeException.ThrowIfNegative(seed);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(seed, Seeds.Count);
        return (learningRate * Norms.Count + norm) * Seeds.Count + seed;
    }

    /// <summary>The grid's <c>grid.json</c> content.</summary>
    public GridFile ToFile() => new()
    {
        BaseConfig = BaseConfig,
        Norms = [.. Norms],
        LearningRates = [.. LearningRates],
        Seeds = [.. Seeds],
        Runs = Runs.Select((r, i) => new GridFileRun(i, Path.GetFileName(r.RunDir), r.Config)).ToList(),
    };

    /// <summary>
    /// Writes <c>grid.json</c> into the grid folder (atomically; several shards starting at once write the same bytes).
    /// With <paramref name="mustMatch"/>, an existing file describing another grid is refused
    /// (<see cref="ArgumentException"/>): a shard must not mix its runs into another grid's folder.
    /// </summary>
    public void WriteFile(bool mustMatch)
    {
        var mine = ToFile();
        if (mustMatch && GridFile.Load(Directory) is { } existing && !existing.SameGridAs(mine))
            throw new ArgumentException($"{GridFile.PathIn(Directory)} describes another grid ({existing.Runs.Count} runs, " +
                                        $"first {existing.Runs[0].Folder}); give the same options as the other shards, or another --out");
        System.IO.Directory.CreateDirectory(Directory);
        AtomicFile.WriteAllText(GridFile.PathIn(Directory), mine.ToJson());
    }

    /// <summary>Where every run of the grid stands (see <see cref="GridStatus"/>).</summary>
    public GridStatus Status() => GridStatus.Of(Runs);

    /// <summary>The shared part of every run's config.</summary>
    public RunConfig BaseConfig { get; }
    /// <summary>The grid folder.</summary>
    public string Directory { get; }
    /// <summary>
    /// Every run of the grid with its folder, in the order they are trained: learning rate outermost, then norm, then
    /// seed (<see cref="IndexOf"/>). Shard i of N trains the runs whose index is i mod N.
    /// </summary>
    public IReadOnlyList<(RunConfig Config, string RunDir)> Runs { get; }

    /// <summary>A file-system-safe folder name for one run.</summary>
    public static string FolderName(string label, double lr, int seed)
    {
        var safe = new string(label.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());
        return $"{safe}-lr{lr.ToString(System.Globalization.CultureInfo.InvariantCulture)}-s{seed}";
    }

    /// <summary>State of a run folder: "new", "completed", or the status of the unfinished run.</summary>
    public static string StateOf(string runDir)
    {
        if (!File.Exists(Path.Combine(runDir, RunResults.FileName))) return "new";
        try { return RunResults.Load(runDir).Status; }
        catch (InvalidDataException) { return "unreadable"; }
    }

    /// <summary>
    /// Trains every run that is not completed yet. <paramref name="runStarting"/> is told (index, config, state) before
    /// each run; state "held" means another process holds the run's folder and the run is skipped (the holder is in
    /// <see cref="RunFolder.DescribeHolder"/>). Stops early when <paramref name="cancel"/> fires; returns the results
    /// of the runs touched or kept. With <paramref name="shard"/>, only that shard's runs (index i mod N) are looked at.
    /// </summary>
    /// <remarks>
    /// <paramref name="data"/>, when given, is the grid's data, loaded by the caller from <see cref="BaseConfig"/>
    /// (and disposed by it); otherwise the data is loaded when the first run needs training.
    /// </remarks>
    public IReadOnlyList<RunResults> Run(DataLocator locator, Action<int, RunConfig, string>? runStarting = null,
        IProgress<TrainProgress>? progress = null, Action<RunConfig, EpochMetrics>? epochFinished = null, CancellationToken cancel = default,
        GridShard? shard = null, ExperimentData? data = null)
    {
        var all = new List<RunResults>();
        bool ownData = data is null;
        bool modelsChecked = false;
        try
        {
            for (int i = 0; i < Runs.Count && !cancel.IsCancellationRequested; i++)
            {
                if (shard is { } only && !only.Owns(i)) continue;
                var (config, dir) = Runs[i];
                string state;
                RunResults? kept = null;
                using (var folder = RunFolder.TryLock(dir, out _))
                {
                    state = folder is null ? "held" : StateOf(dir);
                    if (folder is not null && state is "completed" or "diverged")
                    {
                        kept = RunResults.Load(dir);
                        // A commit a kill interrupted is finished here, so a kept run's checkpoints are its results'.
                        // A finished run with no checkpoint file at all is kept for its results alone (a study
                        // commits only results.json; removing a finished run's checkpoints saves space).
                        if (Trainer.HasCheckpointFiles(dir)) Trainer.Recover(folder, kept);
                    }
                }
                runStarting?.Invoke(i, config, state);
                if (state == "held") continue;
                if (kept is not null)
                {
                    if (kept.Config with { Threads = null, Device = "", Snapshots = false } == config with { Threads = null, Device = "", Snapshots = false })
                    {
                        all.Add(kept);
                        continue;
                    }
                    throw new ArgumentException($"{dir} holds a completed run with another configuration; use another output folder");
                }
                data ??= ExperimentData.Load(config, locator);
                if (!modelsChecked)
                {
                    modelsChecked = true;
                    // Build every model of the grid once, so that a bad norm option fails now, not hours later.
                    foreach (var (c, _) in Runs.DistinctBy(r => (r.Config.Norm, r.Config.InputNorm)))
                        Experiment.ModelFor(c, data)().Dispose();
                }
                RunResults results;
                try
                {
                    results = Experiment.Run(config, data, dir, resume: state != "new", progress,
                        m => epochFinished?.Invoke(config, m), cancel);
                }
                catch (RunFolderLockedException)
                {
                    // Another process took the folder since it was looked at.
                    runStarting?.Invoke(i, config, "held");
                    continue;
                }
                all.Add(results);
                if (results.Status is "stopped") break;
            }
        }
        finally
        {
            if (ownData) data?.Dispose();
        }
        return all;
    }
}
