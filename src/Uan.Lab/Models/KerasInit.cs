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
}
