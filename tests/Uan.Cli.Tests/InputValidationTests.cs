using Uan.Cli;
using Uan.Lab.Training;

namespace Uan.Cli.Tests;

/// <summary>
/// Every bad option, spec value, device or output folder is refused in one line with exit code 2 before any data is
/// read or any run folder made; expected failures of the environment are one line too, bugs keep their stack trace.
/// </summary>
public sealed class InputValidationTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-cli-input-" + Guid.NewGuid().ToString("N"));

    public InputValidationTests() => Directory.CreateDirectory(Path.Combine(_dir, "empty-data"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static void AssertOneLine(int code, string err, string expected)
    {
        Assert.True(code == UanCommand.BadInput, $"exit {code}: {err}");
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("uan: ", err);
        Assert.Contains(expected, err);
        Assert.DoesNotContain("   at ", err);
        Assert.DoesNotContain("(Parameter '", err);
        Assert.DoesNotContain("System.", err);
    }

    // The dataset is one that is not installed in the (empty) data folder: had the command read data before
    // checking, the message would be the dataset's "not installed" one instead of the expected one.
    [Theory]
    [InlineData("k must be an integer in 1..64, got '2048'", "train", "--norm", "uan:k=2048")]
    [InlineData("eps must be a number in (0, 1], got '-1'", "train", "--norm", "bn:eps=-1")]
    [InlineData("eps must be a number in (0, 1], got '-1'", "train", "--norm", "ln:eps=-1")]
    [InlineData("momentum must be a number in [0, 1], got '5'", "train", "--norm", "bn:momentum=5")]
    [InlineData("gives option k twice (3 and 4)", "train", "--norm", "uan:k=3,k=4")]
    [InlineData("momentum must be a number in [0, 1], got '2'", "train", "--other-norm", "bn:momentum=2")]
    [InlineData("k must be an integer in 1..64, got '0'", "train", "--model", "densenet40", "--input-norm", "uan:k=0")]
    [InlineData("--device 'cuda' is not available", "train", "--device", "cuda")]
    [InlineData("--device 'tpu' is unknown; accepted: cpu, cuda, cuda:N", "train", "--device", "tpu")]
    [InlineData("--lr must be a number in (0, 10], got 'Infinity'", "train", "--lr", "Infinity")]
    [InlineData("--lr must be a number in (0, 10], got 'fast'", "train", "--lr", "fast")]
    [InlineData("--lr must be a number in (0, 10], got '0'", "train", "--lr", "0")]
    [InlineData("--weight-decay must be a number in [0, 1], got 'NaN'", "train", "--weight-decay", "NaN")]
    [InlineData("--epochs must be an integer in 1..100000, got '0'", "train", "--epochs", "0")]
    [InlineData("--epochs must be an integer in 1..100000, got 'ten'", "train", "--epochs", "ten")]
    [InlineData("--batch-size must be an integer in 1..65536, got '-5'", "train", "--batch-size", "-5")]
    [InlineData("--val-fraction must be a number in (0, 1), got '1'", "train", "--val-fraction", "1")]
    [InlineData("--threads must be an integer in 1..1024, got '0'", "train", "--threads", "0")]
    [InlineData("--image-size must be an integer in 1..1024, got '99999'", "train", "--image-size", "99999")]
    [InlineData("--train-limit must be an integer ≥ 0, got '-1'", "train", "--train-limit", "-1")]
    [InlineData("--train-limit must be 0 (all images) or at least 2 (training and validation images), got '1'", "train", "--train-limit", "1")]
    [InlineData("--subset and --train-limit exclude each other", "compare", "--train-limit", "500", "--subset", "500")]
    [InlineData("iters must be an integer in 0..100, got '-1'", "compare", "--norm", "mn:iters=-1")]
    [InlineData("--lr must be a number in (0, 10], got 'NaN'", "compare", "--lr", "0.01,NaN")]
    [InlineData("--seed must be an integer, got 'x'", "compare", "--seed", "1", "x")]
    [InlineData("--device 'cuda:0' is not available", "compare", "--device", "cuda:0")]
    [InlineData("groups must divide the channel count 128, got 3", "train", "--norm", "gn:groups=3")]
    [InlineData("groups must divide the channel count", "compare", "--norm", "bn", "--norm", "gn:groups=5")]
    [InlineData("groups must divide the channel count 3, got 2", "train", "--model", "densenet40", "--input-norm", "gn:groups=2")]
    [InlineData("input norm 'std' (fixed per-channel standardisation) is for domain adaptation (uan adapt --input-norm std)", "train", "--model", "densenet40", "--input-norm", "std")]
    [InlineData("input norm 'STD' (fixed per-channel standardisation) is for domain adaptation", "compare", "--model", "wrn-16-2", "--input-norm", "STD")]
    public void TrainAndCompareRefuseBadInputBeforeReadingData(string expected, params string[] args)
    {
        string run = Path.Combine(_dir, "run");
        var (code, _, err) = CliTests.Uan([.. args, "--dataset", "cifar10", "--data-dir", Path.Combine(_dir, "empty-data"), "--out", run]);
        AssertOneLine(code, err, expected);
        Assert.False(Directory.Exists(run), "a run folder was created");
    }

    [Theory]
    [InlineData("--lr must be a number in (0, 10], got 'Infinity'", "--lr", "Infinity")]
    [InlineData("--device 'cuda' is not available", "--device", "cuda")]
    [InlineData("gives option k twice", "--norm", "uan:k=3,k=4")]
    [InlineData("--target: unknown dataset 'nosuch'", "--target", "nosuch")]
    [InlineData("groups must divide the channel count", "--norm", "gn:groups=7")]
    [InlineData("--source-batch must be an integer in 1..65536, got '0'", "--source-batch", "0")]
    [InlineData("--horizon must be an integer ≥ 1, got '0'", "--horizon", "0")]
    [InlineData("--time-steps must be an integer ≥ 1, got '0'", "--time-steps", "0")]
    public void AdaptRefusesBadInputBeforeReadingData(string expected, params string[] args)
    {
        string run = Path.Combine(_dir, "run");
        var (code, _, err) = CliTests.Uan(["adapt", "--source", "cifar10", "--data-dir", Path.Combine(_dir, "empty-data"),
            .. args, "--out", run, "--quiet"]);
        AssertOneLine(code, err, expected);
        Assert.False(Directory.Exists(run), "a run folder was created");
    }

    [Theory]
    [InlineData("--k must be an integer in 1..16, got '0'", "bench", "--k", "0")]
    [InlineData("--repeats must be an integer in 1..10000, got 'NaN'", "bench", "--repeats", "NaN")]
    [InlineData("--perplexity must be a number in (0, 10000], got 'Infinity'", "figures", "DIR", "--perplexity", "Infinity")]
    [InlineData("--tsne-points must be an integer in 4..100000, got '2'", "figures", "DIR", "--tsne-points", "2")]
    [InlineData("--train must be an integer in 1..10000000, got '0'", "data", "make-syndigits", "--train", "0")]
    public void OtherCommandsRefuseOutOfRangeNumbers(string expected, params string[] args)
    {
        // --data-dir only where the command takes it (data make-syndigits): the data folder must stay empty.
        string[] data = args[0] == "data" ? ["--data-dir", Path.Combine(_dir, "empty-data")] : [];
        var (code, _, err) = CliTests.Uan([.. args.Select(a => a == "DIR" ? _dir : a), .. data]);
        AssertOneLine(code, err, expected);
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(_dir, "empty-data")));
    }

    [Fact]
    public void AnOutputFolderThatCannotBeWrittenIsOneLineBeforeTheData()
    {
        if (!OperatingSystem.IsLinux()) return;
        // /sys refuses new entries even to root; the missing dataset would be the message had the data come first.
        var (code, _, err) = CliTests.Uan("train", "--dataset", "cifar10", "--data-dir", Path.Combine(_dir, "empty-data"), "--out", "/sys/x");
        AssertOneLine(code, err, "--out: cannot write into /sys/x");
        Assert.False(Directory.Exists("/sys/x"));

        var report = CliTests.Uan("report", _dir, "--out", "/sys/x");
        AssertOneLine(report.Code, report.Err, "--out: cannot write into /sys/x");
        var figures = CliTests.Uan("figures", _dir, "--out", "/sys/x");
        AssertOneLine(figures.Code, figures.Err, "--out: cannot write into /sys/x");
        var syn = CliTests.Uan("data", "make-syndigits", "--train", "10", "--test", "10", "--data-dir", "/sys/x");
        AssertOneLine(syn.Code, syn.Err, "--data-dir: cannot write into /sys/x");

        string file = Path.Combine(_dir, "a-file");
        File.WriteAllText(file, "");
        var inFile = CliTests.Uan("compare", "--dataset", "cifar10", "--data-dir", Path.Combine(_dir, "empty-data"), "--out", Path.Combine(file, "run"));
        AssertOneLine(inFile.Code, inFile.Err, "is a file, not a folder");
    }

    [Fact]
    public void AFolderMadeForARunThatFailedToLoadItsDataIsRemovedAgain()
    {
        string run = Path.Combine(_dir, "new", "run");
        var (code, _, err) = CliTests.Uan("train", "--dataset", "cifar10", "--data-dir", Path.Combine(_dir, "empty-data"), "--out", run);
        AssertOneLine(code, err, "not installed");
        Assert.False(Directory.Exists(Path.Combine(_dir, "new")), "the folders made for the run stayed behind");
    }

    [Fact]
    public void HelpStatesTheRanges()
    {
        var (code, output, _) = CliTests.Uan("train", "--help");
        Assert.Equal(0, code);
        string flat = string.Join(" ", output.Split((char[])['\n', ' '], StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("Learning rate; a number in (0, 10] (default: 0.001)", flat);
        Assert.Contains("Decoupled weight decay; a number in [0, 1] (default: 0.0001)", flat);
        Assert.Contains("k: integer 1..64; eps: number in (0, 1]", flat);
    }

    public static IEnumerable<object[]> UserErrors() => new[]
    {
        new object[] { new UnauthorizedAccessException("Access to the path '/root/runs' is denied."), "Access to the path '/root/runs' is denied." },
        new object[] { new HeldFolder("another process holds the run folder runs/x"), "another process holds the run folder runs/x" },
        new object[] { new InvalidDataException("runs/x/results.json: the run folder is inconsistent"), "runs/x/results.json: the run folder is inconsistent" },
        new object[] { new ArgumentException("Norm 'bn:eps=-1': bad", "spec"), "Norm 'bn:eps=-1': bad" },
        new object[] { new ArgumentOutOfRangeException("trainCount", 0, "must be positive"), "must be positive (got 0)" },
    };

    /// <summary>Stands for the IOException subclasses of the trainers (a run folder another process holds).</summary>
    private sealed class HeldFolder(string message) : IOException(message);

    [Theory]
    [MemberData(nameof(UserErrors))]
    public void GuardPrintsExpectedFailuresAsOneLine(Exception e, string expected)
    {
        var o = new StringWriter();
        var err = new StringWriter();
        int code = UanCommand.Guard(new Ui(o, err), () => throw e);
        Assert.Equal(UanCommand.BadInput, code);
        Assert.Equal($"uan: {expected}{Environment.NewLine}", err.ToString());
    }

    [Fact]
    public void GuardLetsBugsThrough()
    {
        var ui = new Ui(new StringWriter(), new StringWriter());
        Assert.Throws<NullReferenceException>(() => UanCommand.Guard(ui, () => throw new NullReferenceException()));
        Assert.Throws<InvalidOperationException>(() => UanCommand.Guard(ui, () => throw new InvalidOperationException()));
    }

    [Fact]
    public void ADivergedTrainingIsReportedOnce()
    {
        // The path of 'uan train': the progress tracker sees the run finish, then the summary prints the results.
        var o = new StringWriter();
        var err = new StringWriter();
        var ui = new Ui(o, err);
        var results = new RunResults
        {
            Config = new RunConfig { Norm = "bn", Label = "BN", LearningRate = 0.5, Seed = 3, Epochs = 4 },
            Epochs = [new EpochMetrics { Epoch = 1 }],
            Status = "diverged",
            Message = "non-finite loss (NaN) at epoch 2, step 7",
        };
        new Ui.Tracker(ui, null, null).RunFinished(results);
        int code = TrainCommand.Summarise(ui, results, "runs/x", stoppedExitCode: 130);
        Assert.Equal(1, code);
        Assert.Equal($"uan: [BN lr=0.5 seed=3] diverged: non-finite loss (NaN) at epoch 2, step 7{Environment.NewLine}", err.ToString());
        Assert.StartsWith("diverged: 1/4 epochs", o.ToString());
    }
}
