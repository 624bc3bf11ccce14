using System.Runtime.InteropServices;
using System.Text.Json;
using Mono.Cecil;
using Xunit.Abstractions;

/// <summary>
/// The uan command as a user installs it: the tool package for this machine's platform packed into a folder feed,
/// installed with <c>dotnet tool install</c> into a folder outside the repository, and run from a working folder
/// that has no data: the embedded MNIST subset must come with the tool, libtorch must load (on Debian 12 only the
/// fixed-up libLibTorchSharp.so does), and the installed TorchSharp.dll must carry the keep-alive rewrite.
/// </summary>
public sealed class ToolPackageTests : IDisposable
{
    const string PackageId = "UnsupervisedAdaptiveNormalization.Tool";
    readonly string _dir = Directory.CreateTempSubdirectory("uan-tool-").FullName;
    // A version of its own per run: the global package cache keeps what it restored once under an id and version.
    readonly string _version = $"0.1.0-tooltest.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
    readonly ITestOutputHelper _log;

    public ToolPackageTests(ITestOutputHelper log) => _log = log;

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
        foreach (var id in new[] { PackageId, $"{PackageId}.{RuntimeInformation.RuntimeIdentifier}" })
        {
            var cached = Path.Combine(PackageTools.PackagesFolder(), id.ToLowerInvariant(), _version);
            if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true);
        }
    }

    [Fact]
    public void ToolInstalledFromAFolderFeedRunsTheEmbeddedDataOutsideTheRepository()
    {
        string rid = RuntimeInformation.RuntimeIdentifier;
        string feed = Path.Combine(_dir, "feed"), tools = Path.Combine(_dir, "tools"), work = Path.Combine(_dir, "work");
        Directory.CreateDirectory(work);

        // Only this platform's package: the others (win-x64, osx-arm64) are the same build with other natives.
        var pack = PackageTools.Dotnet(PackageTools.RepositoryRoot(), "pack", "src/Uan.Cli", "-c", "Release", "-o", feed,
            $"-p:Version={_version}", $"-p:ToolPackageRuntimeIdentifiers={rid}", "-nologo");
        Assert.True(pack.Exit == 0, pack.Output);
        var platformPackage = new FileInfo(Path.Combine(feed, $"{PackageId}.{rid}.{_version}.nupkg"));
        Assert.True(platformPackage.Exists, pack.Output);
        Assert.True(File.Exists(Path.Combine(feed, $"{PackageId}.{_version}.nupkg")), pack.Output);
        _log.WriteLine($"{platformPackage.Name}: {platformPackage.Length / 1e6:F1} MB");

        var install = PackageTools.Dotnet(_dir, "tool", "install", "--tool-path", tools, "--add-source", feed,
            "--version", _version, PackageId);
        Assert.True(install.Exit == 0, install.Output);
        string uan = Path.Combine(tools, OperatingSystem.IsWindows() ? "uan.exe" : "uan");
        Assert.True(File.Exists(uan), install.Output);

        var version = PackageTools.Run(uan, work, "--version");
        Assert.True(version.Exit == 0, version.Output);
        Assert.StartsWith(_version, version.Output.Trim());

        // The working folder has no data/: the subset is found inside the tool, and nothing else is.
        var list = PackageTools.Run(uan, work, "data", "list");
        Assert.True(list.Exit == 0, list.Output);
        var subsetLine = list.Output.Split('\n').Single(l => l.TrimStart().StartsWith("mnist-subset "));
        Assert.Contains("present", subsetLine);
        Assert.Contains(Path.Combine("embedded", "mnist-subset"), subsetLine);
        Assert.StartsWith(Path.GetFullPath(tools), subsetLine[subsetLine.IndexOf(Path.DirectorySeparatorChar)..].Trim());
        Assert.Matches(@"\bmnist\s+missing", list.Output);

        // One short epoch of real training through the installed libtorch.
        var train = PackageTools.Run(uan, work, "train", "--epochs", "1", "--train-limit", "512", "--batch-size", "64",
            "--threads", "1", "--norm", "uan:k=2", "--out", "run");
        Assert.True(train.Exit == 0, train.Output);
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(work, "run", "results.json")));
        Assert.Equal("completed", results.RootElement.GetProperty("status").GetString());
        var epoch = results.RootElement.GetProperty("epochs")[0];
        double accuracy = epoch.GetProperty("testAccuracy").GetDouble();
        Assert.InRange(accuracy, 0.0, 1.0);
        Assert.True(double.IsFinite(epoch.GetProperty("trainLoss").GetDouble()));

        // The installed TorchSharp.dll is the rewritten one.
        string torchSharp = Directory.EnumerateFiles(Path.Combine(tools, ".store"), "TorchSharp.dll", SearchOption.AllDirectories).Single();
        using var assembly = AssemblyDefinition.ReadAssembly(torchSharp);
        Assert.Contains(assembly.CustomAttributes, a => a.AttributeType.Name == "AssemblyMetadataAttribute"
            && (string)a.ConstructorArguments[0].Value == Uan.Build.TorchSharpKeepAlive.MarkerKey
            && (string)a.ConstructorArguments[1].Value == Uan.Build.TorchSharpKeepAlive.MarkerValue);
    }
}
