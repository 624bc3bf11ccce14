using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Data;

public class MnistMLikeTests
{
    static ImageDataset Digits(int count)
    {
        using var all = new DataLocator().Load("mnist-subset", train: false);
        using var scope = NewDisposeScope();
        var images = all.Images.narrow(0, 0, count).clone();
        var labels = all.Labels.narrow(0, 0, count).clone();
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), 10, "digits");
    }

    static byte[] Bytes(Tensor t) => t.contiguous().data<byte>().ToArray();

    [Fact]
    public void BlendIsDeterministicShapedAndKeepsTheLabels()
    {
        using var digits = Digits(64);
        using var a = MnistMLike.Blend(digits, seed: 3, train: true);
        using var b = MnistMLike.Blend(digits, seed: 3, train: true);
        using var other = MnistMLike.Blend(digits, seed: 4, train: true);
        using var test = MnistMLike.Blend(digits, seed: 3, train: false);
        Assert.Equal(new long[] { 64, 3, 32, 32 }, a.Images.shape);
        Assert.Equal(Bytes(a.Images), Bytes(b.Images));
        Assert.NotEqual(Bytes(a.Images), Bytes(other.Images));
        Assert.NotEqual(Bytes(a.Images), Bytes(test.Images));
        Assert.Equal(digits.Labels.data<long>().ToArray(), a.Labels.data<long>().ToArray());
        Assert.Equal(10, a.NumClasses);
    }

    [Fact]
    public void EveryPixelIsTheAbsoluteDifferenceOfTextureAndPaddedDigit()
    {
        using var digits = Digits(8);
        using var blended = MnistMLike.Blend(digits, seed: 5, train: true);
        var src = Bytes(digits.Images);
        var output = Bytes(blended.Images);
        for (int i = 0; i < 8; i++)
        {
            var texture = MnistMLike.Texture(5, true, i);
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 32; y++)
                    for (int x = 0; x < 32; x++)
                    {
                        int d = y >= 2 && y < 30 && x >= 2 && x < 30 ? src[i * 784 + (y - 2) * 28 + (x - 2)] : 0;
                        Assert.Equal(Math.Abs(texture[(c * 32 + y) * 32 + x] - d), output[((i * 3 + c) * 32 + y) * 32 + x]);
                    }
        }
    }

    [Fact]
    public void StatisticsDifferFromPlainMnist()
    {
        using var digits = Digits(500);
        using var blended = MnistMLike.Blend(digits, seed: 1, train: true);
        // Plain MNIST on 32×32: mostly black (mean ≈ 25 of 255) and grey (the three channels equal).
        var mnist = Bytes(digits.Images).Select(v => (double)v).ToArray();
        double mnistMean = mnist.Sum() / (500 * 32 * 32);
        var rgb = Bytes(blended.Images);
        var channelMeans = Enumerable.Range(0, 3).Select(c =>
            Enumerable.Range(0, 500).Sum(i => Enumerable.Range(0, 1024).Sum(k => (double)rgb[(i * 3 + c) * 1024 + k])) / (500 * 1024)).ToArray();
        Assert.True(mnistMean < 40, $"MNIST mean {mnistMean}");
        Assert.All(channelMeans, m => Assert.True(m > 80 && m < 175, $"channel mean {m}"));
        // Colour: within an image the channels differ.
        long coloured = Enumerable.Range(0, 500).Count(i =>
            Enumerable.Range(0, 1024).Average(k => Math.Abs(rgb[i * 3 * 1024 + k] - rgb[(i * 3 + 2) * 1024 + k])) > 10);
        Assert.True(coloured > 350, $"{coloured} of 500 images are coloured");
        // Textures vary within an image (not flat backgrounds).
        var texture = MnistMLike.Texture(1, true, 0).Select(v => (double)v).ToArray();
        double tm = texture.Average();
        Assert.True(Math.Sqrt(texture.Average(v => (v - tm) * (v - tm))) > 5);
    }

    [Fact]
    public void MakeWritesAFolderTheLocatorReads()
    {
        string dir = Path.Combine(Path.GetTempPath(), "uan-mnistm-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var train = Digits(30);
            using var test = Digits(12);
            var result = MnistMLike.Make(dir, train, test, "mnist-subset", seed: 2);
            Assert.Equal(30, result.TrainCount);
            var locator = new DataLocator(dir);
            using var back = locator.Load(MnistMLike.FolderName, train: true);
            using var expected = MnistMLike.Blend(train, 2, true);
            Assert.Equal(Bytes(expected.Images), Bytes(back.Images));
            Assert.Equal(train.Labels.data<long>().ToArray(), back.Labels.data<long>().ToArray());
            using var backTest = locator.Load(MnistMLike.FolderName, train: false);
            Assert.Equal(12, backTest.Count);
            Assert.True(File.Exists(Path.Combine(dir, MnistMLike.FolderName, "preview.png")));
            Assert.Equal((3, 10, 32), DataLocator.KnownShape(MnistMLike.FolderName));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
