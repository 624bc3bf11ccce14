using System.Diagnostics;
using Uan.Lab.Data;
using Uan.Lab.Tests.Data;
using Uan.Lab.Training;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Training;

/// <summary>Thrown from a commit's fault hook: the commit stops there, as it would if the process were killed.</summary>
internal sealed class SimulatedKill : Exception;

/// <summary>Helpers shared by the kill-at-every-commit-point tests of both trainers.</summary>
internal static class Kill
{
    /// <summary>
    /// Plants what a kill inside <see cref="AtomicFile.Write"/> leaves (a half-written temporary, which a thrown
    /// exception would have deleted) for every file of the commit.
    /// </summary>
    public static void PlantTemporaries(string dir, params string[] names)
    {
        foreach (var name in names)
            File.WriteAllBytes(Path.Combine(dir, $"{name}.{Guid.NewGuid():N}.tmp"), [1, 2, 3, 4, 5]);
    }

    /// <summary>Files a finished run folder must not contain any more.</summary>
    public static string[] Leftovers(string dir) =>
        Directory.GetFiles(dir).Select(Path.GetFileName).Where(n => n!.EndsWith(".tmp") || n.EndsWith(RunFolder.PendingSuffix)).ToArray()!;

    /// <summary>The epoch field of a checkpoint (after its magic string), read without the library.</summary>
    public static int EpochField(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return BitConverter.ToInt32(bytes, 1 + bytes[0]);
    }

    /// <summary>Overwrites the epoch field of a checkpoint, as a hand edit would.</summary>
    public static void EditEpochField(string path, int epoch)
    {
        var bytes = File.ReadAllBytes(path);
        BitConverter.GetBytes(epoch).CopyTo(bytes, 1 + bytes[0]);
        File.WriteAllBytes(path, bytes);
    }
}

/// <summary>An uninterrupted run of <see cref="DurabilityTests.Config"/>, made once for every kill test.</summary>
public sealed class StraightRun : IDisposable
{
    private readonly TempDir _dir = new();

    public StraightRun()
    {
        var config = DurabilityTests.Config();
        using var data = DurabilityTests.Data(config);
        using var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), _dir.Path);
        Results = trainer.Run();
        Weights = DurabilityTests.Weights(trainer.Model);
        Last = File.ReadAllBytes(_dir.File(Trainer.LastCheckpoint));
        Best = File.ReadAllBytes(_dir.File(Trainer.BestCheckpoint));
    }

    internal RunResults Results { get; }
    internal Dictionary<string, float[]> Weights { get; }
    internal byte[] Last { get; }
    internal byte[] Best { get; }

    public void Dispose() => _dir.Dispose();
}

[Collection(nameof(GlobalRngCollection))]
public class DurabilityTests(StraightRun straight) : IClassFixture<StraightRun>
{
    /// <summary>Epoch whose commit is interrupted; the uninterrupted run marks it best, so best.ckpt is part of it.</summary>
    private const int KilledEpoch = 2;

    internal static RunConfig Config(int epochs = 3) => new()
    {
        Dataset = "mnist-subset", Model = "tiny", Norm = "bn", LearningRate = 3e-3, Epochs = epochs, BatchSize = 64,
        Seed = 7, TrainLimit = 256, TestLimit = 100, ValidationFraction = 0.02,
    };

    internal static ExperimentData Data(RunConfig config) => ExperimentData.Load(config, new DataLocator());

    internal static Dictionary<string, float[]> Weights(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());

    /// <summary>
    /// The epoch's record without its wall times and machine load, and with its training points flattened into a
    /// string (a list compares by reference), so records compare by value.
    /// </summary>
    private static (EpochMetrics Metrics, string TrainPoints) WithoutTimes(EpochMetrics m) =>
        (m with { TrainSeconds = 0, EvalSeconds = 0, ImagesPerSecond = 0, LoadAverage = null, TrainPoints = null },
         m.TrainPoints is null ? "none" : string.Join(";", m.TrainPoints.Select(p => FormattableString.Invariant($"{p.Step},{p.Loss:R},{p.Accuracy:R}"))));

    /// <summary>
    /// Killed at <paramref name="point"/> of epoch 2's commit, the folder holds <paramref name="committed"/> epochs in
    /// results.json and last.ckpt / best.ckpt hold epochs <paramref name="last"/> / <paramref name="best"/>; resumed,
    /// it ends as the uninterrupted run, byte for byte.
    /// </summary>
    [Theory]
    [InlineData("epoch-end", 1, 1, 1)]
    [InlineData("staged:best.ckpt", 1, 1, 1)]
    [InlineData("staged:last.ckpt", 1, 1, 1)]
    [InlineData("committed", 2, 1, 1)]
    [InlineData("installed:last.ckpt", 2, 2, 1)]
    [InlineData("installed:best.ckpt", 2, 2, 2)]
    public void AKillAtAnyPointOfTheCommitResumesToTheSameRun(string point, int committed, int last, int best)
    {
        Assert.True(straight.Results.Epochs[KilledEpoch - 1].IsBest, "the test needs a run whose killed epoch is a new best");
        Assert.All(straight.Results.Epochs, m => Assert.NotEmpty(m.TrainPoints!));
        using var dir = new TempDir();
        var config = Config();
        using var data = Data(config);
        using (var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir.Path))
        {
            trainer.CommitFault = (p, epoch) => { if (p == point && epoch == KilledEpoch) throw new SimulatedKill(); };
            Assert.Throws<SimulatedKill>(() => trainer.Run());
        }
        // What the kill left: the commit record names the last committed epoch; nothing is ahead of it but staged files.
        Assert.Equal(committed, RunResults.Load(dir.Path).Epochs.Count);
        Assert.Equal(last, Kill.EpochField(dir.File(Trainer.LastCheckpoint)));
        Assert.Equal(best, Kill.EpochField(dir.File(Trainer.BestCheckpoint)));
        Kill.PlantTemporaries(dir.Path, RunRecord.FileName, Trainer.LastCheckpoint, Trainer.BestCheckpoint,
            Trainer.LastCheckpoint + RunFolder.PendingSuffix);

        using (var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir.Path))
        {
            var resumed = trainer.Run(resume: true);
            Assert.Equal("completed", resumed.Status);
            Assert.Equal(straight.Results.Epochs.Select(WithoutTimes), resumed.Epochs.Select(WithoutTimes));
            Assert.Equal(straight.Results.Epochs.Select(WithoutTimes), RunResults.Load(dir.Path).Epochs.Select(WithoutTimes));
            var weights = Weights(trainer.Model);
            Assert.Equal(straight.Weights.Keys.Order(), weights.Keys.Order());
            foreach (var (name, value) in straight.Weights) Assert.Equal(value, weights[name]);
        }
        Assert.Equal(straight.Last, File.ReadAllBytes(dir.File(Trainer.LastCheckpoint)));
        Assert.Equal(straight.Best, File.ReadAllBytes(dir.File(Trainer.BestCheckpoint)));
        Assert.Empty(Kill.Leftovers(dir.Path));
    }

    [Theory]
    [InlineData("staged:best.ckpt")]
    [InlineData("staged:last.ckpt")]
    public void AKillBeforeTheFirstCommitResumesAsAFreshRun(string point)
    {
        using var dir = new TempDir();
        var config = Config();
        using var data = Data(config);
        using (var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir.Path))
        {
            trainer.CommitFault = (p, _) => { if (p == point) throw new SimulatedKill(); };
            Assert.Throws<SimulatedKill>(() => trainer.Run());
        }
        Assert.False(File.Exists(dir.File(RunRecord.FileName)));
        Assert.False(File.Exists(dir.File(Trainer.LastCheckpoint)));
        using (var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir.Path))
            Assert.Equal(straight.Results.Epochs.Select(WithoutTimes), trainer.Run(resume: true).Epochs.Select(WithoutTimes));
        Assert.Equal(straight.Last, File.ReadAllBytes(dir.File(Trainer.LastCheckpoint)));
        Assert.Empty(Kill.Leftovers(dir.Path));
    }

    [Theory]
    [InlineData(Trainer.LastCheckpoint)]
    [InlineData(Trainer.BestCheckpoint)]
    public void ACheckpointWhoseEpochDisagreesWithTheResultsIsRefused(string name)
    {
        using var dir = new TempDir();
        var config = Config(epochs: 1);
        using var data = Data(config);
        using (var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir.Path)) trainer.Run();
        Assert.Equal(1, Kill.EpochField(dir.File(name)));
        Kill.EditEpochField(dir.File(name), 9);

        using var resumed = new Trainer(config with { Epochs = 2 }, data, () => new TinyNet(config.Norm), dir.Path);
        var e = Assert.Throws<InvalidDataException>(() => resumed.Run(resume: true));
        Assert.StartsWith(dir.File(name) + ": holds epoch 9", e.Message);
        Assert.Contains(RunRecord.FileName, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        // Nothing was trained or rewritten.
        Assert.Single(RunResults.Load(dir.Path).Epochs);
        Assert.Equal(9, Kill.EpochField(dir.File(name)));
    }

    [Fact]
    public void AMissingCheckpointIsRefusedWithItsName()
    {
        using var dir = new TempDir();
        var config = Config(epochs: 1);
        using var data = Data(config);
        using (var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir.Path)) trainer.Run();
        File.Delete(dir.File(Trainer.BestCheckpoint));
        using var resumed = new Trainer(config with { Epochs = 2 }, data, () => new TinyNet(config.Norm), dir.Path);
        var e = Assert.Throws<InvalidDataException>(() => resumed.Run(resume: true));
        Assert.StartsWith(dir.File(Trainer.BestCheckpoint) + ": missing", e.Message);
    }

    [Fact]
    public void CompareFinishesTheInterruptedFinalCommitOfARunItKeeps()
    {
        using var dir = new TempDir();
        var grid = new ComparisonGrid(Config(epochs: 1), [new NormChoice("BN", "bn")], [3e-3], [7], dir.Path);
        var (config, runDir) = grid.Runs[0];
        using (var data = Data(config))
        using (var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), runDir))
        {
            trainer.CommitFault = (p, _) => { if (p == "committed") throw new SimulatedKill(); };
            Assert.Throws<SimulatedKill>(() => trainer.Run());
        }
        Assert.Equal("completed", ComparisonGrid.StateOf(runDir));
        Assert.False(File.Exists(Path.Combine(runDir, Trainer.LastCheckpoint)));

        var states = new List<string>();
        var kept = grid.Run(new DataLocator(), (_, _, state) => states.Add(state));
        Assert.Equal(["completed"], states);
        Assert.Single(kept);
        Assert.Equal(1, Kill.EpochField(Path.Combine(runDir, Trainer.LastCheckpoint)));
        Assert.Equal(1, Kill.EpochField(Path.Combine(runDir, Trainer.BestCheckpoint)));
        Assert.Empty(Kill.Leftovers(runDir));
    }

    [Fact]
    public void CompareKeepsAFinishedRunWhoseCheckpointsWereAllRemoved()
    {
        // Finished runs kept for their results alone (a study commits only results.json) are results, not damage.
        using var dir = new TempDir();
        var grid = new ComparisonGrid(Config(epochs: 1), [new NormChoice("BN", "bn")], [3e-3], [7], dir.Path);
        var (config, runDir) = grid.Runs[0];
        using (var data = Data(config))
        using (var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), runDir))
            trainer.Run();
        var before = File.ReadAllText(Path.Combine(runDir, RunRecord.FileName));
        File.Delete(Path.Combine(runDir, Trainer.LastCheckpoint));
        File.Delete(Path.Combine(runDir, Trainer.BestCheckpoint));

        var states = new List<string>();
        var kept = grid.Run(new DataLocator(), (_, _, state) => states.Add(state));
        Assert.Equal(["completed"], states);
        Assert.Single(kept);
        Assert.Equal(before, File.ReadAllText(Path.Combine(runDir, RunRecord.FileName)));
        Assert.False(File.Exists(Path.Combine(runDir, Trainer.LastCheckpoint)));

        // One checkpoint left behind is still checked: it must agree with the record.
        File.WriteAllText(Path.Combine(runDir, Trainer.LastCheckpoint), "x");
        Assert.Throws<InvalidDataException>(() => grid.Run(new DataLocator()));
    }

    [Fact]
    public void CompareSkipsRunsAnotherWriterHolds()
    {
        using var dir = new TempDir();
        var grid = new ComparisonGrid(Config(epochs: 1), [new NormChoice("BN", "bn")], [3e-3], [7, 8], dir.Path);
        using var first = RunFolder.Lock(grid.Runs[0].RunDir);
        using var second = RunFolder.Lock(grid.Runs[1].RunDir);
        var states = new List<string>();
        var results = grid.Run(new DataLocator(), (_, _, state) => states.Add(state));
        Assert.Equal(["held", "held"], states);
        Assert.Empty(results);
        Assert.False(File.Exists(Path.Combine(grid.Runs[0].RunDir, RunRecord.FileName)));
    }

    [Fact]
    public void ATrainerRefusesAFolderAnotherWriterHolds()
    {
        using var dir = new TempDir();
        var config = Config(epochs: 1);
        using var data = Data(config);
        using var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir.Path);
        using (RunFolder.Lock(dir.Path))
        {
            var e = Assert.Throws<RunFolderLockedException>(() => trainer.Run());
            Assert.Contains($"pid {Environment.ProcessId} on {Environment.MachineName}", e.Message);
            Assert.False(File.Exists(dir.File(RunRecord.FileName)));
        }
        Assert.Equal("completed", trainer.Run().Status);
    }
}

public class RunFolderTests
{
    [Fact]
    public void ASecondWriterIsRefusedInOneLineNamingTheHolderUntilTheFirstLetsGo()
    {
        using var dir = new TempDir();
        var first = RunFolder.Lock(dir.Path);
        var e = Assert.Throws<RunFolderLockedException>(() => RunFolder.Lock(dir.Path));
        Assert.IsAssignableFrom<IOException>(e);
        Assert.StartsWith($"{dir.Path} is in use by pid {Environment.ProcessId} on {Environment.MachineName} since ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Null(RunFolder.TryLock(dir.Path, out var holder));
        Assert.StartsWith($"pid {Environment.ProcessId} ", holder);
        first.Dispose();
        using var again = RunFolder.Lock(dir.Path);
    }

    /// <summary>The lock is the kernel's flock: another process sees it, and a killed holder's lock is gone.</summary>
    [Fact]
    public void TheLockIsAnOsLockThatDiesWithItsProcess()
    {
        if (!OperatingSystem.IsLinux() || !File.Exists("/usr/bin/flock")) return;
        using var dir = new TempDir();
        string lockPath = dir.File(RunFolder.LockFile);
        using (RunFolder.Lock(dir.Path))
            Assert.Equal(75, Run("flock", "-n", "-E", "75", lockPath, "true"));
        Assert.Equal(0, Run("flock", "-n", "-E", "75", lockPath, "true"));

        // Another process takes the lock and is killed with SIGKILL: no clean-up of any kind runs.
        using var holder = Process.Start(new ProcessStartInfo("flock", ["-o", lockPath, "sh", "-c", "echo locked; exec sleep 60"])
        { RedirectStandardOutput = true })!;
        try
        {
            Assert.Equal("locked", holder.StandardOutput.ReadLine());
            Assert.Throws<RunFolderLockedException>(() => RunFolder.Lock(dir.Path));
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
            holder.WaitForExit();
        }
        using var after = RunFolder.Lock(dir.Path);

        static int Run(string file, params string[] args)
        {
            using var p = Process.Start(new ProcessStartInfo(file, args))!;
            p.WaitForExit();
            return p.ExitCode;
        }
    }

    [Fact]
    public void StaleTemporariesOfAtomicWritesAreRemovedAndOtherFilesKept()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("notes.tmp"), "mine");
        Kill.PlantTemporaries(dir.Path, "results.json", "last.ckpt");
        Directory.CreateDirectory(dir.File("snapshots"));
        Kill.PlantTemporaries(dir.File("snapshots"), "features-e0001.snap");
        using var folder = RunFolder.Lock(dir.Path);
        folder.RemoveStaleTemporaries();
        Assert.Equal(["notes.tmp"], Directory.GetFiles(dir.Path, "*.tmp", SearchOption.AllDirectories).Select(Path.GetFileName));
    }
}
