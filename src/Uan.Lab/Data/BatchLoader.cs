using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>One minibatch: float32 images [B, C, H, W], int64 labels [B] and the dataset indices they came from.</summary>
public sealed class Batch : IDisposable
{
    internal Batch(Tensor images, Tensor labels, Tensor indices)
    {
        Images = images.DetachFromDisposeScope();
        Labels = labels.DetachFromDisposeScope();
        Indices = indices.DetachFromDisposeScope();
    }

    /// <summary>float32 [B, C, H, W], transformed.</summary>
    public Tensor Images { get; }

    /// <summary>int64 [B].</summary>
    public Tensor Labels { get; }

    /// <summary>int64 [B], positions in the dataset.</summary>
    public Tensor Indices { get; }

    /// <summary>Batch size B.</summary>
    public long Count => Labels.shape[0];

    /// <summary>Frees the three tensors.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
        Indices.Dispose();
    }
}

/// <summary>
/// Yields minibatches of an <see cref="ImageDataset"/>: each batch gathers its images from the whole uint8 tensor with
/// one <c>index_select</c> and runs the <see cref="DataPipeline"/> on it. The order of epoch e is a System.Random
/// permutation and the augmentation draws come from a torch.Generator, both seeded from (seed, e): the same seed gives
/// the same batches, and any epoch can be reproduced on its own. Dispose each batch (or the loop's dispose scope will
/// not see it: batches are created outside it).
/// </summary>
public sealed class BatchLoader
{
    /// <summary>Creates a loader.</summary>
    /// <param name="dataset">Source images and labels (not owned).</param>
    /// <param name="batchSize">Images per batch.</param>
    /// <param name="pipeline">Transforms; <see cref="DataPipeline.Identity"/> when null.</param>
    /// <param name="shuffle">Reshuffle every epoch; otherwise dataset order.</param>
    /// <param name="training">Run training-only augmentations.</param>
    /// <param name="dropLast">Drop the last partial batch.</param>
    /// <param name="seed">Seed of the order and of the augmentation.</param>
    public BatchLoader(ImageDataset dataset, int batchSize, DataPipeline? pipeline = null, bool shuffle = true, bool training = true,
        bool dropLast = false, int seed = 0)
    {
        Dataset = dataset ?? throw new ArgumentNullException(nameof(dataset));
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "must be positive");
        BatchSize = batchSize;
        Pipeline = pipeline ?? DataPipeline.Identity;
        Shuffle = shuffle;
        Training = training;
        DropLast = dropLast;
        Seed = seed;
    }

    /// <summary>The dataset.</summary>
    public ImageDataset Dataset { get; }

    /// <summary>Images per batch.</summary>
    public int BatchSize { get; }

    /// <summary>The transforms.</summary>
    public DataPipeline Pipeline { get; }

    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }

    /// <summary>Whether training-only augmentations run.</summary>
    public bool Training { get; }

    /// <summary>Whether the last partial batch is dropped.</summary>
    public bool DropLast { get; }

    /// <summary>The base seed.</summary>
    public int Seed { get; }

    /// <summary>Batches per epoch.</summary>
    public long BatchesPerEpoch => DropLast ? Dataset.Count / BatchSize : (Dataset.Count + BatchSize - 1) / BatchSize;

    /// <summary>The order in which epoch <paramref name="epoch"/> visits the dataset (before dropping).</summary>
    public long[] EpochOrder(int epoch)
    {
        if (!Shuffle)
        {
            var order = new long[Dataset.Count];
            for (long i = 0; i < order.Length; i++) order[i] = i;
            return order;
        }
        return ImageDataset.Permutation(Dataset.Count, DeriveSeed(Seed, epoch, 0));
    }

    /// <summary>The batches of epoch <paramref name="epoch"/> (0-based), created lazily.</summary>
    public IEnumerable<Batch> Epoch(int epoch)
    {
        long[] order = EpochOrder(epoch);
        using var generator = new Generator((ulong)(uint)DeriveSeed(Seed, epoch, 1));
        for (long b = 0; b < BatchesPerEpoch; b++)
        {
            long start = b * BatchSize;
            long count = Math.Min(BatchSize, order.Length - start);
            yield return MakeBatch(order.AsSpan((int)start, (int)count).ToArray(), generator);
        }
    }

    private Batch MakeBatch(long[] indices, Generator generator)
    {
        using var scope = NewDisposeScope();
        var idx = tensor(indices, ScalarType.Int64);
        var images = Pipeline.Apply(Dataset.Images.index_select(0, idx), Training, generator);
        var labels = Dataset.Labels.index_select(0, idx);
        return new Batch(images, labels, idx);
    }

    /// <summary>A well-mixed 31-bit seed from (seed, epoch, stream) (SplitMix64 finaliser).</summary>
    internal static int DeriveSeed(int seed, int epoch, int stream)
    {
        ulong z = ((ulong)(uint)seed << 32 | (uint)epoch) ^ ((ulong)stream * 0x9E3779B97F4A7C15UL);
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}
