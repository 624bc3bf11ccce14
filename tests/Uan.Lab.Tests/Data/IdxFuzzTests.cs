using System.Buffers.Binary;
using System.IO.Compression;
using Uan.Lab.Data;
using static TorchSharp.torch;
using static Uan.Lab.Tests.Data.TestFiles;

namespace Uan.Lab.Tests.Data;

/// <summary>Seeded fault injection into MNIST-style IDX files (raw and gzip) and SynDigits' colour IDX files.</summary>
public class IdxFuzzTests
{
    private const int N = 3, H = 5, W = 4;
    private static readonly byte[] LabelValues = [3, 7, 0];

    private static byte Pixel(int i, int y, int x) => (byte)(17 * i + 5 * y + x * 29 + 11);

    private static byte[] Gzip(byte[] raw)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true)) gz.Write(raw);
        return ms.ToArray();
    }

    private static (Tensor Images, Tensor Labels) Expected()
    {
        var images = new byte[N * H * W];
        for (int i = 0; i < N; i++)
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++)
                    images[(i * H + y) * W + x] = Pixel(i, y, x);
        return (tensor(images, [N, 1, H, W], ScalarType.Byte), tensor(LabelValues.Select(v => (long)v).ToArray(), ScalarType.Int64));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MnistFilesSurviveCutsAndFlips(bool gzip)
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        var (images, labels) = Expected();
        string imagesPath = dir.File("images"), labelsPath = dir.File("labels");
        byte[] rawImages = IdxImages(N, H, W, Pixel), rawLabels = IdxLabels(LabelValues);
        byte[] imageBytes = gzip ? Gzip(rawImages) : rawImages, labelBytes = gzip ? Gzip(rawLabels) : rawLabels;
        var rng = new Random(1203);
        var fuzz = new Fuzz();
        ImageDataset Load() => MnistReader.LoadFiles(imagesPath, labelsPath, "fuzz");
        string[] both = [imagesPath, labelsPath];

        // Control: the untouched pair loads exactly, or every refusal below would be meaningless.
        File.WriteAllBytes(imagesPath, imageBytes);
        File.WriteAllBytes(labelsPath, labelBytes);
        fuzz.Check("original", Load, Fuzz.Unchanged(images, labels), both);
        Assert.Equal(1, fuzz.Accepted);

        // Raw IDX has no checksum: a flipped pixel or label value is undetectable; gzip's CRC-32 catches everything.
        var flipJudge = gzip ? Fuzz.Unchanged(images, labels) : Fuzz.AtMostOneValueChanged(images, labels);
        foreach (var (name, bytes) in Fuzz.Cuts(imageBytes, Fuzz.AllLengths(imageBytes)))
            fuzz.Check(name, imagesPath, bytes, Load, Fuzz.Refuse, both);
        foreach (var (name, bytes) in Fuzz.Flips(imageBytes, Fuzz.AllLengths(imageBytes), rng))
            fuzz.Check(name, imagesPath, bytes, Load, flipJudge, both);
        File.WriteAllBytes(imagesPath, imageBytes);
        foreach (var (name, bytes) in Fuzz.Cuts(labelBytes, Fuzz.AllLengths(labelBytes)))
            fuzz.Check(name, labelsPath, bytes, Load, Fuzz.Refuse, both);
        foreach (var (name, bytes) in Fuzz.Flips(labelBytes, Fuzz.AllLengths(labelBytes), rng))
            fuzz.Check(name, labelsPath, bytes, Load, flipJudge, both);
        File.WriteAllBytes(labelsPath, labelBytes);

        // Extra bytes after the data (and, for gzip, after the trailer) are refused too.
        fuzz.Check("one extra byte", imagesPath, [.. imageBytes, 0], Load, Fuzz.Refuse, both);
        File.WriteAllBytes(imagesPath, imageBytes);
        fuzz.AssertClean(minRefused: imageBytes.Length + labelBytes.Length + 1, minAccepted: 1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AbsurdDimensionsAreRefusedWithoutAllocating(bool gzip)
    {
        using var dir = new TempDir();
        string imagesPath = dir.File("images"), labelsPath = dir.File("labels");
        File.WriteAllBytes(labelsPath, IdxLabels(LabelValues));
        var fuzz = new Fuzz();
        // 2^21 · 2^21 · 2^22 = 2^64 wraps to 0 in 64-bit arithmetic and matched the empty body that follows.
        int[][] shapes = [[1 << 21, 1 << 21, 1 << 22], [int.MaxValue, int.MaxValue, int.MaxValue], [1 << 30, 4, 1],
                          [N, int.MaxValue, 2], [N, 1 << 16, 1 << 16], [N, H, 0], [0, H, W], [0, 0, 0]];
        // Each shape twice: header alone (the wrapped product of 0 matches it) and header with the original body.
        foreach (int[] d in shapes)
        foreach (int body in new[] { 0, N * H * W })
        {
            var header = new byte[16 + body];
            BinaryPrimitives.WriteInt32BigEndian(header, 2051);
            for (int i = 0; i < 3; i++) BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4 + 4 * i), d[i]);
            byte[] bytes = gzip ? Gzip(header) : header;
            long before = GC.GetAllocatedBytesForCurrentThread();
            fuzz.Check($"{string.Join("×", d)} + {body} bytes", imagesPath, bytes, () => MnistReader.LoadFiles(imagesPath, labelsPath, "fuzz"), Fuzz.Refuse, imagesPath, labelsPath);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated < 1 << 20, $"{string.Join("×", d)}: {allocated} bytes allocated for a {bytes.Length}-byte file");
        }
        fuzz.AssertClean(minRefused: 2 * shapes.Length);
    }

    [Fact]
    public void EmptySplitIsRefused()
    {
        using var dir = new TempDir();
        string imagesPath = dir.File("images"), labelsPath = dir.File("labels");
        Write(imagesPath, IdxImages(0, 28, 28, Pixel));
        Write(labelsPath, IdxLabels());
        var e = Assert.Throws<DataFormatException>(() => MnistReader.LoadFiles(imagesPath, labelsPath, "fuzz"));
        Assert.Equal(imagesPath, e.FilePath);
        Assert.Contains("no images", e.Message);
    }

    [Fact]
    public void GzipBombBehindASmallHeaderStopsAtTheDeclaredSize()
    {
        // A 1-label header followed by 64 MiB of zeros, 64 KiB compressed: reading the whole content first (as the
        // reader once did) costs over 64 MiB and a long wait before the size mismatch is even seen.
        using var dir = new TempDir();
        string path = dir.File("labels.gz");
        using (var f = File.Create(path))
        using (var gz = new GZipStream(f, CompressionLevel.Fastest))
        {
            gz.Write(IdxLabels(4));
            var zeros = new byte[1 << 20];
            for (int i = 0; i < 64; i++) gz.Write(zeros);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadLabels(path));
        watch.Stop();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(path, e.FilePath);
        Assert.Contains("size mismatch", e.Message);
        Assert.True(allocated < 4 << 20, $"{allocated} bytes allocated");
        Assert.True(watch.ElapsedMilliseconds < 2000, $"{watch.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void GzipBodyShorterThanDeclaredGrowsOnlyWithTheData()
    {
        // The header declares 10,000 × 100 × 100 = 100 MB (possible for a file of this size at deflate's ratio), but
        // only 1 MB of pixels follow: memory must follow the megabyte, not the hundred.
        using var dir = new TempDir();
        string path = dir.File("images.gz");
        var header = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(header, 2051);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), 10000);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(8), 100);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(12), 100);
        var body = new byte[1 << 20];
        new Random(5).NextBytes(body.AsSpan(0, 100_000));
        File.WriteAllBytes(path, Gzip([.. header, .. body]));
        Assert.True(new FileInfo(path).Length * DeflateRatio > 100_000_000, "the file must be able to hold the declared size");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadImages(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("truncated", e.Message);
        Assert.Contains($"only {body.Length} follow", e.Message);
        Assert.True(allocated < 8 << 20, $"{allocated} bytes allocated for 1 MB of content declared as 100 MB");
    }

    /// <summary>Deflate's largest expansion (RFC 1951), from the format rather than from the reader's constant.</summary>
    private const long DeflateRatio = 1032;

    [Fact]
    public void GzipCutInsideTheTrailerIsRefused()
    {
        // .NET's GZipStream returns all the data and no error when the 8-byte trailer is missing.
        using var dir = new TempDir();
        string path = dir.File("labels.gz");
        byte[] gz = Gzip(IdxLabels(LabelValues));
        for (int cut = 1; cut <= 8; cut++)
        {
            File.WriteAllBytes(path, gz[..^cut]);
            var e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadLabels(path));
            Assert.Equal(path, e.FilePath);
        }
    }

    [Fact]
    public void MultiMemberGzipReadsAndItsLastMemberIsChecked()
    {
        // gzip allows concatenated members (cat a.gz b.gz); the trailer check covers the last member's bytes only.
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        var (images, _) = Expected();
        byte[] raw = IdxImages(N, H, W, Pixel);
        byte[] twoMembers = [.. Gzip(raw[..10]), .. Gzip(raw[10..])];
        string path = dir.File("images.gz");
        File.WriteAllBytes(path, twoMembers);
        Assert.True(IdxFormat.ReadImages(path).SameAs(images));
        Assert.Equal(raw, DataFiles.ReadAllBytesMaybeGzip(path, "test"));

        twoMembers[^6] ^= 0x01; // the last member's CRC-32
        File.WriteAllBytes(path, twoMembers);
        var e = Assert.Throws<DataFormatException>(() => IdxFormat.ReadImages(path));
        Assert.Equal(path, e.FilePath);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SynDigitsFilesSurviveCutsAndFlips(bool gzip)
    {
        const int n = 2, s = 32;
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        string imagesPath = dir.File("images"), labelsPath = dir.File("labels");
        // IDX colour: magic 0x0804, N, H, W, C, then pixels channels-last.
        var raw = new byte[20 + n * s * s * 3];
        BinaryPrimitives.WriteInt32BigEndian(raw, 0x0804);
        BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(4), n);
        BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(8), s);
        BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(12), s);
        BinaryPrimitives.WriteInt32BigEndian(raw.AsSpan(16), 3);
        var expected = new byte[n * 3 * s * s];
        for (int i = 0; i < n; i++)
            for (int y = 0; y < s; y++)
                for (int x = 0; x < s; x++)
                    for (int c = 0; c < 3; c++)
                    {
                        byte v = (byte)(i * 91 + y * 7 + x * 3 + c * 50);
                        raw[20 + ((i * s + y) * s + x) * 3 + c] = v;
                        expected[((i * 3 + c) * s + y) * s + x] = v;
                    }
        var images = tensor(expected, [n, 3, s, s], ScalarType.Byte);
        var labels = tensor(new long[] { 9, 2 }, ScalarType.Int64);
        byte[] imageBytes = gzip ? Gzip(raw) : raw, labelBytes = gzip ? Gzip(IdxLabels(9, 2)) : IdxLabels(9, 2);
        File.WriteAllBytes(imagesPath, imageBytes);
        File.WriteAllBytes(labelsPath, labelBytes);
        var rng = new Random(1204);
        var fuzz = new Fuzz();
        ImageDataset Load() => SynDigitsReader.LoadFiles(imagesPath, labelsPath);
        string[] both = [imagesPath, labelsPath];
        fuzz.Check("original", Load, Fuzz.Unchanged(images, labels), both);

        var flipJudge = gzip ? Fuzz.Unchanged(images, labels) : Fuzz.AtMostOneValueChanged(images, labels);
        // The gzip stream is a few kilobytes: its header and trailer bytes in full, the deflate data sampled.
        var gzipPositions = Enumerable.Range(0, 40).Concat(Enumerable.Range(imageBytes.Length - 40, 40)).Concat(Fuzz.Sample(rng, 40, imageBytes.Length - 40, 150));
        var cuts = gzip ? gzipPositions : Fuzz.Around(0, 4, 8, 12, 16, 20, raw.Length).Concat(Fuzz.Sample(rng, 21, raw.Length, 20));
        foreach (var (name, bytes) in Fuzz.Cuts(imageBytes, cuts))
            fuzz.Check(name, imagesPath, bytes, Load, Fuzz.Refuse, both);
        var flips = gzip ? gzipPositions : Enumerable.Range(0, 20).Concat(Fuzz.Sample(rng, 20, raw.Length, 40));
        foreach (var (name, bytes) in Fuzz.Flips(imageBytes, flips, rng))
            fuzz.Check(name, imagesPath, bytes, Load, flipJudge, both);
        File.WriteAllBytes(imagesPath, imageBytes);
        foreach (var (name, bytes) in Fuzz.Cuts(labelBytes, Fuzz.AllLengths(labelBytes)))
            fuzz.Check(name, labelsPath, bytes, Load, Fuzz.Refuse, both);
        foreach (var (name, bytes) in Fuzz.Flips(labelBytes, Fuzz.AllLengths(labelBytes), rng))
            fuzz.Check(name, labelsPath, bytes, Load, flipJudge, both);
        fuzz.AssertClean(minRefused: 40, minAccepted: 1);
    }
}
