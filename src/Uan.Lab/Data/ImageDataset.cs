using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// An in-memory image classification dataset: uint8 images [N, C, H, W] on the 0–255 scale and int64 labels [N].
/// The dataset owns both tensors (they are detached from any dispose scope) and frees them on <see cref="Dispose"/>.
/// Every derived dataset (<see cref="Subset(long[], string?)"/>, splits, shuffles) is an independent copy.
/// </summary>
public sealed class ImageDataset : IDisposable
{
    private bool _disposed;

    /// <summary>
    /// Wraps <paramref name="images"/> (uint8 [N, C, H, W]) and <paramref name="labels"/> (int64 [N], values in
    /// [0, <paramref name="numClasses"/>)). Ownership of both tensors passes to the dataset.
    /// </summary>
    public ImageDataset(Tensor images, Tensor labels, int numClasses, string name, IReadOnlyList<string>? classNames = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(labels);
        if (images.dtype != ScalarType.Byte || images.dim() != 4)
            throw new ArgumentException($"images must be uint8 [N, C, H, W], got {images.dtype} [{string.Join(", ", images.shape)}]", nameof(images));
        if (labels.dtype != ScalarType.Int64 || labels.dim() != 1)
            throw new ArgumentException($"labels must be int64 [N], got {labels.dtype} [{string.Join(", ", labels.shape)}]", nameof(labels));
        if (labels.shape[0] != images.shape[0])
            throw new ArgumentException($"{images.shape[0]} images but {labels.shape[0]} labels");
        if (numClasses <= 0)
            throw new ArgumentOutOfRangeException(nameof(numClasses), numClasses, "must be positive");
        if (classNames is not null && classNames.Count != numClasses)
            throw new ArgumentException($"{classNames.Count} class names for {numClasses} classes", nameof(classNames));
        if (labels.shape[0] > 0)
        {
            using var scope = NewDisposeScope();
            long min = labels.min().item<long>(), max = labels.max().item<long>();
            if (min < 0 || max >= numClasses)
                throw new ArgumentException($"labels span [{min}, {max}], outside [0, {numClasses})", nameof(labels));
        }

        Images = images.DetachFromDisposeScope();
        Labels = labels.DetachFromDisposeScope();
        NumClasses = numClasses;
        Name = name;
        ClassNames = classNames;
    }

    /// <summary>uint8 [N, C, H, W], 0–255.</summary>
    public Tensor Images { get; }

    /// <summary>int64 [N], class indices.</summary>
    public Tensor Labels { get; }

    /// <summary>Number of classes (labels lie in [0, NumClasses)).</summary>
    public int NumClasses { get; }

    /// <summary>Human-readable name, e.g. "mnist/train".</summary>
    public string Name { get; }

    /// <summary>Class names in label order, when the source provides them.</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary>Number of images N.</summary>
    public long Count => Images.shape[0];

    /// <summary>Channels C.</summary>
    public int Channels => (int)Images.shape[1];

    /// <summary>Height H.</summary>
    public int Height => (int)Images.shape[2];

    /// <summary>Width W.</summary>
    public int Width => (int)Images.shape[3];

    /// <summary>Number of images of each class, indexed by label.</summary>
    public long[] ClassCounts()
    {
        using var scope = NewDisposeScope();
        return Labels.bincount(null, NumClasses).data<long>().ToArray();
    }

    /// <summary>The images at <paramref name="indices"/> (in that order, repeats allowed) as a new dataset.</summary>
    public ImageDataset Subset(long[] indices, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(indices);
        using var scope = NewDisposeScope();
        using var idx = tensor(indices, ScalarType.Int64);
        return Subset(idx, name);
    }

    /// <summary>The images at the int64 <paramref name="indices"/> [K] as a new dataset.</summary>
    public ImageDataset Subset(Tensor indices, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (indices.dim() != 1)
            throw new ArgumentException("indices must be 1-D", nameof(indices));
        using var scope = NewDisposeScope();
        var idx = indices.to(ScalarType.Int64);
        if (idx.shape[0] > 0)
        {
            long min = idx.min().item<long>(), max = idx.max().item<long>();
            if (min < 0 || max >= Count)
                throw new ArgumentOutOfRangeException(nameof(indices), $"indices span [{min}, {max}], outside [0, {Count})");
        }
        var images = Images.index_select(0, idx).MoveToOuterDisposeScope();
        var labels = Labels.index_select(0, idx).MoveToOuterDisposeScope();
        return new ImageDataset(images, labels, NumClasses, name ?? Name, ClassNames);
    }

    /// <summary>The contiguous range [<paramref name="start"/>, start + <paramref name="count"/>) as a new dataset.</summary>
    public ImageDataset Range(long start, long count, string? name = null)
    {
        if (start < 0 || count < 0 || start + count > Count)
            throw new ArgumentOutOfRangeException(nameof(start), $"range [{start}, {start + count}) is outside [0, {Count})");
        using var scope = NewDisposeScope();
        var images = Images.narrow(0, start, count).clone().MoveToOuterDisposeScope();
        var labels = Labels.narrow(0, start, count).clone().MoveToOuterDisposeScope();
        return new ImageDataset(images, labels, NumClasses, name ?? Name, ClassNames);
    }

    /// <summary>The first <paramref name="trainCount"/> images and the rest, in order (e.g. DenseNet's 40,000 / 10,000).</summary>
    public (ImageDataset Train, ImageDataset Validation) SplitAt(long trainCount)
    {
        if (trainCount < 0 || trainCount > Count)
            throw new ArgumentOutOfRangeException(nameof(trainCount), trainCount, $"must lie in [0, {Count}]");
        return (Range(0, trainCount, Name + "[train]"), Range(trainCount, Count - trainCount, Name + "[val]"));
    }

    /// <summary>
    /// Keras <c>validation_split</c>: the LAST <paramref name="validationFraction"/> of the images is the validation
    /// set, the rest (in order) the training set. The split point is computed as Keras does,
    /// <c>int(N * (1 - fraction))</c>, so 50,000 with 0.1 gives 45,000 / 5,000.
    /// </summary>
    public (ImageDataset Train, ImageDataset Validation) SplitLast(double validationFraction)
    {
        if (!(validationFraction >= 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "must lie in [0, 1)");
        return SplitAt((long)(Count * (1.0 - validationFraction)));
    }

    /// <summary>
    /// A stratified split: round(N · <paramref name="validationFraction"/>) images, allocated over the classes in
    /// proportion to their counts (<see cref="ProportionalAllocation"/>) and drawn with <paramref name="seed"/>, form the
    /// validation set; the rest is the training set. Both keep the original order.
    /// </summary>
    public (ImageDataset Train, ImageDataset Validation) StratifiedSplit(double validationFraction, int seed)
    {
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "must lie in (0, 1)");
        long valCount = (long)Math.Round(Count * validationFraction, MidpointRounding.AwayFromZero);
        var validation = StratifiedIndices(ProportionalAllocation(ClassCounts(), valCount), seed);
        var isValidation = new HashSet<long>(validation);
        var train = Enumerable.Range(0, checked((int)Count)).Select(i => (long)i).Where(i => !isValidation.Contains(i)).ToArray();
        return (Subset(train, Name + "[train]"), Subset(validation, Name + "[val]"));
    }

    /// <summary>All images in a seeded random order (System.Random Fisher–Yates, stable across platforms).</summary>
    public ImageDataset Shuffle(int seed, string? name = null) => Subset(Permutation(Count, seed), name);

    /// <summary>
    /// A class-stratified random subset of <paramref name="total"/> images: each class gets a share proportional to
    /// its frequency (largest remainder, ties to the lower label), drawn without replacement with
    /// <c>System.Random(seed)</c>. The result keeps the original order of the chosen images.
    /// </summary>
    public ImageDataset StratifiedSubset(int total, int seed, string? name = null)
    {
        if (total < 0 || total > Count)
            throw new ArgumentOutOfRangeException(nameof(total), total, $"must lie in [0, {Count}]");
        return StratifiedSubset(ProportionalAllocation(ClassCounts(), total), seed, name);
    }

    /// <summary>
    /// A random subset with exactly <paramref name="perClass"/>[k] images of class k, drawn without replacement with
    /// <c>System.Random(seed)</c>, in the original order.
    /// </summary>
    public ImageDataset StratifiedSubset(IReadOnlyList<long> perClass, int seed, string? name = null) =>
        Subset(StratifiedIndices(perClass, seed), name);

    /// <summary>The sorted indices <see cref="StratifiedSubset(IReadOnlyList{long}, int, string?)"/> selects.</summary>
    public long[] StratifiedIndices(IReadOnlyList<long> perClass, int seed)
    {
        ArgumentNullException.ThrowIfNull(perClass);
        if (perClass.Count != NumClasses)
            throw new ArgumentException($"{perClass.Count} counts for {NumClasses} classes", nameof(perClass));
        long[] labels;
        using (NewDisposeScope()) labels = Labels.data<long>().ToArray();
        var byClass = new List<long>[NumClasses];
        for (int k = 0; k < NumClasses; k++) byClass[k] = new List<long>();
        for (long i = 0; i < labels.Length; i++) byClass[labels[i]].Add(i);

        var rng = new Random(seed);
        var chosen = new List<long>();
        for (int k = 0; k < NumClasses; k++)
        {
            long want = perClass[k];
            if (want < 0 || want > byClass[k].Count)
                throw new ArgumentOutOfRangeException(nameof(perClass), $"class {k}: {want} requested, {byClass[k].Count} available");
            long[] pool = byClass[k].ToArray();
            // Partial Fisher–Yates: the first `want` slots end up a uniform sample without replacement.
            for (int i = 0; i < want; i++)
            {
                int j = rng.Next(i, pool.Length);
                (pool[i], pool[j]) = (pool[j], pool[i]);
            }
            chosen.AddRange(pool.Take((int)want));
        }
        chosen.Sort();
        return chosen.ToArray();
    }

    /// <summary>
    /// Splits <paramref name="total"/> over classes in proportion to <paramref name="classCounts"/> (Hamilton /
    /// largest-remainder method; equal remainders go to the lower class index). The parts sum to total.
    /// </summary>
    public static long[] ProportionalAllocation(IReadOnlyList<long> classCounts, long total)
    {
        ArgumentNullException.ThrowIfNull(classCounts);
        long n = classCounts.Sum();
        if (total < 0 || total > n)
            throw new ArgumentOutOfRangeException(nameof(total), total, $"must lie in [0, {n}]");
        var result = new long[classCounts.Count];
        if (n == 0) return result;
        var remainders = new (long Rem, int Class)[classCounts.Count];
        long assigned = 0;
        for (int k = 0; k < classCounts.Count; k++)
        {
            // Exact integer arithmetic: floor(total * c_k / n) and its remainder.
            result[k] = (long)((Int128)total * classCounts[k] / n);
            remainders[k] = ((long)((Int128)total * classCounts[k] % n), k);
            assigned += result[k];
        }
        foreach (var (_, k) in remainders.OrderByDescending(r => r.Rem).ThenBy(r => r.Class).Take((int)(total - assigned)))
            result[k]++;
        return result;
    }

    /// <summary>A seeded permutation of 0..n-1 (System.Random Fisher–Yates).</summary>
    public static long[] Permutation(long n, int seed)
    {
        var p = new long[n];
        for (long i = 0; i < n; i++) p[i] = i;
        var rng = new Random(seed);
        for (long i = n - 1; i > 0; i--)
        {
            long j = rng.NextInt64(i + 1);
            (p[i], p[j]) = (p[j], p[i]);
        }
        return p;
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Name}: {Count} images [{Channels}×{Height}×{Width}], {NumClasses} classes";

    /// <summary>Frees the image and label tensors.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Images.Dispose();
        Labels.Dispose();
    }
}
