using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Uan.Lab.Training;

/// <summary>One run of a grid as <c>grid.json</c> lists it.</summary>
/// <param name="Index">Its place in the grid's order (0-based; shard i mod N trains it).</param>
/// <param name="Folder">Its folder under the grid folder.</param>
/// <param name="Config">Its full configuration.</param>
public sealed record GridFileRun(int Index, string Folder, RunConfig Config);

/// <summary>
/// <c>grid.json</c>: the definition of a <see cref="ComparisonGrid"/> written into its folder when <c>compare</c> or
/// <c>slurm</c> starts, so that a report knows which runs are missing (not only those that left a folder) and a shard
/// can check it belongs to the grid it finds there.
/// </summary>
public sealed record GridFile
{
    /// <summary>Name of the file in the grid folder.</summary>
    public const string FileName = "grid.json";

    /// <summary>Format version.</summary>
    public int Version { get; init; } = 1;
    /// <summary>The shared part of every run's config.</summary>
    public RunConfig BaseConfig { get; init; } = new();
    /// <summary>The norms compared, in grid order.</summary>
    public List<NormChoice> Norms { get; init; } = [];
    /// <summary>The learning rates, in grid order.</summary>
    public List<double> LearningRates { get; init; } = [];
    /// <summary>The seeds, in grid order.</summary>
    public List<int> Seeds { get; init; } = [];
    /// <summary>Every run, in grid order.</summary>
    public List<GridFileRun> Runs { get; init; } = [];

    /// <summary>The file's text: indented JSON as results.json is written, without anything that varies between calls.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, RunRecord.Json) + "\n";

    /// <summary>Path of the file in <paramref name="gridDir"/>.</summary>
    public static string PathIn(string gridDir) => Path.Combine(gridDir, FileName);

    /// <summary>Reads <paramref name="gridDir"/>'s grid.json, or returns null when there is none; a damaged file is an <see cref="InvalidDataException"/>.</summary>
    public static GridFile? Load(string gridDir)
    {
        string path = PathIn(gridDir);
        if (!File.Exists(path)) return null;
        try
        {
            var file = JsonSerializer.Deserialize<GridFile>(File.ReadAllText(path), RunRecord.Json)
                       ?? throw new InvalidDataException($"{path}: empty");
            if (file.Runs is null || file.Runs.Count == 0 || file.Runs.Any(r => r?.Config is null || string.IsNullOrWhiteSpace(r.Folder)))
                throw new InvalidDataException($"{path}: no run list");
            for (int i = 0; i < file.Runs.Count; i++)
                if (file.Runs[i].Index != i) throw new InvalidDataException($"{path}: run {i} has index {file.Runs[i].Index}");
            return file;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a grid file ({e.Message})", e);
        }
    }

    /// <summary>The runs with their folders under <paramref name="gridDir"/>.</summary>
    public IReadOnlyList<(RunConfig Config, string RunDir)> RunsIn(string gridDir) =>
        Runs.Select(r => (r.Config, Path.Combine(gridDir, r.Folder))).ToArray();

    /// <summary>
    /// Whether <paramref name="other"/> is the same grid: the same runs, in the same order, in the same folders, with
    /// the same configurations up to what does not change results (threads, device, snapshots).
    /// </summary>
    public bool SameGridAs(GridFile other)
    {
        ArgumentNullException.ThrowIfNull(other);
        static string Key(GridFile f) => string.Join("\n", f.Runs.Select(r =>
            $"{r.Index}|{r.Folder}|{JsonSerializer.Serialize(Comparable(r.Config), RunRecord.Json)}"));
        return Key(this) == Key(other);
    }

    /// <summary>A config without the fields that do not change a run's results.</summary>
    public static RunConfig Comparable(RunConfig config) => config with { Threads = null, Device = "", Snapshots = false };
}

/// <summary>Where one run of a grid stands.</summary>
/// <param name="Index">Its place in the grid (0-based).</param>
/// <param name="Config">Its configuration.</param>
/// <param name="RunDir">Its folder.</param>
/// <param name="State">completed (finished: completed or diverged), running (its folder's lock is held), stopped
/// (results.json says it is not finished: stopped, killed while running, failed), or missing (no results.json yet).</param>
/// <param name="Epochs">Finished epochs recorded.</param>
/// <param name="Detail">The results' status when it is not the state's name, the holder of a running run, or null.</param>
public sealed record GridRunStatus(int Index, RunConfig Config, string RunDir, string State, int Epochs, string? Detail);

/// <summary>
/// The state of every run of a grid, for a grid folder that several processes (a Slurm job array) work on: which runs
/// are completed, running (lock held), stopped, or missing.
/// </summary>
public sealed class GridStatus
{
    /// <summary>The four states, in table order.</summary>
    public static readonly string[] States = ["completed", "running", "stopped", "missing"];

    private GridStatus(IReadOnlyList<GridRunStatus> runs) => Runs = runs;

    /// <summary>One entry per run, in grid order.</summary>
    public IReadOnlyList<GridRunStatus> Runs { get; }

    /// <summary>Runs in <paramref name="state"/>.</summary>
    public int Count(string state) => Runs.Count(r => r.State == state);

    /// <summary>Whether every run is finished (completed or diverged), so the merged report is final.</summary>
    public bool AllFinished => Runs.All(r => r.State == "completed");

    /// <summary>
    /// Looks at each run folder without writing anything into it: results.json for the status, and the folder's lock
    /// (<see cref="RunFolder.IsHeld"/>) for a process working on it.
    /// </summary>
    public static GridStatus Of(IReadOnlyList<(RunConfig Config, string RunDir)> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        var list = new List<GridRunStatus>(runs.Count);
        for (int i = 0; i < runs.Count; i++)
        {
            var (config, dir) = runs[i];
            string status = ComparisonGrid.StateOf(dir);
            int epochs = 0;
            if (status is not ("new" or "unreadable"))
            {
                try { epochs = RunResults.Load(dir).Epochs?.Count ?? 0; }
                catch (InvalidDataException) { status = "unreadable"; }
            }
            string state;
            string? detail = null;
            if (RunFolder.IsHeld(dir, out var holder))
            {
                state = "running";
                detail = holder;
            }
            else if (status is "completed" or "diverged")
            {
                state = "completed";
                if (status != "completed") detail = status;
            }
            else if (status == "new") state = "missing";
            else
            {
                state = "stopped";
                if (status != "stopped") detail = status == "running" ? "killed while running" : status;
            }
            list.Add(new GridRunStatus(i, config, dir, state, epochs, detail));
        }
        return new GridStatus(list);
    }

    /// <summary>"4 runs: 2 completed, 1 running, 1 stopped, 0 missing".</summary>
    public string Summary() =>
        $"{Runs.Count} runs: {string.Join(", ", States.Select(s => $"{Count(s)} {s}"))}";

    /// <summary>
    /// The summary and a Markdown table with one row per run (number from 1, folder, state, epochs, detail); with
    /// <paramref name="shards"/>, a column with the shard (0-based) that trains each run.
    /// </summary>
    public string ToMarkdown(int? shards = null)
    {
        var md = new StringBuilder();
        md.Append("Grid status: ").Append(Summary()).Append("\n\n");
        md.Append(shards is null ? "| # | run | state | epochs | detail |\n|---|---|---|---|---|\n"
            : "| # | shard | run | state | epochs | detail |\n|---|---|---|---|---|---|\n");
        foreach (var r in Runs)
            md.Append(CultureInfo.InvariantCulture, $"| {r.Index + 1} |{(shards is int n ? $" {r.Index % n} |" : "")} {Path.GetFileName(r.RunDir)} | {r.State} | {r.Epochs}/{r.Config.Epochs} | {r.Detail ?? ""} |\n");
        return md.ToString();
    }
}
