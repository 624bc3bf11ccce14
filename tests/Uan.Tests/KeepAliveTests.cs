using System.Reflection;
using System.Runtime.CompilerServices;
using Mono.Cecil;
using Mono.Cecil.Cil;
using TorchSharp;
using Uan.Build;

/// <summary>
/// The build-time rewrite of TorchSharp.dll that closes its Scalar/Tensor finalizer race: the copy this test process
/// runs on carries it, every method of it still compiles, and the rewrite of the package's own file keeps every
/// finalizable argument alive at every return (checked against a list of finalizable types made by reflection, not
/// by the rewrite's own code).
/// </summary>
public sealed class KeepAliveTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("uan-keepalive-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    static string PackagedAssembly()
    {
        var root = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
                   ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var path = Path.Combine(root, "torchsharp", "0.107.0", "lib", "net8.0", "TorchSharp.dll");
        Assert.True(File.Exists(path), $"expected the TorchSharp package's assembly at {path}");
        return path;
    }

    string Copy(string source, string name = "TorchSharp.dll")
    {
        var copy = Path.Combine(_dir, name);
        File.Copy(source, copy, overwrite: true);
        return copy;
    }

    [Fact]
    public void TheTorchSharpThisProcessRunsIsRewritten()
    {
        var assembly = typeof(torch).Assembly;
        Assert.Equal(TorchSharpKeepAlive.SupportedVersion, assembly.GetName().Version!.ToString());
        Assert.Contains(assembly.GetCustomAttributes<AssemblyMetadataAttribute>(),
            a => a.Key == TorchSharpKeepAlive.MarkerKey && a.Value == TorchSharpKeepAlive.MarkerValue);
    }

    [Fact]
    public void EveryMethodOfTheRewrittenAssemblyCompiles()
    {
        // The JIT rejects unbalanced stacks, bad branch targets and broken handler ranges (InvalidProgramException).
        // Generic types and methods are compiled over object (or Tensor, where a constraint asks for it): the shared
        // code every reference-type instantiation runs.
        var runtime = typeof(torch).Assembly;
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        int compiled = 0;
        var failures = new List<string>();
        foreach (var definition in runtime.GetTypes())
        {
            if (Instantiate(definition, t => definition.MakeGenericType(t)) is not Type type) continue;
            foreach (var declared in type.GetMethods(all).Cast<MethodBase>().Concat(type.GetConstructors(all)))
            {
                if (declared.IsAbstract || declared.GetMethodBody() is null) continue;
                var method = declared is MethodInfo { IsGenericMethodDefinition: true } generic
                    ? Instantiate(generic, t => generic.MakeGenericMethod(t)) : declared;
                if (method is null) continue;
                try
                {
                    RuntimeHelpers.PrepareMethod(method.MethodHandle);
                    compiled++;
                }
                catch (InvalidProgramException)
                {
                    failures.Add($"{type.FullName}::{method}");
                }
            }
        }
        Assert.Empty(failures);
        Assert.True(compiled > 9500, $"only {compiled} methods compiled");
    }

    static T? Instantiate<T>(T member, Func<Type[], T> make) where T : class
    {
        var parameters = member switch
        {
            Type { ContainsGenericParameters: true } t => t.GetGenericArguments(),
            MethodInfo { IsGenericMethodDefinition: true } m => m.GetGenericArguments(),
            _ => null,
        };
        if (parameters is null) return member;
        foreach (var argument in new[] { typeof(object), typeof(torch.Tensor) })
        {
            try { return make(parameters.Select(_ => argument).ToArray()); }
            catch (ArgumentException) { }
        }
        return null;
    }

    [Fact]
    public void RewriteKeepsEveryFinalizableArgumentAliveAtEveryReturn()
    {
        var file = Copy(PackagedAssembly());
        var report = TorchSharpKeepAlive.Rewrite(file);
        Assert.Equal(KeepAliveResult.Rewritten, report.Result);

        // Finalizable types as the runtime sees them: a Finalize declared in TorchSharp on the type or a base.
        var runtime = typeof(torch).Assembly;
        bool Finalizable(TypeReference type)
        {
            while (type is ArrayType array) type = array.ElementType;
            if (type is GenericInstanceType generic) type = generic.ElementType;
            if (type.IsByReference || type.IsPointer || type.IsGenericParameter || type.IsValueType) return false;
            var t = runtime.GetType(type.FullName.Replace('/', '+'));
            for (; t is not null && t.Assembly == runtime; t = t.BaseType)
                if (t.GetMethod("Finalize", BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.DeclaredOnly) is not null) return true;
            return false;
        }

        using var module = ModuleDefinition.ReadModule(file);
        int checkedReturns = 0, methods = 0;
        foreach (var method in module.GetTypes().SelectMany(t => t.Methods).Where(m => m.HasBody))
        {
            var code = method.Body.Instructions;
            if (code.Any(i => i.OpCode.Code is Code.Tail or Code.Jmp)) continue;
            var required = method.Parameters.Where(p => Finalizable(p.ParameterType)).Select(p => p.Index + (method.HasThis ? 1 : 0)).ToList();
            if (method.HasThis && Finalizable(method.DeclaringType)) required.Add(0);
            if (required.Count == 0) continue;
            methods++;
            for (int i = 0; i < code.Count; i++)
            {
                if (code[i].OpCode.Code != Code.Ret) continue;
                var kept = new HashSet<int>();
                for (int j = i - 2; j >= 0 && IsKeepAlive(code[j + 1]); j -= 2)
                    if (ArgumentIndex(code[j], method) is int a) kept.Add(a);
                foreach (var index in required)
                    Assert.True(kept.Contains(index), $"{method.FullName}: argument {index} is not kept alive at IL_{code[i].Offset:x4}");
                checkedReturns++;
            }
        }
        Assert.True(methods > 3000, $"only {methods} methods take a finalizable argument");
        Assert.True(checkedReturns >= methods);
    }

    [Fact]
    public void TemporariesMadeInsideAMethodAreKeptAliveToo()
    {
        // Tensor.softplus(double, double) turns both numbers into Scalars itself (dotnet/TorchSharp#1496).
        var file = Copy(PackagedAssembly());
        TorchSharpKeepAlive.Rewrite(file);
        using var module = ModuleDefinition.ReadModule(file);
        var tensor = module.GetTypes().Single(t => t.FullName == "TorchSharp.torch/Tensor");
        var softplus = tensor.Methods.Single(m => m.Name == "softplus" && m.Parameters.Count == 2 &&
                                                  m.Parameters.All(p => p.ParameterType.MetadataType == MetadataType.Double));
        var code = softplus.Body.Instructions;
        var stored = new HashSet<VariableDefinition>();
        for (int i = 0; i + 2 < code.Count; i++)
            if (code[i].Operand is MethodReference m && m.ReturnType.FullName == "TorchSharp.Scalar" &&
                code[i + 1].OpCode.Code == Code.Dup && code[i + 2].Operand is VariableDefinition v)
                stored.Add(v);
        Assert.Equal(2, stored.Count);
        var ret = code.Last(i => i.OpCode.Code == Code.Ret);
        var loaded = new HashSet<VariableDefinition>();
        for (var x = ret.Previous; x?.Previous is not null && IsKeepAlive(x); x = x.Previous.Previous)
            if (x.Previous.Operand is VariableDefinition v) loaded.Add(v);
        Assert.Superset(stored, loaded);
    }

    [Fact]
    public void RewriteIsIdempotentAndDeterministic()
    {
        var a = Copy(PackagedAssembly(), "a.dll");
        var b = Copy(PackagedAssembly(), "b.dll");
        Assert.Equal(KeepAliveResult.Rewritten, TorchSharpKeepAlive.Rewrite(a).Result);
        Assert.Equal(KeepAliveResult.Rewritten, TorchSharpKeepAlive.Rewrite(b).Result);
        var once = File.ReadAllBytes(a);
        Assert.Equal(once, File.ReadAllBytes(b));
        Assert.True(TorchSharpKeepAlive.IsMarked(a));
        Assert.False(TorchSharpKeepAlive.IsMarked(PackagedAssembly()));

        var again = TorchSharpKeepAlive.Rewrite(a);
        Assert.Equal(KeepAliveResult.AlreadyRewritten, again.Result);
        Assert.Equal(0, again.MethodsRewritten);
        Assert.Equal(once, File.ReadAllBytes(a));

        // Into another file: a rewritten source is copied as it is.
        var c = Path.Combine(_dir, "sub", "c.dll");
        Assert.Equal(KeepAliveResult.AlreadyRewritten, TorchSharpKeepAlive.Rewrite(a, c).Result);
        Assert.Equal(once, File.ReadAllBytes(c));
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp", SearchOption.AllDirectories));
    }

    [Theory]
    [InlineData("TorchSharp", "0.106.0.0")]
    [InlineData("TorchSharp", "0.107.1.0")]
    [InlineData("NotTorchSharp", "0.107.0.0")]
    public void AnotherVersionOrAssemblyIsLeftAlone(string name, string version)
    {
        var file = Path.Combine(_dir, "other.dll");
        using (var fake = AssemblyDefinition.CreateAssembly(new AssemblyNameDefinition(name, Version.Parse(version)), name, ModuleKind.Dll))
            fake.Write(file);
        var before = File.ReadAllBytes(file);
        var report = TorchSharpKeepAlive.Rewrite(file);
        Assert.Equal(KeepAliveResult.UnsupportedVersion, report.Result);
        Assert.Equal(version, report.Version);
        Assert.Equal(before, File.ReadAllBytes(file));
        // The build substitutes the destination for the package's file, so it must still get the original.
        var copy = Path.Combine(_dir, "copy.dll");
        Assert.Equal(KeepAliveResult.UnsupportedVersion, TorchSharpKeepAlive.Rewrite(file, copy).Result);
        Assert.Equal(before, File.ReadAllBytes(copy));
    }

    static bool IsKeepAlive(Instruction i) =>
        i.OpCode.Code == Code.Call && i.Operand is MethodReference m && m.Name == "KeepAlive" && m.DeclaringType.FullName == "System.GC";

    static int? ArgumentIndex(Instruction load, MethodDefinition method) => load.OpCode.Code switch
    {
        Code.Ldarg_0 => 0,
        Code.Ldarg_1 => 1,
        Code.Ldarg_2 => 2,
        Code.Ldarg_3 => 3,
        Code.Ldarg or Code.Ldarg_S => ((ParameterDefinition)load.Operand).Index + (method.HasThis ? 1 : 0),
        _ => null,
    };
}
