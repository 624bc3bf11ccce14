using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Data;

public class TransformTests
{
    private static Generator Gen(int seed = 1) => new((ulong)seed);

    private static Tensor RandomBatch(long b = 4, long c = 3, long h = 16, long w = 16, int seed = 0)
    {
        using var g = Gen(seed + 100);
        return rand([b, c, h, w], ScalarType.Float32, generator: g) * 255;
    }

    [Fact]
    public void StandardizationGivesZeroMeanUnitStdPerChannel()
    {
        using var scope = NewDisposeScope();
        using var g = Gen();
        // Channels with very different distributions.
        var r = randint(0, 256, [200, 1, 8, 8], ScalarType.Int64, generator: g);
        var gch = randint(100, 140, [200, 1, 8, 8], ScalarType.Int64, generator: g);
        var b = randint(0, 30, [200, 1, 8, 8], ScalarType.Int64, generator: g);
        using var ds = new ImageDataset(cat([r, gch, b], 1).to(ScalarType.Byte), zeros(200, ScalarType.Int64), 1, "std");
        var stats = ChannelStats.Compute(ds, chunk: 64); // several chunks

        var x = ds.Images.to(ScalarType.Float64);
        var refMean = x.mean([0, 2, 3]).data<double>().ToArray();
        var refStd = x.std([0, 2, 3], unbiased: false).data<double>().ToArray();
        for (int c = 0; c < 3; c++)
        {
            Assert.Equal(refMean[c], stats.Mean[c], 6);
            Assert.Equal(refStd[c], stats.Std[c], 6);
        }

        var z = new Standardize(stats).Apply(ds.Images.to(ScalarType.Float32), Gen());
        var m = z.mean([0, 2, 3]).data<float>().ToArray();
        var s = z.std([0, 2, 3], unbiased: false).data<float>().ToArray();
        for (int c = 0; c < 3; c++)
        {
            Assert.True(Math.Abs(m[c]) < 1e-4, $"mean[{c}] = {m[c]}");
            Assert.True(Math.Abs(s[c] - 1) < 1e-4, $"std[{c}] = {s[c]}");
        }
    }

    [Fact]
    public void ImageNetStatsEqualScaleThenNormalize()
    {
        using var scope = NewDisposeScope();
        var x = RandomBatch();
        var viaStats = new Standardize(ChannelStats.ImageNet).Apply(x, Gen());
        var mean = tensor(new[] { 0.485f, 0.456f, 0.406f }).view(1, 3, 1, 1);
        var std = tensor(new[] { 0.229f, 0.224f, 0.225f }).view(1, 3, 1, 1);
        var direct = (x / 255 - mean) / std;
        Assert.True(viaStats.allclose(direct, rtol: 1e-5, atol: 1e-5));
    }

    [Fact]
    public void FlipIsExact()
    {
        using var scope = NewDisposeScope();
        var x = RandomBatch();
        Assert.True(new RandomHorizontalFlip(1.0).Apply(x, Gen()).SameAs(x.flip(3)));
        Assert.True(new RandomHorizontalFlip(0.0).Apply(x, Gen()).SameAs(x));
        // p = 0.5: every image is either untouched or exactly mirrored, and both happen.
        var big = RandomBatch(b: 64, h: 4, w: 4);
        var y = new RandomHorizontalFlip().Apply(big, Gen(5));
        int flipped = 0, kept = 0;
        for (int i = 0; i < 64; i++)
        {
            if (y[i].SameAs(big[i])) kept++;
            else if (y[i].SameAs(big[i].flip(2))) flipped++;
        }
        Assert.Equal(64, flipped + kept);
        Assert.InRange(flipped, 16, 48);
    }

    [Fact]
    public void ZeroRotationAndUnitZoomAreIdentities()
    {
        using var scope = NewDisposeScope();
        var x = RandomBatch(h: 12, w: 20);
        var rot0 = RandomAffine.Rotation(0).Apply(x, Gen());
        var zoom0 = RandomAffine.Zoom(0, 0).Apply(x, Gen());
        Assert.True(rot0.allclose(x, rtol: 0, atol: 1e-3));
        Assert.True(zoom0.allclose(x, rtol: 0, atol: 1e-3));
        var b = x.shape[0];
        var explicitIdentity = RandomAffine.Warp(x, zeros(b), ones(b), ones(b), zeros(b), zeros(b));
        Assert.True(explicitIdentity.allclose(x, rtol: 0, atol: 1e-3));
    }

    [Fact]
    public void QuarterTurnMatchesRot90CounterClockwise()
    {
        using var scope = NewDisposeScope();
        var x = RandomBatch(b: 2, h: 9, w: 9);
        var b = x.shape[0];
        var y = RandomAffine.Warp(x, full(b, (float)(Math.PI / 2)), ones(b), ones(b), zeros(b), zeros(b));
        // rot90 over (H, W) turns the displayed image counter-clockwise: the top-right corner goes to the top-left.
        var expected = x.rot90(1, (2, 3));
        Assert.True(y.allclose(expected, rtol: 0, atol: 1e-2), $"max diff {(y - expected).abs().max().item<float>()}");
        Assert.Equal(x[0, 0, 0, 8].item<float>(), y[0, 0, 0, 0].item<float>(), 1e-2f);
    }

    [Fact]
    public void ShiftMovesContentAndFillsAsKeras()
    {
        using var scope = NewDisposeScope();
        var x = RandomBatch(b: 1, c: 1, h: 6, w: 8);
        var one = ones(1);
        var zero = zeros(1);
        // Content moves right by 2 columns; 'nearest' (border) repeats column 0, 'reflect' mirrors d c b a | a b c d.
        var border = RandomAffine.Warp(x, zero, one, one, zero, full(1, 2f), GridSamplePaddingMode.Border);
        var reflect = RandomAffine.Warp(x, zero, one, one, zero, full(1, 2f), GridSamplePaddingMode.Reflection);
        var tol = 1e-3;
        Assert.True(border[.., .., .., 2..].allclose(x[.., .., .., ..6], rtol: 0, atol: tol));
        Assert.True(border[.., .., .., 0].allclose(x[.., .., .., 0], rtol: 0, atol: tol));
        Assert.True(border[.., .., .., 1].allclose(x[.., .., .., 0], rtol: 0, atol: tol));
        Assert.True(reflect[.., .., .., 0].allclose(x[.., .., .., 1], rtol: 0, atol: tol));
        Assert.True(reflect[.., .., .., 1].allclose(x[.., .., .., 0], rtol: 0, atol: tol));
        // Down by one row.
        var down = RandomAffine.Warp(x, zero, one, one, full(1, 1f), zero, GridSamplePaddingMode.Border);
        Assert.True(down[.., .., 1.., ..].allclose(x[.., .., ..5, ..], rtol: 0, atol: tol));
    }

    [Fact]
    public void ZoomAboveOneZoomsOut()
    {
        using var scope = NewDisposeScope();
        // A horizontal ramp: zooming out by 2 in width halves its slope around the centre; height zoom leaves it.
        var ramp = arange(16, ScalarType.Float32).view(1, 1, 1, 16).expand(1, 1, 16, 16).contiguous();
        var one = ones(1);
        var zero = zeros(1);
        var y = RandomAffine.Warp(ramp, zero, one, full(1, 2f), zero, zero, GridSamplePaddingMode.Border);
        var centreSlope = (y[0, 0, 8, 9] - y[0, 0, 8, 7]).item<float>() / 2;
        Assert.Equal(2f, centreSlope, 1e-3f); // sampled twice as far apart
        var yh = RandomAffine.Warp(ramp, zero, full(1, 2f), one, zero, zero, GridSamplePaddingMode.Border);
        Assert.True(yh.allclose(ramp, rtol: 0, atol: 1e-3));
    }

    [Fact]
    public void RandomAffineStaysWithinItsRanges()
    {
        using var scope = NewDisposeScope();
        // Shift of ±10% of a 20-wide ramp moves the centre value by at most 2.
        var ramp = arange(20, ScalarType.Float32).view(1, 1, 1, 20).expand(32, 1, 20, 20).contiguous();
        var y = RandomAffine.Shift(0, 0.1).Apply(ramp, Gen(3));
        var delta = (y[.., 0, 10, 10] - ramp[.., 0, 10, 10]).abs();
        Assert.True(delta.max().item<float>() <= 2.0001f);
        Assert.True(delta.max().item<float>() > 0.5f); // and it does move
    }

    [Fact]
    public void ResizeIsBilinearHalfPixel()
    {
        using var scope = NewDisposeScope();
        var x = RandomBatch(h: 32, w: 32);
        var y = new Resize(72, 72).Apply(x, Gen());
        Assert.Equal(new long[] { 4, 3, 72, 72 }, y.shape);
        var constant = full([1, 3, 32, 32], 7f);
        Assert.True(new Resize(72, 72).Apply(constant, Gen()).allclose(full([1, 3, 72, 72], 7f)));
        // Half-pixel 2× upsampling of [0, 4] gives [0, 1, 3, 4] (edges clamped).
        var two = tensor(new[] { 0f, 4f }).view(1, 1, 1, 2).expand(1, 1, 2, 2).contiguous();
        var up = new Resize(4, 4).Apply(two, Gen());
        Assert.Equal(new[] { 0f, 1f, 3f, 4f }, up[0, 0, 0].data<float>().ToArray());
    }

    [Fact]
    public void PadAndTileMakesMnist32x32x3()
    {
        using var scope = NewDisposeScope();
        var x = RandomBatch(b: 2, c: 1, h: 28, w: 28) + 1; // strictly positive, so zero padding is visible
        var y = new PadAndTile().Apply(x, Gen());
        Assert.Equal(new long[] { 2, 3, 32, 32 }, y.shape);
        Assert.True(y[.., 0, 2..30, 2..30].SameAs(x[.., 0]));
        Assert.True(y[.., 1].SameAs(y[.., 0]) && y[.., 2].SameAs(y[.., 0]));
        Assert.Equal(0f, y[.., .., ..2, ..].abs().sum().item<float>());
        Assert.Equal(0f, y[.., .., 30.., ..].abs().sum().item<float>());
        Assert.Equal(0f, y[.., .., .., ..2].abs().sum().item<float>());
        Assert.Equal(0f, y[.., .., .., 30..].abs().sum().item<float>());

        var tf = new PadAndTile(mode: MnistTo32Mode.ResizeWithPad).Apply(x, Gen());
        var expected = nn.functional.interpolate(x, [32, 32], mode: InterpolationMode.Bilinear, align_corners: false).repeat(1, 3, 1, 1);
        Assert.True(tf.allclose(expected));
    }

    [Fact]
    public void PipelineSkipsAugmentationOutsideTraining()
    {
        using var scope = NewDisposeScope();
        var u8 = (RandomBatch(h: 32, w: 32)).to(ScalarType.Byte);
        var stats = new ChannelStats([100, 110, 120], [50, 60, 70]);
        var p = DataPipeline.ShallowCnn(stats);
        var eval1 = p.Apply(u8, training: false, Gen(1));
        var eval2 = p.Apply(u8, training: false, Gen(2));
        var plain = new Resize(72, 72).Apply(new Standardize(stats).Apply(u8.to(ScalarType.Float32), Gen()), Gen());
        Assert.Equal(ScalarType.Float32, eval1.dtype);
        Assert.True(eval1.SameAs(eval2));
        Assert.True(eval1.allclose(plain));
        var train = p.Apply(u8, training: true, Gen(1));
        Assert.Equal(eval1.shape, train.shape);
        Assert.False(train.allclose(eval1));
        Assert.Equal(ScalarType.Byte, u8.dtype); // the input is untouched
    }

    [Fact]
    public void SameSeedSameAugmentationDifferentSeedDifferent()
    {
        using var scope = NewDisposeScope();
        var x = RandomBatch(b: 8, h: 32, w: 32);
        var stats = new ChannelStats([0, 0, 0], [1, 1, 1]);
        foreach (var p in new[] { DataPipeline.ShallowCnn(stats), DataPipeline.DenseNet(stats) })
        {
            var a = p.Apply(x, true, Gen(11));
            var b = p.Apply(x, true, Gen(11));
            var c = p.Apply(x, true, Gen(12));
            Assert.True(a.SameAs(b));
            Assert.False(a.allclose(c));
        }
    }
}
