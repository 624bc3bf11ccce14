using SkiaSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Data;

/// <summary>Seeded fault injection into a small Tiny ImageNet tree: JPEG cuts and flips, list and annotation damage.</summary>
public class TinyImageNetFuzzTests
{
    private static readonly string[] Wnids = ["n01443537", "n01629819", "n01641577"];

    private static SKColor Colour(int k, int i, int q) => new((byte)(30 + 60 * k + 10 * q), (byte)(200 - 40 * i), (byte)(20 + 50 * q));

    /// <summary>3 classes × 2 training images, 2 validation images; returns the dataset folder.</summary>
    private static string MakeTree(TempDir dir)
    {
        string root = dir.File("tiny-imagenet-200");
        Directory.CreateDirectory(root);
        File.WriteAllLines(Path.Combine(root, "wnids.txt"), Wnids);
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 2; i++)
                Jpeg(Path.Combine(root, "train", Wnids[k], "images", $"{Wnids[k]}_{i}.JPEG"), k, i);
        Jpeg(Path.Combine(root, "val", "images", "val_0.JPEG"), 2, 5);
        Jpeg(Path.Combine(root, "val", "images", "val_1.JPEG"), 0, 3);
        File.WriteAllText(Path.Combine(root, "val", "val_annotations.txt"),
            "val_0.JPEG\tn01641577\t0\t0\t62\t62\nval_1.JPEG\tn01443537\t10\t5\t40\t50\n");
        return root;
    }

    private static void Jpeg(string path, int k, int i) =>
        TestFiles.QuadrantJpeg(path, Colour(k, i, 0), Colour(k, i, 1), Colour(k, i, 2), Colour(k, i, 3));

    /// <summary>Offsets of the JPEG's markers (FF xx, xx not 00, FF or a restart marker): its segment boundaries.</summary>
    private static IEnumerable<int> MarkerOffsets(byte[] jpeg)
    {
        for (int p = 0; p + 1 < jpeg.Length; p++)
            if (jpeg[p] == 0xFF && jpeg[p + 1] is not (0x00 or 0xFF) and not (>= 0xD0 and <= 0xD7))
                yield return p;
    }

    [Fact]
    public void ValidationSplitSurvivesJpegCutsAndListDamage()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        string root = MakeTree(dir);
        var rng = new Random(1207);
        var fuzz = new Fuzz();
        using var reference = TinyImageNetReader.Load(root, train: false);
        var judgeSame = Fuzz.Unchanged(reference.Images, reference.Labels);
        ImageDataset Load() => TinyImageNetReader.Load(root, train: false);
        string image = Path.Combine(root, "val", "images", "val_0.JPEG");
        string annotations = Path.Combine(root, "val", "val_annotations.txt");
        string wnids = Path.Combine(root, "wnids.txt");
        fuzz.Check("original", Load, judgeSame, [image]);

        // A cut JPEG must never become a partly black image: cut at every segment boundary and inside the scan.
        byte[] jpeg = File.ReadAllBytes(image);
        var markers = MarkerOffsets(jpeg).ToArray();
        Assert.True(markers.Length >= 6, "the test image should have several segments");
        var cuts = Fuzz.Around(markers).Concat(Fuzz.Sample(rng, 2, jpeg.Length, 40)).Concat(Enumerable.Range(jpeg.Length - 8, 8));
        foreach (var (name, bytes) in Fuzz.Cuts(jpeg, cuts))
            fuzz.Check(name, image, bytes, Load, Fuzz.Refuse);

        // JPEG has no checksum: a flipped byte may decode to other pixels. It must never escape as another error.
        foreach (var (name, bytes) in Fuzz.Flips(jpeg, Fuzz.Sample(rng, 0, jpeg.Length, 30), rng))
            fuzz.Check(name, image, bytes, Load, _ => null);
        File.WriteAllBytes(image, jpeg);

        // The lists carry names that must match: a flip is refused or leaves the dataset as it was.
        string[] lists = [annotations, wnids];
        foreach (string list in lists)
        {
            byte[] text = File.ReadAllBytes(list);
            foreach (var (name, bytes) in Fuzz.Flips(text, Fuzz.AllLengths(text), rng))
                fuzz.Check(name, list, bytes, Load, judgeSame, [.. lists, root + Path.DirectorySeparatorChar]);
            File.WriteAllBytes(list, text);
        }
        fuzz.AssertClean(minRefused: 60, minAccepted: 2);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n\n  \n")]
    public void EmptyValidationSplitIsRefused(string content)
    {
        using var dir = new TempDir();
        string root = MakeTree(dir);
        string annotations = Path.Combine(root, "val", "val_annotations.txt");
        File.WriteAllText(annotations, content);
        var e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(root, train: false));
        Assert.Equal(annotations, e.FilePath);
        Assert.Contains("empty validation split", e.Message);
    }

    [Fact]
    public void ClassFolderWithoutImagesIsRefused()
    {
        using var dir = new TempDir();
        string root = MakeTree(dir);
        string images = Path.Combine(root, "train", Wnids[1], "images");
        foreach (string f in Directory.GetFiles(images)) File.Delete(f);
        File.WriteAllText(Path.Combine(images, "notes.txt"), "not an image");
        var e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(root, train: true));
        Assert.Equal(images, e.FilePath);
        Assert.Contains(Wnids[1], e.Message);
    }

    [Theory]
    [InlineData("../../../outside.JPEG")]
    [InlineData("../../../tiny-imagenet-200-other/outside.JPEG")]
    [InlineData("ABSOLUTE")]
    public void AnnotationPathsMustStayInsideTheDataset(string entry)
    {
        using var dir = new TempDir();
        string root = MakeTree(dir);
        // Real, decodable images outside the dataset folder: only the path check can refuse them.
        Jpeg(dir.File("outside.JPEG"), 1, 1);
        Jpeg(dir.File("tiny-imagenet-200-other", "outside.JPEG"), 1, 1);
        if (entry == "ABSOLUTE") entry = dir.File("outside.JPEG");
        string annotations = Path.Combine(root, "val", "val_annotations.txt");
        File.WriteAllText(annotations, $"val_0.JPEG\tn01641577\t0\t0\t62\t62\n{entry}\tn01443537\t0\t0\t1\t1\n");
        var e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(root, train: false));
        Assert.Equal(annotations, e.FilePath);
        Assert.Contains("line 2", e.Message);
        Assert.Contains("outside the dataset folder", e.Message);
    }

    [Theory]
    [InlineData("../../elsewhere")]
    [InlineData("..")]
    [InlineData("n01/images")]
    public void ClassIdsMustBePlainFolderNames(string wnid)
    {
        using var dir = new TempDir();
        string root = MakeTree(dir);
        // A class folder reachable through the bad id, so that only the name check can refuse it.
        Jpeg(Path.Combine(root, "train", wnid, "images", "x.JPEG"), 0, 0);
        string wnids = Path.Combine(root, "wnids.txt");
        File.WriteAllLines(wnids, [.. Wnids, wnid]);
        var e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(root, train: true));
        Assert.Equal(wnids, e.FilePath);
        Assert.Contains("not a plain folder name", e.Message);
    }

    [Fact]
    public void AnnotationPathsInsideTheDatasetStillRead()
    {
        using var dir = new TempDir();
        string root = MakeTree(dir);
        File.WriteAllText(Path.Combine(root, "val", "val_annotations.txt"),
            $"val_0.JPEG\tn01641577\t0\t0\t62\t62\n../../train/{Wnids[0]}/images/{Wnids[0]}_1.JPEG\tn01443537\t0\t0\t1\t1\n");
        using var ds = TinyImageNetReader.Load(root, train: false);
        using var train = TinyImageNetReader.Load(root, train: true);
        Assert.Equal(new long[] { 2, 0 }, ds.Labels.data<long>().ToArray());
        Assert.True(ds.Images[1].SameAs(train.Images[1]));
    }

    [Fact]
    public void LongAnnotationListOfOneImageIsRefusedBeforeAllocatingPixels()
    {
        // 200,000 entries naming the same image: 2.4 GB of pixels if allocated from the list's length.
        using var dir = new TempDir();
        string root = MakeTree(dir);
        string annotations = Path.Combine(root, "val", "val_annotations.txt");
        File.WriteAllText(annotations, string.Concat(Enumerable.Repeat("val_0.JPEG\tn01641577\t0\t0\t62\t62\n", 200_000)));
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(root, train: false));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(annotations, e.FilePath);
        Assert.Contains("line 2", e.Message);
        Assert.Contains("already listed on line 1", e.Message);
        Assert.True(allocated < 64 << 20, $"{allocated} bytes allocated");
    }

    [Fact]
    public void TruncatedJpegIsRefusedNamingTheFile()
    {
        // The old decoder path filled the missing rows with black and reported success.
        using var dir = new TempDir();
        string root = MakeTree(dir);
        string image = Path.Combine(root, "train", Wnids[2], "images", $"{Wnids[2]}_1.JPEG");
        byte[] jpeg = File.ReadAllBytes(image);
        File.WriteAllBytes(image, jpeg[..(jpeg.Length * 2 / 3)]);
        var e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(root, train: true));
        Assert.Equal(image, e.FilePath);
        Assert.Contains("truncated", e.Message);
    }
}
