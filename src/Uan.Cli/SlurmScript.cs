using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Uan.Cli;

/// <summary>What a Slurm job of <c>uan slurm</c> asks for.</summary>
/// <param name="Tasks">Array tasks (the grid's shards).</param>
/// <param name="CpusPerTask">CPUs per task (the runs' --threads).</param>
/// <param name="Time">Time limit, in Slurm's syntax.</param>
/// <param name="TermBeforeSeconds">Seconds before the time limit at which Slurm sends SIGTERM to the batch shell (which is uan).</param>
/// <param name="Memory">Memory per node (--mem), or null for the site's default.</param>
/// <param name="Partition">Partition, or null for the default one.</param>
/// <param name="JobName">Job name of the array; the report job is named after it.</param>
public sealed record SlurmRequest(int Tasks, int CpusPerTask, string Time, int TermBeforeSeconds, string? Memory, string? Partition, string JobName);

/// <summary>
/// The sbatch scripts of <c>uan slurm</c>: the grid as a job array whose task I runs <c>uan compare</c> as shard I of
/// N (taken from SLURM_ARRAY_TASK_ID), and the job that merges the report once the array has ended.
/// </summary>
internal static partial class SlurmScript
{
    /// <summary>Folder (inside the grid folder) of the scripts and the jobs' logs.</summary>
    public const string Folder = "slurm";
    /// <summary>Script names inside <see cref="Folder"/>.</summary>
    public const string CompareScript = "compare.sbatch", ReportScript = "report.sbatch";

    /// <summary>
    /// The array script: one <c>uan compare</c> per task, <paramref name="uan"/> being the command that starts uan
    /// (absolute paths) and <paramref name="compareArguments"/> the grid's options (absolute --out and --data-dir).
    /// </summary>
    public static string Compare(SlurmRequest request, IReadOnlyList<string> uan, IReadOnlyList<string> compareArguments,
        string gridDir, int runCount)
    {
        string logs = Path.Combine(gridDir, Folder);
        var s = new StringBuilder();
        s.Append("#!/bin/bash\n");
        s.Append(CultureInfo.InvariantCulture,
            $"# The comparison grid in {gridDir} as a Slurm job array: {runCount} runs in {request.Tasks} tasks. Task I trains\n" +
            $"# the runs whose index i (0-based, the order of grid.json) has i mod {request.Tasks} = I. Written by 'uan slurm'.\n");
        s.Append("# Submit: sbatch ").Append(Path.Combine(logs, CompareScript)).Append('\n');
        s.Append("#SBATCH --job-name=").Append(request.JobName).Append('\n');
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --array=0-{request.Tasks - 1}\n");
        s.Append("#SBATCH --ntasks=1\n");
        Resources(s, request, request.Time);
        s.Append("#SBATCH --output=").Append(Path.Combine(logs, "compare-%A_%a.out")).Append('\n');
        s.Append("#SBATCH --open-mode=append\n");
        s.Append("#SBATCH --requeue\n");
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --signal=B:TERM@{request.TermBeforeSeconds}\n");
        s.Append("# exec: the batch shell becomes uan, so the SIGTERM Slurm sends before the time limit (B:TERM above), on\n");
        s.Append("# preemption or on scancel --signal=TERM reaches it. uan stops at the next step, keeps every finished epoch,\n");
        s.Append("# exits 143; the same task requeued or resubmitted resumes the run. The shard count is fixed here, so a\n");
        s.Append(CultureInfo.InvariantCulture, $"# resubmission of some tasks only (sbatch --array=1,3 this-script) trains the same shares.\n");
        s.Append("exec ").Append(Join([.. uan, "compare", "--plain"]))
            .Append(CultureInfo.InvariantCulture, $" --shard \"${{SLURM_ARRAY_TASK_ID}}/{request.Tasks}\" ")
            .Append(Join(compareArguments)).Append('\n');
        return s.ToString();
    }

    /// <summary>The job that runs <c>uan report</c> on the grid folder (submitted after the array, afterany).</summary>
    public static string Report(SlurmRequest request, IReadOnlyList<string> uan, string gridDir)
    {
        string logs = Path.Combine(gridDir, Folder);
        var s = new StringBuilder();
        s.Append("#!/bin/bash\n");
        s.Append("# Merges the comparison grid in ").Append(gridDir).Append(" and shows where each run stands. 'uan slurm --submit'\n");
        s.Append("# submits it with --dependency=afterany:<the array's job id>, so it runs once every task has ended, however.\n");
        s.Append("#SBATCH --job-name=").Append(request.JobName).Append("-report\n");
        s.Append("#SBATCH --ntasks=1\n");
        Resources(s, request with { CpusPerTask = 1 }, ReportTime(request.Time));
        s.Append("#SBATCH --output=").Append(Path.Combine(logs, "report-%j.out")).Append('\n');
        s.Append("exec ").Append(Join([.. uan, "report", gridDir])).Append('\n');
        return s.ToString();
    }

    private static void Resources(StringBuilder s, SlurmRequest request, string time)
    {
        s.Append(CultureInfo.InvariantCulture, $"#SBATCH --cpus-per-task={request.CpusPerTask}\n");
        s.Append("#SBATCH --time=").Append(time).Append('\n');
        if (request.Memory is not null) s.Append("#SBATCH --mem=").Append(request.Memory).Append('\n');
        if (request.Partition is not null) s.Append("#SBATCH --partition=").Append(request.Partition).Append('\n');
    }

    /// <summary>The report job's time limit: the array's, at most 30 minutes (a report reads files and draws plots).</summary>
    private static string ReportTime(string time) => Seconds(time) is int t && t <= 1800 ? time : "30:00";

    /// <summary>
    /// Seconds of a Slurm time limit: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S; null if <paramref name="time"/> is none of
    /// them (or zero).
    /// </summary>
    public static int? Seconds(string time)
    {
        var m = TimePattern().Match(time.Trim());
        if (!m.Success) return null;
        long Part(int g) => m.Groups[g].Success ? long.Parse(m.Groups[g].Value, CultureInfo.InvariantCulture) : 0;
        long total;
        int parts = 1 + (m.Groups[3].Success ? 1 : 0) + (m.Groups[4].Success ? 1 : 0);
        if (m.Groups[1].Success)
        {
            // D-H, D-H:M, D-H:M:S
            if (Part(2) > 23 || Part(3) > 59 || Part(4) > 59) return null;
            total = Part(1) * 86400 + Part(2) * 3600 + Part(3) * 60 + Part(4);
        }
        else
        {
            total = parts switch
            {
                1 => Part(2) * 60,
                2 => Part(3) > 59 ? -1 : Part(2) * 60 + Part(3),
                _ => Part(3) > 59 || Part(4) > 59 ? -1 : Part(2) * 3600 + Part(3) * 60 + Part(4),
            };
        }
        return total is > 0 and <= int.MaxValue ? (int)total : null;
    }

    [GeneratedRegex(@"^(?:(\d{1,4})-)?(\d{1,7})(?::(\d{1,2}))?(?::(\d{1,2}))?$", RegexOptions.CultureInvariant)]
    private static partial Regex TimePattern();

    /// <summary>A command line for bash: words with only safe characters as they are, others single-quoted.</summary>
    public static string Join(IEnumerable<string> words) => string.Join(" ", words.Select(Quote));

    /// <summary>One word for bash.</summary>
    public static string Quote(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=,+@%".Contains(c))
            ? word
            : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}
