using System.IO.Compression;

namespace Uan.Lab.Data;

/// <summary>File helpers shared by the readers: existence checks with useful messages and transparent gzip.</summary>
internal static class DataFiles
{
    public static void RequireFile(string path, string what)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"{what} not found: '{path}' does not exist.", path);
    }

    public static void RequireDirectory(string path, string what)
    {
        if (!Directory.Exists(path))
            throw new DirectoryNotFoundException($"{what} not found: folder '{path}' does not exist.");
    }

    /// <summary>
    /// Reads a whole file, gunzipping it when it starts with the gzip magic bytes (whatever its extension), so a
    /// renamed or hand-decompressed file still reads.
    /// </summary>
    public static byte[] ReadAllBytesMaybeGzip(string path, string what)
    {
        RequireFile(path, what);
        byte[] raw = File.ReadAllBytes(path);
        if (raw.Length < 2 || raw[0] != 0x1F || raw[1] != 0x8B)
            return raw;
        try
        {
            using var input = new MemoryStream(raw, writable: false);
            using var gz = new GZipStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream((int)Math.Min(4L * raw.Length, Array.MaxLength));
            gz.CopyTo(output);
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, $"corrupt or truncated gzip data ({e.Message})", e);
        }
    }

    public static void WriteAllBytesMaybeGzip(string path, ReadOnlySpan<byte> data)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        using var file = File.Create(path);
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            using var gz = new GZipStream(file, CompressionLevel.SmallestSize);
            gz.Write(data);
        }
        else
        {
            file.Write(data);
        }
    }

    /// <summary>Non-empty, trimmed lines of a small text file (class-name lists).</summary>
    public static IReadOnlyList<string> ReadNameList(string path) =>
        File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();
}
