using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Uan.Lab.Diagnostics;

/// <summary>What a <see cref="GradientProbe"/> differentiates.</summary>
public enum GradientDefinition
{
    /// <summary>d(Σ logits)/dθ, as the reference code's GradientStabilityCallback (JSON name "paper").</summary>
    Paper,
    /// <summary>d(mean cross-entropy)/dθ, the gradient the optimizer actually sees (JSON name "loss").</summary>
    Loss,
}

/// <summary>The population variance of one parameter tensor's gradient.</summary>
/// <param name="Name">State-dict name of the parameter.</param>
/// <param name="Shape">Its shape.</param>
/// <param name="Variance">Population variance (divisor n) of its gradient's elements, computed in float64.</param>
/// <param name="Connected">False when the output does not depend on the parameter (no gradient; excluded from max and mean).</param>
public sealed record TensorGradientVariance(string Name, long[] Shape, double Variance, bool Connected);

/// <summary>One probe: per-tensor gradient variances and their max and mean over the connected tensors.</summary>
/// <param name="Definition">What was differentiated.</param>
/// <param name="Tensors">Every trainable parameter, in <c>named_parameters</c> order.</param>
/// <param name="Max">Largest variance over connected tensors.</param>
/// <param name="Mean">Mean variance over connected tensors.</param>
public sealed record GradientVariance(GradientDefinition Definition, IReadOnlyList<TensorGradientVariance> Tensors, double Max, double Mean);

/// <summary>
/// Gradient-variance probe of the paper's stability figure (spec Part B §4.3): one forward in training mode (as the
/// reference does), one backward, and for every trainable tensor the population variance of its gradient. Unlike the
/// reference callback it leaves no trace: parameters (ReferenceCompat UAN's moving-average write, Data
/// initialisation), buffers (BatchNorm and MixtureNorm running state, counters), existing <c>.grad</c> values, the
/// train/eval mode of every submodule and the global random generator are all restored, so probing at each epoch
/// end does not change the training it observes.
/// </summary>
public static class GradientProbe
{
    /// <summary>The JSON name of a definition ("paper", "loss").</summary>
    public static string Name(GradientDefinition definition) => definition switch
    {
        GradientDefinition.Paper => "paper",
        GradientDefinition.Loss => "loss",
        _ => throw new ArgumentOutOfRangeException(nameof(definition), definition, null),
    };

    /// <summary>Parses "paper" or "loss" (case-insensitive).</summary>
    public static GradientDefinition Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "paper" => GradientDefinition.Paper,
        "loss" => GradientDefinition.Loss,
        _ => throw new ArgumentException($"unknown gradient definition '{name}'; accepted: paper, loss"),
    };

    /// <summary>
    /// Measures the gradient variances of <paramref name="model"/> on <paramref name="input"/> for
    /// <paramref name="definition"/>; <paramref name="labels"/> (class indices) are required for
    /// <see cref="GradientDefinition.Loss"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Loss without labels, or labels whose count differs from the batch.</exception>
    /// <exception cref="InvalidOperationException">
    /// A ReferenceCompat UAN layer holds an update recorded by a training forward and not yet applied: probing would
    /// overwrite it, so call the probe between optimizer steps.
    /// </exception>
    public static GradientVariance Measure(nn.Module<Tensor, Tensor> model, Tensor input, Tensor? labels,
        GradientDefinition definition = GradientDefinition.Paper)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(input);
        if (definition == GradientDefinition.Loss && labels is null)
            throw new ArgumentException("the loss definition needs labels", nameof(labels));
        if (labels is not null && labels.shape[0] != input.shape[0])
            throw new ArgumentException($"{labels.shape[0]} labels for a batch of {input.shape[0]}", nameof(labels));
        var compat = model.modules().OfType<UnsupervisedAdaptiveNorm>().ToList();
        if (compat.Any(l => l.HasPendingReferenceUpdate))
            throw new InvalidOperationException(
                "a ReferenceCompat UAN layer has an update pending (forward without ApplyReferenceUpdate); probe between optimizer steps");

        using var state = new ModelState(model);
        using var scope = NewDisposeScope();
        var parameters = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        model.zero_grad(true);
        model.train();
        using (enable_grad())
        {
            var logits = model.call(input);
            var target = definition == GradientDefinition.Paper
                ? logits.sum()
                : nn.functional.cross_entropy(logits, labels!.to(logits.device));
            target.backward();
        }
        // The pending moving-average write of a ReferenceCompat layer is applied only to be discarded: the
        // parameters are restored below, and the layer must not carry the probe's statistics into the next step.
        foreach (var layer in compat) layer.ApplyReferenceUpdate();

        var tensors = new List<TensorGradientVariance>(parameters.Count);
        foreach (var (name, p) in parameters)
        {
            var g = p.grad;
            bool connected = g is not null;
            double variance = connected ? PopulationVariance(g!) : 0;
            tensors.Add(new TensorGradientVariance(name, p.shape, variance, connected));
        }
        var used = tensors.Where(t => t.Connected).Select(t => t.Variance).ToList();
        return new GradientVariance(definition, tensors,
            used.Count == 0 ? double.NaN : used.Max(), used.Count == 0 ? double.NaN : used.Average());
    }

    /// <summary>Σ (g − mean)² / n in float64 (written out: Tensor.var's unbiased flag is not honoured by every overload).</summary>
    public static double PopulationVariance(Tensor values)
    {
        using var scope = NewDisposeScope();
        var d = values.detach().to(ScalarType.Float64).flatten();
        return (d - d.mean()).square().mean().item<double>();
    }

    /// <summary>
    /// Both definitions on one batch (the loss one only when <paramref name="labels"/> is given), each from the same
    /// untouched model state.
    /// </summary>
    public static IReadOnlyList<GradientVariance> MeasureAll(nn.Module<Tensor, Tensor> model, Tensor input, Tensor? labels)
    {
        var list = new List<GradientVariance> { Measure(model, input, labels, GradientDefinition.Paper) };
        if (labels is not null) list.Add(Measure(model, input, labels, GradientDefinition.Loss));
        return list;
    }

    /// <summary>Copies of everything a training forward and backward can change, put back on dispose.</summary>
    private sealed class ModelState : IDisposable
    {
        private readonly nn.Module<Tensor, Tensor> _model;
        private readonly List<(Tensor Live, Tensor Copy)> _tensors = [];
        private readonly List<(Parameter Parameter, Tensor? Grad)> _grads = [];
        private readonly List<(nn.Module Module, bool Training)> _modes = [];
        private readonly Tensor _rng;

        public ModelState(nn.Module<Tensor, Tensor> model)
        {
            _model = model;
            using var noGrad = no_grad();
            foreach (var (_, p) in model.named_parameters())
            {
                _tensors.Add((p, p.detach().clone().DetachFromDisposeScope()));
                _grads.Add((p, p.grad?.detach().clone().DetachFromDisposeScope()));
            }
            foreach (var (_, b) in model.named_buffers())
                _tensors.Add((b, b.clone().DetachFromDisposeScope()));
            _modes.Add((model, model.training));
            foreach (var m in model.modules()) _modes.Add((m, m.training));
            _rng = torch.get_rng_state().DetachFromDisposeScope();
        }

        public void Dispose()
        {
            using (no_grad())
                foreach (var (live, copy) in _tensors)
                {
                    live.copy_(copy);
                    copy.Dispose();
                }
            _model.zero_grad(true);
            foreach (var (p, grad) in _grads)
                if (grad is not null) p.grad = grad;
            // modules() is pre-order and train(bool) recurses, so parents first, then each child set back.
            foreach (var (m, training) in _modes) m.train(training);
            torch.set_rng_state(_rng);
            _rng.Dispose();
        }
    }
}
