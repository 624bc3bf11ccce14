using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Uan.Cli;

/// <summary>
/// Numeric options parsed and range-checked by the parser itself, so a bad value stops the command before it reads
/// anything, in a message that names the option and its range (System.CommandLine's own names .NET types). The range
/// is also shown in the option's help text (see <see cref="HelpText"/>).
/// </summary>
internal static class OptionChecks
{
    private static readonly ConditionalWeakTable<Option, string> Ranges = new();

    /// <summary>The accepted values of <paramref name="option"/> as the help and the errors state them, e.g. "an integer in 1..16"; null for none.</summary>
    public static string? RangeOf(Option option) => Ranges.TryGetValue(option, out var r) ? r : null;

    /// <summary>An integer option accepting <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static Option<int> InRange(this Option<int> option, int min, int max = int.MaxValue)
    {
        string range = IntRange(min, max);
        option.CustomParser = r => ParseInt(r, option.Name, min, max, range) ?? default;
        Ranges.AddOrUpdate(option, range);
        return option;
    }

    /// <summary>An optional integer option accepting <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static Option<int?> InRange(this Option<int?> option, int min, int max = int.MaxValue)
    {
        string range = IntRange(min, max);
        option.CustomParser = r => ParseInt(r, option.Name, min, max, range);
        Ranges.AddOrUpdate(option, range);
        return option;
    }

    /// <summary>An optional long option accepting <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static Option<long?> InRange(this Option<long?> option, long min, long max = long.MaxValue)
    {
        string range = max == long.MaxValue ? $"an integer ≥ {min}" : $"an integer in {min}..{max}";
        option.CustomParser = r =>
        {
            string text = Last(r);
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) && v >= min && v <= max)
                return v;
            r.AddError($"{option.Name} must be {range}, got '{text}'");
            return null;
        };
        Ranges.AddOrUpdate(option, range);
        return option;
    }

    /// <summary>A list of integers, each in <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static Option<int[]> InRange(this Option<int[]> option, int min, int max = int.MaxValue)
    {
        string range = IntRange(min, max);
        option.CustomParser = r =>
        {
            var values = new List<int>();
            foreach (var token in r.Tokens)
            {
                if (Int(token.Value, min, max) is not int v)
                {
                    r.AddError($"{option.Name} must be {range}, got '{token.Value}'");
                    return [];
                }
                values.Add(v);
            }
            return values.ToArray();
        };
        Ranges.AddOrUpdate(option, range);
        return option;
    }

    /// <summary>A number option in a range; each end closed unless said otherwise. NaN and ±inf are never accepted.</summary>
    public static Option<double> InRange(this Option<double> option, double min, double max, bool minOpen = false, bool maxOpen = false)
    {
        string range = NumberRange(min, max, minOpen, maxOpen);
        option.CustomParser = r =>
        {
            string text = Last(r);
            if (Number(text, min, max, minOpen, maxOpen) is double v) return v;
            r.AddError($"{option.Name} must be {range}, got '{text}'");
            return default;
        };
        Ranges.AddOrUpdate(option, range);
        return option;
    }

    /// <summary>The text of a number range, e.g. "a number in (0, 10]".</summary>
    public static string NumberRange(double min, double max, bool minOpen = false, bool maxOpen = false) =>
        $"a number in {(minOpen ? "(" : "[")}{F(min)}, {F(max)}{(maxOpen ? ")" : "]")}";

    /// <summary>A finite number of <paramref name="text"/> inside the range, else null.</summary>
    public static double? Number(string text, double min, double max, bool minOpen = false, bool maxOpen = false) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v)
        && (minOpen ? v > min : v >= min) && (maxOpen ? v < max : v <= max) ? v : null;

    static int? Int(string text, int min, int max) =>
        int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) && v >= min && v <= max ? v : null;

    static int? ParseInt(ArgumentResult r, string name, int min, int max, string range)
    {
        string text = Last(r);
        if (Int(text, min, max) is int v) return v;
        r.AddError($"{name} must be {range}, got '{text}'");
        return null;
    }

    static string IntRange(int min, int max) =>
        (min, max) switch
        {
            (int.MinValue, int.MaxValue) => "an integer",
            (_, int.MaxValue) => $"an integer ≥ {min}",
            _ => $"an integer in {min}..{max}",
        };

    static string Last(ArgumentResult r) => r.Tokens.Count == 0 ? "" : r.Tokens[^1].Value;

    static string F(double v) => v.ToString(CultureInfo.InvariantCulture);
}
