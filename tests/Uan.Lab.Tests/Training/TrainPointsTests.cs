using System.Text.Json.Nodes;
using Uan.Lab.Data;
using Uan.Lab.Tests.Data;
using Uan.Lab.Training;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Training;

/// <summary>
/// The per-step training record (<see cref="EpochMetrics.TrainPoints"/>): window means of the step losses and hits,
/// checked against a plain loop over the per-step values of the same training, without any effect on the training.
/// </summary>
[Collection(nameof(GlobalRngCollection))]
public class TrainPointsTests
{
    // 600 training images at batch 64: 10 steps per epoch, nine of 64 images and a last one of 24.
    private static RunConfig Config() => new()
    {
        Dataset = "mnist-subset", Model = "tiny", Norm = "mn:k=2", LearningRate = 3e-3, Epochs = 2, BatchSize = 64,
        Seed = 5, Subset = 800, ValidationFraction = 0.25, TestLimit = 200,
    };

    private static (RunResults Results, Dictionary<string, float[]> Weights) Train(RunConfig config, ExperimentData data,
        string dir, long? window)
    {
        using var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir) { TrainPointWindowOverride = window };
        var results = trainer.Run();
        return (results, DurabilityTests.Weights(trainer.Model));
    }

    [Fact]
    public void WindowMeansMatchAPlainLoopOverTheStepLossesAndLeaveTheTrainingUnchanged()
    {
        var config = Config();
        using var data = ExperimentData.Load(config, new DataLocator());
        using var a = new TempDir();
        using var b = new TempDir();
        var (perStep, weightsA) = Train(config, data, a.Path, window: 1);
        var (windowed, weightsB) = Train(config, data, b.Path, window: 4);

        foreach (var (name, value) in weightsA) Assert.Equal(value, weightsB[name]);
        Assert.Equal(perStep.Epochs.Select(m => (m.TrainLoss, m.TrainAccuracy, m.ValLoss, m.TestAccuracy)),
                     windowed.Epochs.Select(m => (m.TrainLoss, m.TrainAccuracy, m.ValLoss, m.TestAccuracy)));

        const long steps = 10;
        long[] sizes = [.. Enumerable.Repeat(64L, 9), 24];
        Assert.Equal(600, data.Train.Count);
        for (int e = 0; e < 2; e++)
        {
            var single = perStep.Epochs[e].TrainPoints!;
            Assert.Equal(Enumerable.Range(1, 10).Select(s => e * steps + s), single.Select(p => p.Step));
            // Windows of 4 steps within the epoch: steps 1–4, 5–8 and the short last one, 9–10.
            var expected = new List<TrainPoint>();
            foreach (var (first, last) in new[] { (0, 3), (4, 7), (8, 9) })
            {
                double lossSum = 0;
                long hits = 0, count = 0;
                for (int i = first; i <= last; i++)
                {
                    lossSum += single[i].Loss * sizes[i];
                    hits += (long)Math.Round(single[i].Accuracy * sizes[i]);
                    count += sizes[i];
                }
                expected.Add(new TrainPoint(e * steps + last + 1, lossSum / count, (double)hits / count));
            }
            var actual = windowed.Epochs[e].TrainPoints!;
            Assert.Equal(expected.Select(p => p.Step), actual.Select(p => p.Step));
            for (int k = 0; k < expected.Count; k++)
            {
                Assert.Equal(expected[k].Loss, actual[k].Loss, 1e-12);
                Assert.Equal(expected[k].Accuracy, actual[k].Accuracy);
            }
            // The sample-weighted mean of the windows is the epoch's training loss and accuracy.
            long[] windowSizes = [256, 256, 88];
            Assert.Equal(windowed.Epochs[e].TrainLoss, actual.Select((p, k) => p.Loss * windowSizes[k]).Sum() / 600, 1e-12);
            Assert.Equal(windowed.Epochs[e].TrainAccuracy, actual.Select((p, k) => p.Accuracy * windowSizes[k]).Sum() / 600, 1e-12);
        }

        // JSON round trip, to the last bit.
        var reloaded = RunResults.Load(b.Path);
        for (int e = 0; e < 2; e++) Assert.Equal(windowed.Epochs[e].TrainPoints, reloaded.Epochs[e].TrainPoints);
    }

    [Fact]
    public void TheWindowFollowsValEveryOrAimsAtTwentyFivePointsPerEpoch()
    {
        Assert.Equal(3, Trainer.TrainPointWindow(new RunConfig { ValEvery = 3 }, 1000));
        Assert.Equal(1, Trainer.TrainPointWindow(new RunConfig(), 10));
        Assert.Equal(1, Trainer.TrainPointWindow(new RunConfig(), 49));
        Assert.Equal(2, Trainer.TrainPointWindow(new RunConfig(), 50));
        Assert.Equal(40, Trainer.TrainPointWindow(new RunConfig(), 1000));   // 25 points
        Assert.Equal(7, Trainer.TrainPointWindow(new RunConfig(), 188));     // 60 000 images at 320: 27 points
    }

    [Fact]
    public void ResultsWrittenBeforeTrainPointsStillLoad()
    {
        using var dir = new TempDir();
        new RunResults
        {
            Epochs = [new EpochMetrics { Epoch = 1, TrainLoss = 1.5, TrainPoints = [new TrainPoint(5, 1.5, 0.5)] }],
        }.Save(dir.Path);
        var file = dir.File(RunRecord.FileName);
        var json = JsonNode.Parse(File.ReadAllText(file))!;
        Assert.NotNull(json["epochs"]![0]!["trainPoints"]);
        json["epochs"]![0]!.AsObject().Remove("trainPoints");
        File.WriteAllText(file, json.ToJsonString());

        var old = RunResults.Load(dir.Path);
        Assert.Null(old.Epochs[0].TrainPoints);
        Assert.Equal(1.5, old.Epochs[0].TrainLoss);
    }
}
