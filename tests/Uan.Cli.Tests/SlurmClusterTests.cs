using System.Diagnostics;
using System.Text.RegularExpressions;
using Uan.Lab.Training;
using Xunit.Abstractions;

namespace Uan.Cli.Tests;

/// <summary>A test that needs a real Slurm cluster: skipped, with the reason, only where one cannot be started (not root, not Linux).</summary>
public sealed class SlurmFactAttribute : FactAttribute
{
    public SlurmFactAttribute()
    {
        if (SlurmCluster.WhyNot() is { } why) Skip = why;
    }
}

/// <summary>
/// <c>uan slurm --submit</c> on a real single-node Slurm cluster (<see cref="SlurmCluster"/>): the grid as a 2-task
/// array of 1 CPU each, one task stopped with SIGTERM while it trains and requeued, then the merged report against the
/// same grid trained by one <c>uan compare</c>.
/// </summary>
public sealed class SlurmClusterTests(ITestOutputHelper log) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-slurm-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static string Read(string path) => File.Exists(path) ? File.ReadAllText(path) : "";

    private static async Task Until(Func<bool> done, TimeSpan timeout, Func<string> what)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed > timeout) Assert.Fail($"timed out after {timeout.TotalSeconds:F0} s: {what()}");
            await Task.Delay(250);
        }
    }

    [SlurmFact]
    public async Task TheGridAsAJobArrayEndsAsOneMachineRunningItAlsoAfterATaskIsStoppedAndRequeued()
    {
        var clock = Stopwatch.StartNew();
        using var cluster = SlurmCluster.Start(Path.Combine(_dir, "cluster"));
        log.WriteLine($"cluster idle after {clock.Elapsed.TotalSeconds:F1} s");
        string grid = Path.Combine(_dir, "array"), whole = Path.Combine(_dir, "whole"), logs = Path.Combine(grid, "slurm");
        string[] options = ShardTests.TinyGrid(epochs: 2);
        // The reference: the same grid, one process, one run after the other (1 thread, so bit-for-bit deterministic).
        using var reference = UanProcess.Start(["compare", .. options, "--out", whole, "--plain"]);
        try
        {

            var submit = await UanProcess.Finish(UanProcess.Start(["slurm", .. options, "--tasks", "2", "--time", "10:00", "--term-before", "60",
                "--mem", "400M", "--out", grid, "--submit"], cluster.Environment()));
            Assert.True(submit.Code == 0, $"exit {submit.Code}\n{submit.Out}\n{submit.Err}");
            string array = Regex.Match(submit.Out, @"submitted array job (\d+) \(2 tasks, 4 runs\)").Groups[1].Value;
            string report = Regex.Match(submit.Out, $@"submitted report job (\d+), to run once every task of {array} has ended").Groups[1].Value;
            Assert.True(array.Length > 0 && report.Length > 0, submit.Out);
            string task1Log = Path.Combine(logs, $"compare-{array}_1.out"), task0Log = Path.Combine(logs, $"compare-{array}_0.out");

            // Task 1 trains runs 2 and 4. Once its first run has finished epoch 1 of 2, stop it as a preemption would.
            // Generous limits: alone on 2 loaded cores this takes about 25 s, and the whole suite may run beside it.
            await Until(() => Read(task1Log).Contains("] epoch 1/2"), TimeSpan.FromSeconds(300),
                () => $"task 1 never finished an epoch\n{Read(task1Log)}\n{Read(task0Log)}\n{cluster.DaemonLogs()}");
            Assert.StartsWith("shard 1/2 (from --shard): runs 2, 4 of 4", Read(task1Log));
            Assert.StartsWith("shard 0/2 (from --shard): runs 1, 3 of 4", Read(task0Log));
            var cancel = cluster.Client("scancel", "--signal=TERM", "--batch", $"{array}_1");
            Assert.True(cancel.Code == 0, cancel.Err);
            await Until(() => cluster.Queue().All(q => q.Id != $"{array}_1"), TimeSpan.FromSeconds(60),
                () => $"task 1 did not stop\n{Read(task1Log)}");
            string stoppedLog = Read(task1Log);
            Assert.Contains("uan: stopping after the current step", stoppedLog);
            Assert.Contains($"uan: stopped; run the same command again to continue the grid in {Path.GetFullPath(grid)}", stoppedLog);
            var stopped = RunResults.Load(Path.Combine(grid, "BN-lr0.001-s2"));
            Assert.Equal("stopped", stopped.Status);
            Assert.Single(stopped.Epochs);
            log.WriteLine($"task 1 stopped after {clock.Elapsed.TotalSeconds:F1} s");

            // Requeued, the task resumes the stopped run and trains the rest of its share.
            var requeue = cluster.Client("scontrol", "requeue", $"{array}_1");
            Assert.True(requeue.Code == 0, requeue.Err);
            await Until(() => cluster.Queue().Count == 0, TimeSpan.FromSeconds(420),
                () => $"the jobs did not end: {string.Join(", ", cluster.Queue())}\n{Read(task1Log)}\n{Read(task0Log)}");
            log.WriteLine($"array and report job ended after {clock.Elapsed.TotalSeconds:F1} s");
            string resumedLog = Read(task1Log);
            Assert.Contains("run 2: BN lr=0.001 seed=2 — resuming (stopped)", resumedLog);
            Assert.Contains("[BN lr=0.001 seed=2] epoch 2/2", resumedLog[resumedLog.IndexOf("resuming (stopped)", StringComparison.Ordinal)..]);
            Assert.DoesNotContain("[BN lr=0.001 seed=2] epoch 1/2",
                resumedLog[resumedLog.IndexOf("resuming (stopped)", StringComparison.Ordinal)..]);
            Assert.Contains("Grid status: 4 runs:", Read(Path.Combine(logs, $"report-{report}.out")));

            var one = await UanProcess.Finish(reference);
            Assert.True(one.Code == 0, $"exit {one.Code}\n{one.Out}\n{one.Err}");
            foreach (var run in new[] { "BN-lr0.001-s1", "BN-lr0.001-s2", "UAN-lr0.001-s1", "UAN-lr0.001-s2" })
            {
                Assert.Equal("completed", RunResults.Load(Path.Combine(grid, run)).Status);
                Assert.Equal(ShardTests.Epochs(Path.Combine(whole, run)), ShardTests.Epochs(Path.Combine(grid, run)));
            }
            var tables = ShardTests.AccuracyTables(Path.Combine(grid, "comparison.md"));
            Assert.Equal(ShardTests.AccuracyTables(Path.Combine(whole, "comparison.md")), tables);
            Assert.Equal(4, tables.Count(r => r.StartsWith("| BN |") || r.StartsWith("| UAN |")));
            Assert.DoesNotContain("Incomplete grid", File.ReadAllText(Path.Combine(grid, "comparison.md")));

            // The report of the finished folder says every run is completed.
            var status = await UanProcess.Finish(UanProcess.Start(["report", grid]));
            Assert.Contains("Grid status: 4 runs: 4 completed, 0 running, 0 stopped, 0 missing", status.Out);
            log.WriteLine($"done after {clock.Elapsed.TotalSeconds:F1} s");
        }
        catch
        {
            log.WriteLine(cluster.Log);
            log.WriteLine(cluster.DaemonLogs());
            throw;
        }
        finally
        {
            if (!reference.HasExited) reference.Kill();
        }
    }
}
