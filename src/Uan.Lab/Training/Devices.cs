using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Training;

/// <summary>Turns a device string of a config into a torch device, refusing one this machine does not have.</summary>
public static class Devices
{
    /// <summary>
    /// The device <paramref name="text"/> names: <c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>. Throws
    /// <see cref="ArgumentException"/> (saying what is available) for another name or a CUDA device that is not
    /// there: libtorch itself would fail only at the first tensor moved, after the data has loaded.
    /// </summary>
    /// <param name="text">The device string.</param>
    /// <param name="what">How the caller calls the setting, for the message (e.g. <c>--device</c>).</param>
    public static Device Resolve(string text, string what = "device")
    {
        ArgumentNullException.ThrowIfNull(text);
        string t = text.Trim().ToLowerInvariant();
        if (t == "cpu") return CPU;
        if (t == "cuda" || t.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (t.Length > 4 && (!int.TryParse(t[5..], System.Globalization.NumberStyles.None,
                    System.Globalization.CultureInfo.InvariantCulture, out index)))
                throw new ArgumentException($"{what} '{text}': expected cuda or cuda:N with N a device number");
            if (!cuda.is_available())
                throw new ArgumentException($"{what} '{text}' is not available: no CUDA device here (or this libtorch has no CUDA support); use cpu");
            int count = cuda.device_count();
            if (index >= count)
                throw new ArgumentException($"{what} '{text}' is not available: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}");
            return device(t);
        }
        throw new ArgumentException($"{what} '{text}' is unknown; accepted: cpu, cuda, cuda:N");
    }
}
