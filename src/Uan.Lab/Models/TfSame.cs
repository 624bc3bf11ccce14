using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Uan.Lab.Models;

/// <summary>
/// TensorFlow's 'same' padding for strided pooling. TF pads asymmetrically (the extra row and column go to the
/// bottom and right), whereas torch's symmetric <c>padding</c> shifts every window by one position on even sizes;
/// porting the reference models needs the TF alignment (spec Part B §6).
/// </summary>
public static class TfSame
{
    /// <summary>Output length of a 'same' window along a dim of length <paramref name="size"/>: ceil(size / stride).</summary>
    public static long OutputSize(long size, long stride)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "size must be ≥ 1");
        if (stride < 1) throw new ArgumentOutOfRangeException(nameof(stride), stride, "stride must be ≥ 1");
        return (size + stride - 1) / stride;
    }

    /// <summary>
    /// TF's padding along one dim: total = max((out − 1)·stride + kernel − size, 0), split as
    /// (before = total / 2, after = total − before).
    /// </summary>
    public static (long Before, long After) Padding(long size, long kernel, long stride)
    {
        if (kernel < 1) throw new ArgumentOutOfRangeException(nameof(kernel), kernel, "kernel must be ≥ 1");
        long total = Math.Max((OutputSize(size, stride) - 1) * stride + kernel - size, 0);
        return (total / 2, total - total / 2);
    }

    /// <summary>
    /// Max pooling of [N, C, H, W] with a square <paramref name="kernel"/> and <paramref name="stride"/> and TF 'same'
    /// padding. The padding is −∞, so padded positions never win the max (TF ignores them too).
    /// </summary>
    public static Tensor MaxPool2d(Tensor x, long kernel, long stride)
    {
        if (x.dim() != 4)
            throw new ArgumentException($"TfSame.MaxPool2d: expected [N, C, H, W], got [{string.Join(", ", x.shape)}].",
                nameof(x));
        var (top, bottom) = Padding(x.shape[2], kernel, stride);
        var (left, right) = Padding(x.shape[3], kernel, stride);
        var padded = top + bottom + left + right == 0
            ? x
            : F.pad(x, [left, right, top, bottom], PaddingModes.Constant, double.NegativeInfinity);
        return F.max_pool2d(padded, [kernel, kernel], [stride, stride]);
    }
}
