using TorchSharp;
public class SmokeTests
{
    [Fact]
    public void TorchSharpLoads()
    {
        var x = torch.ones(3, 4);
        Assert.Equal(12f, x.sum().item<float>());
    }
}
