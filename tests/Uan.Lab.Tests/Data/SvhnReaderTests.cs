using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;
using static Uan.Lab.Tests.Data.TestFiles;

namespace Uan.Lab.Tests.Data;

public class SvhnReaderTests
{


    private static byte[] SvhnFile(bool compress, double[] labels, bool labelsAsUInt8 = false)
    {
        int n = labels.Length;
        var x = new MatVar("X", MxUInt8, [32, 32, 3, n], MiUInt8, TestFiles.SvhnColumnMajorX(n));
        var y = labelsAsUInt8
            // MATLAB stores a double array of small integers as miUINT8 to save space; the class stays double.
            ? new MatVar("y", MxDouble, [n, 1], MiUInt8, labels.Select(v => (byte)v).ToArray())
            : new MatVar("y", MxDouble, [n, 1], MiDouble, Doubles(labels));
        return MatV5(compress, x, y);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void ReadsXTransposedAndLabelTenAsZero(bool compress, bool labelsAsUInt8)
    {
        using var dir = new TempDir();
        Write(dir.File("train_32x32.mat"), SvhnFile(compress, [10, 1, 5, 9], labelsAsUInt8));
        using var ds = SvhnReader.Load(dir.Path, train: true);

        Assert.Equal(new long[] { 4, 3, 32, 32 }, ds.Images.shape);
        Assert.Equal(new long[] { 0, 1, 5, 9 }, ds.Labels.data<long>().ToArray());
        Assert.Equal("svhn/train", ds.Name);
        // Images[n, c, h, w] must be MATLAB X(h, w, c, n) (TestFiles.SvhnPixel): row 2 / column 30 distinguishes a transposition.
        Assert.Equal(TestFiles.SvhnPixel(2, 30, 0, 0), ds.Images[0, 0, 2, 30].item<byte>());
        Assert.Equal(TestFiles.SvhnPixel(30, 2, 0, 0), ds.Images[0, 0, 30, 2].item<byte>());
        Assert.NotEqual(TestFiles.SvhnPixel(2, 30, 0, 0), TestFiles.SvhnPixel(30, 2, 0, 0));
        Assert.Equal(TestFiles.SvhnPixel(31, 0, 2, 3), ds.Images[3, 2, 31, 0].item<byte>());
        Assert.Equal(TestFiles.SvhnPixel(5, 17, 1, 2), ds.Images[2, 1, 5, 17].item<byte>());

        using var expected = ExpectedImages(4);
        Assert.True(ds.Images.SameAs(expected));
    }

    [Fact]
    public void ReadsAFileWrittenBySciPy()
    {
        // Fixtures/svhn_scipy_32x32.mat comes from SciPy's savemat (see make_svhn_fixture.py next to it).
        string path = Path.Combine(AppContext.BaseDirectory, "Fixtures", "svhn_scipy_32x32.mat");
        using var ds = SvhnReader.LoadFile(path);
        Assert.Equal(new long[] { 0, 1, 5 }, ds.Labels.data<long>().ToArray());
        Assert.Equal(TestFiles.SvhnPixel(2, 30, 0, 0), ds.Images[0, 0, 2, 30].item<byte>());
        Assert.Equal(TestFiles.SvhnPixel(31, 4, 2, 2), ds.Images[2, 2, 31, 4].item<byte>());
        using var expected = ExpectedImages(3);
        Assert.True(ds.Images.SameAs(expected));
    }

    [Fact]
    public void ExtraVariablesAndCellArraysAreSkipped()
    {
        using var dir = new TempDir();
        var cell = new MatVar("notes", MxCell, [1, 1], MiUInt8, []);
        var big = new MatVar("someLongName", MxDouble, [1, 2], MiDouble, Doubles(1, 2));
        var x = new MatVar("X", MxUInt8, [32, 32, 3, 2], MiUInt8, TestFiles.SvhnColumnMajorX(2));
        var y = new MatVar("y", MxDouble, [2, 1], MiDouble, Doubles(3, 10));
        Write(dir.File("test_32x32.mat"), MatV5(true, cell, big, x, y));
        using var ds = SvhnReader.Load(dir.Path, train: false);
        Assert.Equal(new long[] { 3, 0 }, ds.Labels.data<long>().ToArray());

        var all = MatFile.Read(dir.File("test_32x32.mat"));
        Assert.Equal(new[] { 1, 2 }, all["someLongName"].Dimensions);
        Assert.Equal(new double[] { 1, 2 }, all["someLongName"].ToDoubleArray());
        Assert.Equal(MatClass.UInt8, all["X"].Class);
        Assert.False(all.ContainsKey("notes"));
    }

    [Fact]
    public void MatArrayToTensorReversesDimensions()
    {
        using var dir = new TempDir();
        // A 2×3 double matrix [[1, 2, 3], [4, 5, 6]] stored column-major: 1 4 2 5 3 6.
        var m = new MatVar("M", MxDouble, [2, 3], MiDouble, Doubles(1, 4, 2, 5, 3, 6));
        Write(dir.File("m.mat"), MatV5(false, m));
        var arr = MatFile.Read(dir.File("m.mat"))["M"];
        using var t = arr.ToTensor();
        Assert.Equal(new long[] { 3, 2 }, t.shape); // the transpose of MATLAB's 2×3
        Assert.Equal(6.0, t[2, 1].item<double>());  // MATLAB M(2, 3)
        Assert.Equal(2.0, t[1, 0].item<double>());  // MATLAB M(1, 2)
    }

    [Fact]
    public void TruncatedCompressedFileIsReported()
    {
        using var dir = new TempDir();
        string path = dir.File("train_32x32.mat");
        var bytes = SvhnFile(true, [1, 2, 3]);
        Write(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<DataFormatException>(() => SvhnReader.Load(dir.Path, train: true));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void TruncatedUncompressedFileIsReported()
    {
        using var dir = new TempDir();
        string path = dir.File("train_32x32.mat");
        var bytes = SvhnFile(false, [1, 2, 3]);
        Write(path, bytes[..5000]);
        var e = Assert.Throws<DataFormatException>(() => SvhnReader.LoadFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void BadHeaderAndV73AreReported()
    {
        using var dir = new TempDir();
        string path = dir.File("x.mat");
        var bytes = SvhnFile(true, [1]);
        bytes[126] = (byte)'X';
        Write(path, bytes);
        var e = Assert.Throws<DataFormatException>(() => MatFile.Read(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("endian indicator", e.Message);

        Write(path, [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0D, 0x0A, 0x1A, 0x0A, .. new byte[200]]);
        e = Assert.Throws<DataFormatException>(() => MatFile.Read(path));
        Assert.Contains("v7.3", e.Message);

        Write(path, new byte[50]);
        e = Assert.Throws<DataFormatException>(() => MatFile.Read(path));
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void SizeMismatchBetweenXAndYIsReported()
    {
        using var dir = new TempDir();
        string path = dir.File("train_32x32.mat");
        var x = new MatVar("X", MxUInt8, [32, 32, 3, 3], MiUInt8, TestFiles.SvhnColumnMajorX(3));
        var y = new MatVar("y", MxDouble, [2, 1], MiDouble, Doubles(1, 2));
        Write(path, MatV5(true, x, y));
        var e = Assert.Throws<DataFormatException>(() => SvhnReader.LoadFile(path));
        Assert.Contains(path, e.Message);
        Assert.Contains("3 images", e.Message);
    }

    [Fact]
    public void DataShorterThanDimensionsIsReported()
    {
        using var dir = new TempDir();
        string path = dir.File("train_32x32.mat");
        var x = new MatVar("X", MxUInt8, [32, 32, 3, 3], MiUInt8, TestFiles.SvhnColumnMajorX(2)); // claims 3 images, holds 2
        var y = new MatVar("y", MxDouble, [3, 1], MiDouble, Doubles(1, 2, 3));
        Write(path, MatV5(true, x, y));
        var e = Assert.Throws<DataFormatException>(() => SvhnReader.LoadFile(path));
        Assert.Contains("'X'", e.Message);
        Assert.Contains("9216 elements", e.Message);
    }

    [Fact]
    public void BadLabelsAreReported()
    {
        using var dir = new TempDir();
        string path = dir.File("test_32x32.mat");
        Write(path, SvhnFile(true, [1, 0, 3]));
        var e = Assert.Throws<DataFormatException>(() => SvhnReader.LoadFile(path));
        Assert.Contains("index 1", e.Message);
        Assert.Contains("1–10", e.Message);
    }

    [Fact]
    public void MissingVariableAndFileAreReported()
    {
        using var dir = new TempDir();
        string path = dir.File("train_32x32.mat");
        Write(path, MatV5(true, new MatVar("y", MxDouble, [1, 1], MiDouble, Doubles(1))));
        var e = Assert.Throws<DataFormatException>(() => SvhnReader.LoadFile(path));
        Assert.Contains("'X'", e.Message);
        var nf = Assert.Throws<FileNotFoundException>(() => SvhnReader.Load(dir.Path, train: false));
        Assert.Contains("test_32x32.mat", nf.Message);
    }

    private static Tensor ExpectedImages(int n)
    {
        using var scope = NewDisposeScope();
        var img = arange(n, ScalarType.Int64).view(-1, 1, 1, 1);
        var k = arange(3, ScalarType.Int64).view(1, -1, 1, 1);
        var i = arange(32, ScalarType.Int64).view(1, 1, -1, 1); // row = h
        var j = arange(32, ScalarType.Int64).view(1, 1, 1, -1); // column = w
        return ((i + 3 * j + 50 * k + 7 * img) % 256).to(ScalarType.Byte).MoveToOuterDisposeScope();
    }
}
