using System.CommandLine;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary>
/// <c>uan slurm</c>: the comparison grid as a Slurm job array. Takes the grid options of <c>compare</c>, writes
/// grid.json and two sbatch scripts into the grid folder (the array, one <c>uan compare</c> shard per task, and the
/// report job), prints the array script; with <c>--submit</c> submits both through <c>sbatch</c>, the report job
/// after the array (afterany). uan talks to Slurm only by running <c>sbatch</c>.
/// </summary>
internal static partial class SlurmCommand
{
    /// <summary>Default time limit of each array task.</summary>
    public const string DefaultTime = "4:00:00";
    /// <summary>Default lead of the SIGTERM before the time limit, seconds.</summary>
    public const int DefaultTermBefore = 120;

    public static Command Create(Ui ui)
    {
        var options = new GridOptions();
        var tasks = new Option<int?>("--tasks", "--array-size")
        { Description = "Array tasks, each a shard of the grid (at most the number of runs)" }.InRange(1, 100_000).WhenAbsent("one per run");
        var time = new Option<string>("--time", "-t")
        { Description = "Time limit of each task, in Slurm's syntax (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S)", DefaultValueFactory = _ => DefaultTime };
        var termBefore = new Option<int>("--term-before")
        {
            Description = "Seconds before the time limit at which Slurm sends SIGTERM to uan, which then saves and exits 143 (less than --time)",
            DefaultValueFactory = _ => DefaultTermBefore,
        }.InRange(1, 65_535);
        var mem = new Option<string?>("--mem") { Description = "Memory per task, as sbatch takes it (e.g. 4G)" }.WhenAbsent("the site's");
        var partition = new Option<string?>("--partition", "-p") { Description = "Partition" }.WhenAbsent("the cluster's default");
        var jobName = new Option<string>("--job-name") { Description = "Job name of the array (the report job adds -report)", DefaultValueFactory = _ => "uan-compare" };
        var submit = new Option<bool>("--submit") { Description = "Submit the array with sbatch, then the report job after it (--dependency=afterany)" };
        var command = new Command("slurm",
            "Write (and with --submit, submit) a Slurm job array that trains the comparison grid, one shard per task " +
            "(the options of compare, plus the job's), and a report job that merges the results once the array has ended. " +
            "--threads (default 1) is each task's --cpus-per-task.");
        options.AddTo(command);
        foreach (var o in new Option[] { tasks, time, termBefore, mem, partition, jobName, submit }) command.Options.Add(o);
        command.SetAction(p => UanCommand.Guard(ui, () =>
        {
            string limit = p.GetValue(time)!.Trim();
            int seconds = SlurmScript.Seconds(limit)
                          ?? throw new ArgumentException($"--time must be a Slurm time limit (M, M:S, H:M:S, D-H, D-H:M or D-H:M:S), got '{limit}'");
            int lead = p.GetValue(termBefore);
            if (lead >= seconds)
                throw new ArgumentException($"--term-before ({lead} s) must be shorter than --time ({limit}, {seconds} s)");
            string? memory = p.GetValue(mem)?.Trim();
            if (memory is not null && !MemoryPattern().IsMatch(memory))
                throw new ArgumentException($"--mem must be a size as sbatch takes it (a number with an optional K, M, G or T), got '{memory}'");
            string? part = p.GetValue(partition)?.Trim();
            if (part is not null && !NamePattern().IsMatch(part))
                throw new ArgumentException($"--partition must be a partition name (letters, digits, - _ . and commas), got '{part}'");
            string name = p.GetValue(jobName)!.Trim();
            if (!NamePattern().IsMatch(name))
                throw new ArgumentException($"--job-name must be letters, digits, - _ . or commas, got '{name}'");
            string? sbatch = null;
            if (p.GetValue(submit))
                sbatch = FindOnPath("sbatch")
                         ?? throw new FileNotFoundException("sbatch is not on PATH: run 'uan slurm --submit' on a Slurm login node, or drop --submit and submit the script with sbatch yourself");

            var grid = options.Build(p, threads: 1);
            string gridDir = Path.GetFullPath(grid.Directory);
            if (gridDir.Any(c => char.IsWhiteSpace(c) || c is '%' or '\\' or '"' or '\''))
                throw new ArgumentException($"--out: '{gridDir}' has a space, quote, backslash or %, which sbatch's #SBATCH lines and log patterns do not take; choose another folder");
            int n = p.GetValue(tasks) ?? grid.Runs.Count;
            if (n > grid.Runs.Count)
                throw new ArgumentException($"--tasks {n} is more than the grid's {grid.Runs.Count} runs; give at most {grid.Runs.Count}");
            var request = new SlurmRequest(n, grid.BaseConfig.Threads ?? 1, limit, lead, memory, part, name);
            var uan = SelfCommand();
            string compareScript = SlurmScript.Compare(request, uan,
                GridOptions.CompareArguments(grid, gridDir, GridOptions.DataDir(p)), gridDir, grid.Runs.Count);
            string reportScript = SlurmScript.Report(request, uan, gridDir);

            using var folder = OutputFolder.Claim(grid.Directory, "--out");
            grid.WriteFile(mustMatch: true);
            string logs = Path.Combine(gridDir, SlurmScript.Folder);
            Directory.CreateDirectory(logs);
            string comparePath = Path.Combine(logs, SlurmScript.CompareScript), reportPath = Path.Combine(logs, SlurmScript.ReportScript);
            Uan.Lab.AtomicFile.WriteAllText(comparePath, compareScript);
            Uan.Lab.AtomicFile.WriteAllText(reportPath, reportScript);
            if (!OperatingSystem.IsWindows())
                foreach (var script in new[] { comparePath, reportPath })
                    File.SetUnixFileMode(script, File.GetUnixFileMode(script) | UnixFileMode.UserExecute);
            ui.Result(compareScript.TrimEnd());
            ui.Result($"written: {comparePath}");
            ui.Result($"written: {reportPath}");
            if (sbatch is null)
            {
                ui.Info($"submit with: sbatch {comparePath}; then merge with: sbatch --dependency=afterany:<job id> {reportPath} (or 'uan report {gridDir}')");
                return 0;
            }
            string array = Submit(sbatch, [comparePath]);
            ui.Result($"submitted array job {array} ({n} tasks, {grid.Runs.Count} runs); logs: {Path.Combine(logs, $"compare-{array}_<task>.out")}");
            string report = Submit(sbatch, [$"--dependency=afterany:{array}", reportPath]);
            ui.Result($"submitted report job {report}, to run once every task of {array} has ended; log: {Path.Combine(logs, $"report-{report}.out")}");
            return 0;
        }));
        return command;
    }

    [GeneratedRegex(@"^\d+[KMGT]?$", RegexOptions.CultureInvariant)]
    private static partial Regex MemoryPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_.,-]+$", RegexOptions.CultureInvariant)]
    private static partial Regex NamePattern();

    /// <summary>
    /// How to start this uan from a batch job, with absolute paths: the apphost itself, or <c>dotnet Uan.Cli.dll</c>
    /// when it runs under the dotnet host (or inside another host, as in tests).
    /// </summary>
    internal static string[] SelfCommand()
    {
        string dll = typeof(UanCommand).Assembly.Location;
        string? process = Environment.ProcessPath;
        string? name = process is null ? null : Path.GetFileNameWithoutExtension(process);
        if (process is not null && name == "Uan.Cli") return [process];
        if (process is not null && string.Equals(name, "dotnet", StringComparison.OrdinalIgnoreCase)) return [process, dll];
        string dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
            : FindOnPath("dotnet") ?? "dotnet";
        return [dotnet, dll];
    }

    /// <summary>The full path of executable <paramref name="name"/> in a PATH folder, or null.</summary>
    internal static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, name);
            if (!File.Exists(candidate)) continue;
            if (OperatingSystem.IsWindows() || (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0)
                return Path.GetFullPath(candidate);
        }
        return null;
    }

    /// <summary>Runs <c>sbatch --parsable ARGS</c> and returns the job id; a refusal is an <see cref="IOException"/> with sbatch's message.</summary>
    private static string Submit(string sbatch, IReadOnlyList<string> args)
    {
        var start = new ProcessStartInfo(sbatch) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("--parsable");
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new IOException($"could not start {sbatch}");
        var err = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2)))
        {
            process.Kill();
            throw new IOException($"sbatch {string.Join(" ", args)} did not answer within 2 minutes");
        }
        string errors = err.Result.Trim();
        if (process.ExitCode != 0)
            throw new IOException($"sbatch {string.Join(" ", args)} failed (exit {process.ExitCode}): {(errors.Length > 0 ? errors : output.Trim())}");
        // --parsable prints "JOBID" or "JOBID;CLUSTER".
        string id = output.Trim().Split('\n')[0].Split(';')[0].Trim();
        if (!Regex.IsMatch(id, @"^\d+$")) throw new IOException($"sbatch printed no job id: '{output.Trim()}'");
        return id;
    }
}
