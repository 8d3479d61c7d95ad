namespace Ws2s.Host.Configuration;

/// <summary>The configuration cannot be used; the message says which key or file to fix.</summary>
public sealed class ConfigException(string message) : Exception(message);
