using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Kernels;

/// <summary>
/// Switch and eligibility test for the fused CPU kernels. Eligible inputs (contiguous CPU float32 / float64 of rank
/// ≥ 2, channel on dim 1, with the small per-channel tensors on the CPU in the same dtype) take the fused path;
/// everything else, and everything while the kernels are disabled, takes the tensor-op path, which stays the
/// reference.
/// </summary>
public static class UanKernels
{
    static readonly ScopedSwitch Switch = new(true);

    /// <summary>
    /// Process-wide default: true (the fused kernels are used where eligible). <see cref="Use"/> overrides it for
    /// the current thread / async flow.
    /// </summary>
    public static bool Enabled
    {
        get => Switch.Default;
        set => Switch.Default = value;
    }

    /// <summary>Whether the fused kernels are on for the current async flow (override, else <see cref="Enabled"/>).</summary>
    public static bool IsEnabled => Switch.Value;

    /// <summary>
    /// Turns the fused kernels on or off for the current async flow until the returned scope is disposed.
    /// Unlike setting <see cref="Enabled"/>, this does not leak into code running concurrently (parallel tests,
    /// benchmarks that compare both paths).
    /// </summary>
    public static IDisposable Use(bool enabled) => Switch.Use(enabled);

    /// <summary>
    /// True when the fused path is on and can take x (contiguous CPU float32 / float64, rank ≥ 2, non-empty) with
    /// the given per-channel tensors (null entries are ignored; the others must be on the CPU in x's dtype).
    /// </summary>
    public static bool CanFuse(Tensor x, params Tensor?[] small)
    {
        if (!IsEnabled) return false;
        if (x.device_type != DeviceType.CPU) return false;
        if (x.dtype != ScalarType.Float32 && x.dtype != ScalarType.Float64) return false;
        if (x.dim() < 2 || x.numel() == 0 || !x.is_contiguous()) return false;
        // The kernels address the storage through a span, which is limited to 2 GB.
        if (x.numel() * x.ElementSize > int.MaxValue) return false;
        foreach (var t in small)
        {
            if (t is null) continue;
            if (t.device_type != DeviceType.CPU || t.dtype != x.dtype) return false;
        }
        return true;
    }
}
