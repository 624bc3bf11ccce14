using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// MNIST and Fashion-MNIST from their official IDX files (raw or .gz): <c>train-images-idx3-ubyte</c>,
/// <c>train-labels-idx1-ubyte</c>, <c>t10k-images-idx3-ubyte</c>, <c>t10k-labels-idx1-ubyte</c>. Also accepted is
/// the dotted spelling some mirrors use (<c>train-images.idx3-ubyte</c>). Images come back as uint8 [N, 1, 28, 28].
/// </summary>
public static class MnistReader
{
    /// <summary>Fashion-MNIST class names in label order.</summary>
    public static IReadOnlyList<string> FashionClassNames { get; } =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>Digit class names "0".."9".</summary>
    public static IReadOnlyList<string> DigitClassNames { get; } =
        Enumerable.Range(0, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();

    /// <summary>Base file name (without .gz) of the images of a split.</summary>
    public static string ImagesFileName(bool train) => train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";

    /// <summary>Base file name (without .gz) of the labels of a split.</summary>
    public static string LabelsFileName(bool train) => train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";

    /// <summary>Loads the training or test split of MNIST from <paramref name="directory"/>.</summary>
    public static ImageDataset Load(string directory, bool train, string name = "mnist", IReadOnlyList<string>? classNames = null)
    {
        DataFiles.RequireDirectory(directory, $"{name} folder");
        string images = FindFile(directory, ImagesFileName(train))
            ?? throw MissingFile(directory, ImagesFileName(train), name);
        string labels = FindFile(directory, LabelsFileName(train))
            ?? throw MissingFile(directory, LabelsFileName(train), name);
        return LoadFiles(images, labels, $"{name}/{(train ? "train" : "test")}", classNames ?? DigitClassNames);
    }

    /// <summary>Loads the training or test split of Fashion-MNIST from <paramref name="directory"/>.</summary>
    public static ImageDataset LoadFashion(string directory, bool train) =>
        Load(directory, train, "fashion-mnist", FashionClassNames);

    /// <summary>Loads an image file and a label file, checking that they agree and that labels are 0–9.</summary>
    public static ImageDataset LoadFiles(string imagesPath, string labelsPath, string name, IReadOnlyList<string>? classNames = null, int numClasses = 10)
    {
        using var scope = NewDisposeScope();
        var images = IdxFormat.ReadImages(imagesPath);
        var labels = IdxFormat.ReadLabels(labelsPath);
        if (images.shape[0] != labels.shape[0])
            throw new DataFormatException(labelsPath, $"size mismatch: {labels.shape[0]} labels, but '{imagesPath}' holds {images.shape[0]} images");
        // An empty split would let a run "finish" with NaN metrics.
        if (images.shape[0] == 0)
            throw new DataFormatException(imagesPath, "holds no images (empty split)");
        if (labels.max().item<long>() >= numClasses)
        {
            long at = (labels >= numClasses).to(ScalarType.Int64).argmax().item<long>();
            throw new DataFormatException(labelsPath, $"label {labels[at].item<long>()} at index {at} is outside 0–{numClasses - 1}");
        }
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), numClasses, name, classNames);
    }

    /// <summary>
    /// The path of <paramref name="baseName"/> in <paramref name="directory"/>: raw, .gz, or with the dotted
    /// spelling (train-images.idx3-ubyte), or null when none exists. A folder with one of these names is returned when no file has one.
    /// </summary>
    public static string? FindFile(string directory, string baseName)
    {
        int dash = baseName.LastIndexOf("-idx", StringComparison.Ordinal);
        string dotted = dash < 0 ? baseName : baseName[..dash] + "." + baseName[(dash + 1)..];
        string[] candidates = [baseName, baseName + ".gz", dotted, dotted + ".gz"];
        var paths = candidates.Select(c => Path.Combine(directory, c)).ToArray();
        // A folder under a file's name is returned too, so that reading it says "is a folder" instead of "missing".
        return paths.FirstOrDefault(File.Exists) ?? paths.FirstOrDefault(Directory.Exists);
    }

    /// <summary>True when all four files (both splits) are in <paramref name="directory"/>.</summary>
    public static bool IsPresent(string directory) =>
        Directory.Exists(directory) &&
        new[] { true, false }.All(train =>
            FindFile(directory, ImagesFileName(train)) is not null && FindFile(directory, LabelsFileName(train)) is not null);

    private static FileNotFoundException MissingFile(string directory, string baseName, string name) =>
        new($"{name}: '{Path.Combine(directory, baseName)}' (or .gz) does not exist.", Path.Combine(directory, baseName));
}
