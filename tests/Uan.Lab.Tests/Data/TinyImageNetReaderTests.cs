using SkiaSharp;
using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Data;

public class TinyImageNetReaderTests
{
    private static readonly string[] Wnids = ["n01443537", "n01629819", "n01641577"];

    // Quadrant colours of image (class k, number i): distinct per class, per image and per quadrant.
    private static SKColor[] Colours(int k, int i) =>
    [
        new((byte)(40 + 60 * k), (byte)(200 - 30 * i), 16),  // top-left
        new(16, (byte)(40 + 60 * k), (byte)(90 + 40 * i)),   // top-right
        new((byte)(220 - 20 * i), 16, (byte)(40 + 60 * k)),  // bottom-left
        new((byte)(120 + 10 * i), (byte)(120 + 10 * k), 120), // bottom-right
    ];

    private static void MakeTree(TempDir dir, bool withWords = true)
    {
        string root = dir.File("tiny-imagenet-200");
        Directory.CreateDirectory(root);
        File.WriteAllLines(Path.Combine(root, "wnids.txt"), Wnids);
        if (withWords)
            File.WriteAllLines(Path.Combine(root, "words.txt"),
                ["n00000001\tentity", "n01443537\tgoldfish, Carassius auratus", "n01629819\tEuropean fire salamander", "n01641577\tbullfrog"]);
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 2; i++)
            {
                var c = Colours(k, i);
                TestFiles.QuadrantJpeg(Path.Combine(root, "train", Wnids[k], "images", $"{Wnids[k]}_{i}.JPEG"), c[0], c[1], c[2], c[3]);
            }
        // Boxes file that real train folders carry; the reader must ignore it.
        File.WriteAllText(Path.Combine(root, "train", Wnids[0], $"{Wnids[0]}_boxes.txt"), "n01443537_0.JPEG\t0\t0\t63\t63\n");
        var v0 = Colours(2, 5);
        TestFiles.QuadrantJpeg(Path.Combine(root, "val", "images", "val_0.JPEG"), v0[0], v0[1], v0[2], v0[3]);
        TestFiles.QuadrantJpeg(Path.Combine(root, "val", "images", "val_1.JPEG"),
            new SKColor(30, 30, 30), new SKColor(90, 90, 90), new SKColor(160, 160, 160), new SKColor(230, 230, 230), gray: true);
        File.WriteAllLines(Path.Combine(root, "val", "val_annotations.txt"),
            ["val_0.JPEG\tn01641577\t0\t0\t62\t62", "val_1.JPEG\tn01443537\t10\t5\t40\t50"]);
    }

    private static void AssertQuadrants(Tensor images, int n, SKColor[] colours)
    {
        // Centres of the four 32×32 blocks, as (h, w): TL, TR, BL, BR.
        (int h, int w)[] centres = [(16, 16), (16, 48), (48, 16), (48, 48)];
        for (int q = 0; q < 4; q++)
        {
            byte[] rgb = [colours[q].Red, colours[q].Green, colours[q].Blue];
            for (int c = 0; c < 3; c++)
            {
                int got = images[n, c, centres[q].h, centres[q].w].item<byte>();
                Assert.True(Math.Abs(got - rgb[c]) <= 3, $"image {n} quadrant {q} channel {c}: {got}, expected {rgb[c]} ± 3");
            }
        }
    }

    [Fact]
    public void TrainSplitDecodesJpegsIntoChwWithWnidOrderLabels()
    {
        using var dir = new TempDir();
        MakeTree(dir);
        using var ds = TinyImageNetReader.Load(dir.Path, train: true);

        Assert.Equal(new long[] { 6, 3, 64, 64 }, ds.Images.shape);
        Assert.Equal(new long[] { 0, 0, 1, 1, 2, 2 }, ds.Labels.data<long>().ToArray());
        Assert.Equal(3, ds.NumClasses);
        Assert.Equal("goldfish, Carassius auratus", ds.ClassNames![0]);
        Assert.Equal("bullfrog", ds.ClassNames[2]);
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 2; i++)
                AssertQuadrants(ds.Images, 2 * k + i, Colours(k, i));
    }

    [Fact]
    public void ValSplitFollowsAnnotationsAndGrayBecomesThreeChannels()
    {
        using var dir = new TempDir();
        MakeTree(dir, withWords: false);
        using var ds = TinyImageNetReader.Load(dir.File("tiny-imagenet-200"), train: false);

        Assert.Equal(new long[] { 2, 3, 64, 64 }, ds.Images.shape);
        Assert.Equal(new long[] { 2, 0 }, ds.Labels.data<long>().ToArray());
        Assert.Equal(Wnids, ds.ClassNames); // no words.txt: the wnids name the classes
        AssertQuadrants(ds.Images, 0, Colours(2, 5));
        AssertQuadrants(ds.Images, 1, [new(30, 30, 30), new(90, 90, 90), new(160, 160, 160), new(230, 230, 230)]);
        // A grayscale JPEG gives three identical channels.
        Assert.True(ds.Images[1, 0].SameAs(ds.Images[1, 1]));
        Assert.True(ds.Images[1, 0].SameAs(ds.Images[1, 2]));
    }

    [Fact]
    public void UnknownWnidInAnnotationsNamesFileAndLine()
    {
        using var dir = new TempDir();
        MakeTree(dir);
        string ann = dir.File("tiny-imagenet-200", "val", "val_annotations.txt");
        File.AppendAllLines(ann, ["val_2.JPEG\tn99999999\t0\t0\t1\t1"]);
        var e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(dir.Path, train: false));
        Assert.Contains(ann, e.Message);
        Assert.Contains("line 3", e.Message);
        Assert.Contains("n99999999", e.Message);
    }

    [Fact]
    public void CorruptAndMissingImagesNameTheFile()
    {
        using var dir = new TempDir();
        MakeTree(dir);
        string bad = dir.File("tiny-imagenet-200", "train", Wnids[1], "images", $"{Wnids[1]}_1.JPEG");
        File.WriteAllBytes(bad, File.ReadAllBytes(bad)[..40]);
        var e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(dir.Path, train: true));
        Assert.Contains(bad, e.Message);

        File.Delete(dir.File("tiny-imagenet-200", "val", "images", "val_1.JPEG"));
        e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(dir.Path, train: false));
        Assert.Contains("val_1.JPEG", e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [Fact]
    public void WrongSizeAndMissingClassFolderAreReported()
    {
        using var dir = new TempDir();
        MakeTree(dir);
        string odd = dir.File("tiny-imagenet-200", "train", Wnids[2], "images", $"{Wnids[2]}_0.JPEG");
        using (var bmp = new SKBitmap(48, 64))
        using (var img = SKImage.FromBitmap(bmp))
        using (var data = img.Encode(SKEncodedImageFormat.Jpeg, 90))
            File.WriteAllBytes(odd, data.ToArray());
        var e = Assert.Throws<DataFormatException>(() => TinyImageNetReader.Load(dir.Path, train: true));
        Assert.Contains(odd, e.Message);
        Assert.Contains("48×64", e.Message);

        Directory.Delete(dir.File("tiny-imagenet-200", "train", Wnids[1]), recursive: true);
        var nf = Assert.Throws<DirectoryNotFoundException>(() => TinyImageNetReader.Load(dir.Path, train: true));
        Assert.Contains(Wnids[1], nf.Message);
    }
}
