using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Data;

public class CifarReaderTests
{
    private static byte Pixel(int n, int c, int h, int w) => (byte)((n * 31 + c * 101 + h * 5 + w * 2) % 256);

    [Fact]
    public void Cifar10ReadsAllBatchesInOrderPixelExact()
    {
        using var dir = new TempDir();
        string batches = dir.File("cifar-10-batches-bin");
        // Two records per batch file; image n of batch k gets global index 2(k-1)+n and label (global index) % 10.
        for (int k = 1; k <= 5; k++)
        {
            int first = 2 * (k - 1);
            TestFiles.Write(Path.Combine(batches, $"data_batch_{k}.bin"),
                TestFiles.CifarRecords(2, n => [(byte)((first + n) % 10)], (n, c, h, w) => Pixel(first + n, c, h, w)));
        }
        TestFiles.Write(Path.Combine(batches, "test_batch.bin"), TestFiles.CifarRecords(1, _ => [4], (n, c, h, w) => Pixel(100, c, h, w)));
        File.WriteAllLines(Path.Combine(batches, "batches.meta.txt"), ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", ""]);

        using var train = CifarReader.LoadCifar10(dir.Path, train: true); // the parent folder is accepted
        Assert.Equal(new long[] { 10, 3, 32, 32 }, train.Images.shape);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (long)i).ToArray(), train.Labels.data<long>().ToArray());
        Assert.Equal("a7", train.ClassNames![7]);
        // R plane first, rows of 32: check the three planes at asymmetric positions.
        Assert.Equal(Pixel(0, 0, 0, 31), train.Images[0, 0, 0, 31].item<byte>());
        Assert.Equal(Pixel(3, 1, 31, 0), train.Images[3, 1, 31, 0].item<byte>());
        Assert.Equal(Pixel(9, 2, 17, 5), train.Images[9, 2, 17, 5].item<byte>());
        using var expected = Expected(10, i => i);
        Assert.True(train.Images.SameAs(expected));

        using var test = CifarReader.LoadCifar10(batches, train: false);
        Assert.Equal(1, test.Count);
        Assert.Equal(4, test.Labels[0].item<long>());
        Assert.Equal(Pixel(100, 2, 30, 1), test.Images[0, 2, 30, 1].item<byte>());
    }

    [Fact]
    public void Cifar100ReadsFineOrCoarseLabels()
    {
        using var dir = new TempDir();
        string folder = dir.File("cifar-100-binary");
        TestFiles.Write(Path.Combine(folder, "train.bin"),
            TestFiles.CifarRecords(3, n => [(byte)(19 - n), (byte)(99 - 10 * n)], Pixel));
        File.WriteAllLines(Path.Combine(folder, "fine_label_names.txt"), Enumerable.Range(0, 100).Select(i => "fine" + i));

        using var fine = CifarReader.LoadCifar100(folder, train: true);
        Assert.Equal(100, fine.NumClasses);
        Assert.Equal(new long[] { 99, 89, 79 }, fine.Labels.data<long>().ToArray());
        Assert.Equal("fine89", fine.ClassNames![89]);
        using var expected = Expected(3, i => i);
        Assert.True(fine.Images.SameAs(expected));
        Assert.Equal(Pixel(2, 1, 4, 30), fine.Images[2, 1, 4, 30].item<byte>());

        using var coarse = CifarReader.LoadCifar100(dir.Path, train: true, coarseLabels: true);
        Assert.Equal(20, coarse.NumClasses);
        Assert.Null(coarse.ClassNames); // coarse_label_names.txt absent
        Assert.Equal(new long[] { 19, 18, 17 }, coarse.Labels.data<long>().ToArray());
    }

    [Fact]
    public void TruncatedRecordIsReportedWithFileAndRecordSize()
    {
        using var dir = new TempDir();
        string path = dir.File("test_batch.bin");
        var bytes = TestFiles.CifarRecords(2, _ => [1], Pixel);
        TestFiles.Write(path, bytes[..^10]);
        var e = Assert.Throws<DataFormatException>(() => CifarReader.LoadCifar10(dir.Path, train: false));
        Assert.Contains(path, e.Message);
        Assert.Contains("3073-byte record", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void Cifar100FileReadAsCifar10IsRejected()
    {
        using var dir = new TempDir();
        // 3074-byte CIFAR-100 records under a CIFAR-10 name: 3 × 3074 is not a multiple of 3073.
        string path = dir.File("test_batch.bin");
        TestFiles.Write(path, TestFiles.CifarRecords(3, _ => [1, 55], Pixel));
        var e = Assert.Throws<DataFormatException>(() => CifarReader.LoadCifar10(dir.Path, train: false));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void LabelOutOfRangeNamesRecord()
    {
        using var dir = new TempDir();
        string path = dir.File("test_batch.bin");
        TestFiles.Write(path, TestFiles.CifarRecords(3, n => [(byte)(n == 2 ? 10 : 0)], Pixel));
        var e = Assert.Throws<DataFormatException>(() => CifarReader.LoadCifar10(dir.Path, train: false));
        Assert.Contains("record 2 has label 10", e.Message);
    }

    [Fact]
    public void MissingBatchNamesFile()
    {
        using var dir = new TempDir();
        TestFiles.Write(dir.File("data_batch_1.bin"), TestFiles.CifarRecords(1, _ => [1], Pixel));
        TestFiles.Write(dir.File("test_batch.bin"), TestFiles.CifarRecords(1, _ => [1], Pixel));
        var e = Assert.Throws<FileNotFoundException>(() => CifarReader.LoadCifar10(dir.Path, train: true));
        Assert.Contains("data_batch_2.bin", e.Message);
    }

    /// <summary>The expected image tensor built with tensor ops from the same formula (independent of the reader).</summary>
    private static Tensor Expected(int n, Func<int, int> globalIndex)
    {
        using var scope = NewDisposeScope();
        var idx = tensor(Enumerable.Range(0, n).Select(globalIndex).ToArray()).view(-1, 1, 1, 1).to(ScalarType.Int64);
        var c = arange(3, ScalarType.Int64).view(1, -1, 1, 1);
        var h = arange(32, ScalarType.Int64).view(1, 1, -1, 1);
        var w = arange(32, ScalarType.Int64).view(1, 1, 1, -1);
        return ((idx * 31 + c * 101 + h * 5 + w * 2) % 256).to(ScalarType.Byte).MoveToOuterDisposeScope();
    }
}
