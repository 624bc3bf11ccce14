using System.Buffers.Binary;
using System.IO.Compression;
using Uan.Lab.Data;
using static TorchSharp.torch;
using static Uan.Lab.Tests.Data.TestFiles;

namespace Uan.Lab.Tests.Data;

/// <summary>Seeded fault injection into CIFAR binary batches and SVHN MAT v5 files (raw and zlib-compressed).</summary>
public class CifarSvhnFuzzTests
{
    private static byte CifarPixel(int n, int c, int h, int w) => (byte)(n * 77 + c * 40 + h * 3 + w * 5);

    [Theory]
    [InlineData(1, 0, 10)]   // CIFAR-10: label byte, pixels
    [InlineData(2, 1, 100)]  // CIFAR-100, fine labels
    [InlineData(2, 0, 20)]   // CIFAR-100, coarse labels
    public void CifarBatchesSurviveCutsAndFlips(int labelBytes, int labelIndex, int numClasses)
    {
        const int n = 2;
        int record = labelBytes + 3072;
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        byte[][] recordLabels = labelBytes == 1 ? [[7], [2]] : [[4, 61], [19, 3]];
        byte[] original = CifarRecords(n, i => recordLabels[i], CifarPixel);
        var pixels = new byte[n * 3072];
        for (int i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                for (int h = 0; h < 32; h++)
                    for (int w = 0; w < 32; w++)
                        pixels[((i * 3 + c) * 32 + h) * 32 + w] = CifarPixel(i, c, h, w);
        var images = tensor(pixels, [n, 3, 32, 32], ScalarType.Byte);
        var labels = tensor(recordLabels.Select(l => (long)l[labelIndex]).ToArray(), ScalarType.Int64);
        string path = dir.File("batch.bin");
        ImageDataset Load() => CifarReader.LoadFiles([path], labelBytes, labelIndex, numClasses, "fuzz");
        var rng = new Random(1205);
        var fuzz = new Fuzz();
        fuzz.Check("original", path, original, Load, Fuzz.Unchanged(images, labels));
        Assert.Equal(1, fuzz.Accepted);

        // A cut at a record boundary leaves a shorter but valid batch; the format cannot tell, the reader must
        // return exactly the records that remain.
        using var first = images.narrow(0, 0, 1);
        using var firstLabel = labels.narrow(0, 0, 1);
        var cuts = Fuzz.Around(0, labelBytes, record, 2 * record).Concat(Fuzz.Sample(rng, 1, original.Length, 30));
        foreach (var (name, bytes) in Fuzz.Cuts(original, cuts))
            fuzz.Check(name, path, bytes, Load, bytes.Length == record ? Fuzz.Unchanged(first, firstLabel) : Fuzz.Refuse);

        // Every label byte of every record, several times, plus pixels: a label may change to another valid
        // class (undetectable) but never to one outside the label space.
        var positions = Enumerable.Range(0, labelBytes).SelectMany(b => new[] { b, record + b });
        var flips = Enumerable.Range(0, 8).SelectMany(_ => Fuzz.Flips(original, positions, rng))
            .Concat(Fuzz.Flips(original, Fuzz.Sample(rng, 0, original.Length, 40), rng));
        foreach (var (name, bytes) in flips)
            fuzz.Check(name, path, bytes, Load, Fuzz.AtMostOneValueChanged(images, labels));
        fuzz.AssertClean(minRefused: 20, minAccepted: 20);
    }

    // ---- SVHN ------------------------------------------------------------------------------------------------------



    private static (Tensor Images, Tensor Labels) SvhnExpected(int n, long[] digits)
    {
        var pixels = new byte[n * 3072];
        for (int img = 0; img < n; img++)
            for (int k = 0; k < 3; k++)
                for (int i = 0; i < 32; i++)
                    for (int j = 0; j < 32; j++)
                        pixels[((img * 3 + k) * 32 + i) * 32 + j] = TestFiles.SvhnPixel(i, j, k, img);
        return (tensor(pixels, [n, 3, 32, 32], ScalarType.Byte), tensor(digits, ScalarType.Int64));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SvhnFilesSurviveCutsAndFlips(bool compress)
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        var (images, labels) = SvhnExpected(2, [0, 4]);
        byte[] original = MatV5(compress,
            new MatVar("X", MxUInt8, [32, 32, 3, 2], MiUInt8, TestFiles.SvhnColumnMajorX(2)),
            new MatVar("y", MxDouble, [2, 1], MiDouble, Doubles(10, 4)));
        string path = dir.File("train_32x32.mat");
        ImageDataset Load() => SvhnReader.LoadFile(path);
        var rng = new Random(1206);
        var fuzz = new Fuzz();
        fuzz.Check("original", path, original, Load, Fuzz.Unchanged(images, labels));
        Assert.Equal(1, fuzz.Accepted);

        // Uncompressed: every byte of the header and of the tags before X's pixels, y entirely, pixels sampled.
        // Compressed: no flip may change the content unnoticed (zlib's Adler-32 covers the inflated data).
        int xData = 128 + 8 + 16 + 16 + 8 + 8;
        int yStart = xData + 6144;
        // Compressed: header, tags and zlib header/trailer in full, the deflate data sampled (the set stays fast).
        var compressedPositions = Enumerable.Range(0, 200).Concat(Enumerable.Range(original.Length - 40, 40))
            .Concat(Fuzz.Sample(rng, 200, original.Length - 40, 300));
        var cuts = compress ? compressedPositions
            : Enumerable.Range(0, yStart + 8).Where(l => l <= xData + 8 || l >= yStart - 8).Concat(Enumerable.Range(yStart, original.Length - yStart));
        foreach (var (name, bytes) in Fuzz.Cuts(original, compress ? cuts : cuts.Where((_, i) => i % 3 == 0 || i > yStart)))
            fuzz.Check(name, path, bytes, Load, Fuzz.Refuse);
        var flipPositions = compress ? compressedPositions
            : Enumerable.Range(0, xData + 8).Concat(Enumerable.Range(yStart, original.Length - yStart)).Concat(Fuzz.Sample(rng, xData, yStart, 40));
        var judge = compress ? Fuzz.Unchanged(images, labels) : Fuzz.AtMostOneValueChanged(images, labels);
        foreach (var (name, bytes) in Fuzz.Flips(original, flipPositions, rng))
            fuzz.Check(name, path, bytes, Load, judge);
        fuzz.AssertClean(minRefused: 100, minAccepted: compress ? 1 : 40);
    }

    [Fact]
    public void ZlibStreamWithABrokenAdler32IsRefused()
    {
        // Different content under the original content's checksum: whichever layer sees it (the inflater when the
        // stream is whole, the reader's own Adler-32 check otherwise), it must come back as a named error.
        using var dir = new TempDir();
        byte[] matrix = MatrixElement(new MatVar("X", MxUInt8, [32, 32, 3, 1], MiUInt8, TestFiles.SvhnColumnMajorX(1)));
        byte[] good = Zlib(matrix);
        matrix[^10] ^= 0x55;
        byte[] bad = Zlib(matrix);
        good.AsSpan(good.Length - 4).CopyTo(bad.AsSpan(bad.Length - 4));
        string path = dir.File("x.mat");
        Write(path, MatWithCompressed(bad));
        var e = Assert.Throws<DataFormatException>(() => MatFile.Read(path));
        Assert.Equal(path, e.FilePath);
        Assert.Matches("Adler-32|zlib", e.Message);
    }

    [Fact]
    public void ZlibStreamCutBeforeItsChecksumIsRefused()
    {
        // .NET's ZLibStream returns the data without error when the Adler-32 (or the end of the deflate data) is
        // missing; the element then looked complete.
        using var dir = new TempDir();
        byte[] z = Zlib(MatrixElement(new MatVar("X", MxUInt8, [32, 32, 3, 1], MiUInt8, TestFiles.SvhnColumnMajorX(1))));
        string path = dir.File("x.mat");
        for (int cut = 1; cut <= 6; cut++)
        {
            Write(path, MatWithCompressed(z[..^cut]));
            var e = Assert.Throws<DataFormatException>(() => MatFile.Read(path));
            Assert.Equal(path, e.FilePath);
        }
    }

    [Fact]
    public void CompressedElementDeclaringHugeMatrixIsRefusedWithoutAllocating()
    {
        using var dir = new TempDir();
        byte[] inner = MatrixElement(new MatVar("X", MxUInt8, [32, 32, 3, 1], MiUInt8, TestFiles.SvhnColumnMajorX(1)));
        BinaryPrimitives.WriteUInt32LittleEndian(inner.AsSpan(4), 0x7FFF_FF00);
        string path = dir.File("x.mat");
        Write(path, MatWithCompressed(Zlib(inner)));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DataFormatException>(() => MatFile.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(path, e.FilePath);
        Assert.True(allocated < 1 << 20, $"{allocated} bytes allocated");
    }

    [Fact]
    public void OverflowingMatDimensionsAreRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("x.mat");
        // 2^21 · 2^21 · 2^22 · 1 wraps to 0 elements, matching an empty real part.
        Write(path, MatV5(false, new MatVar("X", MxUInt8, [1 << 21, 1 << 21, 1 << 22, 1], MiUInt8, [])));
        var e = Assert.Throws<DataFormatException>(() => MatFile.Read(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("overflow", e.Message);
    }

    [Theory]
    [InlineData(MiSingle)]
    [InlineData(MiDouble)]
    [InlineData(MiInt16)]
    [InlineData(MiUInt16)]
    [InlineData(MiInt32)]
    [InlineData(MiUInt32)]
    [InlineData(MiInt64)]
    public void SvhnXStoredAsAnyNumericTypeReadsTheSamePixels(int miType)
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        var (images, labels) = SvhnExpected(2, [0, 4]);
        byte[] x = TestFiles.SvhnColumnMajorX(2);
        string path = dir.File("train_32x32.mat");
        Write(path, MatV5(true, new MatVar("X", MxClassOf(miType), [32, 32, 3, 2], miType, Encode(x.Select(v => (double)v), miType)),
            new MatVar("y", MxDouble, [2, 1], MiDouble, Doubles(10, 4))));
        using var ds = SvhnReader.LoadFile(path);
        Assert.True(ds.Images.SameAs(images));
        Assert.True(ds.Labels.SameAs(labels));
    }

    [Theory]
    [InlineData(MiSingle, double.NaN)]
    [InlineData(MiDouble, 0.5)]
    [InlineData(MiDouble, 256)]
    [InlineData(MiInt16, -1)]
    [InlineData(MiSingle, double.PositiveInfinity)]
    public void SvhnXWithValuesNoImageHoldsIsRefused(int miType, double value)
    {
        using var dir = new TempDir();
        double[] x = TestFiles.SvhnColumnMajorX(1).Select(v => (double)v).ToArray();
        x[1500] = value;
        string path = dir.File("train_32x32.mat");
        Write(path, MatV5(false, new MatVar("X", MxClassOf(miType), [32, 32, 3], miType, Encode(x, miType)),
            new MatVar("y", MxDouble, [1, 1], MiDouble, Doubles(3))));
        var e = Assert.Throws<DataFormatException>(() => SvhnReader.LoadFile(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("0–255", e.Message);
        Assert.Contains(((MatDataType)miType).ToString(), e.Message);
    }

    [Fact]
    public void SvhnWithNoImagesIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("test_32x32.mat");
        Write(path, MatV5(false, new MatVar("X", MxUInt8, [32, 32, 3, 0], MiUInt8, []), new MatVar("y", MxDouble, [0, 1], MiDouble, [])));
        var e = Assert.Throws<DataFormatException>(() => SvhnReader.LoadFile(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("no images", e.Message);
    }

    [Fact]
    public void ComplexFlagWithoutAnImaginaryPartIsRefused()
    {
        using var dir = new TempDir();
        string path = dir.File("m.mat");
        byte[] bytes = MatV5(false, new MatVar("M", MxDouble, [1, 2], MiDouble, Doubles(1, 2)));
        bytes[128 + 8 + 8 + 1] |= 0x08; // array flags: the complex bit sits in the second byte
        Write(path, bytes);
        var e = Assert.Throws<DataFormatException>(() => MatFile.Read(path));
        Assert.Equal(path, e.FilePath);
        Assert.Contains("imaginary", e.Message);
    }

    // ---- helpers -----------------------------------------------------------------------------------------------------

    private const int MiInt16 = 3, MiUInt16 = 4, MiSingle = 7, MiInt64 = 12;

    private static int MxClassOf(int miType) => miType switch
    {
        MiSingle => 7, MiDouble => 6, MiInt16 => 10, MiUInt16 => 11, MiInt32 => 12, MiUInt32 => 13, MiInt64 => 14,
        _ => throw new ArgumentOutOfRangeException(nameof(miType)),
    };

    private static byte[] Encode(IEnumerable<double> values, int miType)
    {
        double[] v = values.ToArray();
        int size = miType switch { MiInt16 or MiUInt16 => 2, MiSingle or MiInt32 or MiUInt32 => 4, _ => 8 };
        var b = new byte[v.Length * size];
        for (int i = 0; i < v.Length; i++)
        {
            var s = b.AsSpan(i * size);
            switch (miType)
            {
                case MiSingle: BinaryPrimitives.WriteSingleLittleEndian(s, (float)v[i]); break;
                case MiDouble: BinaryPrimitives.WriteDoubleLittleEndian(s, v[i]); break;
                case MiInt16: BinaryPrimitives.WriteInt16LittleEndian(s, (short)v[i]); break;
                case MiUInt16: BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)v[i]); break;
                case MiInt32: BinaryPrimitives.WriteInt32LittleEndian(s, (int)v[i]); break;
                case MiUInt32: BinaryPrimitives.WriteUInt32LittleEndian(s, (uint)v[i]); break;
                default: BinaryPrimitives.WriteInt64LittleEndian(s, (long)v[i]); break;
            }
        }
        return b;
    }

    private static byte[] Zlib(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true)) z.Write(data);
        return ms.ToArray();
    }

    /// <summary>A MAT v5 file whose only element is miCOMPRESSED around <paramref name="zlib"/>.</summary>
    private static byte[] MatWithCompressed(byte[] zlib)
    {
        byte[] header = MatV5(false)[..128];
        var tag = new byte[8];
        BinaryPrimitives.WriteInt32LittleEndian(tag, MiCompressed);
        BinaryPrimitives.WriteInt32LittleEndian(tag.AsSpan(4), zlib.Length);
        return [.. header, .. tag, .. zlib];
    }
}
