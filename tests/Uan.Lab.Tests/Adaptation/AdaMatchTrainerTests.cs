using TorchSharp;
using Uan.Lab.Adaptation;
using Uan.Lab.Data;
using Uan.Lab.Models;
using Uan.Lab.Tests.Training;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Adaptation;

/// <summary>An uninterrupted logged run of the default test configuration, made once for every kill test.</summary>
public sealed class AdaMatchStraightRun : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-adamatch-straight-" + Guid.NewGuid().ToString("N"));

    public AdaMatchStraightRun()
    {
        using var data = AdaMatchTrainerTests.Data();
        using var trainer = new AdaMatchTrainer(AdaMatchTrainerTests.Config(), data, _dir) { LogSteps = true };
        Results = trainer.Run();
        Weights = AdaMatchTrainerTests.Weights(trainer.Model);
        Checkpoint = File.ReadAllBytes(Path.Combine(_dir, AdaMatchTrainer.LastCheckpoint));
        Steps = File.ReadAllText(Path.Combine(_dir, AdaMatchStepLog.FileName));
    }

    internal AdaMatchResults Results { get; }
    internal Dictionary<string, float[]> Weights { get; }
    internal byte[] Checkpoint { get; }
    internal string Steps { get; }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }
}

[Collection(nameof(GlobalRngCollection))]
public class AdaMatchTrainerTests(AdaMatchStraightRun straightRun) : IDisposable, IClassFixture<AdaMatchStraightRun>
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-adamatch-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>
    /// Toy digits: class k is a bright bar at row band k of a dark image, with noise. Source: 1×12×12 (padded to
    /// 16×16×3); target: 3×16×16 with a coloured, brighter background (a domain shift).
    /// </summary>
    private static ImageDataset Toy(int count, bool source, int seed)
    {
        using var scope = NewDisposeScope();
        using var g = new Generator((ulong)seed);
        int size = source ? 12 : 16, channels = source ? 1 : 3;
        var labels = arange(count, ScalarType.Int64) % 10;
        var rows = arange(size, ScalarType.Float32).view(1, 1, -1, 1);
        var band = (labels.to(ScalarType.Float32) * (size / 10.0)).view(-1, 1, 1, 1);
        var bar = (rows - band).abs().lt(1.0f).to(ScalarType.Float32).expand(count, channels, size, size);
        var noise = rand([count, channels, size, size], ScalarType.Float32, generator: g) * 40;
        var background = source ? 0 : 60;
        var images = (bar * 200 + noise + background).clamp(0, 255).to(ScalarType.Byte);
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), 10, source ? "toy-source" : "toy-target");
    }

    internal static AdaMatchData Data() =>
        new(Toy(160, true, 1), Toy(40, true, 2), Toy(240, false, 3), Toy(40, false, 4));

    internal static AdaMatchConfig Config(int epochs = 2, int seed = 5) => new()
    {
        Source = "toy-source", Target = "toy-target", Model = "wrn-10-1", Norm = "bn", Epochs = epochs, StepsPerEpoch = 3,
        SourceBatch = 8, TargetMultiplier = 3, LearningRate = 0.003, HorizonSteps = 12, Seed = seed, EvalBatch = 20,
    };

    internal static Dictionary<string, float[]> Weights(nn.Module model) =>
        model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float32).data<float>().ToArray());

    /// <summary>
    /// One step's batches from fixed images: the first 8 source images (weak, strong, labels) and the first 24 target
    /// images (weak, strong), augmented from generator seed 2. In the caller's dispose scope.
    /// </summary>
    private static (Tensor SourceWeak, Tensor SourceStrong, Tensor Labels, Tensor TargetWeak, Tensor TargetStrong) Batches(AdaMatchData data)
    {
        using var g = new Generator(2);
        var idx = arange(8, ScalarType.Int64);
        var src = data.SourceBase.Apply(data.SourceTrain.Images.index_select(0, idx), false, g);
        var tgt = data.TargetTrain.Images.index_select(0, arange(24, ScalarType.Int64)).to(ScalarType.Float32);
        var labels = data.SourceTrain.Labels.index_select(0, idx);
        var sw = data.Weak.Apply(src, true, g);
        var ss = data.Strong.Apply(src, true, g);
        var tw = data.Weak.Apply(tgt, true, g);
        var ts = data.Strong.Apply(tgt, true, g);
        return (sw, ss, labels, tw, ts);
    }

    [Fact]
    public void AFewStepsLowerTheSourceLoss()
    {
        using var data = Data();
        using var trainer = new AdaMatchTrainer(Config(), data, _dir);
        using var scope = NewDisposeScope();
        manual_seed(1);
        var (sw, ss, labels, tw, ts) = Batches(data);
        var first = trainer.Step(sw, ss, labels, tw, ts, 0);
        AdaMatchStep last = first;
        for (int i = 1; i < 15; i++) last = trainer.Step(sw, ss, labels, tw, ts, i);
        Assert.True(double.IsFinite(first.Loss) && double.IsFinite(last.Loss));
        Assert.True(last.SourceLoss < 0.7 * first.SourceLoss, $"source loss {first.SourceLoss} → {last.SourceLoss}");
        Assert.Equal(0, first.Warmup);
        Assert.Equal(0.003, first.LearningRate, 12);
    }

    [Fact]
    public void StepReportsLogitScalesAndGradientNormOfItsOwnPasses()
    {
        using var data = Data();
        using var scope = NewDisposeScope();
        var (sw, ss, labels, tw, ts) = Batches(data);

        // Two trainers of one seed start from the same weights; one steps, the other redoes the step's passes by hand.
        var keras = Config() with { Variant = AdaMatchVariants.Keras };
        using var trainer = new AdaMatchTrainer(keras, data, Path.Combine(_dir, "a"));
        using var twin = new AdaMatchTrainer(keras, data, Path.Combine(_dir, "b"));
        manual_seed(7);
        var r = trainer.Step(sw, ss, labels, tw, ts, 5);

        manual_seed(7);
        var model = twin.Model;
        var source = cat([sw, ss], 0);
        model.train();
        var z1 = model.call(cat([source, tw, ts], 0));
        model.eval();
        var z2 = model.call(source);
        model.train();
        var loss = AdaMatchMath.Compute(z1, z2, labels, twin.WarmupAt(5));
        loss.Total.backward();
        double MeanAbs(Tensor t) => t.detach().to(ScalarType.Float64).data<double>().ToArray().Select(Math.Abs).Average();
        double squares = model.parameters().Where(p => p.grad is not null)
            .Sum(p => p.grad!.to(ScalarType.Float64).data<double>().ToArray().Sum(v => v * v));

        Assert.Equal(loss.Total.item<float>(), r.Loss, 4);
        Assert.Equal(MeanAbs(z1.narrow(0, 0, 16)), r.TrainLogitScale, 4);
        Assert.Equal(MeanAbs(z2), r.EvalLogitScale, 4);
        Assert.Equal(Math.Sqrt(squares), r.GradNorm, 3);
        Assert.True(r.GradNorm > 0);
    }

    /// <summary>
    /// Three official steps, each redone first by hand on the same model state (pass on the source alone in train mode,
    /// running statistics put back, pass on everything in train mode, the same λ) and evaluated in double precision
    /// from google-research/adamatch's definitions: the logged losses and mask rate, μ(t), the statistics the step
    /// leaves, the moving class distributions over the steps and the EMA of the weights.
    /// </summary>
    [Fact]
    public void OfficialStepsMatchADoublePrecisionReference()
    {
        using var data = Data();
        var config = Config();
        Assert.Equal(AdaMatchVariants.Official, config.Variant);
        using var trainer = new AdaMatchTrainer(config, data, _dir);
        using var scope = NewDisposeScope();
        var (sw, ss, labels, tw, ts) = Batches(data);
        var model = trainer.Model;
        const int bs = 8, bt = 24, c = 10;
        long[] y = labels.data<long>().ToArray();
        var tracker = new AdaMatchOfficialMathTests.TrackerReference(c);
        var state = model.state_dict();
        var averaged = trainer.WeightAverage!.Names.ToList();
        var ema = averaged.ToDictionary(n => n, n => new double[state[n].numel()]);
        double Ce(long k, double[] logits) => -Math.Log(AdaMatchOfficialMathTests.Softmax(logits)[k]);
        bool IsStatistic(string name) => name.EndsWith("running_mean") || name.EndsWith("running_var") || name.EndsWith("num_batches_tracked");

        for (long step = 4; step < 7; step++)
        {
            var before = state.ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
            manual_seed(100 + step);
            model.train();
            var kept = state.Where(kv => IsStatistic(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value.clone());
            var zb = AdaMatchOfficialMathTests.Rows(model.call(cat([sw, ss], 0)));
            using (no_grad()) foreach (var (k, v) in kept) state[k].copy_(v);
            var z = AdaMatchOfficialMathTests.Rows(model.call(cat([sw, ss, tw, ts], 0)));
            var l = AdaMatchOfficialMathTests.Rows(rand(2 * bs, c));
            var statisticsAfter = state.Where(kv => IsStatistic(kv.Key)).ToDictionary(kv => kv.Key, kv => AdaMatchOfficialMathTests.Vec(kv.Value.flatten()));
            // Weight decay: ½Σw² over the conv and dense kernels (the parameters of dimension ≥ 2), before the step.
            double decay = model.named_parameters().Where(p => p.name.EndsWith(".weight") && p.parameter.dim() >= 2)
                .Sum(p => AdaMatchOfficialMathTests.Vec(p.parameter.flatten()).Sum(v => 0.5 * v * v));
            using (no_grad()) foreach (var (k, v) in before) state[k].copy_(v);

            manual_seed(100 + step);
            var r = trainer.Step(sw, ss, labels, tw, ts, step);

            double p = step / 12.0, mu = p <= 0.5 ? 0.5 - 0.5 * Math.Cos(Math.PI * p / 0.5) : 1;
            var src = Enumerable.Range(0, 2 * bs).Select(i => Enumerable.Range(0, c).Select(j => z[i][j] + (zb[i][j] - z[i][j]) * l[i][j]).ToArray()).ToArray();
            double xe = 0.5 * (Enumerable.Range(0, bs).Average(i => Ce(y[i], src[i])) + Enumerable.Range(0, bs).Average(i => Ce(y[i], src[bs + i])));
            var ps = Enumerable.Range(0, bs).Select(i => AdaMatchOfficialMathTests.Softmax(src[i])).ToArray();
            var pt = Enumerable.Range(0, bt).Select(i => AdaMatchOfficialMathTests.Softmax(z[2 * bs + i])).ToArray();
            double threshold = 0.9 * ps.Average(row => row.Max());
            var (avgS, avgT) = tracker.Update(Enumerable.Range(0, c).Select(j => ps.Average(row => row[j])).ToArray(),
                Enumerable.Range(0, c).Select(j => pt.Average(row => row[j])).ToArray());
            var pseudo = AdaMatchOfficialMathTests.AlignReference(pt, avgS, avgT);
            var mask = pseudo.Select(row => row.Max() >= threshold ? 1.0 : 0.0).ToArray();
            var hard = pseudo.Select(row => (long)Array.IndexOf(row, row.Max())).ToArray();
            double xeu = Enumerable.Range(0, bt).Average(i => mask[i] * Ce(hard[i], z[2 * bs + bt + i]));

            Assert.Equal(mu, r.Warmup, 12);
            Assert.True(mu > 0);
            Assert.Equal(xe, r.SourceLoss, 4);
            Assert.Equal(xeu, r.TargetLoss, 4);
            Assert.Equal(mask.Average(), r.MaskRate, 6);
            Assert.Equal(xe + mu * xeu + 0.001 * decay, r.Loss, 4);
            Assert.Equal(Enumerable.Range(0, bs).Count(i => Array.IndexOf(src[i], src[i].Max()) == y[i]), r.SourceCorrect);
            foreach (var (k, v) in statisticsAfter)
                Assert.True(v.Zip(AdaMatchOfficialMathTests.Vec(state[k].flatten())).All(q => Math.Abs(q.First - q.Second) < 1e-5), $"{k} after step {step}");
            foreach (var n in averaged)
            {
                var v = AdaMatchOfficialMathTests.Vec(state[n].flatten());
                for (int k = 0; k < v.Length; k++) ema[n][k] += 0.001 * (v[k] - ema[n][k]);
            }
        }
        var source = AdaMatchOfficialMathTests.Vec(trainer.ClassDistributions!.SourceAverage);
        var target = AdaMatchOfficialMathTests.Vec(trainer.ClassDistributions!.TargetAverage);
        var (wantS, _) = (tracker.Source, 0);
        var wantT = Enumerable.Range(0, c).Select(j => tracker.Window.Average(row => row[j])).ToArray();
        for (int j = 0; j < c; j++)
        {
            Assert.Equal(wantS[j], source[j], 6);
            Assert.Equal(wantT[j], target[j], 6);
        }
        double debias = 1 / (1 - (1 - 1e-6) * Math.Pow(0.999, 3));
        foreach (var n in averaged)
        {
            var got = AdaMatchOfficialMathTests.Vec(trainer.WeightAverage!.Value(n).flatten());
            Assert.True(got.Zip(ema[n]).All(q => Math.Abs(q.First - q.Second * debias) < 1e-4 * (1 + Math.Abs(q.Second * debias))), n);
        }
    }

    /// <summary>A UAN layer's clustering term enters the loss with its weight, in every variant.</summary>
    [Theory]
    [InlineData(AdaMatchVariants.Official)]
    [InlineData(AdaMatchVariants.Keras)]
    public void TheClusterTermOfAUanLayerIsAddedWithItsWeight(string variant)
    {
        using var data = Data();
        using var scope = NewDisposeScope();
        var (sw, ss, labels, tw, ts) = Batches(data);
        double LossWith(double weight)
        {
            string spec = FormattableString.Invariant($"uan:k=2,cluster={weight}");
            using var trainer = new AdaMatchTrainer(Config() with { Variant = variant, InputNorm = spec }, data, Path.Combine(_dir, spec));
            manual_seed(9);
            return trainer.Step(sw, ss, labels, tw, ts, 4).Loss;
        }
        double plain = LossWith(0), one = LossWith(1), two = LossWith(2);
        Assert.True(Math.Abs(one - plain) > 1e-3, $"cluster=1 changes nothing: {plain} vs {one}");
        Assert.Equal(2 * (one - plain), two - plain, 2);
    }

    [Fact]
    public void StdInputNormIsSetFromTheSourceTrainingSetAndFrozen()
    {
        using var data = Data();
        using var trainer = new AdaMatchTrainer(Config() with { InputNorm = "std" }, data, _dir);
        var std = Assert.Single(trainer.Model.modules().OfType<InputStandardization>());
        // Source images as the network sees them (1×12×12 padded and tiled to 3×16×16), plain loops.
        using var g = new Generator(0);
        var x = data.SourceBase.Apply(data.SourceTrain.Images, false, g).to(ScalarType.Float64);
        var flat = x.data<double>().ToArray();
        long n = x.shape[0], ch = x.shape[1], hw = x.shape[2] * x.shape[3];
        for (int c = 0; c < ch; c++)
        {
            double sum = 0, sq = 0;
            for (long i = 0; i < n; i++) for (long k = 0; k < hw; k++) { double v = flat[(i * ch + c) * hw + k]; sum += v; sq += v * v; }
            double mean = sum / (n * hw), sd = Math.Sqrt(sq / (n * hw) - mean * mean);
            Assert.Equal(mean, AdaMatchOfficialMathTests.Vec(std.Mean)[c], 3);
            Assert.Equal(sd, AdaMatchOfficialMathTests.Vec(std.Std)[c], 3);
        }
        using var scope = NewDisposeScope();
        var (sw, ss, labels, tw, ts) = Batches(data);
        var meanBefore = AdaMatchOfficialMathTests.Vec(std.Mean);
        for (int i = 0; i < 2; i++) trainer.Step(sw, ss, labels, tw, ts, i);
        Assert.Equal(meanBefore, AdaMatchOfficialMathTests.Vec(std.Mean));
        Assert.Empty(std.parameters());
    }

    [Fact]
    public void StepLogKeepsOneRowPerStepAndDropsAnUncommittedEpochOnOpen()
    {
        var runDir = Path.Combine(_dir, "log");
        string path = Path.Combine(runDir, AdaMatchStepLog.FileName);
        using (var data = Data())
        using (var trainer = new AdaMatchTrainer(Config(epochs: 1), data, runDir) { LogSteps = true })
            trainer.Run();
        var rows = AdaMatchStepLog.Load(path);
        Assert.Equal(new long[] { 0, 1, 2 }, rows.Select(x => x.Step));
        Assert.All(rows, x => Assert.Equal(1, x.Epoch));
        Assert.All(rows, x => Assert.True(x.Result.GradNorm > 0 && double.IsFinite(x.Result.EvalLogitScale)));
        string committed = File.ReadAllText(path);

        // What a kill leaves: rows of an epoch that was never committed, the last one cut short.
        var line = committed.Split('\n')[1];
        File.AppendAllText(path, "2" + line[1..].Replace(",0,", ",3,") + "\n" + "2" + line[1..10]);
        var log = AdaMatchStepLog.Open(runDir, committedEpochs: 1);
        Assert.Equal(rows, log.Rows);
        Assert.Equal(committed, File.ReadAllText(path));

        log.Add(2, 3, rows[0].Result with { Loss = 123 });
        log.Flush();
        var again = AdaMatchStepLog.Load(path);
        Assert.Equal(new long[] { 0, 1, 2, 3 }, again.Select(x => x.Step));
        Assert.Equal(123, again[3].Result.Loss);
        Assert.Empty(AdaMatchStepLog.Open(runDir, committedEpochs: 0).Rows);
    }

    [Fact]
    public void SameSeedSameRunAndResumeContinuesExactly()
    {
        AdaMatchResults straight;
        Dictionary<string, float[]> straightWeights;
        using (var data = Data())
        using (var trainer = new AdaMatchTrainer(Config(), data, Path.Combine(_dir, "a")))
        {
            straight = trainer.Run();
            straightWeights = Weights(trainer.Model);
        }
        Assert.Equal("completed", straight.Status);
        Assert.Equal(2, straight.Epochs.Count);
        Assert.Equal(3, straight.StepsPerEpoch);
        Assert.True(File.Exists(Path.Combine(_dir, "a", "results.json")));
        Assert.True(File.Exists(Path.Combine(_dir, "a", AdaMatchTrainer.LastCheckpoint)));
        var loaded = AdaMatchResults.Load(Path.Combine(_dir, "a"));
        Assert.Equal(straight.Epochs[1].TargetTest.Accuracy, loaded.Epochs[1].TargetTest.Accuracy);
        Assert.Equal(40, loaded.Epochs[1].SourceTest.Count);
        Assert.Equal(40, loaded.Epochs[1].TargetTest.Count);

        using (var data = Data())
        using (var again = new AdaMatchTrainer(Config(), data, Path.Combine(_dir, "b")))
        {
            var repeat = again.Run();
            Assert.Equal(straight.Epochs.Select(e => e.TrainLoss), repeat.Epochs.Select(e => e.TrainLoss));
            Assert.Equal(straightWeights, Weights(again.Model));
        }

        using (var data = Data())
        using (var firstHalf = new AdaMatchTrainer(Config(epochs: 1), data, Path.Combine(_dir, "c")))
            Assert.Equal("completed", firstHalf.Run().Status);
        using (var data = Data())
        using (var resumed = new AdaMatchTrainer(Config(), data, Path.Combine(_dir, "c")))
        {
            var r = resumed.Run(resume: true);
            Assert.Equal(2, r.Epochs.Count);
            Assert.Equal(straight.Epochs[1].TrainLoss, r.Epochs[1].TrainLoss, 5);
            var w = Weights(resumed.Model);
            foreach (var (name, values) in straightWeights)
                Assert.True(values.Zip(w[name]).All(p => Math.Abs(p.First - p.Second) < 1e-5), $"{name} differs after resume");
        }
    }

    private static AdaMatchEpoch WithoutTimes(AdaMatchEpoch m) => m with { TrainSeconds = 0, EvalSeconds = 0, SecondsPerStep = 0, LoadAverage = null };

    /// <summary>
    /// Killed at <paramref name="point"/> of the last epoch's commit, the folder holds <paramref name="committed"/>
    /// epochs in results.json and last.ckpt holds epoch <paramref name="last"/>; steps.csv may hold rows of the killed
    /// epoch. Resumed, the run ends as the uninterrupted one: weights, metrics, checkpoint bytes and step log.
    /// </summary>
    [Theory]
    [InlineData("epoch-end", 1, 1)]
    [InlineData("staged:steps.csv", 1, 1)]
    [InlineData("staged:last.ckpt", 1, 1)]
    [InlineData("committed", 2, 1)]
    [InlineData("installed:last.ckpt", 2, 2)]
    public void AKillAtAnyPointOfTheCommitResumesToTheSameRun(string point, int committed, int last)
    {
        string b = Path.Combine(_dir, "b");
        var straight = straightRun.Results;
        var straightWeights = straightRun.Weights;
        using (var data = Data())
        using (var trainer = new AdaMatchTrainer(Config(), data, b) { LogSteps = true })
        {
            trainer.CommitFault = (p, epoch) => { if (p == point && epoch == 2) throw new SimulatedKill(); };
            Assert.Throws<SimulatedKill>(() => trainer.Run());
        }
        Assert.Equal(committed, AdaMatchResults.Load(b).Epochs.Count);
        Assert.Equal(last, Kill.EpochField(Path.Combine(b, AdaMatchTrainer.LastCheckpoint)));
        var logged = AdaMatchStepLog.Load(Path.Combine(b, AdaMatchStepLog.FileName));
        Assert.Equal(point == "epoch-end" ? 3 : 6, logged.Count);
        Kill.PlantTemporaries(b, "results.json", AdaMatchTrainer.LastCheckpoint, AdaMatchTrainer.LastCheckpoint + RunFolder.PendingSuffix);

        using (var data = Data())
        using (var trainer = new AdaMatchTrainer(Config(), data, b) { LogSteps = true })
        {
            var resumed = trainer.Run(resume: true);
            Assert.Equal("completed", resumed.Status);
            Assert.Equal(straight.Epochs.Select(WithoutTimes), resumed.Epochs.Select(WithoutTimes));
            // The load at each epoch's end is recorded where the machine reports it (the context of the wall times).
            if (File.Exists("/proc/loadavg")) Assert.All(resumed.Epochs, m => Assert.NotNull(m.LoadAverage));
            Assert.Equal(straightWeights, Weights(trainer.Model));
        }
        Assert.Equal(straightRun.Checkpoint, File.ReadAllBytes(Path.Combine(b, AdaMatchTrainer.LastCheckpoint)));
        Assert.Equal(straightRun.Steps, File.ReadAllText(Path.Combine(b, AdaMatchStepLog.FileName)));
        Assert.Equal(6, AdaMatchStepLog.Load(Path.Combine(b, AdaMatchStepLog.FileName)).Count);
        Assert.Empty(Kill.Leftovers(b));
    }

    [Fact]
    public void ACheckpointWhoseEpochDisagreesWithTheResultsIsRefused()
    {
        using (var data = Data())
        using (var trainer = new AdaMatchTrainer(Config(epochs: 1), data, _dir)) trainer.Run();
        string path = Path.Combine(_dir, AdaMatchTrainer.LastCheckpoint);
        Kill.EditEpochField(path, 9);
        using var again = Data();
        using var resumed = new AdaMatchTrainer(Config(), again, _dir);
        var e = Assert.Throws<InvalidDataException>(() => resumed.Run(resume: true));
        Assert.StartsWith($"{path}: holds epoch 9, but {Path.Combine(_dir, "results.json")} records 1 finished epochs", e.Message);
    }

    [Fact]
    public void AFolderAnotherWriterHoldsIsRefusedUntouched()
    {
        using var data = Data();
        using var trainer = new AdaMatchTrainer(Config(epochs: 1), data, _dir) { LogSteps = true };
        using (RunFolder.Lock(_dir))
        {
            var e = Assert.Throws<RunFolderLockedException>(() => trainer.Run());
            Assert.Contains($"pid {Environment.ProcessId}", e.Message);
        }
        Assert.False(File.Exists(Path.Combine(_dir, "results.json")));
        Assert.False(File.Exists(Path.Combine(_dir, AdaMatchStepLog.FileName)));
    }

    [Fact]
    public void ProbeHookGetsFixedBatchesEveryEpoch()
    {
        using var data = Data();
        using var trainer = new AdaMatchTrainer(Config(), data, _dir);
        var seen = new List<(int Epoch, float[] Source, long[] SourceShape, long[] TargetShape)>();
        trainer.EpochProbe = (epoch, model, source, target) =>
            seen.Add((epoch, source.data<float>().ToArray(), source.shape, target.shape));
        trainer.Run();
        Assert.Equal(new[] { 1, 2 }, seen.Select(s => s.Epoch));
        Assert.Equal(new long[] { 64, 3, 16, 16 }, seen[0].SourceShape);
        Assert.Equal(new long[] { 192, 3, 16, 16 }, seen[0].TargetShape);
        Assert.Equal(seen[0].Source, seen[1].Source);
    }

    [Fact]
    public void NonFiniteLossStopsWithAClearMessage()
    {
        using var data = Data();
        using var trainer = new AdaMatchTrainer(Config(), data, _dir, () => new Poisoned()) { LogSteps = true };
        var r = trainer.Run();
        Assert.Equal("diverged", r.Status);
        Assert.Contains("non-finite loss", r.Message);
        Assert.Contains("epoch 1, step 1", r.Message);
        Assert.Empty(r.Epochs);
        // The step that diverged is in the log, for diagnosis, though its epoch was never committed.
        var row = Assert.Single(AdaMatchStepLog.Load(Path.Combine(_dir, AdaMatchStepLog.FileName)));
        Assert.Equal((1, 0L), (row.Epoch, row.Step));
        Assert.True(double.IsNaN(row.Result.Loss));
    }

    [Fact]
    public void ConfigValidationNamesTheField()
    {
        Assert.Contains("wrn", Assert.Throws<ArgumentException>(() => (Config() with { Model = "densenet40" }).Validate()).Message);
        Assert.Contains("source batch", Assert.Throws<ArgumentException>(() => (Config() with { SourceBatch = 0 }).Validate()).Message);
        using var data = Data();
        Assert.Throws<ArgumentException>(() => new AdaMatchTrainer(Config() with { SourceBatch = 1000 }, data, _dir));
    }

    private sealed class Poisoned : nn.Module<Tensor, Tensor>
    {
        private readonly WideResNet inner = new(10, 1, norm: "bn");

        public Poisoned() : base("poisoned") => RegisterComponents();

        public override Tensor forward(Tensor x) => inner.call(x) * double.NaN;
    }
}
