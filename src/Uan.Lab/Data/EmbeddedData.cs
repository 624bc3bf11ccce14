using System.Security.Cryptography;
using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>What <see cref="EmbeddedData.BuildMnistSubset"/> drew and wrote.</summary>
/// <param name="Seed">Seed of the draw.</param>
/// <param name="TrainPerClass">Training images per digit 0–9.</param>
/// <param name="TestPerClass">Test images per digit 0–9.</param>
/// <param name="Sha256">SHA-256 of the uncompressed IDX content of each written file, keyed by file name (gzip output
/// can differ between zlib builds; the content cannot).</param>
public sealed record MnistSubsetReport(int Seed, long[] TrainPerClass, long[] TestPerClass, IReadOnlyDictionary<string, string> Sha256);

/// <summary>
/// The small dataset that ships with the repository (<c>data/mnist-subset/</c>): a class-stratified MNIST subset of
/// 10,000 training and 2,000 test images in the official IDX .gz format, so experiments and tests run with no download.
/// </summary>
public static class EmbeddedData
{
    /// <summary>Folder name of the subset under the data directory.</summary>
    public const string MnistSubsetFolder = "mnist-subset";

    /// <summary>Training images in the subset.</summary>
    public const int MnistSubsetTrainCount = 10_000;

    /// <summary>Test images in the subset.</summary>
    public const int MnistSubsetTestCount = 2_000;

    /// <summary>Seed the committed subset was drawn with.</summary>
    public const int MnistSubsetSeed = 20240910;

    /// <summary>
    /// Draws the subset from the full MNIST in <paramref name="sourceDir"/> and writes the four IDX .gz files to
    /// <paramref name="destDir"/>. Each split is drawn independently: per-class counts proportional to the full
    /// split's class frequencies (largest remainder), images chosen uniformly without replacement with
    /// <c>System.Random(seed)</c> (train) and <c>System.Random(seed + 1)</c> (test), kept in their original order.
    /// </summary>
    public static MnistSubsetReport BuildMnistSubset(string sourceDir, string destDir, int seed = MnistSubsetSeed,
        int trainCount = MnistSubsetTrainCount, int testCount = MnistSubsetTestCount)
    {
        Directory.CreateDirectory(destDir);
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        long[] WriteSplit(bool train, int count, int splitSeed)
        {
            using var full = MnistReader.Load(sourceDir, train);
            var perClass = ImageDataset.ProportionalAllocation(full.ClassCounts(), count);
            using var subset = full.StratifiedSubset(perClass, splitSeed);
            string images = MnistReader.ImagesFileName(train) + ".gz";
            string labels = MnistReader.LabelsFileName(train) + ".gz";
            IdxFormat.WriteImages(Path.Combine(destDir, images), subset.Images);
            IdxFormat.WriteLabels(Path.Combine(destDir, labels), subset.Labels);
            hashes[images] = ContentHash(Path.Combine(destDir, images));
            hashes[labels] = ContentHash(Path.Combine(destDir, labels));
            return perClass;
        }
        var trainPerClass = WriteSplit(true, trainCount, seed);
        var testPerClass = WriteSplit(false, testCount, seed + 1);
        return new MnistSubsetReport(seed, trainPerClass, testPerClass, hashes);
    }

    /// <summary>SHA-256 (lower-case hex) of a file's content after gunzipping it if needed.</summary>
    public static string ContentHash(string path) =>
        Convert.ToHexStringLower(SHA256.HashData(DataFiles.ReadAllBytesMaybeGzip(path, "file")));

    /// <summary>Loads a split of the embedded MNIST subset from the data directory <paramref name="dataDir"/>.</summary>
    public static ImageDataset LoadMnistSubset(bool train, string? dataDir = null)
    {
        string dir = Path.Combine(dataDir ?? new DataLocator().DataDir, MnistSubsetFolder);
        return MnistReader.Load(dir, train, "mnist-subset");
    }
}
