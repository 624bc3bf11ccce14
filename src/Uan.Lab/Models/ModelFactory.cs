using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Models;

/// <summary>
/// Builds the experiment models by name, so a run's configuration can name its model as text. Names are matched
/// case-insensitively and without '-' or '_' (<c>densenet-40</c> = <c>densenet40</c>).
/// </summary>
public static class ModelFactory
{
    /// <summary>The accepted model names, canonical form.</summary>
    public static IReadOnlyList<string> Names { get; } = ["shallow-cnn", "densenet40", "densenet100", "wrn-16-2", "wrn-28-2"];

    /// <summary>
    /// Depth and widening factor of a Wide ResNet name <c>wrn-D-K</c> (<c>wrn-28-2</c>, <c>WRN_16_2</c>), or null when
    /// <paramref name="model"/> is not of that form. The depth is not checked here (the constructor does).
    /// </summary>
    public static (int Depth, int Widen)? ParseWideResNet(string? model)
    {
        var parts = (model ?? "").Trim().ToLowerInvariant().Replace('_', '-').Split('-');
        return parts.Length == 3 && parts[0] == "wrn" && int.TryParse(parts[1], out int d) && int.TryParse(parts[2], out int k)
            ? (d, k) : null;
    }

    /// <summary>
    /// Creates <paramref name="model"/>. For <c>shallow-cnn</c>, <paramref name="norm"/> is the norm after conv2
    /// (the others stay Keras BatchNorm) and an input norm is not supported. For the DenseNets,
    /// <paramref name="norm"/> is every internal norm and <paramref name="inputNorm"/> the optional norm applied to
    /// the input (the paper: <c>uan:k=10</c>); the channel bookkeeping is standard BC (see
    /// <see cref="DenseNet"/> for the reference's variant). <c>wrn-D-K</c> is a <see cref="WideResNet"/> whose input
    /// is taken as it comes (scale 1), since this factory serves the standardising pipeline of the plain trainer;
    /// AdaMatch feeds raw pixels and builds it with the 1/255 scale itself.
    /// </summary>
    /// <remarks><c>otherNorm</c> (shallow CNN only) is the norm of the layers not under study, default Keras BatchNorm
    /// (<see cref="ShallowCnn.KerasBatchNorm"/>); the DenseNets reject it, since all their norms are the one under study.</remarks>
    /// <exception cref="ArgumentException">An unknown model name (the message lists the accepted ones), or invalid sizes or norm specs.</exception>
    public static nn.Module<Tensor, Tensor> Create(string model, int inChannels, int numClasses, int imageSize,
        string norm, string? inputNorm = null, string? otherNorm = null)
    {
        var key = Canonical(model);
        if (ParseWideResNet(model) is var (depth, widen))
        {
            if (otherNorm is not null)
                throw new ArgumentException($"Model '{model}': every norm is the one under study; --other-norm applies to shallow-cnn only.",
                    nameof(otherNorm));
            if (imageSize < 4)
                throw new ArgumentException($"Model '{model}': imageSize must be at least 4, got {imageSize}.", nameof(imageSize));
            return new WideResNet(depth, widen, inChannels, numClasses, norm, inputNorm, inputScale: 1, name: $"wrn-{depth}-{widen}");
        }
        switch (key)
        {
            case "shallowcnn":
                if (inputNorm is not null)
                    throw new ArgumentException(
                        $"Model 'shallow-cnn' has no input norm (got '{inputNorm}'); its norm under study is the one after conv2.",
                        nameof(inputNorm));
                return new ShallowCnn(inChannels, numClasses, imageSize, norm, otherNorm: otherNorm ?? ShallowCnn.KerasBatchNorm);
            case "densenet40":
            case "densenet100":
                if (otherNorm is not null)
                    throw new ArgumentException($"Model '{model}': every norm is the one under study; --other-norm applies to shallow-cnn only.",
                        nameof(otherNorm));
                // Two 2×2 transitions leave at least a 1×1 grid for the global pool.
                if (imageSize < 4)
                    throw new ArgumentException($"Model '{model}': imageSize must be at least 4, got {imageSize}.",
                        nameof(imageSize));
                return new DenseNet(key == "densenet40" ? 40 : 100, inChannels, numClasses, norm, inputNorm,
                    name: key);
            default:
                throw new ArgumentException(
                    $"Unknown model '{model}'. Accepted: {string.Join(", ", Names)} ('-' and '_' optional).",
                    nameof(model));
        }
    }

    /// <summary>Number of trainable parameter elements of <paramref name="module"/> (buffers excluded).</summary>
    public static long CountParameters(nn.Module module) =>
        module.parameters().Where(p => p.requires_grad).Sum(p => p.numel());

    static string Canonical(string? model) =>
        (model ?? "").Trim().ToLowerInvariant().Replace("-", "").Replace("_", "");
}
