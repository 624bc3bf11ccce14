using System.Buffers.Binary;
using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// The IDX format of MNIST and Fashion-MNIST: a big-endian magic number (two zero bytes, a type code, the number of
/// dimensions), one big-endian int32 per dimension, then the row-major data. Only unsigned-byte data (type 0x08) is
/// used by these datasets: magic 2051 for images [N, H, W], 2049 for labels [N]; colour images are stored as
/// [N, H, W, C] with magic 2052 (ubyte, 4 dimensions). Files may be raw or gzip-compressed.
/// </summary>
public static class IdxFormat
{
    /// <summary>Magic number of an IDX image file (ubyte, 3 dimensions).</summary>
    public const int ImagesMagic = 0x0803;

    /// <summary>Magic number of an IDX label file (ubyte, 1 dimension).</summary>
    public const int LabelsMagic = 0x0801;

    /// <summary>Magic number of an IDX colour image file (ubyte, 4 dimensions: N, H, W, C).</summary>
    public const int ColorImagesMagic = 0x0804;

    /// <summary>Reads an IDX image file as uint8 [N, 1, H, W].</summary>
    public static Tensor ReadImages(string path)
    {
        var (dims, data, offset) = Read(path, ImagesMagic, "IDX image file");
        RequirePixels(path, dims);
        using var scope = NewDisposeScope();
        var t = FromBytes(data, offset, dims[0] * dims[1] * dims[2]).reshape(dims[0], 1, dims[1], dims[2]);
        return t.MoveToOuterDisposeScope();
    }

    /// <summary>Reads an IDX colour image file (pixels [N, H, W, C], channels last) as uint8 [N, C, H, W].</summary>
    public static Tensor ReadColorImages(string path)
    {
        var (dims, data, offset) = Read(path, ColorImagesMagic, "IDX colour image file");
        RequirePixels(path, dims);
        using var scope = NewDisposeScope();
        var t = FromBytes(data, offset, dims[0] * dims[1] * dims[2] * dims[3])
            .reshape(dims[0], dims[1], dims[2], dims[3]).permute(0, 3, 1, 2).contiguous();
        return t.MoveToOuterDisposeScope();
    }

    /// <summary>Reads an IDX label file as int64 [N].</summary>
    public static Tensor ReadLabels(string path)
    {
        var (dims, data, offset) = Read(path, LabelsMagic, "IDX label file");
        using var scope = NewDisposeScope();
        return FromBytes(data, offset, dims[0]).to(ScalarType.Int64).MoveToOuterDisposeScope();
    }

    /// <summary>Writes uint8 images [N, 1, H, W] or [N, H, W] as an IDX image file (gzip when the name ends in .gz).</summary>
    public static void WriteImages(string path, Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dtype != ScalarType.Byte || !(images.dim() == 3 || (images.dim() == 4 && images.shape[1] == 1)))
            throw new ArgumentException($"expected uint8 [N, 1, H, W] or [N, H, W], got {images.dtype} [{string.Join(", ", images.shape)}]", nameof(images));
        long n = images.shape[0], h = images.shape[^2], w = images.shape[^1];
        Write(path, ImagesMagic, [n, h, w], images);
    }

    /// <summary>
    /// Writes uint8 images [N, C, H, W] as an IDX colour image file, channels last as the format's other readers
    /// (NumPy, MATLAB) expect an image array to be (gzip when the name ends in .gz).
    /// </summary>
    public static void WriteColorImages(string path, Tensor images)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (images.dtype != ScalarType.Byte || images.dim() != 4)
            throw new ArgumentException($"expected uint8 [N, C, H, W], got {images.dtype} [{string.Join(", ", images.shape)}]", nameof(images));
        using var scope = NewDisposeScope();
        var hwc = images.permute(0, 2, 3, 1).contiguous();
        Write(path, ColorImagesMagic, hwc.shape, hwc);
    }

    /// <summary>Writes labels [N] (any integer dtype, values 0–255) as an IDX label file (gzip when the name ends in .gz).</summary>
    public static void WriteLabels(string path, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        if (labels.dim() != 1)
            throw new ArgumentException("labels must be 1-D", nameof(labels));
        using var scope = NewDisposeScope();
        if (labels.shape[0] > 0 && (labels.min().item<long>() < 0 || labels.max().item<long>() > 255))
            throw new ArgumentException("IDX ubyte labels must lie in 0–255", nameof(labels));
        Write(path, LabelsMagic, [labels.shape[0]], labels.to(ScalarType.Byte));
    }

    /// <summary>The uncompressed bytes an IDX file with this header and data would hold (used for content hashes).</summary>
    public static byte[] Encode(int magic, long[] dims, Tensor uint8Data)
    {
        using var scope = NewDisposeScope();
        var flat = uint8Data.contiguous().reshape(-1);
        long count = dims.Aggregate(1L, (a, b) => a * b);
        if (flat.shape[0] != count)
            throw new ArgumentException($"data has {flat.shape[0]} elements, dims say {count}");
        var bytes = new byte[4 + 4 * dims.Length + count];
        BinaryPrimitives.WriteInt32BigEndian(bytes, magic);
        for (int i = 0; i < dims.Length; i++)
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(4 + 4 * i), checked((int)dims[i]));
        flat.bytes.CopyTo(bytes.AsSpan(4 + 4 * dims.Length));
        return bytes;
    }

    private static void Write(string path, int magic, long[] dims, Tensor data) =>
        DataFiles.WriteAllBytesMaybeGzip(path, Encode(magic, dims, data));

    private static void RequirePixels(string path, long[] dims)
    {
        if (dims.Skip(1).Any(d => d == 0))
            throw new DataFormatException(path, $"images of size {string.Join(" × ", dims.Skip(1))} hold no pixels");
    }

    private static Tensor FromBytes(byte[] data, int offset, long count) =>
        count == 0 ? empty(0, ScalarType.Byte) : frombuffer(data, ScalarType.Byte, count, offset).clone();

    private static (long[] Dims, byte[] Data, int Offset) Read(string path, int expectedMagic, string what)
    {
        // Header first, body after: the body's size is checked against what the file can hold before any of it is
        // read, and a gzip body is inflated only up to the size the header declares.
        using var input = ContentReader.Open(path, what);
        int expectedDims = expectedMagic & 0xFF;
        if (input.Fill(4) < 4)
            throw new DataFormatException(path, $"truncated: {input.Length} bytes, too short for an IDX header");
        byte[] data = input.Buffer;
        int magic = BinaryPrimitives.ReadInt32BigEndian(data);
        if (magic != expectedMagic)
        {
            string hint = magic switch
            {
                ImagesMagic => " (this is an IDX image file)",
                LabelsMagic => " (this is an IDX label file)",
                _ when (magic & ~0xFFFF) != 0 => " (not an IDX file)",
                _ => $" (IDX type 0x{(magic >> 8) & 0xFF:X2} with {magic & 0xFF} dimensions)",
            };
            throw new DataFormatException(path, $"wrong magic number {magic} (0x{magic:X8}); an {what} has {expectedMagic} (0x{expectedMagic:X8}){hint}");
        }
        int header = 4 + 4 * expectedDims;
        if (input.Fill(header) < header)
            throw new DataFormatException(path, $"truncated: {input.Length} bytes, the IDX header needs {header}");
        data = input.Buffer;
        var dims = new long[expectedDims];
        for (int i = 0; i < expectedDims; i++)
        {
            int d = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4 + 4 * i));
            if (d < 0)
                throw new DataFormatException(path, $"dimension {i} is negative ({d})");
            dims[i] = d;
        }
        string shape = string.Join(" × ", dims);
        long count = DataFiles.CheckedProduct(path, dims, "dimensions");
        long available = input.MaxContentLength - header;
        if (count > available)
            throw new DataFormatException(path, input.Compressed
                ? $"truncated: header declares {shape} = {count} data bytes, more than a {input.FileLength}-byte gzip file can inflate to"
                : $"truncated: header declares {shape} = {count} data bytes but only {available} follow");
        long total = header + count;
        if (input.Fill(total) < total)
            throw new DataFormatException(path, $"truncated: header declares {shape} = {count} data bytes but only {input.Length - header} follow");
        if (!input.AtEnd())
            throw new DataFormatException(path, input.Compressed
                ? $"size mismatch: header declares {shape} = {count} data bytes but more follow"
                : $"size mismatch: header declares {shape} = {count} data bytes but {input.FileLength - header} follow");
        input.VerifyTrailer();
        return (dims, input.Buffer, header);
    }
}
