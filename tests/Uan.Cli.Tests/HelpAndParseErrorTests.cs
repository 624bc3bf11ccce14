using System.CommandLine;
using System.Text.RegularExpressions;
using Uan.Cli;

namespace Uan.Cli.Tests;

/// <summary>
/// Every command's --help and every typed option's bad value, found by walking the command tree: the help states each
/// option's default, ends with examples and offers --plain only where there is progress to show; no message names a
/// .NET type or parameter, and each names the option.
/// </summary>
public sealed class HelpAndParseErrorTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "uan-cli-help-" + Guid.NewGuid().ToString("N"));

    public HelpAndParseErrorTests() => Directory.CreateDirectory(Path.Combine(_dir, "empty-data"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static Command Tree() => UanCommand.Build(new Ui(new StringWriter(), new StringWriter()));

    public static TheoryData<string> CommandPaths() => [.. HelpText.Commands(Tree()).Select(c => c.Path)];

    /// <summary>(command path, option name) of every option whose value is a number or a list of numbers.</summary>
    public static TheoryData<string, string> TypedOptions()
    {
        var data = new TheoryData<string, string>();
        foreach (var (path, command) in HelpText.Commands(Tree()))
            foreach (var option in command.Options)
            {
                var t = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
                if (t == typeof(int) || t == typeof(long) || t == typeof(double) || t == typeof(int[])) data.Add(path, option.Name);
            }
        // Learning rates of compare are a list of text, checked before anything is read.
        data.Add("compare", "--lr");
        return data;
    }

    private static void AssertNoDotNet(string text)
    {
        Assert.DoesNotContain("System.", text);
        Assert.DoesNotContain("Parameter '", text);
        Assert.DoesNotContain("Exception", text);
    }

    private static string[] Words(string path) => path.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Option entries of a help text: the label line and its continuation lines, joined.</summary>
    private static List<(string Label, string Text)> OptionEntries(string help)
    {
        var entries = new List<(string, string)>();
        bool inOptions = false;
        foreach (var line in help.Split('\n').Select(l => l.TrimEnd('\r')))
        {
            if (line.Length > 0 && !line.StartsWith(' ')) { inOptions = line == "Options:"; continue; }
            if (!inOptions || line.Length == 0) continue;
            if (line.StartsWith("  -", StringComparison.Ordinal))
            {
                var m = Regex.Match(line, @"^  (\S.*?>|[-\w?, ]+?)(?:  +(.*))?$");
                entries.Add((m.Groups[1].Value.Trim(), m.Groups[2].Value.Trim()));
            }
            else entries[^1] = (entries[^1].Item1, (entries[^1].Item2 + " " + line.Trim()).Trim());
        }
        return entries;
    }

    [Theory]
    [MemberData(nameof(CommandPaths))]
    public void HelpStatesEveryDefaultAndEndsWithExamples(string path)
    {
        var (code, output, err) = CliTests.Uan([.. Words(path), "--help"]);
        Assert.True(code == 0, err);
        AssertNoDotNet(output);
        var command = HelpText.Commands(Tree()).Single(c => c.Path == path).Command;
        var entries = OptionEntries(output);
        // Every option of the command is listed; each that takes a value ends with its default in one format.
        foreach (var option in command.Options.Where(o => o is not System.CommandLine.Help.HelpOption))
            Assert.Contains(entries, e => e.Label.Split(", ").Select(n => n.Split(' ')[0]).Contains(option.Name));
        foreach (var (label, text) in entries)
        {
            Assert.DoesNotContain("[default", text);
            if (label.EndsWith('>')) Assert.Matches(@"\(default: [^\n]+\)$", text);
        }
        // Examples: each a command line of this command.
        int at = output.IndexOf("\nExamples:\n", StringComparison.Ordinal);
        Assert.True(at >= 0, output);
        var examples = output[(at + 11)..].Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Trim()).ToList();
        Assert.NotEmpty(examples);
        Assert.All(examples, e => Assert.StartsWith(path.Length == 0 ? "uan " : $"uan {path}", e));
        // Redirected help fits 80 columns.
        Assert.All(output.Split('\n'), l => Assert.True(l.TrimEnd('\r').Length <= 80, l));
    }

    [Theory]
    [MemberData(nameof(CommandPaths))]
    public void PlainIsOfferedOnlyWhereThereAreProgressBars(string path)
    {
        var (_, output, _) = CliTests.Uan([.. Words(path), "--help"]);
        bool bars = path is "train" or "compare" or "adapt";
        Assert.Equal(bars, OptionEntries(output).Any(e => e.Label.StartsWith("--plain", StringComparison.Ordinal)));
        if (!bars && path is "report" or "figures" or "bench" or "data list" or "data make-syndigits")
        {
            string[] required = path is "report" or "figures" ? [_dir] : [];
            var (code, _, err) = CliTests.Uan([.. Words(path), .. required, "--plain"]);
            Assert.Equal(UanCommand.BadInput, code);
            Assert.Contains("unknown option '--plain'", err);
        }
    }

    [Theory]
    [MemberData(nameof(TypedOptions))]
    public void ABadOrMissingValueNamesTheOptionWithoutDotNet(string path, string option)
    {
        string[] required = path is "report" or "figures" ? [_dir] : [];
        string[] safe = path is "train" or "compare" or "adapt" ? ["--out", Path.Combine(_dir, "run"), "--data-dir", Path.Combine(_dir, "empty-data")] : [];
        foreach (var bad in new[] { "abc", "1.5e400", "" })
        {
            var (code, output, err) = CliTests.Uan([.. Words(path), .. required, .. safe, option, bad]);
            Assert.True(code == UanCommand.BadInput, $"{path} {option} '{bad}': exit {code}\n{output}\n{err}");
            Assert.StartsWith("uan: ", err);
            Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains(option, err);
            AssertNoDotNet(err);
        }
        // The option last, without its value.
        var missing = CliTests.Uan([.. Words(path), .. required, .. safe, option]);
        Assert.Equal(UanCommand.BadInput, missing.Code);
        Assert.Contains($"{option} needs a value", missing.Err);
        AssertNoDotNet(missing.Err);
        Assert.False(Directory.Exists(Path.Combine(_dir, "run")));
    }

    [Theory]
    [InlineData("--probe is a flag and takes no value, got 'maybe'", "train", "--probe", "maybe")]
    [InlineData("--resume is a flag and takes no value, got 'yes'", "train", "--resume=yes")]
    [InlineData("unknown option '--bogus' for 'uan compare'", "compare", "--bogus")]
    [InlineData("unknown option '--quiet' for 'uan report'", "report", "DIR", "--quiet")]
    [InlineData("'uan figures' needs <dir>", "figures")]
    [InlineData("'uan data fetch' needs <dataset>", "data", "fetch")]
    [InlineData("give a command after 'uan'", "--data-dir", "x")]
    public void SystemCommandLinesOwnErrorsAreRewritten(string expected, params string[] args)
    {
        var (code, _, err) = CliTests.Uan([.. args.Select(a => a == "DIR" ? _dir : a)]);
        Assert.Equal(UanCommand.BadInput, code);
        Assert.Contains(expected, err);
        Assert.EndsWith("--help')", err.TrimEnd());
        AssertNoDotNet(err);
    }
}
