using System.Text.Json;
using System.Text.Json.Serialization;
using Uan.Lab.Models;
using Uan.Lab.Training;

namespace Uan.Lab.Adaptation;

/// <summary>
/// Everything that defines one AdaMatch run (spec Part B §4.3). The defaults are a CPU-sized configuration
/// (WRN-16-2, source batch 32 + target 96, 200 steps per epoch); <see cref="Paper"/> is the reference's
/// (WRN-28-2, 64 + 192, Keras BatchNorm, lr 0.03 with cosine decay, 100 epochs of the full zipped stream).
/// Written into <c>results.json</c>.
/// </summary>
public sealed record AdaMatchConfig
{
    /// <summary>Labelled source dataset id (<see cref="Data.DataLocator"/>): mnist, or mnist-subset for quick runs.</summary>
    public string Source { get; init; } = "mnist";
    /// <summary>Unlabelled target dataset id: any 10-class 3×32×32 dataset the locator knows (svhn, syndigits).</summary>
    public string Target { get; init; } = "syndigits";
    /// <summary>Model name <c>wrn-D-K</c>.</summary>
    public string Model { get; init; } = "wrn-16-2";
    /// <summary>Spec of every internal norm of the network.</summary>
    public string Norm { get; init; } = CpuBatchNorm;
    /// <summary>
    /// Norm on the raw 0–255 input (the paper's AdaMatch+UAN: <c>uan:k=2</c>; <c>std</c>: fixed per-channel
    /// standardisation with the source training set's statistics, <see cref="InputStandardization"/>), or null to scale
    /// by 1/255.
    /// </summary>
    public string? InputNorm { get; init; }
    /// <summary>Epochs.</summary>
    public int Epochs { get; init; } = 10;
    /// <summary>Steps per epoch, capped by the shorter of the two streams; null = the whole zipped stream (as the reference).</summary>
    // Written even when null: the results files omit nulls, and a missing value would read back as the default 200.
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public int? StepsPerEpoch { get; init; } = 200;
    /// <summary>Labelled source images per step (the paper: 64); each also appears strongly augmented.</summary>
    public int SourceBatch { get; init; } = 32;
    /// <summary>Target images per step = multiplier × source batch (the paper: 3).</summary>
    public int TargetMultiplier { get; init; } = 3;
    /// <summary>
    /// Initial Adam learning rate of the cosine decay. The paper's 0.03 is kept in <see cref="Paper"/>; the CPU default
    /// is 0.003 because at 0.03 the very first Adam step (every weight moves by about the learning rate) makes the
    /// eval-mode second pass, which still uses the running statistics from before that step, return logits in the
    /// thousands (mean |logit| about 8,000 against 1 before): the loss and the gradient norm jump about 2,000-fold
    /// and the network stays at chance for the rest of the epoch (measured with <c>uan adapt --step-log</c>, README
    /// "Domain adaptation").
    /// </summary>
    public double LearningRate { get; init; } = 0.003;
    /// <summary>Floor of the cosine decay as a fraction of the initial rate (Keras' alpha; the paper: 0.25).</summary>
    public double LrAlpha { get; init; } = 0.25;
    /// <summary>
    /// Horizon T of the cosine decay and of the warm-up μ(t), in steps; null = the whole run (epochs × steps per
    /// epoch), or with <see cref="Compat"/> the reference's 10 epochs of source batches, 10·(N_source / batch).
    /// </summary>
    public long? HorizonSteps { get; init; }
    /// <summary>Relative confidence factor τ.</summary>
    public double Tau { get; init; } = AdaMatchMath.DefaultTau;
    /// <summary>
    /// Which AdaMatch: <see cref="AdaMatchVariants.Official"/> (default; google-research/adamatch,
    /// domain_adaptation/adamatch.py), <see cref="AdaMatchVariants.Keras"/> (the Keras example as this project followed
    /// it before the variants existed) or <see cref="AdaMatchVariants.Compat"/> (the Keras example with the reference
    /// notebook's deviations, <see cref="CompatNotes"/>). What each does: <see cref="AdaMatchVariants"/>.
    /// </summary>
    public string Variant { get; init; } = AdaMatchVariants.Official;
    /// <summary>True for <see cref="AdaMatchVariants.Compat"/>: the reference notebook's alignment and horizon.</summary>
    [JsonIgnore]
    public bool Compat => Variant == AdaMatchVariants.Compat;
    /// <summary>True for <see cref="AdaMatchVariants.Official"/>.</summary>
    [JsonIgnore]
    public bool Official => Variant == AdaMatchVariants.Official;
    /// <summary>Weak augmentation = random horizontal flip (the reference's); false = no weak augmentation.</summary>
    public bool WeakFlip { get; init; } = true;
    /// <summary>RandAugment operations per image of the strong augmentation.</summary>
    public int StrongOps { get; init; } = 2;
    /// <summary>RandAugment magnitude in [0, 1].</summary>
    public double StrongMagnitude { get; init; } = 0.5;
    /// <summary>Stratified limit on the source training images, or null for all.</summary>
    public int? SourceLimit { get; init; }
    /// <summary>Limit on the target training images (stratified by the unused labels), or null for all.</summary>
    public int? TargetLimit { get; init; }
    /// <summary>Stratified limit on each test set, or null for all.</summary>
    public int? TestLimit { get; init; }
    /// <summary>Batch size of the per-epoch evaluation.</summary>
    public int EvalBatch { get; init; } = 128;
    /// <summary>Seed for weights, data order, augmentation and interpolation.</summary>
    public int Seed { get; init; } = 1;
    /// <summary>Torch device string.</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>Intra-op threads for libtorch; null leaves libtorch's default.</summary>
    public int? Threads { get; init; }

    /// <summary>BatchNorm of the CPU default: Keras' ε with torch's momentum, so short runs get usable running averages.</summary>
    public const string CpuBatchNorm = "bn:eps=1e-3,momentum=0.1";

    /// <summary>The reference configuration (spec §4.3), for machines that can afford it.</summary>
    public static AdaMatchConfig Paper { get; } = new()
    {
        Model = "wrn-28-2", Norm = ShallowCnn.KerasBatchNorm, Epochs = 100, StepsPerEpoch = null, SourceBatch = 64,
        TargetMultiplier = 3, LearningRate = 0.03, LrAlpha = 0.25, EvalBatch = 192,
    };

    /// <summary>Target images per step.</summary>
    public int TargetBatch => SourceBatch * TargetMultiplier;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid field.</summary>
    public void Validate()
    {
        if (ModelFactory.ParseWideResNet(Model) is null)
            throw new ArgumentException($"AdaMatch: model must be wrn-D-K (wrn-16-2, wrn-28-2), got '{Model}'");
        Norms.Parse(Norm);
        if (InputNorm is not null) InputNorms.Parse(InputNorm);
        if (Epochs <= 0) throw new ArgumentException($"epochs must be positive, got {Epochs}");
        if (StepsPerEpoch is <= 0) throw new ArgumentException($"steps per epoch must be positive, got {StepsPerEpoch}");
        if (SourceBatch <= 0) throw new ArgumentException($"source batch must be positive, got {SourceBatch}");
        if (TargetMultiplier <= 0) throw new ArgumentException($"target multiplier must be positive, got {TargetMultiplier}");
        if (!(LearningRate > 0) || !double.IsFinite(LearningRate)) throw new ArgumentException($"learning rate must be positive, got {LearningRate}");
        if (!(LrAlpha >= 0 && LrAlpha <= 1)) throw new ArgumentException($"lr alpha must lie in [0, 1], got {LrAlpha}");
        if (HorizonSteps is <= 0) throw new ArgumentException($"horizon must be positive, got {HorizonSteps}");
        if (!(Tau >= 0 && Tau <= 1)) throw new ArgumentException($"tau must lie in [0, 1], got {Tau}");
        if (StrongOps <= 0) throw new ArgumentException($"strong ops must be positive, got {StrongOps}");
        if (!(StrongMagnitude >= 0 && StrongMagnitude <= 1)) throw new ArgumentException($"strong magnitude must lie in [0, 1], got {StrongMagnitude}");
        if (SourceLimit is <= 0 || TargetLimit is <= 0 || TestLimit is <= 0) throw new ArgumentException("limits must be positive");
        if (EvalBatch <= 0) throw new ArgumentException($"eval batch must be positive, got {EvalBatch}");
        if (Threads is <= 0) throw new ArgumentException($"threads must be positive, got {Threads}");
        if (!AdaMatchVariants.All.Contains(Variant))
            throw new ArgumentException($"variant must be one of {string.Join(", ", AdaMatchVariants.All)}, got '{Variant}'");
    }

    /// <summary>What <see cref="Compat"/> changes, and what it does not reproduce, one line each.</summary>
    public static IReadOnlyList<string> CompatNotes { get; } =
    [
        "distribution alignment ratio = mean(p_src_w) / mean(p_tgt_w) over all elements (always 1: no alignment)",
        "pseudo-labels L2-normalised (not L1) and used unnormalised in the target cross-entropy",
        "lr decay and warm-up horizon T = 10 epochs of source batches, 10·(N_source / batch), whatever the run length",
        "not reproduced: the declared but ineffective L2 regularisation is absent (as its effect); UAN's " +
        "reference EMA in eval needs --input-norm uan:k=2,mode=compat,compat-eval=true, and then only the last forward's " +
        "statistics of a step are applied; the reference's separate weak/strong shuffles are one shared order here",
    ];
}

/// <summary>Loss, accuracy and macro precision / recall / F1 on one test set.</summary>
public sealed record DomainMetrics
{
    /// <summary>Mean cross-entropy.</summary>
    public double Loss { get; init; }
    /// <summary>Top-1 accuracy.</summary>
    public double Accuracy { get; init; }
    /// <summary>Macro precision (scikit-learn's average='macro').</summary>
    public double Precision { get; init; }
    /// <summary>Macro recall.</summary>
    public double Recall { get; init; }
    /// <summary>Macro F1 (per-class F1, then the mean).</summary>
    public double F1 { get; init; }
    /// <summary>Images evaluated.</summary>
    public long Count { get; init; }

    /// <summary>The summary of an accumulator.</summary>
    public static DomainMetrics From(ClassificationMetrics m)
    {
        var (p, r, f) = m.Macro();
        return new DomainMetrics { Loss = m.Loss, Accuracy = m.Accuracy, Precision = p, Recall = r, F1 = f, Count = m.Count };
    }
}

/// <summary>One finished AdaMatch epoch: training averages and both test sets, measured in eval mode after the epoch.</summary>
public sealed record AdaMatchEpoch
{
    /// <summary>1-based epoch.</summary>
    public int Epoch { get; init; }
    /// <summary>Learning rate of the epoch's last step.</summary>
    public double LearningRate { get; init; }
    /// <summary>μ(t) of the epoch's last step.</summary>
    public double Warmup { get; init; }
    /// <summary>Mean total loss over the epoch's steps.</summary>
    public double TrainLoss { get; init; }
    /// <summary>Mean source loss (official: ½·(weak + strong cross-entropy); keras, compat: their sum).</summary>
    public double SourceLoss { get; init; }
    /// <summary>Mean (masked) target loss.</summary>
    public double TargetLoss { get; init; }
    /// <summary>Mean fraction of target images that passed the confidence threshold.</summary>
    public double MaskRate { get; init; }
    /// <summary>Accuracy of the interpolated weak-source logits during training.</summary>
    public double SourceTrainAccuracy { get; init; }
    /// <summary>Source test set (MNIST test, padded and tiled).</summary>
    public DomainMetrics SourceTest { get; init; } = new();
    /// <summary>Target test set.</summary>
    public DomainMetrics TargetTest { get; init; } = new();
    /// <summary>Wall seconds of the training steps.</summary>
    public double TrainSeconds { get; init; }
    /// <summary>Wall seconds of the evaluation.</summary>
    public double EvalSeconds { get; init; }
    /// <summary>Mean wall seconds per training step (data preparation included).</summary>
    public double SecondsPerStep { get; init; }
    /// <summary>
    /// The machine's 1-minute load average when the epoch ended (Linux), or null (and in results files from before
    /// it was recorded): the context of its wall times.
    /// </summary>
    public double? LoadAverage { get; init; }
}

/// <summary>
/// The contents of an AdaMatch run folder's <c>results.json</c>, the run's commit record: replaced atomically after
/// the epoch's checkpoint is staged (see <see cref="RunFolder"/>), with the fields and JSON conventions every results
/// file shares (<see cref="RunRecord"/>).
/// </summary>
public sealed record AdaMatchResults : RunRecord
{
    /// <summary>The run's configuration.</summary>
    public AdaMatchConfig Config { get; init; } = new();
    /// <summary>Kind marker, so reports can tell these files from classification runs.</summary>
    public string Kind { get; init; } = "adamatch";
    /// <summary>Steps per epoch actually used.</summary>
    public long StepsPerEpoch { get; init; }
    /// <summary>Horizon T actually used.</summary>
    public long HorizonSteps { get; init; }
    /// <summary>Finished epochs, in order.</summary>
    public List<AdaMatchEpoch> Epochs { get; init; } = [];

    /// <summary>True when <paramref name="path"/> is a results file written by AdaMatch (its <c>kind</c> is "adamatch").</summary>
    public static bool IsAdaMatchFile(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.ValueKind == JsonValueKind.Object &&
                   doc.RootElement.TryGetProperty("kind", out var kind) && kind.ValueKind == JsonValueKind.String &&
                   kind.GetString() == "adamatch";
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Reads a results file (or the one in a run folder); the error names the file when it is not valid.</summary>
    public static AdaMatchResults Load(string path)
    {
        var results = Load<AdaMatchResults>(path, "AdaMatch results file");
        string file = Directory.Exists(path) ? Path.Combine(path, FileName) : path;
        return WithLegacyVariant(results, File.ReadAllText(file));
    }

    /// <summary>
    /// A results file written before the variants existed has no <c>config.variant</c>: its run was the Keras example
    /// (<c>"compat": true</c>: the compat variant), not the official default it would otherwise read back as.
    /// </summary>
    internal static AdaMatchResults WithLegacyVariant(AdaMatchResults results, string json)
    {
        using var doc = JsonDocument.Parse(json);
        if (!doc.RootElement.TryGetProperty("config", out var config) || config.ValueKind != JsonValueKind.Object ||
            config.TryGetProperty("variant", out _))
            return results;
        bool compat = config.TryGetProperty("compat", out var c) && c.ValueKind == JsonValueKind.True;
        return results with { Config = results.Config with { Variant = compat ? AdaMatchVariants.Compat : AdaMatchVariants.Keras } };
    }
}

/// <summary>
/// The three AdaMatch variants of <see cref="AdaMatchConfig.Variant"/>. All share the data, the augmentations, the
/// model, the Adam optimiser with Keras' cosine decay, the relative confidence threshold τ and the warm-up μ(t).
/// <list type="bullet">
/// <item><see cref="Official"/>: google-research/adamatch, domain_adaptation/adamatch.py, <c>loss_function</c> (lines
/// 60–99): a train-mode pass on the source images alone whose BatchNorm statistics are restored (lines 62–64), a
/// train-mode pass on source + target that updates them (lines 65–66), λ on the source-only logits (line 68),
/// distribution alignment with an EMA (0.999) of the source class distribution and the mean of the last 128 target
/// batches' (lines 49–50, 79–82, ε = 1e-6), hard pseudo-labels (line 87), source loss ½·(CE_weak + CE_strong) (lines
/// 85–86), L2 weight decay 0.001·½Σ‖w‖² on conv and dense weights (lines 89, 91, 159), evaluation of an EMA (0.999)
/// of the weights (line 41, 57–58, 110); see <see cref="AdaMatchMath"/>.</item>
/// <item><see cref="Keras"/>: the Keras example: second pass on the source images in eval mode, per-batch alignment
/// ratio of the class means (with ε = 1e-6), soft pseudo-labels, source loss CE_weak + CE_strong, no weight decay,
/// evaluation of the trained weights.</item>
/// <item><see cref="Compat"/>: <see cref="Keras"/> with the reference notebook's deviations
/// (<see cref="AdaMatchConfig.CompatNotes"/>).</item>
/// </list>
/// </summary>
public static class AdaMatchVariants
{
    /// <summary>The official AdaMatch (default).</summary>
    public const string Official = "official";
    /// <summary>The Keras example.</summary>
    public const string Keras = "keras";
    /// <summary>The Keras example with the reference notebook's deviations.</summary>
    public const string Compat = "compat";
    /// <summary>All variants, default first.</summary>
    public static IReadOnlyList<string> All { get; } = [Official, Keras, Compat];
}
