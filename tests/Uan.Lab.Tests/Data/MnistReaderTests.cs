using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Data;

public class MnistReaderTests
{
    // A pixel value that differs along every axis, so any transposition or offset error shows.
    private static byte Pixel(int n, int h, int w) => (byte)((n * 37 + h * 7 + w * 3) % 256);

    private static void WriteSplit(TempDir dir, bool train, int n, int h, int w, byte[] labels, bool gzip, bool dotted = false)
    {
        string images = MnistReader.ImagesFileName(train), lab = MnistReader.LabelsFileName(train);
        if (dotted) { images = images.Replace("-idx", ".idx"); lab = lab.Replace("-idx", ".idx"); }
        string ext = gzip ? ".gz" : "";
        TestFiles.Write(dir.File(images + ext), TestFiles.IdxImages(n, h, w, Pixel), gzip);
        TestFiles.Write(dir.File(lab + ext), TestFiles.IdxLabels(labels), gzip);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsImagesAndLabelsPixelExact(bool gzip)
    {
        using var dir = new TempDir();
        WriteSplit(dir, train: true, n: 3, h: 5, w: 4, labels: [7, 0, 9], gzip);
        using var ds = MnistReader.Load(dir.Path, train: true);

        Assert.Equal(new long[] { 3, 1, 5, 4 }, ds.Images.shape);
        Assert.Equal(ScalarType.Byte, ds.Images.dtype);
        Assert.Equal(new long[] { 7, 0, 9 }, ds.Labels.data<long>().ToArray());
        Assert.Equal(10, ds.NumClasses);
        Assert.Equal("mnist/train", ds.Name);
        // Specific (n, c, h, w) positions: row h, column w.
        Assert.Equal(Pixel(0, 0, 0), ds.Images[0, 0, 0, 0].item<byte>());
        Assert.Equal(Pixel(1, 4, 0), ds.Images[1, 0, 4, 0].item<byte>());
        Assert.Equal(Pixel(2, 1, 3), ds.Images[2, 0, 1, 3].item<byte>());
        Assert.Equal(Pixel(2, 4, 3), ds.Images[2, 0, 4, 3].item<byte>());
        for (int n = 0; n < 3; n++)
            for (int h = 0; h < 5; h++)
                for (int w = 0; w < 4; w++)
                    Assert.Equal(Pixel(n, h, w), ds.Images[n, 0, h, w].item<byte>());
    }

    [Fact]
    public void LoadFindsTestSplitAndDottedNames()
    {
        using var dir = new TempDir();
        WriteSplit(dir, train: false, n: 2, h: 28, w: 28, labels: [3, 4], gzip: true, dotted: true);
        using var ds = MnistReader.Load(dir.Path, train: false);
        Assert.Equal(2, ds.Count);
        Assert.Equal("mnist/test", ds.Name);
        Assert.Equal(Pixel(1, 27, 13), ds.Images[1, 0, 27, 13].item<byte>());
    }

    [Fact]
    public void FashionHasClassNames()
    {
        using var dir = new TempDir();
        WriteSplit(dir, train: true, n: 1, h: 28, w: 28, labels: [9], gzip: true);
        using var ds = MnistReader.LoadFashion(dir.Path, train: true);
        Assert.Equal("Ankle boot", ds.ClassNames![9]);
        Assert.Equal("fashion-mnist/train", ds.Name);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TruncatedImageFileNamesFileAndProblem(bool gzip)
    {
        using var dir = new TempDir();
        var full = TestFiles.IdxImages(4, 28, 28, Pixel);
        string path = dir.File("train-images-idx3-ubyte" + (gzip ? ".gz" : ""));
        TestFiles.Write(path, full[..(full.Length - 100)], gzip);
        var e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("3136", e.Message); // the declared data size 4 × 28 × 28
    }

    [Fact]
    public void TruncatedHeaderIsReported()
    {
        using var dir = new TempDir();
        string path = dir.File("t10k-labels-idx1-ubyte");
        TestFiles.Write(path, TestFiles.IdxLabels(1, 2, 3)[..6]);
        var e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadLabels(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void CutGzipStreamIsReportedNotThrownRaw()
    {
        using var dir = new TempDir();
        string path = dir.File("train-images-idx3-ubyte.gz");
        TestFiles.Write(path, TestFiles.IdxImages(20, 28, 28, Pixel), gzip: true);
        byte[] gz = File.ReadAllBytes(path);
        File.WriteAllBytes(path, gz[..(gz.Length / 2)]);
        var e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadImages(path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void WrongMagicNamesBothNumbers()
    {
        using var dir = new TempDir();
        string path = dir.File("train-images-idx3-ubyte");
        TestFiles.Write(path, TestFiles.IdxLabels(1, 2, 3)); // a label file under an image file's name
        var e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadImages(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("wrong magic number 2049", e.Message);
        Assert.Contains("2051", e.Message);
        Assert.Contains("label file", e.Message);

        File.WriteAllBytes(path, "<html>not found</html>"u8.ToArray());
        e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadImages(path));
        Assert.Contains("not an IDX file", e.Message);
    }

    [Fact]
    public void TrailingBytesAreASizeMismatch()
    {
        using var dir = new TempDir();
        string path = dir.File("x-labels");
        TestFiles.Write(path, [.. TestFiles.IdxLabels(1, 2), 0, 0]);
        var e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadLabels(path));
        Assert.Contains("size mismatch", e.Message);
    }

    [Fact]
    public void ImageAndLabelCountsMustAgree()
    {
        using var dir = new TempDir();
        TestFiles.Write(dir.File("train-images-idx3-ubyte"), TestFiles.IdxImages(3, 28, 28, Pixel));
        TestFiles.Write(dir.File("train-labels-idx1-ubyte"), TestFiles.IdxLabels(1, 2));
        var e = Assert.Throws<DataFormatException>(() => MnistReader.Load(dir.Path, train: true));
        Assert.Contains("train-labels-idx1-ubyte", e.Message);
        Assert.Contains("2 labels", e.Message);
        Assert.Contains("3 images", e.Message);
    }

    [Fact]
    public void LabelOutOfRangeIsReported()
    {
        using var dir = new TempDir();
        TestFiles.Write(dir.File("train-images-idx3-ubyte"), TestFiles.IdxImages(2, 28, 28, Pixel));
        TestFiles.Write(dir.File("train-labels-idx1-ubyte"), TestFiles.IdxLabels(1, 12));
        var e = Assert.Throws<DataFormatException>(() => MnistReader.Load(dir.Path, train: true));
        Assert.Contains("label 12 at index 1", e.Message);
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        using var dir = new TempDir();
        TestFiles.Write(dir.File("train-images-idx3-ubyte"), TestFiles.IdxImages(1, 28, 28, Pixel));
        var e = Assert.Throws<FileNotFoundException>(() => MnistReader.Load(dir.Path, train: true));
        Assert.Contains(dir.File("train-labels-idx1-ubyte"), e.Message);
        Assert.Throws<DirectoryNotFoundException>(() => MnistReader.Load(dir.File("nope"), train: true));
    }

    [Fact]
    public void WriterRoundTripsThroughReader()
    {
        using var dir = new TempDir();
        using var images = randint(0, 256, [5, 1, 6, 7], ScalarType.Byte);
        using var labels = tensor(new long[] { 0, 9, 3, 3, 1 });
        string ip = dir.File("a.gz"), lp = dir.File("b");
        IdxFormat.WriteImages(ip, images);
        IdxFormat.WriteLabels(lp, labels);
        using var back = IdxFormat.ReadImages(ip);
        using var backLabels = IdxFormat.ReadLabels(lp);
        Assert.True(back.SameAs(images));
        Assert.True(backLabels.SameAs(labels));
        // The .gz file is gzip, the other raw: both carry the official header.
        Assert.Equal(new byte[] { 0x1F, 0x8B }, File.ReadAllBytes(ip)[..2]);
        Assert.Equal(new byte[] { 0, 0, 8, 1 }, File.ReadAllBytes(lp)[..4]);
    }
}
