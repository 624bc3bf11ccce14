using Uan.Lab.Data;
using Uan.Lab.Training;

namespace Uan.Lab.Adaptation;

/// <summary>
/// The four splits of an AdaMatch run and the pipelines that make network input from them, all on the 0–255 scale
/// (the network rescales or normalises its own input, see <see cref="Models.WideResNet"/>). Source images are brought
/// to the target's geometry by zero padding and channel tiling (MNIST 28×28×1 → 32×32×3, spec §4.3). The weak
/// augmentation is the reference's random horizontal flip, which on digits is questionable (a mirrored 2 is not a
/// 2) and can be switched off; the strong augmentation is <see cref="RandAugment"/> on the unflipped image.
/// </summary>
public sealed class AdaMatchData : IDisposable
{
    /// <summary>Wraps already loaded splits (ownership passes to this object); used directly by tests.</summary>
    public AdaMatchData(ImageDataset sourceTrain, ImageDataset sourceTest, ImageDataset targetTrain, ImageDataset targetTest,
        bool weakFlip = true, int strongOps = 2, double strongMagnitude = 0.5)
    {
        SourceTrain = sourceTrain ?? throw new ArgumentNullException(nameof(sourceTrain));
        SourceTest = sourceTest ?? throw new ArgumentNullException(nameof(sourceTest));
        TargetTrain = targetTrain ?? throw new ArgumentNullException(nameof(targetTrain));
        TargetTest = targetTest ?? throw new ArgumentNullException(nameof(targetTest));
        if (sourceTrain.NumClasses != targetTrain.NumClasses)
            throw new ArgumentException(
                $"source {sourceTrain.Name} has {sourceTrain.NumClasses} classes, target {targetTrain.Name} {targetTrain.NumClasses}");
        if (targetTrain.Height != targetTrain.Width)
            throw new ArgumentException($"target images must be square, got {targetTrain.Height}×{targetTrain.Width}");
        if (sourceTrain.Height > targetTrain.Height || sourceTrain.Width > targetTrain.Width)
            throw new ArgumentException(
                $"source images ({sourceTrain.Height}×{sourceTrain.Width}) must fit in the target's ({targetTrain.Height}×{targetTrain.Width})");
        if (sourceTrain.Channels != targetTrain.Channels && sourceTrain.Channels != 1)
            throw new ArgumentException($"cannot tile {sourceTrain.Channels} source channels to {targetTrain.Channels}");
        ImageSize = targetTrain.Height;
        Channels = targetTrain.Channels;
        var geometry = new PadAndTile(ImageSize, Channels);
        SourceBase = new DataPipeline(geometry);
        TargetBase = DataPipeline.Identity;
        Weak = weakFlip ? new DataPipeline(new RandomHorizontalFlip()) : DataPipeline.Identity;
        Strong = new DataPipeline(new RandAugment(strongOps, strongMagnitude));
    }

    /// <summary>Labelled source training images (native geometry, uint8).</summary>
    public ImageDataset SourceTrain { get; }
    /// <summary>Source test images.</summary>
    public ImageDataset SourceTest { get; }
    /// <summary>Target training images (labels unused in training).</summary>
    public ImageDataset TargetTrain { get; }
    /// <summary>Target test images.</summary>
    public ImageDataset TargetTest { get; }
    /// <summary>Side of the network input (the target's).</summary>
    public int ImageSize { get; }
    /// <summary>Channels of the network input (the target's).</summary>
    public int Channels { get; }
    /// <summary>Number of classes.</summary>
    public int NumClasses => SourceTrain.NumClasses;
    /// <summary>Source geometry: zero pad and tile to the target's size and channels.</summary>
    public DataPipeline SourceBase { get; }
    /// <summary>Target geometry: none.</summary>
    public DataPipeline TargetBase { get; }
    /// <summary>Weak augmentation (flip, or nothing).</summary>
    public DataPipeline Weak { get; }
    /// <summary>Strong augmentation (RandAugment).</summary>
    public DataPipeline Strong { get; }

    /// <summary>Loads the datasets <paramref name="config"/> names through <paramref name="locator"/> and applies its limits.</summary>
    public static AdaMatchData Load(AdaMatchConfig config, DataLocator locator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(locator);
        var parts = new List<ImageDataset>();
        try
        {
            ImageDataset Limited(string id, bool train, int? limit)
            {
                var full = locator.Load(id, train);
                parts.Add(full);
                if (limit is not int n || n >= full.Count) return full;
                var subset = full.StratifiedSubset(n, ExperimentData.SubsetSeed);
                parts.Add(subset);
                return subset;
            }
            var sourceTrain = Limited(config.Source, true, config.SourceLimit);
            var sourceTest = Limited(config.Source, false, config.TestLimit);
            var targetTrain = Limited(config.Target, true, config.TargetLimit);
            var targetTest = Limited(config.Target, false, config.TestLimit);
            var kept = new[] { sourceTrain, sourceTest, targetTrain, targetTest };
            foreach (var p in parts.Except(kept)) p.Dispose();
            parts.Clear();
            parts.AddRange(kept);
            return new AdaMatchData(sourceTrain, sourceTest, targetTrain, targetTest, config.WeakFlip, config.StrongOps,
                config.StrongMagnitude);
        }
        catch
        {
            foreach (var p in parts) p.Dispose();
            throw;
        }
    }

    /// <summary>Releases the four splits.</summary>
    public void Dispose()
    {
        SourceTrain.Dispose();
        SourceTest.Dispose();
        TargetTrain.Dispose();
        TargetTest.Dispose();
    }
}
