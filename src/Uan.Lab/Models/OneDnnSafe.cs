using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Uan.Lab.Models;

/// <summary>
/// A bias-free 2-D convolution that sidesteps a oneDNN fault in TorchSharp 0.107's libtorch (oneDNN 3.7.1) on CPU:
/// for a k×k convolution (k &gt; 1) with fewer than 24 output channels that are not a multiple of 16 (4, 8, 12, 20
/// seen; 1×1, 16, 24 and more not), the input gradient intermittently comes back entirely NaN when libtorch runs
/// with more than one thread (about 1 in 50 backward passes with 12 channels on the 2-core test machine; never with
/// one thread). The weights are zero-padded to a multiple of 16 output channels and the extra outputs dropped, which
/// is exact: the output and both gradients are those of the plain convolution. DenseNet's growth-12 convolutions
/// hit the fault in most training steps without this.
/// </summary>
public static class OneDnnSafe
{
    /// <summary>oneDNN's channel block on AVX-512; widths that are multiples of it are unaffected.</summary>
    public const long ChannelBlock = 16;

    /// <summary>
    /// conv2d(<paramref name="input"/>, <paramref name="weight"/>), stride 1, symmetric <paramref name="padding"/>,
    /// no bias; padded to whole channel blocks when the fault can occur (CPU, kernel larger than 1×1, output channels
    /// not a multiple of <see cref="ChannelBlock"/>).
    /// </summary>
    public static Tensor Conv2d(Tensor input, Tensor weight, long padding = 0)
    {
        long outChannels = weight.shape[0];
        bool affected = input.device_type == DeviceType.CPU && weight.shape[2] * weight.shape[3] > 1 &&
                        outChannels % ChannelBlock != 0;
        if (!affected)
            return F.conv2d(input, weight, null, padding: [padding, padding]);
        long extra = ChannelBlock - outChannels % ChannelBlock;
        var filler = zeros([extra, weight.shape[1], weight.shape[2], weight.shape[3]], weight.dtype, weight.device);
        return F.conv2d(input, cat([weight, filler], 0), null, padding: [padding, padding]).narrow(1, 0, outChannels);
    }
}
