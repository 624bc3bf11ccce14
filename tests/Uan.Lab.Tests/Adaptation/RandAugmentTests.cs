using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Adaptation;

public class RandAugmentTests
{
    static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    static Tensor Images(int seed, long n = 6)
    {
        using var g = new Generator((ulong)seed);
        return (rand([n, 3, 16, 16], ScalarType.Float32, generator: g) * 255).round();
    }

    [Fact]
    public void SameSeedSameBatchAndPixelsStayInRange()
    {
        using var scope = NewDisposeScope();
        var aug = new RandAugment();
        var x = Images(1);
        using var g1 = new Generator(9);
        using var g2 = new Generator(9);
        var a = aug.Apply(x, g1);
        var b = aug.Apply(x, g2);
        Assert.True(Same(a, b));
        Assert.Equal(x.shape, a.shape);
        Assert.True(a.min().item<float>() >= 0 && a.max().item<float>() <= 255);
        Assert.False(Same(a, x));
        Assert.True(Same(x, Images(1)), "the input must not be modified");
    }

    [Theory]
    [MemberData(nameof(AllOps))]
    public void EveryOperationKeepsShapeAndRange(RandAugmentOp op)
    {
        using var scope = NewDisposeScope();
        var aug = new RandAugment(1, 0.5, [op]);
        using var g = new Generator(3);
        var y = aug.Apply(Images(2), g);
        Assert.Equal(new long[] { 6, 3, 16, 16 }, y.shape);
        Assert.True(double.IsFinite(y.sum().item<float>()));
        Assert.True(y.min().item<float>() >= 0 && y.max().item<float>() <= 255, $"{op} left the 0–255 range");
    }

    public static IEnumerable<object[]> AllOps() => Enum.GetValues<RandAugmentOp>().Select(o => new object[] { o });

    [Fact]
    public void EqualizeSpreadsLevelsOverTheFullRange()
    {
        using var scope = NewDisposeScope();
        // Four levels, equally frequent: cdf 4, 8, 12, 16 of 16 pixels → 0, 85, 170, 255.
        var x = tensor(new float[] { 10, 10, 10, 10, 11, 11, 11, 11, 12, 12, 12, 12, 13, 13, 13, 13 }).view(1, 1, 4, 4);
        var y = RandAugment.Equalize(x);
        Assert.Equal(new float[] { 0, 85, 170, 255 }, y.flatten().unique().Item1.data<float>().ToArray());
        var constant = full(1, 1, 4, 4, 7f);
        Assert.True(Same(RandAugment.Equalize(constant), constant));
    }
}
