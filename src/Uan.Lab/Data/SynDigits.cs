using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// The random choices behind one synthetic digit image. Rendering the same sample again gives the same pixels, so a
/// sample can also be rendered "clean" (black on white, no distractors, blur or noise) with its own font and pose.
/// </summary>
/// <param name="Label">The centred digit, 0–9.</param>
/// <param name="Font">Index into <see cref="SynDigitsRenderer.FontFiles"/>.</param>
/// <param name="DigitHeight">Height in pixels of the font's digits (their common bounding box).</param>
/// <param name="Rotation">Rotation of the digit row in degrees, clockwise.</param>
/// <param name="ShiftX">Horizontal offset of the centre digit from the image centre, in pixels.</param>
/// <param name="ShiftY">Vertical offset of the centre digit from the image centre, in pixels.</param>
/// <param name="Foreground">Colour of the digits.</param>
/// <param name="Background">Background colour at the start of the gradient.</param>
/// <param name="Background2">Background colour at the end of the gradient.</param>
/// <param name="GradientAngle">Direction of the background gradient in degrees.</param>
/// <param name="LeftDistractor">Digit drawn to the left of the centre digit, or -1 for none.</param>
/// <param name="RightDistractor">Digit drawn to the right of the centre digit, or -1 for none.</param>
/// <param name="Gap">Space between the centre digit and a distractor, in pixels.</param>
/// <param name="BlurSigma">Gaussian blur of the digits (SkiaSharp sigma, pixels); 0 for none.</param>
/// <param name="NoiseSigma">Standard deviation of the additive per-pixel Gaussian noise on the 0–255 scale.</param>
/// <param name="NoiseSeed">Seed of the noise's own System.Random.</param>
public sealed record SynDigitSample(int Label, int Font, float DigitHeight, float Rotation, float ShiftX, float ShiftY,
    SKColor Foreground, SKColor Background, SKColor Background2, float GradientAngle,
    int LeftDistractor, int RightDistractor, float Gap, float BlurSigma, float NoiseSigma, int NoiseSeed);

/// <summary>
/// Renders house-number-like 32×32 RGB digit crops, a synthetic stand-in for SVHN in the spirit of Ganin and
/// Lempitsky's SynDigits (2015): a centred digit in one of the installed TrueType/OpenType fonts, random colours with
/// enough contrast, a gradient background, random size, rotation (±15°) and shift, Gaussian blur and noise, and
/// neighbouring digits cut off at the left and right edges. Typefaces are loaded from files because the
/// NoDependencies native build of SkiaSharp has no fontconfig to find system fonts by name.
/// </summary>
public sealed class SynDigitsRenderer : IDisposable
{
    /// <summary>Side of the square images.</summary>
    public const int ImageSize = 32;

    /// <summary>Bytes of one image, [3, 32, 32].</summary>
    public const int ImageBytes = 3 * ImageSize * ImageSize;

    /// <summary>Images rendered per parallel work item; fixed so the work split does not depend on the machine.</summary>
    public const int ChunkSize = 256;

    private const string Digits = "0123456789";
    private readonly SKTypeface[] _typefaces;
    // Digit height in pixels per unit of text size, per font, so a sample's DigitHeight is the same on screen in every font.
    private readonly float[] _heightPerSize;

    /// <summary>
    /// Loads <paramref name="fontFiles"/> (null: <see cref="SynDigits.FindFontFiles"/>), keeping only the fonts that
    /// have a glyph for every digit, in the given order. Throws when none is usable.
    /// </summary>
    public SynDigitsRenderer(IReadOnlyList<string>? fontFiles = null)
    {
        fontFiles ??= SynDigits.FindFontFiles();
        var files = new List<string>();
        var faces = new List<SKTypeface>();
        var ratios = new List<float>();
        var rejected = new List<string>();
        foreach (string file in fontFiles)
        {
            var face = File.Exists(file) ? SKTypeface.FromFile(file) : null;
            if (face is null || !face.ContainsGlyphs(Digits))
            {
                face?.Dispose();
                rejected.Add(file);
                continue;
            }
            using var font = MakeFont(face, 100);
            font.MeasureText(Digits, out var bounds);
            if (bounds.Height <= 0)
            {
                face.Dispose();
                rejected.Add(file);
                continue;
            }
            files.Add(file);
            faces.Add(face);
            ratios.Add(bounds.Height / 100f);
        }
        if (faces.Count == 0)
            throw new FileNotFoundException(
                $"None of the {fontFiles.Count} font files given can render the digits 0–9 ({string.Join(", ", rejected.Take(5))}" +
                $"{(rejected.Count > 5 ? ", ..." : "")}). {SynDigits.FontInstallHint}");
        FontFiles = files;
        _typefaces = faces.ToArray();
        _heightPerSize = ratios.ToArray();
    }

    /// <summary>The font files in use, in the order <see cref="SynDigitSample.Font"/> indexes them.</summary>
    public IReadOnlyList<string> FontFiles { get; }

    /// <summary>
    /// Draws the random choices of one image from <paramref name="rng"/>. Only <paramref name="rng"/> decides them, so
    /// a seeded generator gives the same samples on every run (for the same list of fonts).
    /// </summary>
    public SynDigitSample Sample(Random rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        int label = rng.Next(10);
        int font = rng.Next(_typefaces.Length);
        float height = Uniform(rng, 15f, 25f);
        float rotation = Uniform(rng, -15f, 15f);
        float sx = Uniform(rng, -2f, 2f), sy = Uniform(rng, -2f, 2f);
        var (fg, bg) = Colours(rng);
        var bg2 = new SKColor(Jitter(rng, bg.Red), Jitter(rng, bg.Green), Jitter(rng, bg.Blue));
        float angle = Uniform(rng, 0f, 360f);
        int left = rng.NextDouble() < 0.6 ? rng.Next(10) : -1;
        int right = rng.NextDouble() < 0.6 ? rng.Next(10) : -1;
        float gap = height * Uniform(rng, 0.05f, 0.35f);
        float blur = rng.NextDouble() < 0.3 ? 0f : Uniform(rng, 0.3f, 1.2f);
        float noise = Uniform(rng, 0f, 12f);
        int noiseSeed = rng.Next();
        return new SynDigitSample(label, font, height, rotation, sx, sy, fg, bg, bg2, angle, left, right, gap, blur, noise, noiseSeed);
    }

    /// <summary>
    /// Renders <paramref name="sample"/> into <paramref name="chw"/> (<see cref="ImageBytes"/> bytes, uint8 [3, 32, 32]).
    /// With <paramref name="clean"/> only the centre digit is drawn, black on white, with the sample's font, size,
    /// rotation and shift, and no distractors, gradient, blur or noise.
    /// </summary>
    public void Render(SynDigitSample sample, Span<byte> chw, bool clean = false)
    {
        ArgumentNullException.ThrowIfNull(sample);
        if (chw.Length < ImageBytes)
            throw new ArgumentException($"need {ImageBytes} bytes, got {chw.Length}", nameof(chw));
        if ((uint)sample.Font >= (uint)_typefaces.Length)
            throw new ArgumentOutOfRangeException(nameof(sample), $"font {sample.Font} outside [0, {_typefaces.Length})");
        if ((uint)sample.Label > 9)
            throw new ArgumentOutOfRangeException(nameof(sample), $"label {sample.Label} is not a digit");

        using var bitmap = new SKBitmap(new SKImageInfo(ImageSize, ImageSize, SKColorType.Rgba8888, SKAlphaType.Premul));
        using (var canvas = new SKCanvas(bitmap))
        {
            DrawBackground(canvas, sample, clean);
            using var font = MakeFont(_typefaces[sample.Font], sample.DigitHeight / _heightPerSize[sample.Font]);
            using var paint = new SKPaint { Color = clean ? SKColors.Black : sample.Foreground, IsAntialias = true };
            using var blur = !clean && sample.BlurSigma > 0 ? SKImageFilter.CreateBlur(sample.BlurSigma, sample.BlurSigma) : null;
            paint.ImageFilter = blur;

            canvas.Translate(ImageSize / 2f + sample.ShiftX, ImageSize / 2f + sample.ShiftY);
            canvas.RotateDegrees(sample.Rotation);
            var centre = Bounds(font, sample.Label);
            float baseline = -centre.MidY;
            canvas.DrawText(Digit(sample.Label), -centre.MidX, baseline, font, paint);
            if (!clean)
            {
                // Neighbours sit on the same baseline, one gap beyond the centre digit's ink, as in a house number.
                if (sample.LeftDistractor >= 0)
                {
                    var b = Bounds(font, sample.LeftDistractor);
                    float mid = -(centre.Width / 2 + sample.Gap + b.Width / 2);
                    canvas.DrawText(Digit(sample.LeftDistractor), mid - b.MidX, baseline, font, paint);
                }
                if (sample.RightDistractor >= 0)
                {
                    var b = Bounds(font, sample.RightDistractor);
                    float mid = centre.Width / 2 + sample.Gap + b.Width / 2;
                    canvas.DrawText(Digit(sample.RightDistractor), mid - b.MidX, baseline, font, paint);
                }
            }
        }

        ReadOnlySpan<byte> rgba = bitmap.GetPixelSpan();
        const int plane = ImageSize * ImageSize;
        var noiseRng = clean || sample.NoiseSigma <= 0 ? null : new Random(sample.NoiseSeed);
        double spare = double.NaN;
        for (int p = 0; p < plane; p++)
        {
            for (int c = 0; c < 3; c++)
            {
                // The canvas is opaque, so premultiplied and straight RGB coincide.
                double v = rgba[4 * p + c];
                if (noiseRng is not null)
                {
                    if (double.IsNaN(spare))
                    {
                        var (g0, g1) = GaussianPair(noiseRng);
                        v += sample.NoiseSigma * g0;
                        spare = g1;
                    }
                    else
                    {
                        v += sample.NoiseSigma * spare;
                        spare = double.NaN;
                    }
                }
                chw[c * plane + p] = (byte)Math.Clamp(Math.Round(v), 0, 255);
            }
        }
    }

    /// <summary>Renders <paramref name="sample"/> into a new uint8 [3, 32, 32] array.</summary>
    public byte[] Render(SynDigitSample sample, bool clean = false)
    {
        var bytes = new byte[ImageBytes];
        Render(sample, bytes, clean);
        return bytes;
    }

    /// <summary>
    /// <paramref name="count"/> samples drawn in order from one System.Random seeded with <paramref name="seed"/>.
    /// Drawing is cheap and sequential; only rendering runs in parallel, so the data never depend on the thread count.
    /// </summary>
    public SynDigitSample[] Samples(int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = new Random(seed);
        var samples = new SynDigitSample[count];
        for (int i = 0; i < count; i++) samples[i] = Sample(rng);
        return samples;
    }

    /// <summary>
    /// Renders <paramref name="samples"/> into uint8 [N, 3, 32, 32] bytes, in parallel over chunks of
    /// <see cref="ChunkSize"/> images (at most <paramref name="maxDegreeOfParallelism"/> at a time; -1: no limit).
    /// <paramref name="rendered"/> receives the number of images done after each chunk (from worker threads).
    /// </summary>
    public byte[] RenderAll(IReadOnlyList<SynDigitSample> samples, int maxDegreeOfParallelism = -1, Action<int>? rendered = null)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var bytes = new byte[(long)samples.Count * ImageBytes];
        int chunks = (samples.Count + ChunkSize - 1) / ChunkSize;
        int done = 0;
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = maxDegreeOfParallelism }, chunk =>
        {
            int end = Math.Min(samples.Count, (chunk + 1) * ChunkSize);
            for (int i = chunk * ChunkSize; i < end; i++)
                Render(samples[i], bytes.AsSpan(i * ImageBytes, ImageBytes));
            int total = Interlocked.Add(ref done, end - chunk * ChunkSize);
            rendered?.Invoke(total);
        });
        return bytes;
    }

    /// <summary>
    /// A dataset of <paramref name="count"/> images drawn with <paramref name="seed"/>: uint8 [N, 3, 32, 32], labels 0–9.
    /// </summary>
    public ImageDataset Generate(int count, int seed, string name = "syndigits", int maxDegreeOfParallelism = -1, Action<int>? rendered = null)
    {
        var samples = Samples(count, seed);
        byte[] bytes = RenderAll(samples, maxDegreeOfParallelism, rendered);
        using var scope = NewDisposeScope();
        var images = count == 0
            ? empty(0, 3, ImageSize, ImageSize, ScalarType.Byte)
            : tensor(bytes, [count, 3, ImageSize, ImageSize]);
        var labels = tensor(samples.Select(s => (long)s.Label).ToArray(), ScalarType.Int64);
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), 10, name, MnistReader.DigitClassNames);
    }

    /// <summary>Frees the loaded typefaces.</summary>
    public void Dispose()
    {
        foreach (var t in _typefaces) t.Dispose();
    }

    private static SKFont MakeFont(SKTypeface face, float size) =>
        // No hinting: outlines are then scaled exactly, independent of the rasteriser's hinting heuristics.
        new(face, size) { Edging = SKFontEdging.Antialias, Hinting = SKFontHinting.None, Subpixel = true };

    private static string Digit(int d) => Digits.Substring(d, 1);

    private static SKRect Bounds(SKFont font, int digit)
    {
        font.MeasureText(Digit(digit), out var bounds);
        return bounds;
    }

    private static void DrawBackground(SKCanvas canvas, SynDigitSample s, bool clean)
    {
        if (clean)
        {
            canvas.Clear(SKColors.White);
            return;
        }
        double a = s.GradientAngle * Math.PI / 180;
        float dx = (float)(Math.Cos(a) * ImageSize / 2), dy = (float)(Math.Sin(a) * ImageSize / 2);
        const float c = ImageSize / 2f;
        using var shader = SKShader.CreateLinearGradient(new SKPoint(c - dx, c - dy), new SKPoint(c + dx, c + dy),
            [s.Background, s.Background2], SKShaderTileMode.Clamp);
        using var paint = new SKPaint { Shader = shader };
        canvas.DrawRect(new SKRect(0, 0, ImageSize, ImageSize), paint);
    }

    /// <summary>Foreground and background with a luma difference of at least 80 (of 255), so the digit stays legible.</summary>
    private static (SKColor Fg, SKColor Bg) Colours(Random rng)
    {
        var bg = RandomColour(rng);
        for (int attempt = 0; attempt < 20; attempt++)
        {
            var fg = RandomColour(rng);
            if (Math.Abs(Luma(fg) - Luma(bg)) >= 80) return (fg, bg);
        }
        return (Luma(bg) >= 128 ? new SKColor(20, 20, 20) : new SKColor(235, 235, 235), bg);
    }

    private static SKColor RandomColour(Random rng) => new((byte)rng.Next(256), (byte)rng.Next(256), (byte)rng.Next(256));

    private static double Luma(SKColor c) => 0.299 * c.Red + 0.587 * c.Green + 0.114 * c.Blue;

    private static byte Jitter(Random rng, byte v) => (byte)Math.Clamp(v + rng.Next(-50, 51), 0, 255);

    private static float Uniform(Random rng, float lo, float hi) => lo + (float)rng.NextDouble() * (hi - lo);

    private static (double, double) GaussianPair(Random rng)
    {
        // Box–Muller, both outputs used; 1 - u keeps the logarithm's argument in (0, 1].
        double r = Math.Sqrt(-2.0 * Math.Log(1.0 - rng.NextDouble()));
        var (sin, cos) = Math.SinCos(2 * Math.PI * rng.NextDouble());
        return (r * cos, r * sin);
    }
}

/// <summary>What <see cref="SynDigits.Make"/> wrote.</summary>
/// <param name="Location">The dataset folder, <c>&lt;dataDir&gt;/syndigits</c>.</param>
/// <param name="TrainCount">Training images.</param>
/// <param name="TestCount">Test images.</param>
/// <param name="Seed">The seed the images were drawn with.</param>
/// <param name="Fonts">File names of the fonts used.</param>
/// <param name="RenderSeconds">Wall-clock time spent rendering both splits.</param>
/// <param name="TotalSeconds">Wall-clock time including compression, checks and the preview.</param>
public sealed record SynDigitsResult(string Location, int TrainCount, int TestCount, int Seed, IReadOnlyList<string> Fonts,
    double RenderSeconds, double TotalSeconds)
{
    /// <summary>One line for the console.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"syndigits: {TrainCount:N0} train / {TestCount:N0} test images (seed {Seed}, {Fonts.Count} fonts) written to {Location} " +
        $"in {TotalSeconds:F1} s (rendering {RenderSeconds:F1} s)");
}

/// <summary>
/// The SynDigits dataset on disk, a synthetic stand-in for SVHN: <c>&lt;dataDir&gt;/syndigits/</c> holds
/// <c>train-images-idx4-ubyte.gz</c> and <c>test-images-idx4-ubyte.gz</c> (IDX, magic 2052, uint8 [N, 32, 32, 3],
/// channels last), <c>train-labels-idx1-ubyte.gz</c> and <c>test-labels-idx1-ubyte.gz</c> (IDX, uint8 [N], 0–9),
/// <c>metadata.json</c> (seed, counts, fonts), <c>README.md</c> and <c>preview.png</c>. The training split is drawn
/// with seed·2 + 0 and the test split with seed·2 + 1 (mixed), so the two never share a sample stream.
/// </summary>
public static class SynDigits
{
    /// <summary>Folder of the dataset inside the data directory.</summary>
    public const string FolderName = "syndigits";

    /// <summary>Default number of training images.</summary>
    public const int DefaultTrainCount = 20_000;

    /// <summary>Default number of test images.</summary>
    public const int DefaultTestCount = 4_000;

    /// <summary>Default seed.</summary>
    public const int DefaultSeed = 1;

    /// <summary>Name of the metadata file.</summary>
    public const string MetadataFileName = "metadata.json";

    /// <summary>Name of the preview image.</summary>
    public const string PreviewFileName = "preview.png";

    /// <summary>Where to get fonts when none is installed.</summary>
    public const string FontInstallHint =
        "On Debian or Ubuntu: apt-get install fonts-dejavu-core fonts-liberation fonts-freefont-ttf.";

    /// <summary>Folders searched (recursively) for *.ttf and *.otf files.</summary>
    public static IReadOnlyList<string> FontDirectories { get; } = BuildFontDirectories();

    /// <summary>Base file name of the images of a split.</summary>
    public static string ImagesFileName(bool train) => $"{(train ? "train" : "test")}-images-idx4-ubyte.gz";

    /// <summary>Base file name of the labels of a split.</summary>
    public static string LabelsFileName(bool train) => $"{(train ? "train" : "test")}-labels-idx1-ubyte.gz";

    /// <summary>
    /// All *.ttf and *.otf files under <paramref name="directories"/> (default <see cref="FontDirectories"/>), sorted by
    /// path so that a seed picks the same font on every run. Throws FileNotFoundException naming the folders searched
    /// and the packages to install when there is none.
    /// </summary>
    public static IReadOnlyList<string> FindFontFiles(IEnumerable<string>? directories = null)
    {
        var dirs = (directories ?? FontDirectories).ToArray();
        var files = dirs.Where(Directory.Exists)
            .SelectMany(d => Directory.EnumerateFiles(d, "*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true }))
            .Where(f => f.EndsWith(".ttf", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".otf", StringComparison.OrdinalIgnoreCase))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (files.Length == 0)
            throw new FileNotFoundException(
                $"No font files (*.ttf, *.otf) found to render digits with; searched {string.Join(", ", dirs)}. {FontInstallHint}");
        return files;
    }

    /// <summary>Seed of the sample stream of a split, mixed so that nearby seeds give unrelated streams.</summary>
    public static int SplitSeed(int seed, bool train)
    {
        // SplitMix64 finaliser: HashCode.Combine would differ between processes.
        ulong z = unchecked((ulong)(uint)seed * 2 + (train ? 0UL : 1UL) + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }

    /// <summary>
    /// Renders both splits and writes them to <c>&lt;dataDir&gt;/syndigits/</c>. The files go to a staging folder in
    /// <paramref name="dataDir"/>, are read back and checked, and the folder is then renamed into place, replacing an
    /// earlier SynDigits folder (one with <see cref="MetadataFileName"/>); any other folder in the way is left alone and
    /// reported. Progress lines go to <paramref name="log"/>.
    /// </summary>
    public static SynDigitsResult Make(string dataDir, int trainCount = DefaultTrainCount, int testCount = DefaultTestCount,
        int seed = DefaultSeed, IReadOnlyList<string>? fontFiles = null, IProgress<string>? log = null, int maxDegreeOfParallelism = -1)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataDir);
        if (trainCount <= 0) throw new ArgumentOutOfRangeException(nameof(trainCount), trainCount, "must be positive");
        if (testCount <= 0) throw new ArgumentOutOfRangeException(nameof(testCount), testCount, "must be positive");
        var total = Stopwatch.StartNew();
        string target = Path.Combine(Path.GetFullPath(dataDir), FolderName);
        CheckTarget(target);

        using var renderer = new SynDigitsRenderer(fontFiles);
        log?.Report($"Rendering with {renderer.FontFiles.Count} fonts: {string.Join(", ", renderer.FontFiles.Select(Path.GetFileName))}");
        Directory.CreateDirectory(dataDir);
        string staging = Path.Combine(Path.GetFullPath(dataDir), $".{FolderName}.make-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            double renderSeconds = 0;
            foreach (bool train in new[] { true, false })
            {
                string split = train ? "train" : "test";
                int count = train ? trainCount : testCount;
                var watch = Stopwatch.StartNew();
                var reporter = new StepReporter(log, split, count);
                using var ds = renderer.Generate(count, SplitSeed(seed, train), $"{FolderName}/{split}", maxDegreeOfParallelism, reporter.Rendered);
                renderSeconds += watch.Elapsed.TotalSeconds;
                log?.Report(string.Create(CultureInfo.InvariantCulture,
                    $"{split}: rendered {count:N0} images in {watch.Elapsed.TotalSeconds:F1} s; writing {ImagesFileName(train)}"));
                IdxFormat.WriteColorImages(Path.Combine(staging, ImagesFileName(train)), ds.Images);
                IdxFormat.WriteLabels(Path.Combine(staging, LabelsFileName(train)), ds.Labels);
                if (train) SavePreview(ds, Path.Combine(staging, PreviewFileName));
            }

            // Read back what was written, so a bad write never replaces good data.
            foreach (bool train in new[] { true, false })
            {
                using var back = SynDigitsReader.Load(staging, train);
                if (back.Count != (train ? trainCount : testCount))
                    throw new DataFormatException(Path.Combine(staging, ImagesFileName(train)), $"holds {back.Count} images after writing");
            }
            var fonts = renderer.FontFiles.Select(f => Path.GetFileName(f)!).ToArray();
            WriteMetadata(staging, seed, trainCount, testCount, renderer.FontFiles);
            File.WriteAllText(Path.Combine(staging, "README.md"), Readme(seed, trainCount, testCount, fonts));
            MoveIntoPlace(staging, target);
            var result = new SynDigitsResult(target, trainCount, testCount, seed, fonts, renderSeconds, total.Elapsed.TotalSeconds);
            log?.Report(result.ToString());
            return result;
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>
    /// Saves a PNG grid of <paramref name="perClass"/> images of each class (one row per class, first occurrences),
    /// each pixel drawn as a <paramref name="scale"/>² block. Classes with fewer images leave their row short.
    /// </summary>
    public static void SavePreview(ImageDataset dataset, string path, int perClass = 10, int scale = 2)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Channels != 3) throw new ArgumentException("preview needs RGB images", nameof(dataset));
        int h = dataset.Height, w = dataset.Width, rows = dataset.NumClasses, gap = 1;
        long[] labels;
        using (NewDisposeScope()) labels = dataset.Labels.data<long>().ToArray();
        var chosen = Enumerable.Range(0, rows)
            .Select(k => Enumerable.Range(0, labels.Length).Where(i => labels[i] == k).Take(perClass).ToArray()).ToArray();

        int cellW = w * scale + gap, cellH = h * scale + gap;
        using var bitmap = new SKBitmap(new SKImageInfo(perClass * cellW + gap, rows * cellH + gap, SKColorType.Rgba8888, SKAlphaType.Opaque));
        bitmap.Erase(SKColors.White);
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < chosen[r].Length; c++)
            {
                byte[] px;
                using (NewDisposeScope()) px = dataset.Images[chosen[r][c]].contiguous().data<byte>().ToArray();
                for (int y = 0; y < h * scale; y++)
                    for (int x = 0; x < w * scale; x++)
                    {
                        int p = (y / scale) * w + x / scale;
                        bitmap.SetPixel(gap + c * cellW + x, gap + r * cellH + y, new SKColor(px[p], px[h * w + p], px[2 * h * w + p]));
                    }
            }
        }
        using var image = SKImage.FromBitmap(bitmap);
        using var png = image.Encode(SKEncodedImageFormat.Png, 100);
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        File.WriteAllBytes(path, png.ToArray());
    }

    private static string[] BuildFontDirectories()
    {
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var dirs = new List<string> { "/usr/share/fonts", "/usr/local/share/fonts" };
        if (!string.IsNullOrEmpty(home))
        {
            dirs.Add(Path.Combine(home, ".local", "share", "fonts"));
            dirs.Add(Path.Combine(home, ".fonts"));
        }
        string windows = Environment.GetFolderPath(Environment.SpecialFolder.Fonts);
        if (!string.IsNullOrEmpty(windows)) dirs.Add(windows);
        return dirs.ToArray();
    }

    internal static void CheckTarget(string target, string what = "SynDigits")
    {
        if (File.Exists(target))
            throw new IOException($"'{target}' is a file; {what} is written as a folder there. Move it away and try again.");
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any()
            && !File.Exists(Path.Combine(target, MetadataFileName)))
            throw new IOException($"'{target}' exists and does not hold {what} (no {MetadataFileName}); move it away and try again.");
    }

    /// <summary>Renames <paramref name="staging"/> to <paramref name="target"/>, replacing an earlier generated folder.</summary>
    internal static void MoveIntoPlace(string staging, string target, string what = "SynDigits")
    {
        CheckTarget(target, what);
        string? old = null;
        if (Directory.Exists(target))
        {
            old = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.old-{Guid.NewGuid():N}");
            Directory.Move(target, old);
        }
        try
        {
            Directory.Move(staging, target);
        }
        catch
        {
            if (old is not null && !Directory.Exists(target)) Directory.Move(old, target);
            throw;
        }
        if (old is not null) Directory.Delete(old, recursive: true);
    }

    private static void WriteMetadata(string dir, int seed, int train, int test, IReadOnlyList<string> fontFiles)
    {
        var meta = new Dictionary<string, object>
        {
            ["dataset"] = "syndigits",
            ["description"] = "Synthetic house-number-like digit crops, a stand-in for SVHN (in the spirit of SynDigits, Ganin & Lempitsky 2015).",
            ["seed"] = seed,
            ["train"] = train,
            ["test"] = test,
            ["trainSeed"] = SplitSeed(seed, true),
            ["testSeed"] = SplitSeed(seed, false),
            ["imageShape"] = new[] { SynDigitsRenderer.ImageSize, SynDigitsRenderer.ImageSize, 3 },
            ["classes"] = 10,
            ["fonts"] = fontFiles.ToArray(),
            ["files"] = new[] { ImagesFileName(true), LabelsFileName(true), ImagesFileName(false), LabelsFileName(false), PreviewFileName },
            ["created"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        };
        File.WriteAllText(Path.Combine(dir, MetadataFileName), JsonSerializer.Serialize(meta, new JsonSerializerOptions { WriteIndented = true }));
    }

    private static string Readme(int seed, int train, int test, IReadOnlyList<string> fonts) => string.Create(CultureInfo.InvariantCulture, $"""
        # SynDigits (synthetic stand-in for SVHN)

        Rendered by `uan data make-syndigits` (class `Uan.Lab.Data.SynDigits`), seed {seed}: {train:N0} training and
        {test:N0} test images of 32×32 RGB house-number-like digit crops, labels 0–9. Each image has a centred digit in
        one of {fonts.Count} installed fonts, random colours with a luma contrast of at least 80/255, a gradient
        background, digit height 15–25 px, rotation ±15°, shift ±2 px, Gaussian blur (σ up to 1.2 px), additive noise
        (σ up to 12/255) and, with probability 0.6 each, neighbouring digits cut off at the left and right edges.

        | file | content |
        |---|---|
        | `{ImagesFileName(true)}`, `{ImagesFileName(false)}` | IDX (gzip), magic 2052 (0x00000804: ubyte, 4 dims), uint8 [N, 32, 32, 3], rows, columns, RGB |
        | `{LabelsFileName(true)}`, `{LabelsFileName(false)}` | IDX (gzip), magic 2049, uint8 [N], the digit 0–9 |
        | `{MetadataFileName}` | seed, counts, the split seeds and the font files used |
        | `{PreviewFileName}` | one row per class, the first ten training images of each |

        On one installation (font files, SkiaSharp native library, platform maths library) the same seed gives
        bit-identical images at any thread count; a different set of installed fonts gives a different dataset (see
        `{MetadataFileName}`), and another platform's rasteriser may change pixels slightly.
        """);

    /// <summary>Turns per-chunk counts from the workers into a few ordered progress lines.</summary>
    private sealed class StepReporter(IProgress<string>? log, string split, int count)
    {
        private readonly object _gate = new();
        private int _nextPercent = 10;

        public void Rendered(int done)
        {
            if (log is null || count == 0) return;
            lock (_gate)
            {
                int percent = (int)(100L * done / count);
                if (percent < _nextPercent) return;
                _nextPercent = percent / 10 * 10 + 10;
                log.Report(string.Create(CultureInfo.InvariantCulture, $"  {split}: {done:N0}/{count:N0} images ({percent}%)"));
            }
        }
    }
}
