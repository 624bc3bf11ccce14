using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;

namespace Uan.Cli;

/// <summary>
/// What <c>--help</c> and parse errors say. Every option's help line ends in one format: the description, the accepted
/// values (<see cref="OptionChecks.RangeOf"/>) and "(default: …)", the default value or what the option's absence
/// means; flags say nothing (absent = off). Each command's help ends with usage examples. System.CommandLine's own
/// parse errors (which name .NET types in some cases and say nothing of the accepted values) are rewritten into the
/// one-line form of the command's other errors.
/// </summary>
internal static partial class HelpText
{
    private static readonly ConditionalWeakTable<Option, string> Absent = new();

    /// <summary>Examples per command path ("train", "data fetch"), shown at the end of its help.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Examples = new Dictionary<string, string[]>
    {
        [""] = ["uan compare", "uan train --norm uan:k=3 --epochs 5", "uan train --help"],
        ["train"] = ["uan train --norm uan:k=3 --lr 0.005 --epochs 5",
                     "uan train --dataset fashion-mnist --train-limit 4000 --out runs/f4k"],
        ["compare"] = ["uan compare",
                       "uan compare --dataset mnist --train-limit 4000 --lr 0.001,0.005 --seed 1 2 3",
                       "uan compare --norm BN=bn --norm UAN=uan:k=3 --norm GN=gn:groups=32",
                       "uan compare --seed 1 2 3 --shard 0/2 --out runs/grid"],
        ["slurm"] = ["uan slurm --seed 1 2 3 --time 2:00:00 --out runs/grid",
                     "uan slurm --seed 1 2 3 --tasks 3 --mem 8G --out /shared/grid --submit"],
        ["adapt"] = ["uan adapt --source mnist --target mnistm-like --input-norm uan:k=2",
                     "uan adapt --target syndigits --variant keras --seed 2", "uan adapt --time-steps 5 --model wrn-28-2"],
        ["report"] = ["uan report runs/compare-mnist-subset-shallow-cnn", "uan report runs --out report",
                      "uan report --study docs/results/study"],
        ["figures"] = ["uan figures runs/figures-demo --tsne-points 1000"],
        ["data"] = ["uan data list", "uan data fetch mnist"],
        ["data list"] = ["uan data list", "uan data list --data-dir ../datasets"],
        ["data fetch"] = ["uan data fetch mnist", "uan data fetch fashion-mnist --data-dir ../datasets"],
        ["data make-mnistm-like"] = ["uan data make-mnistm-like", "uan data make-mnistm-like --source mnist-subset --seed 2"],
        ["data make-syndigits"] = ["uan data make-syndigits", "uan data make-syndigits --train 2000 --test 400 --seed 2"],
        ["bench"] = ["uan bench", "uan bench --shape 64x128x32x32 --shape 256x64 --repeats 9 --out bench.md"],
    };

    /// <summary>States in the help what leaving <paramref name="option"/> out means (for options without a default value).</summary>
    public static T WhenAbsent<T>(this T option, string meaning) where T : Option
    {
        Absent.AddOrUpdate(option, meaning);
        return option;
    }

    /// <summary>The "(default: …)" text of <paramref name="option"/>; null for a flag or an option that states none.</summary>
    public static string? DefaultOf(Option option)
    {
        if (Absent.TryGetValue(option, out var meaning)) return meaning;
        if (option.ValueType == typeof(bool) || !option.HasDefaultValue) return null;
        return Format(option.GetDefaultValue());
    }

    static string? Format(object? value) => value switch
    {
        null => null,
        string s => s,
        System.Collections.IEnumerable list => string.Join(" ", list.Cast<object?>().Select(Format)),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString(),
    };

    /// <summary>The help line of <paramref name="option"/>: description; accepted values (default: …).</summary>
    public static string Describe(Option option)
    {
        string text = option.Description ?? "";
        if (OptionChecks.RangeOf(option) is string range) text += $"; {range}";
        if (DefaultOf(option) is string d) text += $" (default: {d})";
        return text;
    }

    /// <summary>Every command under and including <paramref name="root"/>, with its path after "uan" ("" for the root).</summary>
    public static IEnumerable<(string Path, Command Command)> Commands(Command root, string path = "")
    {
        yield return (path, root);
        foreach (var sub in root.Subcommands)
            foreach (var c in Commands(sub, path.Length == 0 ? sub.Name : $"{path} {sub.Name}"))
                yield return c;
    }

    /// <summary>
    /// The help option of the command tree. System.CommandLine 2.0's own help prints "[default: …]" in its own format
    /// and has no place for examples, so the help is drawn here: description, usage, arguments, options (as
    /// <see cref="Describe"/>), subcommands, examples; wrapped to the terminal's width, 80 columns when redirected.
    /// </summary>
    public static HelpOption CreateHelpOption(Command root)
    {
        var paths = Commands(root).ToDictionary(c => c.Command, c => c.Path);
        var help = new HelpOption();
        help.Action = new Render(paths, help);
        return help;
    }

    private sealed class Render(Dictionary<Command, string> paths, HelpOption help) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            var command = parseResult.CommandResult.Command;
            var output = parseResult.InvocationConfiguration.Output;
            int width = Width();
            Write(output, command, paths.GetValueOrDefault(command, command.Name), width);
            return 0;
        }

        static int Width()
        {
            if (Console.IsOutputRedirected) return 80;
            try { return Math.Max(60, Console.WindowWidth - 1); }
            catch (IOException) { return 80; }
        }

        void Write(TextWriter o, Command command, string path, int width)
        {
            string full = path.Length == 0 ? "uan" : $"uan {path}";
            if (command.Description is { Length: > 0 } description)
            {
                o.WriteLine("Description:");
                foreach (var line in Wrap(description, width - 2)) o.WriteLine($"  {line}");
                o.WriteLine();
            }
            o.WriteLine("Usage:");
            string args = string.Concat(command.Arguments.Where(a => !a.Hidden).Select(a => $" <{a.Name}>"));
            o.WriteLine($"  {full}{args}{(command.Subcommands.Count > 0 ? " [command]" : "")} [options]");
            o.WriteLine();
            Table(o, "Arguments:", command.Arguments.Where(a => !a.Hidden).Select(a => ($"<{a.Name}>", a.Description ?? "")), width);
            var options = command.Options.Where(x => !x.Hidden).ToList();
            if (!options.Contains(help)) options.Add(help);
            Table(o, "Options:", options.Select(x => (Label(x), x is HelpOption ? "Show help and usage information" : Describe(x))), width);
            Table(o, "Commands:", command.Subcommands.Where(c => !c.Hidden).Select(c =>
                (c.Name + string.Concat(c.Arguments.Select(a => $" <{a.Name}>")), c.Description ?? "")), width);
            if (Examples.TryGetValue(path, out var examples))
            {
                o.WriteLine("Examples:");
                foreach (var e in examples) o.WriteLine($"  {e}");
                o.WriteLine();
            }
        }

        static string Label(Option option)
        {
            var names = option.Aliases.Append(option.Name).Distinct().Where(n => !n.StartsWith('/')).OrderBy(n => n.Length).ThenBy(n => n, StringComparer.Ordinal);
            string value = option.ValueType == typeof(bool) || option is HelpOption or VersionOption ? "" : $" <{option.HelpName ?? option.Name.TrimStart('-')}>";
            return string.Join(", ", names) + value;
        }

        static void Table(TextWriter o, string title, IEnumerable<(string First, string Second)> rows, int width)
        {
            var list = rows.ToList();
            if (list.Count == 0) return;
            o.WriteLine(title);
            // The first column as wide as its longest entry, up to a third of the width (longer ones get a line of their own).
            int first = Math.Min(list.Max(r => r.First.Length), width / 3);
            int second = Math.Max(20, width - 2 - first - 2);
            foreach (var (label, text) in list)
            {
                var lines = Wrap(text, second).ToList();
                if (lines.Count == 0) lines.Add("");
                if (label.Length > first)
                {
                    o.WriteLine($"  {label}");
                    foreach (var line in lines) o.WriteLine($"  {new string(' ', first)}  {line}".TrimEnd());
                    continue;
                }
                o.WriteLine($"  {label.PadRight(first)}  {lines[0]}".TrimEnd());
                foreach (var line in lines.Skip(1)) o.WriteLine($"  {new string(' ', first)}  {line}");
            }
            o.WriteLine();
        }
    }

    // A word longer than a line (a norm spec's key list) is cut after commas.
    static IEnumerable<string> Pieces(string word, int width)
    {
        while (word.Length > width && word.LastIndexOf(',', width - 1) is int cut and > 0)
        {
            yield return word[..(cut + 1)];
            word = word[(cut + 1)..];
        }
        yield return word;
    }

    /// <summary>Splits <paramref name="text"/> into lines of at most <paramref name="width"/> characters at spaces (a longer word keeps its own line).</summary>
    internal static IEnumerable<string> Wrap(string text, int width)
    {
        var line = new System.Text.StringBuilder();
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries).SelectMany(w => Pieces(w, width)))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                yield return line.ToString();
                line.Clear();
            }
            if (line.Length > 0) line.Append(' ');
            line.Append(word);
        }
        if (line.Length > 0) yield return line.ToString();
    }

    /// <summary>
    /// One line for the parse errors of <paramref name="parsed"/>, each naming the option, argument or command it is
    /// about, ending with where to read more (the help of the command the errors are in).
    /// </summary>
    public static string ParseErrors(ParseResult parsed)
    {
        string path = string.Join(" ", Ancestry(parsed.CommandResult).Select(c => c.Command.Name).Reverse());
        var commands = Ancestry(parsed.CommandResult).Select(c => c.Command).ToList();
        var messages = parsed.Errors.Select(e => Rewrite(e, path, parsed.Tokens, commands)).Distinct().ToList();
        return $"{string.Join("; ", messages)} (see '{path} --help')";
    }

    static IEnumerable<CommandResult> Ancestry(CommandResult? c)
    {
        for (; c is not null; c = c.Parent as CommandResult) yield return c;
    }

    /// <summary>One parse error in the command's words: no .NET type names, the accepted values where known.</summary>
    internal static string Rewrite(ParseError error, string commandPath, IReadOnlyList<Token>? tokens = null, IEnumerable<Command>? commands = null)
    {
        string? FlagNamed(string alias) => (commands ?? []).SelectMany(c => c.Options)
            .FirstOrDefault(x => x.ValueType == typeof(bool) && (x.Name == alias || x.Aliases.Contains(alias)))?.Name;
        string message = error.Message;
        Option? option = error.SymbolResult switch
        {
            OptionResult r => r.Option,
            ArgumentResult { Parent: OptionResult r } => r.Option,
            _ => null,
        };
        if (MissingOptionValue().Match(message) is { Success: true } m1)
        {
            string name = option?.Name ?? m1.Groups[1].Value;
            return $"{name} needs a value{(option is not null && OptionChecks.RangeOf(option) is string r ? $": {r}" : "")}";
        }
        if (MissingCommandArgument().IsMatch(message)
            && (error.SymbolResult as CommandResult ?? (error.SymbolResult as ArgumentResult)?.Parent as CommandResult) is { } cr)
        {
            var args = cr.Command.Arguments.Select(a => $"<{a.Name}>{(a.Description is null ? "" : $" ({a.Description})")}");
            return $"'{commandPath}' needs {string.Join(" and ", args)}";
        }
        if (Unrecognized().Match(message) is { Success: true } m2)
        {
            string token = m2.Groups[1].Value;
            if (token.StartsWith('-')) return $"unknown option '{token}' for '{commandPath}'";
            // A value after a flag (--probe maybe, --probe=maybe): the flag is what the user meant it for.
            int at = tokens?.Select((t, i) => (t, i)).FirstOrDefault(x => x.t.Value == token && x.t.Type == TokenType.Argument).i ?? -1;
            if (at > 0 && tokens![at - 1] is { Type: TokenType.Option } flag && FlagNamed(flag.Value) is string f)
                return $"{f} is a flag and takes no value, got '{token}'";
            return $"unexpected argument '{token}' for '{commandPath}'";
        }
        if (message.StartsWith("Required command was not provided", StringComparison.Ordinal))
            return $"give a command after '{commandPath}'";
        if (CannotParse().Match(message) is { Success: true } m3)
        {
            string name = option?.Name ?? m3.Groups[2].Value;
            return $"{name} must be {(option is not null && OptionChecks.RangeOf(option) is string r ? r : DescribeType(option?.ValueType))}, got '{m3.Groups[1].Value}'";
        }
        // Anything else System.CommandLine says, without a trailing period and without .NET type names.
        message = DotNetType().Replace(message.TrimEnd('.'), t => DescribeType(Type.GetType(t.Groups[1].Value)));
        return message;
    }

    static string DescribeType(Type? type) =>
        (Nullable.GetUnderlyingType(type ?? typeof(string)) ?? type) switch
        {
            var t when t == typeof(int) || t == typeof(long) => "an integer",
            var t when t == typeof(double) || t == typeof(float) => "a number",
            var t when t == typeof(bool) => "true or false",
            _ => "a value",
        };

    [GeneratedRegex(@"^Required argument missing for option: '([^']*)'")]
    private static partial Regex MissingOptionValue();

    [GeneratedRegex(@"^Required argument missing for command: ")]
    private static partial Regex MissingCommandArgument();

    [GeneratedRegex(@"^Unrecognized command or argument '(.*)'\.?$")]
    private static partial Regex Unrecognized();

    [GeneratedRegex(@"^Cannot parse argument '(.*)' for (?:option|command) '([^']*)' as expected type")]
    private static partial Regex CannotParse();

    [GeneratedRegex(@"'?(System\.[A-Za-z0-9_.`\[\]]+)'?")]
    private static partial Regex DotNetType();
}
