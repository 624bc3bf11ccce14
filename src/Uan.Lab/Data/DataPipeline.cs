using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// An ordered list of batch transforms: converts a uint8 (or float) batch to float32 on the 0–255 scale, then applies
/// each transform; training-only augmentations are skipped when <c>training</c> is false. The factories build the
/// preprocessing of the paper's experiments (spec Part B §4).
/// </summary>
public sealed class DataPipeline
{
    /// <summary>A pipeline of <paramref name="transforms"/>, applied in order.</summary>
    public DataPipeline(params BatchTransform[] transforms)
    {
        ArgumentNullException.ThrowIfNull(transforms);
        if (transforms.Any(t => t is null)) throw new ArgumentException("null transform", nameof(transforms));
        Transforms = transforms.ToArray();
    }

    /// <summary>The transforms, in application order.</summary>
    public IReadOnlyList<BatchTransform> Transforms { get; }

    /// <summary>
    /// Returns a new float32 tensor: <paramref name="images"/> converted and transformed. Random choices come from
    /// <paramref name="generator"/>; the input is never modified.
    /// </summary>
    public Tensor Apply(Tensor images, bool training, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(generator);
        using var scope = NewDisposeScope();
        var x = images.to(ScalarType.Float32, copy: true);
        foreach (var t in Transforms)
        {
            if (t.TrainingOnly && !training) continue;
            x = t.Apply(x, generator);
        }
        return x.MoveToOuterDisposeScope();
    }

    /// <summary>No transform: float32 pixels on the 0–255 scale.</summary>
    public static DataPipeline Identity { get; } = new();

    /// <summary>Per-channel standardisation only.</summary>
    public static DataPipeline Standardized(ChannelStats stats) => new(new Standardize(stats));

    /// <summary>
    /// §4.1 shallow CNN (CIFAR-10/100; Tiny ImageNet with <see cref="ChannelStats.ImageNet"/>): standardise, resize to
    /// <paramref name="resizeTo"/>² (always), then in training a random horizontal flip, a rotation of ±0.02·2π and an
    /// independent height/width zoom of ±20%, each with reflection fill (two resamplings, as Keras' separate layers).
    /// </summary>
    public static DataPipeline ShallowCnn(ChannelStats stats, int resizeTo = 72) => new(
        new Standardize(stats),
        new Resize(resizeTo, resizeTo),
        new RandomHorizontalFlip(),
        RandomAffine.Rotation(0.02),
        RandomAffine.Zoom(0.2, 0.2));

    /// <summary>
    /// §4.2 DenseNet on CIFAR-100: standardise, then in training continuous random shifts of ±10% of width and height
    /// (fill 'nearest', bilinear) and a random horizontal flip.
    /// </summary>
    public static DataPipeline DenseNet(ChannelStats stats) => new(
        new Standardize(stats),
        RandomAffine.Shift(0.1, 0.1),
        new RandomHorizontalFlip());

    /// <summary>
    /// §4.3 MNIST as AdaMatch's source domain: 28×28×1 → 32×32×3 on the 0–255 scale, plus (in training) the weak
    /// augmentation, a random horizontal flip.
    /// </summary>
    public static DataPipeline MnistSource(MnistTo32Mode mode = MnistTo32Mode.ZeroPad) => new(
        new PadAndTile(32, 3, mode),
        new RandomHorizontalFlip());

    /// <summary>§4.3 SVHN as the target domain: raw 0–255 pixels plus (in training) the weak flip.</summary>
    public static DataPipeline SvhnTarget() => new(new RandomHorizontalFlip());
}
