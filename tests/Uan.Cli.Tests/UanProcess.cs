using System.Diagnostics;

namespace Uan.Cli.Tests;

/// <summary>
/// The <c>uan</c> command as a child process: the Uan.Cli.dll next to the tests, run by <c>dotnet</c>, with both
/// output streams redirected (for tests that signal, race or wait on the command from outside).
/// </summary>
internal static class UanProcess
{
    /// <summary>Starts <c>uan <paramref name="args"/></c>, with <paramref name="environment"/> added to the inherited one.</summary>
    public static Process Start(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Uan.Cli.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        if (environment is not null) foreach (var (k, v) in environment) start.Environment[k] = v;
        return Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet Uan.Cli.dll");
    }

    /// <summary>Reads both streams to their end and waits for the exit: (exit code, stdout, stderr).</summary>
    public static async Task<(int Code, string Out, string Err)> Finish(Process p)
    {
        var err = p.StandardError.ReadToEndAsync();
        var output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, output, await err);
    }
}
