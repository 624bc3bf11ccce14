using Uan.Lab.Adaptation;
using Uan.Lab.Reporting;

namespace Uan.Lab.Tests.Adaptation;

public sealed class AdaMatchResultsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-adamatch-results-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void RoundTripsAndIsReadAsAnAdaMatchRunByTheReport()
    {
        var results = new AdaMatchResults
        {
            Config = AdaMatchConfig.Paper with { Target = "svhn", InputNorm = "uan:k=2" },
            StepsPerEpoch = 381, HorizonSteps = 38100,
            Epochs = [new AdaMatchEpoch { Epoch = 1, TargetTest = new DomainMetrics { Accuracy = 0.25, F1 = 0.2, Count = 26032 } }],
        };
        var run = Path.Combine(_dir, "ada");
        results.Save(run);
        Assert.True(AdaMatchResults.IsAdaMatchFile(Path.Combine(run, "results.json")));
        var loaded = AdaMatchResults.Load(run);
        Assert.Equal(results.Config, loaded.Config);
        Assert.Equal(0.25, loaded.Epochs[0].TargetTest.Accuracy);
        Assert.Empty(Directory.GetFiles(run, "*.tmp"));

        var collection = RunCollection.Load(_dir);
        Assert.Empty(collection.Runs);
        Assert.Empty(collection.Warnings);
        var read = Assert.Single(collection.AdaMatchRuns);
        Assert.Equal(run, read.Directory);
        Assert.Equal(results.Config, read.Results.Config);
    }

    [Theory]
    [InlineData("false", AdaMatchVariants.Keras)]
    [InlineData("true", AdaMatchVariants.Compat)]
    public void AFileWrittenBeforeTheVariantsReadsBackAsTheKerasExample(string compat, string variant)
    {
        var run = Path.Combine(_dir, "old");
        new AdaMatchResults { Config = new AdaMatchConfig { Variant = AdaMatchVariants.Official } }.Save(run);
        string path = Path.Combine(run, "results.json");
        // What the file looked like then: a "compat" flag and no "variant".
        string json = File.ReadAllText(path).Replace("\"variant\": \"official\"", $"\"compat\": {compat}");
        Assert.DoesNotContain("variant", json);
        File.WriteAllText(path, json);
        var loaded = AdaMatchResults.Load(run);
        Assert.Equal(variant, loaded.Config.Variant);
        Assert.Equal($"AdaMatch [{variant}]", AdaMatchGroup.LabelOf(loaded.Config));
        Assert.Equal("AdaMatch", AdaMatchGroup.LabelOf(new AdaMatchConfig()));
        // Written now, the variant is kept.
        new AdaMatchResults { Config = new AdaMatchConfig() }.Save(Path.Combine(_dir, "new"));
        Assert.Equal(AdaMatchVariants.Official, AdaMatchResults.Load(Path.Combine(_dir, "new")).Config.Variant);
    }
}
