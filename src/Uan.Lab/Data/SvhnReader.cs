using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// SVHN "cropped digits" (format 2): <c>train_32x32.mat</c>, <c>test_32x32.mat</c> (and <c>extra_32x32.mat</c>),
/// MAT v5 files holding X, uint8 [32, 32, 3, N] in MATLAB's column-major order (row, column, channel, image), and y,
/// [N, 1], where the digit 0 is labelled 10. Images come back as uint8 [N, 3, 32, 32] and labels 0–9. X may also be
/// stored as any other numeric MAT type, as long as its values are integers 0–255.
/// </summary>
public static class SvhnReader
{
    /// <summary>File name of a split: "train", "test" or "extra".</summary>
    public static string FileName(string split) => $"{split}_32x32.mat";

    /// <summary>Loads the training or test split from <paramref name="directory"/>.</summary>
    public static ImageDataset Load(string directory, bool train) => Load(directory, train ? "train" : "test");

    /// <summary>Loads split "train", "test" or "extra" from <paramref name="directory"/>.</summary>
    public static ImageDataset Load(string directory, string split)
    {
        DataFiles.RequireDirectory(directory, "SVHN folder");
        return LoadFile(Path.Combine(directory, FileName(split)), $"svhn/{split}");
    }

    /// <summary>Loads one SVHN .mat file.</summary>
    public static ImageDataset LoadFile(string path, string name = "svhn")
    {
        var vars = MatFile.Read(path, v => v is "X" or "y");
        if (!vars.TryGetValue("X", out var x))
            throw new DataFormatException(path, "no numeric variable 'X' (the images)");
        if (!vars.TryGetValue("y", out var y))
            throw new DataFormatException(path, "no numeric variable 'y' (the labels)");

        // MATLAB drops trailing singleton dimensions, so a file with one image has X of size 32×32×3.
        var d = x.Dimensions;
        if (!((d.Count == 4 || d.Count == 3) && d[0] == 32 && d[1] == 32 && d[2] == 3))
            throw new DataFormatException(path, $"X is {string.Join("×", d)}, expected 32×32×3×N");
        long n = d.Count == 4 ? d[3] : 1;
        if (n == 0)
            throw new DataFormatException(path, "X holds no images (empty split)");
        if (y.ElementCount != n || y.Dimensions.Count(v => v != 1) > 1)
            throw new DataFormatException(path, $"size mismatch: X holds {n} images but y is {string.Join("×", y.Dimensions)}");

        using var scope = NewDisposeScope();
        // Column-major (row h, column w, channel c, image n) read row-major is [n, c, w, h]; swap the last two.
        var images = x.ToTensor().reshape(n, 3, 32, 32).transpose(2, 3);
        if (images.dtype != ScalarType.Byte)
        {
            // MAT v5 lets X be stored as any numeric type (single, double, int8 … uint64); read them all as
            // float64 and accept only integers 0–255, the values an 8-bit image can hold.
            images = images.to(ScalarType.Float64);
            var badPixel = images.isfinite().logical_not().logical_or(images.lt(0)).logical_or(images.gt(255)).logical_or(images.ne(images.round()));
            if (badPixel.any().item<bool>())
            {
                long at = badPixel.reshape(-1).to(ScalarType.Int64).argmax().item<long>();
                double v = images.reshape(-1)[at].item<double>();
                throw new DataFormatException(path, $"X (stored as {x.StorageType}) holds {v} in image {at / 3072}; pixel values must be integers in 0–255");
            }
            images = images.to(ScalarType.Byte);
        }
        images = images.contiguous();

        var yv = y.ToTensor().reshape(n).to(ScalarType.Float64);
        var bad = yv.ne(yv.round()).logical_or(yv.lt(1)).logical_or(yv.gt(10));
        if (bad.any().item<bool>())
        {
            long at = bad.to(ScalarType.Int64).argmax().item<long>();
            throw new DataFormatException(path, $"label {yv[at].item<double>()} at index {at} is not an integer in 1–10");
        }
        var labels = yv.to(ScalarType.Int64).remainder(10); // 10 means digit 0
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), 10, name, MnistReader.DigitClassNames);
    }
}
