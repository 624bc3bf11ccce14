using System.Text.Json.Serialization;

namespace Uan.Lab.Training;

/// <summary>
/// Everything that defines one training run. Written into <c>results.json</c> so a report can be rebuilt, and a run
/// reproduced, from the file alone.
/// </summary>
public sealed record RunConfig
{
    /// <summary>Dataset id as <see cref="Data.DataLocator"/> knows it (mnist-subset, mnist, fashion-mnist, cifar10, ...).</summary>
    public string Dataset { get; init; } = "mnist-subset";
    /// <summary>Model name: shallow-cnn, densenet40, densenet100.</summary>
    public string Model { get; init; } = "shallow-cnn";
    /// <summary>Norm spec string for the layer under study (see <see cref="Uan.Norms.Parse"/>).</summary>
    public string Norm { get; init; } = "bn";
    /// <summary>Optional norm on the model's input (DenseNet), or null.</summary>
    public string? InputNorm { get; init; }
    /// <summary>Shallow CNN: norm of the layers not under study; null = Keras BatchNorm (eps 1e-3, momentum 0.01), as the paper.</summary>
    public string? OtherNorm { get; init; }
    /// <summary>Short label for tables and plots (for example "UAN"); defaults to the norm spec.</summary>
    public string? Label { get; init; }
    /// <summary>Learning rate (constant for adamw; the initial one for sgd).</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Number of epochs.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Training batch size.</summary>
    public int BatchSize { get; init; } = 256;
    /// <summary>Seed for weights, data order and augmentation.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>adamw (decay not scaled by lr, as tfa) or sgd (Nesterov, DenseNet step schedule).</summary>
    public string Optimizer { get; init; } = "adamw";
    /// <summary>Decoupled weight decay (1e-4 in the paper).</summary>
    public double WeightDecay { get; init; } = 1e-4;
    /// <summary>
    /// Training images used, drawn (stratified) from what the validation split leaves of the training file, or null
    /// for all. The validation part stays the file's last <see cref="ValidationFraction"/>, whatever the limit. The
    /// command line's <c>--train-limit</c> set this before 0.1.0; it now sets <see cref="Subset"/>, so that the
    /// validation part is taken from the images used.
    /// </summary>
    public int? TrainLimit { get; init; }
    /// <summary>
    /// A stratified subset of this many images of the training file, from which a stratified
    /// <see cref="ValidationFraction"/> is held out for validation (instead of the file's last part); null for none.
    /// Excludes <see cref="TrainLimit"/>.
    /// </summary>
    public int? Subset { get; init; }
    /// <summary>Also measure validation every this many training steps within an epoch (<see cref="EpochMetrics.ValPoints"/>); null: at epoch ends only.</summary>
    public int? ValEvery { get; init; }
    /// <summary>
    /// Record gradient variances at every epoch's end (<see cref="EpochMetrics.Gradient"/>) on a fixed batch of training
    /// images, without side effects on the training. Omitted from results.json when off.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Probe { get; init; }
    /// <summary>Fraction of the training set held out (the last images, as Keras validation_split does).</summary>
    public double ValidationFraction { get; init; } = 0.1;
    /// <summary>Test images used, or null for all.</summary>
    public int? TestLimit { get; init; }
    /// <summary>Side of the square network input; null keeps the dataset's native size.</summary>
    public int? ImageSize { get; init; }
    /// <summary>Random augmentation of training batches (flip, rotation, zoom).</summary>
    public bool Augment { get; init; } = true;
    /// <summary>Torch device string.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Intra-op threads for libtorch; null leaves libtorch's default.</summary>
    public int? Threads { get; init; }
    /// <summary>
    /// Save feature and activation snapshots for the figures (see <see cref="Diagnostics.SnapshotRecorder"/>). Does not
    /// change the training; omitted from results.json when off.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public bool Snapshots { get; init; }
}

/// <summary>Metrics for one epoch. Validation and test numbers are measured in eval mode after the epoch.</summary>
public sealed record EpochMetrics
{
    /// <summary>1-based epoch number.</summary>
    public int Epoch { get; init; }
    /// <summary>Learning rate used in this epoch.</summary>
    public double LearningRate { get; init; }
    /// <summary>Mean cross-entropy over the training batches of the epoch (train mode).</summary>
    public double TrainLoss { get; init; }
    /// <summary>Accuracy over the training batches of the epoch (train mode, augmented).</summary>
    public double TrainAccuracy { get; init; }
    /// <summary>Validation loss.</summary>
    public double ValLoss { get; init; }
    /// <summary>Validation accuracy.</summary>
    public double ValAccuracy { get; init; }
    /// <summary>Test loss.</summary>
    public double TestLoss { get; init; }
    /// <summary>Test accuracy (top-1).</summary>
    public double TestAccuracy { get; init; }
    /// <summary>Test top-5 accuracy.</summary>
    public double TestTop5 { get; init; }
    /// <summary>Macro-averaged (over classes) precision of the argmax prediction on the test set.</summary>
    public double TestPrecision { get; init; }
    /// <summary>Macro-averaged recall on the test set.</summary>
    public double TestRecall { get; init; }
    /// <summary>Macro-averaged F1 on the test set (per-class F1, then the mean).</summary>
    public double TestF1 { get; init; }
    /// <summary>Wall time of the training part of the epoch, seconds.</summary>
    public double TrainSeconds { get; init; }
    /// <summary>Wall time of the validation and test evaluation, seconds.</summary>
    public double EvalSeconds { get; init; }
    /// <summary>Training images per second.</summary>
    public double ImagesPerSecond { get; init; }
    /// <summary>True when this epoch's validation accuracy is the best so far (its weights are in best.ckpt).</summary>
    public bool IsBest { get; init; }
    /// <summary>Validation measured within the epoch, every <see cref="RunConfig.ValEvery"/> steps; null when not asked.</summary>
    public List<ValPoint>? ValPoints { get; init; }
    /// <summary>
    /// Training loss and accuracy within the epoch: the means over consecutive windows of
    /// <see cref="Trainer.TrainPointWindow"/> steps (the last window of the epoch may be shorter), one point per window,
    /// recorded always (not an option: it only reads numbers the training computes anyway). Null in results files
    /// written before it existed.
    /// </summary>
    public List<TrainPoint>? TrainPoints { get; init; }
    /// <summary>Gradient variances at the epoch's end (<see cref="RunConfig.Probe"/>); null when not asked.</summary>
    public GradientSummary? Gradient { get; init; }
    /// <summary>The machine's 1-minute load average when the epoch ended (Linux), or null: the context of its wall times.</summary>
    public double? LoadAverage { get; init; }
}

/// <summary>Validation accuracy and loss after <paramref name="Step"/> training steps of the run (counted from its start).</summary>
public sealed record ValPoint(long Step, double Accuracy, double Loss);

/// <summary>
/// Training loss and accuracy over one window of training steps: the steps after the previous point of the same epoch
/// (or the epoch's start) up to and including <paramref name="Step"/>, counted from the run's start as in
/// <see cref="ValPoint"/>. Both are per-sample means in train mode on the augmented batches, as
/// <see cref="EpochMetrics.TrainLoss"/> and <see cref="EpochMetrics.TrainAccuracy"/> are over the whole epoch: the loss
/// is Σ (batch mean loss × batch size) / Σ batch size over the window's batches, the accuracy the top-1 hits over the
/// window's samples.
/// </summary>
public sealed record TrainPoint(long Step, double Loss, double Accuracy);

/// <summary>
/// Max and mean over parameter tensors of the population variance of each tensor's gradient, for the paper's
/// definition (d Σ logits / dθ) and for the loss (d mean cross-entropy / dθ); see <see cref="Diagnostics.GradientProbe"/>.
/// </summary>
public sealed record GradientSummary(double PaperMax, double PaperMean, double LossMax, double LossMean);

/// <summary>Machine and library versions the run was made with.</summary>
public sealed record EnvironmentInfo
{
    /// <summary>Host name.</summary>
    public string Machine { get; init; } = "";
    /// <summary>Operating system description.</summary>
    public string Os { get; init; } = "";
    /// <summary>Logical processors.</summary>
    public int ProcessorCount { get; init; }
    /// <summary>libtorch intra-op threads.</summary>
    public int TorchThreads { get; init; }
    /// <summary>.NET runtime version.</summary>
    public string Dotnet { get; init; } = "";
    /// <summary>TorchSharp assembly version.</summary>
    public string TorchSharp { get; init; } = "";
    /// <summary>UAN library assembly version.</summary>
    public string Uan { get; init; } = "";

    /// <summary>The machine's 1-minute load average (the first field of /proc/loadavg), or null where there is none.</summary>
    public static double? LoadAverage()
    {
        try
        {
            var text = File.ReadAllText("/proc/loadavg");
            return double.TryParse(text.Split(' ')[0], System.Globalization.NumberStyles.Float,
                System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The current process's environment.</summary>
    public static EnvironmentInfo Capture() => new()
    {
        Machine = Environment.MachineName,
        Os = System.Runtime.InteropServices.RuntimeInformation.OSDescription,
        ProcessorCount = Environment.ProcessorCount,
        TorchThreads = global::TorchSharp.torch.get_num_threads(),
        Dotnet = Environment.Version.ToString(),
        TorchSharp = typeof(global::TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "",
        Uan = typeof(Uan.Norms).Assembly.GetName().Version?.ToString() ?? "",
    };
}

/// <summary>
/// The contents of a run folder's <c>results.json</c>: the config, one <see cref="EpochMetrics"/> per finished epoch,
/// and how the run ended (<see cref="RunRecord"/>). The run's commit record: replaced atomically after the epoch's
/// checkpoints are staged (see <see cref="RunFolder"/>), so a killed run leaves a valid file that names what its
/// checkpoints hold.
/// </summary>
public sealed record RunResults : RunRecord
{
    /// <summary>The run's configuration.</summary>
    public RunConfig Config { get; init; } = new();
    /// <summary>Finished epochs, in order.</summary>
    public List<EpochMetrics> Epochs { get; init; } = [];

    /// <summary>Reads a results file (or the one in a run folder); the error names the file when it is not valid.</summary>
    public static RunResults Load(string path) => Load<RunResults>(path, "results file");

    /// <summary>
    /// Test accuracy at <paramref name="epoch"/> under the paper's protocol: the test accuracy of the best-validation
    /// epoch so far (ties keep the earlier epoch). Null if the run has not reached that epoch.
    /// </summary>
    public double? BestValTestAccuracyAt(int epoch)
    {
        EpochMetrics? best = null;
        foreach (var m in Epochs)
        {
            if (m.Epoch > epoch) break;
            if (best is null || m.ValAccuracy > best.ValAccuracy) best = m;
        }
        return best is null || Epochs.All(m => m.Epoch != epoch) ? null : best.TestAccuracy;
    }
}
