using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>What <see cref="MnistMLike.Make"/> wrote.</summary>
public sealed record MnistMLikeResult(string Location, int TrainCount, int TestCount, int Seed, string Source, double TotalSeconds)
{
    /// <summary>One line for the console.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"{MnistMLike.FolderName}: {TrainCount:N0} train / {TestCount:N0} test images (seed {Seed}, digits from {Source}) written to {Location} in {TotalSeconds:F1} s");
}

/// <summary>
/// MNIST-M-like digits: each MNIST digit (padded from 28×28 to 32×32, labels unchanged) blended with its own random
/// colour texture as MNIST-M does with BSDS500 photo patches (Ganin and Lempitsky 2015): out_c = |texture_c − digit|
/// per pixel and channel, so the stroke takes the texture's complementary colour. The textures are procedural, since
/// no photo collection is at hand: a smooth two-octave value-noise field mixes two random colours, and a sinusoidal
/// grating of random frequency, direction, amplitude and per-channel phase is added (<see cref="Texture"/>). Each
/// image's texture depends only on (seed, split, index), so the data are identical at any thread count. Stored as
/// SynDigits is (<see cref="SynDigits"/>): <c>&lt;dataDir&gt;/mnistm-like/</c> with IDX colour images uint8
/// [N, 32, 32, 3] and IDX labels, <c>metadata.json</c>, <c>README.md</c> and <c>preview.png</c>.
/// </summary>
public static class MnistMLike
{
    /// <summary>Dataset id and folder name.</summary>
    public const string FolderName = "mnistm-like";
    /// <summary>Side of the images.</summary>
    public const int ImageSize = 32;
    /// <summary>Default seed.</summary>
    public const int DefaultSeed = 1;

    /// <summary>Seed of image <paramref name="index"/>'s texture (SplitMix64 of seed, split and index).</summary>
    public static int ImageSeed(int seed, bool train, int index)
    {
        ulong z = unchecked(((ulong)(uint)seed << 33) ^ ((ulong)(uint)index << 1) ^ (train ? 0UL : 1UL));
        z = unchecked(z + 0x9E3779B97F4A7C15UL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }

    /// <summary>
    /// The texture of one image, uint8 [3, 32, 32] (channel-major) on the 0–255 scale, drawn from
    /// <see cref="ImageSeed"/>: two colours c₀, c₁ uniform in [0, 255]³; a mixing field t = 0.65·n₁ + 0.35·n₂ of value
    /// noise on a g×g grid (g uniform in 2..5) and a 2g×2g grid, smoothstep-interpolated; a grating
    /// a·sin(2π(f_x·x + f_y·y)/32 + φ_c) with f_x, f_y uniform in [−4, 4], a uniform in [0, 60] and a phase per channel;
    /// texture_c = clamp(c₀(1 − t) + c₁t + grating_c, 0, 255).
    /// </summary>
    public static byte[] Texture(int seed, bool train, int index)
    {
        var rng = new Random(ImageSeed(seed, train, index));
        var c0 = new double[3];
        var c1 = new double[3];
        for (int c = 0; c < 3; c++) { c0[c] = rng.NextDouble() * 255; c1[c] = rng.NextDouble() * 255; }
        int g = rng.Next(2, 6);
        var n1 = Grid(rng, g);
        var n2 = Grid(rng, 2 * g);
        double fx = rng.NextDouble() * 8 - 4, fy = rng.NextDouble() * 8 - 4, amplitude = rng.NextDouble() * 60;
        var phase = new double[3];
        for (int c = 0; c < 3; c++) phase[c] = rng.NextDouble() * 2 * Math.PI;
        var texture = new byte[3 * ImageSize * ImageSize];
        for (int y = 0; y < ImageSize; y++)
            for (int x = 0; x < ImageSize; x++)
            {
                double t = 0.65 * Sample(n1, g, x, y) + 0.35 * Sample(n2, 2 * g, x, y);
                for (int c = 0; c < 3; c++)
                {
                    double v = c0[c] * (1 - t) + c1[c] * t + amplitude * Math.Sin(2 * Math.PI * (fx * x + fy * y) / ImageSize + phase[c]);
                    texture[(c * ImageSize + y) * ImageSize + x] = (byte)Math.Clamp(Math.Round(v), 0, 255);
                }
            }
        return texture;
    }

    static double[,] Grid(Random rng, int cells)
    {
        var grid = new double[cells + 1, cells + 1];
        for (int i = 0; i <= cells; i++) for (int j = 0; j <= cells; j++) grid[i, j] = rng.NextDouble();
        return grid;
    }

    static double Sample(double[,] grid, int cells, int x, int y)
    {
        double gx = (x + 0.5) / ImageSize * cells, gy = (y + 0.5) / ImageSize * cells;
        int i = Math.Min((int)gy, cells - 1), j = Math.Min((int)gx, cells - 1);
        double u = Smooth(gx - j), v = Smooth(gy - i);
        return (1 - v) * ((1 - u) * grid[i, j] + u * grid[i, j + 1]) + v * ((1 - u) * grid[i + 1, j] + u * grid[i + 1, j + 1]);
    }

    static double Smooth(double t) => t * t * (3 - 2 * t);

    /// <summary>
    /// Blends every image of <paramref name="digits"/> (uint8 [N, 1, 28, 28], or already 32×32) with its texture:
    /// uint8 [N, 3, 32, 32], out_c = |texture_c − digit| with the digit zero-padded by 2 pixels on each side; labels
    /// copied.
    /// </summary>
    public static ImageDataset Blend(ImageDataset digits, int seed, bool train, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(digits);
        if (digits.Channels != 1 || digits.Height > ImageSize || digits.Width > ImageSize)
            throw new ArgumentException($"{FolderName}: expected grey digits of at most {ImageSize}×{ImageSize}, got {digits.Channels}×{digits.Height}×{digits.Width}");
        int n = (int)digits.Count, h = digits.Height, w = digits.Width, top = (ImageSize - h) / 2, left = (ImageSize - w) / 2;
        byte[] source;
        using (NewDisposeScope()) source = digits.Images.contiguous().data<byte>().ToArray();
        var output = new byte[(long)n * 3 * ImageSize * ImageSize];
        const int plane = ImageSize * ImageSize;
        Parallel.For(0, n, i =>
        {
            var texture = Texture(seed, train, i);
            for (int y = 0; y < ImageSize; y++)
                for (int x = 0; x < ImageSize; x++)
                {
                    int sy = y - top, sx = x - left;
                    int d = sy >= 0 && sy < h && sx >= 0 && sx < w ? source[(long)i * h * w + sy * w + sx] : 0;
                    for (int c = 0; c < 3; c++)
                        output[(long)i * 3 * plane + c * plane + y * ImageSize + x] = (byte)Math.Abs(texture[c * plane + y * ImageSize + x] - d);
                }
        });
        using var scope = NewDisposeScope();
        var images = tensor(output, [n, 3, ImageSize, ImageSize], ScalarType.Byte);
        var labels = digits.Labels.clone();
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), 10,
            name ?? $"{FolderName}/{(train ? "train" : "test")}", MnistReader.DigitClassNames);
    }

    /// <summary>
    /// Blends both splits of <paramref name="train"/> and <paramref name="test"/> (MNIST, from
    /// <paramref name="sourceName"/>) and writes them to <c>&lt;dataDir&gt;/mnistm-like/</c> through a staging
    /// folder that is read back and checked before it is renamed into place (as <see cref="SynDigits.Make"/>).
    /// </summary>
    public static MnistMLikeResult Make(string dataDir, ImageDataset train, ImageDataset test, string sourceName, int seed = DefaultSeed,
        IProgress<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataDir);
        var clock = Stopwatch.StartNew();
        string target = Path.Combine(Path.GetFullPath(dataDir), FolderName);
        SynDigits.CheckTarget(target, FolderName);
        Directory.CreateDirectory(dataDir);
        string staging = Path.Combine(Path.GetFullPath(dataDir), $".{FolderName}.make-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            foreach (var (split, isTrain) in new[] { (train, true), (test, false) })
            {
                using var blended = Blend(split, seed, isTrain);
                log?.Report(string.Create(CultureInfo.InvariantCulture, $"{(isTrain ? "train" : "test")}: blended {blended.Count:N0} images"));
                IdxFormat.WriteColorImages(Path.Combine(staging, SynDigits.ImagesFileName(isTrain)), blended.Images);
                IdxFormat.WriteLabels(Path.Combine(staging, SynDigits.LabelsFileName(isTrain)), blended.Labels);
                if (isTrain) SynDigits.SavePreview(blended, Path.Combine(staging, SynDigits.PreviewFileName));
            }
            foreach (var (split, isTrain) in new[] { (train, true), (test, false) })
            {
                using var back = Load(staging, isTrain);
                if (back.Count != split.Count)
                    throw new DataFormatException(Path.Combine(staging, SynDigits.ImagesFileName(isTrain)), $"holds {back.Count} images after writing");
            }
            var meta = new Dictionary<string, object>
            {
                ["dataset"] = FolderName,
                ["description"] = "MNIST digits blended with procedural colour textures, out = |texture - digit| (in the spirit of MNIST-M).",
                ["source"] = sourceName,
                ["seed"] = seed,
                ["train"] = train.Count,
                ["test"] = test.Count,
                ["imageShape"] = new[] { ImageSize, ImageSize, 3 },
                ["classes"] = 10,
                ["created"] = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            };
            File.WriteAllText(Path.Combine(staging, SynDigits.MetadataFileName), JsonSerializer.Serialize(meta, new JsonSerializerOptions { WriteIndented = true }));
            File.WriteAllText(Path.Combine(staging, "README.md"), Readme(seed, (int)train.Count, (int)test.Count, sourceName));
            SynDigits.MoveIntoPlace(staging, target, FolderName);
            var result = new MnistMLikeResult(target, (int)train.Count, (int)test.Count, seed, sourceName, clock.Elapsed.TotalSeconds);
            log?.Report(result.ToString());
            return result;
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>Loads a split of the folder <see cref="Make"/> wrote.</summary>
    public static ImageDataset Load(string directory, bool train)
    {
        DataFiles.RequireDirectory(directory, $"{FolderName} folder");
        return SynDigitsReader.LoadFiles(Path.Combine(directory, SynDigits.ImagesFileName(train)),
            Path.Combine(directory, SynDigits.LabelsFileName(train)), $"{FolderName}/{(train ? "train" : "test")}");
    }

    static string Readme(int seed, int train, int test, string source) => string.Create(CultureInfo.InvariantCulture, $"""
        # mnistm-like (MNIST digits on procedural colour textures)

        Made by `uan data make-mnistm-like` (class `Uan.Lab.Data.MnistMLike`), seed {seed}, from the {source} digits:
        {train:N0} training and {test:N0} test images of 32×32 RGB, labels 0–9 (those of the source digits, in order).
        Each digit is zero-padded from 28×28 to 32×32 and blended with its own texture as MNIST-M blends with photo
        patches: out = |texture − digit| per channel. The texture mixes two random colours through two octaves of
        smooth value noise and adds a sinusoidal grating of random frequency, direction, amplitude and per-channel
        phase; it depends only on (seed, split, index).

        | file | content |
        |---|---|
        | `{SynDigits.ImagesFileName(true)}`, `{SynDigits.ImagesFileName(false)}` | IDX (gzip), magic 2052, uint8 [N, 32, 32, 3], rows, columns, RGB |
        | `{SynDigits.LabelsFileName(true)}`, `{SynDigits.LabelsFileName(false)}` | IDX (gzip), magic 2049, uint8 [N], the digit 0–9 |
        | `{SynDigits.MetadataFileName}` | seed, source, counts |
        | `{SynDigits.PreviewFileName}` | one row per class, the first ten training images of each |
        """);
}
