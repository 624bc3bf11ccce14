using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using SkiaSharp;
using Uan.Lab.Data;

namespace Uan.Lab.Tests.Data;

/// <summary>
/// The synthetic digits (a stand-in for SVHN) use the fonts installed on the machine; with none installed the
/// renderer's constructor throws the message naming the folders searched and the packages to install, so every test
/// here fails with it rather than being skipped.
/// </summary>
public class SynDigitsTests
{
    private const int Plane = 32 * 32;

    [Fact]
    public void SameSeedGivesIdenticalBytesOtherSeedDiffers()
    {
        using var r = new SynDigitsRenderer();
        var a = r.RenderAll(r.Samples(300, 3));
        var b = r.RenderAll(r.Samples(300, 3));
        var c = r.RenderAll(r.Samples(300, 4));
        Assert.Equal(300 * SynDigitsRenderer.ImageBytes, a.Length);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        // A new renderer (fonts loaded again) gives the same bytes too.
        using var r2 = new SynDigitsRenderer();
        Assert.Equal(a, r2.RenderAll(r2.Samples(300, 3)));
    }

    [Fact]
    public void OutputDoesNotDependOnTheDegreeOfParallelism()
    {
        using var r = new SynDigitsRenderer();
        var samples = r.Samples(3 * SynDigitsRenderer.ChunkSize + 17, 11);   // several chunks and a short last one
        var serial = r.RenderAll(samples, maxDegreeOfParallelism: 1);
        var parallel = r.RenderAll(samples, maxDegreeOfParallelism: 4);
        Assert.Equal(serial, parallel);
        using var ds = r.Generate(samples.Length, 11, maxDegreeOfParallelism: 2);
        Assert.Equal(serial, ds.Images.contiguous().data<byte>().ToArray());
        Assert.Equal(samples.Select(s => (long)s.Label), ds.Labels.data<long>().ToArray());
        Assert.Equal([samples.Length, 3, 32, 32], ds.Images.shape);
    }

    [Fact]
    public void CleanRendersMatchIndependentlyDrawnDigitsOfTheLabel()
    {
        // Templates are drawn here with SkiaSharp directly from the sample's documented meaning: the digit's glyph
        // box centred at the image centre plus the shift, rotated about that point, scaled so that the common box of
        // the ten digits is DigitHeight pixels high.
        using var r = new SynDigitsRenderer();
        var samples = r.Samples(200, 21);
        int correct = 0;
        double worst = 1;
        foreach (var s in samples)
        {
            var clean = Gray(r.Render(s, clean: true));
            var scores = Enumerable.Range(0, 10).Select(k => Correlation(clean, Template(r.FontFiles[s.Font], s, k))).ToArray();
            int best = Array.IndexOf(scores, scores.Max());
            if (best == s.Label) correct++;
            worst = Math.Min(worst, scores[s.Label]);
        }
        Assert.Equal(samples.Length, correct);
        Assert.True(worst > 0.99, $"lowest correlation of a clean render with its own template: {worst:F3}");
    }

    [Fact]
    public void NoisyImagesCorrelateBestWithTheirOwnDigit()
    {
        // The centre region (rows 4–27, columns 9–22) of the full image, in grey, against clean renders of the same
        // pose with each of the ten digits. Distractors, blur, noise and gradients make some images ambiguous, so the
        // requirement is 90% (measured with these 300 samples and the DejaVu fonts: all 300).
        using var r = new SynDigitsRenderer();
        var samples = r.Samples(300, 5);
        int correct = 0;
        foreach (var s in samples)
        {
            var noisy = Centre(Gray(r.Render(s)));
            double polarity = Math.Sign(Luma(s.Background) - Luma(s.Foreground));   // clean renders are dark on light
            var scores = Enumerable.Range(0, 10)
                .Select(k => polarity * Correlation(noisy, Centre(Gray(r.Render(s with { Label = k }, clean: true)))))
                .ToArray();
            if (Array.IndexOf(scores, scores.Max()) == s.Label) correct++;
        }
        Assert.True(correct >= 0.9 * samples.Length, $"{correct}/{samples.Length} noisy images closest to their own digit");
    }

    [Fact]
    public void ForegroundAndBackgroundDifferEnoughAndDistractorsAppear()
    {
        using var r = new SynDigitsRenderer();
        var samples = r.Samples(2000, 9);
        Assert.All(samples, s => Assert.True(Math.Abs(Luma(s.Foreground) - Luma(s.Background)) >= 79.5, s.ToString()));
        Assert.All(samples, s => Assert.InRange(s.Rotation, -15f, 15f));
        double left = samples.Count(s => s.LeftDistractor >= 0) / 2000.0, right = samples.Count(s => s.RightDistractor >= 0) / 2000.0;
        Assert.InRange(left, 0.5, 0.7);
        Assert.InRange(right, 0.5, 0.7);
        Assert.True(samples.Select(s => s.Font).Distinct().Count() == r.FontFiles.Count, "every font is used");
    }

    [Fact]
    public void ClassesAreRoughlyBalanced()
    {
        using var r = new SynDigitsRenderer();
        var counts = new int[10];
        foreach (var s in r.Samples(10_000, 1)) counts[s.Label]++;
        // Binomial(10,000, 0.1): standard deviation 30, so ±120 is four of them.
        Assert.All(counts, c => Assert.InRange(c, 880, 1120));
    }

    [Fact]
    public void WrittenFilesReadBackExactlyAndFollowTheIdxLayout()
    {
        using var data = new TempDir();
        var log = new List<string>();
        var result = SynDigits.Make(data.Path, trainCount: 300, testCount: 70, seed: 2, log: new Collect(log));
        string dir = data.File("syndigits");
        Assert.Equal(dir, result.Location);
        Assert.Contains(log, l => l.Contains("train: 300/300", StringComparison.Ordinal));
        foreach (var f in new[] { "train-images-idx4-ubyte.gz", "train-labels-idx1-ubyte.gz", "test-images-idx4-ubyte.gz",
                     "test-labels-idx1-ubyte.gz", "metadata.json", "README.md", "preview.png" })
            Assert.True(File.Exists(Path.Combine(dir, f)), f);
        Assert.Empty(Directory.GetDirectories(data.Path, ".syndigits*"));   // no staging folder left

        using var renderer = new SynDigitsRenderer();
        foreach (bool train in new[] { true, false })
        {
            int n = train ? 300 : 70;
            using var expected = renderer.Generate(n, SynDigits.SplitSeed(2, train));
            using var back = SynDigitsReader.Load(dir, train);
            Assert.Equal(train ? "syndigits/train" : "syndigits/test", back.Name);
            Assert.True(back.Images.SameAs(expected.Images));
            Assert.True(back.Labels.SameAs(expected.Labels));

            // The raw file, decoded here by hand: magic 0x00000804, N, 32, 32, 3, then pixels channels last.
            byte[] raw = Gunzip(Path.Combine(dir, SynDigits.ImagesFileName(train)));
            Assert.Equal(0x0804, BinaryPrimitives.ReadInt32BigEndian(raw));
            Assert.Equal(new[] { n, 32, 32, 3 }, Enumerable.Range(0, 4).Select(i => BinaryPrimitives.ReadInt32BigEndian(raw.AsSpan(4 + 4 * i))));
            Assert.Equal(20 + n * 3 * Plane, raw.Length);
            var chw = expected.Images.contiguous().data<byte>().ToArray();
            var rng = new Random(1);
            for (int t = 0; t < 200; t++)
            {
                int i = rng.Next(n), y = rng.Next(32), x = rng.Next(32), c = rng.Next(3);
                Assert.Equal(chw[i * 3 * Plane + c * Plane + y * 32 + x], raw[20 + ((i * 32 + y) * 32 + x) * 3 + c]);
            }
            byte[] labels = Gunzip(Path.Combine(dir, SynDigits.LabelsFileName(train)));
            Assert.Equal(0x0801, BinaryPrimitives.ReadInt32BigEndian(labels));
            Assert.Equal(expected.Labels.data<long>().ToArray(), labels.Skip(8).Select(b => (long)b));
        }

        using var meta = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "metadata.json")));
        Assert.Equal(2, meta.RootElement.GetProperty("seed").GetInt32());
        Assert.Equal(300, meta.RootElement.GetProperty("train").GetInt32());
        Assert.Equal(renderer.FontFiles, meta.RootElement.GetProperty("fonts").EnumerateArray().Select(e => e.GetString()));
        using var png = SKBitmap.Decode(Path.Combine(dir, "preview.png"));
        Assert.Equal(10 * 65 + 1, png.Width);
        Assert.Equal(10 * 65 + 1, png.Height);

        // Loadable by name, as every other dataset.
        var locator = new DataLocator(data.Path, fashionSystemDirs: []);
        Assert.True(locator.Find("syndigits").Present);
        using var byName = locator.Load("syndigits", train: false);
        Assert.Equal((70L, 3, 32, 32, 10), (byName.Count, byName.Channels, byName.Height, byName.Width, byName.NumClasses));
    }

    [Fact]
    public void MakingAgainReplacesTheDatasetButNotForeignFolders()
    {
        using var data = new TempDir();
        SynDigits.Make(data.Path, 20, 10, seed: 1);
        SynDigits.Make(data.Path, 30, 10, seed: 2);
        using (var ds = SynDigitsReader.Load(data.File("syndigits"), train: true)) Assert.Equal(30, ds.Count);

        using var other = new TempDir();
        Directory.CreateDirectory(other.File("syndigits"));
        File.WriteAllText(other.File("syndigits", "mine.txt"), "keep");
        var e = Assert.Throws<IOException>(() => SynDigits.Make(other.Path, 20, 10));
        Assert.Contains("does not hold SynDigits", e.Message);
        Assert.True(File.Exists(other.File("syndigits", "mine.txt")));
    }

    [Fact]
    public void TruncatedFilesAreErrorsNamingTheFile()
    {
        using var data = new TempDir();
        SynDigits.Make(data.Path, 40, 10, seed: 1);
        string dir = data.File("syndigits");
        string images = Path.Combine(dir, SynDigits.ImagesFileName(true));

        // Intact gzip around an IDX payload that stops short.
        byte[] raw = Gunzip(images);
        TestFiles.Write(images, raw[..(raw.Length - 1000)], gzip: true);
        var e = Assert.Throws<DataFormatException>(() => SynDigitsReader.Load(dir, train: true));
        Assert.Contains(images, e.Message);
        Assert.Contains("truncated", e.Message);

        // A gzip stream cut off in the middle.
        TestFiles.Write(images, raw, gzip: true);
        byte[] gz = File.ReadAllBytes(images);
        File.WriteAllBytes(images, gz[..(gz.Length / 2)]);
        var g = Assert.ThrowsAny<IOException>(() => SynDigitsReader.Load(dir, train: true));
        Assert.Contains(images, g.Message);

        // Labels that do not match the images.
        TestFiles.Write(images, raw, gzip: true);
        string labels = Path.Combine(dir, SynDigits.LabelsFileName(true));
        TestFiles.Write(labels, TestFiles.IdxLabels(1, 2, 3), gzip: true);
        var m = Assert.Throws<DataFormatException>(() => SynDigitsReader.Load(dir, train: true));
        Assert.Contains(labels, m.Message);
        Assert.Contains("size mismatch", m.Message);
    }

    [Fact]
    public void MissingFontsAndMissingDataAreExplained()
    {
        using var empty = new TempDir();
        var e = Assert.Throws<FileNotFoundException>(() => SynDigits.FindFontFiles([empty.Path, empty.File("nope")]));
        Assert.Contains(empty.Path, e.Message);
        Assert.Contains("fonts-dejavu-core", e.Message);

        File.WriteAllText(empty.File("fake.ttf"), "not a font");
        var f = Assert.Throws<FileNotFoundException>(() => new SynDigitsRenderer(SynDigits.FindFontFiles([empty.Path])));
        Assert.Contains("fake.ttf", f.Message);
        Assert.Contains("fonts-dejavu-core", f.Message);

        var locator = new DataLocator(empty.Path, fashionSystemDirs: []);
        Assert.Contains("syndigits", DataLocator.KnownIds);
        var entry = locator.Find("syndigits");
        Assert.False(entry.Present);
        Assert.Contains("make-syndigits", entry.HowToGet);
        var l = Assert.Throws<FileNotFoundException>(() => locator.Load("syndigits", train: true));
        Assert.Contains("train-images-idx4-ubyte.gz", l.Message);
    }

    // ---- helpers ------------------------------------------------------------------------------------------------

    private static SKBitmap Draw(Action<SKCanvas> draw)
    {
        var bmp = new SKBitmap(new SKImageInfo(32, 32, SKColorType.Rgba8888, SKAlphaType.Premul));
        using var canvas = new SKCanvas(bmp);
        canvas.Clear(SKColors.White);
        draw(canvas);
        return bmp;
    }

    private static double[] Template(string fontFile, SynDigitSample s, int digit)
    {
        using var face = SKTypeface.FromFile(fontFile);
        using var probe = new SKFont(face, 100) { Hinting = SKFontHinting.None, Subpixel = true, Edging = SKFontEdging.Antialias };
        probe.MeasureText("0123456789", out var all);
        using var font = new SKFont(face, 100 * s.DigitHeight / all.Height) { Hinting = SKFontHinting.None, Subpixel = true, Edging = SKFontEdging.Antialias };
        string text = digit.ToString(System.Globalization.CultureInfo.InvariantCulture);
        font.MeasureText(text, out var box);
        using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        using var bmp = Draw(c =>
        {
            c.Translate(16 + s.ShiftX, 16 + s.ShiftY);
            c.RotateDegrees(s.Rotation);
            c.DrawText(text, -box.MidX, -box.MidY, font, paint);
        });
        var px = bmp.GetPixelSpan();
        var g = new double[Plane];
        for (int p = 0; p < Plane; p++) g[p] = 0.299 * px[4 * p] + 0.587 * px[4 * p + 1] + 0.114 * px[4 * p + 2];
        return g;
    }

    private static double[] Gray(byte[] chw)
    {
        var g = new double[Plane];
        for (int p = 0; p < Plane; p++) g[p] = 0.299 * chw[p] + 0.587 * chw[Plane + p] + 0.114 * chw[2 * Plane + p];
        return g;
    }

    private static double[] Centre(double[] g)
    {
        var c = new List<double>();
        for (int y = 4; y < 28; y++)
            for (int x = 9; x < 23; x++)
                c.Add(g[y * 32 + x]);
        return c.ToArray();
    }

    private static double Correlation(double[] a, double[] b)
    {
        double ma = a.Average(), mb = b.Average(), sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sab += (a[i] - ma) * (b[i] - mb);
            saa += (a[i] - ma) * (a[i] - ma);
            sbb += (b[i] - mb) * (b[i] - mb);
        }
        return saa == 0 || sbb == 0 ? 0 : sab / Math.Sqrt(saa * sbb);
    }

    private static double Luma(SKColor c) => 0.299 * c.Red + 0.587 * c.Green + 0.114 * c.Blue;

    private static byte[] Gunzip(string path)
    {
        using var f = File.OpenRead(path);
        using var gz = new GZipStream(f, CompressionMode.Decompress);
        using var ms = new MemoryStream();
        gz.CopyTo(ms);
        return ms.ToArray();
    }

    private sealed class Collect(List<string> lines) : IProgress<string>
    {
        public void Report(string value)
        {
            lock (lines) lines.Add(value);
        }
    }
}
