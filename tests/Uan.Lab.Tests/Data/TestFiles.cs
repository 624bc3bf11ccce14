using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using SkiaSharp;

namespace Uan.Lab.Tests.Data;

/// <summary>A temporary folder deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "uan-lab-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// Writers for the official file formats, written byte by byte from the format descriptions and independent of the
/// library's own code, so a reader test checks the reader against the format rather than against itself.
/// </summary>
public static class TestFiles
{
    public static void Write(string path, byte[] bytes, bool gzip = false)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        if (!gzip) { System.IO.File.WriteAllBytes(path, bytes); return; }
        using var f = System.IO.File.Create(path);
        using var gz = new GZipStream(f, CompressionLevel.Optimal);
        gz.Write(bytes);
    }

    /// <summary>IDX: big-endian magic 0x00000803, N, H, W, then N·H·W pixel bytes (row-major).</summary>
    public static byte[] IdxImages(int n, int h, int w, Func<int, int, int, byte> pixel)
    {
        var b = new byte[16 + n * h * w];
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(0), 2051);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), n);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(8), h);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(12), w);
        for (int i = 0; i < n; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    b[16 + i * h * w + y * w + x] = pixel(i, y, x);
        return b;
    }

    /// <summary>IDX: big-endian magic 0x00000801, N, then N label bytes.</summary>
    public static byte[] IdxLabels(params byte[] labels)
    {
        var b = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(0), 2049);
        BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), labels.Length);
        labels.CopyTo(b, 8);
        return b;
    }

    /// <summary>
    /// CIFAR records: <paramref name="labelBytes"/> label bytes, then 1024 R, 1024 G, 1024 B bytes (rows of 32).
    /// pixel(n, c, h, w).
    /// </summary>
    public static byte[] CifarRecords(int n, Func<int, byte[]> labels, Func<int, int, int, int, byte> pixel)
    {
        int labelBytes = labels(0).Length;
        int rec = labelBytes + 3072;
        var b = new byte[n * rec];
        for (int i = 0; i < n; i++)
        {
            labels(i).CopyTo(b, i * rec);
            for (int c = 0; c < 3; c++)
                for (int h = 0; h < 32; h++)
                    for (int w = 0; w < 32; w++)
                        b[i * rec + labelBytes + c * 1024 + h * 32 + w] = pixel(i, c, h, w);
        }
        return b;
    }

    // ---- MAT v5 -------------------------------------------------------------------------------------------------

    public const int MiInt8 = 1, MiUInt8 = 2, MiInt32 = 5, MiUInt32 = 6, MiDouble = 9, MiMatrix = 14, MiCompressed = 15;
    public const int MxDouble = 6, MxUInt8 = 9, MxCell = 1;

    /// <summary>A variable for <see cref="MatV5"/>: class, MATLAB dims, element type and raw little-endian data.</summary>
    public sealed record MatVar(string Name, int MxClass, int[] Dims, int MiType, byte[] Data);

    /// <summary>A little-endian Level 5 MAT-file; each variable in an miCOMPRESSED element when compress is set.</summary>
    public static byte[] MatV5(bool compress, params MatVar[] vars)
    {
        using var ms = new MemoryStream();
        var header = Encoding.ASCII.GetBytes("MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024".PadRight(116));
        ms.Write(header);
        ms.Write(new byte[8]);                       // subsystem data offset
        ms.Write([0x00, 0x01]);                      // version 0x0100, little-endian
        ms.Write("IM"u8);                             // endian indicator: 'MI' written as an int16 on a little-endian machine
        foreach (var v in vars)
        {
            byte[] matrix = MatrixElement(v);
            if (!compress) { ms.Write(matrix); continue; }
            using var zbuf = new MemoryStream();
            using (var z = new ZLibStream(zbuf, CompressionLevel.Optimal, leaveOpen: true)) z.Write(matrix);
            byte[] compressed = zbuf.ToArray();
            ms.Write(Tag(MiCompressed, compressed.Length));
            ms.Write(compressed);                    // no padding after compressed elements
        }
        return ms.ToArray();
    }

    /// <summary>An miMATRIX element: array flags, dimensions, name (small format when ≤ 4 chars), real part.</summary>
    public static byte[] MatrixElement(MatVar v)
    {
        using var p = new MemoryStream();
        p.Write(Tag(MiUInt32, 8));
        p.Write(U32((uint)v.MxClass));
        p.Write(U32(0));
        var dims = new byte[4 * v.Dims.Length];
        for (int i = 0; i < v.Dims.Length; i++) BinaryPrimitives.WriteInt32LittleEndian(dims.AsSpan(4 * i), v.Dims[i]);
        WriteElement(p, MiInt32, dims);
        byte[] name = Encoding.ASCII.GetBytes(v.Name);
        if (name.Length <= 4)
        {
            p.Write(U32((uint)(name.Length << 16 | MiInt8)));
            var four = new byte[4];
            name.CopyTo(four, 0);
            p.Write(four);
        }
        else WriteElement(p, MiInt8, name);
        WriteElement(p, v.MiType, v.Data);
        byte[] payload = p.ToArray();
        using var m = new MemoryStream();
        m.Write(Tag(MiMatrix, payload.Length));
        m.Write(payload);
        return m.ToArray();
    }

    private static void WriteElement(Stream s, int type, byte[] data)
    {
        s.Write(Tag(type, data.Length));
        s.Write(data);
        int pad = (8 - data.Length % 8) % 8;
        s.Write(new byte[pad]);
    }

    private static byte[] Tag(int type, int nbytes) => [.. U32((uint)type), .. U32((uint)nbytes)];

    private static byte[] U32(uint v)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        return b;
    }

    /// <summary>The test pattern of SVHN's X(i, j, k, n): row i, column j, channel k, image n (0-based).</summary>
    public static byte SvhnPixel(int i, int j, int k, int n) => (byte)((i + 3 * j + 50 * k + 7 * n) % 256);

    /// <summary><see cref="SvhnPixel"/> for n images as MATLAB stores X: column-major, the row index varying fastest.</summary>
    public static byte[] SvhnColumnMajorX(int n)
    {
        var b = new byte[32 * 32 * 3 * n];
        for (int img = 0; img < n; img++)
            for (int k = 0; k < 3; k++)
                for (int j = 0; j < 32; j++)
                    for (int i = 0; i < 32; i++)
                        b[i + 32 * j + 1024 * k + 3072 * img] = SvhnPixel(i, j, k, img);
        return b;
    }

    public static byte[] Doubles(params double[] values)
    {
        var b = new byte[8 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(8 * i), values[i]);
        return b;
    }

    // ---- JPEG ---------------------------------------------------------------------------------------------------

    /// <summary>Encodes a 64×64 image whose four 32×32 quadrants have the given colours (TL, TR, BL, BR), quality 100.</summary>
    public static void QuadrantJpeg(string path, SKColor tl, SKColor tr, SKColor bl, SKColor br, bool gray = false)
    {
        var info = new SKImageInfo(64, 64, gray ? SKColorType.Gray8 : SKColorType.Rgba8888, gray ? SKAlphaType.Opaque : SKAlphaType.Premul);
        using var bmp = new SKBitmap(info);
        using (var canvas = new SKCanvas(bmp))
        {
            void Fill(int x, int y, SKColor c)
            {
                using var paint = new SKPaint { Color = c, IsAntialias = false };
                canvas.DrawRect(new SKRect(x, y, x + 32, y + 32), paint);
            }
            Fill(0, 0, tl);
            Fill(32, 0, tr);
            Fill(0, 32, bl);
            Fill(32, 32, br);
        }
        using var image = SKImage.FromBitmap(bmp);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 100);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        System.IO.File.WriteAllBytes(path, data.ToArray());
    }
}

public static class TensorAssertions
{
    /// <summary>Same shape and every element equal (TorchSharp's Tensor.equal is element-wise).</summary>
    public static bool SameAs(this TorchSharp.torch.Tensor a, TorchSharp.torch.Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape)) return false;
        using var eq = a.eq(b);
        using var all = eq.all();
        return all.item<bool>();
    }
}
