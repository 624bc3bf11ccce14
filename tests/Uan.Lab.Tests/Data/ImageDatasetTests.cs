using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Data;

public class ImageDatasetTests
{
    /// <summary>n images whose every pixel equals the image's index mod 256, labels given.</summary>
    internal static ImageDataset Indexed(long[] labels, int numClasses = 10, int c = 1, int h = 4, int w = 4)
    {
        long n = labels.Length;
        var images = (arange(n, ScalarType.Int64) % 256).to(ScalarType.Byte).view(-1, 1, 1, 1).expand(n, c, h, w).contiguous();
        return new ImageDataset(images, tensor(labels), numClasses, "indexed");
    }

    [Fact]
    public void ConstructorRejectsBadShapesAndLabels()
    {
        Assert.Throws<ArgumentException>(() => new ImageDataset(zeros(2, 1, 4, 4), zeros(2, ScalarType.Int64), 10, "x"));
        Assert.Throws<ArgumentException>(() => new ImageDataset(zeros([2, 1, 4, 4], ScalarType.Byte), zeros(3, ScalarType.Int64), 10, "x"));
        Assert.Throws<ArgumentException>(() => new ImageDataset(zeros([2, 1, 4, 4], ScalarType.Byte), tensor(new long[] { 0, 10 }), 10, "x"));
        Assert.Throws<ArgumentException>(() => new ImageDataset(zeros([1, 1, 4, 4], ScalarType.Byte), tensor(new long[] { 0 }), 2, "x", ["a"]));
    }

    [Fact]
    public void SubsetKeepsOrderAndLabels()
    {
        using var ds = Indexed([0, 1, 2, 3, 4, 5]);
        using var sub = ds.Subset([5, 0, 3], "sub");
        Assert.Equal(3, sub.Count);
        Assert.Equal(new long[] { 5, 0, 3 }, sub.Labels.data<long>().ToArray());
        Assert.Equal(5, sub.Images[0, 0, 2, 2].item<byte>());
        Assert.Equal(3, sub.Images[2, 0, 0, 0].item<byte>());
        Assert.Equal("sub", sub.Name);
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.Subset([6]));
    }

    [Fact]
    public void SplitLastFollowsKerasValidationSplit()
    {
        using var ds = Indexed(Enumerable.Range(0, 50).Select(i => (long)(i % 10)).ToArray());
        var (train, val) = ds.SplitLast(0.1);
        using (train)
        using (val)
        {
            Assert.Equal(45, train.Count);
            Assert.Equal(5, val.Count);
            // The LAST fraction, in order.
            Assert.Equal(45, val.Images[0, 0, 0, 0].item<byte>());
            Assert.Equal(49, val.Images[4, 0, 0, 0].item<byte>());
            Assert.Equal(44, train.Images[44, 0, 0, 0].item<byte>());
        }
        using var ten = Indexed(new long[10]);
        var (t7, v3) = ten.SplitLast(0.3);  // int(10 * (1 - 0.3)) = int(7.000000000000001) = 7
        Assert.Equal(7, t7.Count);
        Assert.Equal(3, v3.Count);
        t7.Dispose();
        v3.Dispose();
    }

    [Fact]
    public void ProportionalAllocationSumsAndFollowsLargestRemainder()
    {
        long[] mnistTrain = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
        var a = ImageDataset.ProportionalAllocation(mnistTrain, 10_000);
        Assert.Equal(10_000, a.Sum());
        for (int k = 0; k < 10; k++)
        {
            double exact = 10_000.0 * mnistTrain[k] / 60_000;
            Assert.True(Math.Abs(a[k] - exact) < 1, $"class {k}: {a[k]} vs {exact}");
        }
        Assert.Equal(new long[] { 2, 1, 1 }, ImageDataset.ProportionalAllocation([3, 3, 3], 4)); // tie → lower class
    }

    [Fact]
    public void StratifiedSubsetHasRequestedCountsIsSeededAndSorted()
    {
        long[] labels = Enumerable.Range(0, 300).Select(i => (long)(i < 200 ? 0 : i < 270 ? 1 : 2)).ToArray();
        using var ds = Indexed(labels, numClasses: 3);
        using var s1 = ds.StratifiedSubset(30, seed: 7);
        Assert.Equal(new long[] { 20, 7, 3 }, s1.ClassCounts());

        var i1 = ds.StratifiedIndices([20, 7, 3], 7);
        var i2 = ds.StratifiedIndices([20, 7, 3], 7);
        var i3 = ds.StratifiedIndices([20, 7, 3], 8);
        Assert.Equal(i1, i2);
        Assert.NotEqual(i1, i3);
        Assert.Equal(i1.Order().ToArray(), i1);
        Assert.Equal(i1.Length, i1.Distinct().Count());
        Assert.All(i1, i => Assert.Equal(labels[i], labels[i])); // indices are valid
        Assert.Throws<ArgumentOutOfRangeException>(() => ds.StratifiedIndices([0, 71, 0], 1));
    }

    [Fact]
    public void ShuffleIsAPermutation()
    {
        using var ds = Indexed(Enumerable.Range(0, 40).Select(i => (long)(i % 10)).ToArray());
        using var sh = ds.Shuffle(3);
        var firstPixels = sh.Images.select(1, 0).select(1, 0).select(1, 0).to(ScalarType.Int64).data<long>().ToArray();
        Assert.Equal(Enumerable.Range(0, 40).Select(i => (long)i), firstPixels.Order());
        Assert.NotEqual(Enumerable.Range(0, 40).Select(i => (long)i), firstPixels);
        // Labels moved with their images.
        Assert.Equal(firstPixels.Select(p => p % 10).ToArray(), sh.Labels.data<long>().ToArray());
    }
}
