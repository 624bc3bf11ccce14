using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Uan;

/// <summary>
/// A parsed norm spec such as <c>uan:k=3,mode=batchstats</c>: a kind and its options (keys lower-case).
/// </summary>
public sealed record NormSpec(string Kind, IReadOnlyDictionary<string, string> Options)
{
    /// <summary>The spec in canonical text form (kind, then options sorted by key).</summary>
    public override string ToString() =>
        Options.Count == 0 ? Kind : Kind + ":" + string.Join(",", Options.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}"));
}

/// <summary>
/// The norm factory: every model takes its normalisation as a spec string, so a model is written once and run with
/// any norm. Kinds: <c>none</c>, <c>bn</c>, <c>ln</c>, <c>gn</c>, <c>in</c>, <c>mn</c>, <c>uan</c>; options after a
/// colon, comma-separated (<c>uan:k=3,mode=batchstats</c>, <c>gn:groups=8</c>). BatchNorm, GroupNorm and
/// InstanceNorm are TorchSharp's own modules; <c>ln</c> is TorchSharp's GroupNorm with one group, the usual
/// channels-first LayerNorm (statistics over C and all spatial dims per sample, per-channel affine).
/// </summary>
public static class Norms
{
    /// <summary>Accepted kinds and their options, as shown in error messages.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Kinds = new Dictionary<string, string[]>
    {
        ["none"] = Array.Empty<string>(),
        ["bn"] = new[] { "eps", "momentum", "affine" },
        ["ln"] = new[] { "eps", "affine" },
        ["gn"] = new[] { "groups", "eps", "affine" },
        ["in"] = new[] { "eps", "momentum", "affine" },
        ["mn"] = new[] { "k", "eps", "momentum", "iters", "affine" },
        ["uan"] = new[] { "k", "mode", "eps", "momentum", "affine", "init", "cluster", "compat-eval" },
    };

    /// <summary>Largest number of mixture components K the factory accepts (the layers themselves take any K ≥ 1).</summary>
    public const int MaxComponents = 64;

    /// <summary>Largest number of EM iterations per batch the factory accepts for <c>mn</c>.</summary>
    public const int MaxEmIterations = 100;

    /// <summary>Largest eps the factory accepts: a variance floor above 1 no longer normalises unit-scale data.</summary>
    public const double MaxEps = 1;

    /// <summary>Largest clustering-loss weight the factory accepts for <c>uan</c>.</summary>
    public const double MaxClusterWeight = 1000;

    /// <summary>What the factory accepts, one line.</summary>
    public static string Accepted =>
        string.Join("; ", Kinds.Select(k => k.Value.Length == 0 ? k.Key : $"{k.Key}[:{string.Join(",", k.Value.Select(o => o + "=…"))}]"));

    /// <summary>The accepted value of every option, one line (for help texts and error messages).</summary>
    public static string Ranges =>
        $"k: integer 1..{MaxComponents}; eps: number in (0, {MaxEps}]; momentum: number in [0, 1]; " +
        $"iters: integer 0..{MaxEmIterations}; groups: integer ≥ 1 dividing the channel count; " +
        $"cluster: number in [0, {MaxClusterWeight}]; affine, compat-eval: true or false; " +
        "mode: paper, batchstats or compat; init: data or uniform";

    /// <summary>
    /// Parses a spec string and checks every option's value against its range (<see cref="Ranges"/>); throws
    /// <see cref="ArgumentException"/> naming the problem and what is accepted. A key given twice is an error.
    /// </summary>
    public static NormSpec Parse(string spec)
    {
        if (string.IsNullOrWhiteSpace(spec))
            throw new ArgumentException($"Empty norm spec. Accepted: {Accepted}.", nameof(spec));
        var parts = spec.Trim().Split(':', 2);
        var kind = parts[0].Trim().ToLowerInvariant();
        if (!Kinds.TryGetValue(kind, out var allowed))
            throw new ArgumentException($"Unknown norm '{parts[0].Trim()}' in spec '{spec}'. Accepted: {Accepted}.",
                nameof(spec));
        var options = new Dictionary<string, string>();
        if (parts.Length == 2 && parts[1].Trim().Length > 0)
        {
            foreach (var item in parts[1].Split(','))
            {
                var kv = item.Split('=', 2);
                var key = kv[0].Trim().ToLowerInvariant();
                if (kv.Length != 2 || key.Length == 0 || kv[1].Trim().Length == 0)
                    throw new ArgumentException(
                        $"Bad option '{item}' in norm spec '{spec}': expected key=value. Options of {kind}: " +
                        (allowed.Length == 0 ? "none" : string.Join(", ", allowed)) + ".", nameof(spec));
                if (!allowed.Contains(key))
                    throw new ArgumentException(
                        $"Unknown option '{key}' for norm '{kind}' in spec '{spec}'. Options of {kind}: " +
                        (allowed.Length == 0 ? "none" : string.Join(", ", allowed)) + ".", nameof(spec));
                // Silently keeping one of two values would train something other than what was asked for.
                if (!options.TryAdd(key, kv[1].Trim()))
                    throw new ArgumentException(
                        $"Norm spec '{spec}' gives option {key} twice ({options[key]} and {kv[1].Trim()}); give it once.",
                        nameof(spec));
            }
        }
        var parsed = new NormSpec(kind, options);
        Validate(parsed);
        return parsed;
    }

    /// <summary>
    /// Checks a spec (also one built without <see cref="Parse"/>): a known kind, only its options, each value in its
    /// range. Throws <see cref="ArgumentException"/> on the first problem.
    /// </summary>
    public static void Validate(NormSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (!Kinds.TryGetValue(spec.Kind, out var allowed))
            throw new ArgumentException($"Unknown norm '{spec.Kind}'. Accepted: {Accepted}.", nameof(spec));
        foreach (var key in spec.Options.Keys)
        {
            if (!allowed.Contains(key))
                throw new ArgumentException(
                    $"Unknown option '{key}' for norm '{spec.Kind}' in spec '{spec}'. Options of {spec.Kind}: " +
                    (allowed.Length == 0 ? "none" : string.Join(", ", allowed)) + ".", nameof(spec));
            switch (key)
            {
                case "k": Int(spec, key, 1, 1, MaxComponents); break;
                case "iters": Int(spec, key, 0, 0, MaxEmIterations); break;
                case "groups": Int(spec, key, 1, 1, int.MaxValue); break;
                case "eps": Num(spec, key, 1e-3, 0, MaxEps, lowOpen: true); break;
                case "momentum": Num(spec, key, 0.1, 0, 1); break;
                case "cluster": Num(spec, key, 0, 0, MaxClusterWeight); break;
                case "affine" or "compat-eval": Bool(spec, key, false); break;
                case "mode": ParseMode(spec, spec.Options[key]); break;
                case "init": ParseInit(spec, spec.Options[key]); break;
            }
        }
    }

    /// <summary>
    /// Builds the norm described by <paramref name="spec"/> for <paramref name="channels"/> channels. The module takes
    /// [N, C, ...] inputs with <paramref name="spatialDims"/> spatial dims (0 for [N, C], 1, 2 or 3); BatchNorm and
    /// InstanceNorm are rank-specific in TorchSharp, the other kinds accept any rank.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Create(string spec, long channels, int spatialDims = 2) =>
        Create(Parse(spec), channels, spatialDims);

    /// <inheritdoc cref="Create(string, long, int)"/>
    public static nn.Module<Tensor, Tensor> Create(NormSpec spec, long channels, int spatialDims = 2)
    {
        Validate(spec);
        if (channels < 1)
            throw new ArgumentException($"Norm '{spec}': channels must be ≥ 1, got {channels}.", nameof(channels));
        if (spatialDims < 0 || spatialDims > 3)
            throw new ArgumentException($"Norm '{spec}': spatialDims must be 0..3, got {spatialDims}.",
                nameof(spatialDims));
        var o = spec.Options;
        switch (spec.Kind)
        {
            case "none":
                return nn.Identity();
            case "bn":
            {
                double eps = Num(spec, "eps", 1e-5), momentum = Num(spec, "momentum", 0.1);
                bool affine = Bool(spec, "affine", true);
                return spatialDims switch
                {
                    0 or 1 => nn.BatchNorm1d(channels, eps, momentum, affine),
                    2 => nn.BatchNorm2d(channels, eps, momentum, affine),
                    _ => nn.BatchNorm3d(channels, eps, momentum, affine),
                };
            }
            case "in":
            {
                if (spatialDims == 0)
                    throw new ArgumentException($"Norm '{spec}': InstanceNorm needs at least one spatial dim.",
                        nameof(spatialDims));
                double eps = Num(spec, "eps", 1e-5), momentum = Num(spec, "momentum", 0.1);
                bool affine = Bool(spec, "affine", true);
                return spatialDims switch
                {
                    1 => nn.InstanceNorm1d(channels, eps, momentum, affine),
                    2 => nn.InstanceNorm2d(channels, eps, momentum, affine),
                    _ => nn.InstanceNorm3d(channels, eps, momentum, affine),
                };
            }
            case "ln":
                return GroupNorm(1, channels, Num(spec, "eps", 1e-5), Bool(spec, "affine", true), spatialDims);
            case "gn":
            {
                // Default: the largest divisor of C that is at most 32 (32 groups is GroupNorm's usual choice).
                int fallback = (int)Enumerable.Range(1, (int)Math.Min(32, channels)).Last(g => channels % g == 0);
                long groups = Int(spec, "groups", fallback);
                if (groups < 1 || channels % groups != 0)
                    throw new ArgumentException(
                        $"Norm '{spec}': groups must divide the channel count {channels}, got {groups}.", nameof(spec));
                return GroupNorm(groups, channels, Num(spec, "eps", 1e-5), Bool(spec, "affine", true), spatialDims);
            }
            case "mn":
                return new MixtureNorm(channels, new MixtureNormOptions
                {
                    Components = Int(spec, "k", 3),
                    Eps = Num(spec, "eps", 1e-3),
                    Momentum = Num(spec, "momentum", 0.1),
                    EmIterations = Int(spec, "iters", 2),
                    Affine = Bool(spec, "affine", true),
                });
            case "uan":
                return new UnsupervisedAdaptiveNorm(channels, new UanOptions
                {
                    Components = Int(spec, "k", 3),
                    Mode = o.TryGetValue("mode", out var mode) ? ParseMode(spec, mode) : UanMode.Paper,
                    Eps = Num(spec, "eps", 1e-3),
                    Momentum = Num(spec, "momentum", 0.1),
                    Affine = Bool(spec, "affine", false),
                    Init = o.TryGetValue("init", out var init) ? ParseInit(spec, init) : null,
                    ClusterLossWeight = Num(spec, "cluster", 0),
                    CompatUpdateInEval = Bool(spec, "compat-eval", false),
                });
            default:
                throw new ArgumentException($"Unknown norm '{spec.Kind}'. Accepted: {Accepted}.", nameof(spec));
        }
    }

    // TorchSharp 0.107's GroupNorm allocates its affine parameters with torch.empty and never resets them, so a fresh
    // module starts from whatever the allocator hands back (often NaN). torch initialises them to 1 and 0.
    static nn.Module<Tensor, Tensor> GroupNorm(long groups, long channels, double eps, bool affine, int spatialDims)
    {
        if (spatialDims == 0) return new FlatGroupNorm(groups, channels, eps, affine);
        var norm = nn.GroupNorm(groups, channels, eps, affine);
        if (affine)
        {
            using var _ = no_grad();
            norm.weight!.fill_(1);
            norm.bias!.zero_();
        }
        return norm;
    }

    static UanMode ParseMode(NormSpec spec, string value) => value.ToLowerInvariant() switch
    {
        "paper" => UanMode.Paper,
        "batchstats" or "batch" => UanMode.BatchStats,
        "compat" or "referencecompat" or "reference" => UanMode.ReferenceCompat,
        _ => throw new ArgumentException(
            $"Norm '{spec}': unknown UAN mode '{value}'. Accepted: paper, batchstats, compat.", nameof(spec)),
    };

    static UanInit ParseInit(NormSpec spec, string value) => value.ToLowerInvariant() switch
    {
        "data" => UanInit.Data,
        "uniform" => UanInit.Uniform,
        _ => throw new ArgumentException(
            $"Norm '{spec}': unknown UAN init '{value}'. Accepted: data, uniform.", nameof(spec)),
    };

    static double Num(NormSpec spec, string key, double fallback, double min = 0, double max = double.MaxValue,
        bool lowOpen = false)
    {
        if (!spec.Options.TryGetValue(key, out var text)) return fallback;
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
            && (lowOpen ? v > min : v >= min) && v <= max)
            return v;
        string range = (lowOpen ? "(" : "[") + Format(min) + ", " + Format(max) + "]";
        throw new ArgumentException($"Norm '{spec}': option {key} must be a number in {range}, got '{text}'.",
            nameof(spec));
    }

    static int Int(NormSpec spec, string key, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!spec.Options.TryGetValue(key, out var text)) return fallback;
        if (int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max)
            return v;
        string range = max == int.MaxValue ? $"≥ {min}" : $"in {min}..{max}";
        throw new ArgumentException($"Norm '{spec}': option {key} must be an integer {range}, got '{text}'.",
            nameof(spec));
    }

    static string Format(double v) => v.ToString(CultureInfo.InvariantCulture);

    static bool Bool(NormSpec spec, string key, bool fallback)
    {
        if (!spec.Options.TryGetValue(key, out var text)) return fallback;
        return text.ToLowerInvariant() switch
        {
            "true" or "1" or "yes" or "on" => true,
            "false" or "0" or "no" or "off" => false,
            _ => throw new ArgumentException($"Norm '{spec}': option {key} must be true or false, got '{text}'.",
                nameof(spec)),
        };
    }
}

/// <summary>
/// GroupNorm (and so LayerNorm) for [N, C] inputs, which TorchSharp's module refuses (it wants a spatial dim):
/// the same function (torch's group_norm on [N, C, 1]) and the same state names, weight and bias, initialised 1 and 0.
/// </summary>
internal sealed class FlatGroupNorm : nn.Module<Tensor, Tensor>
{
    private readonly long _groups;
    private readonly double _eps;

    public FlatGroupNorm(long groups, long channels, double eps, bool affine) : base("GroupNorm")
    {
        _groups = groups;
        _eps = eps;
        if (affine)
        {
            register_parameter("weight", new Parameter(ones(channels)));
            register_parameter("bias", new Parameter(zeros(channels)));
        }
    }

    public override Tensor forward(Tensor input)
    {
        if (input.dim() != 2)
            throw new ArgumentException($"GroupNorm for [N, C] got a {input.dim()}-D input; build the norm with spatialDims = {input.dim() - 2}.");
        using var scope = NewDisposeScope();
        // Looked up by name on each call: to()/cuda() replace the registered parameters.
        return nn.functional.group_norm(input.unsqueeze(-1), _groups, get_parameter("weight"), get_parameter("bias"),
                _eps).squeeze(-1)
            .MoveToOuterDisposeScope();
    }
}
