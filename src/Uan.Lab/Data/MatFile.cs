using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>MATLAB array classes (the mxCLASS codes of the array-flags subelement).</summary>
public enum MatClass : byte
{
    /// <summary>Cell array.</summary>
    Cell = 1,
    /// <summary>Structure.</summary>
    Struct = 2,
    /// <summary>Object.</summary>
    Object = 3,
    /// <summary>Character array.</summary>
    Char = 4,
    /// <summary>Sparse array.</summary>
    Sparse = 5,
    /// <summary>double.</summary>
    Double = 6,
    /// <summary>single.</summary>
    Single = 7,
    /// <summary>int8.</summary>
    Int8 = 8,
    /// <summary>uint8.</summary>
    UInt8 = 9,
    /// <summary>int16.</summary>
    Int16 = 10,
    /// <summary>uint16.</summary>
    UInt16 = 11,
    /// <summary>int32.</summary>
    Int32 = 12,
    /// <summary>uint32.</summary>
    UInt32 = 13,
    /// <summary>int64.</summary>
    Int64 = 14,
    /// <summary>uint64.</summary>
    UInt64 = 15,
}

/// <summary>MAT v5 data element types (the miTYPE codes of element tags).</summary>
public enum MatDataType
{
    /// <summary>miINT8.</summary>
    Int8 = 1,
    /// <summary>miUINT8.</summary>
    UInt8 = 2,
    /// <summary>miINT16.</summary>
    Int16 = 3,
    /// <summary>miUINT16.</summary>
    UInt16 = 4,
    /// <summary>miINT32.</summary>
    Int32 = 5,
    /// <summary>miUINT32.</summary>
    UInt32 = 6,
    /// <summary>miSINGLE.</summary>
    Single = 7,
    /// <summary>miDOUBLE.</summary>
    Double = 9,
    /// <summary>miINT64.</summary>
    Int64 = 12,
    /// <summary>miUINT64.</summary>
    UInt64 = 13,
    /// <summary>miMATRIX.</summary>
    Matrix = 14,
    /// <summary>miCOMPRESSED (zlib).</summary>
    Compressed = 15,
    /// <summary>miUTF8.</summary>
    Utf8 = 16,
    /// <summary>miUTF16.</summary>
    Utf16 = 17,
    /// <summary>miUTF32.</summary>
    Utf32 = 18,
}

/// <summary>
/// One numeric MATLAB array read from a MAT v5 file: its name, class, MATLAB dimensions and the raw bytes of its real
/// part. MATLAB may store an array in a smaller element type than its class (a double array of small integers as
/// miUINT8), so <see cref="StorageType"/> can differ from <see cref="Class"/>; the conversions handle that.
/// </summary>
public sealed class MatArray
{
    internal MatArray(string file, string name, MatClass cls, int[] dims, MatDataType storage, ReadOnlyMemory<byte> real, bool isComplex, bool bigEndian)
    {
        File = file;
        Name = name;
        Class = cls;
        Dimensions = dims;
        StorageType = storage;
        RealBytes = real;
        IsComplex = isComplex;
        BigEndian = bigEndian;
    }

    /// <summary>The file this array came from (for error messages).</summary>
    public string File { get; }

    /// <summary>Variable name.</summary>
    public string Name { get; }

    /// <summary>MATLAB class.</summary>
    public MatClass Class { get; }

    /// <summary>MATLAB dimensions (column-major: the first index varies fastest).</summary>
    public IReadOnlyList<int> Dimensions { get; }

    /// <summary>Element type the real part is stored in.</summary>
    public MatDataType StorageType { get; }

    /// <summary>Raw bytes of the real part, in the file's byte order.</summary>
    public ReadOnlyMemory<byte> RealBytes { get; }

    /// <summary>True when the array has an imaginary part (ignored by the conversions).</summary>
    public bool IsComplex { get; }

    /// <summary>True when the file is big-endian.</summary>
    public bool BigEndian { get; }

    /// <summary>Number of elements (product of the dimensions).</summary>
    public long ElementCount => Dimensions.Aggregate(1L, (a, d) => a * d);

    /// <summary>
    /// The real part as a tensor whose shape is the MATLAB dimensions REVERSED, so that the row-major tensor reads
    /// the column-major data in place: MATLAB element (i, j, k) is tensor element [k, j, i]. The dtype follows the
    /// storage type (uint16/uint32/uint64 and big-endian data are widened to float64).
    /// </summary>
    public Tensor ToTensor()
    {
        long[] shape = Dimensions.Reverse().Select(d => (long)d).ToArray();
        long n = ElementCount;
        if (n == 0) return zeros(shape, ScalarType.Float64);
        if (BigEndian || StorageType is MatDataType.UInt16 or MatDataType.UInt32 or MatDataType.UInt64)
            return tensor(ToDoubleArray(), shape, ScalarType.Float64);
        var span = RealBytes.Span;
        return StorageType switch
        {
            MatDataType.UInt8 => FromUInt8(shape),
            MatDataType.Int8 => tensor(MemoryMarshal.Cast<byte, sbyte>(span).ToArray(), shape, ScalarType.Int8),
            MatDataType.Int16 => tensor(MemoryMarshal.Cast<byte, short>(span).ToArray(), shape, ScalarType.Int16),
            MatDataType.Int32 => tensor(MemoryMarshal.Cast<byte, int>(span).ToArray(), shape, ScalarType.Int32),
            MatDataType.Int64 => tensor(MemoryMarshal.Cast<byte, long>(span).ToArray(), shape, ScalarType.Int64),
            MatDataType.Single => tensor(MemoryMarshal.Cast<byte, float>(span).ToArray(), shape, ScalarType.Float32),
            MatDataType.Double => tensor(MemoryMarshal.Cast<byte, double>(span).ToArray(), shape, ScalarType.Float64),
            _ => throw new InvalidOperationException($"{StorageType} is not numeric"),
        };
    }

    private Tensor FromUInt8(long[] shape)
    {
        // Image arrays are large (SVHN train: 225 MB): read straight from the decompressed buffer, one copy.
        using var scope = NewDisposeScope();
        if (MemoryMarshal.TryGetArray(RealBytes, out ArraySegment<byte> seg) && seg.Array is not null)
            return frombuffer(seg.Array, ScalarType.Byte, seg.Count, seg.Offset).reshape(shape).clone().MoveToOuterDisposeScope();
        return tensor(RealBytes.ToArray(), shape, ScalarType.Byte).MoveToOuterDisposeScope();
    }

    /// <summary>The real part converted to double, in MATLAB (column-major) order.</summary>
    public double[] ToDoubleArray()
    {
        int size = ElementSize(StorageType);
        var span = RealBytes.Span;
        long n = ElementCount;
        var result = new double[n];
        for (long i = 0; i < n; i++)
        {
            var e = span.Slice((int)(i * size), size);
            result[i] = StorageType switch
            {
                MatDataType.Int8 => (sbyte)e[0],
                MatDataType.UInt8 => e[0],
                MatDataType.Int16 => BigEndian ? BinaryPrimitives.ReadInt16BigEndian(e) : BinaryPrimitives.ReadInt16LittleEndian(e),
                MatDataType.UInt16 => BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(e) : BinaryPrimitives.ReadUInt16LittleEndian(e),
                MatDataType.Int32 => BigEndian ? BinaryPrimitives.ReadInt32BigEndian(e) : BinaryPrimitives.ReadInt32LittleEndian(e),
                MatDataType.UInt32 => BigEndian ? BinaryPrimitives.ReadUInt32BigEndian(e) : BinaryPrimitives.ReadUInt32LittleEndian(e),
                MatDataType.Int64 => BigEndian ? BinaryPrimitives.ReadInt64BigEndian(e) : BinaryPrimitives.ReadInt64LittleEndian(e),
                MatDataType.UInt64 => BigEndian ? BinaryPrimitives.ReadUInt64BigEndian(e) : BinaryPrimitives.ReadUInt64LittleEndian(e),
                MatDataType.Single => BigEndian ? BinaryPrimitives.ReadSingleBigEndian(e) : BinaryPrimitives.ReadSingleLittleEndian(e),
                MatDataType.Double => BigEndian ? BinaryPrimitives.ReadDoubleBigEndian(e) : BinaryPrimitives.ReadDoubleLittleEndian(e),
                _ => throw new InvalidOperationException($"{StorageType} is not numeric"),
            };
        }
        return result;
    }

    internal static int ElementSize(MatDataType t) => t switch
    {
        MatDataType.Int8 or MatDataType.UInt8 => 1,
        MatDataType.Int16 or MatDataType.UInt16 => 2,
        MatDataType.Int32 or MatDataType.UInt32 or MatDataType.Single => 4,
        MatDataType.Int64 or MatDataType.UInt64 or MatDataType.Double => 8,
        _ => 0,
    };

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {Class} [{string.Join("×", Dimensions)}] stored as {StorageType}";
}

/// <summary>
/// A reader for MATLAB Level 5 MAT-files (the format of <c>save -v6</c>/<c>-v7</c>, and of SVHN's
/// <c>*_32x32.mat</c>): a 128-byte header, then tagged data elements, each either an miMATRIX or an miCOMPRESSED
/// (zlib) wrapper around one. Numeric arrays (full, real or complex) are returned; cells, structs, objects, sparse and
/// char arrays are skipped. v7.3 files (HDF5) are rejected with a clear message.
/// </summary>
public static class MatFile
{
    private const int HeaderBytes = 128;

    /// <summary>
    /// Reads the numeric arrays of <paramref name="path"/>, keyed by variable name. When <paramref name="include"/>
    /// is given, other variables are decoded only as far as needed to learn their name.
    /// </summary>
    public static IReadOnlyDictionary<string, MatArray> Read(string path, Func<string, bool>? include = null)
    {
        byte[] file = DataFiles.ReadAllBytes(path, "MAT file");
        bool bigEndian = ReadHeader(path, file);
        var result = new Dictionary<string, MatArray>(StringComparer.Ordinal);
        long pos = HeaderBytes;
        while (pos < file.Length)
        {
            if (file.Length - pos < 8)
                throw new DataFormatException(path, $"truncated: {file.Length - pos} stray bytes at offset {pos}, too few for an element tag");
            var (type, nbytes, dataStart, next) = ReadTag(path, file, pos, bigEndian, "top-level element");
            if (dataStart + nbytes > file.Length)
                throw new DataFormatException(path, $"truncated: element at offset {pos} declares {nbytes} bytes but only {file.Length - dataStart} remain");
            if (type == (int)MatDataType.Compressed)
            {
                byte[] inner = Inflate(path, file, dataStart, nbytes, pos, bigEndian);
                ParseMatrixElement(path, inner, 0, bigEndian, result, include, $"compressed element at offset {pos}");
                // Compressed elements are not padded to 8 bytes (as MATLAB writes them).
                pos = dataStart + nbytes;
            }
            else
            {
                if (type == (int)MatDataType.Matrix)
                    ParseMatrixElement(path, file, pos, bigEndian, result, include, $"element at offset {pos}");
                pos = next;
            }
        }
        return result;
    }

    private static bool ReadHeader(string path, byte[] file)
    {
        if (file.Length >= 8 && file[0] == 0x89 && file[1] == (byte)'H' && file[2] == (byte)'D' && file[3] == (byte)'F')
            throw new DataFormatException(path, "this is an HDF5 file (MATLAB v7.3 MAT-file), which is not supported; save it with -v7 or -v6");
        if (file.Length < HeaderBytes)
            throw new DataFormatException(path, $"truncated: {file.Length} bytes, a MAT v5 header alone has {HeaderBytes}");
        string text = Encoding.ASCII.GetString(file, 0, 116);
        if (text.StartsWith("MATLAB 7.3", StringComparison.Ordinal))
            throw new DataFormatException(path, "MATLAB v7.3 MAT-file (HDF5) is not supported; save it with -v7 or -v6");
        char e0 = (char)file[126], e1 = (char)file[127];
        bool bigEndian;
        if (e0 == 'I' && e1 == 'M') bigEndian = false;
        else if (e0 == 'M' && e1 == 'I') bigEndian = true;
        else
            throw new DataFormatException(path, $"not a MAT v5 file: endian indicator is 0x{file[126]:X2}{file[127]:X2}, expected 'IM' or 'MI'" +
                (text.StartsWith("MATLAB", StringComparison.Ordinal) ? "" : " (no 'MATLAB' header text either)"));
        int version = bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(file.AsSpan(124)) : BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(124));
        if (version != 0x0100)
            throw new DataFormatException(path, $"unsupported MAT-file version 0x{version:X4} (expected 0x0100, Level 5)");
        return bigEndian;
    }

    /// <summary>Decodes a tag at <paramref name="pos"/>: type, byte count, data start and the next element's offset.</summary>
    private static (int Type, long NBytes, long DataStart, long Next) ReadTag(string path, byte[] buf, long pos, bool bigEndian, string where)
    {
        if (pos < 0 || pos + 8 > buf.Length)
            throw new DataFormatException(path, $"truncated: {where} needs an 8-byte tag at offset {pos} but the data ends at {buf.Length}");
        uint first = U32(buf, pos, bigEndian);
        // Small data element format: byte count in the upper 16 bits, type in the lower, data in the next 4 bytes.
        if ((first >> 16) != 0)
        {
            long small = first >> 16;
            if (small > 4)
                throw new DataFormatException(path, $"{where}: small-format element at offset {pos} claims {small} bytes (at most 4)");
            return ((int)(first & 0xFFFF), small, pos + 4, pos + 8);
        }
        long nbytes = U32(buf, pos + 4, bigEndian);
        long next = pos + 8 + ((nbytes + 7) & ~7L);
        return ((int)first, nbytes, pos + 8, next);
    }

    private static byte[] Inflate(string path, byte[] file, long start, long length, long tagPos, bool bigEndian)
    {
        string where = $"compressed element at offset {tagPos}";
        // A zlib stream is at least a 2-byte header, some deflate data and a 4-byte Adler-32.
        if (length < 7)
            throw new DataFormatException(path, $"truncated: {where} holds {length} bytes, too few for a zlib stream");
        try
        {
            using var input = new MemoryStream(file, (int)start, (int)length, writable: false);
            using var z = new ZLibStream(input, CompressionMode.Decompress);
            var tag = new byte[8];
            int got = z.ReadAtLeast(tag, 8, throwOnEndOfStream: false);
            if (got < 8)
                throw new DataFormatException(path, $"{where} ends after {got} decompressed bytes (truncated?)");
            int type = (int)U32(tag, 0, bigEndian);
            long nbytes = U32(tag, 4, bigEndian);
            if (type != (int)MatDataType.Matrix)
                throw new DataFormatException(path, $"{where} holds element type {type}, expected miMATRIX (14)");
            long total = 8 + nbytes;
            if (nbytes > DataFiles.MaxDeflateRatio * length)
                throw new DataFormatException(path, $"{where} declares an miMATRIX of {nbytes} bytes, more than its {length} compressed bytes can inflate to");
            if (total > Array.MaxLength)
                throw new DataFormatException(path, $"{where} declares {nbytes} bytes, too large");
            // Grow with the bytes that actually inflate rather than trusting the declared size up front.
            var inner = new byte[Math.Min(total, Math.Max(8, 16 * length + 65536))];
            tag.CopyTo(inner, 0);
            int filled = 8;
            while (filled < total)
            {
                if (filled == inner.Length) Array.Resize(ref inner, (int)Math.Min(2L * inner.Length, total));
                int n = z.Read(inner.AsSpan(filled));
                if (n == 0) break;
                filled += n;
            }
            if (filled < total)
                throw new DataFormatException(path, $"truncated: {where} inflates to {filled - 8} of the {nbytes} bytes its miMATRIX declares");
            if (z.ReadByte() >= 0)
                throw new DataFormatException(path, $"{where} inflates to more than the {nbytes} bytes its miMATRIX declares");
            // .NET's ZLibStream stops without complaint when the stream is cut short, so the Adler-32 in the last
            // four bytes is checked here: it covers every inflated byte.
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan((int)(start + length - 4), 4));
            uint actual = Checksums.Adler32(inner);
            if (stored != actual)
                throw new DataFormatException(path, $"{where} fails its zlib Adler-32 check (stored 0x{stored:X8}, data 0x{actual:X8}): corrupt or truncated");
            return inner;
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(path, $"{where} has corrupt or truncated zlib data ({e.Message})", e);
        }
    }

    private static void ParseMatrixElement(string path, byte[] buf, long pos, bool bigEndian, Dictionary<string, MatArray> result, Func<string, bool>? include, string where)
    {
        var (type, nbytes, start, _) = ReadTag(path, buf, pos, bigEndian, where);
        if (type != (int)MatDataType.Matrix)
            throw new DataFormatException(path, $"{where}: expected miMATRIX (14), found type {type}");
        long end = start + nbytes;
        if (end > buf.Length)
            throw new DataFormatException(path, $"truncated: {where} declares {nbytes} bytes but only {buf.Length - start} remain");
        if (nbytes == 0) return; // an empty miMATRIX is legal (an empty cell element)

        // Array flags: miUINT32, 8 bytes; class in the low byte, complex/global/logical bits in the next.
        var (ft, fn, fs, fnext) = ReadSub(path, buf, start, end, bigEndian, where, "array flags");
        if (ft != (int)MatDataType.UInt32 || fn != 8)
            throw new DataFormatException(path, $"{where}: array flags must be 8 bytes of miUINT32, found type {ft} with {fn} bytes");
        uint flags = U32(buf, fs, bigEndian);
        var cls = (MatClass)(flags & 0xFF);
        bool complex = (flags & 0x0800) != 0;

        var (dt, dn, ds, dnext) = ReadSub(path, buf, fnext, end, bigEndian, where, "dimensions");
        if (dt != (int)MatDataType.Int32 || dn % 4 != 0 || dn < 8)
            throw new DataFormatException(path, $"{where}: dimensions must be at least two miINT32 values, found type {dt} with {dn} bytes");
        var dims = new int[dn / 4];
        for (int i = 0; i < dims.Length; i++)
        {
            dims[i] = (int)U32(buf, ds + 4 * i, bigEndian);
            if (dims[i] < 0) throw new DataFormatException(path, $"{where}: negative dimension {dims[i]}");
        }

        var (nt, nn, ns, nnext) = ReadSub(path, buf, dnext, end, bigEndian, where, "array name");
        if (nt != (int)MatDataType.Int8 && nt != (int)MatDataType.UInt8 && nt != (int)MatDataType.Utf8)
            throw new DataFormatException(path, $"{where}: array name must be miINT8 text, found type {nt}");
        string name = Encoding.ASCII.GetString(buf, (int)ns, (int)nn);

        if (cls is < MatClass.Double or > MatClass.UInt64) return; // not a full numeric array: skip
        if (include is not null && !include(name)) return;

        long count = DataFiles.CheckedProduct(path, dims.Select(d => (long)d), $"variable '{name}': dimensions");
        var (rt, rn, rs, rnext) = ReadNumericPart(path, buf, nnext, end, bigEndian, where, name, "real", count, dims);
        long last = rnext;
        if (complex)
            last = ReadNumericPart(path, buf, rnext, end, bigEndian, where, name, "imaginary", count, dims).Next;
        // Numeric arrays end with their data; more bytes mean the flags or a size are wrong.
        if (end - last >= 8)
            throw new DataFormatException(path, $"variable '{name}': {end - last} unexpected bytes after its {(complex ? "imaginary" : "real")} part (array flags or sizes corrupt)");
        result[name] = new MatArray(path, name, cls, dims, (MatDataType)rt, new ReadOnlyMemory<byte>(buf, (int)rs, (int)rn), complex, bigEndian);
    }

    private static (int Type, long NBytes, long Start, long Next) ReadNumericPart(string path, byte[] buf, long pos, long end, bool bigEndian, string where, string name, string part, long count, int[] dims)
    {
        var sub = ReadSub(path, buf, pos, end, bigEndian, where, $"{part} part of '{name}'");
        int size = MatArray.ElementSize((MatDataType)sub.Type);
        if (size == 0)
            throw new DataFormatException(path, $"variable '{name}': {part} part has non-numeric element type {sub.Type}");
        if (count > long.MaxValue / size || sub.NBytes != count * size)
            throw new DataFormatException(path, $"variable '{name}': dimensions {string.Join("×", dims)} = {count} elements, but its {part} part holds {sub.NBytes} bytes of {(MatDataType)sub.Type} ({sub.NBytes / size} elements)");
        return sub;
    }

    private static (int Type, long NBytes, long Start, long Next) ReadSub(string path, byte[] buf, long pos, long end, bool bigEndian, string where, string what)
    {
        if (pos + 8 > end)
            throw new DataFormatException(path, $"truncated: {where} ends before its {what}");
        var tag = ReadTag(path, buf, pos, bigEndian, $"{where} ({what})");
        if (tag.DataStart + tag.NBytes > end)
            throw new DataFormatException(path, $"truncated: {where}: {what} declares {tag.NBytes} bytes, only {end - tag.DataStart} remain in the array");
        return tag;
    }

    private static uint U32(byte[] buf, long pos, bool bigEndian) =>
        bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(buf.AsSpan((int)pos, 4)) : BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan((int)pos, 4));
}
