using System.Text;

namespace Ws2s.Host;

/// <summary>
/// The log file of a server started in the background (<c>ws2sd start</c>): everything the server
/// prints is appended to it, and when it grows past <see cref="MaxBytes"/> it becomes <c>.1</c>
/// (<c>.1</c> becomes <c>.2</c>, …; <see cref="Kept"/> old files are kept). It never writes through a
/// symbolic link: a linked log file is refused when opened (<see cref="LinkRefusedException"/>), old files
/// are renamed (which moves or replaces a link, never its target), and a link planted where the new file
/// goes during a rotation is removed, not followed.
/// </summary>
public sealed class RotatingLog : TextWriter
{
    public const long MaxBytes = 10 << 20;
    public const int Kept = 3;

    private readonly string _path;
    private readonly long _maxBytes;
    private FileStream _file;

    public RotatingLog(string path, long maxBytes = MaxBytes)
    {
        _path = path;
        _maxBytes = maxBytes;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _file = Open();
    }

    public override Encoding Encoding => Encoding.UTF8;

    private FileStream Open() => NoFollow.OpenAppend(_path);

    public override void Write(char value) => Write(value.ToString());

    public override void Write(string? value)
    {
        if (string.IsNullOrEmpty(value)) return;
        lock (this)
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            _file.Write(bytes);
            _file.Flush();
            if (_file.Length >= _maxBytes) Rotate();
        }
    }

    public override void WriteLine(string? value) => Write(value + Environment.NewLine);

    private void Rotate()
    {
        _file.Dispose();
        for (var i = Kept - 1; i >= 1; i--)
            if (File.Exists($"{_path}.{i}")) File.Move($"{_path}.{i}", $"{_path}.{i + 1}", overwrite: true);
        File.Move(_path, $"{_path}.1", overwrite: true);
        try
        {
            _file = Open();
        }
        catch (LinkRefusedException)
        {
            File.Delete(_path); // the link, not what it points to
            _file = Open();
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) lock (this) _file.Dispose();
        base.Dispose(disposing);
    }
}
