using TorchSharp;
using Uan.Lab.Data;

namespace Uan.Lab.Tests.Data;

/// <summary>A fact that runs only when <see cref="DataLocator"/> finds the dataset (installed data is optional).</summary>
public sealed class FactWhenDataAttribute : FactAttribute
{
    public FactWhenDataAttribute(string datasetId)
    {
        var entry = new DataLocator().Find(datasetId);
        if (!entry.Present)
            Skip = $"{entry.DisplayName} is not installed ({entry.HowToGet})";
    }
}

public class EmbeddedDataTests
{
    // Class frequencies of the official MNIST splits.
    internal static readonly long[] MnistTrainCounts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];
    internal static readonly long[] MnistTestCounts = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];

    // SHA-256 of the uncompressed IDX content of the committed files (also listed in data/mnist-subset/README.md).
    internal static readonly Dictionary<string, string> CommittedHashes = new()
    {
        ["train-images-idx3-ubyte.gz"] = "7fb426241ba6ea06b27d336e71bddbe67078fe8591c1f6c688778058f95f4c45",
        ["train-labels-idx1-ubyte.gz"] = "ccc583bd55fa053c536f27c4561e0f16d58f084f041737619cd2a3e94b87a3f0",
        ["t10k-images-idx3-ubyte.gz"] = "13a443a5d3a54c3e8c8c60f63099d8b343b9e508e4cccd8750a8cf815c37d4b1",
        ["t10k-labels-idx1-ubyte.gz"] = "f11f05ce660280ab26e48e8280c47599a47e88a460799b83accbe0eea9ab3272",
    };

    [Fact]
    public void EmbeddedSubsetLoadsWithProportionalClasses()
    {
        var locator = new DataLocator();
        var entry = locator.Find("mnist-subset");
        Assert.True(entry.Present, $"embedded subset not found under {locator.DataDir}");

        using var train = EmbeddedData.LoadMnistSubset(train: true, locator.DataDir);
        using var test = EmbeddedData.LoadMnistSubset(train: false, locator.DataDir);
        Assert.Equal(new long[] { 10_000, 1, 28, 28 }, train.Images.shape);
        Assert.Equal(new long[] { 2_000, 1, 28, 28 }, test.Images.shape);
        Assert.Equal(0, train.Labels.min().item<long>());
        Assert.Equal(9, train.Labels.max().item<long>());
        Assert.Equal(ImageDataset.ProportionalAllocation(MnistTrainCounts, 10_000), train.ClassCounts());
        Assert.Equal(ImageDataset.ProportionalAllocation(MnistTestCounts, 2_000), test.ClassCounts());
        // Real digits: dark background, some ink in every image.
        Assert.Equal(0, train.Images[0, 0, 0, 0].item<byte>());
        using var ink = train.Images.amax([1, 2, 3]);
        Assert.True(ink.min().item<byte>() > 100);
    }

    [Fact]
    public void CommittedFilesHaveTheRecordedContent()
    {
        string dir = Path.Combine(new DataLocator().DataDir, EmbeddedData.MnistSubsetFolder);
        foreach (var (file, hash) in CommittedHashes)
            Assert.Equal(hash, EmbeddedData.ContentHash(Path.Combine(dir, file)));
    }

    [Fact]
    public void BuildMnistSubsetDrawsStratifiedAndReproducibly()
    {
        // A synthetic "full MNIST" of 250 + 100 images (fewer than 256, so pixel (0, 0) = index) with uneven classes.
        using var src = new TempDir();
        byte[] trainLabels = Enumerable.Range(0, 250).Select(i => (byte)(i % 7 == 0 ? 0 : i % 10)).ToArray();
        byte[] testLabels = Enumerable.Range(0, 100).Select(i => (byte)(i % 10)).ToArray();
        TestFiles.Write(src.File("train-images-idx3-ubyte"), TestFiles.IdxImages(250, 28, 28, (n, h, w) => (byte)((n + h + w) % 256)));
        TestFiles.Write(src.File("train-labels-idx1-ubyte"), TestFiles.IdxLabels(trainLabels));
        TestFiles.Write(src.File("t10k-images-idx3-ubyte.gz"), TestFiles.IdxImages(100, 28, 28, (n, h, w) => (byte)(n * 2)), gzip: true);
        TestFiles.Write(src.File("t10k-labels-idx1-ubyte.gz"), TestFiles.IdxLabels(testLabels), gzip: true);

        using var a = new TempDir();
        using var b = new TempDir();
        var ra = EmbeddedData.BuildMnistSubset(src.Path, a.Path, seed: 5, trainCount: 100, testCount: 20);
        var rb = EmbeddedData.BuildMnistSubset(src.Path, b.Path, seed: 5, trainCount: 100, testCount: 20);
        Assert.Equal(ra.Sha256, rb.Sha256);
        Assert.Equal(100, ra.TrainPerClass.Sum());
        Assert.Equal(Enumerable.Repeat(2L, 10), ra.TestPerClass);

        using var sub = MnistReader.Load(a.Path, train: true);
        Assert.Equal(ra.TrainPerClass, sub.ClassCounts());
        // Every subset image is an original image with its own label (pixel (0, 0) encodes the source index).
        var firstPixels = sub.Images.select(1, 0).select(1, 0).select(1, 0).to(torch.ScalarType.Int64).data<long>().ToArray();
        var labels = sub.Labels.data<long>().ToArray();
        Assert.Equal(firstPixels.Order(), firstPixels); // original order kept
        for (int i = 0; i < labels.Length; i++) Assert.Equal(trainLabels[firstPixels[i]], labels[i]);

        using var c = new TempDir();
        var rc = EmbeddedData.BuildMnistSubset(src.Path, c.Path, seed: 6, trainCount: 100, testCount: 20);
        Assert.NotEqual(ra.Sha256["train-images-idx3-ubyte.gz"], rc.Sha256["train-images-idx3-ubyte.gz"]);
    }

    [FactWhenData("mnist")]
    public void RebuildingFromFullMnistReproducesTheCommittedSubset()
    {
        var locator = new DataLocator();
        using var full = locator.Load("mnist", train: true);
        Assert.Equal(MnistTrainCounts, full.ClassCounts());
        using var dest = new TempDir();
        var report = EmbeddedData.BuildMnistSubset(locator.Find("mnist").Location!, dest.Path);
        Assert.Equal(CommittedHashes, report.Sha256);
    }

    [FactWhenData("fashion-mnist")]
    public void FashionMnistLoadsWhenInstalled()
    {
        var locator = new DataLocator();
        using var train = locator.Load("fashion-mnist", train: true);
        using var test = locator.Load("fashion-mnist", train: false);
        Assert.Equal(new long[] { 60_000, 1, 28, 28 }, train.Images.shape);
        Assert.Equal(Enumerable.Repeat(6_000L, 10), train.ClassCounts());
        Assert.Equal(Enumerable.Repeat(1_000L, 10), test.ClassCounts());
        Assert.Equal("Ankle boot", train.ClassNames![9]);
    }
}
