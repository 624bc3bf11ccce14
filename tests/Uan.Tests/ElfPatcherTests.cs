using System.Runtime.InteropServices;
using Uan.Build;

/// <summary>The build-time fix-up of libLibTorchSharp.so, on a real copy of the library from the package cache.</summary>
public sealed class ElfPatcherTests : IDisposable
{
    const string Version = "GLIBCXX_3.4.32";
    static readonly string[] Allowed = { "_ZSt21ios_base_library_initv" };
    readonly string _dir = Directory.CreateTempSubdirectory("uan-elf-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static string PackagedLibrary()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Path.Combine(root, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
    }

    string CopyOfLibrary()
    {
        var source = PackagedLibrary();
        Assert.True(File.Exists(source), $"expected the TorchSharp package's native library at {source}");
        var copy = Path.Combine(_dir, "libLibTorchSharp.so");
        File.Copy(source, copy);
        return copy;
    }

    [Fact]
    public void PackagedLibraryNeedsTheVersionOnlyForTheIostreamPinSymbol()
    {
        var needs = ElfVersionPatcher.ReadVersionNeeds(File.ReadAllBytes(PackagedLibrary()), "pkg");
        var need = Assert.Single(needs, n => n.Version == Version);
        Assert.Equal("libstdc++.so.6", need.File);
        Assert.Equal(Allowed, need.Symbols);
        // Other requirements exist and resolve to real symbols (the parser reads the whole table).
        Assert.Contains(needs, n => n.Version == "GLIBCXX_3.4.30" && n.Symbols.Count > 0);
        Assert.Contains(needs, n => n.File == "libc.so.6");
    }

    [Fact]
    public void PatchFlipsExactlyOneFlagAndIsIdempotent()
    {
        var path = CopyOfLibrary();
        var before = File.ReadAllBytes(path);
        var stamp = File.GetLastWriteTimeUtc(path);
        Assert.False(ElfVersionPatcher.ReadVersionNeeds(before, path).Single(n => n.Version == Version).IsWeak);

        Assert.Equal(ElfPatchResult.Patched, ElfVersionPatcher.Patch(path, Version, Allowed));
        var after = File.ReadAllBytes(path);
        Assert.Equal(before.Length, after.Length);
        var diffs = Enumerable.Range(0, before.Length).Where(i => before[i] != after[i]).ToList();
        var diff = Assert.Single(diffs);
        Assert.Equal(ElfVersionPatcher.VerFlgWeak, after[diff] ^ before[diff]);
        var needsAfter = ElfVersionPatcher.ReadVersionNeeds(after, path);
        Assert.True(needsAfter.Single(n => n.Version == Version).IsWeak);
        Assert.All(needsAfter.Where(n => n.Version != Version), n => Assert.False(n.IsWeak));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(path));

        Assert.Equal(ElfPatchResult.AlreadyPatched, ElfVersionPatcher.Patch(path, Version, Allowed));
        Assert.Equal(after, File.ReadAllBytes(path));
        Assert.Equal(ElfPatchResult.NotNeeded, ElfVersionPatcher.Patch(path, "GLIBCXX_9.9.9", Allowed));
    }

    [Fact]
    public void RefusesWhenOtherSymbolsNeedTheVersion()
    {
        var path = CopyOfLibrary();
        var before = File.ReadAllBytes(path);
        var e = Assert.Throws<InvalidOperationException>(() =>
            ElfVersionPatcher.Patch(path, "GLIBCXX_3.4.30", Allowed));
        Assert.Contains("GLIBCXX_3.4.30", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void BadFilesGiveErrorsNamingTheFile()
    {
        var notElf = Path.Combine(_dir, "not-elf.so");
        File.WriteAllText(notElf, "this is not an ELF file, just some text long enough to pass the size check.....");
        var e1 = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.Patch(notElf, Version, Allowed));
        Assert.Contains(notElf, e1.Message);
        Assert.Contains("magic", e1.Message);

        var truncated = Path.Combine(_dir, "truncated.so");
        File.WriteAllBytes(truncated, File.ReadAllBytes(PackagedLibrary()).Take(4096).ToArray());
        var e2 = Assert.Throws<InvalidDataException>(() => ElfVersionPatcher.Patch(truncated, Version, Allowed));
        Assert.Contains(truncated, e2.Message);
        Assert.Contains("truncated", e2.Message);
    }

    [Fact]
    public void BuildOutputCopyIsPatchedExactlyWhenTheSystemLacksTheVersion()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return;
        var system = ElfVersionPatcher.FindSystemLibStdCxx();
        Assert.NotNull(system);
        var defined = ElfVersionPatcher.ReadVersionDefinitions(File.ReadAllBytes(system!), system!);
        Assert.Contains("GLIBCXX_3.4.30", defined);   // the reader really reads the definitions

        var output = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        var need = ElfVersionPatcher.ReadVersionNeeds(File.ReadAllBytes(output), output).Single(n => n.Version == Version);
        Assert.Equal(!defined.Contains(Version), need.IsWeak);
        using var loaded = TorchSharp.torch.ones(1);    // TorchSharp's native library is loaded by now
        Assert.False(Directory.Exists(Path.Combine(AppContext.BaseDirectory, "cpu")),
            "TorchSharp fell back to copying natives into cpu/: its first load failed");
    }
}
