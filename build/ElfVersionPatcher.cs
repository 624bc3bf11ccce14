#nullable enable
// Makes TorchSharp's libLibTorchSharp.so loadable on systems whose libstdc++ is older than the one it was linked
// against. This file is compiled twice: by MSBuild's RoslynCodeTaskFactory into the PatchTorchSharpNative task
// (build/TorchSharpNativeCompat.targets), and into the test project (with ELF_PATCHER_NO_TASK defined) so the ELF
// logic is unit-tested on a real copy of the library.
//
// Why it works: libLibTorchSharp.so 0.107 requires the symbol version GLIBCXX_3.4.32 (GCC 13) only for
// _ZSt21ios_base_library_initv, an undefined symbol that nothing relocates against (GCC 13's <iostream> references
// it only to pin the libstdc++ version). glibc's loader refuses a missing version unless its Vernaux entry carries
// VER_FLG_WEAK; flipping that one flag on the output copy lets the library load, and nothing ever binds the symbol.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;

namespace Uan.Build
{
    /// <summary>Outcome of <see cref="ElfVersionPatcher.Patch"/>.</summary>
    public enum ElfPatchResult
    {
        /// <summary>A flag was set; the file on disk changed.</summary>
        Patched,
        /// <summary>Every allowed missing version was already weak.</summary>
        AlreadyPatched,
        /// <summary>The library does not need any of the listed versions.</summary>
        NotNeeded,
    }

    /// <summary>One version requirement (a Vernaux entry) of an ELF shared object.</summary>
    public sealed class ElfVersionNeed
    {
        public string File { get; set; } = "";
        public string Version { get; set; } = "";
        public ushort Flags { get; set; }
        public ushort Index { get; set; }
        public long FlagsOffset { get; set; }
        public List<string> Symbols { get; } = new List<string>();
        public bool IsWeak => (Flags & ElfVersionPatcher.VerFlgWeak) != 0;
    }

    /// <summary>Minimal ELF64 little-endian reader and the one-flag patch described at the top of this file.</summary>
    public static class ElfVersionPatcher
    {
        public const ushort VerFlgWeak = 0x2;
        const uint ShtDynsym = 11;
        const uint ShtGnuVerdef = 0x6ffffffd;
        const uint ShtGnuVerneed = 0x6ffffffe;
        const uint ShtGnuVersym = 0x6fffffff;

        sealed class Section
        {
            public uint Type;
            public long Offset;
            public long Size;
            public uint Link;
            public uint Info;
            public long EntSize;
        }

        /// <summary>Reads every version requirement, with the dynamic symbols bound to it.</summary>
        public static List<ElfVersionNeed> ReadVersionNeeds(byte[] elf, string nameForErrors)
        {
            var sections = ReadSections(elf, nameForErrors);
            var needs = new List<ElfVersionNeed>();
            var verneed = sections.FirstOrDefault(s => s.Type == ShtGnuVerneed);
            if (verneed == null) return needs;
            var strtab = SectionAt(sections, verneed.Link, nameForErrors);

            long entry = verneed.Offset;
            for (uint i = 0; i < verneed.Info; i++)
            {
                Check(elf, entry, 16, nameForErrors, "Verneed entry");
                ushort count = U16(elf, entry + 2);
                string file = Str(elf, strtab, U32(elf, entry + 4), nameForErrors);
                long aux = entry + U32(elf, entry + 8);
                for (int j = 0; j < count; j++)
                {
                    Check(elf, aux, 16, nameForErrors, "Vernaux entry");
                    needs.Add(new ElfVersionNeed
                    {
                        File = file,
                        Flags = U16(elf, aux + 4),
                        Index = (ushort)(U16(elf, aux + 6) & 0x7fff),
                        Version = Str(elf, strtab, U32(elf, aux + 8), nameForErrors),
                        FlagsOffset = aux + 4,
                    });
                    uint nextAux = U32(elf, aux + 12);
                    if (nextAux == 0) break;
                    aux += nextAux;
                }
                uint next = U32(elf, entry + 12);
                if (next == 0) break;
                entry += next;
            }

            var dynsym = sections.FirstOrDefault(s => s.Type == ShtDynsym);
            var versym = sections.FirstOrDefault(s => s.Type == ShtGnuVersym);
            if (dynsym != null && versym != null)
            {
                var symstr = SectionAt(sections, dynsym.Link, nameForErrors);
                long symCount = dynsym.Size / 24;
                var byIndex = needs.ToDictionary(n => n.Index);
                for (long s = 0; s < symCount; s++)
                {
                    Check(elf, versym.Offset + 2 * s, 2, nameForErrors, "versym entry");
                    ushort ver = (ushort)(U16(elf, versym.Offset + 2 * s) & 0x7fff);
                    if (byIndex.TryGetValue(ver, out var need))
                        need.Symbols.Add(Str(elf, symstr, U32(elf, dynsym.Offset + 24 * s), nameForErrors));
                }
            }
            return needs;
        }

        /// <summary>The version names an ELF shared object defines (its .gnu.version_d), e.g. GLIBCXX_3.4.30.</summary>
        public static HashSet<string> ReadVersionDefinitions(byte[] elf, string nameForErrors)
        {
            var sections = ReadSections(elf, nameForErrors);
            var result = new HashSet<string>(StringComparer.Ordinal);
            var verdef = sections.FirstOrDefault(s => s.Type == ShtGnuVerdef);
            if (verdef == null) return result;
            var strtab = SectionAt(sections, verdef.Link, nameForErrors);
            long entry = verdef.Offset;
            for (uint i = 0; i < verdef.Info; i++)
            {
                Check(elf, entry, 20, nameForErrors, "Verdef entry");
                long aux = entry + U32(elf, entry + 12);
                Check(elf, aux, 8, nameForErrors, "Verdaux entry");
                result.Add(Str(elf, strtab, U32(elf, aux), nameForErrors));
                uint next = U32(elf, entry + 16);
                if (next == 0) break;
                entry += next;
            }
            return result;
        }

        /// <summary>
        /// Marks weak each requirement of <paramref name="libraryFile"/> on <paramref name="version"/> whose symbols
        /// are all in <paramref name="allowedSymbols"/>. Refuses (InvalidOperationException) when another symbol is
        /// bound to that version, since weakening it could then hide a real missing function. The file is rewritten
        /// through a temporary file and a rename, so a hard link into a package cache is never modified, and keeps
        /// its timestamp, so incremental copies do not overwrite the patched file.
        /// </summary>
        public static ElfPatchResult Patch(string libraryFile, string version, ICollection<string> allowedSymbols)
        {
            byte[] elf = File.ReadAllBytes(libraryFile);
            var targets = ReadVersionNeeds(elf, libraryFile).Where(n => n.Version == version).ToList();
            if (targets.Count == 0) return ElfPatchResult.NotNeeded;
            foreach (var t in targets)
            {
                var unexpected = t.Symbols.Where(s => !allowedSymbols.Contains(s)).ToList();
                if (unexpected.Count > 0)
                    throw new InvalidOperationException(
                        $"{libraryFile}: symbols other than the expected ones need {version} " +
                        $"({string.Join(", ", unexpected)}); not patching.");
            }
            if (targets.All(t => t.IsWeak)) return ElfPatchResult.AlreadyPatched;

            foreach (var t in targets)
            {
                ushort flags = (ushort)(t.Flags | VerFlgWeak);
                elf[t.FlagsOffset] = (byte)flags;
                elf[t.FlagsOffset + 1] = (byte)(flags >> 8);
            }
            var stamp = File.GetLastWriteTimeUtc(libraryFile);
            string temp = libraryFile + ".patching";
            File.WriteAllBytes(temp, elf);
            File.SetLastWriteTimeUtc(temp, stamp);
            // Delete then move (netstandard has no overwriting Move): a hard link into a cache is unlinked, not written.
            File.Delete(libraryFile);
            File.Move(temp, libraryFile);
            return ElfPatchResult.Patched;
        }

        /// <summary>
        /// Finds the libstdc++.so.6 the dynamic loader would use on this system (the usual multiarch and lib64
        /// locations), or null when none is found.
        /// </summary>
        public static string? FindSystemLibStdCxx()
        {
            string[] dirs =
            {
                "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib",
            };
            foreach (var d in dirs)
            {
                var path = Path.Combine(d, "libstdc++.so.6");
                if (File.Exists(path)) return path;
            }
            return null;
        }

        static List<Section> ReadSections(byte[] elf, string name)
        {
            if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
                throw new InvalidDataException($"{name}: not an ELF file (bad magic).");
            if (elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException($"{name}: only 64-bit little-endian ELF is supported.");
            long shoff = (long)U64(elf, 0x28);
            ushort shentsize = U16(elf, 0x3A);
            ushort shnum = U16(elf, 0x3C);
            if (shentsize != 64)
                throw new InvalidDataException($"{name}: unexpected section header size {shentsize}.");
            var list = new List<Section>(shnum);
            for (int i = 0; i < shnum; i++)
            {
                long h = shoff + (long)i * shentsize;
                Check(elf, h, 64, name, "section header");
                list.Add(new Section
                {
                    Type = U32(elf, h + 4),
                    Offset = (long)U64(elf, h + 0x18),
                    Size = (long)U64(elf, h + 0x20),
                    Link = U32(elf, h + 0x28),
                    Info = U32(elf, h + 0x2C),
                    EntSize = (long)U64(elf, h + 0x38),
                });
            }
            return list;
        }

        static Section SectionAt(List<Section> sections, uint index, string name)
        {
            if (index >= sections.Count)
                throw new InvalidDataException($"{name}: section link {index} out of range.");
            return sections[(int)index];
        }

        static string Str(byte[] elf, Section strtab, uint offset, string name)
        {
            long start = strtab.Offset + offset;
            if (offset >= strtab.Size || start >= elf.Length)
                throw new InvalidDataException($"{name}: string offset {offset} outside its table.");
            long end = start;
            while (end < elf.Length && elf[end] != 0) end++;
            return Encoding.ASCII.GetString(elf, (int)start, (int)(end - start));
        }

        static void Check(byte[] elf, long offset, int length, string name, string what)
        {
            if (offset < 0 || offset + length > elf.Length)
                throw new InvalidDataException($"{name}: truncated {what} at offset {offset}.");
        }

        static ushort U16(byte[] b, long o) => (ushort)(b[o] | b[o + 1] << 8);
        static uint U32(byte[] b, long o) => (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24);
        static ulong U64(byte[] b, long o) => U32(b, o) | (ulong)U32(b, o + 4) << 32;
    }
}

#if !ELF_PATCHER_NO_TASK
namespace Uan.Build
{
    /// <summary>
    /// MSBuild task: for each libLibTorchSharp.so under <see cref="Directory"/>, weakens the requirement on
    /// <see cref="Version"/> when the system libstdc++ lacks it. Does nothing off Linux or when the system has it.
    /// </summary>
    public sealed class PatchTorchSharpNative : Microsoft.Build.Utilities.Task
    {
        [Microsoft.Build.Framework.Required]
        public string Directory { get; set; } = "";
        public string Version { get; set; } = "GLIBCXX_3.4.32";
        public string AllowedSymbols { get; set; } = "_ZSt21ios_base_library_initv";

        public override bool Execute()
        {
            if (!System.Runtime.InteropServices.RuntimeInformation.IsOSPlatform(
                    System.Runtime.InteropServices.OSPlatform.Linux)) return true;
            if (!System.IO.Directory.Exists(Directory)) return true;
            var libs = System.IO.Directory.GetFiles(Directory, "libLibTorchSharp.so", SearchOption.AllDirectories);
            if (libs.Length == 0) return true;

            string? system = ElfVersionPatcher.FindSystemLibStdCxx();
            if (system == null)
            {
                Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Low,
                    "No system libstdc++.so.6 found; TorchSharp natives left as they are.");
                return true;
            }
            var defined = ElfVersionPatcher.ReadVersionDefinitions(File.ReadAllBytes(system), system);
            if (defined.Contains(Version)) return true;

            var allowed = AllowedSymbols.Split(new[] { ';', ',' }, StringSplitOptions.RemoveEmptyEntries);
            foreach (var lib in libs)
            {
                try
                {
                    if (ElfVersionPatcher.Patch(lib, Version, allowed) == ElfPatchResult.Patched)
                        Log.LogMessage(Microsoft.Build.Framework.MessageImportance.High,
                            $"TorchSharp native compat: {system} lacks {Version}; marked that requirement weak in {lib}.");
                }
                catch (Exception e) when (e is InvalidOperationException || e is InvalidDataException)
                {
                    Log.LogWarning($"TorchSharp native compat: {e.Message}");
                }
            }
            return true;
        }
    }
}
#endif
