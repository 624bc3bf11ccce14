using TorchSharp;
using TorchSharp.Modules;
using Uan.Lab.Data;
using Uan.Lab.Tests.Data;
using Uan.Lab.Training;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Training;

/// <summary>A small CNN for trainer tests: conv → norm under test → ReLU → pool → dropout → linear.</summary>
internal sealed class TinyNet : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d conv;
    private readonly nn.Module<Tensor, Tensor> norm;
    private readonly Dropout drop;
    private readonly Linear head;

    /// <summary>When set, the forward returns NaN logits (to test divergence handling).</summary>
    public bool Poison { get; set; }

    public TinyNet(string normSpec, int classes = 10) : base("tiny")
    {
        // 16 output channels: oneDNN's CPU convolution backward sporadically returns NaN input gradients for
        // k×k kernels with few output channels (see Models/OneDnnSafe.cs); 16 is not affected.
        conv = nn.Conv2d(1, 16, 3, padding: 1);
        norm = Norms.Create(normSpec, 16);
        drop = nn.Dropout(0.1);
        head = nn.Linear(16 * 7 * 7, classes);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var h = nn.functional.avg_pool2d(nn.functional.relu(norm.forward(conv.forward(x))), 4);
        var logits = head.forward(drop.forward(h.flatten(1)));
        return Poison ? logits * double.NaN : logits;
    }
}

/// <summary>
/// Runs alone: the trainer seeds torch's global generator (weights, dropout, k-means++), and a test class running in
/// parallel that draws from it in between would change the run, making the exact-resume comparison flaky.
/// </summary>
[CollectionDefinition(nameof(GlobalRngCollection), DisableParallelization = true)]
public sealed class GlobalRngCollection;

[Collection(nameof(GlobalRngCollection))]
public class TrainerTests
{
    private static RunConfig Config(string norm = "bn", int epochs = 3, int seed = 7) => new()
    {
        Dataset = "mnist-subset", Model = "tiny", Norm = norm, LearningRate = 3e-3, Epochs = epochs, BatchSize = 64,
        Seed = seed, TrainLimit = 640, TestLimit = 300, ValidationFraction = 0.1,
    };

    private static ExperimentData Data(RunConfig config) => ExperimentData.Load(config, new DataLocator());

    private static Dictionary<string, float[]> Weights(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());

    [Fact]
    public void TrainingLowersTheLossAndWritesResultsAndCheckpoints()
    {
        using var dir = new TempDir();
        var config = Config();
        using var data = Data(config);
        using var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir.Path);
        var results = trainer.Run();

        Assert.Equal("completed", results.Status);
        Assert.Equal(3, results.Epochs.Count);
        Assert.True(results.Epochs[2].TrainLoss < results.Epochs[0].TrainLoss * 0.8,
            $"train loss {results.Epochs[0].TrainLoss} → {results.Epochs[2].TrainLoss}");
        Assert.True(results.Epochs[2].TestAccuracy > 0.5, $"test accuracy {results.Epochs[2].TestAccuracy}");
        Assert.All(results.Epochs, m => Assert.InRange(m.TestTop5, m.TestAccuracy, 1.0));
        Assert.True(File.Exists(Path.Combine(dir.Path, Trainer.LastCheckpoint)));
        Assert.True(File.Exists(Path.Combine(dir.Path, Trainer.BestCheckpoint)));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));

        var reloaded = RunResults.Load(dir.Path);
        Assert.Equal(results.Epochs.Select(m => m.TestAccuracy), reloaded.Epochs.Select(m => m.TestAccuracy));
        Assert.Equal(config, reloaded.Config);
        Assert.Equal(640, data.Train.Count);   // stratified from the first 90% of the training file
        Assert.Equal(1000, data.Validation.Count);
        Assert.Equal(300, data.Test.Count);
    }

    [Fact]
    public void CheckpointRoundTripGivesIdenticalOutputs()
    {
        using var dir = new TempDir();
        var config = Config(norm: "uan:k=3", epochs: 1);
        using var data = Data(config);
        using var trainer = new Trainer(config, data, () => new TinyNet(config.Norm), dir.Path);
        trainer.Run();

        using var other = new Trainer(config with { Seed = 99 }, data, () => new TinyNet(config.Norm), Path.Combine(dir.Path, "other"));
        var x = torch.randn(5, 1, 28, 28, generator: new Generator(3));
        trainer.Model.eval();
        other.Model.eval();
        Assert.False(trainer.Model.forward(x).allclose(other.Model.forward(x)));
        Assert.Equal(1, other.LoadWeights(Path.Combine(dir.Path, Trainer.LastCheckpoint)));
        Assert.Equal(trainer.Model.forward(x).data<float>().ToArray(), other.Model.forward(x).data<float>().ToArray());
    }

    [Theory]
    [InlineData("mn:k=2")]
    [InlineData("uan:k=3,mode=compat")]
    public void KilledAndResumedRunEndsWithTheSameWeights(string norm)
    {
        var config = Config(norm: norm, epochs: 3);
        using var data = Data(config);
        using var a = new TempDir();
        using var b = new TempDir();

        Dictionary<string, float[]> straight;
        RunResults straightResults;
        using (var trainer = new Trainer(config, data, () => new TinyNet(norm), a.Path))
        {
            straightResults = trainer.Run();
            straight = Weights(trainer.Model);
        }

        using (var cts = new CancellationTokenSource())
        using (var trainer = new Trainer(config, data, () => new TinyNet(norm), b.Path))
        {
            trainer.EpochFinished += m => { if (m.Epoch == 2) cts.Cancel(); };
            var stopped = trainer.Run(cancel: cts.Token);
            Assert.Equal("stopped", stopped.Status);
            Assert.Equal(2, stopped.Epochs.Count);
        }
        // A fresh process: a different seed's weights are overwritten by the checkpoint.
        using (var trainer = new Trainer(config, data, () => new TinyNet(norm), b.Path))
        {
            var resumed = trainer.Run(resume: true);
            Assert.Equal("completed", resumed.Status);
            Assert.Equal(straightResults.Epochs.Select(m => m.TestLoss), resumed.Epochs.Select(m => m.TestLoss));
            // The training points of the epochs before the stop come back from results.json, the last epoch's are
            // recorded after the resume: both as in the uninterrupted run.
            for (int e = 0; e < 3; e++)
                Assert.Equal(straightResults.Epochs[e].TrainPoints!, resumed.Epochs[e].TrainPoints!);
            Assert.Equal(10, resumed.Epochs[2].TrainPoints!.Count);   // 640 images at batch 64: a point per step
            var weights = Weights(trainer.Model);
            Assert.Equal(straight.Keys.Order(), weights.Keys.Order());
            foreach (var (name, value) in straight) Assert.Equal(value, weights[name]);
        }
    }

    [Fact]
    public void NonFiniteLossStopsTheRunAndKeepsTheLastGoodCheckpoint()
    {
        using var dir = new TempDir();
        var config = Config(epochs: 3);
        using var data = Data(config);
        TinyNet? net = null;
        using var trainer = new Trainer(config, data, () => net = new TinyNet(config.Norm), dir.Path);
        trainer.EpochFinished += m => { if (m.Epoch == 1) net!.Poison = true; };
        var results = trainer.Run();

        Assert.Equal("diverged", results.Status);
        Assert.Contains("non-finite loss", results.Message);
        Assert.Contains("epoch 2, step 1", results.Message);
        Assert.Single(results.Epochs);
        Assert.Equal("diverged", RunResults.Load(dir.Path).Status);
        net!.Poison = false;
        Assert.Equal(1, trainer.LoadWeights(Path.Combine(dir.Path, Trainer.LastCheckpoint)));
    }

    [Fact]
    public void ResumeRefusesADifferentConfiguration()
    {
        using var dir = new TempDir();
        var config = Config(epochs: 1);
        using var data = Data(config);
        using (var trainer = new Trainer(config, data, () => new TinyNet("bn"), dir.Path)) trainer.Run();
        using var changed = new Trainer(config with { LearningRate = 1e-2 }, data, () => new TinyNet("bn"), dir.Path);
        var e = Assert.Throws<ArgumentException>(() => changed.Run(resume: true));
        Assert.Contains("configuration differs", e.Message);
        using var fresh = new Trainer(config, data, () => new TinyNet("bn"), dir.Path);
        Assert.Throws<IOException>(() => fresh.Run(resume: false));
    }

    [Fact]
    public void AdamWDecayIsNotScaledByTheLearningRate()
    {
        // With a zero gradient Adam's update is zero, so one step shows the decay alone: tfa's w ← w − 1e-4·w.
        foreach (double lr in new[] { 1e-3, 5e-3 })
        {
            var p = new Parameter(torch.full(4, 2.0, ScalarType.Float64));
            using var opt = Trainer.CreateOptimizer(new RunConfig { LearningRate = lr, WeightDecay = 1e-4 }, [p]);
            p.grad = torch.zeros_like(p);
            opt.step();
            Assert.Equal(2.0 * (1 - 1e-4), p.data<double>()[0], 12);
        }
    }

    [Fact]
    public void SgdScheduleDividesByTenAtHalfAndThreeQuarters()
    {
        var config = new RunConfig { Optimizer = "sgd", LearningRate = 0.1, Epochs = 200 };
        Assert.Equal(0.1, Trainer.LearningRateAt(config, 0));
        Assert.Equal(0.1, Trainer.LearningRateAt(config, 99));
        Assert.Equal(0.01, Trainer.LearningRateAt(config, 100), 12);
        Assert.Equal(0.01, Trainer.LearningRateAt(config, 149), 12);
        Assert.Equal(0.001, Trainer.LearningRateAt(config, 150), 12);
        Assert.Equal(1e-3, Trainer.LearningRateAt(new RunConfig { LearningRate = 1e-3, Epochs = 10 }, 9));
    }
}

public class ClassificationMetricsTests
{
    [Fact]
    public void MatchesAHandComputedConfusionMatrix()
    {
        // labels 0,0,1,1,2 ; predictions 0,1,1,1,0
        var labels = torch.tensor(new long[] { 0, 0, 1, 1, 2 });
        var logits = torch.zeros(5, 6);
        long[] pred = [0, 1, 1, 1, 0];
        for (int i = 0; i < 5; i++) logits[i, pred[i]] = torch.tensor(1f);
        logits[4, 2] = torch.tensor(0.5f);    // class 2 is the second choice of the last sample: a top-5 hit anyway
        var m = new ClassificationMetrics(6);
        m.Add(logits, labels, meanLoss: 2.0);

        Assert.Equal(0.6, m.Accuracy, 12);
        Assert.Equal(2.0, m.Loss, 12);
        Assert.Equal(1.0, m.Top5, 12);
        // Present classes 0,1,2. Precision: 1/2, 2/3, 0. Recall: 1/2, 1, 0. F1: 1/2, 4/5, 0.
        var (p, r, f) = m.Macro();
        Assert.Equal((0.5 + 2.0 / 3) / 3, p, 12);
        Assert.Equal(1.5 / 3, r, 12);
        Assert.Equal(1.3 / 3, f, 12);
    }
}
