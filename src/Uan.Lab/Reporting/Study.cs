using System.Globalization;
using Uan.Lab.Training;

namespace Uan.Lab.Reporting;

/// <summary>
/// One arm of a study: the finished runs of one label in one sub-grid (same grid folder, dataset, model, batch size and
/// learning rate), one run per seed.
/// </summary>
/// <param name="Label">The arm's label (BN, UAN, ...).</param>
/// <param name="Runs">Finished runs, one per seed, ascending by seed.</param>
public sealed record StudyArm(string Label, IReadOnlyList<LoadedRun> Runs)
{
    /// <summary>The seeds of <see cref="Runs"/>.</summary>
    public IReadOnlyList<int> Seeds => Runs.Select(r => r.Results.Config.Seed).ToList();

    /// <summary>The finite values of <paramref name="value"/> by seed.</summary>
    public IReadOnlyDictionary<int, double> Values(Func<RunResults, double?> value)
    {
        var map = new SortedDictionary<int, double>();
        foreach (var r in Runs)
            if (value(r.Results) is { } v && double.IsFinite(v)) map[r.Results.Config.Seed] = v;
        return map;
    }
}

/// <summary>Runs of one grid folder that share dataset, model, batch size and learning rate; one arm per label.</summary>
/// <param name="Grid">The grid folder's name (fmnist-b64).</param>
/// <param name="Dataset">Dataset id.</param>
/// <param name="Model">Model id.</param>
/// <param name="BatchSize">Training batch size.</param>
/// <param name="LearningRate">Learning rate.</param>
/// <param name="Arms">Arms in study order (BN, UAN, MN, GN, then the others by label).</param>
public sealed record StudySubGrid(string Grid, string Dataset, string Model, int BatchSize, double LearningRate,
    IReadOnlyList<StudyArm> Arms)
{
    /// <summary>"fmnist-b64: fashion-mnist / shallow-cnn, batch 64, lr 0.001".</summary>
    public string Title => string.Create(CultureInfo.InvariantCulture,
        $"{Grid}: {Dataset} / {Model}, batch {BatchSize}, lr {LearningRate:G}");

    /// <summary>"batch 64, lr 0.001" for legends and short cells.</summary>
    public string Short => string.Create(CultureInfo.InvariantCulture, $"batch {BatchSize}, lr {LearningRate:G}");

    /// <summary>The arm labelled <paramref name="label"/> (case-insensitive), or null.</summary>
    public StudyArm? Arm(string label) =>
        Arms.FirstOrDefault(a => string.Equals(a.Label, label, StringComparison.OrdinalIgnoreCase));
}

/// <summary>A grid folder's finished AdaMatch runs and their table (groups by arm), built once per study.</summary>
/// <param name="Grid">The grid folder's name (adapt-mnistm-like).</param>
/// <param name="Runs">The grid's finished AdaMatch runs.</param>
/// <param name="Table">The runs grouped by arm, as <see cref="AdaMatchTable.Build"/> makes it.</param>
public sealed record StudyAdaMatchGrid(string Grid, RunCollection Runs, AdaMatchTable Table)
{
    /// <summary>True for an arm with UAN on the input (its label names UAN), the arms claim 4 is about.</summary>
    public static bool IsUanArm(AdaMatchGroup group) => group.Label.Contains("UAN", StringComparison.Ordinal);
}

/// <summary>
/// A study folder: one folder per grid (<c>study/fmnist-b64/BN-lr0.001-s1/results.json</c>), each read with
/// <see cref="RunCollection.Load"/>. Classification runs form sub-grids and arms; AdaMatch runs stay per grid. Only
/// finished runs (status completed or diverged) are used; the others are listed as in progress.
/// </summary>
public sealed class Study
{
    /// <summary>Statuses of a run that will not change any more.</summary>
    public static readonly IReadOnlyList<string> FinishedStatuses = ["completed", "diverged"];

    private Study(string root, IReadOnlyList<string> grids, IReadOnlyList<StudySubGrid> subGrids,
        IReadOnlyList<StudyAdaMatchGrid> adaMatch, IReadOnlyList<string> used,
        IReadOnlyList<string> inProgress, IReadOnlyList<string> warnings)
    {
        Root = root;
        Grids = grids;
        SubGrids = subGrids;
        AdaMatch = adaMatch;
        UsedRuns = used;
        InProgress = inProgress;
        Warnings = warnings;
    }

    /// <summary>The study folder (full path).</summary>
    public string Root { get; }
    /// <summary>Grid folders that hold at least one results.json, in ordinal order.</summary>
    public IReadOnlyList<string> Grids { get; }
    /// <summary>Classification sub-grids, ordered by grid, batch size (descending), learning rate.</summary>
    public IReadOnlyList<StudySubGrid> SubGrids { get; }
    /// <summary>Grid folders with AdaMatch runs, with only their finished AdaMatch runs.</summary>
    public IReadOnlyList<StudyAdaMatchGrid> AdaMatch { get; }
    /// <summary>The run folders used, relative to the study folder, ordinal order.</summary>
    public IReadOnlyList<string> UsedRuns { get; }
    /// <summary>"grid/run (status running, 3 of 8 epochs)" for each run not used because it has not finished.</summary>
    public IReadOnlyList<string> InProgress { get; }
    /// <summary>Files skipped and duplicates, one message each.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>True when a status is one of <see cref="FinishedStatuses"/>.</summary>
    public static bool IsFinished(string status) => FinishedStatuses.Contains(status, StringComparer.Ordinal);

    /// <summary>Arm order: BN, UAN, MN, GN, then the others by label.</summary>
    internal static int ArmRank(string label) => label.ToUpperInvariant() switch
    {
        "BN" => 0, "UAN" => 1, "MN" => 2, "GN" => 3, _ => 4,
    };

    /// <summary>Reads every grid folder directly under <paramref name="root"/>.</summary>
    public static Study Load(string root)
    {
        var full = Path.GetFullPath(root).TrimEnd(Path.DirectorySeparatorChar);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"study folder not found: {full}");
        var grids = new List<string>();
        var subGrids = new List<StudySubGrid>();
        var adaMatch = new List<StudyAdaMatchGrid>();
        var used = new List<string>();
        var inProgress = new List<string>();
        var warnings = new List<string>();
        foreach (var dir in Directory.EnumerateDirectories(full).Order(StringComparer.Ordinal))
        {
            string grid = Path.GetFileName(dir);
            var runs = RunCollection.Load(dir);
            if (runs.Runs.Count == 0 && runs.AdaMatchRuns.Count == 0 && runs.Warnings.Count == 0) continue;
            grids.Add(grid);
            warnings.AddRange(runs.Warnings.Where(w => !w.Contains("no finished epoch yet", StringComparison.Ordinal)));
            string Rel(string d) => grid + "/" + Path.GetRelativePath(dir, d).Replace(Path.DirectorySeparatorChar, '/');

            var finished = new List<LoadedRun>();
            foreach (var r in runs.Runs)
                if (IsFinished(r.Results.Status)) { finished.Add(r); used.Add(Rel(r.Directory)); }
                else inProgress.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{Rel(r.Directory)} (status {r.Results.Status}, {r.Results.Epochs.Count} of {r.Results.Config.Epochs} epochs)"));
            var finishedAdaMatch = new List<LoadedAdaMatchRun>();
            foreach (var r in runs.AdaMatchRuns)
                if (IsFinished(r.Results.Status)) { finishedAdaMatch.Add(r); used.Add(Rel(r.Directory)); }
                else inProgress.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{Rel(r.Directory)} (status {r.Results.Status}, {r.Results.Epochs.Count} of {r.Results.Config.Epochs} epochs)"));
            if (finishedAdaMatch.Count > 0)
            {
                var adaMatchRuns = RunCollection.FromRuns(dir, [], adaMatchRuns: finishedAdaMatch);
                adaMatch.Add(new StudyAdaMatchGrid(grid, adaMatchRuns, AdaMatchTable.Build(adaMatchRuns)));
            }

            foreach (var sub in finished
                         .GroupBy(r => (r.Results.Config.Dataset, r.Results.Config.Model, r.Results.Config.BatchSize,
                             r.Results.Config.LearningRate))
                         .OrderBy(g => g.Key.Dataset, StringComparer.Ordinal).ThenBy(g => g.Key.Model, StringComparer.Ordinal)
                         .ThenByDescending(g => g.Key.BatchSize).ThenBy(g => g.Key.LearningRate))
            {
                var arms = new List<StudyArm>();
                foreach (var arm in sub.GroupBy(r => RunGroupKey.LabelOf(r.Results.Config))
                             .OrderBy(g => ArmRank(g.Key)).ThenBy(g => g.Key, StringComparer.Ordinal))
                {
                    var bySeed = new List<LoadedRun>();
                    foreach (var seed in arm.GroupBy(r => r.Results.Config.Seed).OrderBy(g => g.Key))
                    {
                        var ordered = seed.OrderBy(r => r.Directory, StringComparer.Ordinal).ToList();
                        bySeed.Add(ordered[0]);
                        if (ordered.Count > 1)
                            warnings.Add(string.Create(CultureInfo.InvariantCulture,
                                $"{arm.Key}, seed {seed.Key}: {ordered.Count} finished runs ({string.Join(", ", ordered.Select(r => Rel(r.Directory)))}); only {Rel(ordered[0].Directory)} is used"));
                    }
                    arms.Add(new StudyArm(arm.Key, bySeed));
                }
                subGrids.Add(new StudySubGrid(grid, sub.Key.Dataset, sub.Key.Model, sub.Key.BatchSize, sub.Key.LearningRate, arms));
            }
        }
        used.Sort(StringComparer.Ordinal);
        inProgress.Sort(StringComparer.Ordinal);
        return new Study(full, grids, subGrids, adaMatch, used, inProgress, warnings);
    }
}
