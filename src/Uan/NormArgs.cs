using static TorchSharp.torch;

namespace Uan;

/// <summary>Argument checks shared by the layers; every message names the layer, what it expected and what it got.</summary>
internal static class NormArgs
{
    public static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";

    public static void Options(string layer, long channels, int components, double eps, double momentum)
    {
        if (channels < 1)
            throw new ArgumentException($"{layer}: channels must be ≥ 1, got {channels}.", nameof(channels));
        if (components < 1)
            throw new ArgumentException($"{layer}: the number of components K must be ≥ 1, got {components}.",
                "Components");
        if (!(eps > 0) || double.IsInfinity(eps))
            throw new ArgumentException($"{layer}: eps must be a finite number > 0, got {eps}.", "Eps");
        if (!(momentum >= 0 && momentum <= 1))
            throw new ArgumentException($"{layer}: momentum must be in [0, 1], got {momentum}.", "Momentum");
    }

    public static void Input(string layer, Tensor x, long channels)
    {
        if (x.dim() < 2)
            throw new ArgumentException(
                $"{layer}: expected input of rank ≥ 2 with shape [N, {channels}, ...], got {Shape(x)}.", nameof(x));
        if (x.shape[1] != channels)
            throw new ArgumentException(
                $"{layer}: expected {channels} channels on dim 1 (shape [N, {channels}, ...]), got {Shape(x)}.",
                nameof(x));
        if (!x.is_floating_point())
            throw new ArgumentException($"{layer}: expected a floating-point input, got {x.dtype}.", nameof(x));
        // Caught here rather than deep inside libtorch (index_select, random_), whose messages name no layer.
        if (x.numel() == 0)
            throw new ArgumentException(
                $"{layer}: the input {Shape(x)} is empty (a zero-size dimension); a batch needs at least one value per channel.",
                nameof(x));
    }
}
