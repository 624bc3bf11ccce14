#nullable enable
// Closes TorchSharp 0.107's finalizer race by rewriting the copy of TorchSharp.dll in a build or publish output.
// This file is compiled twice: by MSBuild's RoslynCodeTaskFactory into the KeepTorchSharpArgumentsAlive task
// (build/TorchSharpNativeCompat.targets), and into the test project (with KEEPALIVE_NO_TASK defined) so the rewrite
// is unit-tested on the real assembly.
//
// The race: TorchSharp's Scalar and Tensor wrappers free their native object in a finalizer. A method such as
// Tensor.add(Tensor other, Scalar alpha) reads alpha.Handle and passes the bare pointer to libtorch; from that read
// on, the JIT no longer reports alpha as live, so when the caller built alpha implicitly (x.add(y, 0.5)) nothing
// references it any more. A garbage collection started by any thread during the native call can then run the
// finalizer, which frees the c10::Scalar that libtorch is reading ("Expected false to be true", "Unknown scalar
// type", a wrong-typed alpha). TorchSharp also creates such temporaries inside its own methods (softplus, pow,
// threshold, the optimizers' add_(..., alpha)), so no amount of care in calling code closes it. Upstream pull
// requests dotnet/TorchSharp#1434 and #1496 add GC.KeepAlive calls by hand; this rewrite adds them mechanically:
//
//   in every method of TorchSharp.dll, before every `ret`, GC.KeepAlive(x) for
//     - `this`, when the declaring type (or a base type) has a finalizer,
//     - every parameter whose type (or element type, for arrays) has a finalizer,
//     - every value of such a type that the method creates or receives from a call (each such call site gets its
//       own local, filled right after the call),
//
// so every wrapper whose handle a method may hand to native code stays reachable until that method returns.
// GC.KeepAlive is a JIT intrinsic that only extends liveness; it adds no call. The rewritten assembly is marked
// with an AssemblyMetadata attribute (idempotency), and the rewrite refuses any TorchSharp other than the version it
// was written and tested for. Strong-name signatures are not checked by .NET (Core), so the rewritten copy loads.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Mono.Cecil;
using Mono.Cecil.Cil;

namespace Uan.Build
{
    /// <summary>Outcome of <see cref="TorchSharpKeepAlive.Rewrite"/>.</summary>
    public enum KeepAliveResult
    {
        /// <summary>The assembly was rewritten; the file on disk changed.</summary>
        Rewritten,
        /// <summary>The assembly already carries this rewrite's marker; nothing was written.</summary>
        AlreadyRewritten,
        /// <summary>Another TorchSharp version; nothing was written.</summary>
        UnsupportedVersion,
    }

    /// <summary>What a rewrite did (counts for the build message and the tests).</summary>
    public sealed class KeepAliveReport
    {
        public KeepAliveResult Result { get; set; }
        public string Version { get; set; } = "";
        public int MethodsRewritten { get; set; }
        public int KeepAlives { get; set; }
        public int Temporaries { get; set; }
        public List<string> FinalizableTypes { get; } = new List<string>();
    }

    /// <summary>The IL rewrite described at the top of this file.</summary>
    public static class TorchSharpKeepAlive
    {
        /// <summary>The one TorchSharp version this rewrite was written for and tested against.</summary>
        public const string SupportedVersion = "0.107.0.0";
        /// <summary>Key of the AssemblyMetadata attribute that marks a rewritten assembly.</summary>
        public const string MarkerKey = "Uan.KeepAlive";
        /// <summary>Value of the marker; bump it when the rewrite changes, so outputs are rewritten anew.</summary>
        public const string MarkerValue = "2";

        /// <summary>Rewrites <paramref name="assemblyFile"/> in place (see <see cref="Rewrite(string, string)"/>).</summary>
        public static KeepAliveReport Rewrite(string assemblyFile) => Rewrite(assemblyFile, assemblyFile);

        /// <summary>
        /// Writes the rewritten <paramref name="source"/> to <paramref name="destination"/> through a temporary file
        /// and a rename, so a process that has the old file mapped keeps it. Idempotent: a source that carries the
        /// marker is copied as it is. Another assembly or version is not written at all.
        /// </summary>
        public static KeepAliveReport Rewrite(string source, string destination)
        {
            var report = new KeepAliveReport();
            byte[] original = File.ReadAllBytes(source);
            using (var input = new MemoryStream(original))
            using (var module = ModuleDefinition.ReadModule(input, new ReaderParameters { ReadingMode = ReadingMode.Immediate }))
            {
                report.Version = module.Assembly.Name.Version.ToString();
                if (module.Assembly.Name.Name != "TorchSharp" || report.Version != SupportedVersion)
                {
                    report.Result = KeepAliveResult.UnsupportedVersion;
                    if (!SamePath(source, destination)) WriteAtomically(destination, output => output.Write(original, 0, original.Length));
                    return report;
                }
                if (IsMarked(module))
                {
                    report.Result = KeepAliveResult.AlreadyRewritten;
                    if (!SamePath(source, destination)) WriteAtomically(destination, output => output.Write(original, 0, original.Length));
                    return report;
                }
                Apply(module, report);
                Mark(module);
                WriteAtomically(destination, output => module.Write(output));
            }
            report.Result = KeepAliveResult.Rewritten;
            return report;
        }

        static bool SamePath(string a, string b) =>
            string.Equals(Path.GetFullPath(a), Path.GetFullPath(b), StringComparison.Ordinal);

        static void WriteAtomically(string path, Action<Stream> write)
        {
            string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
            if (dir != null) Directory.CreateDirectory(dir);
            string tmp = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
            try
            {
                using (var output = File.Create(tmp))
                    write(output);
                // A rename, not a copy over the old file (netstandard2.0, where the task is compiled, has no
                // File.Move overwrite; Replace renames on Unix).
                if (File.Exists(path)) File.Replace(tmp, path, null);
                else File.Move(tmp, path);
            }
            finally
            {
                if (File.Exists(tmp)) File.Delete(tmp);
            }
        }

        /// <summary>True when the assembly at <paramref name="path"/> carries this rewrite's marker.</summary>
        public static bool IsMarked(string path)
        {
            using (var module = ModuleDefinition.ReadModule(path, new ReaderParameters { ReadingMode = ReadingMode.Deferred }))
                return IsMarked(module);
        }

        /// <summary>True when <paramref name="module"/> carries this rewrite's marker.</summary>
        public static bool IsMarked(ModuleDefinition module) =>
            module.Assembly.CustomAttributes.Any(a =>
                a.AttributeType.FullName == "System.Reflection.AssemblyMetadataAttribute" &&
                a.ConstructorArguments.Count == 2 && (a.ConstructorArguments[0].Value as string) == MarkerKey &&
                (a.ConstructorArguments[1].Value as string) == MarkerValue);

        /// <summary>The types of <paramref name="module"/> whose instances free native memory in a finalizer.</summary>
        public static HashSet<TypeDefinition> FinalizableTypes(ModuleDefinition module)
        {
            var result = new HashSet<TypeDefinition>();
            foreach (var type in module.GetTypes())
                if (!type.IsValueType && !type.IsInterface && HasFinalizer(type)) result.Add(type);
            return result;
        }

        static bool HasFinalizer(TypeDefinition? type)
        {
            for (int depth = 0; type != null && depth < 64; depth++)
            {
                if (type.Methods.Any(m => m.Name == "Finalize" && m.IsVirtual && !m.HasParameters && m.HasBody)) return true;
                // Only bases defined in this assembly matter: System.Object and the BCL's bases have no finalizer
                // that frees a TorchSharp handle.
                type = type.BaseType is TypeReference b && b.Scope == type.Module ? b.Resolve() : null;
            }
            return false;
        }

        static void Apply(ModuleDefinition module, KeepAliveReport report)
        {
            var finalizable = FinalizableTypes(module);
            report.FinalizableTypes.AddRange(finalizable.Select(t => t.FullName).OrderBy(n => n, StringComparer.Ordinal));
            var gc = new TypeReference("System", "GC", module, module.TypeSystem.CoreLibrary);
            var keepAlive = new MethodReference("KeepAlive", module.TypeSystem.Void, gc) { HasThis = false };
            keepAlive.Parameters.Add(new ParameterDefinition(module.TypeSystem.Object));

            bool Needs(TypeReference type)
            {
                while (type is ArrayType array) type = array.ElementType;
                if (type is GenericInstanceType generic) type = generic.ElementType;
                if (type.IsByReference || type.IsPointer || type.IsGenericParameter || type.Scope != module) return false;
                var def = type.Resolve();
                return def != null && finalizable.Contains(def);
            }

            foreach (var type in module.GetTypes())
                foreach (var method in type.Methods)
                    RewriteMethod(method, Needs, keepAlive, finalizable, report);
        }

        static void RewriteMethod(MethodDefinition method, Func<TypeReference, bool> needs, MethodReference keepAlive,
            HashSet<TypeDefinition> finalizable, KeepAliveReport report)
        {
            if (!method.HasBody) return;
            var body = method.Body;
            var code = body.Instructions;
            // A tail call must be followed by its ret, and jmp leaves the method without one: leave such bodies alone.
            if (code.Any(i => i.OpCode.Code == Code.Tail || i.OpCode.Code == Code.Jmp)) return;

            var roots = new List<Func<Instruction>>();
            if (method.HasThis && !method.DeclaringType.IsValueType && finalizable.Contains(method.DeclaringType))
                roots.Add(() => Instruction.Create(OpCodes.Ldarg_0));
            foreach (var parameter in method.Parameters)
                if (needs(parameter.ParameterType))
                {
                    var p = parameter;
                    roots.Add(() => Instruction.Create(OpCodes.Ldarg, p));
                }

            var producers = code.Where(i => ProducedType(i) is TypeReference t && needs(t)).ToList();
            if (roots.Count == 0 && producers.Count == 0) return;

            // Inserted code can push a short branch out of its ±127-byte range: every branch gets its long form.
            foreach (var instruction in code)
                if (LongForm(instruction.OpCode) is OpCode wide) instruction.OpCode = wide;

            var il = body.GetILProcessor();
            foreach (var producer in producers)
            {
                var local = new VariableDefinition(method.Module.TypeSystem.Object);
                body.Variables.Add(local);
                var store = Instruction.Create(OpCodes.Stloc, local);
                il.InsertAfter(producer, store);
                il.InsertAfter(producer, Instruction.Create(OpCodes.Dup));
                roots.Add(() => Instruction.Create(OpCodes.Ldloc, local));
                report.Temporaries++;
            }
            // Object locals are zeroed by the JIT anyway; saying so keeps the body verifiable.
            if (producers.Count > 0) body.InitLocals = true;

            foreach (var ret in code.Where(i => i.OpCode.Code == Code.Ret).ToList())
            {
                Instruction? first = null;
                foreach (var root in roots)
                {
                    var load = root();
                    il.InsertBefore(ret, load);
                    il.InsertBefore(ret, Instruction.Create(OpCodes.Call, keepAlive));
                    first ??= load;
                    report.KeepAlives++;
                }
                if (first != null) Retarget(body, ret, first);
            }
            report.MethodsRewritten++;
        }

        static OpCode? LongForm(OpCode op)
        {
            switch (op.Code)
            {
                case Code.Br_S: return OpCodes.Br;
                case Code.Brfalse_S: return OpCodes.Brfalse;
                case Code.Brtrue_S: return OpCodes.Brtrue;
                case Code.Beq_S: return OpCodes.Beq;
                case Code.Bge_S: return OpCodes.Bge;
                case Code.Bgt_S: return OpCodes.Bgt;
                case Code.Ble_S: return OpCodes.Ble;
                case Code.Blt_S: return OpCodes.Blt;
                case Code.Bne_Un_S: return OpCodes.Bne_Un;
                case Code.Bge_Un_S: return OpCodes.Bge_Un;
                case Code.Bgt_Un_S: return OpCodes.Bgt_Un;
                case Code.Ble_Un_S: return OpCodes.Ble_Un;
                case Code.Blt_Un_S: return OpCodes.Blt_Un;
                case Code.Leave_S: return OpCodes.Leave;
                default: return null;
            }
        }

        // The type of the reference a call or newobj leaves on the stack, or null.
        static TypeReference? ProducedType(Instruction instruction)
        {
            switch (instruction.OpCode.Code)
            {
                case Code.Newobj:
                    return ((MethodReference)instruction.Operand).DeclaringType;
                case Code.Call:
                case Code.Callvirt:
                    var callee = (MethodReference)instruction.Operand;
                    var type = callee.ReturnType;
                    return type.MetadataType == MetadataType.Void ? null : type;
                default:
                    return null;
            }
        }

        // Jumps to a ret, and protected regions that end at it, must now land on the keep-alives in front of it.
        static void Retarget(MethodBody body, Instruction from, Instruction to)
        {
            foreach (var instruction in body.Instructions)
            {
                if (instruction.Operand == from) instruction.Operand = to;
                else if (instruction.Operand is Instruction[] targets)
                    for (int i = 0; i < targets.Length; i++)
                        if (targets[i] == from) targets[i] = to;
            }
            foreach (var handler in body.ExceptionHandlers)
            {
                if (handler.TryStart == from) handler.TryStart = to;
                if (handler.TryEnd == from) handler.TryEnd = to;
                if (handler.HandlerStart == from) handler.HandlerStart = to;
                if (handler.HandlerEnd == from) handler.HandlerEnd = to;
                if (handler.FilterStart == from) handler.FilterStart = to;
            }
        }

        static void Mark(ModuleDefinition module)
        {
            var attributeType = new TypeReference("System.Reflection", "AssemblyMetadataAttribute", module, module.TypeSystem.CoreLibrary);
            var ctor = new MethodReference(".ctor", module.TypeSystem.Void, attributeType) { HasThis = true };
            ctor.Parameters.Add(new ParameterDefinition(module.TypeSystem.String));
            ctor.Parameters.Add(new ParameterDefinition(module.TypeSystem.String));
            var attribute = new CustomAttribute(ctor);
            attribute.ConstructorArguments.Add(new CustomAttributeArgument(module.TypeSystem.String, MarkerKey));
            attribute.ConstructorArguments.Add(new CustomAttributeArgument(module.TypeSystem.String, MarkerValue));
            module.Assembly.CustomAttributes.Add(attribute);
        }
    }
}

#if !KEEPALIVE_NO_TASK
namespace Uan.Build
{
    /// <summary>
    /// MSBuild task: rewrites the TorchSharp.dll in <see cref="Directory"/> (see the top of this file). Mono.Cecil is
    /// loaded from <see cref="CecilPath"/>; the task is idempotent and says in one message what it did or why not.
    /// </summary>
    public sealed class KeepTorchSharpArgumentsAlive : Microsoft.Build.Utilities.Task
    {
        /// <summary>The TorchSharp.dll to rewrite.</summary>
        [Microsoft.Build.Framework.Required]
        public string Source { get; set; } = "";
        /// <summary>Where the rewritten copy goes (may be <see cref="Source"/> itself).</summary>
        [Microsoft.Build.Framework.Required]
        public string Destination { get; set; } = "";
        /// <summary>Mono.Cecil.dll to load.</summary>
        [Microsoft.Build.Framework.Required]
        public string CecilPath { get; set; } = "";

        public override bool Execute()
        {
            if (!File.Exists(Source)) return true;
            if (!File.Exists(CecilPath))
            {
                Log.LogError($"TorchSharp keep-alive: Mono.Cecil not found at {CecilPath}; restore the project (it downloads Mono.Cecil 0.11.6).");
                return false;
            }
            // The task factory compiles against Mono.Cecil but does not load it: resolve it from CecilPath. The Cecil
            // calls live in another method so that this one can run before the resolver is in place.
            string cecilDir = Path.GetDirectoryName(Path.GetFullPath(CecilPath))!;
            ResolveEventHandler resolve = (sender, args) =>
            {
                string name = new System.Reflection.AssemblyName(args.Name).Name ?? "";
                string candidate = Path.Combine(cecilDir, name + ".dll");
                return name.StartsWith("Mono.Cecil", StringComparison.Ordinal) && File.Exists(candidate)
                    ? System.Reflection.Assembly.LoadFrom(candidate) : null;
            };
            AppDomain.CurrentDomain.AssemblyResolve += resolve;
            try
            {
                return Run();
            }
            finally
            {
                AppDomain.CurrentDomain.AssemblyResolve -= resolve;
            }
        }

        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
        bool Run()
        {
            // Up to date: a copy newer than its source that carries this rewrite's marker (so an incremental build
            // copies nothing into the output again).
            if (!string.Equals(Path.GetFullPath(Source), Path.GetFullPath(Destination), StringComparison.Ordinal) &&
                File.Exists(Destination) && File.GetLastWriteTimeUtc(Destination) >= File.GetLastWriteTimeUtc(Source) &&
                TorchSharpKeepAlive.IsMarked(Destination))
                return true;
            var report = TorchSharpKeepAlive.Rewrite(Source, Destination);
            string file = Destination;
            switch (report.Result)
            {
                case KeepAliveResult.Rewritten:
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High,
                        $"TorchSharp keep-alive: rewrote {file} ({report.MethodsRewritten} methods keep their Scalar/Tensor arguments and temporaries alive until they return; {report.KeepAlives} keep-alives).");
                    break;
                case KeepAliveResult.AlreadyRewritten:
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low, $"TorchSharp keep-alive: {file} is already rewritten.");
                    break;
                default:
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High,
                        $"TorchSharp keep-alive: {file} is TorchSharp {report.Version}; the rewrite is written for {TorchSharpKeepAlive.SupportedVersion} only, so it was left as it is (the finalizer race of dotnet/TorchSharp#1496 may remain).");
                    break;
            }
            return true;
        }
    }
}
#endif
