using Uan.Lab.Data;

namespace Uan.Lab.Training;

/// <summary>
/// The three splits of a run and the pipelines that turn their uint8 images into network input, built from a
/// <see cref="RunConfig"/>: validation = the last <see cref="RunConfig.ValidationFraction"/> of the training file (as
/// Keras' validation_split), or with <see cref="RunConfig.Subset"/> a stratified subset of the training file split
/// into stratified training and validation parts; optional stratified limits on the training and test sets (drawn with a fixed seed, so
/// every run of a comparison sees the same images), standardisation statistics from the training split only (the
/// paper took them over the whole training file, validation part included), ImageNet's for Tiny ImageNet.
/// </summary>
public sealed class ExperimentData : IDisposable
{
    /// <summary>Seed of the stratified subsets; fixed so that all seeds and norms of a grid share the same images.</summary>
    public const int SubsetSeed = 20241125;

    private ExperimentData(ImageDataset train, ImageDataset validation, ImageDataset test, ChannelStats stats,
        DataPipeline trainPipeline, DataPipeline evalPipeline, int imageSize)
    {
        Train = train;
        Validation = validation;
        Test = test;
        Stats = stats;
        TrainPipeline = trainPipeline;
        EvalPipeline = evalPipeline;
        ImageSize = imageSize;
    }

    /// <summary>Training split.</summary>
    public ImageDataset Train { get; }
    /// <summary>Validation split (the last part of the training file).</summary>
    public ImageDataset Validation { get; }
    /// <summary>Test split (the official test file).</summary>
    public ImageDataset Test { get; }
    /// <summary>Per-channel mean and std of the training split on the 0–255 scale.</summary>
    public ChannelStats Stats { get; }
    /// <summary>Standardise, resize, and (when enabled) augment.</summary>
    public DataPipeline TrainPipeline { get; }
    /// <summary>Standardise and resize.</summary>
    public DataPipeline EvalPipeline { get; }
    /// <summary>Side of the square network input.</summary>
    public int ImageSize { get; }
    /// <summary>Number of classes.</summary>
    public int NumClasses => Train.NumClasses;
    /// <summary>Image channels.</summary>
    public int InChannels => Train.Channels;

    /// <summary>Loads and splits the dataset named by <paramref name="config"/>.</summary>
    public static ExperimentData Load(RunConfig config, DataLocator locator)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.ValidationFraction is <= 0 or >= 1)
            throw new ArgumentException($"validation fraction must be in (0, 1), got {config.ValidationFraction}");
        using var full = locator.Load(config.Dataset, train: true);
        using var testFull = locator.Load(config.Dataset, train: false);
        if (config.Subset is not null && config.TrainLimit is not null)
            throw new ArgumentException("a subset and a train limit exclude each other; give one");
        ImageDataset train, validation;
        if (config.Subset is int subset)
        {
            if (subset < 2 || subset > full.Count)
                throw new ArgumentException($"the subset of the training file (--subset, --train-limit) must lie in [2, {full.Count}] for {config.Dataset}, got {subset}");
            using var pool = full.StratifiedSubset(subset, SubsetSeed);
            (train, validation) = pool.StratifiedSplit(config.ValidationFraction, SubsetSeed);
        }
        else (train, validation) = full.SplitLast(config.ValidationFraction);
        if (config.TrainLimit is int n && n < train.Count)
        {
            if (n <= 0) throw new ArgumentException($"train limit must be positive, got {n}");
            var limited = train.StratifiedSubset(n, SubsetSeed);
            train.Dispose();
            train = limited;
        }
        var test = config.TestLimit is int t && t < testFull.Count
            ? testFull.StratifiedSubset(t > 0 ? t : throw new ArgumentException($"test limit must be positive, got {t}"), SubsetSeed)
            : testFull.Range(0, testFull.Count);

        int native = train.Height;
        if (train.Width != native) throw new DataFormatException(config.Dataset, $"images are {train.Height}×{train.Width}; only square images are supported");
        int size = config.ImageSize ?? native;
        if (size <= 0) throw new ArgumentException($"image size must be positive, got {size}");
        // Tiny ImageNet: the paper's pipeline scales by 1/255 and uses the ImageNet statistics (spec §4.1).
        var stats = config.Dataset == "tiny-imagenet" ? ChannelStats.ImageNet : ChannelStats.Compute(train);
        var common = new List<BatchTransform> { new Standardize(stats) };
        if (size != native) common.Add(new Resize(size, size));
        var training = new List<BatchTransform>(common);
        if (config.Augment) training.AddRange(Augmentation(config.Model, config.Dataset));
        return new ExperimentData(train, validation, test, stats, new DataPipeline([.. training]), new DataPipeline([.. common]), size);
    }

    /// <summary>
    /// The paper's augmentations per model (§4.1 flip, ±7.2° rotation, ±20% zoom; §4.2 ±10% shifts and flip), except
    /// that digits (MNIST, the synthetic digits) are not mirrored: a flipped digit is another shape, not the same class
    /// seen differently. SVHN keeps the paper's flip.
    /// </summary>
    public static IReadOnlyList<BatchTransform> Augmentation(string model, string dataset)
    {
        bool digits = dataset is "mnist" or "mnist-subset" or "syndigits";
        var list = new List<BatchTransform>();
        if (model.StartsWith("densenet", StringComparison.Ordinal))
        {
            list.Add(RandomAffine.Shift(0.1, 0.1));
            if (!digits) list.Add(new RandomHorizontalFlip());
            return list;
        }
        if (!digits) list.Add(new RandomHorizontalFlip());
        list.Add(RandomAffine.Rotation(0.02));
        list.Add(RandomAffine.Zoom(0.2, 0.2));
        return list;
    }

    /// <summary>Releases the three splits.</summary>
    public void Dispose()
    {
        Train.Dispose();
        Validation.Dispose();
        Test.Dispose();
    }
}
