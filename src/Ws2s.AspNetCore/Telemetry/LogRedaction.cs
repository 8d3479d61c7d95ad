using System.Text.RegularExpressions;

namespace Ws2s.AspNetCore.Telemetry;

/// <summary>
/// Keeps secrets out of every log line, at every level, from every category (ws2s's own, Kestrel's,
/// the hosting diagnostics that print request URLs), and keeps every event on one line: each logger
/// provider is wrapped so that the message, the structured state (JSON logs write it field by field)
/// and exception texts pass through <see cref="Redact"/>. What it removes: every query string (a URL's
/// <c>?…</c>, whatever its keys are called or however they are percent-encoded), anything shaped like
/// a JWT, any <c>token=</c>/<c>password=</c> value, any <c>token.…</c> subprotocol entry, private key
/// blocks, and the configured tokens wherever they appear. Line breaks and other control characters in
/// a message or a field (a token's <c>sub</c>, a client's words) are written as escapes, so no value can
/// start a line of its own that looks like the server's.
/// </summary>
internal static partial class LogRedaction
{
    private const string Hidden = "***";

    [GeneratedRegex(@"(?<=(?:^|[?&;\s""'(/])(?:token|access_token|password)=)[^&\s""',;)]+", RegexOptions.IgnoreCase)]
    private static partial Regex QueryToken();

    [GeneratedRegex(@"(?<=(?:^|[\s,""':=\[])token\.)[^\s,""';\]]+", RegexOptions.IgnoreCase)]
    private static partial Regex SubProtocolToken();

    [GeneratedRegex(@"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", RegexOptions.Singleline)]
    private static partial Regex PrivateKey();

    /// <summary>
    /// A query string: a <c>?</c> at the start or right after a path character, up to white space or a quote — two
    /// characters at least, so the punctuation after a question in words (<c>did you mean 'x'?;</c>) is left alone.
    /// </summary>
    [GeneratedRegex(@"(?<=(?:^|\S)\?)[^\s""'<>]{2,}")]
    private static partial Regex QueryString();

    /// <summary>A JWT (or any JWS in compact form): base64url header starting <c>{"</c>, a dot, payload, a dot, signature.</summary>
    [GeneratedRegex(@"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")]
    private static partial Regex CompactJws();

    /// <summary>Marks a service collection whose logger providers are wrapped already.</summary>
    private sealed class Applied;

    /// <summary>Wraps every logger provider registered so far (call after the providers are added).</summary>
    public static void Apply(IServiceCollection services, Func<IServiceProvider, IReadOnlyCollection<string>> secrets)
    {
        if (services.Any(d => d.ServiceType == typeof(Applied))) return; // wrapped once, not twice
        services.AddSingleton<Applied>();
        var providers = services.Where(d => d.ServiceType == typeof(ILoggerProvider)).ToList();
        foreach (var descriptor in providers)
        {
            services.Remove(descriptor);
            services.AddSingleton<ILoggerProvider>(sp => new RedactingProvider(Create(sp, descriptor), secrets(sp)));
        }
    }

    private static ILoggerProvider Create(IServiceProvider services, ServiceDescriptor descriptor) =>
        (ILoggerProvider)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(services)
            ?? ActivatorUtilities.CreateInstance(services, descriptor.ImplementationType!));

    /// <summary>The text with every secret it recognises replaced by <c>***</c> (line breaks kept: see <see cref="OneLine"/>).</summary>
    public static string Redact(string text, IReadOnlyCollection<string> secrets)
    {
        if (text.Length == 0) return text;
        // Longest first, so a token that contains another is not half revealed; in the text as written, then as decoded.
        foreach (var secret in secrets.OrderByDescending(s => s.Length))
            if (secret.Length > 0) text = text.Replace(secret, Hidden, StringComparison.Ordinal);
        // Percent-encoding hides nothing: what a server would decode is what is matched.
        if (text.Contains('%')) text = Unescape(text);
        foreach (var secret in secrets.OrderByDescending(s => s.Length))
            if (secret.Length > 0) text = text.Replace(secret, Hidden, StringComparison.Ordinal);
        if (text.Contains('?')) text = QueryString().Replace(text, Hidden);
        if (text.Contains("eyJ", StringComparison.Ordinal)) text = CompactJws().Replace(text, Hidden);
        if (text.Contains('=')) text = QueryToken().Replace(text, Hidden);
        if (text.Contains("token.", StringComparison.OrdinalIgnoreCase)) text = SubProtocolToken().Replace(text, Hidden);
        if (text.Contains("PRIVATE KEY", StringComparison.Ordinal)) text = PrivateKey().Replace(text, "[private key]");
        return text;
    }

    /// <summary>
    /// Percent-escapes of the characters a token or a query key is spelt with (letters, digits and URL
    /// punctuation) decoded, as many times as it takes (<c>%2574</c> too). Escapes of white space, quotes,
    /// angle brackets and control characters stay as they are: decoding them would end a match early or
    /// start a new line.
    /// </summary>
    private static string Unescape(string text)
    {
        for (var i = 0; i < 3 && text.Contains('%'); i++)
        {
            var decoded = Escape().Replace(text, m =>
            {
                var c = (char)Convert.ToInt32(m.Groups[1].Value, 16);
                return char.IsAsciiLetterOrDigit(c) || "-._~!$&()*+,;=:@/?#[]%".Contains(c) ? c.ToString() : m.Value;
            });
            if (decoded == text) break;
            text = decoded;
        }
        return text;
    }

    [GeneratedRegex("%([0-9A-Fa-f]{2})")]
    private static partial Regex Escape();

    /// <summary>
    /// The text with line breaks and other control or separator characters written as escapes
    /// (<c>\n</c>, <c>\r</c>, <c>\t</c>, <c>\u2028</c>…), so one event is one line.
    /// </summary>
    public static string OneLine(string text)
    {
        var clean = true;
        foreach (var c in text)
            if (IsLineBreaking(c))
            {
                clean = false;
                break;
            }
        if (clean) return text;
        var builder = new System.Text.StringBuilder(text.Length + 16);
        foreach (var c in text)
            builder.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when IsLineBreaking(c) => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        return builder.ToString();
    }

    private static bool IsLineBreaking(char c) =>
        char.IsControl(c) || char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.LineSeparator or System.Globalization.UnicodeCategory.ParagraphSeparator;

    /// <summary>What a log line may hold of <paramref name="text"/>: redacted, on one line.</summary>
    private static string Clean(string text, IReadOnlyCollection<string> secrets) => OneLine(Redact(text, secrets));

    private sealed class RedactingProvider(ILoggerProvider inner, IReadOnlyCollection<string> secrets) : ILoggerProvider, ISupportExternalScope
    {
        public ILogger CreateLogger(string categoryName) => new RedactingLogger(inner.CreateLogger(categoryName), secrets);

        public void SetScopeProvider(IExternalScopeProvider scopeProvider) => (inner as ISupportExternalScope)?.SetScopeProvider(scopeProvider);

        public void Dispose() => inner.Dispose();
    }

    private sealed class RedactingLogger(ILogger inner, IReadOnlyCollection<string> secrets) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!inner.IsEnabled(logLevel)) return;
            var message = Clean(formatter(state, exception), secrets);
            var fields = new RedactedState(message);
            if (state is IEnumerable<KeyValuePair<string, object?>> pairs)
                foreach (var (key, value) in pairs)
                    fields.Add(new(key, value switch
                    {
                        null => null,
                        // A query string is never logged, however it is spelt.
                        QueryString { HasValue: true } => "?" + Hidden,
                        string { Length: > 0 } when key.Equals("QueryString", StringComparison.OrdinalIgnoreCase) => "?" + Hidden,
                        Uri => Clean(value.ToString() ?? "", secrets), // formattable, but it is text: a URL with its query
                        IFormattable or bool => value,
                        _ => Clean(value.ToString() ?? "", secrets),
                    }));
            var redactedException = exception is null ? null : new RedactedException(exception, secrets);
            inner.Log(logLevel, eventId, fields, redactedException, static (s, _) => s.ToString());
        }
    }

    /// <summary>Structured fields whose text is the redacted message (what console formatters print).</summary>
    private sealed class RedactedState(string message) : List<KeyValuePair<string, object?>>
    {
        public override string ToString() => message;
    }

    /// <summary>An exception as the logs show it: its type, and message and stack with secrets removed.</summary>
    private sealed class RedactedException(Exception original, IReadOnlyCollection<string> secrets)
        : Exception(Clean(original.Message, secrets))
    {
        // The stack keeps its lines; each message in the chain (which may quote what a client sent) is one line.
        public override string ToString()
        {
            var text = original.ToString();
            for (var e = original; e is not null; e = e.InnerException)
                if (e.Message.Length > 0) text = text.Replace(e.Message, OneLine(e.Message), StringComparison.Ordinal);
            return Redact(text, secrets);
        }

        public override string? StackTrace => original.StackTrace;
    }
}
