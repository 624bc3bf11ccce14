using System.Globalization;
using Uan.Lab.Adaptation;
using Uan.Lab.Training;

namespace Uan.Lab.Reporting;

/// <summary>One <c>results.json</c> read from disk.</summary>
/// <param name="Directory">The run folder (the file's directory).</param>
/// <param name="Results">The parsed file.</param>
public sealed record LoadedRun(string Directory, RunResults Results)
{
    /// <summary>The run's grouping key.</summary>
    public RunGroupKey Key => RunGroupKey.Of(Results.Config);
}

/// <summary>One AdaMatch <c>results.json</c> (its <c>kind</c> is "adamatch") read from disk.</summary>
/// <param name="Directory">The run folder (the file's directory).</param>
/// <param name="Results">The parsed file.</param>
public sealed record LoadedAdaMatchRun(string Directory, AdaMatchResults Results)
{
    /// <summary>The last finished epoch, or null before the first one.</summary>
    public AdaMatchEpoch? LastEpoch => Results.Epochs.Count > 0 ? Results.Epochs[^1] : null;

    /// <summary>Training steps done by the end of <paramref name="epoch"/> (epoch × steps per epoch).</summary>
    public long StepsAt(int epoch) => epoch * Results.StepsPerEpoch;
}

/// <summary>What makes runs repeats of one another: everything but the seed.</summary>
/// <param name="Dataset">Dataset id.</param>
/// <param name="Model">Model id.</param>
/// <param name="Label">The run's label, or a label built from its norm specs (see <see cref="LabelOf"/>).</param>
/// <param name="LearningRate">Learning rate.</param>
public readonly record struct RunGroupKey(string Dataset, string Model, string Label, double LearningRate)
{
    /// <summary>The key of a run with configuration <paramref name="config"/>.</summary>
    public static RunGroupKey Of(RunConfig config) =>
        new(config.Dataset, config.Model, LabelOf(config), config.LearningRate);

    /// <summary>
    /// The label tables and plots show: <see cref="RunConfig.Label"/> when set, otherwise the norm spec, with the input
    /// norm appended when there is one (DenseNet), so that runs differing only there do not merge.
    /// </summary>
    public static string LabelOf(RunConfig config)
    {
        if (!string.IsNullOrWhiteSpace(config.Label)) return config.Label.Trim();
        return string.IsNullOrWhiteSpace(config.InputNorm) || IsNone(config.InputNorm)
            ? config.Norm
            : $"{config.Norm} (input {config.InputNorm})";
    }

    /// <summary>
    /// The norm family (BN, MN, UAN, ...) used to order rows and to match the paper's rows: taken from the label when
    /// one is set, otherwise from the input norm when there is one (in the DenseNet setup the input norm is the one
    /// under study), otherwise from the norm spec. It is the leading run of letters, upper-cased ("uan:k=3" → UAN,
    /// "MN-1" → MN).
    /// </summary>
    public static string NormFamilyOf(RunConfig config)
    {
        string source = !string.IsNullOrWhiteSpace(config.Label) ? config.Label
            : !string.IsNullOrWhiteSpace(config.InputNorm) && !IsNone(config.InputNorm) ? config.InputNorm
            : config.Norm;
        return FamilyOf(source);
    }

    /// <summary>The leading run of letters of a spec or label, upper-cased ("uan:k=3" → UAN), or the whole of it.</summary>
    internal static string FamilyOf(string spec)
    {
        var letters = new string(spec.Trim().TakeWhile(char.IsLetter).ToArray());
        return letters.Length == 0 ? spec.Trim().ToUpperInvariant() : letters.ToUpperInvariant();
    }

    private static bool IsNone(string spec) => spec.Trim().Equals("none", StringComparison.OrdinalIgnoreCase);

    /// <summary>"dataset / model / label / lr" for messages.</summary>
    public override string ToString() =>
        $"{Dataset} / {Model} / {Label} / lr {LearningRate.ToString("G", CultureInfo.InvariantCulture)}";
}

/// <summary>Runs that differ only by seed.</summary>
public sealed class RunGroup
{
    internal RunGroup(RunGroupKey key, string normFamily, IReadOnlyList<LoadedRun> runs)
    {
        Key = key;
        NormFamily = normFamily;
        Runs = runs;
    }

    /// <summary>What the runs share.</summary>
    public RunGroupKey Key { get; }
    /// <summary>BN, MN, UAN, ... (see <see cref="RunGroupKey.NormFamilyOf"/>).</summary>
    public string NormFamily { get; }
    /// <summary>The runs, ordered by seed, then folder.</summary>
    public IReadOnlyList<LoadedRun> Runs { get; }

    /// <summary>"BN lr=0.001" style name for legends.</summary>
    public string DisplayName =>
        $"{Key.Label} lr={Key.LearningRate.ToString("G", CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Row order: BN, MN, UAN, then any other family alphabetically; within a family by learning rate, then label.
    /// </summary>
    public static int Compare(RunGroup a, RunGroup b)
    {
        int c = FamilyRank(a.NormFamily).CompareTo(FamilyRank(b.NormFamily));
        if (c == 0) c = string.Compare(a.NormFamily, b.NormFamily, StringComparison.Ordinal);
        if (c == 0) c = a.Key.LearningRate.CompareTo(b.Key.LearningRate);
        if (c == 0) c = string.Compare(a.Key.Label, b.Key.Label, StringComparison.Ordinal);
        return c;
    }

    private static int FamilyRank(string family) => family switch { "BN" => 0, "MN" => 1, "UAN" => 2, _ => 3 };
}

/// <summary>
/// Every <c>results.json</c> under a folder: classification runs grouped across seeds, and AdaMatch runs apart (see
/// <see cref="AdaMatchTable"/> for their grouping). Files that cannot be read are skipped and listed in
/// <see cref="Warnings"/>: one broken run folder must not stop a report over dozens of good ones.
/// </summary>
public sealed class RunCollection
{
    private RunCollection(string root, IReadOnlyList<LoadedRun> runs, IReadOnlyList<LoadedAdaMatchRun> adaMatchRuns,
        IReadOnlyList<string> warnings)
    {
        Root = root;
        Runs = runs;
        AdaMatchRuns = adaMatchRuns;
        Warnings = warnings;
        Groups = runs
            .GroupBy(r => r.Key)
            .Select(g => new RunGroup(g.Key, RunGroupKey.NormFamilyOf(g.First().Results.Config),
                g.OrderBy(r => r.Results.Config.Seed).ThenBy(r => r.Directory, StringComparer.Ordinal).ToList()))
            .OrderBy(g => g.Key.Dataset, StringComparer.Ordinal)
            .ThenBy(g => g.Key.Model, StringComparer.Ordinal)
            .ThenBy(g => g, Comparer<RunGroup>.Create(RunGroup.Compare))
            .ToList();
    }

    /// <summary>The folder that was searched (full path).</summary>
    public string Root { get; }

    /// <summary>
    /// <paramref name="path"/> as a committed report may show it: relative to the current folder when it lies under
    /// it, else "…/" and its last component; never an absolute path of the machine the report was made on.
    /// </summary>
    public static string DisplayPath(string path)
    {
        var full = Path.GetFullPath(path);
        var relative = Path.GetRelativePath(Directory.GetCurrentDirectory(), full);
        if (!Path.IsPathRooted(relative) && !relative.StartsWith("..", StringComparison.Ordinal))
            return relative.Replace(Path.DirectorySeparatorChar, '/');
        return "…/" + Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar));
    }
    /// <summary>Classification runs read, ordered by folder.</summary>
    public IReadOnlyList<LoadedRun> Runs { get; }
    /// <summary>AdaMatch runs read, ordered by folder.</summary>
    public IReadOnlyList<LoadedAdaMatchRun> AdaMatchRuns { get; }
    /// <summary>One message per file skipped or oddity found.</summary>
    public IReadOnlyList<string> Warnings { get; }
    /// <summary>Groups ordered by dataset, model, then <see cref="RunGroup.Compare"/>.</summary>
    public IReadOnlyList<RunGroup> Groups { get; }

    /// <summary>The distinct (dataset, model) pairs, in group order.</summary>
    public IReadOnlyList<(string Dataset, string Model)> Experiments =>
        Groups.Select(g => (g.Key.Dataset, g.Key.Model)).Distinct().ToList();

    /// <summary>Builds a collection from runs already in memory (tests, or a caller that filtered them).</summary>
    public static RunCollection FromRuns(string root, IEnumerable<LoadedRun> runs, IEnumerable<string>? warnings = null,
        IEnumerable<LoadedAdaMatchRun>? adaMatchRuns = null) =>
        new(root, runs.OrderBy(r => r.Directory, StringComparer.Ordinal).ToList(),
            (adaMatchRuns ?? []).OrderBy(r => r.Directory, StringComparer.Ordinal).ToList(), warnings?.ToList() ?? []);

    /// <summary>
    /// Reads every <c>results.json</c> under <paramref name="root"/>, at any depth: AdaMatch files (see
    /// <see cref="AdaMatchResults.IsAdaMatchFile"/>) into <see cref="AdaMatchRuns"/>, the others into
    /// <see cref="Runs"/>. Throws
    /// <see cref="DirectoryNotFoundException"/> only when <paramref name="root"/> itself does not exist.
    /// </summary>
    public static RunCollection Load(string root)
    {
        var full = Path.GetFullPath(root).TrimEnd(Path.DirectorySeparatorChar);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"runs folder not found: {full}");
        string Shown(string path) => DisplayPath(full) + "/" + Path.GetRelativePath(full, path).Replace(Path.DirectorySeparatorChar, '/');

        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            IgnoreInaccessible = true,
            MatchCasing = MatchCasing.CaseSensitive,
            AttributesToSkip = FileAttributes.System,
        };
        var runs = new List<LoadedRun>();
        var adaMatchRuns = new List<LoadedAdaMatchRun>();
        var warnings = new List<string>();
        foreach (var file in Directory.EnumerateFiles(full, RunResults.FileName, options).Order(StringComparer.Ordinal))
        {
            try
            {
                if (AdaMatchResults.IsAdaMatchFile(file))
                {
                    var adaMatch = AdaMatchResults.Load(file);
                    if (adaMatch.Config is null || adaMatch.Epochs is null)
                        warnings.Add($"{Shown(file)}: skipped, the AdaMatch file has no config or no epoch list");
                    else
                        adaMatchRuns.Add(new LoadedAdaMatchRun(Path.GetDirectoryName(file)!, adaMatch));
                    continue;
                }
                var results = RunResults.Load(file);
                if (results.Config is null || results.Epochs is null)
                {
                    warnings.Add($"{Shown(file)}: skipped, the file has no config or no epoch list");
                    continue;
                }
                runs.Add(new LoadedRun(Path.GetDirectoryName(file)!, results));
            }
            // Anything a damaged or foreign file can throw; a report over many runs must survive one bad file.
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                warnings.Add($"{Shown(file)}: skipped ({e.Message.Replace(file, Shown(file))})");
            }
        }

        var unfinished = runs.Where(r => r.Results.Epochs.Count == 0).Select(r => (r.Directory, r.Results.Status))
            .Concat(adaMatchRuns.Where(r => r.Results.Epochs.Count == 0).Select(r => (r.Directory, r.Results.Status)))
            .OrderBy(r => r.Directory, StringComparer.Ordinal);
        foreach (var (directory, status) in unfinished)
            warnings.Add($"{Shown(directory)}: no finished epoch yet (status {status})");
        foreach (var dup in runs.GroupBy(r => (r.Key, r.Results.Config.Seed)).Where(g => g.Count() > 1))
            warnings.Add($"{dup.Key.Key}, seed {dup.Key.Seed}: {dup.Count()} runs ({string.Join(", ",
                dup.Select(r => Path.GetRelativePath(full, r.Directory)))}); all are averaged as separate repeats");
        return new RunCollection(full, runs, adaMatchRuns, warnings);
    }
}
