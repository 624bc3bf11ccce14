using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// Per-channel mean and standard deviation on the 0–255 pixel scale, for x ← (x − mean) / std. As in the paper's
/// notebooks (NumPy <c>mean</c>/<c>std</c>), the std is the population one (divide by the count, not count − 1),
/// taken over all images and pixels of the training set.
/// </summary>
public sealed record ChannelStats(IReadOnlyList<double> Mean, IReadOnlyList<double> Std)
{
    /// <summary>
    /// ImageNet statistics for x/255 then (x − (0.485, 0.456, 0.406)) / (0.229, 0.224, 0.225), expressed on the
    /// 0–255 scale (both multiplied by 255), which is the same map (§4.1, Tiny ImageNet).
    /// </summary>
    public static ChannelStats ImageNet { get; } = new(
        [0.485 * 255, 0.456 * 255, 0.406 * 255],
        [0.229 * 255, 0.224 * 255, 0.225 * 255]);

    /// <summary>Number of channels.</summary>
    public int Channels => Mean.Count;

    /// <summary>
    /// Computes the statistics of <paramref name="dataset"/> in float64, <paramref name="chunk"/> images at a time so
    /// the float copy of a large set is never materialised whole.
    /// </summary>
    public static ChannelStats Compute(ImageDataset dataset, int chunk = 4096)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Count == 0) throw new ArgumentException("empty dataset", nameof(dataset));
        int c = dataset.Channels;
        var sum = new double[c];
        var sumSq = new double[c];
        for (long start = 0; start < dataset.Count; start += chunk)
        {
            using var scope = NewDisposeScope();
            long n = Math.Min(chunk, dataset.Count - start);
            var x = dataset.Images.narrow(0, start, n).to(ScalarType.Float64);
            var s = x.sum(dim: [0, 2, 3]).data<double>().ToArray();
            var q = x.square().sum(dim: [0, 2, 3]).data<double>().ToArray();
            for (int k = 0; k < c; k++) { sum[k] += s[k]; sumSq[k] += q[k]; }
        }
        double count = (double)dataset.Count * dataset.Height * dataset.Width;
        var mean = sum.Select(v => v / count).ToArray();
        var std = sumSq.Select((v, k) => Math.Sqrt(Math.Max(v / count - mean[k] * mean[k], 0))).ToArray();
        return new ChannelStats(mean, std);
    }
}
