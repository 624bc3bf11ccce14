using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using Uan.Lab.Data;
using Uan.Lab.Models;
using Uan.Lab.Training;
using static TorchSharp.torch;

namespace Uan.Lab.Adaptation;

/// <summary>What one AdaMatch step did.</summary>
/// <param name="Loss">Total loss L.</param>
/// <param name="SourceLoss">L_src.</param>
/// <param name="TargetLoss">L_tgt (before the warm-up weight).</param>
/// <param name="MaskRate">Fraction of target images above the relative confidence threshold.</param>
/// <param name="LearningRate">Learning rate of the step.</param>
/// <param name="Warmup">μ(t) of the step.</param>
/// <param name="SourceCorrect">Weak source images whose interpolated logits pick the label.</param>
/// <param name="TrainLogitScale">Mean |z'| over the source images' logits from the train-mode pass 1.</param>
/// <param name="EvalLogitScale">Mean |z''| over the source logits from the eval-mode pass 2 (running statistics).</param>
/// <param name="GradNorm">L2 norm of the whole gradient before the optimizer step (NaN when no step was taken).</param>
public readonly record struct AdaMatchStep(double Loss, double SourceLoss, double TargetLoss, double MaskRate,
    double LearningRate, double Warmup, long SourceCorrect, double TrainLogitScale = double.NaN,
    double EvalLogitScale = double.NaN, double GradNorm = double.NaN);

/// <summary>
/// AdaMatch training (spec Part B §4.3), one readable step (<see cref="Step"/>) of the configured variant
/// (<see cref="AdaMatchVariants"/>): two forward passes (official: the source images alone in train mode with the
/// running statistics kept, then everything in train mode; keras and compat: everything in train mode, then the
/// source images in eval mode; gradients flow through both), random logit interpolation, distribution alignment,
/// relative confidence mask, L = L_src + μ(t)·L_tgt (<see cref="AdaMatchMath"/>; official: plus weight decay), Adam
/// (ε = 1e-7, as Keras) with the cosine-decayed learning rate; the official variant evaluates an EMA of the weights. After every epoch both test sets are evaluated in eval mode and the epoch is
/// committed through <see cref="RunFolder"/>: the epoch's rows are appended to steps.csv (with
/// <see cref="LogSteps"/>), the last checkpoint is staged, results.json (the commit record) is replaced, then the
/// staged checkpoint is renamed into place. The run folder is locked for the whole run; a resume finishes or undoes an
/// interrupted commit, drops steps.csv rows of uncommitted epochs, and refuses (naming the file) a last.ckpt that does
/// not hold the last epoch of results.json.
/// <para>
/// Reproducibility: weights are drawn after <c>manual_seed(seed)</c>; the data order, the augmentations and the
/// interpolation λ of epoch e depend only on (seed, e), so a run resumed from its last checkpoint continues as one
/// that was never interrupted. Each epoch takes the first steps of a fresh shuffle of both streams (last partial
/// batches dropped).
/// </para>
/// </summary>
public sealed class AdaMatchTrainer : IDisposable
{
    /// <summary>File name of the last-epoch checkpoint inside the run folder.</summary>
    public const string LastCheckpoint = "last.ckpt";
    /// <summary>Weak source images in the fixed batch handed to <see cref="EpochProbe"/> (the reference callback's 64).</summary>
    public const int ProbeSourceImages = 64;
    /// <summary>Weak target images in the fixed probe batch (3 × 64, as the reference).</summary>
    public const int ProbeTargetImages = 192;

    private const string Magic = "UAN-ADAMATCH-1";
    private readonly AdaMatchData _data;
    private readonly OptimizerHelper _optimizer;
    private readonly Parameter[] _parameters;
    private readonly List<UnsupervisedAdaptiveNorm> _uanLayers;
    private readonly ClassDistributionTracker? _tracker;
    private readonly WeightEma? _ema;
    private readonly IReadOnlyList<Tensor> _decayed;
    private readonly (string Name, Tensor Buffer)[] _statistics;
    private readonly TorchSharp.Modules.BatchNorm[] _batchNorms;

    static string Prefix(string moduleName) => moduleName.Length == 0 ? "" : moduleName + ".";

    /// <summary>Seeds torch, builds the model (a <see cref="WideResNet"/> on raw pixels unless <paramref name="createModel"/> is given) and Adam.</summary>
    public AdaMatchTrainer(AdaMatchConfig config, AdaMatchData data, string runDir, Func<nn.Module<Tensor, Tensor>>? createModel = null)
    {
        Config = config ?? throw new ArgumentNullException(nameof(config));
        _data = data ?? throw new ArgumentNullException(nameof(data));
        config.Validate();
        RunDir = runDir;
        if (config.Threads is int threads) torch.set_num_threads(threads);
        Device = Devices.Resolve(config.Device);

        long sourceBatches = data.SourceTrain.Count / config.SourceBatch;
        long targetBatches = data.TargetTrain.Count / config.TargetBatch;
        if (sourceBatches == 0 || targetBatches == 0)
            throw new ArgumentException(
                $"AdaMatch needs at least one full batch of each stream: {data.SourceTrain.Count} source images for batch " +
                $"{config.SourceBatch}, {data.TargetTrain.Count} target images for batch {config.TargetBatch}");
        StepsPerEpoch = Math.Min(Math.Min(sourceBatches, targetBatches), config.StepsPerEpoch ?? long.MaxValue);
        HorizonSteps = config.HorizonSteps ?? (config.Compat ? 10 * sourceBatches : config.Epochs * StepsPerEpoch);

        torch.manual_seed(config.Seed);
        Model = (createModel ?? (() => CreateModel(config, data.Channels, data.NumClasses)))();
        Model.to(Device);
        _parameters = Model.parameters().Where(p => p.requires_grad).ToArray();
        _uanLayers = Model.modules().OfType<UnsupervisedAdaptiveNorm>().ToList();
        _optimizer = optim.Adam(_parameters, config.LearningRate, beta1: 0.9, beta2: 0.999, eps: 1e-7);
        _decayed = config.Official ? AdaMatchMath.DecayedWeights(Model) : [];
        _batchNorms = Model.named_modules().Where(m => m.module is TorchSharp.Modules.BatchNorm)
            .Select(m => (TorchSharp.Modules.BatchNorm)m.module).ToArray();
        var batchNormStats = Model.named_modules().Where(m => m.module is TorchSharp.Modules.BatchNorm)
            .SelectMany(m => new[] { Prefix(m.name) + "running_mean", Prefix(m.name) + "running_var" }).ToHashSet();
        _statistics = Model.named_buffers().Where(b => IsStatistic(b.name) && !batchNormStats.Contains(b.name))
            .Select(b => (b.name, b.buffer)).ToArray();
        if (config.Official)
        {
            _tracker = new ClassDistributionTracker(data.NumClasses, ScalarType.Float32, Device);
            _ema = new WeightEma(Model);
        }
        foreach (var standardize in Model.modules().OfType<InputStandardization>())
            if (!standardize.IsSet) standardize.SetFrom(data.SourceTrain, data.SourceBase);
    }

    /// <summary>The running statistics a train-mode pass updates: BatchNorm's and UAN's running_mean, running_var, num_batches_tracked.</summary>
    internal static bool IsStatistic(string bufferName) =>
        bufferName.EndsWith("running_mean", StringComparison.Ordinal) || bufferName.EndsWith("running_var", StringComparison.Ordinal) ||
        bufferName.EndsWith("num_batches_tracked", StringComparison.Ordinal);

    /// <summary>The EMA of the weights the official variant evaluates (null for the other variants).</summary>
    public WeightEma? WeightAverage => _ema;

    /// <summary>The official variant's moving class distributions (null for the other variants).</summary>
    public ClassDistributionTracker? ClassDistributions => _tracker;

    /// <summary>The <see cref="WideResNet"/> of <paramref name="config"/>, on raw 0–255 input.</summary>
    public static WideResNet CreateModel(AdaMatchConfig config, int inChannels = 3, int numClasses = 10)
    {
        var (depth, widen) = ModelFactory.ParseWideResNet(config.Model)
                             ?? throw new ArgumentException($"AdaMatch: model must be wrn-D-K, got '{config.Model}'");
        return new WideResNet(depth, widen, inChannels, numClasses, config.Norm, config.InputNorm, name: config.Model);
    }

    /// <summary>The run's configuration.</summary>
    public AdaMatchConfig Config { get; }
    /// <summary>The model being trained.</summary>
    public nn.Module<Tensor, Tensor> Model { get; }
    /// <summary>The run folder.</summary>
    public string RunDir { get; }
    /// <summary>Device the model runs on.</summary>
    public Device Device { get; }
    /// <summary>Steps per epoch: the configured number, capped by the shorter stream.</summary>
    public long StepsPerEpoch { get; }
    /// <summary>Horizon T of the learning-rate decay and the warm-up.</summary>
    public long HorizonSteps { get; }

    /// <summary>
    /// Optional hook called at the end of every epoch (after evaluation, before the checkpoint, so a resumed run sees
    /// its side effects too) with the 1-based epoch, the model, a fixed batch of <see cref="ProbeSourceImages"/> weak
    /// source images and one of <see cref="ProbeTargetImages"/> weak target images (the same images every epoch; on
    /// the model's device). The model is in eval mode; the hook may change that, training resets it. Meant for
    /// gradient-variance probes.
    /// </summary>
    public Action<int, nn.Module<Tensor, Tensor>, Tensor, Tensor>? EpochProbe { get; set; }

    /// <summary>Called after every finished epoch with its metrics.</summary>
    public event Action<AdaMatchEpoch>? EpochFinished;

    /// <summary>Called after every training step with the 1-based epoch, the 0-based global step and what it did.</summary>
    public event Action<int, long, AdaMatchStep>? StepFinished;

    /// <summary>
    /// Write every step to <see cref="AdaMatchStepLog.FileName"/> in the run folder; an epoch's rows are on disk
    /// before the epoch is committed (and those of an epoch that ends the run stopped or diverged when it ends).
    /// </summary>
    public bool LogSteps { get; set; }

    /// <summary>
    /// Called at the named points of every epoch's commit with the point and the epoch: "epoch-end",
    /// "staged:steps.csv", "staged:last.ckpt", "committed", "installed:last.ckpt". Tests throw from it to stop a commit
    /// where a kill would.
    /// </summary>
    internal Action<string, int>? CommitFault { get; set; }

    /// <summary>Learning rate at global step <paramref name="step"/> (0-based).</summary>
    public double LearningRateAt(long step) => AdaMatchMath.CosineDecay(step, Config.LearningRate, HorizonSteps, Config.LrAlpha);

    /// <summary>Warm-up weight μ at global step <paramref name="step"/> (0-based).</summary>
    public double WarmupAt(long step) => AdaMatchMath.WarmupWeight(step, HorizonSteps);

    /// <summary>
    /// One optimisation step on prepared float batches (0–255 scale; source [B_s, C, H, W] weak and strong with int64
    /// labels, target [B_t, C, H, W] weak and strong) at global step <paramref name="step"/>. λ comes from the global
    /// generator. Leaves the model in train mode.
    /// <para>
    /// Official variant (google-research/adamatch, domain_adaptation/adamatch.py lines 60–110): pass 1 on
    /// concat[src_w, src_s] in train mode, after which the running statistics are put back as they were (lines 62–64:
    /// the official code saves all model variables and reassigns them); pass 2 on concat[src_w, src_s, tgt_w, tgt_s] in
    /// train mode, whose statistics update stays (line 66); <see cref="AdaMatchMath.ComputeOfficial"/>; plus
    /// <see cref="AdaMatchMath.OfficialWeightDecay"/>·½Σ‖w‖² (lines 89, 91); after the optimiser step the weight EMA is
    /// updated (line 110). Keras and compat: pass 1 on everything in train mode, pass 2 on the source in eval mode,
    /// <see cref="AdaMatchMath.Compute"/>.
    /// </para>
    /// <para>
    /// Every variant adds each UAN layer's clustering term (spec option <c>cluster=</c>), weight × its mean negative
    /// log-likelihood, from the train-mode pass over all images, as the classification trainer adds it to its loss.
    /// The logged loss includes the weight decay and clustering terms; source and target losses do not.
    /// </para>
    /// </summary>
    public AdaMatchStep Step(Tensor sourceWeak, Tensor sourceStrong, Tensor labels, Tensor targetWeak, Tensor targetStrong, long step)
    {
        using var scope = NewDisposeScope();
        double lr = LearningRateAt(step), mu = WarmupAt(step);
        foreach (var group in _optimizer.ParamGroups) group.LearningRate = lr;
        var source = cat([sourceWeak, sourceStrong], 0).to(Device);
        var all = cat([source, targetWeak.to(Device), targetStrong.to(Device)], 0);
        var y = labels.to(Device);

        _optimizer.zero_grad();
        Model.train();
        Tensor trainLogits, secondLogits;
        AdaMatchLoss loss;
        Tensor extra;
        if (Config.Official)
        {
            // BatchNorm's running averages are kept by a momentum of 0 for this pass (running ← 1·running + 0·batch,
            // exactly the old values): libtorch keeps them for the backward pass, so writing them back with copy_
            // would break it. Every other statistic (UAN's running moments, the batch counters) is written back.
            var saved = _statistics.Select(b => b.Buffer.clone()).ToArray();
            var momenta = _batchNorms.Select(b => b.momentum).ToArray();
            try
            {
                foreach (var b in _batchNorms) b.momentum = 0;
                secondLogits = Model.call(source);
            }
            finally
            {
                for (int i = 0; i < _batchNorms.Length; i++) _batchNorms[i].momentum = momenta[i];
            }
            using (no_grad())
                for (int i = 0; i < saved.Length; i++) _statistics[i].Buffer.copy_(saved[i]);
            trainLogits = Model.call(all);
            extra = ClusterTerm();
            loss = AdaMatchMath.ComputeOfficial(trainLogits, secondLogits, y, mu, _tracker!, Config.Tau);
            extra = extra + AdaMatchMath.OfficialWeightDecay * AdaMatchMath.WeightDecayPenalty(_decayed);
        }
        else
        {
            trainLogits = Model.call(all);
            extra = ClusterTerm();
            Model.eval();
            secondLogits = Model.call(source);
            Model.train();
            loss = AdaMatchMath.Compute(trainLogits, secondLogits, y, mu, Config.Tau, Config.Compat);
        }
        var objective = loss.Total + extra;
        double total = objective.item<float>();
        var result = new AdaMatchStep(total, loss.Source.item<float>(), loss.Target.item<float>(),
            loss.Mask.mean().item<float>(), lr, mu, loss.SourceWeakLogits.argmax(1).eq(y).sum().item<long>(),
            trainLogits.narrow(0, 0, source.shape[0]).detach().abs().mean().item<float>(),
            secondLogits.detach().abs().mean().item<float>());
        if (!double.IsFinite(total)) return result;
        objective.backward();
        // One host sync for the whole norm, not one per tensor.
        var squares = _parameters.Where(p => p.grad is not null).Select(p => p.grad!.to(ScalarType.Float64).square().sum()).ToArray();
        result = result with { GradNorm = squares.Length == 0 ? 0 : stack(squares).sum().sqrt().item<double>() };
        foreach (var layer in _uanLayers) layer.ApplyReferenceUpdate();
        _optimizer.step();
        _ema?.Update();
        return result;
    }

    /// <summary>Σ over UAN layers of weight × the clustering term of their last (train-mode) forward; 0 without one.</summary>
    private Tensor ClusterTerm()
    {
        Tensor sum = zeros([], ScalarType.Float32, Device);
        foreach (var layer in _uanLayers)
            if (layer.ClusterLoss is Tensor cl) sum = sum + layer.Options.ClusterLossWeight * cl;
        return sum;
    }

    /// <summary>
    /// Trains until <see cref="AdaMatchConfig.Epochs"/> epochs are done, the loss becomes non-finite (status
    /// "diverged", no step is taken with it), or <paramref name="cancel"/> fires ("stopped"). With
    /// <paramref name="resume"/> and a checkpoint in the run folder, continues that run; the configuration must match
    /// except for epochs, device and threads (a default horizon follows the new epoch count).
    /// </summary>
    public AdaMatchResults Run(bool resume = false, IProgress<TrainProgress>? progress = null, CancellationToken cancel = default)
    {
        using var folder = RunFolder.Lock(RunDir);
        folder.Fault = CommitFault;
        folder.RemoveStaleTemporaries();
        string lastPath = folder.PathOf(LastCheckpoint);
        bool holdsRun = File.Exists(lastPath) || File.Exists(lastPath + RunFolder.PendingSuffix);
        AdaMatchResults results;
        int start = 0;
        var previous = resume && File.Exists(folder.PathOf(RunRecord.FileName)) ? AdaMatchResults.Load(RunDir) : null;
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
        int committed = resume ? previous?.Epochs.Count ?? 0 : 0;
        // Rows of epochs the commit record does not hold are dropped even when this run does not log steps.
        AdaMatchStepLog? stepLog = null;
        if (LogSteps || File.Exists(folder.PathOf(AdaMatchStepLog.FileName)))
        {
            var log = AdaMatchStepLog.Open(RunDir, committed);
            if (LogSteps) stepLog = log;
        }
        if (committed > 0)
        {
            start = LoadCheckpoint(lastPath);
            results = previous! with
            {
                Config = Config, StepsPerEpoch = StepsPerEpoch, HorizonSteps = HorizonSteps,
                Epochs = previous.Epochs.ToList(),
            };
        }
        else
        {
            folder.RemovePending();
            results = new AdaMatchResults
            {
                Config = Config, StepsPerEpoch = StepsPerEpoch, HorizonSteps = HorizonSteps,
                Environment = EnvironmentInfo.Capture(), Started = DateTimeOffset.Now,
                ParameterCount = _parameters.Sum(p => p.numel()),
            };
        }
        results.Status = "running";
        results.Message = null;

        var sourceLoader = new BatchLoader(_data.SourceTrain, Config.SourceBatch, _data.SourceBase, shuffle: true,
            training: true, dropLast: true, seed: Config.Seed);
        var targetLoader = new BatchLoader(_data.TargetTrain, Config.TargetBatch, _data.TargetBase, shuffle: true,
            training: true, dropLast: true, seed: BatchLoader.DeriveSeed(Config.Seed, 0, 5));
        var probe = EpochProbe is null ? default : ProbeBatches();
        try
        {
            for (int epoch = start; epoch < Config.Epochs; epoch++)
            {
                torch.manual_seed(BatchLoader.DeriveSeed(Config.Seed, epoch, 2));
                using var sourceAug = new Generator((ulong)(uint)BatchLoader.DeriveSeed(Config.Seed, epoch, 3));
                using var targetAug = new Generator((ulong)(uint)BatchLoader.DeriveSeed(Config.Seed, epoch, 4));
                using var sources = sourceLoader.Epoch(epoch).GetEnumerator();
                using var targets = targetLoader.Epoch(epoch).GetEnumerator();
                var clock = Stopwatch.StartNew();
                double lossSum = 0, sourceSum = 0, targetSum = 0, maskSum = 0, lr = 0, mu = 0;
                long correct = 0, seen = 0, step = 0;
                for (; step < StepsPerEpoch && sources.MoveNext() && targets.MoveNext(); step++)
                {
                    using var s = sources.Current;
                    using var t = targets.Current;
                    if (cancel.IsCancellationRequested)
                        return Finish(results, "stopped", $"stopped during epoch {epoch + 1}; resume continues from epoch {epoch + 1} " +
                                                          $"(the last checkpoint holds {epoch} finished epochs)");
                    AdaMatchStep r;
                    using (NewDisposeScope())
                    {
                        var sw = _data.Weak.Apply(s.Images, true, sourceAug);
                        var ss = _data.Strong.Apply(s.Images, true, sourceAug);
                        var tw = _data.Weak.Apply(t.Images, true, targetAug);
                        var ts = _data.Strong.Apply(t.Images, true, targetAug);
                        r = Step(sw, ss, s.Labels, tw, ts, (long)epoch * StepsPerEpoch + step);
                    }
                    stepLog?.Add(epoch + 1, (long)epoch * StepsPerEpoch + step, r);
                    StepFinished?.Invoke(epoch + 1, (long)epoch * StepsPerEpoch + step, r);
                    if (!double.IsFinite(r.Loss))
                        return Finish(results, "diverged",
                            $"non-finite loss ({r.Loss}) at epoch {epoch + 1}, step {step + 1} (source {r.SourceLoss}, target {r.TargetLoss}); " +
                            (epoch > 0 ? $"{LastCheckpoint} keeps epoch {epoch}" : "no checkpoint was written"));
                    lossSum += r.Loss; sourceSum += r.SourceLoss; targetSum += r.TargetLoss; maskSum += r.MaskRate;
                    lr = r.LearningRate; mu = r.Warmup;
                    correct += r.SourceCorrect; seen += s.Count;
                    progress?.Report(new TrainProgress("train", epoch + 1, Config.Epochs, step + 1, StepsPerEpoch, lossSum / (step + 1),
                        (double)correct / seen, (seen * 2 + (step + 1) * 2.0 * Config.TargetBatch) / clock.Elapsed.TotalSeconds));
                }
                clock.Stop();
                double trainSeconds = clock.Elapsed.TotalSeconds;

                var evalClock = Stopwatch.StartNew();
                var sourceTest = Evaluate(_data.SourceTest, _data.SourceBase, "source-test", epoch + 1, progress);
                var targetTest = Evaluate(_data.TargetTest, _data.TargetBase, "target-test", epoch + 1, progress);
                evalClock.Stop();
                var metrics = new AdaMatchEpoch
                {
                    Epoch = epoch + 1, LearningRate = lr, Warmup = mu,
                    TrainLoss = lossSum / step, SourceLoss = sourceSum / step, TargetLoss = targetSum / step, MaskRate = maskSum / step,
                    SourceTrainAccuracy = (double)correct / seen,
                    SourceTest = DomainMetrics.From(sourceTest), TargetTest = DomainMetrics.From(targetTest),
                    TrainSeconds = trainSeconds, EvalSeconds = evalClock.Elapsed.TotalSeconds, SecondsPerStep = trainSeconds / step,
                    LoadAverage = EnvironmentInfo.LoadAverage(),
                };
                if (EpochProbe is { } hook) hook(epoch + 1, Model, probe.Source!, probe.Target!);
                folder.Point("epoch-end", epoch + 1);
                if (stepLog is not null)
                {
                    stepLog.Flush();
                    folder.Point("staged:" + AdaMatchStepLog.FileName, epoch + 1);
                }
                folder.Stage(LastCheckpoint, epoch + 1, s => SaveCheckpoint(s, epoch + 1));
                results.Epochs.Add(metrics);
                results.TotalSeconds += metrics.TrainSeconds + metrics.EvalSeconds;
                results.Status = epoch + 1 == Config.Epochs ? "completed" : "running";
                results.Updated = DateTimeOffset.Now;
                folder.Commit(results, epoch + 1, [LastCheckpoint]);
                EpochFinished?.Invoke(metrics);
            }
            return Finish(results, "completed", null);
        }
        finally
        {
            probe.Source?.Dispose();
            probe.Target?.Dispose();
        }

        // The rows of an epoch that ends the run unfinished are kept for diagnosis; a resume drops them.
        AdaMatchResults Finish(AdaMatchResults r, string status, string? message)
        {
            stepLog?.Flush();
            return RunRecord.Finish(r, RunDir, status, message);
        }
    }

    /// <summary>
    /// Wall seconds of each of <paramref name="steps"/> training steps of <paramref name="config"/>'s model and batch
    /// sizes on random 0–255 images (<paramref name="channels"/>×<paramref name="imageSize"/>², augmentations
    /// included), after one untimed warm-up step; no dataset is needed and nothing is written.
    /// </summary>
    public static double[] MeasureStepSeconds(AdaMatchConfig config, int steps, int imageSize = 32, int channels = 3, int classes = 10)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "must be ≥ 1");
        ImageDataset Random(long count, int seed)
        {
            using var scope = NewDisposeScope();
            using var g = new Generator((ulong)seed);
            var images = randint(256, [count, channels, imageSize, imageSize], generator: g).to(ScalarType.Byte);
            var labels = arange(count, ScalarType.Int64) % classes;
            return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), classes, "random");
        }
        using var data = new AdaMatchData(Random(config.SourceBatch, 1), Random(classes, 2), Random(config.TargetBatch, 3),
            Random(classes, 4), config.WeakFlip, config.StrongOps, config.StrongMagnitude);
        using var trainer = new AdaMatchTrainer(config with { StepsPerEpoch = null, HorizonSteps = steps + 1 }, data,
            Path.Combine(Path.GetTempPath(), "uan-adamatch-timing"));
        using var sourceAug = new Generator(5);
        using var targetAug = new Generator(6);
        var times = new double[steps];
        for (int i = 0; i <= steps; i++)
        {
            using var scope = NewDisposeScope();
            var clock = Stopwatch.StartNew();
            var source = data.SourceBase.Apply(data.SourceTrain.Images, false, sourceAug);
            var target = data.TargetTrain.Images.to(ScalarType.Float32);
            trainer.Step(data.Weak.Apply(source, true, sourceAug), data.Strong.Apply(source, true, sourceAug), data.SourceTrain.Labels,
                data.Weak.Apply(target, true, targetAug), data.Strong.Apply(target, true, targetAug), i);
            if (i > 0) times[i - 1] = clock.Elapsed.TotalSeconds;
        }
        return times;
    }

    /// <summary>
    /// Loss, accuracy and macro P/R/F1 of the model (eval mode, no gradients) on a test split; the official variant
    /// evaluates the EMA of the weights (<see cref="WeightAverage"/>) in place of the trained ones.
    /// </summary>
    public ClassificationMetrics Evaluate(ImageDataset split, DataPipeline pipeline, string phase = "eval", int epoch = 0,
        IProgress<TrainProgress>? progress = null)
    {
        var metrics = new ClassificationMetrics(_data.NumClasses);
        var loader = new BatchLoader(split, Config.EvalBatch, pipeline, shuffle: false, training: false);
        Model.eval();
        using var averaged = _ema?.Swap();
        using var noGrad = no_grad();
        long step = 0;
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
            using (NewDisposeScope())
            {
                var labels = batch.Labels.to(Device);
                var logits = Model.call(batch.Images.to(Device));
                metrics.Add(logits, labels, nn.functional.cross_entropy(logits, labels).item<float>());
                progress?.Report(new TrainProgress(phase, epoch, Config.Epochs, ++step, loader.BatchesPerEpoch, metrics.Loss, metrics.Accuracy, 0));
            }
        }
        return metrics;
    }

    /// <summary>The fixed weak batches of <see cref="EpochProbe"/>: the first images of each training set, flipped with a fixed seed.</summary>
    private (Tensor? Source, Tensor? Target) ProbeBatches()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator((ulong)(uint)BatchLoader.DeriveSeed(Config.Seed, 0, 6));
        Tensor Take(ImageDataset set, DataPipeline geometry, int count)
        {
            var images = geometry.Apply(set.Images.narrow(0, 0, Math.Min(count, set.Count)), false, generator);
            return _data.Weak.Apply(images, true, generator).to(Device);
        }
        var source = Take(_data.SourceTrain, _data.SourceBase, ProbeSourceImages);
        var target = Take(_data.TargetTrain, _data.TargetBase, ProbeTargetImages);
        return (source.DetachFromDisposeScope(), target.DetachFromDisposeScope());
    }

    private void CheckResumable(AdaMatchConfig saved) =>
        RunRecord.CheckResumable(RunDir, saved, Config, c => c with { Epochs = 0, Device = "", Threads = null });

    /// <summary>
    /// Finishes or undoes an interrupted commit in <paramref name="folder"/> and checks that last.ckpt holds the last
    /// epoch of <paramref name="results"/> (the commit record); throws <see cref="InvalidDataException"/> naming the
    /// file that disagrees.
    /// </summary>
    internal static void Recover(RunFolder folder, AdaMatchResults results)
    {
        int committed = folder.CommittedEpochs(results.Epochs.Select(m => m.Epoch));
        folder.Recover(LastCheckpoint, committed, committed, path => RunFolder.ReadCheckpointEpoch(path, Magic),
            $"records {committed} finished epochs");
    }

    private void SaveCheckpoint(Stream stream, int epoch)
    {
        using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        writer.Write(Magic);
        writer.Write(epoch);
        Model.save(writer);
        _optimizer.save_state_dict(writer);
        _tracker?.Save(writer);
        _ema?.Save(writer);
    }

    private int LoadCheckpoint(string path)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var reader = new BinaryReader(stream);
            if (reader.ReadString() != Magic) throw new InvalidDataException($"{path}: not an AdaMatch checkpoint");
            int epoch = reader.ReadInt32();
            Model.load(reader);
            _optimizer.load_state_dict(reader);
            _tracker?.Load(reader);
            _ema?.Load(reader);
            return epoch;
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{path}: checkpoint is truncated", e);
        }
    }

    /// <summary>Releases the model and the optimizer.</summary>
    public void Dispose()
    {
        _optimizer.Dispose();
        _tracker?.Dispose();
        _ema?.Dispose();
        Model.Dispose();
    }
}
