using System.CommandLine;
using System.CommandLine.Help;
using Uan.Lab.Data;
using Uan.Lab.Training;

namespace Uan.Cli;

/// <summary>
/// The <c>uan</c> command line. Parsing and presentation only: every experiment step is a call into Uan.Lab.
/// Exit codes: 0 success, 1 the run failed or diverged, 2 bad input (unknown dataset, missing files, bad norm spec, ...),
/// 130 stopped by Ctrl-C, 143 stopped by SIGTERM (both leave a resumable run).
/// </summary>
public static class UanCommand
{
    /// <summary>Exit code for input the command cannot use.</summary>
    public const int BadInput = 2;

    internal static readonly Option<bool> Quiet = new("--quiet", "-q") { Description = "Print only results and errors (no progress)" };
    internal static readonly Option<bool> Plain = new("--plain")
    { Description = "Log lines (two per epoch) instead of progress bars (the default when output is not a terminal)" };
    internal static readonly Option<string?> DataDir = new Option<string?>("--data-dir") { Description = "Folder holding the datasets" }
        .WhenAbsent($"${DataLocator.EnvironmentVariable}, else the repository's data/ when run from it, else ./data");

    /// <summary>The command tree. --quiet, --plain and --data-dir are offered only where they change something.</summary>
    internal static Command Build(Ui console)
    {
        // A named Command rather than RootCommand, whose name would be the assembly's (Uan.Cli).
        var root = new Command("uan", "UAN for .NET: Unsupervised Adaptive Normalization, its baselines and the paper's experiments.");
        root.Options.Add(new VersionOption());
        // Also before the command (uan --data-dir DIR compare ...), as scripts give it.
        root.Options.Add(DataDir);
        root.Subcommands.Add(TrainCommand.Create(console));
        root.Subcommands.Add(CompareCommand.Create(console));
        root.Subcommands.Add(SlurmCommand.Create(console));
        root.Subcommands.Add(AdaptCommand.Create(console));
        root.Subcommands.Add(ReportCommand.Create(console));
        root.Subcommands.Add(FiguresCommand.Create(console));
        root.Subcommands.Add(DataCommand.Create(console));
        root.Subcommands.Add(BenchCommand.Create(console));
        Command At(string path) => HelpText.Commands(root).Single(c => c.Path == path).Command;
        // Progress bars: the training commands. Progress lines and logs (--quiet drops them): those and figures, bench,
        // data fetch and the data makers. The data folder: whatever reads or writes datasets.
        foreach (var path in new[] { "train", "compare", "adapt" }) At(path).Options.Add(Plain);
        foreach (var path in new[] { "train", "compare", "adapt", "figures", "bench", "data fetch", "data make-syndigits", "data make-mnistm-like" }) At(path).Options.Add(Quiet);
        foreach (var path in new[] { "train", "compare", "slurm", "adapt", "data list", "data fetch", "data make-syndigits", "data make-mnistm-like" }) At(path).Options.Add(DataDir);
        root.Options.Insert(0, HelpText.CreateHelpOption(root));
        return root;
    }

    /// <summary>Parses and runs; returns the process exit code.</summary>
    public static int Run(string[] args, TextWriter? output = null, TextWriter? error = null)
    {
        var console = new Ui(output ?? Console.Out, error ?? Console.Error);
        var root = Build(console);
        var parsed = root.Parse(args);
        // --help answers even when the rest of the line is incomplete (uan report --help has no DIR).
        if (parsed.Errors.Count > 0 && parsed.Action?.GetType() != root.Options.OfType<HelpOption>().Single().Action?.GetType())
        {
            console.Error(HelpText.ParseErrors(parsed));
            return BadInput;
        }
        console.Configure(parsed.GetValue(Quiet), parsed.GetValue(Plain));
        return parsed.Invoke(new InvocationConfiguration { Output = console.Out, Error = console.Err });
    }

    /// <summary>
    /// Runs a command body, turning the errors a user can fix (a bad option or spec, a missing, unreadable or
    /// inconsistent file, a folder that cannot be written, a device this machine lacks) into one line and exit code 2.
    /// Anything else is a bug and keeps its stack trace.
    /// </summary>
    internal static int Guard(Ui console, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsUserError(e))
        {
            console.Error(OneLine(e));
            return BadInput;
        }
    }

    /// <summary>Whether <paramref name="e"/> is a failure of the input or the environment rather than of the program.</summary>
    internal static bool IsUserError(Exception e) =>
        e is ArgumentException or DataFormatException or FileNotFoundException or DirectoryNotFoundException
            or InvalidDataException or IOException or FormatException or UnauthorizedAccessException;

    /// <summary>
    /// The message of <paramref name="e"/> as one line without .NET's decorations: the " (Parameter 'x')" suffix of
    /// argument exceptions and the "Actual value was …" line of out-of-range ones.
    /// </summary>
    internal static string OneLine(Exception e)
    {
        string message = e.Message;
        if (e is ArgumentOutOfRangeException range)
        {
            int actual = message.IndexOf(Environment.NewLine + "Actual value was", StringComparison.Ordinal);
            if (actual >= 0) message = message[..actual];
            if (range.ActualValue is not null) message += $" (got {range.ActualValue})";
        }
        if (e is ArgumentException { ParamName: { } name })
            message = message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal);
        return string.Join(" ", message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    internal static DataLocator Locator(ParseResult parsed) => new(parsed.GetValue(DataDir));
}
