using TorchSharp;
using Uan.Lab.Data;
using static TorchSharp.torch;

namespace Uan.Lab.Tests.Data;

public class BatchLoaderTests
{
    private static ImageDataset Dataset(int n) =>
        ImageDatasetTests.Indexed(Enumerable.Range(0, n).Select(i => (long)(i % 10)).ToArray(), c: 3, h: 8, w: 8);

    private static List<long[]> EpochIndices(BatchLoader loader, int epoch)
    {
        var result = new List<long[]>();
        foreach (var b in loader.Epoch(epoch))
            using (b)
                result.Add(b.Indices.data<long>().ToArray());
        return result;
    }

    [Fact]
    public void EveryIndexExactlyOncePerEpoch()
    {
        using var ds = Dataset(103);
        var loader = new BatchLoader(ds, batchSize: 10, seed: 4);
        Assert.Equal(11, loader.BatchesPerEpoch);
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var batches = EpochIndices(loader, epoch);
            Assert.Equal(11, batches.Count);
            Assert.All(batches.Take(10), b => Assert.Equal(10, b.Length));
            Assert.Equal(3, batches[^1].Length);
            Assert.Equal(Enumerable.Range(0, 103).Select(i => (long)i), batches.SelectMany(b => b).Order());
        }
        Assert.NotEqual(EpochIndices(loader, 0).SelectMany(b => b), EpochIndices(loader, 1).SelectMany(b => b));
    }

    [Fact]
    public void BatchContentMatchesIndices()
    {
        using var ds = Dataset(30);
        var loader = new BatchLoader(ds, batchSize: 7, seed: 1);
        foreach (var b in loader.Epoch(0))
        {
            using (b)
            {
                var idx = b.Indices.data<long>().ToArray();
                Assert.Equal(ScalarType.Float32, b.Images.dtype);
                Assert.Equal(new long[] { idx.Length, 3, 8, 8 }, b.Images.shape);
                Assert.Equal(idx.Select(i => i % 10).ToArray(), b.Labels.data<long>().ToArray());
                for (int k = 0; k < idx.Length; k++)
                    Assert.Equal((float)idx[k], b.Images[k, 2, 7, 7].item<float>()); // pixel value = dataset index
            }
        }
    }

    [Fact]
    public void DropLastAndNoShuffle()
    {
        using var ds = Dataset(25);
        var loader = new BatchLoader(ds, batchSize: 10, shuffle: false, dropLast: true);
        Assert.Equal(2, loader.BatchesPerEpoch);
        var batches = EpochIndices(loader, 0);
        Assert.Equal(2, batches.Count);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => (long)i), batches.SelectMany(b => b));
        Assert.Equal(batches.SelectMany(b => b), EpochIndices(loader, 5).SelectMany(b => b)); // never reshuffles
    }

    [Fact]
    public void SameSeedSameBatchesDifferentSeedDifferent()
    {
        using var ds = Dataset(40);
        var stats = new ChannelStats([20, 20, 20], [10, 10, 10]);
        BatchLoader Make(int seed) => new(ds, 16, DataPipeline.ShallowCnn(stats, resizeTo: 12), seed: seed);

        List<Tensor> Collect(BatchLoader l, int epoch)
        {
            var list = new List<Tensor>();
            foreach (var b in l.Epoch(epoch))
                using (b)
                    list.Add(b.Images.clone());
            return list;
        }

        var a = Collect(Make(9), 2);
        var b = Collect(Make(9), 2);
        var c = Collect(Make(10), 2);
        Assert.Equal(a.Count, b.Count);
        for (int i = 0; i < a.Count; i++)
            Assert.True(a[i].SameAs(b[i]), $"batch {i} differs for the same seed");
        Assert.False(a[0].shape.SequenceEqual(c[0].shape) && a[0].allclose(c[0]));
        foreach (var t in a.Concat(b).Concat(c)) t.Dispose();
    }

    [Fact]
    public void EvaluationLoaderIsDeterministicAndUnaugmented()
    {
        using var ds = Dataset(12);
        var pipeline = DataPipeline.ShallowCnn(new ChannelStats([0, 0, 0], [1, 1, 1]), resizeTo: 8);
        var loader = new BatchLoader(ds, 12, pipeline, shuffle: false, training: false);
        var batch = loader.Epoch(0).Single();
        using (batch)
        {
            using var expected = ds.Images.to(ScalarType.Float32);
            Assert.True(batch.Images.SameAs(expected));
        }
    }
}
