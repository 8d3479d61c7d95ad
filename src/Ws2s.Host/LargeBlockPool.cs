using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace Ws2s.Host;

/// <summary>
/// Kestrel's buffers for ws2sd's connections: 16 KiB blocks from the shared array pool, where Kestrel's own pool has
/// 4 KiB blocks. A relay's client sends messages of many KiB, and Kestrel reads a connection one block per receive,
/// so a 16 KiB message took four receives (each after a zero-byte wait for data) and now takes one. An idle connection
/// holds no block either way (Kestrel waits for data before it asks for one), and what a burst leaves in the array
/// pool is trimmed by the runtime, where Kestrel's pool gives back at most 5 % of its blocks every 10 s.
/// </summary>
internal sealed class LargeBlockPool : MemoryPool<byte>, IMemoryPoolFactory<byte>
{
    public const int BlockSize = 16 * 1024;

    public override int MaxBufferSize => BlockSize;

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => this;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1) =>
        minBufferSize > BlockSize ? throw new ArgumentOutOfRangeException(nameof(minBufferSize)) : new Block(ArrayPool<byte>.Shared.Rent(BlockSize));

    protected override void Dispose(bool disposing)
    {
    }

    private sealed class Block(byte[] array) : IMemoryOwner<byte>
    {
        private byte[]? _array = array;

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Block));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } returned) ArrayPool<byte>.Shared.Return(returned);
        }
    }
}
