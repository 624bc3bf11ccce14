using ScottPlot;
using SkiaSharp;

namespace Uan.Lab.Reporting;

/// <summary>
/// Draws several ScottPlot plots as one PNG: a grid of equally sized panels under an optional title. Each panel is
/// rendered on its own and pasted, which keeps every plot's own axes and legend as ScottPlot lays them out.
/// </summary>
public static class PanelGrid
{
    /// <summary>
    /// Renders <paramref name="panels"/> (row-major, nulls left blank) in <paramref name="columns"/> columns, each
    /// <paramref name="panelWidth"/>×<paramref name="panelHeight"/> pixels, and returns the PNG bytes.
    /// </summary>
    public static byte[] Render(IReadOnlyList<Plot?> panels, int columns, int panelWidth, int panelHeight, string? title = null)
    {
        if (columns < 1) throw new ArgumentOutOfRangeException(nameof(columns), columns, "must be ≥ 1");
        if (panels.Count == 0) throw new ArgumentException("no panels to draw", nameof(panels));
        int rows = (panels.Count + columns - 1) / columns;
        int top = string.IsNullOrEmpty(title) ? 0 : 40;
        using var surface = SKSurface.Create(new SKImageInfo(columns * panelWidth, top + rows * panelHeight))
                            ?? throw new InvalidOperationException("could not allocate the image");
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        if (top > 0)
        {
            using var font = new SKFont(SKTypeface.Default, 22);
            // A title wider than the image would be cut at both edges: shrink it to fit, with a margin.
            float width = columns * panelWidth, room = width - 20;
            float measured = font.MeasureText(title!);
            if (measured > room) font.Size = Math.Max(8, font.Size * room / measured);
            using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            canvas.DrawText(title!, width / 2f, 28, SKTextAlign.Center, font, paint);
        }
        for (int i = 0; i < panels.Count; i++)
        {
            if (panels[i] is not Plot plot) continue;
            var png = plot.GetImage(panelWidth, panelHeight).GetImageBytes(ImageFormat.Png);
            using var bitmap = SKBitmap.Decode(png);
            canvas.DrawBitmap(bitmap, i % columns * panelWidth, top + i / columns * panelHeight);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    /// <summary>Writes <paramref name="bytes"/> via a temporary file and a rename so a viewer never reads half an image.</summary>
    public static void Save(string path, byte[] bytes)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null) Directory.CreateDirectory(dir);
        AtomicFile.WriteAllBytes(path, bytes);
    }

    /// <summary>A file-system-safe form of a label (invalid characters and spaces become '-').</summary>
    public static string FileSafe(string name) =>
        // The same names on every OS: Path.GetInvalidFileNameChars() is only '/' and NUL on Linux, so a label such
        // as "uan:k=3" made a file Windows cannot hold. Letters, digits and - _ . = , + stay; the rest becomes '-'.
        new(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '=' or ',' or '+' ? c : '-').ToArray());
}
