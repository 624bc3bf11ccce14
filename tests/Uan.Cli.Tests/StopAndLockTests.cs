using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Uan.Lab;

namespace Uan.Cli.Tests;

/// <summary>
/// The <c>uan</c> command as its own process (the Uan.Cli.dll next to the tests, run by <c>dotnet</c>): SIGTERM, and
/// two writers of one run folder.
/// </summary>
public sealed class StopAndLockTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-cli-stop-" + Guid.NewGuid().ToString("N"));

    public StopAndLockTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private const int SigTerm = 15;

    /// <summary>A run of about a second per epoch: 5 steps of 20 images, 100 validation and 50 test images.</summary>
    private static string[] Train(string dir, bool resume = false) =>
        ["train", "--epochs", "3", "--train-limit", "100", "--test-limit", "50", "--val-fraction", "0.01", "--batch-size", "20",
            "--threads", "1", "--plain", "--out", dir, .. resume ? new[] { "--resume" } : []];

    /// <summary>The epochs of a results.json without their wall times.</summary>
    private static string[] Epochs(string dir)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        return json.RootElement.GetProperty("epochs").EnumerateArray()
            .Select(e => string.Join(",", e.EnumerateObject()
                .Where(p => p.Name is not ("trainSeconds" or "evalSeconds" or "imagesPerSecond" or "loadAverage"))
                .Select(p => $"{p.Name}={p.Value.GetRawText()}")))
            .ToArray();
    }

    private static string Status(string dir)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        return json.RootElement.GetProperty("status").GetString()!;
    }

    [Fact]
    public async Task SigtermStopsWith143AndTheResumedRunEndsAsAnUninterruptedOne()
    {
        if (!OperatingSystem.IsLinux()) return;     // kill(2) from libc
        string reference = Path.Combine(_dir, "reference"), run = Path.Combine(_dir, "run");
        using var straight = UanProcess.Start(Train(reference));
        using var child = UanProcess.Start(Train(run));
        var err = child.StandardError.ReadToEndAsync();
        var seen = new System.Text.StringBuilder();
        string? line;
        while ((line = child.StandardOutput.ReadLine()) is not null)
        {
            seen.AppendLine(line);
            if (line.Contains("epoch 1/3")) break;
        }
        if (line is null) Assert.Fail($"no progress from the child:\n{seen}\n{await err}");

        // A second writer (this process) is refused, naming the child as the holder.
        Assert.Null(RunFolder.TryLock(run, out var holder));
        Assert.StartsWith($"pid {child.Id} on {Environment.MachineName} since ", holder);

        Assert.Equal(0, kill(child.Id, SigTerm));
        seen.Append(await child.StandardOutput.ReadToEndAsync());
        await child.WaitForExitAsync();
        string errors = await err;
        Assert.True(child.ExitCode == 143, $"exit {child.ExitCode}\n{seen}\n{errors}");
        Assert.Contains("stopping after the current step", errors);
        Assert.Equal("stopped", Status(run));
        Assert.InRange(Epochs(run).Length, 1, 2);

        var resumed = await UanProcess.Finish(UanProcess.Start(Train(run, resume: true)));
        Assert.True(resumed.Code == 0, $"exit {resumed.Code}\n{resumed.Out}\n{resumed.Err}");
        var uninterrupted = await UanProcess.Finish(straight);
        Assert.True(uninterrupted.Code == 0, $"exit {uninterrupted.Code}\n{uninterrupted.Out}\n{uninterrupted.Err}");
        Assert.Equal("completed", Status(run));
        Assert.Equal(Epochs(reference), Epochs(run));
        Assert.Equal(3, Epochs(run).Length);
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "last.ckpt")), File.ReadAllBytes(Path.Combine(run, "last.ckpt")));
        Assert.Equal(File.ReadAllBytes(Path.Combine(reference, "best.ckpt")), File.ReadAllBytes(Path.Combine(run, "best.ckpt")));
    }

    [Fact]
    public void ASecondTrainOnAHeldFolderIsOneLineNamingTheHolderAndExitCodeTwo()
    {
        string run = Path.Combine(_dir, "held");
        using var holder = RunFolder.Lock(run);
        var (code, _, err) = CliTests.Uan(Train(run));
        Assert.Equal(2, code);
        Assert.StartsWith($"uan: {run} is in use by pid {Environment.ProcessId} on {Environment.MachineName} since ", err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.False(File.Exists(Path.Combine(run, "results.json")));
    }

    [Fact]
    public void CompareSkipsARunAnotherProcessHoldsAndSaysWho()
    {
        using var holder = RunFolder.Lock(Path.Combine(_dir, "BN-lr0.001-s1"));
        var (code, output, err) = CliTests.Uan("compare", "--norm", "BN=bn", "--epochs", "1", "--train-limit", "100", "--out", _dir);
        Assert.True(code == 0, output + err);
        Assert.Contains($"run 1: BN lr=0.001 seed=1 — held by pid {Environment.ProcessId} on {Environment.MachineName} since ", output);
        Assert.Contains(", skipped", output);
        Assert.Contains("1 of 1 runs were held by other processes and skipped", output);
        Assert.False(File.Exists(Path.Combine(_dir, "BN-lr0.001-s1", "results.json")));
    }
}
