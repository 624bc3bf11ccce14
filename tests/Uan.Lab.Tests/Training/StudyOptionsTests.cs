using TorchSharp;
using Uan.Lab.Data;
using Uan.Lab.Diagnostics;
using Uan.Lab.Tests.Data;
using Uan.Lab.Training;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Training;

/// <summary>
/// What the study's runs record besides the usual epochs: a stratified subset split into training and validation,
/// validation points within an epoch, gradient variances at epoch ends and the machine's load. The recording must
/// leave the training itself exactly as it is.
/// </summary>
[Collection(nameof(GlobalRngCollection))]
public class StudyOptionsTests
{
    private static RunConfig Config(string norm = "bn") => new()
    {
        Dataset = "mnist-subset", Model = "tiny", Norm = norm, LearningRate = 3e-3, Epochs = 2, BatchSize = 64,
        Seed = 5, Subset = 800, ValidationFraction = 0.25, TestLimit = 200,
    };

    [Theory]
    [InlineData("cifar10")]
    [InlineData("a-dataset-of-unknown-shape")]
    public void ClassificationRefusesTheStdInputNormBeforeAnyDataIsRead(string dataset)
    {
        // std takes its statistics from the source training set, which only the AdaMatch trainer sets; a model built
        // for classification would fail at its first forward pass, after the data were loaded.
        var config = Config() with { Dataset = dataset, Model = "wrn-16-2", InputNorm = " std " };
        var e = Assert.Throws<ArgumentException>(() => Experiment.CheckModel(config));
        Assert.Contains("input norm ' std ' (fixed per-channel standardisation) is for domain adaptation", e.Message);
        // Any norm spec is still accepted there.
        Experiment.CheckModel(config with { Dataset = "cifar10", InputNorm = "bn" });
    }

    [Fact]
    public void SubsetIsSplitIntoStratifiedTrainingAndValidationParts()
    {
        var config = Config();
        using var data = ExperimentData.Load(config, new DataLocator());
        Assert.Equal(600, data.Train.Count);
        Assert.Equal(200, data.Validation.Count);
        // The parts are disjoint and together a class-proportional draw: per class, validation holds a quarter of
        // the subset's images of that class, to within the largest-remainder rounding (at most one image).
        var train = data.Train.ClassCounts();
        var validation = data.Validation.ClassCounts();
        for (int k = 0; k < 10; k++)
            Assert.InRange(validation[k] - 0.25 * (train[k] + validation[k]), -1.0, 1.0);
        using var full = new DataLocator().Load("mnist-subset", train: true);
        var pixels = new HashSet<string>();
        foreach (var set in new[] { data.Train, data.Validation })
            for (long i = 0; i < set.Count; i++)
                Assert.True(pixels.Add(Convert.ToBase64String(set.Images[i].data<byte>().ToArray())), "an image is in both parts");
    }

    [Fact]
    public void StratifiedSplitMatchesAPlainCount()
    {
        var labels = Enumerable.Range(0, 103).Select(i => (long)(i % 7 == 0 ? 0 : i % 3 + 1)).ToArray();
        using var set = new ImageDataset(zeros(103, 1, 2, 2, dtype: ScalarType.Byte), tensor(labels), 4, "toy");
        var (train, validation) = set.StratifiedSplit(0.2, seed: 11);
        Assert.Equal(21, validation.Count);   // round(103 · 0.2)
        Assert.Equal(82, train.Count);
        var counts = labels.GroupBy(l => l).OrderBy(g => g.Key).Select(g => (long)g.Count()).ToArray();
        Assert.Equal(ImageDataset.ProportionalAllocation(counts, 21), validation.ClassCounts());
        var again = set.StratifiedSplit(0.2, seed: 11).Validation;
        Assert.Equal(validation.Labels.data<long>().ToArray(), again.Labels.data<long>().ToArray());
    }

    [Fact]
    public void ValidationPointsAndProbesLeaveTheTrainingUnchanged()
    {
        var plain = Config("mn:k=2");
        var recorded = plain with { ValEvery = 3, Probe = true };
        using var data = ExperimentData.Load(plain, new DataLocator());
        using var a = new TempDir();
        using var b = new TempDir();
        RunResults first, second;
        Dictionary<string, float[]> weightsA, weightsB;
        using (var trainer = new Trainer(plain, data, () => new TinyNet(plain.Norm), a.Path))
        {
            first = trainer.Run();
            weightsA = trainer.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());
        }
        using (var trainer = new Trainer(recorded, data, () => new TinyNet(recorded.Norm), b.Path))
        {
            second = trainer.Run();
            weightsB = trainer.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());

            // The last epoch's probe is what the probe measures on the final model and the same fixed batch.
            using var g = new Generator(0);
            var images = data.EvalPipeline.Apply(data.Train.Images.narrow(0, 0, Trainer.ProbeImages), false, g);
            var labels = data.Train.Labels.narrow(0, 0, Trainer.ProbeImages);
            var direct = GradientProbe.Measure(trainer.Model, images, labels, GradientDefinition.Paper);
            var loss = GradientProbe.Measure(trainer.Model, images, labels, GradientDefinition.Loss);
            Assert.Equal(new GradientSummary(direct.Max, direct.Mean, loss.Max, loss.Mean), second.Epochs[^1].Gradient);
        }
        foreach (var (name, value) in weightsA) Assert.Equal(value, weightsB[name]);
        Assert.Equal(first.Epochs.Select(m => (m.TrainLoss, m.ValAccuracy, m.TestAccuracy)),
                     second.Epochs.Select(m => (m.TrainLoss, m.ValAccuracy, m.TestAccuracy)));

        // 600 images at batch 64: 10 steps per epoch, points after steps 3, 6, 9 and at the epoch's end.
        Assert.Null(first.Epochs[0].ValPoints);
        Assert.Null(first.Epochs[0].Gradient);
        Assert.Equal([3L, 6, 9, 10], second.Epochs[0].ValPoints!.Select(p => p.Step));
        Assert.Equal([13L, 16, 19, 20], second.Epochs[1].ValPoints!.Select(p => p.Step));
        Assert.All(second.Epochs, m => Assert.Equal(m.ValAccuracy, m.ValPoints![^1].Accuracy));
        // Training points fall on the validation points' steps when validation is measured within epochs, and on
        // every step of these 10-step epochs otherwise.
        Assert.All(second.Epochs, m => Assert.Equal(m.ValPoints!.Select(p => p.Step), m.TrainPoints!.Select(p => p.Step)));
        Assert.Equal(Enumerable.Range(1, 10).Select(s => (long)s), first.Epochs[0].TrainPoints!.Select(p => p.Step));
        Assert.All(second.Epochs, m => Assert.True(m.Gradient!.PaperMax >= m.Gradient.PaperMean && m.Gradient.PaperMean > 0));
        if (File.Exists("/proc/loadavg")) Assert.All(second.Epochs, m => Assert.NotNull(m.LoadAverage));

        var reloaded = RunResults.Load(b.Path);
        Assert.Equal(second.Epochs[1].ValPoints, reloaded.Epochs[1].ValPoints);
        Assert.Equal(second.Epochs[1].Gradient, reloaded.Epochs[1].Gradient);
        Assert.Equal(recorded, reloaded.Config);
    }

    [Fact]
    public void SubsetAndTrainLimitExcludeEachOther() =>
        Assert.Throws<ArgumentException>(() => ExperimentData.Load(Config() with { TrainLimit = 100 }, new DataLocator()));
}
