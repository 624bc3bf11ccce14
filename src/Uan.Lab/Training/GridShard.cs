using System.Globalization;

namespace Uan.Lab.Training;

/// <summary>
/// One share of a <see cref="ComparisonGrid"/> among <see cref="Count"/> workers: run index i (0-based, in
/// <see cref="ComparisonGrid.Runs"/> order) belongs to shard i mod <see cref="Count"/>. Shards are numbered from 0, as
/// Slurm array task ids (<c>--array=0-(N-1)</c>) and Kubernetes completion indexes are.
/// </summary>
/// <param name="Index">This shard, 0..Count-1.</param>
/// <param name="Count">How many shards share the grid, ≥ 1.</param>
public readonly record struct GridShard(int Index, int Count)
{
    /// <summary>Slurm's variables for an array task: its id, the array's size, its lowest and highest ids.</summary>
    public const string SlurmTaskId = "SLURM_ARRAY_TASK_ID", SlurmTaskCount = "SLURM_ARRAY_TASK_COUNT",
        SlurmTaskMin = "SLURM_ARRAY_TASK_MIN", SlurmTaskMax = "SLURM_ARRAY_TASK_MAX";

    /// <summary>Whether run <paramref name="runIndex"/> of the grid is this shard's.</summary>
    public bool Owns(int runIndex) => Count > 0 && runIndex % Count == Index;

    /// <summary>The indexes of this shard's runs among <paramref name="runCount"/>, ascending.</summary>
    public IReadOnlyList<int> RunsOf(int runCount) =>
        Enumerable.Range(0, Math.Max(0, runCount)).Where(Owns).ToArray();

    /// <summary>"1/4": index and count as <c>--shard</c> takes them.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Index}/{Count}");

    /// <summary>
    /// Parses <c>I/N</c> (0 ≤ I &lt; N); throws <see cref="ArgumentException"/> with a one-line message naming
    /// <paramref name="option"/> and what is accepted.
    /// </summary>
    public static GridShard Parse(string text, string option = "--shard")
    {
        ArgumentNullException.ThrowIfNull(text);
        string expected = $"{option} must be I/N with N ≥ 1 and 0 ≤ I < N (shards count from 0, as Slurm array task ids), got '{text}'";
        int slash = text.IndexOf('/');
        if (slash <= 0 || slash != text.LastIndexOf('/')) throw new ArgumentException(expected);
        if (!TryInt(text[..slash], out int index) || !TryInt(text[(slash + 1)..], out int count) || count < 1 || index < 0 || index >= count)
            throw new ArgumentException(expected);
        return new GridShard(index, count);
    }

    /// <summary>
    /// The shard of a Slurm array task, from <see cref="SlurmTaskId"/> and the array's size
    /// (<see cref="SlurmTaskCount"/>, else <see cref="SlurmTaskMax"/> − <see cref="SlurmTaskMin"/> + 1); the index is
    /// the task id minus the array's lowest id, so <c>--array=1-4</c> works as <c>--array=0-3</c> does. Null outside
    /// an array task. <paramref name="source"/> says where the shard came from, for the first output line. Throws
    /// <see cref="ArgumentException"/> when the variables are there but do not describe a contiguous array.
    /// </summary>
    public static GridShard? FromEnvironment(Func<string, string?> environment, out string? source)
    {
        ArgumentNullException.ThrowIfNull(environment);
        source = null;
        string? id = environment(SlurmTaskId);
        if (string.IsNullOrWhiteSpace(id)) return null;
        string? countText = environment(SlurmTaskCount), minText = environment(SlurmTaskMin), maxText = environment(SlurmTaskMax);
        if (!TryInt(id, out int taskId) || taskId < 0)
            throw new ArgumentException($"{SlurmTaskId}='{id}' is not a task id; give --shard I/N");
        int min = TryInt(minText, out int m) ? m : 0;
        int count;
        string size;
        if (TryInt(countText, out int c) && c >= 1)
        {
            count = c;
            size = $"{SlurmTaskCount}={c}";
        }
        else if (TryInt(minText, out _) && TryInt(maxText, out int max) && max >= min)
        {
            count = max - min + 1;
            size = $"{SlurmTaskMin}={min}, {SlurmTaskMax}={max}";
        }
        else
            throw new ArgumentException($"{SlurmTaskId}={taskId} is set, but neither {SlurmTaskCount} nor {SlurmTaskMin}/{SlurmTaskMax} give the array's size; give --shard I/N");
        int index = taskId - min;
        if (index < 0 || index >= count)
            throw new ArgumentException($"{SlurmTaskId}={taskId} does not fit an array of {count} tasks from {min} ({size}); " +
                                        "submit a contiguous array (--array=0-N-1, no step) or give --shard I/N");
        source = $"{SlurmTaskId}={taskId}, {size}";
        return new GridShard(index, count);
    }

    private static bool TryInt(string? text, out int value) =>
        int.TryParse(text?.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out value);
}
