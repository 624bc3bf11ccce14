using System.Text.Json;
using Uan.Cli;

namespace Uan.Cli.Tests;

/// <summary>The <c>uan</c> command run in-process on the embedded MNIST subset, in a temporary folder.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-cli-" + Guid.NewGuid().ToString("N"));

    public CliTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static (int Code, string Out, string Err) Uan(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = UanCommand.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    private string[] Tiny(string command, params string[] more) =>
        [command, "--epochs", "2", "--train-limit", "300", "--test-limit", "200", "--batch-size", "100", "--out", _dir, .. more];

    [Fact]
    public void CompareTrainsTheGridAndWritesResultsTableAndPlots()
    {
        var (code, output, err) = Uan(Tiny("compare", "--norm", "BN=bn", "--norm", "uan:k=2", "--seed", "1", "2"));
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        foreach (var run in new[] { "BN-lr0.001-s1", "BN-lr0.001-s2", "UAN_k_2-lr0.001-s1", "UAN_k_2-lr0.001-s2" }
                     .Select(r => r.Replace("UAN_k_2", SafeLabel("uan:k=2"))))
        {
            var folder = Path.Combine(_dir, run);
            Assert.True(File.Exists(Path.Combine(folder, "results.json")), $"{folder}/results.json missing; output:\n{output}");
            Assert.True(File.Exists(Path.Combine(folder, "last.ckpt")));
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "results.json")));
            Assert.Equal("completed", json.RootElement.GetProperty("status").GetString());
            Assert.Equal(2, json.RootElement.GetProperty("epochs").GetArrayLength());
        }
        var md = File.ReadAllText(Path.Combine(_dir, "comparison.md"));
        Assert.Contains("| BN", md);
        Assert.Contains("uan:k=2", md);
        Assert.Contains("reports no", md);
        Assert.NotEmpty(Directory.GetFiles(_dir, "*.png"));
        Assert.Contains("epoch 2/2", output);     // plain per-epoch lines when output is not a terminal

        // Running it again keeps the completed runs instead of training them again.
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(_dir, "BN-lr0.001-s1", "results.json"));
        var again = Uan(Tiny("compare", "--norm", "BN=bn", "--norm", "uan:k=2", "--seed", "1", "2"));
        Assert.Equal(0, again.Code);
        Assert.Contains("already completed, kept", again.Out);
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(Path.Combine(_dir, "BN-lr0.001-s1", "results.json")));
    }

    private static string SafeLabel(string spec) =>
        new(global::Uan.Lab.Training.NormChoice.Parse(spec).Label.Select(c => char.IsLetterOrDigit(c) || c is '-' or '_' or '.' ? c : '_').ToArray());

    [Fact]
    public void TrainThenResumeWithMoreEpochs()
    {
        var first = Uan(Tiny("train", "--norm", "uan:k=3"));
        Assert.True(first.Code == 0, first.Out + first.Err);
        Assert.Contains("completed: 2/2 epochs", first.Out);
        var again = Uan(Tiny("train", "--norm", "uan:k=3"));
        Assert.Equal(2, again.Code);
        Assert.Contains("already holds a run", again.Err);
        var more = Uan(["train", "--epochs", "3", "--train-limit", "300", "--test-limit", "200", "--batch-size", "100", "--out", _dir,
            "--norm", "uan:k=3", "--resume"]);
        Assert.True(more.Code == 0, more.Out + more.Err);
        Assert.Contains("completed: 3/3 epochs", more.Out);
        Assert.Single(more.Out.Split('\n'), l => l.Contains("epoch 3/3"));
        Assert.DoesNotContain("epoch 1/3", more.Out);
    }

    [Fact]
    public void DenseNetWithUanOnTheInputTrainsWithSgd()
    {
        var (code, output, err) = Uan("train", "--model", "densenet40", "--optimizer", "sgd", "--lr", "0.1", "--norm", "bn",
            "--input-norm", "uan:k=10", "--epochs", "1", "--train-limit", "128", "--test-limit", "64", "--batch-size", "64", "--out", _dir);
        Assert.True(code == 0, output + err);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "results.json")));
        var config = json.RootElement.GetProperty("config");
        Assert.Equal("uan:k=10", config.GetProperty("inputNorm").GetString());
        Assert.False(config.TryGetProperty("otherNorm", out _));     // shallow CNN only
        Assert.Equal(0.1, json.RootElement.GetProperty("epochs")[0].GetProperty("learningRate").GetDouble());
    }

    [Theory]
    [InlineData("unknown dataset 'imagenet'; accepted: mnist-subset", "train", "--dataset", "imagenet")]
    [InlineData("unknown model 'resnet'; accepted: shallow-cnn", "train", "--model", "resnet")]
    [InlineData("Unknown norm 'bogus'", "train", "--norm", "bogus")]
    [InlineData("K must be ≥ 1, got 0", "compare", "--norm", "BN=bn", "--norm", "uan:k=0")]
    [InlineData("--lr: 'fast' is not a number", "compare", "--lr", "fast")]
    [InlineData("--epochs must be positive", "train", "--epochs", "0")]
    [InlineData("Unrecognized command or argument '--bogus'", "train", "--bogus")]
    public void BadInputIsOneLineAndExitCodeTwo(string expected, params string[] args)
    {
        var (code, output, err) = Uan([.. args, "--out", Path.Combine(_dir, "x")]);
        Assert.Equal(2, code);
        Assert.Contains(expected, err, StringComparison.OrdinalIgnoreCase);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("uan: ", err);
        Assert.DoesNotContain("   at ", err);
        _ = output;
    }

    [Fact]
    public void MissingDatasetSaysWhereItLookedAndHowToGetIt()
    {
        var (code, _, err) = Uan("train", "--dataset", "cifar10", "--data-dir", _dir, "--out", Path.Combine(_dir, "x"));
        Assert.Equal(2, code);
        Assert.Contains("not installed", err);
        Assert.Contains(_dir, err);
    }

    [Fact]
    public void ReportOnAFolderWithoutResultsIsBadInput()
    {
        var (code, _, err) = Uan("report", _dir);
        Assert.Equal(2, code);
        Assert.Contains("no results.json", err);
        Assert.Equal(2, Uan("report", Path.Combine(_dir, "nope")).Code);
    }

    [Fact]
    public void DataListShowsTheEmbeddedSubset()
    {
        var (code, output, _) = Uan("data", "list");
        Assert.Equal(0, code);
        Assert.Matches(@"mnist-subset\s+present", output);
        Assert.Matches(@"cifar10\s+(present|missing)", output);
    }

    [Fact]
    public void AdaptRunsATinyAdaptationAndPrintsThePapersNumbersBesideOurs()
    {
        var (code, output, err) = Uan("adapt", "--source", "mnist-subset", "--target", "mnist-subset", "--model", "wrn-10-1",
            "--epochs", "1", "--steps-per-epoch", "2", "--source-batch", "4", "--test-limit", "20", "--out", _dir);
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        Assert.Contains("epoch 1/1", output);
        Assert.Contains("source test acc", output);
        Assert.Contains("paper: AdaMatch+UAN (SVHN, target)", output);
        Assert.Contains("not SVHN", output);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "results.json")));
        Assert.Equal("adamatch", json.RootElement.GetProperty("kind").GetString());
        Assert.Equal("completed", json.RootElement.GetProperty("status").GetString());
        var epoch = json.RootElement.GetProperty("epochs")[0];
        Assert.Equal(20, epoch.GetProperty("targetTest").GetProperty("count").GetInt64());
        Assert.True(File.Exists(Path.Combine(_dir, "last.ckpt")));
    }

    [Theory]
    [InlineData("--target", "nosuch")]
    [InlineData("--model", "densenet40")]
    [InlineData("--source-batch", "0")]
    [InlineData("--norm", "bogus")]
    public void AdaptRejectsBadInputWithOneLineAndExitCode2(string option, string value)
    {
        var (code, _, err) = Uan("adapt", "--source", "mnist-subset", "--target", "mnist-subset", option, value, "--out", _dir);
        Assert.Equal(UanCommand.BadInput, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("uan: ", err);
    }

    [Fact]
    public void AdaptCompatSaysWhichDeviationsAreActive()
    {
        var (code, output, _) = Uan("adapt", "--compat", "--source", "mnist-subset", "--target", "nosuch", "--out", _dir);
        Assert.Equal(UanCommand.BadInput, code);
        Assert.Contains("compat: reference-notebook deviations active", output);
        Assert.Contains("L2-normalised", output);
    }
}
