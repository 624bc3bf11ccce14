using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Uan.Cli;

/// <summary>
/// Numeric options parsed and range-checked by the parser itself, so a bad value stops the command before it reads
/// anything, in a message that names the option and its range (System.CommandLine's own names .NET types). The range
/// is also appended to the option's help text.
/// </summary>
internal static class OptionChecks
{
    /// <summary>An integer option accepting <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static Option<int> InRange(this Option<int> option, int min, int max = int.MaxValue)
    {
        string range = IntRange(min, max);
        option.CustomParser = r => ParseInt(r, option.Name, min, max, range) ?? default;
        option.Description += $" ({range})";
        return option;
    }

    /// <summary>An optional integer option accepting <paramref name="min"/>..<paramref name="max"/>.</summary>
    public static Option<int?> InRange(this Option<int?> option, int min, int max = int.MaxValue)
    {
        string range = IntRange(min, max);
        option.CustomParser = r => ParseInt(r, option.Name, min, max, range);
        option.Description += $" ({range})";
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
        option.Description += $" ({range})";
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
        option.Description += $" ({range})";
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
        option.Description += $" ({range})";
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
