using System.Text.Json;
using Uan.Lab.Adaptation;
using Uan.Lab.Tests.Data;
using Uan.Lab.Training;

namespace Uan.Lab.Tests.Training;

/// <summary>
/// The shared base of the two results records must not change the files: same property names, casing and order as
/// the files written before it existed, and those files still load.
/// </summary>
public class RunRecordTests
{
    private static readonly string[] Common =
        ["status", "message", "environment", "started", "updated", "totalSeconds", "parameterCount"];

    private static readonly string[] EnvironmentNames =
        ["machine", "os", "processorCount", "torchThreads", "dotnet", "torchSharp", "uan"];

    private static List<string> TopLevelNames(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateObject().Select(p => p.Name).ToList();
    }

    private static List<string> Names(string json, string property)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty(property).EnumerateObject().Select(p => p.Name).ToList();
    }

    private static readonly EnvironmentInfo SomeEnvironment = new()
    {
        Machine = "m", Os = "linux", ProcessorCount = 2, TorchThreads = 1, Dotnet = "10", TorchSharp = "0.1", Uan = "1",
    };

    [Fact]
    public void RunResultsWritesTheSamePropertiesAsBefore()
    {
        using var tmp = new TempDir();
        var results = new RunResults
        {
            Config = new RunConfig(), Epochs = [new EpochMetrics { Epoch = 1 }], Status = "stopped", Message = "Ctrl-C",
            Environment = SomeEnvironment, Started = DateTimeOffset.UnixEpoch, Updated = DateTimeOffset.UnixEpoch,
            TotalSeconds = 1.5, ParameterCount = 10,
        };
        results.Save(tmp.Path);
        var json = File.ReadAllText(tmp.File("results.json"));

        Assert.Equal(["config", "epochs", .. Common], TopLevelNames(json));
        Assert.Equal(EnvironmentNames, Names(json, "environment"));
        Assert.Equal(JsonSerializer.Serialize(results, RunResults.Json), json);
        Assert.Equal(results with { Epochs = results.Epochs }, RunResults.Load(tmp.Path) with { Epochs = results.Epochs });
    }

    [Fact]
    public void AdaMatchResultsWritesTheSamePropertiesAsBefore()
    {
        using var tmp = new TempDir();
        var results = new AdaMatchResults
        {
            Config = new AdaMatchConfig(), StepsPerEpoch = 50, HorizonSteps = 250, Epochs = [new AdaMatchEpoch { Epoch = 1 }],
            Status = "diverged", Message = "non-finite loss", Environment = SomeEnvironment,
            Started = DateTimeOffset.UnixEpoch, Updated = DateTimeOffset.UnixEpoch, TotalSeconds = 2, ParameterCount = 20,
        };
        results.Save(tmp.Path);
        var json = File.ReadAllText(tmp.File("results.json"));

        Assert.Equal(["config", "kind", "stepsPerEpoch", "horizonSteps", "epochs", .. Common], TopLevelNames(json));
        Assert.Equal(EnvironmentNames, Names(json, "environment"));
        Assert.Equal(JsonSerializer.Serialize(results, RunResults.Json), json);
        Assert.True(AdaMatchResults.IsAdaMatchFile(tmp.File("results.json")));
        var loaded = AdaMatchResults.Load(tmp.Path);
        Assert.Equal(results.Config, loaded.Config);
        Assert.Equal((results.Status, results.Message, results.Environment, results.TotalSeconds, results.ParameterCount),
            (loaded.Status, loaded.Message, loaded.Environment, loaded.TotalSeconds, loaded.ParameterCount));
    }

    /// <summary>A file as the trainers wrote it before the base record (trimmed to the fields this test reads).</summary>
    private const string OldClassificationFile = """
        {
          "config": { "dataset": "mnist", "model": "shallow-cnn", "norm": "uan:k=3", "learningRate": 0.005, "epochs": 2, "seed": 3 },
          "epochs": [ { "epoch": 1, "testAccuracy": 0.9, "isBest": true } ],
          "status": "completed",
          "environment": { "machine": "box", "processorCount": 2 },
          "started": "2025-01-02T03:04:05+00:00",
          "updated": "2025-01-02T03:14:05+00:00",
          "totalSeconds": 600.5,
          "parameterCount": 1234
        }
        """;

    private const string OldAdaMatchFile = """
        {
          "config": { "source": "mnist", "target": "syndigits", "model": "wrn-16-2", "epochs": 5, "stepsPerEpoch": 50, "seed": 1, "threads": 1, "targetBatch": 48 },
          "kind": "adamatch",
          "stepsPerEpoch": 50,
          "horizonSteps": 250,
          "epochs": [ { "epoch": 1, "targetTest": { "accuracy": 0.105, "count": 1000 }, "secondsPerStep": 2.5 } ],
          "status": "stopped",
          "message": "stopped by Ctrl-C",
          "environment": { "machine": "box" },
          "started": "2025-01-02T03:04:05+00:00",
          "updated": "2025-01-02T03:14:05+00:00",
          "totalSeconds": 133.7,
          "parameterCount": 1467610
        }
        """;

    [Fact]
    public void FilesWrittenBeforeTheBaseRecordStillLoad()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("results.json"), OldClassificationFile);
        var run = RunResults.Load(tmp.Path);
        Assert.Equal(("uan:k=3", 0.005, 3), (run.Config.Norm, run.Config.LearningRate, run.Config.Seed));
        Assert.Equal(0.9, Assert.Single(run.Epochs).TestAccuracy);
        Assert.Equal(("completed", "box", 600.5, 1234L), (run.Status, run.Environment.Machine, run.TotalSeconds, run.ParameterCount));
        Assert.Equal(new DateTimeOffset(2025, 1, 2, 3, 14, 5, TimeSpan.Zero), run.Updated);

        File.WriteAllText(tmp.File("results.json"), OldAdaMatchFile);
        var ada = AdaMatchResults.Load(tmp.File("results.json"));
        Assert.Equal(("syndigits", 50, 1), (ada.Config.Target, ada.Config.StepsPerEpoch, ada.Config.Threads));
        Assert.Equal((50L, 250L), (ada.StepsPerEpoch, ada.HorizonSteps));
        Assert.Equal(0.105, Assert.Single(ada.Epochs).TargetTest.Accuracy);
        Assert.Equal(("stopped", "stopped by Ctrl-C", 133.7, 1467610L), (ada.Status, ada.Message, ada.TotalSeconds, ada.ParameterCount));
    }

    [Fact]
    public void BrokenFilesNameTheFileAndTheKind()
    {
        using var tmp = new TempDir();
        File.WriteAllText(tmp.File("results.json"), "{ \"config\": ");
        var e = Assert.Throws<InvalidDataException>(() => RunResults.Load(tmp.Path));
        Assert.StartsWith($"{tmp.File("results.json")}: not a valid results file (", e.Message);
        e = Assert.Throws<InvalidDataException>(() => AdaMatchResults.Load(tmp.Path));
        Assert.StartsWith($"{tmp.File("results.json")}: not a valid AdaMatch results file (", e.Message);
    }

    [Fact]
    public void ResumeCheckIgnoresTheBlankedFieldsAndShowsTheSavedConfiguration()
    {
        static AdaMatchConfig Blank(AdaMatchConfig c) => c with { Epochs = 0, Device = "", Threads = null };
        var saved = new AdaMatchConfig { Epochs = 5, Threads = 1, LearningRate = 0.03 };

        RunRecord.CheckResumable("runs/a", saved, saved with { Epochs = 10, Threads = 2, Device = "cuda" }, Blank);

        var e = Assert.Throws<ArgumentException>(() =>
            RunRecord.CheckResumable("runs/a", saved, saved with { LearningRate = 0.1 }, Blank));
        Assert.Equal("cannot resume runs/a: its configuration differs from this one (saved: " +
                     JsonSerializer.Serialize(Blank(saved), RunResults.Json).ReplaceLineEndings(" ") + ")", e.Message);
        Assert.Contains("\"epochs\": 0", e.Message);
        Assert.Contains("\"learningRate\": 0.03", e.Message);
    }
}
