using TorchSharp;
using Uan.Lab.Training;

namespace Uan.Lab.Tests.Training;

public sealed class DevicesTests
{
    [Theory]
    [InlineData("cpu")]
    [InlineData(" CPU ")]
    public void CpuIsAlwaysThere(string text) => Assert.Equal(DeviceType.CPU, Devices.Resolve(text).type);

    [Theory]
    [InlineData("tpu", "device 'tpu' is unknown; accepted: cpu, cuda, cuda:N")]
    [InlineData("cuda:x", "device 'cuda:x': expected cuda or cuda:N")]
    [InlineData("cuda:-1", "device 'cuda:-1': expected cuda or cuda:N")]
    public void OtherNamesAreRefused(string text, string expected) =>
        Assert.StartsWith(expected, Assert.Throws<ArgumentException>(() => Devices.Resolve(text)).Message);

    [Fact]
    public void ACudaDeviceThisMachineLacksIsRefusedBeforeAnyTensorMoves()
    {
        int count = torch.cuda.is_available() ? torch.cuda.device_count() : 0;
        var e = Assert.Throws<ArgumentException>(() => Devices.Resolve($"cuda:{count}", "--device"));
        Assert.StartsWith($"--device 'cuda:{count}' is not available", e.Message);
        if (count == 0) Assert.Throws<ArgumentException>(() => Devices.Resolve("cuda"));
    }
}
