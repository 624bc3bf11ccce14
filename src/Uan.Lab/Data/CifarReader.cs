using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// CIFAR-10 and CIFAR-100 in their official binary versions. CIFAR-10 (<c>cifar-10-batches-bin</c>):
/// <c>data_batch_1.bin</c>..<c>data_batch_5.bin</c> and <c>test_batch.bin</c>, records of 1 label byte and 3,072 pixel
/// bytes (the 32×32 R plane, then G, then B, each row-major). CIFAR-100 (<c>cifar-100-binary</c>): <c>train.bin</c>
/// and <c>test.bin</c>, records of a coarse label byte, a fine label byte and the same 3,072 pixel bytes.
/// Images come back as uint8 [N, 3, 32, 32].
/// </summary>
public static class CifarReader
{
    /// <summary>Pixel bytes per record (3 × 32 × 32).</summary>
    public const int ImageBytes = 3 * 32 * 32;

    /// <summary>CIFAR-10's class names, used when batches.meta.txt is absent.</summary>
    public static IReadOnlyList<string> Cifar10ClassNames { get; } =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>The CIFAR-10 files of a split, relative to the batches folder.</summary>
    public static IReadOnlyList<string> Cifar10FileNames(bool train) =>
        train ? Enumerable.Range(1, 5).Select(i => $"data_batch_{i}.bin").ToArray() : ["test_batch.bin"];

    /// <summary>The CIFAR-100 file of a split.</summary>
    public static string Cifar100FileName(bool train) => train ? "train.bin" : "test.bin";

    /// <summary>
    /// Loads a CIFAR-10 split from <paramref name="directory"/> (the <c>cifar-10-batches-bin</c> folder or its parent).
    /// Class names come from batches.meta.txt when present.
    /// </summary>
    public static ImageDataset LoadCifar10(string directory, bool train)
    {
        string dir = ResolveCifar10Directory(directory);
        var files = Cifar10FileNames(train).Select(f => Path.Combine(dir, f)).ToArray();
        string meta = Path.Combine(dir, "batches.meta.txt");
        var names = Path.Exists(meta) ? DataFiles.ReadNameList(meta, "CIFAR-10 class-name list") : Cifar10ClassNames;
        if (names.Count != 10)
            throw new DataFormatException(meta, $"{names.Count} class names, CIFAR-10 has 10");
        return LoadFiles(files, labelBytes: 1, labelIndex: 0, numClasses: 10, $"cifar10/{(train ? "train" : "test")}", names);
    }

    /// <summary>
    /// Loads a CIFAR-100 split from <paramref name="directory"/> (the <c>cifar-100-binary</c> folder or its parent),
    /// with the 100 fine labels, or the 20 coarse ones when <paramref name="coarseLabels"/> is set. Class names come
    /// from fine_label_names.txt / coarse_label_names.txt when present.
    /// </summary>
    public static ImageDataset LoadCifar100(string directory, bool train, bool coarseLabels = false)
    {
        string dir = ResolveCifar100Directory(directory);
        int numClasses = coarseLabels ? 20 : 100;
        string namesFile = Path.Combine(dir, coarseLabels ? "coarse_label_names.txt" : "fine_label_names.txt");
        IReadOnlyList<string>? names = Path.Exists(namesFile) ? DataFiles.ReadNameList(namesFile, "CIFAR-100 class-name list") : null;
        if (names is not null && names.Count != numClasses)
            throw new DataFormatException(namesFile, $"{names.Count} class names, expected {numClasses}");
        string name = $"cifar100{(coarseLabels ? "-coarse" : "")}/{(train ? "train" : "test")}";
        return LoadFiles([Path.Combine(dir, Cifar100FileName(train))], labelBytes: 2, labelIndex: coarseLabels ? 0 : 1, numClasses, name, names);
    }

    /// <summary>
    /// Reads and concatenates CIFAR binary files whose records are <paramref name="labelBytes"/> label bytes followed
    /// by 3,072 pixel bytes; the label is byte <paramref name="labelIndex"/> of the record.
    /// </summary>
    public static ImageDataset LoadFiles(IReadOnlyList<string> files, int labelBytes, int labelIndex, int numClasses, string name, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        if (files.Count == 0) throw new ArgumentException("no files", nameof(files));
        if (labelIndex < 0 || labelIndex >= labelBytes) throw new ArgumentOutOfRangeException(nameof(labelIndex));
        int record = labelBytes + ImageBytes;
        foreach (string f in files) DataFiles.RequireFile(f, $"{name} batch file");

        using var scope = NewDisposeScope();
        var images = new List<Tensor>();
        var labels = new List<Tensor>();
        foreach (string f in files)
        {
            byte[] data = DataFiles.ReadAllBytes(f, $"{name} batch file");
            if (data.Length == 0)
                throw new DataFormatException(f, "empty file");
            if (data.Length % record != 0)
                throw new DataFormatException(f, $"size {data.Length} is not a multiple of the {record}-byte record ({labelBytes} label byte{(labelBytes > 1 ? "s" : "")} + {ImageBytes} pixel bytes): truncated, or not this CIFAR variant");
            long n = data.Length / record;
            var recs = frombuffer(data, ScalarType.Byte).reshape(n, record);
            var lab = recs.select(1, labelIndex).to(ScalarType.Int64);
            long max = lab.max().item<long>();
            if (max >= numClasses)
            {
                long at = (lab >= numClasses).to(ScalarType.Int64).argmax().item<long>();
                throw new DataFormatException(f, $"record {at} has label {lab[at].item<long>()}, outside 0–{numClasses - 1} (wrong CIFAR variant?)");
            }
            images.Add(recs.narrow(1, labelBytes, ImageBytes).reshape(n, 3, 32, 32).clone());
            labels.Add(lab);
        }
        var allImages = (images.Count == 1 ? images[0] : cat(images, 0)).MoveToOuterDisposeScope();
        var allLabels = (labels.Count == 1 ? labels[0] : cat(labels, 0)).MoveToOuterDisposeScope();
        return new ImageDataset(allImages, allLabels, numClasses, name, classNames);
    }

    /// <summary><paramref name="directory"/> itself or its <c>cifar-10-batches-bin</c> child, whichever holds test_batch.bin.</summary>
    public static string ResolveCifar10Directory(string directory) =>
        Resolve(directory, "cifar-10-batches-bin", "test_batch.bin", "CIFAR-10");

    /// <summary><paramref name="directory"/> itself or its <c>cifar-100-binary</c> child, whichever holds test.bin.</summary>
    public static string ResolveCifar100Directory(string directory) =>
        Resolve(directory, "cifar-100-binary", "test.bin", "CIFAR-100");

    private static string Resolve(string directory, string child, string marker, string what)
    {
        DataFiles.RequireDirectory(directory, $"{what} folder");
        if (File.Exists(Path.Combine(directory, marker))) return directory;
        string nested = Path.Combine(directory, child);
        if (File.Exists(Path.Combine(nested, marker))) return nested;
        // Neither has the marker: report against the folder itself so the missing-file message is specific.
        return Directory.Exists(nested) ? nested : directory;
    }
}
