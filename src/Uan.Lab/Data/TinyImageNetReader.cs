using System.Globalization;
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
                string what = $"Tiny ImageNet training images of class {wnids[k]}";
                DataFiles.RequireDirectory(imagesDir, what);
                string[] images;
                try
                {
                    images = Directory.GetFiles(imagesDir).Where(IsJpeg).Order(StringComparer.Ordinal).ToArray();
                }
                catch (Exception e) when (e is UnauthorizedAccessException or IOException)
                {
                    throw DataFiles.CannotRead(imagesDir, $"folder of {what}", e);
                }
                // A class without images would still count in the label space and skew every per-class figure.
                if (images.Length == 0)
                    throw new DataFormatException(imagesDir, $"no .JPEG files: class {wnids[k]} has no training images");
                foreach (string f in images)
                {
                    files.Add(f);
                    labels.Add(k);
                }
            }
        }
        else
        {
            string annotations = Path.Combine(dir, "val", "val_annotations.txt");
            string imagesDir = Path.Combine(dir, "val", "images");
            string inside = Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir)) + Path.DirectorySeparatorChar;
            var listed = new Dictionary<string, int>(StringComparer.Ordinal);
            int lineNo = 0;
            foreach (string line in DataFiles.ReadLines(annotations, "Tiny ImageNet validation annotations"))
            {
                lineNo++;
                if (line.Trim().Length == 0) continue;
                string[] parts = line.Split('\t');
                // Exactly six fields with an integer box: a lost line break or a damaged field must not merge or
                // drop entries silently.
                if (parts.Length != 6 || parts[0].Trim().Length == 0
                    || !parts[2..].All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                    throw new DataFormatException(annotations, $"line {lineNo}: expected 'file<TAB>wnid<TAB>x0<TAB>y0<TAB>x1<TAB>y1', got '{line}'");
                string wnid = parts[1].Trim();
                if (!classIndex.TryGetValue(wnid, out int k))
                    throw new DataFormatException(annotations, $"line {lineNo}: wnid '{wnid}' is not listed in wnids.txt");
                string image = InsideDataset(annotations, lineNo, imagesDir, parts[0].Trim(), inside);
                // Checked here, before the pixel tensor for all entries is allocated: each entry must be a distinct
                // image that exists, so the allocation follows the images present, not the length of the list.
                if (!listed.TryAdd(image, lineNo))
                    throw new DataFormatException(annotations, $"line {lineNo}: image '{parts[0].Trim()}' is already listed on line {listed[image]}");
                if (!Path.Exists(image))
                    throw new DataFormatException(image, $"image file listed on line {lineNo} of {annotations} does not exist");
                files.Add(image);
                labels.Add(k);
            }
            // An empty validation split would let a run "finish" with NaN test metrics.
            if (files.Count == 0)
                throw new DataFormatException(annotations, "no annotated images (empty validation split)");
        }
        return new ImageDataset(DecodeImages(files), tensor(labels.ToArray(), ScalarType.Int64), wnids.Count,
            $"tiny-imagenet/{(train ? "train" : "val")}", names);
    }

    /// <summary>
    /// The full path of an annotated image, refused unless it lies inside the dataset folder: an annotation file
    /// must not make the reader open files elsewhere ("../../x", "/etc/x").
    /// </summary>
    private static string InsideDataset(string annotations, int lineNo, string imagesDir, string file, string inside)
    {
        string full;
        try
        {
            full = Path.GetFullPath(Path.Combine(imagesDir, file));
        }
        catch (ArgumentException)
        {
            throw new DataFormatException(annotations, $"line {lineNo}: '{file}' is not a valid file name");
        }
        if (!full.StartsWith(inside, StringComparison.Ordinal))
            throw new DataFormatException(annotations, $"line {lineNo}: image path '{file}' leads outside the dataset folder");
        return full;
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
        if (!Path.Exists(file))
            throw new DataFormatException(file, "image file listed in the dataset does not exist");
        // Read the bytes here rather than let SkiaSharp open the file, which reports an unreadable file as
        // undecodable; and a JPEG's end can be checked only on the bytes.
        byte[] bytes = DataFiles.ReadAllBytes(file, "image");
        if (bytes.Length == 0)
            throw new DataFormatException(file, "empty image file");
        if (IsTruncatedJpeg(bytes))
            throw new DataFormatException(file, "truncated JPEG: no end-of-image marker (FF D9) at the end of the file");
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data)
            ?? throw new DataFormatException(file, "not a decodable image (SkiaSharp could not open it)");
        if (codec.Info.Width != size || codec.Info.Height != size)
            throw new DataFormatException(file, $"image is {codec.Info.Width}×{codec.Info.Height}, expected {size}×{size}");
        // Decoding into RGBA turns grayscale (and CMYK) JPEGs into three equal channels.
        var info = new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        using var bitmap = new SKBitmap(info);
        // SKBitmap.Decode returns a bitmap even when the data stop early (the missing rows stay black); the codec's
        // own result says whether every row was decoded.
        var result = codec.GetPixels(info, bitmap.GetPixels());
        if (result != SKCodecResult.Success)
            throw new DataFormatException(file, result == SKCodecResult.IncompleteInput
                ? "truncated image data: the decoder ran out of input before the last row"
                : $"image data could not be decoded ({result})");
        var pixels = bitmap.GetPixelSpan();
        if (pixels.Length != rgba.Length)
            throw new DataFormatException(file, $"decoded to {pixels.Length} bytes, expected {rgba.Length}");
        pixels.CopyTo(rgba);
    }

    /// <summary><paramref name="root"/> itself or its <c>tiny-imagenet-200</c> child, whichever holds wnids.txt.</summary>
    public static string ResolveRoot(string root)
    {
        DataFiles.RequireDirectory(root, "Tiny ImageNet folder");
        if (Path.Exists(Path.Combine(root, "wnids.txt"))) return root;
        string nested = Path.Combine(root, "tiny-imagenet-200");
        return Path.Exists(Path.Combine(nested, "wnids.txt")) ? nested : root;
    }

    private static IReadOnlyList<string> ReadWnids(string dir)
    {
        string path = Path.Combine(dir, "wnids.txt");
        var wnids = DataFiles.ReadNameList(path, "Tiny ImageNet class list");
        if (wnids.Count == 0)
            throw new DataFormatException(path, "no class ids");
        var dup = wnids.GroupBy(w => w).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null)
            throw new DataFormatException(path, $"class id '{dup.Key}' is listed {dup.Count()} times");
        // A class id names a folder under train/: one with a separator or "..", would lead elsewhere.
        string? bad = wnids.FirstOrDefault(w => w is "." or ".." || w.IndexOfAny(['/', '\\', '\0']) >= 0);
        if (bad is not null)
            throw new DataFormatException(path, $"class id '{bad}' is not a plain folder name");
        return wnids;
    }

    private static IReadOnlyList<string> ReadClassNames(string dir, IReadOnlyList<string> wnids)
    {
        string path = Path.Combine(dir, "words.txt");
        if (!Path.Exists(path)) return wnids;
        var words = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string line in DataFiles.ReadLines(path, "Tiny ImageNet class names"))
        {
            int tab = line.IndexOf('\t');
            if (tab > 0) words[line[..tab].Trim()] = line[(tab + 1)..].Trim();
        }
        return wnids.Select(w => words.TryGetValue(w, out var n) && n.Length > 0 ? n : w).ToArray();
    }

    /// <summary>
    /// True for a JPEG (starts with SOI, FF D8) whose last bytes, ignoring zero padding, are not EOI (FF D9). Inside
    /// entropy-coded data an FF byte is always followed by 00 or a restart marker, so a cut file cannot end in FF D9
    /// by chance.
    /// </summary>
    private static bool IsTruncatedJpeg(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length < 2 || bytes[0] != 0xFF || bytes[1] != 0xD8) return false;
        int end = bytes.Length;
        while (end > 2 && bytes[end - 1] == 0) end--;
        return end < 4 || bytes[end - 2] != 0xFF || bytes[end - 1] != 0xD9;
    }

    private static bool IsJpeg(string path)
    {
        string ext = Path.GetExtension(path);
        return ext.Equals(".jpeg", StringComparison.OrdinalIgnoreCase) || ext.Equals(".jpg", StringComparison.OrdinalIgnoreCase);
    }
}
