using System.Diagnostics;
using System.Text;

/// <summary>What the package tests share: the repository root, the NuGet cache, and <c>dotnet</c> as a child process
/// that does not inherit this test run's MSBuild settings.</summary>
static class PackageTools
{
    public static string PackagesFolder() => Environment.GetEnvironmentVariable("NUGET_PACKAGES")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Uan.slnx"))) return dir.FullName;
        throw new InvalidOperationException("repository root (Uan.slnx) not found above the test output");
    }

    public static (int Exit, string Output) Dotnet(string workingDirectory, params string[] args) =>
        Run("dotnet", workingDirectory, args);

    /// <summary>Runs <paramref name="program"/> to its end (8 minutes at most) and returns its exit code and its
    /// standard output and error, interleaved.</summary>
    public static (int Exit, string Output) Run(string program, string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        // The consumer must not see this test run's MSBuild settings (dotnet test sets some for its children).
        foreach (var key in new[] { "MSBuildExtensionsPath", "MSBUILD_EXE_PATH", "MSBuildSDKsPath", "DOTNET_HOST_PATH" })
            start.Environment.Remove(key);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(TimeSpan.FromMinutes(8)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish in 8 minutes:\n{output}");
        }
        process.WaitForExit();
        return (process.ExitCode, output.ToString());
    }
}
