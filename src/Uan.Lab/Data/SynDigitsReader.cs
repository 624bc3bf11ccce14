using TorchSharp;
using static TorchSharp.torch;

namespace Uan.Lab.Data;

/// <summary>
/// Reads the SynDigits folder that <see cref="SynDigits.Make"/> writes (a synthetic stand-in for SVHN): IDX colour
/// images uint8 [N, 32, 32, 3] and IDX labels 0–9, returned as uint8 [N, 3, 32, 32] like <see cref="SvhnReader"/>.
/// </summary>
public static class SynDigitsReader
{
    /// <summary>Loads the training or test split from <paramref name="directory"/>.</summary>
    public static ImageDataset Load(string directory, bool train)
    {
        DataFiles.RequireDirectory(directory, "SynDigits folder");
        string split = train ? "train" : "test";
        return LoadFiles(Path.Combine(directory, SynDigits.ImagesFileName(train)),
            Path.Combine(directory, SynDigits.LabelsFileName(train)), $"{SynDigits.FolderName}/{split}");
    }

    /// <summary>Loads an image file and a label file, checking that they agree, that images are 3×32×32 and labels 0–9.</summary>
    public static ImageDataset LoadFiles(string imagesPath, string labelsPath, string name = SynDigits.FolderName)
    {
        using var scope = NewDisposeScope();
        var images = IdxFormat.ReadColorImages(imagesPath);
        const int size = SynDigitsRenderer.ImageSize;
        if (images.shape[1] != 3 || images.shape[2] != size || images.shape[3] != size)
            throw new DataFormatException(imagesPath, $"images are {images.shape[2]}×{images.shape[3]}×{images.shape[1]}, expected {size}×{size}×3");
        var labels = IdxFormat.ReadLabels(labelsPath);
        if (images.shape[0] != labels.shape[0])
            throw new DataFormatException(labelsPath, $"size mismatch: {labels.shape[0]} labels, but '{imagesPath}' holds {images.shape[0]} images");
        if (images.shape[0] == 0)
            throw new DataFormatException(imagesPath, "holds no images (empty split)");
        if (labels.shape[0] > 0 && labels.max().item<long>() > 9)
        {
            long at = labels.gt(9).to(ScalarType.Int64).argmax().item<long>();
            throw new DataFormatException(labelsPath, $"label {labels[at].item<long>()} at index {at} is outside 0–9");
        }
        return new ImageDataset(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), 10, name, MnistReader.DigitClassNames);
    }
}
