using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Uan.Lab.Models;

/// <summary>
/// Keras' default initialisation (glorot_uniform weights, zero biases) for every convolution and linear layer of a
/// module tree. Torch's defaults (kaiming_uniform with a = √5) differ, and the reference results were trained from
/// the Keras ones (spec Part B §6). Norm layers keep their own initialisation.
/// </summary>
public static class KerasInit
{
    /// <summary>Re-initialises the Conv1d/2d/3d and Linear layers under <paramref name="root"/> (itself included).</summary>
    public static void GlorotUniform(nn.Module root)
    {
        using var _ = no_grad();
        foreach (var (_, module) in root.named_modules().Prepend(("", root)))
        {
            switch (module)
            {
                case Convolution conv:
                    nn.init.xavier_uniform_(conv.weight);
                    if (conv.bias is not null) nn.init.zeros_(conv.bias);
                    break;
                case Linear linear:
                    nn.init.xavier_uniform_(linear.weight);
                    if (linear.bias is not null) nn.init.zeros_(linear.bias);
                    break;
            }
        }
    }

    /// <summary>
    /// Keras' <c>he_normal</c>: a normal of std √(2 / fan_in) truncated at two standard deviations, with the std
    /// divided by 0.8796 so that the truncated distribution keeps the variance 2 / fan_in (fan_in = in-channels ×
    /// kernel area). Applied to every convolution under <paramref name="root"/>, and to linear layers unless
    /// <paramref name="convolutionsOnly"/>; biases are zeroed.
    /// </summary>
    public static void HeNormal(nn.Module root, bool convolutionsOnly = false)
    {
        using var _ = no_grad();
        foreach (var (_, module) in root.named_modules().Prepend(("", root)))
        {
            Tensor? weight = null, bias = null;
            if (module is Convolution conv) (weight, bias) = (conv.weight, conv.bias);
            else if (module is Linear linear && !convolutionsOnly) (weight, bias) = (linear.weight, linear.bias);
            if (weight is null) continue;
            long fanIn = weight.numel() / weight.shape[0];
            double std = Math.Sqrt(2.0 / fanIn) / TruncatedStdFactor;
            TruncatedNormal(weight, std);
            if (bias is not null) nn.init.zeros_(bias);
        }
    }

    // Inverse-CDF sampling as torch's trunc_normal_ does it: TorchSharp 0.107's trunc_normal_ came back with a
    // near-zero spread here.
    static void TruncatedNormal(Tensor weight, double std)
    {
        double lower = 0.5 * (1 + Erf(-2 / Math.Sqrt(2))), upper = 0.5 * (1 + Erf(2 / Math.Sqrt(2)));
        weight.uniform_(2 * lower - 1, 2 * upper - 1).erfinv_().mul_(std * Math.Sqrt(2)).clamp_(-2 * std, 2 * std);
    }

    // Abramowitz–Stegun 7.1.26 is too coarse for the bounds' fourth digit; the series converges fast at |x| ≤ 1.5.
    static double Erf(double x)
    {
        double sum = 0, term = x;
        for (int n = 0; n < 60; n++)
        {
            sum += term / (2 * n + 1);
            term *= -x * x / (n + 1);
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    /// <summary>Std of a standard normal truncated to [−2, 2] (the constant Keras' VarianceScaling divides by).</summary>
    public const double TruncatedStdFactor = 0.87962566103423978;
}
