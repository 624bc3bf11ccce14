using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Training;

/// <summary>Where a running training is: phase ("train", "val", "test"), epoch (1-based), step within the phase.</summary>
public readonly record struct TrainProgress(string Phase, int Epoch, int Epochs, long Step, long Steps, double Loss,
    double Accuracy, double ImagesPerSecond);

/// <summary>
/// One training run, written as one readable loop: seed, build the model, then per epoch train, evaluate on the
/// validation and test splits and commit the epoch through <see cref="RunFolder"/>: the last checkpoint and (on a new
/// best validation accuracy) the best checkpoint are staged, results.json (the commit record) is replaced, then the
/// staged checkpoints are renamed into place. The run folder is locked for the whole run.
/// <para>
/// Resume first finishes or undoes an interrupted commit, then requires last.ckpt to hold the last epoch of
/// results.json and best.ckpt the epoch results.json marks as best; any other state is refused with an
/// <see cref="InvalidDataException"/> naming the file.
/// </para>
/// <para>
/// Reproducibility: the weights are drawn after <c>manual_seed(seed)</c>; the data order and augmentation of epoch
/// e depend only on (seed, e); the global generator (dropout, Mixture Normalization's k-means++ seeding) is reseeded
/// from (seed, e) at the start of every epoch. A run resumed from its last checkpoint therefore ends with the same
/// weights as one that was never interrupted.
/// </para>
/// <para>
/// Optimizers (spec §6): <c>adamw</c> is tfa's AdamW, whose decay w ← w − wd·w is not scaled by the learning rate;
/// torch's AdamW scales it, so it is given wd/lr (Adam ε = 1e-7 as Keras). <c>sgd</c> is Nesterov SGD (momentum 0.9)
/// with Keras' decoupled decay w ← w·(1 − lr·wd) applied before each step and the learning rate divided by 10 at 50%
/// and again at 75% of the epochs (the DenseNet schedule, 0.1 → 0.01 → 0.001 over 200 epochs).
/// </para>
/// </summary>
public sealed class Trainer : IDisposable
{
    /// <summary>File name of the last-epoch checkpoint inside the run folder.</summary>
    public const string LastCheckpoint = "last.ckpt";
    /// <summary>File name of the best-validation checkpoint inside the run folder.</summary>
    public const string BestCheckpoint = "best.ckpt";

    private const string Magic = "UAN-CHECKPOINT-1";
    private readonly ExperimentData _data;
    private readonly OptimizerHelper _optimizer;
    private readonly List<UnsupervisedAdaptiveNorm> _uanLayers;
    private readonly Parameter[] _parameters;
    private readonly Diagnostics.SnapshotRecorder? _snapshots;

    /// <summary>Seeds torch, builds the model with <paramref name="createModel"/> and the optimizer.</summary>
    public Trainer(RunConfig config, ExperimentData data, Func<nn.Module<Tensor, Tensor>> createModel, string runDir)
    {
        Config = config ?? throw new ArgumentNullException(nameof(config));
        _data = data ?? throw new ArgumentNullException(nameof(data));
        RunDir = runDir;
        if (config.Epochs <= 0) throw new ArgumentException($"epochs must be positive, got {config.Epochs}");
        if (config.BatchSize <= 0) throw new ArgumentException($"batch size must be positive, got {config.BatchSize}");
        if (!(config.LearningRate > 0)) throw new ArgumentException($"learning rate must be positive, got {config.LearningRate}");
        if (config.Threads is int threads) torch.set_num_threads(threads);
        Device = Devices.Resolve(config.Device);

        torch.manual_seed(config.Seed);
        Model = createModel();
        Model.to(Device);
        _parameters = Model.parameters().Where(p => p.requires_grad).ToArray();
        _uanLayers = Model.modules().OfType<UnsupervisedAdaptiveNorm>().ToList();
        _optimizer = CreateOptimizer(config, _parameters);
        if (config.Snapshots) _snapshots = new Diagnostics.SnapshotRecorder(config, data, runDir);
    }

    /// <summary>The optimizer of <see cref="RunConfig.Optimizer"/> over <paramref name="parameters"/> (see the class remarks).</summary>
    public static OptimizerHelper CreateOptimizer(RunConfig config, IEnumerable<Parameter> parameters) => config.Optimizer switch
    {
        "adamw" => optim.AdamW(parameters, config.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-7,
            weight_decay: config.WeightDecay / config.LearningRate),
        "sgd" => optim.SGD(parameters, config.LearningRate, momentum: 0.9, nesterov: true),
        _ => throw new ArgumentException($"unknown optimizer '{config.Optimizer}'; accepted: adamw, sgd"),
    };

    /// <summary>The run's configuration.</summary>
    public RunConfig Config { get; }
    /// <summary>The model being trained.</summary>
    public nn.Module<Tensor, Tensor> Model { get; }
    /// <summary>The run folder (results.json, last.ckpt, best.ckpt).</summary>
    public string RunDir { get; }
    /// <summary>Device the model runs on.</summary>
    public Device Device { get; }

    /// <summary>Points per epoch <see cref="TrainPointWindow"/> aims at when validation is not measured within epochs.</summary>
    public const int TrainPointsPerEpoch = 25;

    /// <summary>
    /// Steps per window of <see cref="EpochMetrics.TrainPoints"/>: <see cref="RunConfig.ValEvery"/> when set, so the
    /// training points fall on the same steps as the validation points; otherwise max(1, ⌊steps per epoch / 25⌋),
    /// which gives 25 to 49 points per epoch of 25 steps or more (every step of a shorter one). Windows never span
    /// two epochs, so an epoch's points depend on that epoch alone and a resumed run records the same points.
    /// </summary>
    public static long TrainPointWindow(RunConfig config, long stepsPerEpoch) =>
        config.ValEvery is int every ? every : Math.Max(1, stepsPerEpoch / TrainPointsPerEpoch);

    /// <summary>Tests: overrides <see cref="TrainPointWindow"/> (the training itself does not depend on it).</summary>
    internal long? TrainPointWindowOverride { get; set; }

    /// <summary>Called after every finished epoch with its metrics (for logging).</summary>
    public event Action<EpochMetrics>? EpochFinished;

    /// <summary>Learning rate of epoch <paramref name="epoch"/> (0-based) under the configured schedule.</summary>
    public static double LearningRateAt(RunConfig config, int epoch)
    {
        if (config.Optimizer != "sgd") return config.LearningRate;
        double fraction = (double)epoch / config.Epochs;
        return fraction < 0.5 ? config.LearningRate : fraction < 0.75 ? config.LearningRate / 10 : config.LearningRate / 100;
    }

    /// <summary>
    /// Trains until <see cref="RunConfig.Epochs"/> epochs are done, the loss becomes non-finite (status "diverged"),
    /// or <paramref name="cancel"/> fires (status "stopped"; the last checkpoint is that of the last finished epoch,
    /// and <c>resume</c> continues from there). With <paramref name="resume"/> and a checkpoint in the run folder,
    /// continues that run; the configuration must match except for the number of epochs, device and threads.
    /// </summary>
    public RunResults Run(bool resume = false, IProgress<TrainProgress>? progress = null, CancellationToken cancel = default)
    {
        using var folder = RunFolder.Lock(RunDir);
        folder.Fault = CommitFault;
        folder.RemoveStaleTemporaries();
        string lastPath = folder.PathOf(LastCheckpoint);
        bool holdsRun = File.Exists(lastPath) || File.Exists(lastPath + RunFolder.PendingSuffix);
        RunResults results;
        int start = 0;
        double bestVal = double.NegativeInfinity;
        var previous = resume && File.Exists(folder.PathOf(RunRecord.FileName)) ? RunResults.Load(RunDir) : null;
        // Without a commit record, a staged checkpoint is the first epoch's, never committed: a fresh start.
        if (resume && (File.Exists(lastPath) || previous is not null && (holdsRun || previous.Epochs.Count > 0)))
        {
            if (previous is null)
                throw new InvalidDataException($"{folder.PathOf(RunRecord.FileName)}: missing, but {LastCheckpoint} is there");
            CheckResumable(previous.Config);
            Recover(folder, previous);
        }
        else if (!resume && holdsRun)
            throw new IOException($"{RunDir} already holds a run ({LastCheckpoint}); resume it or choose another folder");
        if (resume && previous?.Epochs.Count > 0)
        {
            (start, bestVal) = LoadCheckpoint(lastPath, withOptimizer: true);
            results = previous with { Config = Config, Epochs = previous.Epochs.ToList() };
        }
        else
        {
            folder.RemovePending();
            results = new RunResults
            {
                Config = Config,
                Environment = EnvironmentInfo.Capture(),
                Started = DateTimeOffset.Now,
                ParameterCount = _parameters.Sum(p => p.numel()),
            };
        }
        results.Status = "running";
        results.Message = null;

        var loader = new BatchLoader(_data.Train, Config.BatchSize, _data.TrainPipeline, shuffle: true, training: true, seed: Config.Seed);
        for (int epoch = start; epoch < Config.Epochs; epoch++)
        {
            double lr = LearningRateAt(Config, epoch);
            foreach (var group in _optimizer.ParamGroups) group.LearningRate = lr;
            torch.manual_seed(BatchLoader.DeriveSeed(Config.Seed, epoch, 2));

            var trainClock = Stopwatch.StartNew();
            var train = new ClassificationMetrics(_data.NumClasses);
            Model.train();
            long step = 0, steps = loader.BatchesPerEpoch;
            var valPoints = Config.ValEvery is null ? null : new List<ValPoint>();
            // Windowed means of the training loss and accuracy: read from numbers the step computes anyway.
            long window = TrainPointWindowOverride ?? TrainPointWindow(Config, steps);
            var trainPoints = new List<TrainPoint>();
            double windowLoss = 0;
            long windowCount = 0, windowHitsBefore = 0;
            foreach (var batch in loader.Epoch(epoch))
            {
                using (batch)
                using (var scope = NewDisposeScope())
                {
                    if (cancel.IsCancellationRequested)
                        return RunRecord.Finish(results, RunDir, "stopped", $"stopped during epoch {epoch + 1}; resume continues from epoch {epoch + 1} " +
                                                            $"(the last checkpoint holds {epoch} finished epochs)");
                    var images = batch.Images.to(Device);
                    var labels = batch.Labels.to(Device);
                    _optimizer.zero_grad();
                    var logits = Model.forward(images);
                    var loss = nn.functional.cross_entropy(logits, labels);
                    double lossValue = loss.item<float>();
                    if (!double.IsFinite(lossValue))
                        return RunRecord.Finish(results, RunDir, "diverged",
                            $"non-finite loss ({lossValue}) at epoch {epoch + 1}, step {step + 1}; " +
                            (start > 0 || epoch > 0 ? $"{LastCheckpoint} keeps epoch {epoch}" : "no checkpoint was written"));
                    var total = loss;
                    foreach (var layer in _uanLayers)
                        if (layer.ClusterLoss is Tensor cl) total = total + layer.Options.ClusterLossWeight * cl;
                    total.backward();
                    foreach (var layer in _uanLayers) layer.ApplyReferenceUpdate();
                    if (Config.Optimizer == "sgd" && Config.WeightDecay > 0)
                        using (no_grad())
                            foreach (var p in _parameters) p.mul_(1 - lr * Config.WeightDecay);
                    _optimizer.step();
                    train.Add(logits.detach(), labels, lossValue);
                    step++;
                    long batchSize = labels.shape[0];
                    windowLoss += lossValue * batchSize;
                    windowCount += batchSize;
                    if (step % window == 0 || step == steps)
                    {
                        long hits = train.Hits;
                        trainPoints.Add(new TrainPoint(epoch * steps + step, windowLoss / windowCount,
                            (double)(hits - windowHitsBefore) / windowCount));
                        windowLoss = 0;
                        windowCount = 0;
                        windowHitsBefore = hits;
                    }
                    progress?.Report(new TrainProgress("train", epoch + 1, Config.Epochs, step, steps, train.Loss, train.Accuracy,
                        train.Count / trainClock.Elapsed.TotalSeconds));
                    // Eval mode without gradients or random numbers: the training it interrupts goes on unchanged.
                    if (valPoints is not null && step % Config.ValEvery!.Value == 0 && step < steps)
                    {
                        var point = Evaluate(_data.Validation, "val", epoch + 1, progress);
                        valPoints.Add(new ValPoint(epoch * steps + step, point.Accuracy, point.Loss));
                        Model.train();
                    }
                }
            }
            trainClock.Stop();

            var evalClock = Stopwatch.StartNew();
            var val = Evaluate(_data.Validation, "val", epoch + 1, progress);
            valPoints?.Add(new ValPoint((epoch + 1) * steps, val.Accuracy, val.Loss));
            var test = Evaluate(_data.Test, "test", epoch + 1, progress);
            evalClock.Stop();
            var (precision, recall, f1) = test.Macro();
            bool isBest = val.Accuracy > bestVal;
            if (isBest) bestVal = val.Accuracy;
            var metrics = new EpochMetrics
            {
                Epoch = epoch + 1, LearningRate = lr,
                TrainLoss = train.Loss, TrainAccuracy = train.Accuracy,
                ValLoss = val.Loss, ValAccuracy = val.Accuracy,
                TestLoss = test.Loss, TestAccuracy = test.Accuracy, TestTop5 = test.Top5,
                TestPrecision = precision, TestRecall = recall, TestF1 = f1,
                TrainSeconds = trainClock.Elapsed.TotalSeconds, EvalSeconds = evalClock.Elapsed.TotalSeconds,
                ImagesPerSecond = train.Count / trainClock.Elapsed.TotalSeconds, IsBest = isBest,
                ValPoints = valPoints,
                TrainPoints = trainPoints,
                Gradient = Config.Probe ? ProbeGradients() : null,
                LoadAverage = EnvironmentInfo.LoadAverage(),
            };
            // Opt-in figures data; eval mode without gradients, so it leaves the training untouched. Before the
            // commit, so an epoch trained again after a crash writes its snapshot again.
            _snapshots?.AfterEpoch(Model, epoch + 1);
            folder.Point("epoch-end", epoch + 1);
            if (isBest) folder.Stage(BestCheckpoint, epoch + 1, s => SaveCheckpoint(s, epoch + 1, bestVal));
            folder.Stage(LastCheckpoint, epoch + 1, s => SaveCheckpoint(s, epoch + 1, bestVal));
            results.Epochs.Add(metrics);
            results.TotalSeconds += metrics.TrainSeconds + metrics.EvalSeconds;
            results.Status = epoch + 1 == Config.Epochs ? "completed" : "running";
            results.Updated = DateTimeOffset.Now;
            folder.Commit(results, epoch + 1, isBest ? [LastCheckpoint, BestCheckpoint] : [LastCheckpoint]);
            EpochFinished?.Invoke(metrics);
        }
        return RunRecord.Finish(results, RunDir, "completed", null);
    }

    /// <summary>Images in the fixed batch of <see cref="RunConfig.Probe"/> (the reference callback's source batch).</summary>
    public const int ProbeImages = 64;

    /// <summary>
    /// The gradient variances of <see cref="RunConfig.Probe"/>: both definitions of <see cref="Diagnostics.GradientProbe"/>
    /// on the first <see cref="ProbeImages"/> training images (evaluation pipeline: no augmentation), the same images at
    /// every epoch. The probe restores everything it touches, so the training goes on unchanged.
    /// </summary>
    private GradientSummary ProbeGradients()
    {
        using var scope = NewDisposeScope();
        long n = Math.Min(ProbeImages, _data.Train.Count);
        using var generator = new Generator(0);
        var images = _data.EvalPipeline.Apply(_data.Train.Images.narrow(0, 0, n), false, generator).to(Device);
        var labels = _data.Train.Labels.narrow(0, 0, n).to(Device);
        var paper = Diagnostics.GradientProbe.Measure(Model, images, labels, Diagnostics.GradientDefinition.Paper);
        var loss = Diagnostics.GradientProbe.Measure(Model, images, labels, Diagnostics.GradientDefinition.Loss);
        return new GradientSummary(paper.Max, paper.Mean, loss.Max, loss.Mean);
    }

    /// <summary>Loss, accuracy, top-5 and macro P/R/F1 of the model (eval mode, no gradients) on a split.</summary>
    public ClassificationMetrics Evaluate(ImageDataset split, string phase = "eval", int epoch = 0, IProgress<TrainProgress>? progress = null)
    {
        var metrics = new ClassificationMetrics(_data.NumClasses);
        // The training batch size: bigger eval batches are slower per image on CPU (measured for the shallow CNN at
        // 28×28, one thread: 410 images/s at 64, 93 at 500), the activations no longer fit in cache.
        // At least 64 per batch: eval-mode outputs do not depend on the batch (ReferenceCompat UAN's only weakly, as
        // the reference's), and a batch-8 run's evaluation would otherwise take several times longer.
        var loader = new BatchLoader(split, Math.Max(Config.BatchSize, 64), _data.EvalPipeline, shuffle: false, training: false);
        Model.eval();
        using var noGrad = no_grad();
        long step = 0;
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
            using (var scope = NewDisposeScope())
            {
                var labels = batch.Labels.to(Device);
                var logits = Model.forward(batch.Images.to(Device));
                metrics.Add(logits, labels, nn.functional.cross_entropy(logits, labels).item<float>());
                progress?.Report(new TrainProgress(phase, epoch, Config.Epochs, ++step, loader.BatchesPerEpoch, metrics.Loss, metrics.Accuracy, 0));
            }
        }
        return metrics;
    }

    /// <summary>Loads model weights (and buffers) from a checkpoint written by this class; returns its epoch.</summary>
    public int LoadWeights(string path) => LoadCheckpoint(path, withOptimizer: false).Epoch;

    private void CheckResumable(RunConfig saved) =>
        RunRecord.CheckResumable(RunDir, saved, Config, c => c with { Epochs = 0, Device = "", Threads = null, Snapshots = false });

    /// <summary>True when <paramref name="runDir"/> holds a checkpoint, committed or staged.</summary>
    internal static bool HasCheckpointFiles(string runDir) =>
        new[] { LastCheckpoint, BestCheckpoint }.Any(name =>
            File.Exists(Path.Combine(runDir, name)) || File.Exists(Path.Combine(runDir, name + RunFolder.PendingSuffix)));

    /// <summary>
    /// Finishes or undoes an interrupted commit of the run in <paramref name="folder"/> and checks that its
    /// checkpoints hold what <paramref name="results"/> (the commit record) names: last.ckpt its last epoch, best.ckpt
    /// the last epoch marked best. Throws <see cref="InvalidDataException"/> naming the file that disagrees.
    /// </summary>
    internal static void Recover(RunFolder folder, RunResults results)
    {
        int committed = folder.CommittedEpochs(results.Epochs.Select(m => m.Epoch));
        int best = results.Epochs.LastOrDefault(m => m.IsBest)?.Epoch ?? 0;
        int ReadEpoch(string path) => RunFolder.ReadCheckpointEpoch(path, Magic);
        folder.Recover(LastCheckpoint, committed, committed, ReadEpoch, $"records {committed} finished epochs");
        folder.Recover(BestCheckpoint, committed, best, ReadEpoch,
            best == 0 ? "marks no epoch as best" : $"marks epoch {best} as the best");
    }

    /// <summary>
    /// Called at the named points of every epoch's commit with the point and the epoch: "epoch-end",
    /// "staged:best.ckpt", "staged:last.ckpt", "committed", "installed:last.ckpt", "installed:best.ckpt". Tests throw
    /// from it to stop a commit where a kill would.
    /// </summary>
    internal Action<string, int>? CommitFault { get; set; }

    private void SaveCheckpoint(Stream stream, int epoch, double bestVal)
    {
        using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(epoch);
        writer.Write(bestVal);
        Model.save(writer);
        _optimizer.save_state_dict(writer);
    }

    private (int Epoch, double BestVal) LoadCheckpoint(string path, bool withOptimizer)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = new BinaryReader(stream);
            if (reader.ReadString() != Magic) throw new InvalidDataException($"{path}: not a UAN checkpoint");
            int epoch = reader.ReadInt32();
            double bestVal = reader.ReadDouble();
            Model.load(reader);
            if (withOptimizer) _optimizer.load_state_dict(reader);
            return (epoch, bestVal);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{path}: checkpoint is truncated", e);
        }
    }

    /// <summary>Releases the model and optimizer.</summary>
    public void Dispose()
    {
        _snapshots?.Dispose();
        _optimizer.Dispose();
        Model.Dispose();
    }
}
