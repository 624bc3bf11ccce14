using System.Buffers.Binary;
using System.IO.Compression;

namespace Uan.Lab.Data;

/// <summary>
/// File helpers shared by the readers: existence checks with useful messages, reads that turn every I/O failure
/// into a <see cref="DataFormatException"/> naming the file, transparent gzip, and the checks the formats allow
/// (sizes, checksums).
/// </summary>
internal static class DataFiles
{
    /// <summary>Deflate cannot expand a byte into more than 1,032 bytes (RFC 1951's longest match per shortest code).</summary>
    public const long MaxDeflateRatio = 1032;

    public static void RequireFile(string path, string what)
    {
        if (Directory.Exists(path))
            throw new DataFormatException(path, $"is a folder, expected a file ({what})");
        if (!File.Exists(path))
            throw new FileNotFoundException($"{what} not found: '{path}' does not exist.", path);
    }

    public static void RequireDirectory(string path, string what)
    {
        if (File.Exists(path))
            throw new DataFormatException(path, $"is a file, expected a folder ({what})");
        if (!Directory.Exists(path))
            throw new DirectoryNotFoundException($"{what} not found: folder '{path}' does not exist.");
    }

    /// <summary>Opens <paramref name="path"/> for reading; permission and I/O errors become named errors.</summary>
    public static FileStream OpenRead(string path, string what)
    {
        RequireFile(path, what);
        try
        {
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException && e is not DataFormatException and not FileNotFoundException)
        {
            throw CannotRead(path, what, e);
        }
    }

    /// <summary>
    /// The error for a file that exists but cannot be read: "cannot read … : permission denied" for access errors,
    /// the system's message otherwise.
    /// </summary>
    public static DataFormatException CannotRead(string path, string what, Exception e) =>
        new(path, e is UnauthorizedAccessException ? $"cannot read {what}: permission denied" : $"cannot read {what}: {e.Message}", e);

    /// <summary>The whole file, with the same error handling as <see cref="OpenRead"/>.</summary>
    public static byte[] ReadAllBytes(string path, string what)
    {
        using var file = OpenRead(path, what);
        try
        {
            long length = file.Length;
            if (length > Array.MaxLength)
                throw new DataFormatException(path, $"{length} bytes, more than one array can hold ({Array.MaxLength}); not a {what}");
            var data = new byte[length];
            file.ReadExactly(data);
            return data;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException && e is not DataFormatException)
        {
            throw CannotRead(path, what, e);
        }
    }

    /// <summary>All lines of a text file, with the same error handling as <see cref="OpenRead"/>.</summary>
    public static IReadOnlyList<string> ReadLines(string path, string what)
    {
        using var file = OpenRead(path, what);
        try
        {
            using var reader = new StreamReader(file);
            var lines = new List<string>();
            while (reader.ReadLine() is { } line) lines.Add(line);
            return lines;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException && e is not DataFormatException)
        {
            throw CannotRead(path, what, e);
        }
    }

    /// <summary>Non-empty, trimmed lines of a small text file (class-name lists).</summary>
    public static IReadOnlyList<string> ReadNameList(string path, string what = "class-name list") =>
        ReadLines(path, what).Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();

    /// <summary>
    /// Reads a whole file, gunzipping it when it starts with the gzip magic bytes (whatever its extension), so a
    /// renamed or hand-decompressed file still reads. The gzip trailer is verified.
    /// </summary>
    public static byte[] ReadAllBytesMaybeGzip(string path, string what)
    {
        using var input = ContentReader.Open(path, what);
        input.Fill(Array.MaxLength);
        if (!input.AtEnd())
            throw new DataFormatException(path, $"inflates to more than {Array.MaxLength} bytes");
        input.VerifyTrailer();
        return input.Length == input.Buffer.Length ? input.Buffer : input.Buffer.AsSpan(0, input.Length).ToArray();
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

    /// <summary>
    /// The product of <paramref name="dims"/>, or a named error when it overflows 64 bits: a wrapped product can
    /// look small (2^21 · 2^21 · 2^22 wraps to 0) and pass every size check after it.
    /// </summary>
    public static long CheckedProduct(string path, IEnumerable<long> dims, string what)
    {
        long product = 1;
        try
        {
            foreach (long d in dims) product = checked(product * d);
        }
        catch (OverflowException)
        {
            throw new DataFormatException(path, $"{what} {string.Join(" × ", dims)} overflow a 64-bit count; header corrupt");
        }
        return product;
    }
}

/// <summary>
/// Streams the content of a data file that may be gzip-compressed, so a reader can parse its header before it
/// commits memory to the body the header declares. The buffer grows only as inflated bytes actually arrive, so a
/// small file cannot make the reader allocate gigabytes. .NET's GZipStream ends silently when the compressed data
/// stop early, so <see cref="VerifyTrailer"/> checks the CRC-32 and length stored in the gzip trailer itself.
/// </summary>
internal sealed class ContentReader : IDisposable
{
    private readonly FileStream _file;
    private readonly Stream _content;
    private readonly string _what;
    private byte[] _buffer = [];
    private int _length;

    private ContentReader(string path, string what, FileStream file, bool compressed)
    {
        Path = path;
        _what = what;
        _file = file;
        FileLength = file.Length;
        Compressed = compressed;
        _content = compressed ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: true) : file;
    }

    public static ContentReader Open(string path, string what)
    {
        var file = DataFiles.OpenRead(path, what);
        try
        {
            Span<byte> magic = stackalloc byte[2];
            int got = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
            file.Position = 0;
            return new ContentReader(path, what, file, got == 2 && magic[0] == 0x1F && magic[1] == 0x8B);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException && e is not DataFormatException)
        {
            file.Dispose();
            throw DataFiles.CannotRead(path, what, e);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The file, for error messages.</summary>
    public string Path { get; }

    /// <summary>True when the file is gzip-compressed.</summary>
    public bool Compressed { get; }

    /// <summary>Size of the file on disk.</summary>
    public long FileLength { get; }

    /// <summary>The most content bytes the file can hold: its size when raw, the deflate limit when compressed.</summary>
    public long MaxContentLength => Compressed ? DataFiles.MaxDeflateRatio * FileLength : FileLength;

    /// <summary>Content read so far: <see cref="Buffer"/>[0..<see cref="Length"/>).</summary>
    public byte[] Buffer => _buffer;

    /// <summary>Number of content bytes read so far.</summary>
    public int Length => _length;

    /// <summary>Reads until <paramref name="target"/> content bytes are held or the content ends; returns the count held.</summary>
    public int Fill(long target)
    {
        if (target > Array.MaxLength)
            throw new DataFormatException(Path, $"declares {target} bytes, more than one array can hold ({Array.MaxLength})");
        // A raw file holds no more than its size: never grow past it.
        int want = (int)(Compressed ? target : Math.Min(target, FileLength));
        while (_length < want)
        {
            if (_length == _buffer.Length) Grow(want);
            int n = Read(_buffer.AsSpan(_length, Math.Min(_buffer.Length, want) - _length));
            if (n == 0) break;
            _length += n;
        }
        return _length;
    }

    /// <summary>True when the content has no byte beyond those read (reads at most one more).</summary>
    public bool AtEnd()
    {
        Span<byte> one = stackalloc byte[1];
        return Read(one) == 0;
    }

    /// <summary>
    /// For gzip: the trailer's ISIZE must name the bytes of the last member and its CRC-32 must match them (for a
    /// single-member file, the whole content). Call after <see cref="AtEnd"/> returned true.
    /// </summary>
    public void VerifyTrailer()
    {
        if (!Compressed) return;
        Span<byte> trailer = stackalloc byte[8];
        if (FileLength < 18 || RandomAccess.Read(_file.SafeFileHandle, trailer, FileLength - 8) != 8)
            throw new DataFormatException(Path, "truncated gzip data: no room for the 8-byte trailer");
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(trailer);
        uint size = BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]);
        // Content here is below 2 GiB, so ISIZE (the length modulo 2^32) is the last member's exact length.
        if (size > _length || Checksums.Crc32(_buffer.AsSpan(_length - (int)size, (int)size)) != crc)
            throw new DataFormatException(Path,
                $"corrupt or truncated gzip data: the trailer (CRC-32 0x{crc:X8}, {size} bytes) does not match the {_length} bytes inflated");
    }

    private void Grow(int want)
    {
        // Start from what the file could plausibly hold, then double: memory follows the bytes that really arrive.
        long start = Compressed ? 16 * FileLength + 65536 : FileLength;
        long next = Math.Max(Math.Min(start, want), Math.Max(1, 2L * _buffer.Length));
        Array.Resize(ref _buffer, (int)Math.Min(next, want));
    }

    private int Read(Span<byte> into)
    {
        try
        {
            return _content.Read(into);
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(Path, $"corrupt gzip data ({e.Message})", e);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException && e is not DataFormatException)
        {
            throw DataFiles.CannotRead(Path, _what, e);
        }
    }

    public void Dispose()
    {
        if (Compressed) _content.Dispose();
        _file.Dispose();
    }
}

/// <summary>The checksums of gzip (CRC-32) and zlib (Adler-32), for the checks .NET's streams skip on early ends.</summary>
internal static class Checksums
{
    private static readonly uint[] CrcTable = MakeCrcTable();

    public static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFF;
        foreach (byte b in data) c = CrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
        return ~c;
    }

    public static uint Adler32(ReadOnlySpan<byte> data)
    {
        const uint Mod = 65521;
        uint a = 1, b = 0;
        while (data.Length > 0)
        {
            // 5552 is the longest run before b can overflow 32 bits (zlib's NMAX).
            int n = Math.Min(data.Length, 5552);
            foreach (byte x in data[..n])
            {
                a += x;
                b += a;
            }
            a %= Mod;
            b %= Mod;
            data = data[n..];
        }
        return (b << 16) | a;
    }

    private static uint[] MakeCrcTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
