using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Uan.Lab.Data;

/// <summary>The image operations <see cref="RandAugment"/> draws from.</summary>
public enum RandAugmentOp
{
    /// <summary>Stretch each channel to the full 0–255 range.</summary>
    AutoContrast,
    /// <summary>Histogram equalisation per channel.</summary>
    Equalize,
    /// <summary>Invert pixels at or above a threshold of 256·(1 − m).</summary>
    Solarize,
    /// <summary>Keep 8 − round(4m) bits.</summary>
    Posterize,
    /// <summary>Blend with the grayscale image (factor 1 ± 0.9m).</summary>
    Color,
    /// <summary>Blend with the image's mean gray (factor 1 ± 0.9m).</summary>
    Contrast,
    /// <summary>Blend with black (factor 1 ± 0.9m).</summary>
    Brightness,
    /// <summary>Blend with a 3×3 smoothed image, borders kept (factor 1 ± 0.9m).</summary>
    Sharpness,
    /// <summary>Rotate by ±30°·m about the centre.</summary>
    Rotate,
    /// <summary>Horizontal shear ±0.3m.</summary>
    ShearX,
    /// <summary>Vertical shear ±0.3m.</summary>
    ShearY,
    /// <summary>Horizontal shift ±0.3m of the width.</summary>
    TranslateX,
    /// <summary>Vertical shift ±0.3m of the height.</summary>
    TranslateY,
    /// <summary>A gray (128) square of side ½m of the image at a random centre.</summary>
    Cutout,
}

/// <summary>
/// RandAugment-style strong augmentation for AdaMatch (spec Part B §4.3; the reference used keras_cv's RandAugment,
/// two operations per image at magnitude 0.5 on the 0–255 range): for each of <see cref="OpsPerImage"/> layers, every
/// image gets one operation drawn uniformly from <see cref="Ops"/>, at the fixed magnitude with a random sign where an
/// operation has a direction (tf-models' convention). Pixels stay on the 0–255 scale and are clamped after every
/// operation; geometric operations fill with 0 (the MNIST background). All draws come from the generator and their
/// number does not depend on the images, so a seeded generator reproduces a batch exactly.
/// </summary>
public sealed class RandAugment : BatchTransform
{
    /// <summary>Creates the augmentation.</summary>
    /// <param name="opsPerImage">Operations applied to each image, one after the other (2 in the reference).</param>
    /// <param name="magnitude">Strength in [0, 1] (0.5 in the reference).</param>
    /// <param name="ops">The operations to draw from; all of <see cref="RandAugmentOp"/> when null.</param>
    public RandAugment(int opsPerImage = 2, double magnitude = 0.5, IReadOnlyList<RandAugmentOp>? ops = null)
    {
        if (opsPerImage < 1) throw new ArgumentOutOfRangeException(nameof(opsPerImage), opsPerImage, "must be ≥ 1");
        if (!(magnitude >= 0 && magnitude <= 1)) throw new ArgumentOutOfRangeException(nameof(magnitude), magnitude, "must lie in [0, 1]");
        OpsPerImage = opsPerImage;
        Magnitude = magnitude;
        Ops = (ops ?? Enum.GetValues<RandAugmentOp>()).ToArray();
        if (Ops.Count == 0) throw new ArgumentException("no operations", nameof(ops));
    }

    /// <summary>Operations per image.</summary>
    public int OpsPerImage { get; }

    /// <summary>Magnitude in [0, 1].</summary>
    public double Magnitude { get; }

    /// <summary>The operations drawn from.</summary>
    public IReadOnlyList<RandAugmentOp> Ops { get; }

    /// <inheritdoc />
    public override bool TrainingOnly => true;

    /// <inheritdoc />
    public override Tensor Apply(Tensor batch, Generator generator)
    {
        RequireBatch(batch);
        long b = batch.shape[0];
        var x = batch;
        for (int layer = 0; layer < OpsPerImage; layer++)
        {
            var choice = randint(Ops.Count, [b], generator: generator);
            var sign = rand([b], ScalarType.Float32, generator: generator).lt(0.5).to(ScalarType.Float32) * 2 - 1;
            var u = rand([b], ScalarType.Float32, generator: generator);
            var v = rand([b], ScalarType.Float32, generator: generator);
            for (int o = 0; o < Ops.Count; o++)
            {
                var idx = choice.eq(o).nonzero().flatten();
                if (idx.shape[0] == 0) continue;
                var result = Apply(Ops[o], x.index_select(0, idx), sign.index_select(0, idx), u.index_select(0, idx),
                    v.index_select(0, idx));
                x = x.index_copy(0, idx, result.clamp(0, 255).to(x.dtype));
            }
        }
        return x;
    }

    /// <summary>
    /// Applies <paramref name="op"/> at this magnitude to <paramref name="x"/> [n, C, H, W]; <paramref name="sign"/> (±1)
    /// and <paramref name="u"/>, <paramref name="v"/> (uniform [0, 1), used by Cutout for the centre) are per image.
    /// </summary>
    public Tensor Apply(RandAugmentOp op, Tensor x, Tensor sign, Tensor u, Tensor v)
    {
        double m = Magnitude;
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        Tensor PerImage(Tensor t) => t.to(x.dtype).view(-1, 1, 1, 1);
        Tensor factor = PerImage(1 + 0.9 * m * sign);
        switch (op)
        {
            case RandAugmentOp.AutoContrast:
            {
                var lo = x.amin([2, 3], keepdim: true);
                var hi = x.amax([2, 3], keepdim: true);
                var range = hi - lo;
                return where(range.gt(0), (x - lo) * (255.0 / range.clamp_min(1e-6)), x);
            }
            case RandAugmentOp.Equalize:
                return Equalize(x);
            case RandAugmentOp.Solarize:
            {
                double threshold = 256 * (1 - m);
                return where(x.ge(threshold), 255 - x, x);
            }
            case RandAugmentOp.Posterize:
            {
                int bits = 8 - (int)Math.Round(4 * m);
                double step = Math.Pow(2, 8 - bits);
                return (x.clamp(0, 255) / step).floor() * step;
            }
            case RandAugmentOp.Color:
            {
                var gray = Gray(x);
                return gray + factor * (x - gray);
            }
            case RandAugmentOp.Contrast:
            {
                var mean = Gray(x).mean([1, 2, 3], keepdim: true);
                return mean + factor * (x - mean);
            }
            case RandAugmentOp.Brightness:
                return x * factor;
            case RandAugmentOp.Sharpness:
            {
                // PIL's SMOOTH filter; PIL leaves the one-pixel border unfiltered.
                var kernel = tensor(new float[] { 1, 1, 1, 1, 5, 1, 1, 1, 1 }).to(x.dtype).view(1, 1, 3, 3) / 13;
                var smooth = F.conv2d(x, kernel.expand(c, 1, 3, 3), padding: [1, 1], groups: c);
                var border = ones([1, 1, h, w], ScalarType.Bool);
                if (h > 2 && w > 2) border[.., .., 1..(int)(h - 1), 1..(int)(w - 1)] = tensor(false);
                smooth = where(border, x, smooth);
                return smooth + factor * (x - smooth);
            }
            case RandAugmentOp.Rotate:
            {
                var angle = sign.to(x.dtype) * (m * Math.PI / 6);
                var one = ones([n], x.dtype);
                var zero = zeros([n], x.dtype);
                return RandomAffine.Warp(x, angle, one, one, zero, zero, GridSamplePaddingMode.Zeros);
            }
            case RandAugmentOp.ShearX:
            case RandAugmentOp.ShearY:
            {
                var s = sign.to(x.dtype) * (0.3 * m);
                var one = ones([n], x.dtype);
                var zero = zeros([n], x.dtype);
                // Normalised coordinates: a pixel shear s becomes s·H/W (x from y) or s·W/H (y from x).
                var theta = op == RandAugmentOp.ShearX
                    ? stack([stack([one, s * ((double)h / w), zero], 1), stack([zero, one, zero], 1)], 1)
                    : stack([stack([one, zero, zero], 1), stack([s * ((double)w / h), one, zero], 1)], 1);
                var grid = F.affine_grid(theta, [n, c, h, w], align_corners: false);
                return F.grid_sample(x, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Zeros, align_corners: false);
            }
            case RandAugmentOp.TranslateX:
            case RandAugmentOp.TranslateY:
            {
                var one = ones([n], x.dtype);
                var zero = zeros([n], x.dtype);
                var shift = sign.to(x.dtype) * (0.3 * m);
                return op == RandAugmentOp.TranslateX
                    ? RandomAffine.Warp(x, zero, one, one, zero, shift * w, GridSamplePaddingMode.Zeros)
                    : RandomAffine.Warp(x, zero, one, one, shift * h, zero, GridSamplePaddingMode.Zeros);
            }
            case RandAugmentOp.Cutout:
            {
                double half = 0.25 * m * Math.Min(h, w);
                var cy = (u.to(x.dtype) * h).floor().view(-1, 1, 1, 1);
                var cx = (v.to(x.dtype) * w).floor().view(-1, 1, 1, 1);
                var rows = arange(h, dtype: x.dtype).view(1, 1, -1, 1);
                var cols = arange(w, dtype: x.dtype).view(1, 1, 1, -1);
                var inside = (rows - cy).abs().lt(half).logical_and((cols - cx).abs().lt(half));
                return where(inside, full_like(x, 128), x);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(op), op, "unknown operation");
        }
    }

    static Tensor Gray(Tensor x) => x.shape[1] == 3
        ? (0.299 * x.narrow(1, 0, 1) + 0.587 * x.narrow(1, 1, 1) + 0.114 * x.narrow(1, 2, 1))
        : x.mean([1], keepdim: true);

    /// <summary>
    /// Histogram equalisation of each image channel on 256 integer levels: level v → 255·(cdf(v) − cdf(min)) /
    /// (count − cdf(min)); a constant channel is left as it is.
    /// </summary>
    public static Tensor Equalize(Tensor x)
    {
        RequireBatch(x);
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3];
        var levels = x.round().clamp(0, 255).to(ScalarType.Int64).view(n * c, h * w);
        var hist = zeros([n * c, 256], x.dtype).scatter_add(1, levels, ones([n * c, h * w], x.dtype));
        var cdf = hist.cumsum(1);
        var cdfMin = cdf.gather(1, levels.amin([1], keepdim: true));
        var denominator = (h * w) - cdfMin;
        var lut = (cdf - cdfMin) * 255 / denominator.clamp_min(1);
        var equalized = lut.gather(1, levels);
        return where(denominator.gt(0), equalized, x.reshape(n * c, h * w)).view(n, c, h, w);
    }
}
