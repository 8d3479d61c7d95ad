using System.Text.RegularExpressions;

namespace Ws2s.AspNetCore.Telemetry;

/// <summary>
/// Keeps secrets out of every log line, at every level, from every category (ws2s's own, Kestrel's,
/// the hosting diagnostics that print request URLs): each logger provider is wrapped so that the
/// message, the structured state (JSON logs write it field by field) and exception texts pass through
/// <see cref="Redact"/>. What it removes: the value of any <c>token=</c> query parameter, any
/// <c>token.…</c> subprotocol entry, private key blocks, and the configured tokens wherever they appear.
/// </summary>
public static partial class LogRedaction
{
    private const string Hidden = "***";

    [GeneratedRegex(@"(?<=(?:^|[?&;\s""'(/])(?:token|access_token|password)=)[^&\s""',;)]+", RegexOptions.IgnoreCase)]
    private static partial Regex QueryToken();

    [GeneratedRegex(@"(?<=(?:^|[\s,""':=\[])token\.)[^\s,""';\]]+", RegexOptions.IgnoreCase)]
    private static partial Regex SubProtocolToken();

    [GeneratedRegex(@"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", RegexOptions.Singleline)]
    private static partial Regex PrivateKey();

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

    /// <summary>The text with every secret it recognises replaced by <c>***</c>.</summary>
    public static string Redact(string text, IReadOnlyCollection<string> secrets)
    {
        if (text.Length == 0) return text;
        foreach (var secret in secrets)
            if (secret.Length > 0) text = text.Replace(secret, Hidden, StringComparison.Ordinal);
        if (text.Contains('=')) text = QueryToken().Replace(text, Hidden);
        if (text.Contains("token.", StringComparison.OrdinalIgnoreCase)) text = SubProtocolToken().Replace(text, Hidden);
        if (text.Contains("PRIVATE KEY", StringComparison.Ordinal)) text = PrivateKey().Replace(text, "[private key]");
        return text;
    }

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
            var message = Redact(formatter(state, exception), secrets);
            var fields = new RedactedState(message);
            if (state is IEnumerable<KeyValuePair<string, object?>> pairs)
                foreach (var (key, value) in pairs)
                    fields.Add(new(key, value switch
                    {
                        null => null,
                        string or Uri or PathString or QueryString or HostString => Redact(value.ToString() ?? "", secrets),
                        IFormattable or bool => value,
                        _ => Redact(value.ToString() ?? "", secrets),
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
        : Exception(Redact(original.Message, secrets))
    {
        public override string ToString() => Redact(original.ToString(), secrets);

        public override string? StackTrace => original.StackTrace;
    }
}
