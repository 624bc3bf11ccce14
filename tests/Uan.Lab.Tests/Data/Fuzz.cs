using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Data;

/// <summary>
/// Runs a reader over corrupted variants of a file and collects every outcome that breaks the readers' contract:
/// an exception other than <see cref="DataFormatException"/>, an error that does not name a file of the dataset, or
/// a corrupted file accepted when the judge says the format could have told.
/// </summary>
public sealed class Fuzz
{
    private readonly List<string> _failures = [];

    public int Refused { get; private set; }

    public int Accepted { get; private set; }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>, loads, and judges the outcome.</summary>
    public void Check(string variant, string path, byte[] bytes, Func<ImageDataset> load, Func<ImageDataset, string?> judgeAccepted, params string[] files)
    {
        File.WriteAllBytes(path, bytes);
        Check($"{Path.GetFileName(path)}: {variant}", load, judgeAccepted, files.Length == 0 ? [path] : files);
    }

    /// <summary>
    /// Loads and judges: refusal must be a DataFormatException naming one of <paramref name="files"/> (an entry
    /// ending in a separator stands for anything under that folder).
    /// </summary>
    public void Check(string variant, Func<ImageDataset> load, Func<ImageDataset, string?> judgeAccepted, IReadOnlyCollection<string> files)
    {
        try
        {
            using var ds = load();
            Accepted++;
            string? why = judgeAccepted(ds);
            if (why is not null) _failures.Add($"{variant}: accepted, but {why}");
        }
        catch (DataFormatException e)
        {
            Refused++;
            if (!files.Any(f => f == e.FilePath || (f.EndsWith(Path.DirectorySeparatorChar) && e.FilePath.StartsWith(f, StringComparison.Ordinal))))
                _failures.Add($"{variant}: the error names '{e.FilePath}', not a file of the dataset ({e.Message})");
            else if (!e.Message.StartsWith(e.FilePath + ": ", StringComparison.Ordinal) || e.Problem.Trim().Length < 8)
                _failures.Add($"{variant}: message does not start with the path and a problem: '{e.Message}'");
        }
        catch (Exception e)
        {
            _failures.Add($"{variant}: {e.GetType().Name} escaped: {e.Message}");
        }
    }

    public void AssertClean(int minRefused, int minAccepted = 0)
    {
        Assert.True(_failures.Count == 0, $"{_failures.Count} bad outcomes (of {Refused + Accepted + _failures.Count}):\n" + string.Join("\n", _failures.Take(40)));
        // Guards the harness itself: a run whose variants all pass unchanged tests nothing.
        Assert.True(Refused >= minRefused, $"only {Refused} variants refused, expected at least {minRefused}");
        Assert.True(Accepted >= minAccepted, $"only {Accepted} variants accepted, expected at least {minAccepted}");
    }

    // ---- judges --------------------------------------------------------------------------------------------------

    /// <summary>For variants the format can always detect (truncations, checksummed data).</summary>
    public static string? Refuse(ImageDataset ds) => $"{ds.Count} images loaded from a corrupted file";

    /// <summary>Accepted only when the content is exactly the original's (e.g. a flip in a gzip MTIME field).</summary>
    public static Func<ImageDataset, string?> Unchanged(Tensor images, Tensor labels) => ds =>
        ds.Images.SameAs(images) && ds.Labels.SameAs(labels) ? null : "its content differs from the original";

    /// <summary>
    /// For uncompressed formats without checksums: a flip may change one stored pixel or one label (the format
    /// cannot tell), but nothing else may move.
    /// </summary>
    public static Func<ImageDataset, string?> AtMostOneValueChanged(Tensor images, Tensor labels) => ds =>
    {
        if (!ds.Images.shape.SequenceEqual(images.shape) || !ds.Labels.shape.SequenceEqual(labels.shape))
            return $"shape [{string.Join(", ", ds.Images.shape)}] instead of [{string.Join(", ", images.shape)}]";
        using var scope = NewDisposeScope();
        long changed = ds.Images.ne(images).sum().item<long>() + ds.Labels.ne(labels).sum().item<long>();
        return changed <= 1 ? null : $"{changed} values changed";
    };

    // ---- variants ------------------------------------------------------------------------------------------------

    /// <summary>Prefixes of <paramref name="bytes"/> at the given lengths (shorter than the file, distinct, sorted).</summary>
    public static IEnumerable<(string Name, byte[] Bytes)> Cuts(byte[] bytes, IEnumerable<int> lengths) =>
        lengths.Where(l => l >= 0 && l < bytes.Length).Distinct().Order().Select(l => ($"cut to {l} of {bytes.Length} bytes", bytes[..l]));

    /// <summary>Every length from 0 to the file's.</summary>
    public static IEnumerable<int> AllLengths(byte[] bytes) => Enumerable.Range(0, bytes.Length);

    /// <summary>Each position XORed with a non-zero byte drawn from <paramref name="rng"/>.</summary>
    public static IEnumerable<(string Name, byte[] Bytes)> Flips(byte[] bytes, IEnumerable<int> positions, Random rng)
    {
        foreach (int p in positions.Where(p => p >= 0 && p < bytes.Length).Distinct().Order())
        {
            var copy = (byte[])bytes.Clone();
            byte x = (byte)rng.Next(1, 256);
            copy[p] ^= x;
            yield return ($"byte {p} ^= 0x{x:X2}", copy);
        }
    }

    /// <summary><paramref name="count"/> random positions in [<paramref name="from"/>, <paramref name="to"/>).</summary>
    public static IEnumerable<int> Sample(Random rng, int from, int to, int count) =>
        Enumerable.Range(0, count).Select(_ => rng.Next(from, to)).ToArray();

    /// <summary>Boundaries ±1: where truncation is likeliest to slip through a reader's checks.</summary>
    public static IEnumerable<int> Around(params int[] boundaries) => boundaries.SelectMany(b => new[] { b - 1, b, b + 1 });
}
