using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Kernels;

/// <summary>
/// Autograd node of the fused Paper mode. Inputs: x [N, C, ...], μ, log λ, σ² [K, C], optional affine weight and
/// bias [C], and a flag asking for the mean log-likelihood as a second (scalar) output. The forward saves only the
/// inputs; the backward recomputes the responsibilities from x.
/// </summary>
internal sealed unsafe class PaperFunction : autograd.MultiTensorFunction<PaperFunction>
{
    /// <inheritdoc/>
    public override string Name => "UanPaperFused";

    /// <summary>Runs the node: [y] or [y, mean log Σ_k λ_k N(x | μ_k, σ²_k) without ½ log 2π].</summary>
    public static List<Tensor> Apply(Tensor x, Tensor mu, Tensor logLambda, Tensor variance, Tensor? weight,
        Tensor? bias, bool withLogZ) => apply(x, mu, logLambda, variance, weight!, bias!, withLogZ);

    /// <inheritdoc/>
    public override List<Tensor> forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var mu = (Tensor)vars[1];
        var logLambda = (Tensor)vars[2];
        var variance = (Tensor)vars[3];
        var weight = vars[4] as Tensor;
        var bias = vars[5] as Tensor;
        bool withLogZ = (bool)vars[6];
        var m = new PaperKernel.Mixture((int)mu.shape[0], KernelMath.Values(mu)!, KernelMath.Values(logLambda)!,
            KernelMath.Values(variance)!, KernelMath.Values(weight), KernelMath.Values(bias));
        var (n, c, s) = KernelMath.Dims(x);
        var y = empty(x.shape, x.dtype, x.device);
        double lz = x.dtype == ScalarType.Float32
            ? PaperKernel.Forward(KernelMath.Ptr<float>(x), KernelMath.Ptr<float>(y), n, c, s, m, withLogZ)
            : PaperKernel.Forward(KernelMath.Ptr<double>(x), KernelMath.Ptr<double>(y), n, c, s, m, withLogZ);

        // TorchSharp materialises a missing output gradient from a tensor it allocated during this forward, inside
        // the caller's dispose scope, which is gone by backward time (a crash when, say, only y is used). Missing
        // gradients arrive as invalid tensors instead and count as zero below.
        ctx.set_materialize_grads(false);
        ctx.save_for_backward(new List<Tensor> { x });
        ctx.save_data("mixture", m);
        ctx.save_data("withLogZ", withLogZ);
        ctx.save_data("needs", new[] { x.requires_grad, mu.requires_grad, logLambda.requires_grad,
            variance.requires_grad, weight?.requires_grad ?? false, bias?.requires_grad ?? false });
        var outputs = new List<Tensor> { y };
        if (withLogZ) outputs.Add(tensor(lz / x.numel(), x.dtype));
        return outputs;
    }

    internal static bool Defined(List<Tensor> grads, int i) => i < grads.Count && grads[i] is { IsInvalid: false };

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, List<Tensor> grads)
    {
        using var scope = NewDisposeScope();
        var x = ctx.get_saved_variables()[0];
        var m = (PaperKernel.Mixture)ctx.get_data("mixture");
        bool withLogZ = (bool)ctx.get_data("withLogZ");
        var needs = (bool[])ctx.get_data("needs");
        var g = Defined(grads, 0) ? grads[0].to(x.dtype).contiguous() : zeros(x.shape, x.dtype, x.device);
        double gz = withLogZ && Defined(grads, 1) ? grads[1].to(ScalarType.Float64).item<double>() / x.numel() : 0;
        var (n, c, s) = KernelMath.Dims(x);
        Tensor? gx = needs[0] ? empty(x.shape, x.dtype, x.device) : null;
        var r = x.dtype == ScalarType.Float32
            ? PaperKernel.Backward(KernelMath.Ptr<float>(x), KernelMath.Ptr<float>(g),
                gx is null ? null : KernelMath.Ptr<float>(gx), n, c, s, m, gz)
            : PaperKernel.Backward(KernelMath.Ptr<double>(x), KernelMath.Ptr<double>(g),
                gx is null ? null : KernelMath.Ptr<double>(gx), n, c, s, m, gz);
        var kc = new long[] { m.K, c };
        Tensor? Out(bool need, double[] values, long[] shape) =>
            need ? KernelMath.ToTensor(values, shape, x.dtype).MoveToOuterDisposeScope() : null;
        return new List<Tensor>
        {
            gx?.MoveToOuterDisposeScope()!,
            Out(needs[1], r.Mu, kc)!,
            Out(needs[2], r.LogLambda, kc)!,
            Out(needs[3], r.Var, kc)!,
            Out(needs[4], r.W, new[] { c })!,
            Out(needs[5], r.B, new[] { c })!,
            null!,
        };
    }
}
