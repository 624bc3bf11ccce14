using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Uan.Lab.Data;

/// <summary>
/// A transform of a whole float32 batch [B, C, H, W] done with tensor ops. Random transforms draw every choice from
/// the generator they are given, so a seeded generator reproduces a batch exactly. The result may be the input itself
/// when the transform has nothing to do; callers manage lifetimes with dispose scopes.
/// </summary>
public abstract class BatchTransform
{
    /// <summary>True for augmentations that run in training only (Keras' random preprocessing layers).</summary>
    public virtual bool TrainingOnly => false;

    /// <summary>Transforms <paramref name="batch"/> (float32 [B, C, H, W]).</summary>
    public abstract Tensor Apply(Tensor batch, Generator generator);

    /// <summary>Uniform samples in [<paramref name="low"/>, <paramref name="high"/>), float32 [n].</summary>
    protected static Tensor Uniform(long n, double low, double high, Generator generator) =>
        rand([n], ScalarType.Float32, generator: generator) * (high - low) + low;

    internal static void RequireBatch(Tensor x)
    {
        if (x.dim() != 4 || !x.is_floating_point())
            throw new ArgumentException($"expected a float batch [B, C, H, W], got {x.dtype} [{string.Join(", ", x.shape)}]");
    }
}

/// <summary>Per-channel standardisation x ← (x − mean) / std, with statistics on the 0–255 scale.</summary>
public sealed class Standardize : BatchTransform
{
    /// <summary>Uses <paramref name="stats"/> (usually computed on the training set).</summary>
    public Standardize(ChannelStats stats)
    {
        Stats = stats ?? throw new ArgumentNullException(nameof(stats));
        if (stats.Std.Any(s => !(s > 0)))
            throw new ArgumentException("every channel std must be positive", nameof(stats));
    }

    /// <summary>The statistics applied.</summary>
    public ChannelStats Stats { get; }

    /// <inheritdoc />
    public override Tensor Apply(Tensor batch, Generator generator)
    {
        RequireBatch(batch);
        if (batch.shape[1] != Stats.Channels)
            throw new ArgumentException($"batch has {batch.shape[1]} channels, statistics have {Stats.Channels}");
        var mean = tensor(Stats.Mean.Select(v => (float)v).ToArray()).view(1, -1, 1, 1);
        var std = tensor(Stats.Std.Select(v => (float)v).ToArray()).view(1, -1, 1, 1);
        return (batch - mean) / std;
    }
}

/// <summary>
/// Bilinear resize with half-pixel centres and no antialiasing (<c>interpolate(bilinear, align_corners: false)</c>),
/// which is what Keras' <c>Resizing</c> layer does. Always active, also at test time.
/// </summary>
public sealed class Resize(int height, int width) : BatchTransform
{
    /// <summary>Target height.</summary>
    public int Height { get; } = height > 0 ? height : throw new ArgumentOutOfRangeException(nameof(height));

    /// <summary>Target width.</summary>
    public int Width { get; } = width > 0 ? width : throw new ArgumentOutOfRangeException(nameof(width));

    /// <inheritdoc />
    public override Tensor Apply(Tensor batch, Generator generator)
    {
        RequireBatch(batch);
        if (batch.shape[2] == Height && batch.shape[3] == Width) return batch;
        return F.interpolate(batch, [Height, Width], mode: InterpolationMode.Bilinear, align_corners: false);
    }
}

/// <summary>Mirrors each image left–right with probability <paramref name="probability"/>, independently.</summary>
public sealed class RandomHorizontalFlip(double probability = 0.5) : BatchTransform
{
    /// <summary>Probability of flipping an image.</summary>
    public double Probability { get; } = probability is >= 0 and <= 1 ? probability : throw new ArgumentOutOfRangeException(nameof(probability));

    /// <inheritdoc />
    public override bool TrainingOnly => true;

    /// <inheritdoc />
    public override Tensor Apply(Tensor batch, Generator generator)
    {
        RequireBatch(batch);
        var flip = rand([batch.shape[0]], ScalarType.Float32, generator: generator).lt(Probability).view(-1, 1, 1, 1);
        return where(flip, batch.flip(3), batch);
    }
}

/// <summary>
/// Random rotation, zoom and shift, sampled per image and applied in one batched <c>affine_grid</c> +
/// <c>grid_sample</c> (bilinear). Keras conventions: a rotation factor f gives angles uniform in ±f·2π (counter-
/// clockwise positive); zoom factors give independent height and width sampling scales uniform in 1 ± factor (> 1
/// zooms out); shifts are uniform fractions of the width/height. Fill: reflection (Keras 'reflect', d c b a | a b c d)
/// or border (Keras 'nearest').
/// </summary>
public sealed class RandomAffine : BatchTransform
{
    /// <summary>Creates an affine augmentation; any range may be zero.</summary>
    public RandomAffine(double rotationFactor = 0, double zoomHeight = 0, double zoomWidth = 0, double shiftHeight = 0, double shiftWidth = 0,
        GridSamplePaddingMode fill = GridSamplePaddingMode.Reflection)
    {
        if (rotationFactor < 0 || zoomHeight < 0 || zoomWidth < 0 || shiftHeight < 0 || shiftWidth < 0)
            throw new ArgumentOutOfRangeException(nameof(rotationFactor), "ranges must be non-negative");
        if (zoomHeight >= 1 || zoomWidth >= 1)
            throw new ArgumentOutOfRangeException(nameof(zoomHeight), "zoom factors must be below 1");
        RotationFactor = rotationFactor;
        ZoomHeight = zoomHeight;
        ZoomWidth = zoomWidth;
        ShiftHeight = shiftHeight;
        ShiftWidth = shiftWidth;
        Fill = fill;
    }

    /// <summary>Keras <c>RandomRotation(factor)</c>: angles uniform in ±factor·2π, reflection fill.</summary>
    public static RandomAffine Rotation(double factor) => new(rotationFactor: factor);

    /// <summary>Keras <c>RandomZoom(height, width)</c>: independent scales uniform in 1 ± factor, reflection fill.</summary>
    public static RandomAffine Zoom(double heightFactor, double widthFactor) => new(zoomHeight: heightFactor, zoomWidth: widthFactor);

    /// <summary>
    /// Keras <c>ImageDataGenerator(width_shift_range, height_shift_range)</c>: continuous shifts uniform in ±fraction
    /// of the size, fill 'nearest' (border), bilinear (order 1).
    /// </summary>
    public static RandomAffine Shift(double heightFraction, double widthFraction) =>
        new(shiftHeight: heightFraction, shiftWidth: widthFraction, fill: GridSamplePaddingMode.Border);

    /// <summary>Rotation range as a fraction of a full turn.</summary>
    public double RotationFactor { get; }

    /// <summary>Height zoom range.</summary>
    public double ZoomHeight { get; }

    /// <summary>Width zoom range.</summary>
    public double ZoomWidth { get; }

    /// <summary>Vertical shift range, as a fraction of the height.</summary>
    public double ShiftHeight { get; }

    /// <summary>Horizontal shift range, as a fraction of the width.</summary>
    public double ShiftWidth { get; }

    /// <summary>How samples outside the image are filled.</summary>
    public GridSamplePaddingMode Fill { get; }

    /// <inheritdoc />
    public override bool TrainingOnly => true;

    /// <inheritdoc />
    public override Tensor Apply(Tensor batch, Generator generator)
    {
        RequireBatch(batch);
        long b = batch.shape[0];
        double maxAngle = RotationFactor * 2 * Math.PI;
        // Every parameter is drawn even when its range is zero, so the generator's stream (and hence later draws)
        // does not depend on which ranges are set.
        var angle = Uniform(b, -maxAngle, maxAngle, generator);
        var zoomH = Uniform(b, 1 - ZoomHeight, 1 + ZoomHeight, generator);
        var zoomW = Uniform(b, 1 - ZoomWidth, 1 + ZoomWidth, generator);
        var dy = Uniform(b, -ShiftHeight, ShiftHeight, generator) * batch.shape[2];
        var dx = Uniform(b, -ShiftWidth, ShiftWidth, generator) * batch.shape[3];
        return Warp(batch, angle, zoomH, zoomW, dy, dx, Fill);
    }

    /// <summary>
    /// Warps each image n: rotation by <paramref name="angle"/>[n] radians (counter-clockwise as displayed), sampling
    /// scales <paramref name="zoomHeight"/>[n] / <paramref name="zoomWidth"/>[n] about the centre (&gt; 1 zooms out),
    /// then a shift of the content by <paramref name="shiftY"/>[n] rows and <paramref name="shiftX"/>[n] columns.
    /// Output pixel p samples the input at R·Z·p − shift (in centred pixel units); bilinear, align_corners false.
    /// </summary>
    public static Tensor Warp(Tensor batch, Tensor angle, Tensor zoomHeight, Tensor zoomWidth, Tensor shiftY, Tensor shiftX,
        GridSamplePaddingMode fill = GridSamplePaddingMode.Reflection)
    {
        RequireBatch(batch);
        long b = batch.shape[0], h = batch.shape[2], w = batch.shape[3];
        using var scope = NewDisposeScope();
        var dt = batch.dtype;
        Tensor P(Tensor t) => t.to(dt).reshape(b);
        var c = P(angle).cos();
        var s = P(angle).sin();
        var zh = P(zoomHeight);
        var zw = P(zoomWidth);
        double hw = (double)h / w, wh = (double)w / h;
        // affine_grid works in normalised coordinates ([-1, 1] on each axis); a rotation in pixel space becomes
        // [[c, -s·H/W], [s·W/H, c]] there, and the zoom scales the output coordinates before it.
        var row0 = stack([c * zw, -s * zh * hw, P(shiftX) * (-2.0 / w)], 1);
        var row1 = stack([s * zw * wh, c * zh, P(shiftY) * (-2.0 / h)], 1);
        var theta = stack([row0, row1], 1);
        var grid = F.affine_grid(theta, [b, batch.shape[1], h, w], align_corners: false);
        return F.grid_sample(batch, grid, GridSampleMode.Bilinear, fill, align_corners: false).MoveToOuterDisposeScope();
    }
}

/// <summary>How a 28×28 MNIST digit becomes a 32×32 image (§4.3).</summary>
public enum MnistTo32Mode
{
    /// <summary>Zero-pad 2 pixels on each side (the spec's reading of the reference pipeline).</summary>
    ZeroPad,

    /// <summary>
    /// TensorFlow's <c>tf.image.resize_with_pad</c> semantics: scale to fit keeping the aspect ratio (bilinear,
    /// half-pixel, no antialias), then zero-pad to the target. For a square 28×28 digit this is a plain 28→32 resize.
    /// </summary>
    ResizeWithPad,
}

/// <summary>
/// Brings images to <paramref name="size"/>×<paramref name="size"/> by zero padding (or TF resize_with_pad) and tiles a
/// single channel to <paramref name="channels"/>; values stay on the 0–255 scale. MNIST → SVHN geometry (§4.3).
/// </summary>
public sealed class PadAndTile(int size = 32, int channels = 3, MnistTo32Mode mode = MnistTo32Mode.ZeroPad) : BatchTransform
{
    /// <summary>Target side.</summary>
    public int Size { get; } = size > 0 ? size : throw new ArgumentOutOfRangeException(nameof(size));

    /// <summary>Target channel count.</summary>
    public int Channels { get; } = channels > 0 ? channels : throw new ArgumentOutOfRangeException(nameof(channels));

    /// <summary>Padding or resize-then-pad.</summary>
    public MnistTo32Mode Mode { get; } = mode;

    /// <inheritdoc />
    public override Tensor Apply(Tensor batch, Generator generator)
    {
        RequireBatch(batch);
        long c = batch.shape[1];
        double h = batch.shape[2], w = batch.shape[3];
        if (Mode == MnistTo32Mode.ZeroPad && (h > Size || w > Size))
            throw new ArgumentException($"images of {h}×{w} do not fit in {Size}×{Size} without resizing");
        var x = batch;
        if (Mode == MnistTo32Mode.ResizeWithPad)
        {
            // tf.image.resize_with_pad: ratio = max(w / W, h / H); resized = floor(size / ratio); centred padding.
            double ratio = Math.Max(w / Size, h / Size);
            long rh = (long)Math.Floor(h / ratio), rw = (long)Math.Floor(w / ratio);
            if (rh != (long)h || rw != (long)w)
                x = F.interpolate(x, [rh, rw], mode: InterpolationMode.Bilinear, align_corners: false);
            h = rh;
            w = rw;
        }
        long top = (long)Math.Floor((Size - h) / 2), left = (long)Math.Floor((Size - w) / 2);
        long bottom = Size - (long)h - top, right = Size - (long)w - left;
        if (top != 0 || left != 0 || bottom != 0 || right != 0)
            x = F.pad(x, [left, right, top, bottom], PaddingModes.Constant, 0);
        if (c == Channels) return x;
        if (c != 1)
            throw new ArgumentException($"cannot tile {c} channels to {Channels}");
        return x.repeat(1, Channels, 1, 1);
    }
}
