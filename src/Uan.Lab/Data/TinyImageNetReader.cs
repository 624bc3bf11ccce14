using SkiaSharp;
using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// Tiny ImageNet from its official <c>tiny-imagenet-200</c> folder: <c>wnids.txt</c> (one WordNet id per line; the line
/// order is the label order), optional <c>words.txt</c> (wnid, tab, names), <c>train/&lt;wnid&gt;/images/*.JPEG</c>, and
/// <c>val/images/*.JPEG</c> labelled by <c>val/val_annotations.txt</c> (file, wnid, bounding box; tab-separated).
/// JPEGs are decoded with SkiaSharp into uint8 [N, 3, 64, 64]; grayscale images are replicated to three channels.
/// The unlabelled official test split is not read.
/// </summary>
public static class TinyImageNetReader
{
    /// <summary>Side of a Tiny ImageNet image.</summary>
    public const int ImageSize = 64;

    private const int DecodeChunk = 512;

    /// <summary>
    /// Loads the training split (train/, files of each class in ordinal name order, classes in wnids.txt order) or the
    /// validation split (val/, in annotation-file order) from <paramref name="root"/>, which is the
    /// <c>tiny-imagenet-200</c> folder or its parent.
    /// </summary>
    public static ImageDataset Load(string root, bool train)
    {
        string dir = ResolveRoot(root);
        var wnids = ReadWnids(dir);
        var classIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < wnids.Count; i++) classIndex[wnids[i]] = i;
        var names = ReadClassNames(dir, wnids);

        var files = new List<string>();
        var labels = new List<long>();
        if (train)
        {
            for (int k = 0; k < wnids.Count; k++)
            {
                string imagesDir = Path.Combine(dir, "train", wnids[k], "images");
                DataFiles.RequireDirectory(imagesDir, $"Tiny ImageNet training images of class {wnids[k]}");
                foreach (string f in Directory.GetFiles(imagesDir).Where(IsJpeg).Order(StringComparer.Ordinal))
                {
                    files.Add(f);
                    labels.Add(k);
                }
            }
        }
        else
        {
            string annotations = Path.Combine(dir, "val", "val_annotations.txt");
            DataFiles.RequireFile(annotations, "Tiny ImageNet validation annotations");
            int lineNo = 0;
            foreach (string line in File.ReadLines(annotations))
            {
                lineNo++;
                if (line.Trim().Length == 0) continue;
                string[] parts = line.Split('\t');
                if (parts.Length < 2 || parts[0].Trim().Length == 0)
                    throw new DataFormatException(annotations, $"line {lineNo}: expected 'file<TAB>wnid<TAB>bbox', got '{line}'");
                string wnid = parts[1].Trim();
                if (!classIndex.TryGetValue(wnid, out int k))
                    throw new DataFormatException(annotations, $"line {lineNo}: wnid '{wnid}' is not listed in wnids.txt");
                files.Add(Path.Combine(dir, "val", "images", parts[0].Trim()));
                labels.Add(k);
            }
        }
        return new ImageDataset(DecodeImages(files), tensor(labels.ToArray(), ScalarType.Int64), wnids.Count,
            $"tiny-imagenet/{(train ? "train" : "val")}", names);
    }

    /// <summary>
    /// Decodes JPEG (or any SkiaSharp-readable) files of <see cref="ImageSize"/>² pixels into uint8 [N, 3, 64, 64].
    /// Decoding runs in parallel; pixels go from RGBA into CHW through tensor ops, a chunk of images at a time.
    /// </summary>
    public static Tensor DecodeImages(IReadOnlyList<string> files, int size = ImageSize)
    {
        ArgumentNullException.ThrowIfNull(files);
        using var scope = NewDisposeScope();
        var result = empty([files.Count, 3, size, size], ScalarType.Byte);
        int pixelBytes = size * size * 4;
        var buffer = new byte[Math.Min(DecodeChunk, Math.Max(files.Count, 1)) * pixelBytes];
        for (int start = 0; start < files.Count; start += DecodeChunk)
        {
            int count = Math.Min(DecodeChunk, files.Count - start);
            try
            {
                Parallel.For(0, count, i => DecodeInto(files[start + i], size, buffer.AsSpan(i * pixelBytes, pixelBytes)));
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                // Report the first failing file in list order, not whichever thread lost the race.
                int s0 = start;
                int Position(Exception x)
                {
                    for (int i = s0; i < s0 + count; i++)
                        if (x is DataFormatException d && d.FilePath == files[i]) return i;
                    return int.MaxValue;
                }
                var first = e.InnerExceptions.OrderBy(Position).First();
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
            }
            using var inner = NewDisposeScope();
            var rgba = frombuffer(buffer, ScalarType.Byte, (long)count * pixelBytes).reshape(count, size, size, 4);
            result.narrow(0, start, count).copy_(rgba.narrow(3, 0, 3).permute(0, 3, 1, 2));
        }
        return result.MoveToOuterDisposeScope();
    }

    private static void DecodeInto(string file, int size, Span<byte> rgba)
    {
        if (!File.Exists(file))
            throw new DataFormatException(file, "image file listed in the dataset does not exist");
        using var codec = SKCodec.Create(file)
            ?? throw new DataFormatException(file, "not a decodable image (SkiaSharp could not open it)");
        if (codec.Info.Width != size || codec.Info.Height != size)
            throw new DataFormatException(file, $"image is {codec.Info.Width}×{codec.Info.Height}, expected {size}×{size}");
        // Decoding into RGBA turns grayscale (and CMYK) JPEGs into three equal channels.
        var info = new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = SKBitmap.Decode(codec, info)
            ?? throw new DataFormatException(file, "image data could not be decoded (corrupt or truncated?)");
        var pixels = bitmap.GetPixelSpan();
        if (pixels.Length != rgba.Length)
            throw new DataFormatException(file, $"decoded to {pixels.Length} bytes, expected {rgba.Length}");
        pixels.CopyTo(rgba);
    }

    /// <summary><paramref name="root"/> itself or its <c>tiny-imagenet-200</c> child, whichever holds wnids.txt.</summary>
    public static string ResolveRoot(string root)
    {
        DataFiles.RequireDirectory(root, "Tiny ImageNet folder");
        if (File.Exists(Path.Combine(root, "wnids.txt"))) return root;
        string nested = Path.Combine(root, "tiny-imagenet-200");
        return File.Exists(Path.Combine(nested, "wnids.txt")) ? nested : root;
    }

    private static IReadOnlyList<string> ReadWnids(string dir)
    {
        string path = Path.Combine(dir, "wnids.txt");
        DataFiles.RequireFile(path, "Tiny ImageNet class list");
        var wnids = DataFiles.ReadNameList(path);
        if (wnids.Count == 0)
            throw new DataFormatException(path, "no class ids");
        var dup = wnids.GroupBy(w => w).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
            throw new DataFormatException(path, $"class id '{dup.Key}' is listed {dup.Count()} times");
        return wnids;
    }

    private static IReadOnlyList<string> ReadClassNames(string dir, IReadOnlyList<string> wnids)
    {
        string path = Path.Combine(dir, "words.txt");
        if (!File.Exists(path)) return wnids;
        var words = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in File.ReadLines(path))
        {
            int tab = line.IndexOf('\t');
            if (tab > 0) words[line[..tab].Trim()] = line[(tab + 1)..].Trim();
        }
        return wnids.Select(w => words.TryGetValue(w, out var n) && n.Length > 0 ? n : w).ToArray();
    }

    private static bool IsJpeg(string path)
    {
        string ext = Path.GetExtension(path);
        return ext.Equals(".jpeg", StringComparison.OrdinalIgnoreCase) || ext.Equals(".jpg", StringComparison.OrdinalIgnoreCase);
    }
}
