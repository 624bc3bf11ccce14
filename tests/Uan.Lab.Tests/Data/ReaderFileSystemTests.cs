using SkiaSharp;
using Uan.Lab.Data;
using static Uan.Lab.Tests.Data.TestFiles;

namespace Uan.Lab.Tests.Data;

/// <summary>
/// Every reader against the file system's own failures: an unreadable file, a folder where a file belongs, a file
/// where a folder belongs. Each must end in a <see cref="DataFormatException"/> naming the path and the problem.
/// </summary>
public class ReaderFileSystemTests
{
    /// <summary>
    /// Makes <paramref name="path"/> a file that exists but cannot be opened. Mode 000 stops everyone but root;
    /// under root, a link to a write-only kernel file does (root gets "permission denied" reading it too).
    /// </summary>
    private static void MakeUnreadable(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, [1, 2, 3]);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.None);
        try
        {
            File.OpenRead(path).Dispose();
            File.Delete(path);
            File.CreateSymbolicLink(path, "/proc/sys/vm/drop_caches");
        }
        catch (UnauthorizedAccessException)
        {
        }
        // The scenario itself, checked: otherwise the test below could pass without testing anything.
        Assert.Throws<UnauthorizedAccessException>(() => File.OpenRead(path).Dispose());
    }

    private static void MakeFolderInstead(string path)
    {
        if (File.Exists(path)) File.Delete(path);
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "inside.txt"), "a folder, not the file");
    }

    /// <summary>A complete small dataset of kind <paramref name="kind"/>: its folder, a loader, and its files by role.</summary>
    private static (string Dir, Func<ImageDataset> Load, Dictionary<string, string> Files) Make(TempDir tmp, string kind)
    {
        string dir = tmp.File(kind);
        Directory.CreateDirectory(dir);
        switch (kind)
        {
            case "mnist":
            {
                string images = Path.Combine(dir, "train-images-idx3-ubyte"), labels = Path.Combine(dir, "train-labels-idx1-ubyte.gz");
                Write(images, IdxImages(2, 28, 28, (i, y, x) => (byte)(i + y + x)));
                Write(labels, IdxLabels(1, 2), gzip: true);
                return (dir, () => MnistReader.Load(dir, train: true), new() { ["images"] = images, ["labels"] = labels });
            }
            case "cifar10":
            {
                string batch = Path.Combine(dir, "test_batch.bin"), meta = Path.Combine(dir, "batches.meta.txt");
                Write(batch, CifarRecords(2, i => [(byte)i], (n, c, h, w) => (byte)(n + c + h + w)));
                File.WriteAllLines(meta, CifarReader.Cifar10ClassNames);
                return (dir, () => CifarReader.LoadCifar10(dir, train: false), new() { ["batch"] = batch, ["meta"] = meta });
            }
            case "svhn":
            {
                string mat = Path.Combine(dir, "test_32x32.mat");
                Write(mat, MatV5(true, new MatVar("X", MxUInt8, [32, 32, 3], MiUInt8, new byte[3072]), new MatVar("y", MxDouble, [1, 1], MiDouble, Doubles(4))));
                return (dir, () => SvhnReader.Load(dir, train: false), new() { ["mat"] = mat });
            }
            case "syndigits":
            {
                string images = Path.Combine(dir, SynDigits.ImagesFileName(false)), labels = Path.Combine(dir, SynDigits.LabelsFileName(false));
                using (var t = TorchSharp.torch.zeros([1, 3, 32, 32], TorchSharp.torch.ScalarType.Byte)) IdxFormat.WriteColorImages(images, t);
                using (var l = TorchSharp.torch.tensor(new long[] { 5 })) IdxFormat.WriteLabels(labels, l);
                return (dir, () => SynDigitsReader.Load(dir, train: false), new() { ["images"] = images, ["labels"] = labels });
            }
            default:
            {
                File.WriteAllLines(Path.Combine(dir, "wnids.txt"), ["n01443537"]);
                string val = Path.Combine(dir, "val", "images", "val_0.JPEG");
                QuadrantJpeg(val, SKColors.Red, SKColors.Green, SKColors.Blue, SKColors.White);
                QuadrantJpeg(Path.Combine(dir, "train", "n01443537", "images", "a.JPEG"), SKColors.Red, SKColors.Green, SKColors.Blue, SKColors.White);
                string annotations = Path.Combine(dir, "val", "val_annotations.txt");
                File.WriteAllText(annotations, "val_0.JPEG\tn01443537\t0\t0\t1\t1\n");
                return (dir, () => TinyImageNetReader.Load(dir, train: false), new()
                {
                    ["wnids"] = Path.Combine(dir, "wnids.txt"), ["annotations"] = annotations, ["image"] = val,
                });
            }
        }
    }

    public static TheoryData<string, string> Roles => new()
    {
        { "mnist", "images" }, { "mnist", "labels" }, { "cifar10", "batch" }, { "cifar10", "meta" }, { "svhn", "mat" },
        { "syndigits", "images" }, { "syndigits", "labels" }, { "tiny", "wnids" }, { "tiny", "annotations" }, { "tiny", "image" },
    };

    [Theory]
    [MemberData(nameof(Roles))]
    public void UnreadableFileIsNamed(string kind, string role)
    {
        using var tmp = new TempDir();
        var (_, load, files) = Make(tmp, kind);
        using (load()) { } // control: the untouched dataset reads
        MakeUnreadable(files[role]);
        var e = Assert.Throws<DataFormatException>(() => load().Dispose());
        Assert.Equal(files[role], e.FilePath);
        Assert.Contains("cannot read", e.Message);
        Assert.Contains("permission denied", e.Message);
    }

    [Theory]
    [MemberData(nameof(Roles))]
    public void FolderWhereAFileBelongsIsNamed(string kind, string role)
    {
        using var tmp = new TempDir();
        var (_, load, files) = Make(tmp, kind);
        MakeFolderInstead(files[role]);
        var e = Assert.Throws<DataFormatException>(() => load().Dispose());
        Assert.Equal(files[role], e.FilePath);
        Assert.Contains("is a folder, expected a file", e.Message);
    }

    [Theory]
    [InlineData("mnist")]
    [InlineData("cifar10")]
    [InlineData("svhn")]
    [InlineData("syndigits")]
    [InlineData("tiny")]
    public void FileWhereTheDatasetFolderBelongsIsNamed(string kind)
    {
        using var tmp = new TempDir();
        var (dir, load, _) = Make(tmp, kind);
        Directory.Delete(dir, recursive: true);
        File.WriteAllText(dir, "not a folder");
        var e = Assert.Throws<DataFormatException>(() => load().Dispose());
        Assert.Equal(dir, e.FilePath);
        Assert.Contains("is a file, expected a folder", e.Message);
    }

    [Theory]
    [InlineData("mnist", "images")]
    [InlineData("cifar10", "batch")]
    [InlineData("svhn", "mat")]
    [InlineData("tiny", "image")]
    public void MissingFileIsStillReportedAsMissing(string kind, string role)
    {
        using var tmp = new TempDir();
        var (_, load, files) = Make(tmp, kind);
        File.Delete(files[role]);
        var e = Assert.ThrowsAny<IOException>(() => load().Dispose());
        Assert.Contains(files[role], e.Message);
        Assert.Matches("not found|does not exist", e.Message);
    }
}
