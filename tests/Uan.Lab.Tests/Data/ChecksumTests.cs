using Uan.Lab.Data;

namespace Uan.Lab.Tests.Data;

/// <summary>The readers' own CRC-32 and Adler-32 against published values and the definition.</summary>
public class ChecksumTests
{
    [Fact]
    public void Crc32AndAdler32MatchTheirPublishedCheckValues()
    {
        // The CRC-32 check value of "123456789" (the CRC catalogue); Adler-32 of "Wikipedia", the usual example.
        Assert.Equal(0xCBF43926u, Checksums.Crc32("123456789"u8));
        Assert.Equal(0x11E60398u, Checksums.Adler32("Wikipedia"u8));
        Assert.Equal(0u, Checksums.Crc32([]));
        Assert.Equal(1u, Checksums.Adler32([]));
    }

    [Fact]
    public void Adler32OfLongRunsMatchesTheDefinition()
    {
        // All-0xFF data pushes the sums hardest between reductions; compare with the definition reduced every byte.
        var data = new byte[100_000];
        Array.Fill(data, (byte)0xFF);
        new Random(9).NextBytes(data.AsSpan(50_000));
        uint a = 1, b = 0;
        foreach (byte x in data)
        {
            a = (a + x) % 65521;
            b = (b + a) % 65521;
        }
        Assert.Equal((b << 16) | a, Checksums.Adler32(data));
    }
}
