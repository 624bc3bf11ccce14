using System.Diagnostics;
using System.Text.RegularExpressions;
using Uan.Lab;
using Uan.Lab.Training;

namespace Uan.Cli.Tests;

/// <summary>
/// The comparison grid split into shards: its order, <c>--shard</c>, Slurm's array variables, grid.json and the
/// status table of <c>uan report</c>, the sbatch scripts of <c>uan slurm</c>, and a sharded grid against the same grid
/// trained in one go.
/// </summary>
public sealed class ShardTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-shard-" + Guid.NewGuid().ToString("N"));

    public ShardTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static (int Code, string Out, string Err) Uan(params string[] args) => CliTests.Uan(args);

    /// <summary>A grid of two norms and two seeds, each run about a second per epoch.</summary>
    internal static string[] TinyGrid(int epochs = 1) =>
    [
        "--norm", "BN=bn", "--norm", "UAN=uan:k=2", "--seed", "1", "2", "--epochs", epochs.ToString(), "--train-limit", "100",
        "--test-limit", "50", "--val-fraction", "0.01", "--batch-size", "20", "--threads", "1",
    ];

    [Theory]
    [InlineData("0/1", 0, 1)]
    [InlineData("1/2", 1, 2)]
    [InlineData("6/7", 6, 7)]
    public void ShardParsesIndexAndCount(string text, int index, int count) =>
        Assert.Equal(new GridShard(index, count), GridShard.Parse(text));

    [Theory]
    [InlineData("2/2")]
    [InlineData("-1/2")]
    [InlineData("1/0")]
    [InlineData("1")]
    [InlineData("1/2/3")]
    [InlineData("a/2")]
    [InlineData("/2")]
    public void ABadShardIsOneLineAndExitCodeTwo(string text)
    {
        var (code, _, err) = Uan("compare", "--shard", text, "--out", Path.Combine(_dir, "x"));
        Assert.Equal(2, code);
        Assert.Equal($"uan: --shard must be I/N with N ≥ 1 and 0 ≤ I < N (shards count from 0, as Slurm array task ids), got '{text}'", err.Trim());
        Assert.False(Directory.Exists(Path.Combine(_dir, "x")));
    }

    [Fact]
    public void EveryRunBelongsToExactlyOneShardByItsIndexModuloTheCount()
    {
        for (int count = 1; count <= 5; count++)
        {
            var owners = new int[11];
            for (int index = 0; index < count; index++)
                foreach (int run in new GridShard(index, count).RunsOf(owners.Length))
                {
                    Assert.Equal(index, run % count);
                    owners[run]++;
                }
            Assert.All(owners, n => Assert.Equal(1, n));
        }
        Assert.Equal([1, 4, 7], new GridShard(1, 3).RunsOf(9));
        Assert.Empty(new GridShard(4, 5).RunsOf(4));
    }

    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [Fact]
    public void SlurmArrayVariablesGiveTheShard()
    {
        Assert.Null(GridShard.FromEnvironment(Env(), out var none));
        Assert.Null(none);
        Assert.Equal(new GridShard(1, 2), GridShard.FromEnvironment(Env(("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "2")), out var source));
        Assert.Equal("SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_COUNT=2", source);
        // Without the count: from min and max; an array from 1 is shifted to count from 0.
        Assert.Equal(new GridShard(2, 4), GridShard.FromEnvironment(
            Env(("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "4")), out source));
        Assert.Equal("SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_MIN=1, SLURM_ARRAY_TASK_MAX=4", source);
        Assert.Equal(new GridShard(0, 3), GridShard.FromEnvironment(
            Env(("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "3"), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_MAX", "2")), out _));
    }

    [Theory]
    [InlineData("SLURM_ARRAY_TASK_ID=1 is set, but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MIN/SLURM_ARRAY_TASK_MAX give the array's size", "1", null, null, null)]
    [InlineData("SLURM_ARRAY_TASK_ID='x' is not a task id", "x", "2", null, null)]
    // --array=0-6:2 has 4 tasks with ids 0, 2, 4, 6: not a contiguous array.
    [InlineData("SLURM_ARRAY_TASK_ID=6 does not fit an array of 4 tasks from 0", "6", "4", "0", "6")]
    public void SlurmArrayVariablesThatDoNotDescribeAContiguousArrayAreRefused(string expected, string id, string? count, string? min, string? max)
    {
        var vars = new List<(string, string)> { ("SLURM_ARRAY_TASK_ID", id) };
        if (count is not null) vars.Add(("SLURM_ARRAY_TASK_COUNT", count));
        if (min is not null) vars.Add(("SLURM_ARRAY_TASK_MIN", min));
        if (max is not null) vars.Add(("SLURM_ARRAY_TASK_MAX", max));
        var e = Assert.Throws<ArgumentException>(() => GridShard.FromEnvironment(Env(vars.ToArray()), out _));
        Assert.StartsWith(expected, e.Message);
    }

    [Fact]
    public void TheGridOrderIsLearningRateThenNormThenSeedInTheOrderGiven()
    {
        var norms = new[] { NormChoice.Parse("B=bn"), NormChoice.Parse("A=uan:k=2") };
        double[] lrs = [0.01, 0.001];
        int[] seeds = [3, 1, 2];
        var grid = new ComparisonGrid(new RunConfig(), norms, lrs, seeds, "g");
        string[] expected =
        [
            "B-lr0.01-s3", "B-lr0.01-s1", "B-lr0.01-s2", "A-lr0.01-s3", "A-lr0.01-s1", "A-lr0.01-s2",
            "B-lr0.001-s3", "B-lr0.001-s1", "B-lr0.001-s2", "A-lr0.001-s3", "A-lr0.001-s1", "A-lr0.001-s2",
        ];
        Assert.Equal(expected, grid.Runs.Select(r => Path.GetFileName(r.RunDir)));
        for (int l = 0; l < lrs.Length; l++)
        for (int n = 0; n < norms.Length; n++)
        for (int s = 0; s < seeds.Length; s++)
        {
            var config = grid.Runs[grid.IndexOf(l, n, s)].Config;
            Assert.Equal((lrs[l], norms[n].Label, seeds[s]), (config.LearningRate, config.Label, config.Seed));
        }
        // The same options give the same list again, and grid.json lists it with the indexes.
        var again = new ComparisonGrid(new RunConfig(), norms, lrs, seeds, "g");
        Assert.Equal(grid.Runs, again.Runs);
        Assert.Equal(expected, grid.ToFile().Runs.Select(r => r.Folder));
        Assert.Equal(Enumerable.Range(0, 12), grid.ToFile().Runs.Select(r => r.Index));
        Assert.Throws<ArgumentException>(() => new ComparisonGrid(new RunConfig(), norms, lrs, [1, 1], "g"));
    }

    private static void SaveResults(string dir, RunConfig config, string status, int epochs)
    {
        Directory.CreateDirectory(dir);
        new RunResults
        {
            Config = config, Status = status,
            Epochs = Enumerable.Range(1, epochs).Select(e => new EpochMetrics { Epoch = e, TestAccuracy = 0.5, ValAccuracy = 0.5 }).ToList(),
        }.Save(dir);
    }

    [Fact]
    public void ReportOnAGridFolderShowsCompletedRunningStoppedAndMissingRuns()
    {
        var grid = new ComparisonGrid(new RunConfig { Epochs = 2 }, [NormChoice.Parse("BN=bn")], [0.001], [1, 2, 3, 4, 5], _dir);
        grid.WriteFile(mustMatch: true);
        var dirs = grid.Runs.Select(r => r.RunDir).ToArray();
        SaveResults(dirs[0], grid.Runs[0].Config, "completed", 2);
        SaveResults(dirs[1], grid.Runs[1].Config, "running", 1);        // being trained: its lock is held below
        SaveResults(dirs[2], grid.Runs[2].Config, "stopped", 1);
        SaveResults(dirs[3], grid.Runs[3].Config, "running", 1);        // killed: a holder file, but no lock
        File.WriteAllText(Path.Combine(dirs[3], RunFolder.HolderFile), "pid 1 on elsewhere since then\n");
        using var holder = RunFolder.Lock(dirs[1]);

        var (code, output, err) = Uan("report", _dir);
        Assert.True(code == 0, output + err);
        Assert.Contains("Grid status: 5 runs: 1 completed, 1 running, 2 stopped, 1 missing", output);
        Assert.Contains("| 1 | BN-lr0.001-s1 | completed | 2/2 |  |", output);
        Assert.Contains($"| 2 | BN-lr0.001-s2 | running | 1/2 | pid {Environment.ProcessId} on {Environment.MachineName} since ", output);
        Assert.Contains("| 3 | BN-lr0.001-s3 | stopped | 1/2 |  |", output);
        Assert.Contains("| 4 | BN-lr0.001-s4 | stopped | 1/2 | killed while running |", output);
        Assert.Contains("| 5 | BN-lr0.001-s5 | missing | 0/2 |  |", output);
        Assert.False(Directory.Exists(dirs[4]));    // looking does not create anything
        Assert.StartsWith("# UAN comparison report\n\n**Incomplete grid**: 5 runs: 1 completed, 1 running, 2 stopped, 1 missing",
            File.ReadAllText(Path.Combine(_dir, "comparison.md")));
    }

    [Fact]
    public void ReportOnAGridWithNoResultsYetShowsTheStatusAndSucceeds()
    {
        var (code, output, err) = Uan(["compare", .. TinyGrid(), "--out", _dir, "--dry-run"]);
        Assert.True(code == 0, output + err);
        Assert.Contains("Grid status: 4 runs: 0 completed, 0 running, 0 stopped, 4 missing", output);
        var report = Uan("report", _dir);
        Assert.Equal(0, report.Code);
        Assert.Contains("| 4 | UAN-lr0.001-s2 | missing | 0/1 |  |", report.Out);
        Assert.Contains("no run of the grid has results yet: nothing to merge", report.Out);
    }

    [Fact]
    public void AShardOfAnotherGridIsRefused()
    {
        Assert.Equal(0, Uan(["compare", .. TinyGrid(), "--out", _dir, "--dry-run"]).Code);
        var (code, _, err) = Uan(["compare", .. TinyGrid(), "--seed", "3", "--out", _dir, "--shard", "0/2", "--dry-run"]);
        Assert.Equal(2, code);
        Assert.StartsWith($"uan: {Path.Combine(_dir, "grid.json")} describes another grid (4 runs, first BN-lr0.001-s1)", err);
    }

    /// <summary>The accuracy tables of a comparison.md, without the wall-time column (s/epoch).</summary>
    internal static string[] AccuracyTables(string comparisonMd)
    {
        var rows = File.ReadAllLines(comparisonMd).Where(l => l.StartsWith('|')).ToArray();
        var result = new List<string>();
        int? time = null;
        foreach (var row in rows)
        {
            var cells = row.Split('|').ToList();
            if (cells.Contains(" s/epoch ")) time = cells.IndexOf(" s/epoch ");
            if (time is int t && t < cells.Count) cells.RemoveAt(t);
            result.Add(string.Join("|", cells));
        }
        return result.ToArray();
    }

    /// <summary>The epochs of a results.json without wall times and load.</summary>
    internal static string[] Epochs(string runDir) =>
        RunResults.Load(runDir).Epochs.Select(e => (e with { TrainSeconds = 0, EvalSeconds = 0, ImagesPerSecond = 0, LoadAverage = null }).ToString()).ToArray();

    [Fact]
    public void TwoShardsOneAfterTheOtherEndAsTheWholeGridInOneGo()
    {
        string sharded = Path.Combine(_dir, "sharded"), whole = Path.Combine(_dir, "whole");
        var first = Uan(["compare", .. TinyGrid(), "--out", sharded, "--shard", "1/2"]);
        Assert.True(first.Code == 0, first.Out + first.Err);
        Assert.StartsWith("shard 1/2 (from --shard): runs 2, 4 of 4\n", first.Out.ReplaceLineEndings("\n"));
        Assert.Contains("2 of the grid's 4 runs are not finished yet (0 running, 0 stopped, 2 missing)", first.Out);
        Assert.False(File.Exists(Path.Combine(sharded, "comparison.md")));
        Assert.False(Directory.Exists(Path.Combine(sharded, "BN-lr0.001-s1")));

        var second = Uan(["compare", .. TinyGrid(), "--out", sharded, "--shard", "0/2"]);
        Assert.True(second.Code == 0, second.Out + second.Err);
        Assert.Contains("every run of the grid is finished: writing the merged report", second.Out);

        var reference = Uan(["compare", .. TinyGrid(), "--out", whole]);
        Assert.True(reference.Code == 0, reference.Out + reference.Err);
        var tables = AccuracyTables(Path.Combine(sharded, "comparison.md"));
        Assert.Equal(AccuracyTables(Path.Combine(whole, "comparison.md")), tables);
        Assert.Equal(4, tables.Count(r => r.StartsWith("| BN |") || r.StartsWith("| UAN |")));
        foreach (var run in new[] { "BN-lr0.001-s1", "BN-lr0.001-s2", "UAN-lr0.001-s1", "UAN-lr0.001-s2" })
            Assert.Equal(Epochs(Path.Combine(whole, run)), Epochs(Path.Combine(sharded, run)));
    }

    [Fact]
    public async Task InsideASlurmArrayTaskTheShardComesFromItsVariablesAndIsTheFirstLine()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = [Path.Combine(AppContext.BaseDirectory, "Uan.Cli.dll"), "compare", .. TinyGrid(), "--out", _dir, "--dry-run"];
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["SLURM_ARRAY_TASK_ID"] = "1";
        start.Environment["SLURM_ARRAY_TASK_MIN"] = "0";
        start.Environment["SLURM_ARRAY_TASK_MAX"] = "1";
        start.Environment.Remove("SLURM_ARRAY_TASK_COUNT");
        using var p = Process.Start(start)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.True(p.ExitCode == 0, output + await err);
        Assert.Equal("shard 1/2 (from SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_MAX=1): runs 2, 4 of 4",
            output.ReplaceLineEndings("\n").Split('\n')[0]);
        Assert.Contains("| 2 | 1 | BN-lr0.001-s2 | missing | 0/1 |  |", output);
        Assert.Contains("| 3 | 0 | UAN-lr0.001-s1 | missing | 0/1 |  |", output);
    }

    /// <summary>uan slurm on <see cref="TinyGrid"/> with 2 tasks; an option of <paramref name="more"/> replaces the same one there.</summary>
    private string[] Slurm(params string[] more)
    {
        var args = new List<string>(["slurm", .. TinyGrid(), "--tasks", "2", "--time", "0:10:00", "--term-before", "60", "--mem", "500M",
            "--partition", "debug", "--out", Path.Combine(_dir, "grid")]);
        for (int i = 0; i < more.Length; i++)
        {
            bool pair = i + 1 < more.Length && !more[i + 1].StartsWith("--", StringComparison.Ordinal);
            int at = args.IndexOf(more[i]);
            if (pair && at >= 0) args[at + 1] = more[i + 1];
            else args.AddRange(pair ? [more[i], more[i + 1]] : [more[i]]);
            if (pair) i++;
        }
        return args.ToArray();
    }

    /// <summary>The words of a bash command line as <see cref="SlurmScript.Join"/> writes them (bare or single-quoted).</summary>
    private static List<string> Words(string line)
    {
        var words = new List<string>();
        foreach (Match m in Regex.Matches(line, @"'((?:[^']|'\\'')*)'|(\S+)"))
            words.Add(m.Groups[1].Success ? m.Groups[1].Value.Replace("'\\''", "'") : m.Groups[2].Value);
        return words;
    }

    [Fact]
    public void SlurmWritesAnArrayScriptWhoseTasksRunTheSameGridAsShards()
    {
        string grid = Path.Combine(_dir, "grid");
        var (code, output, err) = Uan(Slurm("--threads", "2", "--job-name", "tiny"));
        Assert.True(code == 0, output + err);
        string script = File.ReadAllText(Path.Combine(grid, "slurm", "compare.sbatch"));
        Assert.Contains(script.Trim(), output);
        var lines = script.Split('\n');
        Assert.Equal("#!/bin/bash", lines[0]);
        string[] expected =
        [
            "#SBATCH --job-name=tiny", "#SBATCH --array=0-1", "#SBATCH --ntasks=1", "#SBATCH --cpus-per-task=2", "#SBATCH --time=0:10:00",
            "#SBATCH --mem=500M", "#SBATCH --partition=debug", $"#SBATCH --output={grid}/slurm/compare-%A_%a.out",
            "#SBATCH --open-mode=append", "#SBATCH --requeue", "#SBATCH --signal=B:TERM@60",
        ];
        Assert.Equal(expected, lines.Where(l => l.StartsWith("#SBATCH")));
        string exec = Assert.Single(lines, l => l.StartsWith("exec "));
        string dll = Path.Combine(AppContext.BaseDirectory, "Uan.Cli.dll");
        Assert.StartsWith("exec ", exec);
        const string shard = " compare --plain --shard \"${SLURM_ARRAY_TASK_ID}/2\" ";
        int at = exec.IndexOf(shard, StringComparison.Ordinal);
        Assert.True(at > 0, exec);
        var uan = Words(exec[5..at]);
        Assert.True(Path.IsPathRooted(uan[0]) && File.Exists(uan[0]), exec);
        Assert.Equal(dll, uan[^1]);
        var args = Words(exec[(at + shard.Length)..]);
        Assert.Equal(Path.GetFullPath(grid), args[args.IndexOf("--out") + 1]);
        Assert.True(Path.IsPathRooted(args[args.IndexOf("--data-dir") + 1]));

        // The task's options make the grid uan slurm wrote into grid.json (a shard of another grid would be refused),
        // with each task's threads.
        var task = Uan(["compare", .. args, "--shard", "1/2", "--dry-run"]);
        Assert.True(task.Code == 0, task.Out + task.Err);
        Assert.StartsWith("shard 1/2 (from --shard): runs 2, 4 of 4", task.Out);
        Assert.Equal(2, GridFile.Load(grid)!.BaseConfig.Threads);
        Assert.Equal(["BN-lr0.001-s1", "BN-lr0.001-s2", "UAN-lr0.001-s1", "UAN-lr0.001-s2"], GridFile.Load(grid)!.Runs.Select(r => r.Folder));

        string report = File.ReadAllText(Path.Combine(grid, "slurm", "report.sbatch"));
        Assert.Contains($"#SBATCH --output={grid}/slurm/report-%j.out\n", report);
        Assert.Contains("#SBATCH --job-name=tiny-report\n", report);
        Assert.Contains("#SBATCH --cpus-per-task=1\n", report);
        Assert.EndsWith($" report {Path.GetFullPath(grid)}\n", report);
        Assert.Contains("sbatch --dependency=afterany:<job id>", output);
    }

    [Theory]
    [InlineData("--tasks 5 is more than the grid's 4 runs; give at most 4", "--tasks", "5")]
    [InlineData("--time must be a Slurm time limit (M, M:S, H:M:S, D-H, D-H:M or D-H:M:S), got '1h'", "--time", "1h")]
    [InlineData("--term-before (60 s) must be shorter than --time (1, 60 s)", "--time", "1")]
    [InlineData("--mem must be a size as sbatch takes it (a number with an optional K, M, G or T), got '4 GB'", "--mem", "4 GB")]
    public void SlurmBadInputIsOneLineAndExitCodeTwo(string expected, string option, string value)
    {
        var (code, _, err) = Uan(Slurm(option, value));
        Assert.Equal(2, code);
        Assert.Equal($"uan: {expected}", err.Trim());
        Assert.False(Directory.Exists(Path.Combine(_dir, "grid")));
    }

    [Theory]
    [InlineData("0:10:00", 600)]
    [InlineData("10", 600)]
    [InlineData("10:30", 630)]
    [InlineData("1-2", 93600)]
    [InlineData("1-2:03", 93780)]
    [InlineData("1-02:03:04", 93784)]
    [InlineData("0", null)]
    [InlineData("1:60", null)]
    [InlineData("infinite", null)]
    public void SlurmTimeLimitsAreReadAsSlurmReadsThem(string time, int? seconds) => Assert.Equal(seconds, SlurmScript.Seconds(time));

    [Fact]
    public async Task SubmittingWithoutSbatchOnThePathSaysSoInOneLine()
    {
        var start = new ProcessStartInfo(SlurmCommand.SelfCommand()[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        string[] args = [Path.Combine(AppContext.BaseDirectory, "Uan.Cli.dll"), .. Slurm("--submit")];
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["PATH"] = Path.Combine(_dir, "empty-path");
        using var p = Process.Start(start)!;
        var output = p.StandardOutput.ReadToEndAsync();
        string err = await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        Assert.Equal(2, p.ExitCode);
        Assert.Equal("uan: sbatch is not on PATH: run 'uan slurm --submit' on a Slurm login node, or drop --submit and submit the script with sbatch yourself",
            err.Trim());
        Assert.False(Directory.Exists(Path.Combine(_dir, "grid")));
        _ = await output;
    }
}
