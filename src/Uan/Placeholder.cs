namespace Uan;
internal static class Placeholder { }
