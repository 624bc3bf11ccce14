/// <summary>
/// The NuGet package as a user meets it: packed into a folder feed, referenced by a console project outside this
/// repository (nothing imported from here, only the package and TorchSharp-cpu), built and run. The program trains a
/// small model with UAN, MixtureNorm and a factory-made norm for a step, saves its state, loads it into a fresh
/// model and compares the outputs; it also reports whether its own TorchSharp.dll carries the keep-alive rewrite.
/// </summary>
public sealed class PackageConsumerTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("uan-consumer-").FullName;
    // A version of its own per run: the global package cache keeps what it restored once under an id and version.
    readonly string _version = $"0.1.0-consumertest.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";

    public void Dispose()
    {
        Directory.Delete(_dir, recursive: true);
        var cached = Path.Combine(PackageTools.PackagesFolder(), "unsupervisedadaptivenormalization", _version);
        if (Directory.Exists(cached)) Directory.Delete(cached, recursive: true);
    }

    [Fact]
    public void PackedLibraryBuildsAndRunsInAProjectOutsideTheRepository()
    {
        string feed = Path.Combine(_dir, "feed"), app = Path.Combine(_dir, "app");
        Directory.CreateDirectory(app);
        var pack = PackageTools.Dotnet(PackageTools.RepositoryRoot(), "pack", "src/Uan", "-c", "Release", "-o", feed, $"-p:Version={_version}", "-nologo");
        Assert.True(pack.Exit == 0, pack.Output);
        Assert.True(File.Exists(Path.Combine(feed, $"UnsupervisedAdaptiveNormalization.{_version}.nupkg")), pack.Output);
        Assert.True(File.Exists(Path.Combine(feed, $"UnsupervisedAdaptiveNormalization.{_version}.snupkg")), pack.Output);

        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="local" value="{feed}" />
                <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
              </packageSources>
            </configuration>
            """);
        File.WriteAllText(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="UnsupervisedAdaptiveNormalization" Version="{_version}" />
                <PackageReference Include="TorchSharp-cpu" Version="0.107.0" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using System.Reflection;
            using TorchSharp;
            using Uan;
            using static TorchSharp.torch;

            static nn.Module<Tensor, Tensor> Build() => nn.Sequential(
                nn.Conv2d(3, 16, 3, padding: 1), new UnsupervisedAdaptiveNorm(16, new UanOptions { Components = 3 }), nn.ReLU(),
                nn.Conv2d(16, 16, 3, padding: 1), new MixtureNorm(16), nn.ReLU(),
                nn.Conv2d(16, 16, 3, padding: 1), Norms.Create("uan:k=2,mode=batchstats", 16), nn.ReLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4));

            manual_seed(1);
            var model = Build();
            var optimizer = optim.AdamW(model.parameters(), 1e-3);
            var x = randn(8, 3, 8, 8);
            var y = randint(0, 4, new long[] { 8 });
            var before = model.parameters().Select(p => p.detach().clone()).ToList();
            var loss = nn.functional.cross_entropy(model.forward(x), y);
            optimizer.zero_grad();
            loss.backward();
            optimizer.step();
            bool moved = model.parameters().Zip(before).Any(pair => !pair.First.detach().allclose(pair.Second, rtol: 0, atol: 0));
            model.eval();
            var expected = model.forward(x).detach();
            var path = Path.Combine(AppContext.BaseDirectory, "model.bin");
            model.save(path);
            manual_seed(99);
            var fresh = Build();
            fresh.load(path);
            fresh.eval();
            bool identical = fresh.forward(x).detach().allclose(expected, rtol: 0, atol: 0);
            var marker = typeof(torch).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
                .FirstOrDefault(a => a.Key == "Uan.KeepAlive")?.Value ?? "none";
            Console.WriteLine($"loss finite: {double.IsFinite(loss.item<float>())}; parameters moved: {moved}; reloaded outputs identical: {identical}; keep-alive: {marker}");
            """);

        var build = PackageTools.Dotnet(app, "build", "-c", "Release", "-nologo");
        Assert.True(build.Exit == 0, build.Output);
        Assert.Contains("TorchSharp keep-alive: rewrote", build.Output);
        var run = PackageTools.Dotnet(app, "run", "-c", "Release", "--no-build");
        Assert.True(run.Exit == 0, run.Output);
        Assert.Contains($"loss finite: True; parameters moved: True; reloaded outputs identical: True; keep-alive: {Uan.Build.TorchSharpKeepAlive.MarkerValue}", run.Output);
    }
}
