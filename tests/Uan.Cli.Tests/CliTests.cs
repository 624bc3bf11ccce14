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

    internal static (int Code, string Out, string Err) Uan(params string[] args)
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
        Assert.StartsWith("train 270, validation 30 (fraction 0.1 of the training set), test 200 images" + Environment.NewLine, output);
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
        // Redirected output does not rely on a terminal to wrap: every line of the training part fits 80 columns
        // (the report's Markdown tables follow; lines naming the output folder are as long as its path).
        var training = output[..output.IndexOf("# UAN comparison report", StringComparison.Ordinal)];
        Assert.All(training.Split(Environment.NewLine).Where(l => !l.Contains(_dir)), l => Assert.True(l.Length <= 80, $"{l.Length} columns: {l}"));

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
        // --train-limit 300: the validation tenth is taken from the 300 images, as --subset 300 does.
        Assert.StartsWith("train 270, validation 30 (fraction 0.1 of the training set), test 200 images" + Environment.NewLine, first.Out);
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "results.json"))))
        {
            var config = json.RootElement.GetProperty("config");
            Assert.Equal(300, config.GetProperty("subset").GetInt32());
            Assert.False(config.TryGetProperty("trainLimit", out var limit) && limit.ValueKind != JsonValueKind.Null);
        }
        Assert.Contains("completed: 2/2 epochs", first.Out);
        Assert.All(first.Out.Split(Environment.NewLine).Where(l => !l.Contains(_dir)), l => Assert.True(l.Length <= 80, $"{l.Length} columns: {l}"));
        var again = Uan(Tiny("train", "--norm", "uan:k=3"));
        Assert.Equal(2, again.Code);
        Assert.Contains("already holds a run", again.Err);
        var more = Uan(["train", "--epochs", "3", "--train-limit", "300", "--test-limit", "200", "--batch-size", "100", "--out", _dir,
            "--norm", "uan:k=3", "--resume"]);
        Assert.True(more.Code == 0, more.Out + more.Err);
        Assert.Contains("completed: 3/3 epochs", more.Out);
        // Epoch-end lines ("epoch 3/3: 12 s, ..."); a progress line of a slow machine ("epoch 3/3, step ...") is not one.
        Assert.Single(more.Out.Split('\n'), l => l.Contains("epoch 3/3:"));
        Assert.DoesNotContain("epoch 1/3", more.Out);
        Assert.DoesNotContain("epoch 2/3", more.Out);
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
    [InlineData("k must be an integer in 1..64, got '0'", "compare", "--norm", "BN=bn", "--norm", "uan:k=0")]
    [InlineData("--lr must be a number in (0, 10], got 'fast'", "compare", "--lr", "fast")]
    [InlineData("--epochs must be an integer in 1..100000, got '0'", "train", "--epochs", "0")]
    [InlineData("unknown option '--bogus' for 'uan train'", "train", "--bogus")]
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
    public void BenchWritesARatioTableWithEveryNormAndTheTrainingStep()
    {
        string md = Path.Combine(_dir, "bench", "bench.md");
        var (code, output, err) = Uan("bench", "--shape", "4x3x5x7", "--shape", "6x5", "--repeats", "1",
            "--reference-repeats", "1", "--k", "2", "--step-repeats", "1", "--out", md, "--quiet");
        Assert.True(code == 0, err);
        string table = File.ReadAllText(md);
        Assert.Contains(table.Trim(), output);
        Assert.Contains("input: a view of a leaf tensor, as inside a network", table);
        Assert.Contains("(BatchNorm's own row: the median of those before-and-after means over all the shape's layers)", table);
        Assert.Contains(!OperatingSystem.IsLinux() ? "Allocator: the platform's default"
            : Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is null
                ? "Allocator: glibc defaults" : "Allocator: glibc with MALLOC_MMAP_THRESHOLD_=", table);
        if (OperatingSystem.IsLinux()) Assert.Contains("MALLOC_ARENA_MAX", table);
        foreach (string shape in new[] { "4x3x5x7", "6x5" })
        {
            var rows = table.Split('\n').Where(l => l.StartsWith($"| {shape} |", StringComparison.Ordinal)).ToArray();
            // BatchNorm, then GroupNorm, LayerNorm and the three mixture norms fused, then the mixture norms on the
            // tensor-op path.
            Assert.Equal(9, rows.Length);
            Assert.Contains(rows, r => r.Contains("| UAN Paper K=2 | fused |"));
            Assert.Contains(rows, r => r.Contains("| MixtureNorm K=2 | tensor-op |"));
            Assert.StartsWith($"| {shape} | BatchNorm | native | fwd+bwd |", rows[0]);
            Assert.Contains("| 1.00× | 1.00× |", rows[0]);
            // BatchNorm's own time is the median of every BatchNorm call of the shape: both time columns agree.
            var cells = rows[0].Split('|', StringSplitOptions.TrimEntries);
            Assert.Equal(cells[5], cells[6]);
        }
        Assert.Contains("| shallow-cnn 64x1x28x28 | uan:k=2 |", table);
        Assert.Contains("| shallow-cnn 64x1x28x28 | mn:k=2 |", table);
    }

    [Fact]
    public void BenchLeafInputIsNamedInTheTable()
    {
        var (code, output, err) = Uan("bench", "--shape", "4x3x5x7", "--repeats", "1", "--reference-repeats", "0",
            "--no-step", "--leaf-input");
        Assert.True(code == 0, err);
        Assert.Contains("input: a leaf tensor (--leaf-input)", output);
        Assert.Contains("| 4x3x5x7 | UAN Paper K=3 | fused |", output);
        // The progress lines name each layer's path as its table row does (GroupNorm and LayerNorm: native).
        var rows = output.Split('\n').Where(l => l.StartsWith("| 4x3x5x7 |", StringComparison.Ordinal) && !l.Contains("| BatchNorm |")).ToList();
        Assert.Equal(5, rows.Count);   // GroupNorm, LayerNorm and the three mixture norms, fused; the tensor-op path skipped
        foreach (var row in rows)
        {
            var cells = row.Split('|', StringSplitOptions.TrimEntries);
            Assert.Contains($"4x3x5x7: {cells[2]} ({cells[3]})", output);
        }
        Assert.Contains("4x3x5x7: LayerNorm (native)", output);
    }

    [Theory]
    [InlineData("Shape '64x0': expected 2 to 5 positive sizes", "bench", "--shape", "64x0")]
    [InlineData("--k must be an integer in 1..16, got '0'", "bench", "--k", "0")]
    public void BenchBadInputIsOneLineAndExitCodeTwo(string expected, params string[] args)
    {
        var (code, _, err) = Uan(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
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
    public void ReportOnAFolderWithOnlyAdaMatchRunsPrintsTheAdaptationTable()
    {
        foreach (var (seed, accuracy) in new[] { (1, 0.80), (2, 0.90) })
            new global::Uan.Lab.Adaptation.AdaMatchResults
            {
                Config = new global::Uan.Lab.Adaptation.AdaMatchConfig { Epochs = 1, StepsPerEpoch = 20, Seed = seed },
                StepsPerEpoch = 20, HorizonSteps = 20, Status = "completed",
                Epochs =
                [
                    new global::Uan.Lab.Adaptation.AdaMatchEpoch
                    {
                        Epoch = 1,
                        SourceTest = new global::Uan.Lab.Adaptation.DomainMetrics { Accuracy = accuracy, F1 = accuracy },
                        TargetTest = new global::Uan.Lab.Adaptation.DomainMetrics { Accuracy = 0.25, F1 = 0.2 },
                    },
                ],
            }.Save(Path.Combine(_dir, "adapt", $"AdaMatch-s{seed}"));

        var (code, output, err) = Uan("report", _dir);
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        Assert.DoesNotContain("no results.json", err);
        Assert.Contains("## Domain adaptation (AdaMatch)", output);
        Assert.Contains("| AdaMatch | mnist → syndigits | wrn-16-2 | 20 | n=2 | 85.0 ± 7.1 |", output);
        Assert.Contains("*the paper, MNIST → SVHN, 100 epochs: AdaMatch + UAN*", output);
        Assert.Contains($"written: {Path.Combine(_dir, "adaptation-accuracy.png")}", output);
        Assert.True(File.Exists(Path.Combine(_dir, "adaptation-accuracy.png")));
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
            "--epochs", "1", "--steps-per-epoch", "2", "--source-batch", "4", "--test-limit", "20", "--probe", "--step-log", "--out", _dir);
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        Assert.Contains("epoch 1/1", output);
        Assert.Contains("source test acc", output);
        // The epoch's log is three lines that fit 80 columns.
        var epochLog = output.Split('\n').SkipWhile(l => !l.StartsWith("epoch 1/1:")).Take(3).ToArray();
        Assert.Equal(3, epochLog.Length);
        Assert.All(epochLog, l => Assert.True(l.TrimEnd('\r').Length <= 80, l));
        Assert.StartsWith("  source test acc ", epochLog[2]);
        Assert.Contains("paper: AdaMatch+UAN (SVHN, target)", output);
        Assert.Contains("not SVHN", output);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "results.json")));
        Assert.Equal("adamatch", json.RootElement.GetProperty("kind").GetString());
        Assert.Equal("completed", json.RootElement.GetProperty("status").GetString());
        Assert.Equal("official", json.RootElement.GetProperty("config").GetProperty("variant").GetString());
        var epoch = json.RootElement.GetProperty("epochs")[0];
        Assert.Equal(20, epoch.GetProperty("targetTest").GetProperty("count").GetInt64());
        Assert.True(File.Exists(Path.Combine(_dir, "last.ckpt")));
        // --step-log: one row per step, with the logit scales and the gradient norm.
        var steps = global::Uan.Lab.Adaptation.AdaMatchStepLog.Load(Path.Combine(_dir, "steps.csv"));
        Assert.Equal(new long[] { 0, 1 }, steps.Select(r => r.Step).ToArray());
        Assert.All(steps, r => Assert.True(r.Result.GradNorm > 0 && r.Result.EvalLogitScale > 0, $"{r}"));
        // --probe: one record per domain for the epoch, finite positive variances, max ≥ mean.
        var probes = global::Uan.Lab.Diagnostics.GradientProbeLog.Load(_dir);
        Assert.Equal(new[] { "source", "target" }, probes.Select(r => r.Domain).ToArray());
        Assert.All(probes, r =>
        {
            Assert.Equal(1, r.Epoch);
            Assert.Equal("paper", r.Definition);
            Assert.True(r.Mean > 0 && double.IsFinite(r.Max) && r.Max >= r.Mean, $"{r}");
        });
    }

    [Theory]
    [InlineData("--target", "nosuch")]
    [InlineData("--model", "densenet40")]
    [InlineData("--source-batch", "0")]
    [InlineData("--norm", "bogus")]
    [InlineData("--variant", "bogus")]
    [InlineData("--input-norm", "std:k=2")]
    public void AdaptRejectsBadInputWithOneLineAndExitCode2(string option, string value)
    {
        var (code, _, err) = Uan("adapt", "--source", "mnist-subset", "--target", "mnist-subset", option, value, "--out", _dir);
        Assert.Equal(UanCommand.BadInput, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("uan: ", err);
    }

    [Fact]
    public void AdaptCompatContradictingVariantIsRefused()
    {
        var (code, _, err) = Uan("adapt", "--compat", "--variant", "keras", "--source", "mnist-subset", "--target", "mnist-subset", "--out", _dir);
        Assert.Equal(UanCommand.BadInput, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.StartsWith("uan: --compat is an alias of --variant compat", err);
    }

    [Theory]
    [InlineData("--compat")]
    [InlineData("--variant=compat")]
    public void AdaptCompatSaysWhichDeviationsAreActive(string option)
    {
        // SVHN is not in the empty data folder: the run stops at loading, after the compat notes.
        var (code, output, _) = Uan("adapt", option, "--source", "mnist-subset", "--target", "svhn",
            "--data-dir", Path.Combine(_dir, "no-data"), "--out", _dir);
        Assert.Equal(UanCommand.BadInput, code);
        Assert.Contains("compat: reference-notebook deviations active", output);
        Assert.Contains("L2-normalised", output);
    }

    [Fact]
    public void MakeSynDigitsWritesTheDatasetAndDataListFindsIt()
    {
        var (code, output, err) = Uan("data", "make-syndigits", "--train", "30", "--test", "20", "--seed", "2", "--data-dir", _dir);
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        string dir = Path.Combine(_dir, "syndigits");
        foreach (var f in new[] { "train-images-idx4-ubyte.gz", "train-labels-idx1-ubyte.gz", "test-images-idx4-ubyte.gz",
                     "test-labels-idx1-ubyte.gz", "metadata.json", "preview.png", "README.md" })
            Assert.True(File.Exists(Path.Combine(dir, f)), $"{f} missing; output:\n{output}");
        Assert.Contains("train: 30/30 images", output);
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metadata.json"))))
        {
            Assert.Equal(2, json.RootElement.GetProperty("seed").GetInt32());
            Assert.Equal(20, json.RootElement.GetProperty("test").GetInt32());
        }

        var list = Uan("data", "list", "--data-dir", _dir);
        Assert.Equal(0, list.Code);
        Assert.Matches(@"syndigits\s+present", list.Out);
        var bad = Uan("data", "make-syndigits", "--train", "0", "--data-dir", _dir);
        Assert.Equal(2, bad.Code);
    }

    [Fact]
    public void MakeMnistMLikeWritesIntoTheGivenDataFolderFromTheSubsetThatTravelsWithTheCommand()
    {
        // The data folder is empty: the digits come from the MNIST subset next to the program (embedded/mnist-subset).
        var (code, output, err) = Uan("data", "make-mnistm-like", "--source", "mnist-subset", "--seed", "3", "--data-dir", _dir);
        Assert.True(code == 0, $"exit {code}\n{output}\n{err}");
        using (var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "mnistm-like", "metadata.json"))))
            Assert.Equal(3, json.RootElement.GetProperty("seed").GetInt32());
        var list = Uan("data", "list", "--data-dir", _dir);
        Assert.Equal(0, list.Code);
        Assert.Matches(@"mnistm-like\s+present", list.Out);
        Assert.Matches(@"mnist-subset\s+present\s+\S*embedded", list.Out);
    }

    [Fact]
    public void DataListHintsHowToMakeSynDigits()
    {
        var (code, output, _) = Uan("data", "list", "--data-dir", _dir);
        Assert.Equal(0, code);
        Assert.Matches(@"syndigits\s+missing\s+.*uan data make-syndigits", output);
    }
}

/// <summary><c>uan train --snapshots</c> then <c>uan figures</c> on the embedded subset, kept small.</summary>
public sealed class FiguresCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-figures-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static (int Code, string Out, string Err) Uan(params string[] args) => CliTests.Uan(args);

    [Fact]
    public void SnapshotsThenFiguresWritesTsneActivationsAndTable()
    {
        var runs = Path.Combine(_dir, "runs");
        var train = Uan(["compare", "--epochs", "2", "--train-limit", "100", "--test-limit", "60", "--batch-size", "50", "--out", runs,
            "--norm", "BN=bn", "--norm", "UAN=uan:k=3", "--snapshots"]);
        Assert.True(train.Code == 0, train.Out + train.Err);
        foreach (var run in new[] { "BN-lr0.001-s1", "UAN-lr0.001-s1" })
        {
            var snaps = Path.Combine(runs, run, "snapshots");
            Assert.True(File.Exists(Path.Combine(snaps, "features-e0001.snap")), $"{snaps}: {string.Join(", ", Directory.GetFiles(runs, "*", SearchOption.AllDirectories))}");
            Assert.True(File.Exists(Path.Combine(snaps, "features-e0002.snap")));
            Assert.True(File.Exists(Path.Combine(snaps, "activations-e0002.snap")));
        }
        var probe = new List<global::Uan.Lab.Diagnostics.GradientProbeRecord>
        {
            new(1, "source", "paper", 1e-2, 1e-4), new(2, "source", "paper", 5e-3, 5e-5),
            new(1, "target", "paper", 3e-2, 2e-4), new(2, "target", "paper", 2e-2, 1e-4),
        };
        global::Uan.Lab.Diagnostics.GradientProbeLog.Save(Path.Combine(runs, "UAN-lr0.001-s1"), probe);

        var figures = Uan(["figures", runs, "--tsne-points", "40", "--tsne-iterations", "300", "--channels", "4,12,28"]);
        Assert.True(figures.Code == 0, figures.Out + figures.Err);
        var outDir = Path.Combine(runs, "figures");
        foreach (var png in new[] { "tsne_BN.png", "tsne_UAN.png", "activations.png", "gradient-variance.png" })
            Assert.True(new FileInfo(Path.Combine(outDir, png)).Length > 1000, $"{png} missing; output:\n{figures.Out}");
        Assert.Contains("t-SNE BN epoch 1/2: 40 points", figures.Out);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "figures.json")));
        Assert.Equal(4, json.RootElement.GetArrayLength());
        foreach (var row in json.RootElement.EnumerateArray())
        {
            double knn = row.GetProperty("knnAccuracy").GetDouble();
            Assert.InRange(knn, 0, 1);
            Assert.Equal(40, row.GetProperty("points").GetInt32());
        }
        Assert.Contains("| UAN | 2/2 | 40 |", File.ReadAllText(Path.Combine(outDir, "figures.md")));

        var none = Uan(["figures", _dir + "-missing"]);
        Assert.Equal(2, none.Code);
    }
}
