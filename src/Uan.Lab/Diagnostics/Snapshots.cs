using System.Text;
using TorchSharp;
using TorchSharp.Modules;
using Uan.Lab.Data;
using Uan.Lab.Models;
using Uan.Lab.Training;
using static TorchSharp.torch;

namespace Uan.Lab.Diagnostics;

/// <summary>
/// Latent features of a fixed test subset after one epoch, for the t-SNE figure. Rows of <see cref="Features"/> are
/// the points in the order of <see cref="Indices"/> (positions in the run's test split).
/// </summary>
/// <param name="Epoch">Epochs finished when the features were taken.</param>
/// <param name="Epochs">Epochs the run was configured for.</param>
/// <param name="Label">The run's label (norm label).</param>
/// <param name="Norm">Norm spec of the layer under study.</param>
/// <param name="Indices">Test-split positions of the points.</param>
/// <param name="Labels">Class of each point.</param>
/// <param name="Dimensions">Columns of <see cref="Features"/>.</param>
/// <param name="Features">Row-major [points × Dimensions] float32 values.</param>
/// <param name="OriginalDimensions">Width of the model's features before any PCA reduction.</param>
/// <param name="RetainedVariance">Fraction of the features' variance kept by the PCA (1 without reduction).</param>
public sealed record FeatureSnapshot(int Epoch, int Epochs, string Label, string Norm, long[] Indices, long[] Labels,
    int Dimensions, float[] Features, int OriginalDimensions, double RetainedVariance)
{
    /// <summary>Number of points.</summary>
    public int Count => Labels.Length;

    /// <summary>The features as a [points, Dimensions] float32 tensor.</summary>
    public Tensor ToTensor() => tensor(Features, new long[] { Count, Dimensions });
}

/// <summary>
/// Snapshot files in a run's <c>snapshots/</c> folder: <c>features-eNNNN.snap</c> (a <see cref="FeatureSnapshot"/>)
/// and <c>activations-eNNNN.snap</c> (an <see cref="ActivationSet"/>). A small binary format (magic, kind, fields,
/// raw little-endian arrays) so that the values round-trip bit for bit and a 2,000 × 256 snapshot stays ~2 MB.
/// </summary>
public static class SnapshotFiles
{
    /// <summary>Folder inside a run folder.</summary>
    public const string FolderName = "snapshots";

    private const string Magic = "UAN-SNAPSHOT-1";
    private const string FeaturesKind = "features", ActivationsKind = "activations";

    /// <summary>Path of the features snapshot of <paramref name="epoch"/>.</summary>
    public static string FeaturesPath(string runDir, int epoch) => Path.Combine(runDir, FolderName, $"{FeaturesKind}-e{epoch:D4}.snap");

    /// <summary>Path of the activations snapshot of <paramref name="epoch"/>.</summary>
    public static string ActivationsPath(string runDir, int epoch) => Path.Combine(runDir, FolderName, $"{ActivationsKind}-e{epoch:D4}.snap");

    /// <summary>The feature snapshots of a run folder, by epoch.</summary>
    public static IReadOnlyList<string> FeatureFiles(string runDir) => Files(runDir, FeaturesKind);

    /// <summary>The activation snapshots of a run folder, by epoch.</summary>
    public static IReadOnlyList<string> ActivationFiles(string runDir) => Files(runDir, ActivationsKind);

    private static IReadOnlyList<string> Files(string runDir, string kind)
    {
        var dir = Path.Combine(runDir, FolderName);
        return Directory.Exists(dir)
            ? Directory.GetFiles(dir, $"{kind}-e*.snap").Order(StringComparer.Ordinal).ToList()
            : [];
    }

    /// <summary>Writes a features snapshot atomically (temporary file, then rename).</summary>
    public static void Save(string path, FeatureSnapshot s) => Write(path, FeaturesKind, w =>
    {
        w.Write(s.Epoch); w.Write(s.Epochs); w.Write(s.Label); w.Write(s.Norm);
        w.Write(s.Dimensions); w.Write(s.OriginalDimensions); w.Write(s.RetainedVariance);
        WriteArray(w, s.Indices); WriteArray(w, s.Labels); WriteArray(w, s.Features);
    });

    /// <summary>Writes an activations snapshot taken after <paramref name="epoch"/> atomically.</summary>
    public static void Save(string path, int epoch, ActivationSet s) => Write(path, ActivationsKind, w =>
    {
        w.Write(epoch); w.Write(s.Label); w.Write(s.Norm);
        WriteArray(w, s.Channels);
        for (int i = 0; i < s.Channels.Length; i++)
        {
            WriteArray(w, s.Values[i]);
            var m = s.Mixtures[i];
            w.Write(m is not null);
            if (m is null) continue;
            WriteArray(w, m.Weights); WriteArray(w, m.Means); WriteArray(w, m.Variances);
        }
    });

    /// <summary>Reads a features snapshot.</summary>
    public static FeatureSnapshot LoadFeatures(string path) => Read(path, FeaturesKind, r =>
    {
        int epoch = r.ReadInt32(), epochs = r.ReadInt32();
        string label = r.ReadString(), norm = r.ReadString();
        int dims = r.ReadInt32(), original = r.ReadInt32();
        double retained = r.ReadDouble();
        var indices = ReadArray<long>(r);
        var labels = ReadArray<long>(r);
        var features = ReadArray<float>(r);
        if (labels.Length != indices.Length || features.Length != (long)labels.Length * dims)
            throw new InvalidDataException($"{path}: {labels.Length} labels, {indices.Length} indices, {features.Length} values for {dims} dimensions");
        return new FeatureSnapshot(epoch, epochs, label, norm, indices, labels, dims, features, original, retained);
    });

    /// <summary>Reads an activations snapshot and the epoch it was taken after.</summary>
    public static (int Epoch, ActivationSet Set) LoadActivations(string path) => Read(path, ActivationsKind, r =>
    {
        int epoch = r.ReadInt32();
        string label = r.ReadString(), norm = r.ReadString();
        var channels = ReadArray<int>(r);
        var values = new float[channels.Length][];
        var mixtures = new ChannelMixture?[channels.Length];
        for (int i = 0; i < channels.Length; i++)
        {
            values[i] = ReadArray<float>(r);
            if (r.ReadBoolean())
                mixtures[i] = new ChannelMixture(ReadArray<double>(r), ReadArray<double>(r), ReadArray<double>(r));
        }
        return (epoch, new ActivationSet(label, norm, channels, values, mixtures));
    });

    private static void Write(string path, string kind, Action<BinaryWriter> body) =>
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(kind);
            body(w);
        });

    private static T Read<T>(string path, string kind, Func<BinaryReader, T> body)
    {
        try
        {
            using var stream = File.OpenRead(path);
            using var r = new BinaryReader(stream, Encoding.UTF8);
            if (r.ReadString() != Magic) throw new InvalidDataException($"{path}: not a UAN snapshot");
            var actual = r.ReadString();
            if (actual != kind) throw new InvalidDataException($"{path}: a {actual} snapshot, expected {kind}");
            return body(r);
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"{path}: snapshot is truncated", e);
        }
    }

    private static void WriteArray<T>(BinaryWriter w, T[] values) where T : unmanaged
    {
        w.Write(values.Length);
        w.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
    }

    private static T[] ReadArray<T>(BinaryReader r) where T : unmanaged
    {
        int n = r.ReadInt32();
        if (n < 0) throw new InvalidDataException("negative array length");
        var values = new T[n];
        var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan());
        if (r.Read(bytes) != bytes.Length) throw new EndOfStreamException();
        return values;
    }
}

/// <summary>
/// Opt-in (<see cref="RunConfig.Snapshots"/>) recorder the trainer calls after each epoch: at 25/50/75/100 % of the
/// epochs (epoch max(1, round(p·E)), as the report's columns) it saves the latent features of a fixed, class-stratified
/// test subset of up to <see cref="MaxPoints"/> images (chosen with <see cref="ExperimentData.SubsetSeed"/>, so every
/// run of a comparison sees the same points), and after the last epoch the conv2 pre-norm activations of the first
/// batch of that subset (shallow CNN only). It runs the model in eval mode without gradients and touches neither
/// the random generators nor the model's state, so a run with snapshots trains exactly as one without.
/// </summary>
public sealed class SnapshotRecorder : IDisposable
{
    /// <summary>Largest number of test points in a features snapshot.</summary>
    public const int MaxPoints = 2000;

    /// <summary>Wider features are reduced by PCA to this many dimensions (t-SNE sees distances only).</summary>
    public const int MaxDimensions = 256;

    private readonly RunConfig _config;
    private readonly ImageDataset _subset;
    private readonly long[] _indices;
    private readonly DataPipeline _pipeline;
    private readonly string _runDir;

    /// <summary>Chooses the test subset of <paramref name="data"/> for a run saved in <paramref name="runDir"/>.</summary>
    public SnapshotRecorder(RunConfig config, ExperimentData data, string runDir)
    {
        _config = config ?? throw new ArgumentNullException(nameof(config));
        ArgumentNullException.ThrowIfNull(data);
        _runDir = runDir;
        _pipeline = data.EvalPipeline;
        var test = data.Test;
        int n = (int)Math.Min(MaxPoints, test.Count);
        _indices = test.StratifiedIndices(ImageDataset.ProportionalAllocation(test.ClassCounts(), n), ExperimentData.SubsetSeed);
        _subset = test.Subset(_indices, "snapshot points");
    }

    /// <summary>The epochs (1-based, ascending, distinct) at 25/50/75/100 % of <paramref name="epochs"/>.</summary>
    public static IReadOnlyList<int> SnapshotEpochs(int epochs) =>
        new[] { 0.25, 0.5, 0.75, 1.0 }.Select(p => Math.Max(1, (int)Math.Round(p * epochs, MidpointRounding.AwayFromZero)))
            .Distinct().Order().ToList();

    /// <summary>Saves what is due after <paramref name="epoch"/> (1-based); returns the files written.</summary>
    public IReadOnlyList<string> AfterEpoch(nn.Module<Tensor, Tensor> model, int epoch)
    {
        var written = new List<string>();
        if (!SnapshotEpochs(_config.Epochs).Contains(epoch)) return written;
        var device = model.parameters().FirstOrDefault()?.device ?? CPU;
        var modes = model.modules().Select(m => (m, m.training)).Prepend((model, model.training)).ToList();
        try
        {
            model.eval();
            var features = Features(model, device, epoch);
            if (features is not null)
            {
                var path = SnapshotFiles.FeaturesPath(_runDir, epoch);
                SnapshotFiles.Save(path, features);
                written.Add(path);
            }
            if (epoch == _config.Epochs && model is ShallowCnn cnn)
            {
                using var scope = NewDisposeScope();
                var images = _pipeline.Apply(_subset.Images.narrow(0, 0, Math.Min(_config.BatchSize, _subset.Count)), false, new Generator(0));
                var set = ActivationDistributions.Collect(cnn, images.to(device), _config.Label ?? _config.Norm);
                var path = SnapshotFiles.ActivationsPath(_runDir, epoch);
                SnapshotFiles.Save(path, epoch, set);
                written.Add(path);
            }
        }
        finally
        {
            foreach (var (m, training) in modes) m.train(training);
        }
        return written;
    }

    private FeatureSnapshot? Features(nn.Module<Tensor, Tensor> model, Device device, int epoch)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var loader = new BatchLoader(_subset, _config.BatchSize, _pipeline, shuffle: false, training: false);
        var parts = new List<Tensor>();
        foreach (var batch in loader.Epoch(0))
            using (batch)
            {
                var f = LatentFeatures(model, batch.Images.to(device));
                if (f is null) return null;
                parts.Add(f.to(ScalarType.Float32).cpu());
            }
        var all = cat(parts, 0);
        int original = (int)all.shape[1];
        var (reduced, retained) = ReduceDimensions(all, MaxDimensions);
        var labels = _subset.Labels.to(ScalarType.Int64).data<long>().ToArray();
        return new FeatureSnapshot(epoch, _config.Epochs, _config.Label ?? _config.Norm, _config.Norm, _indices.ToArray(), labels,
            (int)reduced.shape[1], reduced.contiguous().data<float>().ToArray(), original, retained);
    }

    /// <summary>
    /// The penultimate features of <paramref name="model"/> on <paramref name="x"/>: <see cref="ShallowCnn.Features"/>
    /// for the shallow CNN, otherwise the input of the last Linear module (captured by a forward pre-hook, flattened);
    /// null when the model has no Linear module.
    /// </summary>
    public static Tensor? LatentFeatures(nn.Module<Tensor, Tensor> model, Tensor x)
    {
        if (model is ShallowCnn cnn) return cnn.Features(x);
        var last = model.modules().OfType<Linear>().LastOrDefault();
        if (last is null) return null;
        Tensor? captured = null;
        var hook = last.register_forward_pre_hook((_, input) => { captured = input.flatten(1); return input; });
        try
        {
            model.call(x);
        }
        finally
        {
            hook.remove();
        }
        return captured;
    }

    /// <summary>
    /// PCA of the rows to at most <paramref name="maxDimensions"/> columns via the n×n Gram matrix (cheap when the
    /// features are wider than the point count); pairwise distances are kept up to the dropped variance. Returns the
    /// input unchanged (and 1) when it is narrow enough.
    /// </summary>
    public static (Tensor Reduced, double RetainedVariance) ReduceDimensions(Tensor rows, int maxDimensions)
    {
        if (rows.shape[1] <= maxDimensions) return (rows, 1.0);
        using var scope = NewDisposeScope();
        var x = rows.to(ScalarType.Float64);
        x = x - x.mean(new long[] { 0 }, keepdim: true);
        var gram = x.mm(x.t());
        var (values, vectors) = linalg.eigh(gram);                     // ascending
        long n = values.shape[0], k = Math.Min(maxDimensions, n);
        var top = values.narrow(0, n - k, k).clamp_min(0).flip(0);
        var basis = vectors.narrow(1, n - k, k).flip(1);
        var scores = basis * top.sqrt().unsqueeze(0);                 // = x · (principal directions)
        double total = values.clamp_min(0).sum().item<double>();
        double retained = total > 0 ? top.sum().item<double>() / total : 1.0;
        return (scores.to(ScalarType.Float32).MoveToOuterDisposeScope(), retained);
    }

    /// <summary>Releases the subset.</summary>
    public void Dispose() => _subset.Dispose();
}
